"""File Catalog permissions on SQLite and MariaDB: directory modes, owners, groups, homes, administrators."""

from __future__ import annotations

from dirac.DataManagementSystem.Logic.CatalogPaths import Caller

ADMIN = Caller("admin", "dirac_admin", "dirac", isAdmin=True)
ALICE, BOB, EVE = Caller("alice", "dirac_user", "dirac"), Caller("bob", "dirac_user", "dirac"), Caller(
    "eve", "dirac_guest", "dirac")
HOME = "/dirac/user/a/alice"
DENIED = "Permission denied"


def put(fc, caller: Caller, *lfns: str) -> dict:  # noqa: ANN001
    return fc.addFile(caller, {lfn: {"SE": "SE-A", "Size": 1, "Checksum": ""} for lfn in lfns})


def test_home_isCreatedOnFirstWriteOwnedByTheUserWithTheVOAdminAbove(fc) -> None:
    assert put(fc, ALICE, f"{HOME}/f")["Successful"] == {f"{HOME}/f": True}
    meta = fc.getDirectoryMetadata(ADMIN, ["/dirac/user", "/dirac/user/a", HOME])["Successful"]
    assert [(meta[p]["Owner"], meta[p]["OwnerGroup"]) for p in ("/dirac/user", "/dirac/user/a", HOME)] == [
        ("admin", "dirac_admin"), ("admin", "dirac_admin"), ("alice", "dirac_user")]
    # outside their home users write only where a directory lets them
    assert fc.createDirectory(BOB, ["/dirac/data", f"{HOME}/bobs"])["Failed"] == {"/dirac/data": DENIED,
                                                                                 f"{HOME}/bobs": DENIED}
    assert fc.createDirectory(ADMIN, "/dirac/data")["Successful"] == {"/dirac/data": True}


def test_directoryMode755_letsOthersReadButNotWrite(fc) -> None:
    put(fc, ALICE, f"{HOME}/f", f"{HOME}/g")
    assert fc.getReplicas(BOB, f"{HOME}/f")["Successful"] == {f"{HOME}/f": {"SE-A": ""}}
    assert set(fc.listDirectory(EVE, HOME)["Successful"][HOME]["Files"]) == {f"{HOME}/f", f"{HOME}/g"}
    for result in (put(fc, BOB, f"{HOME}/h"), fc.removeFile(BOB, f"{HOME}/f"),
                   fc.addReplica(BOB, {f"{HOME}/f": {"SE": "SE-B"}}),
                   fc.removeReplica(BOB, {f"{HOME}/f": {"SE": "SE-A"}}),
                   fc.setReplicaStatus(BOB, {f"{HOME}/f": {"SE": "SE-A", "Status": "Trash"}}),
                   fc.createDirectory(BOB, f"{HOME}/sub"), fc.removeDirectory(BOB, HOME)):
        assert list(result["Failed"].values()) == [DENIED] and result["Successful"] == {}
    assert fc.getReplicas(ALICE, f"{HOME}/f")["Successful"][f"{HOME}/f"] == {"SE-A": ""}


def test_directoryMode700_isClosedToOthersAnd770_opensItToTheGroup(fc) -> None:
    put(fc, ALICE, f"{HOME}/private/f", f"{HOME}/shared/f")
    fc.changePathMode(ALICE, {f"{HOME}/private": 0o700, f"{HOME}/shared": 0o770})
    for caller in (BOB, EVE):
        assert fc.getReplicas(caller, f"{HOME}/private/f")["Failed"] == {f"{HOME}/private/f": DENIED}
        assert fc.listDirectory(caller, f"{HOME}/private")["Failed"] == {f"{HOME}/private": DENIED}
        assert fc.getFileMetadata(caller, f"{HOME}/private/f")["Failed"] == {f"{HOME}/private/f": DENIED}
    # bob shares alice's group: he reads and writes the 770 directory, eve (another group) does neither
    assert put(fc, BOB, f"{HOME}/shared/bobs")["Successful"] == {f"{HOME}/shared/bobs": True}
    assert put(fc, EVE, f"{HOME}/shared/eves")["Failed"] == {f"{HOME}/shared/eves": DENIED}
    assert fc.getReplicas(EVE, f"{HOME}/shared/f")["Failed"] == {f"{HOME}/shared/f": DENIED}
    # mixed batch: each LFN gets its own answer
    result = fc.getReplicas(BOB, [f"{HOME}/private/f", f"{HOME}/shared/f", f"{HOME}/shared/none"])
    assert result["Successful"] == {f"{HOME}/shared/f": {"SE-A": ""}}
    assert result["Failed"] == {f"{HOME}/private/f": DENIED, f"{HOME}/shared/none": "No such file or directory"}
    # the administrator (FileCatalogManagement) passes everywhere
    assert fc.getReplicas(ADMIN, f"{HOME}/private/f")["Successful"] == {f"{HOME}/private/f": {"SE-A": ""}}
    assert fc.removeFile(ADMIN, f"{HOME}/private/f")["Successful"] == {f"{HOME}/private/f": True}


def test_globalReadAccess_opensReadsOnly(fc) -> None:
    put(fc, ALICE, f"{HOME}/private/f")
    fc.changePathMode(ALICE, {f"{HOME}/private": 0o700})
    fc.settings.globalReadAccess = True
    assert fc.getReplicas(EVE, f"{HOME}/private/f")["Successful"] == {f"{HOME}/private/f": {"SE-A": ""}}
    assert fc.removeFile(EVE, f"{HOME}/private/f")["Failed"] == {f"{HOME}/private/f": DENIED}


def test_changePathMode_ownerOnly_changePathOwner_adminOnly_changePathGroup_toOwnGroups(fc) -> None:
    put(fc, ALICE, f"{HOME}/d/f")
    assert fc.changePathMode(BOB, {f"{HOME}/d": 0o777})["Failed"] == {f"{HOME}/d": DENIED}
    assert fc.changePathMode(ALICE, {f"{HOME}/d": 0o1777})["Failed"][f"{HOME}/d"].startswith("Invalid mode")
    assert fc.changePathMode(ALICE, {f"{HOME}/d": 0o750, f"{HOME}/none": 0o750})["Failed"] == {
        f"{HOME}/none": "No such file or directory"}
    assert fc.changePathOwner(ALICE, {f"{HOME}/d": "bob"})["Failed"] == {f"{HOME}/d": DENIED}
    assert fc.changePathGroup(ALICE, {f"{HOME}/d": "dirac_admin"})["Failed"] == {f"{HOME}/d": DENIED}
    assert fc.changePathGroup(ALICE, {f"{HOME}/d": "dirac_prod"}, recursive=True)["Successful"] == {f"{HOME}/d": True}
    assert fc.getFileMetadata(ALICE, f"{HOME}/d/f")["Successful"][f"{HOME}/d/f"]["OwnerGroup"] == "dirac_prod"
    assert fc.changePathOwner(ADMIN, {f"{HOME}/d": "bob"}, recursive=True)["Successful"] == {f"{HOME}/d": True}
    assert fc.getFileMetadata(ADMIN, f"{HOME}/d/f")["Successful"][f"{HOME}/d/f"]["Owner"] == "bob"
    # d is bob:dirac_prod 750 now and alice calls as dirac_user: the others' bits, nothing
    assert fc.getFileMetadata(ALICE, f"{HOME}/d/f")["Failed"] == {f"{HOME}/d/f": DENIED}
    assert put(fc, BOB, f"{HOME}/d/g")["Successful"] == {f"{HOME}/d/g": True}  # bob owns d now (mode 750)


def test_getPathPermissions_and_hasAccess_describeTheCallersRights(fc) -> None:
    put(fc, ALICE, f"{HOME}/f")
    paths = [HOME, f"{HOME}/f", f"{HOME}/new/deeper"]
    assert fc.getPathPermissions(ALICE, paths)["Successful"] == dict.fromkeys(
        paths, {"Read": True, "Write": True, "Execute": True})
    assert fc.getPathPermissions(BOB, paths)["Successful"] == dict.fromkeys(
        paths, {"Read": True, "Write": False, "Execute": True})
    assert fc.hasAccess(BOB, paths, "addFile")["Successful"] == dict.fromkeys(paths, False)
    assert fc.hasAccess(BOB, paths, "getReplicas")["Successful"] == dict.fromkeys(paths, True)
    assert fc.hasAccess(ADMIN, paths, "Write")["Successful"] == dict.fromkeys(paths, True)
    assert fc.hasAccess(BOB, HOME, "Fly")["Failed"] == {HOME: "Unknown operation Fly"}
