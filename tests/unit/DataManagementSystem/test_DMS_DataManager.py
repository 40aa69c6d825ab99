"""DataManager over File Storage Elements and a real File Catalog (logic and DB, SQLite and MariaDB, in process):
round trips with Adler32 checks, and nothing half-registered after each failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller

ALICE = Caller("alice", "dirac_user", "dirac")
BOB = Caller("bob", "dirac_user", "dirac")
HOME = "/dirac/user/a/alice"
LFN = f"{HOME}/data/f1"


class InProcessCatalog:
    """FileCatalogClient's interface over the catalog logic, as one caller (the answers a client gets)."""

    def __init__(self, fc: Any, caller: Caller):
        self.fc, self.caller = fc, caller

    def __getattr__(self, method: str) -> Any:
        return lambda *args: S_OK(getattr(self.fc, method)(self.caller, *args))


class RegistrationFails(InProcessCatalog):
    """Fault injection: the catalog refuses every new entry, after the copy was stored."""

    def addFile(self, lfns: dict) -> dict:
        return S_ERROR("injected fault: the catalog is down")

    def addReplica(self, lfns: dict) -> dict:
        return S_OK({"Successful": {}, "Failed": dict.fromkeys(lfns, "injected fault: replica refused")})


@pytest.fixture
def ses(fileSEs: dict[str, Path]) -> dict[str, Path]:
    return fileSEs


@pytest.fixture
def local(tmp_path: Path) -> Path:
    path = tmp_path / "f1.dat"
    path.write_bytes(b"some physics data" * 1000)
    return path


def onDisk(ses: dict[str, Path], se: str, lfn: str = LFN) -> Path:
    return ses[se] / lfn.lstrip("/")


def test_putAndRegister_getFile_replicate_removeReplica_removeFile_roundTrip(fc, ses, local, tmp_path) -> None:
    dm = DataManager(InProcessCatalog(fc, ALICE))
    put = dm.putAndRegister(LFN, local, "SE-A")["Value"]
    assert set(put["Successful"][LFN]) == {"put", "register"}
    meta = fc.getFileMetadata(ALICE, LFN)["Successful"][LFN]
    assert (meta["Size"], meta["Checksum"]) == (local.stat().st_size, fileAdler32(local))

    replicated = dm.replicateAndRegister(LFN, "SE-B")["Value"]
    assert LFN in replicated["Successful"] and onDisk(ses, "SE-B").read_bytes() == local.read_bytes()
    assert set(dm.getReplicas(LFN)["Value"]["Successful"][LFN]) == {"SE-A", "SE-B"}
    assert dm.replicateAndRegister(LFN, "SE-B")["Value"]["Successful"] == {LFN: {}}

    out = tmp_path / "out"
    out.mkdir()
    got = dm.getFile(LFN, out, sourceSE="SE-B")["Value"]
    assert got["Successful"] == {LFN: str(out / "f1")} and (out / "f1").read_bytes() == local.read_bytes()

    assert dm.removeReplica("SE-A", LFN)["Value"]["Successful"] == {LFN: True}
    assert not onDisk(ses, "SE-A").exists()
    sole = dm.removeReplica("SE-B", LFN)["Value"]["Failed"][LFN]
    assert "sole replica" in sole and onDisk(ses, "SE-B").exists()

    assert dm.removeFile([LFN])["Value"]["Successful"] == {LFN: True}
    assert not onDisk(ses, "SE-B").exists()
    assert fc.exists(ALICE, LFN)["Successful"][LFN] is False


def test_putAndRegister_registrationFailure_removesTheUpload(fc, ses, local) -> None:
    result = DataManager(RegistrationFails(fc, ALICE)).putAndRegister(LFN, local, "SE-A")["Value"]
    assert "registration failed: injected fault" in result["Failed"][LFN]
    assert "the copy on SE-A was removed" in result["Failed"][LFN]
    assert not onDisk(ses, "SE-A").exists()
    assert fc.exists(ALICE, LFN)["Successful"][LFN] is False


def test_putAndRegister_givenChecksumMismatch_uploadsNothing(fc, ses, local) -> None:
    result = DataManager(InProcessCatalog(fc, ALICE)).putAndRegister(LFN, local, "SE-A", checksum="deadbeef")
    assert "deadbeef given" in result["Value"]["Failed"][LFN]
    assert not onDisk(ses, "SE-A").exists() and fc.exists(ALICE, LFN)["Successful"][LFN] is False


def test_putAndRegister_existingLFN_isRefused_andTheFirstCopyIsKept(fc, ses, local) -> None:
    dm = DataManager(InProcessCatalog(fc, ALICE))
    dm.putAndRegister(LFN, local, "SE-A")
    assert "already exists" in dm.putAndRegister(LFN, local, "SE-B")["Value"]["Failed"][LFN]
    assert not onDisk(ses, "SE-B").exists()


def test_replicate_fromACorruptSource_registersNothing_andStoresNothing(fc, ses, local) -> None:
    dm = DataManager(InProcessCatalog(fc, ALICE))
    dm.putAndRegister(LFN, local, "SE-A")
    onDisk(ses, "SE-A").write_bytes(b"bit rot" * 10)
    failed = dm.replicateAndRegister(LFN, "SE-B")["Value"]["Failed"][LFN]
    assert "Adler32" in failed and not onDisk(ses, "SE-B").exists()
    assert set(fc.getReplicas(ALICE, LFN)["Successful"][LFN]) == {"SE-A"}


def test_replicate_replicaRegistrationFailure_removesTheNewCopy(fc, ses, local) -> None:
    DataManager(InProcessCatalog(fc, ALICE)).putAndRegister(LFN, local, "SE-A")
    failed = DataManager(RegistrationFails(fc, ALICE)).replicateAndRegister(LFN, "SE-B")["Value"]["Failed"][LFN]
    assert "replica registration failed" in failed and not onDisk(ses, "SE-B").exists()


def test_removeFile_withoutCatalogPermission_touchesNoCopy(fc, ses, local) -> None:
    DataManager(InProcessCatalog(fc, ALICE)).putAndRegister(LFN, local, "SE-A")
    fc.changePathMode(ALICE, {f"{HOME}/data": 0o755})
    result = DataManager(InProcessCatalog(fc, BOB)).removeFile(LFN)["Value"]
    assert "Permission denied" in result["Failed"][LFN] and onDisk(ses, "SE-A").exists()


def test_removeFile_whenOneCopyCannotBeRemoved_keepsTheFileWithThatReplicaOnly(fc, ses, local) -> None:
    dm = DataManager(InProcessCatalog(fc, ALICE))
    dm.putAndRegister(LFN, local, "SE-A")
    dm.replicateAndRegister(LFN, "SE-B")
    gConfig.initialize(options={"/Resources/StorageElements/SE-B/RemoveAccess": "Banned"})
    failed = DataManager(InProcessCatalog(fc, ALICE)).removeFile(LFN)["Value"]["Failed"][LFN]
    assert "RemoveAccess is Banned" in failed
    assert not onDisk(ses, "SE-A").exists() and onDisk(ses, "SE-B").exists()
    assert set(fc.getReplicas(ALICE, LFN)["Successful"][LFN]) == {"SE-B"}


def test_getActiveReplicas_leavesOutStorageThatMayNotBeRead(fc, ses, local) -> None:
    dm = DataManager(InProcessCatalog(fc, ALICE))
    dm.putAndRegister(LFN, local, "SE-A")
    dm.replicateAndRegister(LFN, "SE-B")
    gConfig.initialize(options={"/Resources/StorageElements/SE-A/ReadAccess": "InActive"})
    assert set(DataManager(InProcessCatalog(fc, ALICE)).getActiveReplicas(LFN)["Value"]["Successful"][LFN]) == {"SE-B"}
