"""The StorageElement facade and the File plug-in: bulk answers per LFN, checksums, atomic writes, a full disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Adler import fileAdler32, normalizeAdler32
from dirac.Resources.Storage.DiskArea import DiskArea
from dirac.Resources.Storage.StorageBase import StorageFull
from dirac.Resources.Storage.StorageElement import StorageElement, getStorageElements

from .conftest import smallFilesystem

LFN = "/dirac/user/a/alice/data/f1"


def makeFile(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_adler32_isDiracsEightDigitForm() -> None:
    assert normalizeAdler32("AD12") == "0000ad12"
    assert normalizeAdler32(1) == "00000001"


def test_putFile_storesTheFileUnderItsLFN_andReportsSizePerLFN(fileSEs, tmp_path) -> None:
    local = makeFile(tmp_path / "f1", b"hello world")
    se = StorageElement("SE-A")
    result = se.putFile({LFN: local, "relative/bad": local})
    assert result["OK"], result
    assert result["Value"]["Successful"] == {LFN: 11}
    assert "not an absolute path" in result["Value"]["Failed"]["relative/bad"]
    assert (fileSEs["SE-A"] / LFN.lstrip("/")).read_bytes() == b"hello world"
    assert set(getStorageElements()) == {"SE-A", "SE-B"}


def test_metadata_exists_size_url_andListing_answerPerLFN(fileSEs, tmp_path) -> None:
    se = StorageElement("SE-A")
    se.putFile({LFN: makeFile(tmp_path / "f1", b"abc")})
    missing = "/dirac/user/a/alice/data/missing"
    meta = se.getFileMetadata([LFN, missing])["Value"]
    assert meta["Successful"][LFN]["Checksum"] == fileAdler32(tmp_path / "f1")
    assert meta["Successful"][LFN]["Size"] == 3
    assert "no such file" in meta["Failed"][missing]
    assert se.exists([LFN, missing])["Value"]["Successful"] == {LFN: True, missing: False}
    assert se.getFileSize(LFN)["Value"]["Successful"] == {LFN: 3}
    assert se.getURL(LFN)["Value"]["Successful"][LFN] == f"file://{fileSEs['SE-A']}{LFN}"
    listing = se.listDirectory("/dirac/user/a/alice")["Value"]["Successful"]["/dirac/user/a/alice"]
    assert listing["SubDirs"] == {"/dirac/user/a/alice/data": {}} and listing["Files"] == {}


def test_transportURLs_comeInTheFirstProtocolAReadPluginServes_neverFromDIP(fileSEs, addFileSE, tmp_path) -> None:
    se = StorageElement("SE-A")
    se.putFile({LFN: makeFile(tmp_path / "f1", b"abc")})
    assert se.getTransportURL([LFN, "relative"], ["root", "file"])["Value"] == {
        "Successful": {LFN: f"file://{fileSEs['SE-A']}{LFN}"},
        "Failed": {"relative": "'relative' is not an absolute path"}}
    refused = se.getTransportURL(LFN, ["root", "https"])
    assert refused["Errno"] == errno.EPROTONOSUPPORT
    assert "SE-A gives no transport URL in root, https (it is read with file (File))" in refused["Message"]
    gConfig.initialize(cfgFiles=[], fetchRemote=False, options={
        "/Resources/StorageElements/Both-SE/AccessProtocols": "https",
        "/Resources/StorageElements/Both-SE/DIP/Host": "127.0.0.1",
        **{f"/Resources/StorageElements/Both-SE/File/{k}": v for k, v in {"Path": str(fileSEs["SE-A"])}.items()}})
    both = StorageElement("Both-SE")  # read with DIP only (AccessProtocols): its https URLs need DIRAC's client
    assert "Both-SE gives no transport URL in https, file (it is read with https (DIP))" in \
        both.getTransportURL(LFN, ["https", "file"])["Message"]


def test_putFile_withAWrongChecksum_storesNothing(fileSEs, tmp_path) -> None:
    local = makeFile(tmp_path / "f1", b"payload")
    result = StorageElement("SE-A").putFile({LFN: local}, checksums={LFN: "deadbeef"})
    assert "Adler32 of the bytes received" in result["Value"]["Failed"][LFN]
    assert not (fileSEs["SE-A"] / LFN.lstrip("/")).exists()
    assert list((fileSEs["SE-A"] / ".staging").iterdir()) == []


def test_getFile_checksumMismatch_removesTheCorruptCopy(fileSEs, tmp_path) -> None:
    se = StorageElement("SE-A")
    se.putFile({LFN: makeFile(tmp_path / "f1", b"original")})
    (fileSEs["SE-A"] / LFN.lstrip("/")).write_bytes(b"corrupt!")  # bit rot on the storage
    out = tmp_path / "out"
    out.mkdir()
    result = se.getFile(LFN, out, checksums={LFN: fileAdler32(tmp_path / "f1")})
    assert "the copy was removed" in result["Value"]["Failed"][LFN]
    assert list(out.iterdir()) == []


def test_removeFile_andDirectories(fileSEs, tmp_path) -> None:
    se = StorageElement("SE-A")
    se.putFile({LFN: makeFile(tmp_path / "f1", b"x")})
    assert se.removeFile([LFN, LFN + "-absent"])["Value"]["Successful"] == {LFN: True, LFN + "-absent": True}
    assert se.createDirectory("/dirac/new/dir")["Value"]["Successful"] == {"/dirac/new/dir": True}
    assert "not empty" in se.removeDirectory("/dirac/new")["Value"]["Failed"]["/dirac/new"]
    assert se.removeDirectory("/dirac/new", recursive=True)["Value"]["Successful"]["/dirac/new"]["FilesRemoved"] == 0


def test_accessNotActive_failsTheWholeCall_withTheReason(fileSEs, tmp_path) -> None:
    gConfig.initialize(options={"/Resources/StorageElements/SE-A/WriteAccess": "InActive"})
    se = StorageElement("SE-A")
    result = se.putFile({LFN: makeFile(tmp_path / "f1", b"x")})
    assert not result["OK"] and "WriteAccess is InActive" in result["Message"]
    assert se.status() == {"Read": True, "Write": False, "Remove": True}


def test_unknownSE_andUnknownPlugin_areConfigurationErrors(fileSEs) -> None:
    assert "no Storage Element Nowhere" in StorageElement("Nowhere").exists(LFN)["Message"]
    gConfig.initialize(options={"/Resources/StorageElements/Odd/Weird/Path": "/tmp"})
    assert "unknown storage plug-in Weird" in StorageElement("Odd").exists(LFN)["Message"]


def test_stoppedStorage_missingDirectory_isAClearPerFileError(fileSEs, addFileSE, tmp_path) -> None:
    addFileSE("SE-Gone", tmp_path / "unmounted")
    result = StorageElement("SE-Gone").putFile({LFN: makeFile(tmp_path / "f1", b"x")})
    assert "SE-Gone is not available" in result["Value"]["Failed"][LFN]


def test_fullDisk_onARealSmallFilesystem_isAClearErrorAndLeavesNothing(fileSEs, addFileSE, tmp_path) -> None:
    with smallFilesystem(tmp_path / "tiny", "256k") as tiny:
        addFileSE("SE-Tiny", tiny)
        result = StorageElement("SE-Tiny").putFile({LFN: makeFile(tmp_path / "big", os.urandom(400 * 1024))})
        assert "no space left on SE-Tiny" in result["Value"]["Failed"][LFN]
        assert not (tiny / LFN.lstrip("/")).exists()


def test_fullDisk_ENOSPC_fromTheKernelWhileWriting_isStorageFull_andTheStagedCopyIsGone(tmp_path) -> None:
    with smallFilesystem(tmp_path / "tiny", "256k") as tiny:
        area = DiskArea(tiny, "SE-Tiny")
        with open(makeFile(tmp_path / "big", os.urandom(400 * 1024)), "rb") as source:
            with pytest.raises(StorageFull, match="no space left on SE-Tiny while writing") as raised:
                area.put(source, LFN)  # size unknown: no early check, the kernel says ENOSPC
        assert raised.value.errno == errno.ENOSPC
        assert not (tiny / LFN.lstrip("/")).exists()
        assert list((tiny / ".staging").iterdir()) == []
