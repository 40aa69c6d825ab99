"""DataManagement/FileCatalog over real HTTPS, on SQLite and MariaDB: bulk calls, permissions, metadata.

Proxies: ``admin`` (dirac_admin: FileCatalogManagement), ``user`` (admin in dirac_user) and
``bob`` (dirac_user). The grid lives for the whole session, so each test works in its own
directory.
"""

from __future__ import annotations

import secrets

import pytest
from diraccfg import CFG

from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient

BOB_HOME = "/dirac/user/b/bob"
USER_HOME = "/dirac/user/a/admin"


def catalog(grid, proxy: str, **options) -> FileCatalogClient:  # noqa: ANN001
    return FileCatalogClient(proxyLocation=str(grid.proxies[proxy]), useCertificates=False, **options)


def value(result: dict):  # noqa: ANN201
    assert result["OK"], result.get("Message")
    return result["Value"]


@pytest.fixture
def area() -> str:
    """A fresh directory name for one test."""
    return f"t{secrets.token_hex(4)}"


def test_voRoot_isCreatedAtStartAndOwnedByTheVOAdmin(anyGrid) -> None:
    meta = value(catalog(anyGrid, "bob").getDirectoryMetadata("/dirac"))["Successful"]["/dirac"]
    assert (meta["Owner"], meta["Mode"]) == ("admin", 0o755)


def test_bulkRegistration_andGetReplicas_chunkedWithMixedGoodAndBadLFNs(anyGrid, area) -> None:
    bob = catalog(anyGrid, "bob", chunkSize=700)
    good = {f"{BOB_HOME}/{area}/d{i % 3}/f{i}": {"PFN": "", "SE": ["SE-A", "SE-B"], "Size": i, "Checksum": "ad12",
                                                   "GUID": f"{area}-{i}"} for i in range(2000)}
    bad = {"relative/f": "not an absolute path", f"{BOB_HOME}/{area}/../x": "'..' component",
           f"{USER_HOME}/{area}/f": "Permission denied", "/lhcb/f": "not under the VO root /dirac",
           f"{BOB_HOME}/{area}/nosize": "Missing 'Size'"}
    details = {lfn: {"SE": "SE-A", "Size": 1, "Checksum": ""} for lfn in bad} | {
        f"{BOB_HOME}/{area}/nosize": {"SE": "SE-A", "Checksum": ""}}
    result = value(bob.addFile(good | details))
    assert result["Successful"] == dict.fromkeys(good, True)
    assert {lfn: reason in result["Failed"][lfn] for lfn, reason in bad.items()} == dict.fromkeys(bad, True)

    replicas = value(bob.getReplicas([*good, f"{BOB_HOME}/{area}/missing"]))
    assert replicas["Successful"][f"{BOB_HOME}/{area}/d1/f7"] == {"SE-A": f"{BOB_HOME}/{area}/d1/f7",
                                                                  "SE-B": f"{BOB_HOME}/{area}/d1/f7"}
    assert len(replicas["Successful"]) == 2000
    assert replicas["Failed"] == {f"{BOB_HOME}/{area}/missing": "No such file or directory"}
    meta = value(bob.getFileMetadata(f"{BOB_HOME}/{area}/d0/f3"))["Successful"][f"{BOB_HOME}/{area}/d0/f3"]
    assert (meta["Size"], meta["Checksum"], meta["Owner"]) == (3, "0000ad12", "bob")
    assert meta["CreationDate"].year >= 2024  # a datetime crossed the wire
    sizes = value(bob.getDirectorySize(f"{BOB_HOME}/{area}", longOut=True))["Successful"][f"{BOB_HOME}/{area}"]
    assert (sizes["LogicalFiles"], sizes["LogicalSize"], sizes["PhysicalSize"]["TotalFiles"]) == (
        2000, sum(range(2000)), 4000)
    listing = value(bob.listDirectory(f"{BOB_HOME}/{area}/d2"))["Successful"][f"{BOB_HOME}/{area}/d2"]
    assert len(listing["Files"]) == 666
    assert value(bob.removeFile(list(good)[:1000]))["Successful"] == dict.fromkeys(list(good)[:1000], True)
    assert value(bob.getDirectorySize(f"{BOB_HOME}/{area}"))["Successful"][f"{BOB_HOME}/{area}"]["LogicalFiles"] == 1000


def test_permissions_anotherUsersDirectoryIsReadOnlyOrClosedAsItsModeSays(anyGrid, area) -> None:
    bob, user, admin = catalog(anyGrid, "bob"), catalog(anyGrid, "user"), catalog(anyGrid, "admin")
    lfn = f"{BOB_HOME}/{area}/f"
    assert value(bob.addFile({lfn: {"SE": "SE-A", "Size": 5, "Checksum": ""}}))["Failed"] == {}
    # 755: the other user (same group) reads but may not write
    assert value(user.getReplicas(lfn))["Successful"] == {lfn: {"SE-A": lfn}}
    assert value(user.removeFile(lfn))["Failed"] == {lfn: "Permission denied"}
    assert value(user.addFile({f"{BOB_HOME}/{area}/g": {"SE": "SE-A", "Size": 1, "Checksum": ""}}))["Failed"] == {
        f"{BOB_HOME}/{area}/g": "Permission denied"}
    assert value(user.changePathMode({f"{BOB_HOME}/{area}": 0o777}))["Failed"] == {
        f"{BOB_HOME}/{area}": "Permission denied"}
    # 700: closed to him
    assert value(bob.changePathMode({f"{BOB_HOME}/{area}": 0o700}))["Successful"] == {f"{BOB_HOME}/{area}": True}
    assert value(user.getReplicas(lfn))["Failed"] == {lfn: "Permission denied"}
    assert value(user.listDirectory(f"{BOB_HOME}/{area}"))["Failed"] == {f"{BOB_HOME}/{area}": "Permission denied"}
    assert value(user.getPathPermissions(lfn))["Successful"] == {lfn: {"Read": False, "Write": False,
                                                                       "Execute": False}}
    # FileCatalogManagement passes, and only it may change owners
    assert value(admin.getReplicas(lfn))["Successful"] == {lfn: {"SE-A": lfn}}
    refused = bob.changePathOwner({lfn: "admin"})
    assert not refused["OK"] and "FileCatalogManagement" in refused["Message"]
    assert value(admin.changePathOwner({f"{BOB_HOME}/{area}": "admin"}))["Successful"] == {f"{BOB_HOME}/{area}": True}
    assert value(bob.removeFile(lfn))["Failed"] == {lfn: "Permission denied"}


def test_metadata_declaredByAdminsSetByOwnersQueriedByAll(anyGrid, area) -> None:
    bob, user, admin = catalog(anyGrid, "bob"), catalog(anyGrid, "user"), catalog(anyGrid, "admin")
    field = f"Run{area}"
    refused = bob.addMetadataField(field, "int", "-d")
    assert not refused["OK"] and "FileCatalogManagement" in refused["Message"]
    assert value(admin.addMetadataField(field, "int", "-d")) == "Added"
    assert value(admin.addMetadataField(f"E{area}", "float", "-f")) == "Added"
    lfns = {f"{BOB_HOME}/{area}/run{run}/f{i}": {"SE": "SE-A", "Size": 1, "Checksum": ""}
            for run in (1, 2, 3) for i in range(2)}
    assert value(bob.addFile(lfns))["Failed"] == {}
    result = value(bob.setMetadataBulk({f"{BOB_HOME}/{area}/run{run}": {field: run} for run in (1, 2, 3)}
                                       | {f"{BOB_HOME}/{area}/run1/f1": {f"E{area}": 2.5}}))
    assert result["Failed"] == {}
    assert not user.setMetadata(f"{BOB_HOME}/{area}/run1", {field: 9})["OK"]

    assert value(user.findFilesByMetadata({field: {">=": 2}}, f"{BOB_HOME}/{area}")) == sorted(
        f"{BOB_HOME}/{area}/run{run}/f{i}" for run in (2, 3) for i in range(2))
    assert value(user.findFilesByMetadata({field: [1, 3], f"E{area}": {">": 2}})) == [f"{BOB_HOME}/{area}/run1/f1"]
    answer = user.getDirectoryUserMetadata(f"{BOB_HOME}/{area}/run2")
    assert answer["Value"] == {field: 2} and answer["MetadataOwner"] == {field: "OwnMetadata"}
    assert value(user.getFileUserMetadata(f"{BOB_HOME}/{area}/run1/f1")) == {field: 1, f"E{area}": 2.5}
    fields = value(user.getMetadataFields())
    assert fields["DirectoryMetaFields"][field] == "INT" and fields["FileMetaFields"][f"E{area}"] == "FLOAT"
    dataset = f"{BOB_HOME}/{area}/sets/early"
    assert value(bob.addDataset({dataset: {field: {"<": 3}}}))["Successful"] == {dataset: True}
    assert len(value(user.getDatasetFiles(dataset))["Successful"][dataset]) == 4


def test_serverInit_configuresTheFileCatalogWithItsDefaults(grid) -> None:
    master = CFG().loadFromFile(str(grid.instance.masterCFG))
    assert master.getOption("/Systems/DataManagement/URLs/FileCatalog") == grid.url("DataManagement/FileCatalog")
    assert master.getOption("/Systems/DataManagement/Services/FileCatalog/DirectoryMode") == "755"
    assert master.getOption("/Systems/DataManagement/Services/FileCatalog/GlobalReadAccess") == "no"
