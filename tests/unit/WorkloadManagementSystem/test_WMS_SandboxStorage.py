"""The back ends of the sandbox store (a disk directory, a Storage Element) and the SandboxStore settings."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument, NotFound
from dirac.WorkloadManagementSystem.Logic.SandboxStorage import (
    MARKER,
    MIB,
    DiskSandboxStorage,
    SandboxStoreSettings,
    StorageElementSandboxStorage,
    maxSandboxBytes,
)

SECTION = "/Systems/WorkloadManagement/Services/SandboxStore"
KEY = "/SandBox/dirac_user/bob/ab/abcd.tar.bz2"


@pytest.fixture
def storage(tmp_path: Path) -> DiskSandboxStorage:
    return DiskSandboxStorage(tmp_path / "store", create=True)


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"sandbox bytes")
    return path


def test_put_thenOpenExistsAndRemove(storage, upload) -> None:
    storage.put(upload, KEY)
    assert storage.exists(KEY)
    with storage.open(KEY) as data:
        assert data.read() == b"sandbox bytes"
    assert storage.path(KEY) == storage.basePath / KEY.lstrip("/")
    assert storage.remove(KEY) and not storage.exists(KEY)
    assert storage.remove(KEY) is False
    with pytest.raises(NotFound, match="missing"):
        storage.open(KEY)


def test_stage_showsNothingUnderTheKeyUntilCommit(storage, upload) -> None:
    staged = storage.stage(upload, KEY)
    assert not storage.exists(KEY) and Path(staged.location).read_bytes() == b"sandbox bytes"
    storage.commit(staged)
    storage.discard(staged)  # no-op once committed
    assert storage.exists(KEY) and not Path(staged.location).exists()


def test_discard_dropsAnUncommittedStagedCopy(storage, upload) -> None:
    staged = storage.stage(upload, KEY)
    storage.discard(staged)
    assert not Path(staged.location).exists() and not storage.exists(KEY)
    assert upload.read_bytes() == b"sandbox bytes"  # the source is left alone


@pytest.mark.parametrize("key", ["/SandBox/../../etc/passwd", "SandBox/relative", "/SandBox/a b", "/SandBox/./x", ""])
def test_keysThatCouldEscapeTheStoreAreRefused(storage, key) -> None:
    with pytest.raises(InvalidArgument, match="not a valid sandbox path"):
        storage.path(key)


def test_checkAvailable_needsTheMarkerTheServiceWrites(tmp_path) -> None:
    DiskSandboxStorage(tmp_path / "store", create=True).checkAvailable()
    assert (tmp_path / "store" / MARKER).is_file()
    unmounted = DiskSandboxStorage(tmp_path / "empty-mount-point")
    with pytest.raises(ConfigurationError, match="not mounted"):
        unmounted.checkAvailable()
    assert not (tmp_path / "empty-mount-point").exists()  # readers never create the store


def test_removeStaleStagedFiles_dropsOnlyOldOnes(storage, upload) -> None:
    old, fresh = storage.stage(upload, KEY), storage.stage(upload, KEY)
    past = time.time() - 2 * 86400
    os.utime(old.location, (past, past))
    assert storage.removeStaleStagedFiles(86400) == 1
    assert not Path(old.location).exists() and Path(fresh.location).exists()


def test_settings_defaultsComeFromTheInstancePath(tmp_path) -> None:
    gConfig.initialize(options={"/LocalInstallation/InstancePath": str(tmp_path)}, fetchRemote=False)
    settings = SandboxStoreSettings.fromCS()
    assert settings.localSE == "SandboxSE" and settings.backend == "disk"
    assert settings.basePath == tmp_path / "sandboxes"
    assert settings.maxSandboxBytes == 100 * MIB
    assert isinstance(settings.makeStorage(), DiskSandboxStorage)


def test_settings_readEveryOption(tmp_path) -> None:
    gConfig.initialize(options={f"{SECTION}/LocalSE": "ProductionSandboxSE", f"{SECTION}/Backend": "disk",
                                f"{SECTION}/BasePath": str(tmp_path / "sb"), f"{SECTION}/MaxSandboxSizeMiB": "2.5"},
                       fetchRemote=False)
    settings = SandboxStoreSettings.fromCS()
    assert (settings.localSE, settings.basePath, settings.maxSandboxBytes) == (
        "ProductionSandboxSE", tmp_path / "sb", int(2.5 * MIB))


@pytest.mark.parametrize(("option", "value", "message"), [
    ("Backend", "tape", "Backend = tape is not a sandbox back end"),
    ("BasePath", "relative/dir", "BasePath must be an absolute path"),
    ("LocalSE", "A|B", "LocalSE must be a storage element name"),
])
def test_settings_badOptionsAreNamed(option, value, message) -> None:
    gConfig.initialize(options={f"{SECTION}/{option}": value}, fetchRemote=False)
    with pytest.raises(ConfigurationError, match=message):
        SandboxStoreSettings.fromCS()


def test_maxSandboxBytes_nonPositiveFallsBackToTheDefault() -> None:
    gConfig.initialize(options={f"{SECTION}/MaxSandboxSizeMiB": "0"}, fetchRemote=False)
    assert maxSandboxBytes() == 100 * MIB


# -- on a Storage Element ---------------------------------------------------------------------------------------------
def test_storageElementBackend_keepsSandboxesOnTheSE(fileSEs, upload) -> None:
    """The StorageElement back end through a real File SE: the bytes land in the SE's tree under the key."""
    storage = SandboxStoreSettings(localSE="SE-A", backend="StorageElement").makeStorage()
    storage.checkAvailable()
    storage.put(upload, KEY)
    assert (fileSEs["SE-A"] / KEY.lstrip("/")).read_bytes() == b"sandbox bytes"
    assert storage.exists(KEY)
    with storage.open(KEY) as data:
        assert data.read() == b"sandbox bytes"
    assert storage.remove(KEY) and not storage.exists(KEY) and storage.remove(KEY) is False
    with pytest.raises(NotFound):
        storage.open(KEY)


def test_storageElementBackend_discardRemovesAnUploadThatWasNotRegistered(fileSEs, upload) -> None:
    storage = StorageElementSandboxStorage("SE-A")
    staged = storage.stage(upload, KEY)
    storage.discard(staged)
    assert not storage.exists(KEY)
    kept = storage.stage(upload, KEY)
    storage.commit(kept)
    storage.discard(kept)
    assert storage.exists(KEY)


def test_storageElementBackend_unknownOrBannedSE_isAConfigurationError(fileSEs, addFileSE, tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="NoSuchSE"):
        StorageElementSandboxStorage("NoSuchSE").checkAvailable()
    addFileSE("SE-Banned", tmp_path / "banned", WriteAccess="InActive")
    with pytest.raises(ConfigurationError, match="WriteAccess is InActive"):
        StorageElementSandboxStorage("SE-Banned").checkAvailable()
