"""Storage Elements served by DataManagement/StorageElement over real HTTPS, with the real File Catalog:
round trips checked with Adler32, and clear per-file errors (checksum mismatch, permissions, a stopped SE,
a full disk) that leave nothing half-registered.

The one-box instance has OneBox-SE (space token Disk) and OneBox-Failover (space token Failover), both
in <instance>/storage. The grid lives for the session, so each test works in its own directory.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.Resources.Storage.StorageElement import StorageElement
from tests.unit.Resources.Storage.conftest import smallFilesystem

from .conftest import freePort

BOB_HOME = "/dirac/user/b/bob"
ADMIN_HOME = "/dirac/user/a/admin"


def asBob(grid) -> dict:  # noqa: ANN001
    return {"proxyLocation": str(grid.proxies["bob"]), "useCertificates": False}


def stored(grid, token: str, lfn: str) -> Path:  # noqa: ANN001
    return grid.instance.root / "storage" / token / lfn.lstrip("/")


def assertDamagedCopyRefusedThenRemoved(dm: DataManager, lfn: str, se: str, onDisk: Path, into: Path) -> None:
    """A copy damaged on the server is refused at download against the catalog's checksum; then the file goes."""
    onDisk.write_bytes(b"x" + onDisk.read_bytes()[1:])
    into.mkdir()
    failed = dm.getFile(lfn, into, sourceSE=se)["Value"]
    assert f"the copy read from {se} has Adler32" in str(failed), failed
    assert not (into / Path(lfn).name).exists()
    assert dm.removeFile(lfn)["Value"]["Successful"] == {lfn: True}
    assert not onDisk.exists()
    assert FileCatalogClient().exists(lfn)["Value"]["Successful"][lfn] is False


@pytest.fixture
def area() -> str:
    return f"{BOB_HOME}/se-{secrets.token_hex(4)}"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * (1 << 20) + 17))  # several 1 MiB chunks each way
    return path


def test_roundTrip_upload_replicate_download_remove_withChecksums(anyGrid, area, data, tmp_path) -> None:
    dm = DataManager(**asBob(anyGrid))
    catalog = FileCatalogClient(**asBob(anyGrid))
    lfn = f"{area}/data.bin"
    put = dm.putAndRegister(lfn, data, "OneBox-SE")
    assert put["OK"] and lfn in put["Value"]["Successful"], put
    assert fileAdler32(stored(anyGrid, "Disk", lfn)) == fileAdler32(data)
    meta = catalog.getFileMetadata(lfn)["Value"]["Successful"][lfn]
    assert (meta["Checksum"], meta["Size"]) == (fileAdler32(data), data.stat().st_size)
    replicas = dm.getReplicas(lfn)["Value"]["Successful"][lfn]
    port = anyGrid.port
    assert replicas == {"OneBox-SE": f"https://127.0.0.1:{port}/DataManagement/StorageElement/Disk{lfn}"}

    assert lfn in dm.replicateAndRegister(lfn, "OneBox-Failover")["Value"]["Successful"]
    assert stored(anyGrid, "Failover", lfn).read_bytes() == data.read_bytes()
    assert set(dm.getActiveReplicas(lfn)["Value"]["Successful"][lfn]) == {"OneBox-SE", "OneBox-Failover"}

    (tmp_path / "out").mkdir()
    got = dm.getFile(lfn, tmp_path / "out", sourceSE="OneBox-Failover")
    assert got["Value"]["Successful"] == {lfn: str(tmp_path / "out" / "data.bin")}
    assert (tmp_path / "out" / "data.bin").read_bytes() == data.read_bytes()

    assert dm.removeReplica("OneBox-SE", lfn)["Value"]["Successful"] == {lfn: True}
    assert not stored(anyGrid, "Disk", lfn).exists()
    assert dm.removeFile(lfn)["Value"]["Successful"] == {lfn: True}
    assert not stored(anyGrid, "Failover", lfn).exists()
    assert catalog.exists(lfn)["Value"]["Successful"][lfn] is False


def test_uploadWithAWrongChecksum_isRefusedByTheService_andNothingIsStored(grid, area, data) -> None:
    lfn = f"{area}/bad.bin"
    result = StorageElement("OneBox-SE", **asBob(grid)).putFile({lfn: data}, checksums={lfn: "0badc0de"})
    assert result["OK"], result
    assert "Adler32 of the bytes received is" in result["Value"]["Failed"][lfn]
    assert not stored(grid, "Disk", lfn).exists()
    assert list((grid.instance.root / "storage" / "Disk" / ".staging").iterdir()) == []


def test_writes_followTheCatalogPermissions_readsAreOpenToRegisteredUsers(grid, data) -> None:
    lfn = f"{ADMIN_HOME}/se-{secrets.token_hex(4)}/f"
    bob = StorageElement("OneBox-SE", **asBob(grid))
    refused = bob.putFile({lfn: data})["Value"]["Failed"][lfn]
    assert "Permission denied" in refused and not stored(grid, "Disk", lfn).exists()
    admin = DataManager(proxyLocation=str(grid.proxies["user"]), useCertificates=False)
    assert lfn in admin.putAndRegister(lfn, data, "OneBox-SE")["Value"]["Successful"]
    assert bob.getFileMetadata(lfn)["Value"]["Successful"][lfn]["Checksum"] == fileAdler32(data)
    assert "Permission denied" in bob.removeFile(lfn)["Value"]["Failed"][lfn]
    assert "Permission denied" in DataManager(**asBob(grid)).removeFile(lfn)["Value"]["Failed"][lfn]
    assert stored(grid, "Disk", lfn).exists()
    assert admin.removeFile(lfn)["Value"]["Successful"] == {lfn: True}


def test_stoppedSE_givesAClearPerFileError_andNothingIsRegistered(grid, area, data) -> None:
    section = "/Resources/StorageElements/Stopped-SE/DIP"
    gConfig.initialize(options={f"{section}/Host": "127.0.0.1", f"{section}/Port": str(freePort()),
                                f"{section}/Path": "/DataManagement/StorageElement", f"{section}/SpaceToken": "Disk"})
    lfn = f"{area}/stopped.bin"
    dm = DataManager(**asBob(grid))
    failed = dm.putAndRegister(lfn, data, "Stopped-SE")["Value"]["Failed"][lfn]
    assert "Stopped-SE is not available" in failed
    assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
    # a replication towards it fails the same way and leaves the file with its one good replica
    good = f"{area}/good.bin"
    dm.putAndRegister(good, data, "OneBox-SE")
    assert "Stopped-SE is not available" in dm.replicateAndRegister(good, "Stopped-SE")["Value"]["Failed"][good]
    assert set(dm.getReplicas(good)["Value"]["Successful"][good]) == {"OneBox-SE"}
    dm.removeFile(good)


def test_fullDisk_ENOSPC_onARealSmallFilesystem_givesAClearError_andNothingHalfRegistered(grid, area, data) -> None:
    tiny = grid.instance.root / "storage" / "Tiny"
    with smallFilesystem(tiny, "1m"):
        section = "/Resources/StorageElements/Tiny-SE/DIP"
        gConfig.initialize(options={f"{section}/Host": "127.0.0.1", f"{section}/Port": str(grid.port),
                                    f"{section}/Path": "/DataManagement/StorageElement", f"{section}/SpaceToken": "Tiny"})
        lfn = f"{area}/big.bin"
        failed = DataManager(**asBob(grid)).putAndRegister(lfn, data, "Tiny-SE")["Value"]["Failed"][lfn]
        assert "no space left on space token Tiny" in failed
        assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
        assert not (tiny / lfn.lstrip("/")).exists()
        assert not (tiny / ".staging").exists() or list((tiny / ".staging").iterdir()) == []
