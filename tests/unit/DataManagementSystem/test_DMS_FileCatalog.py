"""The File Catalog namespace on SQLite and MariaDB: files, replicas, directories, LFN checks, bulk answers."""

from __future__ import annotations

from dirac.DataManagementSystem.DB.FileCatalogTables import MAX_LFN_LENGTH
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller

ADMIN = Caller("admin", "dirac_admin", "dirac", isAdmin=True)
ALICE, BOB, CARL = Caller("alice", "dirac_user", "dirac"), Caller("bob", "dirac_user", "dirac"), Caller("carl", "lhcb_user", "lhcb")
HOME = "/dirac/user/a/alice"


def fileInfo(size: int = 10, se: str | list[str] = "SE-A", checksum: str = "1a2b3c4d", guid: str | None = None) -> dict:
    """What DIRAC's addFile takes for one LFN."""
    return {"PFN": "", "SE": se, "Size": size, "Checksum": checksum, "ChecksumType": "Adler32"} | (
        {"GUID": guid} if guid else {})


def ok(result: dict) -> dict:
    """The Successful dict of a bulk answer, asserting nothing failed."""
    assert result["Failed"] == {}, result["Failed"]
    return result["Successful"]


def test_addFile_registersFilesAndReplicasInNewDirectoriesOwnedByTheCaller(fc) -> None:
    lfns = {f"{HOME}/data/f{i}": fileInfo(size=i, se=["SE-A", "SE-B"], checksum="abc", guid=f"G-{i}")
            for i in range(3)}
    assert ok(fc.addFile(ALICE, lfns)) == dict.fromkeys(lfns, True)

    meta = ok(fc.getFileMetadata(ALICE, f"{HOME}/data/f2"))[f"{HOME}/data/f2"]
    assert (meta["Size"], meta["Checksum"], meta["ChecksumType"], meta["GUID"]) == (2, "00000abc", "Adler32", "G-2")
    assert (meta["Owner"], meta["OwnerGroup"], meta["Mode"], meta["Status"]) == ("alice", "dirac_user", 0o644,
                                                                                "AprioriGood")
    assert ok(fc.getReplicas(ALICE, list(lfns)))[f"{HOME}/data/f0"] == {"SE-A": "", "SE-B": ""}
    assert ok(fc.getFileSize(BOB, [f"{HOME}/data/f1"])) == {f"{HOME}/data/f1": 1}
    dirs = ok(fc.getDirectoryMetadata(ADMIN, [f"{HOME}/data", HOME, "/dirac/user/a", "/dirac"]))
    assert {path: (d["Owner"], d["Mode"]) for path, d in dirs.items()} == {
        f"{HOME}/data": ("alice", 0o755), HOME: ("alice", 0o755), "/dirac/user/a": ("admin", 0o755),
        "/dirac": ("admin", 0o755)}
    assert ok(fc.getLFNForGUID(BOB, ["G-1"])) == {"G-1": f"{HOME}/data/f1"}
    assert fc.getLFNForGUID(BOB, ["nope"])["Failed"] == {"nope": "GUID not found"}


def test_addFile_bulkWithGoodAndBadLFNsReportsEachBadOneAndRegistersOnlyTheGoodOnes(fc) -> None:
    ok(fc.addFile(ALICE, {f"{HOME}/taken": fileInfo(guid="G-taken")}))
    bad = {
        "relative/path": "not an absolute path",
        f"{HOME}/../bob/x": "'..' component",
        f"{HOME}//x": "empty path component",
        f"{HOME}/x/": "empty path component",
        "": "empty",
        f"{HOME}/" + "x" * MAX_LFN_LENGTH: f"longer than {MAX_LFN_LENGTH}",
        f"{HOME}/" + "y" * 300: "longer than 255",
        "/lhcb/user/a/alice/x": "not under the VO root /dirac",
        f"{HOME}/tab\there": "control characters",
        "/dirac/user/b/bob/x": "Permission denied",
        f"{HOME}/nosize": "Missing 'Size'",
        f"{HOME}/negative": "Invalid size",
        f"{HOME}/badsum": "Invalid Adler32 checksum",
        f"{HOME}/nose": "Invalid SE",
        f"{HOME}": "A directory of this name exists",
        f"{HOME}/taken/below": "is a file",
        f"{HOME}/taken": "alternative metadata",
    }
    details = {lfn: fileInfo(guid="G-other") for lfn in bad}
    details[f"{HOME}/nosize"] = {"SE": "SE-A", "Checksum": ""}
    details[f"{HOME}/negative"] = fileInfo(size=-1)
    details[f"{HOME}/badsum"] = fileInfo(checksum="xyz")
    details[f"{HOME}/nose"] = fileInfo(se=[])
    good = {f"{HOME}/good{i}": fileInfo() for i in range(3)}
    result = fc.addFile(ALICE, details | good)
    assert result["Successful"] == dict.fromkeys(good, True)
    assert set(result["Failed"]) == set(bad)
    for lfn, reason in bad.items():
        assert reason in result["Failed"][lfn], (lfn, result["Failed"][lfn])
    assert ok(fc.exists(ALICE, [f"{HOME}/nosize", f"{HOME}/taken/below"])) == {
        f"{HOME}/nosize": False, f"{HOME}/taken/below": False}


def test_addFile_againWithTheSameMetadataSucceedsAndAddsTheNewReplica(fc) -> None:
    lfn = f"{HOME}/f"
    ok(fc.addFile(ALICE, {lfn: fileInfo(guid="G1")}))
    assert ok(fc.addFile(ALICE, {lfn: fileInfo(guid="G1", se="SE-B")})) == {lfn: True}
    assert ok(fc.getReplicas(ALICE, lfn)) == {lfn: {"SE-A": "", "SE-B": ""}}
    assert "alternative metadata" in fc.addFile(ALICE, {lfn: fileInfo(size=11, guid="G1")})["Failed"][lfn]


def test_replicas_addRemoveStatusesAndVisibility(fc) -> None:
    lfns = [f"{HOME}/r{i}" for i in range(4)]
    ok(fc.addFile(ALICE, {lfn: fileInfo() for lfn in lfns}))
    assert ok(fc.addReplica(ALICE, {lfn: {"SE": "SE-B", "PFN": f"https://se-b{lfn}"} for lfn in lfns})) == \
        dict.fromkeys(lfns, True)
    assert fc.addReplica(ALICE, {f"{HOME}/none": {"SE": "SE-B"}})["Failed"] == {
        f"{HOME}/none": "No such file or directory"}
    assert ok(fc.getReplicas(ALICE, lfns[0])) == {lfns[0]: {"SE-A": "", "SE-B": f"https://se-b{lfns[0]}"}}

    result = fc.setReplicaStatus(ALICE, {lfns[0]: {"SE": "SE-B", "Status": "Trash"},
                                         lfns[1]: {"SE": "SE-C", "Status": "Trash"},
                                         lfns[2]: {"SE": "SE-A", "Status": "Lost"}})
    assert result["Successful"] == {lfns[0]: True}
    assert result["Failed"] == {lfns[1]: "No replica at SE-C", lfns[2]: "Invalid replica status Lost"}
    assert ok(fc.getReplicaStatus(ALICE, {lfns[0]: "SE-B"})) == {lfns[0]: "Trash"}
    assert ok(fc.getReplicas(ALICE, lfns[0]))[lfns[0]] == {"SE-A": ""}
    assert ok(fc.getReplicas(ALICE, lfns[0], allStatus=True))[lfns[0]] == {"SE-A": "", "SE-B": f"https://se-b{lfns[0]}"}

    assert ok(fc.setFileStatus(ALICE, {lfns[3]: "Trash"})) == {lfns[3]: True}
    assert fc.getReplicas(ALICE, lfns[3])["Failed"] == {lfns[3]: "No such file or directory"}
    assert set(ok(fc.getReplicas(ALICE, lfns[3], allStatus=True))[lfns[3]]) == {"SE-A", "SE-B"}

    assert ok(fc.removeReplica(ALICE, {lfns[1]: {"SE": "SE-A"}, lfns[2]: {"SE": "SE-Z"},
                                       f"{HOME}/none": {"SE": "SE-A"}})) == dict.fromkeys(
        [lfns[1], lfns[2], f"{HOME}/none"], True)
    assert ok(fc.getReplicas(ALICE, lfns[1]))[lfns[1]] == {"SE-B": f"https://se-b{lfns[1]}"}


def test_removeFile_removesFilesAndReplicasAndAbsentFilesCountAsRemoved(fc) -> None:
    ok(fc.addFile(ALICE, {f"{HOME}/a": fileInfo(), f"{HOME}/b": fileInfo()}))
    assert ok(fc.removeFile(ALICE, [f"{HOME}/a", f"{HOME}/never"])) == {f"{HOME}/a": True, f"{HOME}/never": True}
    assert fc.removeFile(ALICE, HOME)["Failed"] == {HOME: "Is a directory (use removeDirectory)"}
    assert ok(fc.exists(ALICE, [f"{HOME}/a", f"{HOME}/b", HOME])) == {f"{HOME}/a": False, f"{HOME}/b": f"{HOME}/b",
                                                                      HOME: True}
    assert ok(fc.isFile(ALICE, [f"{HOME}/b", HOME])) == {f"{HOME}/b": True, HOME: False}
    assert ok(fc.isDirectory(ALICE, [f"{HOME}/b", HOME, "/"])) == {f"{HOME}/b": False, HOME: True, "/": True}
    assert fc.db.getCatalogCounters()["Replicas"] == 1


def test_directories_createListRemove(fc) -> None:
    assert ok(fc.createDirectory(ALICE, [f"{HOME}/x/y", f"{HOME}/z"])) == {f"{HOME}/x/y": True, f"{HOME}/z": True}
    ok(fc.addFile(ALICE, {f"{HOME}/x/f1": fileInfo(se=["SE-A", "SE-B"]), f"{HOME}/x/f2": fileInfo()}))
    assert fc.createDirectory(ALICE, f"{HOME}/x/f1")["Failed"] == {f"{HOME}/x/f1": f"{HOME}/x/f1 is a file"}

    listing = ok(fc.listDirectory(ALICE, f"{HOME}/x"))[f"{HOME}/x"]
    assert listing["SubDirs"] == {f"{HOME}/x/y": True}
    assert set(listing["Files"]) == {f"{HOME}/x/f1", f"{HOME}/x/f2"}
    assert listing["Files"][f"{HOME}/x/f1"]["MetaData"]["Size"] == 10
    assert "Replicas" not in listing["Files"][f"{HOME}/x/f1"]
    verbose = ok(fc.listDirectory(BOB, f"{HOME}/x", verbose=True))[f"{HOME}/x"]
    assert verbose["Files"][f"{HOME}/x/f1"]["Replicas"] == {"SE-A": {"Status": "AprioriGood", "PFN": ""},
                                                            "SE-B": {"Status": "AprioriGood", "PFN": ""}}
    assert verbose["SubDirs"][f"{HOME}/x/y"]["Owner"] == "alice"
    assert fc.listDirectory(ALICE, f"{HOME}/nothing")["Failed"] == {f"{HOME}/nothing": "Directory does not exist"}
    assert set(ok(fc.getDirectoryReplicas(ALICE, f"{HOME}/x"))[f"{HOME}/x"]) == {f"{HOME}/x/f1", f"{HOME}/x/f2"}

    result = fc.removeDirectory(ALICE, [f"{HOME}/x", f"{HOME}/x/y", f"{HOME}/gone", f"{HOME}/x/f1"])
    assert result["Successful"] == {f"{HOME}/x/y": True, f"{HOME}/gone": True}
    assert result["Failed"] == {f"{HOME}/x": "Directory not empty", f"{HOME}/x/f1": "Not a directory"}
    assert fc.removeDirectory(ADMIN, "/")["Failed"] == {"/": "The root directory cannot be removed"}


def test_getDirectorySize_and_getDirectoryDump_coverWholeSubtrees(fc) -> None:
    ok(fc.addFile(ALICE, {f"{HOME}/top": fileInfo(size=1, se=["SE-A", "SE-B"]),
                          f"{HOME}/d1/f": fileInfo(size=10, se="SE-A"),
                          f"{HOME}/d1/d2/f": fileInfo(size=100, se="SE-B")}))
    ok(fc.createDirectory(ALICE, f"{HOME}/empty"))
    sizes = ok(fc.getDirectorySize(BOB, [HOME, f"{HOME}/d1"], longOutput=True))
    assert {k: v for k, v in sizes[HOME].items() if k != "PhysicalSize"} == {
        "LogicalSize": 111, "LogicalFiles": 3, "LogicalDirectories": 3}
    assert sizes[HOME]["PhysicalSize"] == {"SE-A": {"Size": 11, "Files": 2}, "SE-B": {"Size": 101, "Files": 2},
                                           "TotalSize": 112, "TotalFiles": 4}
    assert sizes[f"{HOME}/d1"]["LogicalSize"] == 110
    flat = ok(fc.getDirectorySize(BOB, HOME, recursiveSum=False))[HOME]
    assert flat == {"LogicalSize": 1, "LogicalFiles": 1, "LogicalDirectories": 2}

    dump = ok(fc.getDirectoryDump(BOB, f"{HOME}/d1"))[f"{HOME}/d1"]
    assert dump["SubDirs"] == [f"{HOME}/d1/d2"]
    assert {lfn: meta["Size"] for lfn, meta in dump["Files"].items()} == {f"{HOME}/d1/f": 10, f"{HOME}/d1/d2/f": 100}


def test_lfnChecks_applyToEveryMethodAndPerLFN(fc) -> None:
    bad = ["relative", "/dirac/a/../b", "/dirac//b", "/lhcb/data", "/"]
    for result in (fc.getReplicas(ALICE, bad), fc.createDirectory(ALICE, bad), fc.removeFile(ALICE, bad)):
        assert set(result["Failed"]) == set(bad) and result["Successful"] == {}
    assert fc.createDirectory(CARL, "/dirac/x")["Failed"] == {"/dirac/x": "Invalid LFN: not under the VO root /lhcb"}
    assert ok(fc.createDirectory(ADMIN, "/lhcb/data")) == {"/lhcb/data": True}


def test_listDirectory_and_dump_packedRowsOnMariaDB_sameAsThePlainQuery_evenWithSeparatorsInAValue(fc) -> None:
    import gc
    from datetime import UTC, datetime

    from sqlalchemy import select

    from dirac.DataManagementSystem.DB import FileCatalogListings as listings
    from dirac.DataManagementSystem.DB import FileCatalogTables as T

    db = fc.db
    entries = {f"/dirac/list/f{i:04d}": {"Size": i, "Checksum": "0badcafe", "ChecksumType": "Adler32",
                                         "GUID": f"guid-{i}", "Status": "AprioriGood", "Replicas": [("SE-A", "", "")]}
               for i in range(3000)}  # more than one packed block of 2,048 rows
    assert db.addFiles(entries, "alice", "dirac_user", 0o644, 0o755)[1] == {}
    listing = db.listDirectory("/dirac/list", False)["Files"]
    assert sorted(listing) == sorted(entries)
    meta = listing["/dirac/list/f0042"]["MetaData"]
    assert (meta["FileID"] > 0, meta["Size"], meta["GUID"], meta["Owner"], meta["Mode"], meta["Type"]) == (
        True, 42, "guid-42", "alice", 0o644, "File")
    registered = db.getFiles(["/dirac/list/f0042"])["/dirac/list/f0042"]["CreationDate"]
    assert meta["CreationDate"].tzinfo is None and meta["CreationDate"] == meta["ModificationDate"]
    assert meta["CreationDate"] == registered.replace(tzinfo=None)  # naive UTC, to the microsecond
    assert db.getDirectoryDump("/dirac")["Files"]["/dirac/list/f0042"] == {"Size": 42,
                                                                           "CreationDate": meta["CreationDate"]}
    with db.connection() as conn:
        dirID = db._directoriesByPath(conn, ["/dirac/list"])["/dirac/list"]["DirID"]
        columns = [T.files.c.FileName, *listings._LISTING_COLUMNS]
        rows = db._rows(conn, columns, T.files.c.DirID == dirID, listings._LISTING_INTS, listings._LISTING_DATES)
        plain = conn.execute(select(*columns).where(T.files.c.DirID == dirID)).all()
    assert sorted(tuple(datetime.fromisoformat(v).replace(tzinfo=UTC) if i in listings._LISTING_DATES else v
                        for i, v in enumerate(row)) for row in rows) == sorted(map(tuple, plain))
    odd = {"/dirac/list/odd": {**entries["/dirac/list/f0001"], "GUID": "a\x00b\x01c"}}
    assert db.addFiles(odd, "alice", "dirac_user", 0o644, 0o755)[1] == {}
    assert db.listDirectory("/dirac/list", False)["Files"]["/dirac/list/odd"]["MetaData"]["GUID"] == "a\x00b\x01c"
    assert db.getDirectoryDump("/dirac/list")["Files"]["/dirac/list/odd"]["Size"] == 1
    assert gc.isenabled()  # the collector paused for the listing is running again


def test_nearestDirectories_isThePathItselfWhenADirectory_elseTheNearestExistingAbove(fc) -> None:
    db = fc.db
    ok(fc.addFile(ALICE, {f"{HOME}/leaf/f1": fileInfo(), f"{HOME}/mixed/f2": fileInfo()}))
    ok(fc.createDirectory(ALICE, [f"{HOME}/mixed/sub", f"{HOME}/mixed/sub/deeper"]))
    ids = {path: row["DirID"] for path, row in db.getDirectories(
        ["/", "/dirac", HOME, f"{HOME}/leaf", f"{HOME}/mixed", f"{HOME}/mixed/sub", f"{HOME}/mixed/sub/deeper"]).items()}
    expected = {
        f"{HOME}/leaf/f1": f"{HOME}/leaf",  # a file in a directory without subdirectories
        f"{HOME}/leaf/new": f"{HOME}/leaf",  # absent
        f"{HOME}/mixed/f2": f"{HOME}/mixed",  # a file next to a subdirectory
        f"{HOME}/mixed/sub": f"{HOME}/mixed/sub",  # a directory: itself
        f"{HOME}/mixed/sub/deeper": f"{HOME}/mixed/sub/deeper",  # itself, its parent also asked for
        f"{HOME}/mixed/sub/x/y/z": f"{HOME}/mixed/sub",  # several levels missing
        f"{HOME}/leaf/f1/below": f"{HOME}/leaf",  # below a file
        "/nowhere/at/all": "/",
        "/dirac": "/dirac",
        "/": "/",
        HOME: HOME,
    }
    nearest = db.nearestDirectories(expected)
    assert {path: row["DirID"] for path, row in nearest.items()} == {path: ids[d] for path, d in expected.items()}


def test_lfnError_acceptsDotNamesAndLongComponents_refusesEachBadShapeWithItsReason() -> None:
    from dirac.DataManagementSystem.DB.FileCatalogTables import MAX_NAME_LENGTH
    from dirac.DataManagementSystem.Logic.CatalogPaths import lfnError

    for good in ("/dirac", "/dirac/.hidden", "/dirac/..x", "/dirac/x..", f"/dirac/{'n' * MAX_NAME_LENGTH}",
                 "/dirac/caf\u00e9", "/dirac/" + "/".join(["d" * 100] * 10)[:MAX_LFN_LENGTH - 7]):
        assert lfnError(good, ALICE) is None, good
    bad = {"/dirac/.": "'.' component", "/dirac/../x": "'..' component", "/dirac//x": "empty path component",
           "/dirac/x/": "empty path component", "/dirac/a\x7f": "control characters", "/dirac/a\nb": "control",
           f"/dirac/{'n' * (MAX_NAME_LENGTH + 1)}": "a component is longer", "/diracx/y": "not under the VO root",
           "/dirac" + "/d" * MAX_LFN_LENGTH: f"longer than {MAX_LFN_LENGTH}", "dirac/x": "not an absolute path",
           "": "empty", "/": "/ is not under a VO root"}
    for path, reason in bad.items():
        assert reason in (lfnError(path, ALICE) or ""), path
    assert lfnError("/lhcb/x", ADMIN) is None and lfnError("/", ADMIN) is None
    assert lfnError("/dirac/x", Caller("nobody", "g", "")) == "Invalid LFN: the caller has no VO"


def test_getReplicas_aVisibleFileWithOnlyHiddenReplicasAnswersNoReplica(fc) -> None:
    lfn = f"{HOME}/hidden/f"
    ok(fc.addFile(ALICE, {lfn: fileInfo(se=["SE-A", "SE-B"])}))
    ok(fc.setReplicaStatus(ALICE, {lfn: {"SE": "SE-A", "Status": "Trash"}}))
    ok(fc.setReplicaStatus(ALICE, {lfn: {"SE": "SE-B", "Status": "Trash"}}))
    assert ok(fc.getReplicas(ALICE, [lfn])) == {lfn: {}}
    assert ok(fc.getReplicas(ALICE, [lfn], allStatus=True)) == {lfn: {"SE-A": "", "SE-B": ""}}


def test_addFile_aFileAndAFileBelowItInOneBatch_neverMakeAPathBothFileAndDirectory(fc) -> None:
    result = fc.addFile(ALICE, {f"{HOME}/both": fileInfo(), f"{HOME}/both/child": fileInfo()})
    assert result["Successful"] == {f"{HOME}/both/child": True}
    assert result["Failed"] == {f"{HOME}/both": "A directory of this name exists"}
    assert fc.db.pathKinds([f"{HOME}/both"]) == {f"{HOME}/both": "Directory"}
    assert fc.getReplicas(ALICE, f"{HOME}/both")["Failed"] == {f"{HOME}/both": "No such file or directory"}
