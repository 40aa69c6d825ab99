# ruff: noqa: F811  (pytest fixtures imported from test_DMS_StorageElement are parameters here)
"""Storage Elements on real XRootD servers (Debian's xrootd 5.5 of tests/servers/xrootd.sh, GSI with a host
certificate of the grid's CA, the X509 proxies of the grid's users) with the real File Catalog of the grid.

SEs on those servers: XROOT-SE (``/store`` of the GSI server: read-write, server-side Adler32),
XROOT-ReadBack-SE (the same files, checksums read back by the client), XROOT-ReadOnly-SE (``/readonly``:
writes "not authorized" by the server's authorization database) and XROOT-Anon-SE (the anonymous, read-only
server). Fails (not skips) when CI=true and the servers cannot start.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.Resources.Storage.StorageElement import StorageElement
from dirac.Resources.Storage.XROOTStorage import XROOTStorage
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import EXIT_DONE
from tests.system.gridtools import runningServer, serverScript
from tests.unit.Resources.Storage.conftest import smallFilesystem

# the fixtures area (a fresh directory in bob's home) and data (a 3 MiB file) of the DIP Storage Element tests
from .test_DMS_StorageElement import area, asBob, assertDamagedCopyRefusedThenRemoved, data  # noqa: F401

# the WMS pieces of the data-aware job tests: the grid with a pilot proxy, submission through the real
# optimizers and a pilot's match, dirac-jobwrapper run with bob's proxy
from .test_WMS_JobWrapper import ok, wms  # noqa: F401
from .test_WMS_JobWrapperData import parameters, readByProtocol, runAsBob, submitOptimizeAndMatch

SES = {"XROOT-SE": ("XROOTD_PORT", "/store", "Auto"), "XROOT-ReadBack-SE": ("XROOTD_PORT", "/store", "ReadBack"),
       "XROOT-ReadOnly-SE": ("XROOTD_PORT", "/readonly", "Auto"),
       "XROOT-Anon-SE": ("XROOTD_ANON_PORT", "/store", "Auto")}


@pytest.fixture(scope="module")
def xrootd(sqliteGrid) -> Iterator[dict[str, str]]:  # noqa: ANN001
    """XRootD servers of this module with a host certificate of the grid's CA; their state in a directory of
    their own (reachable by the server's user, unlike pytest's), so test sessions running at once do not meet."""
    state = Path(tempfile.mkdtemp(prefix="dirac-seed-xrootd-"))
    state.chmod(0o755)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DIRAC_TEST_XROOTD_CA", str(sqliteGrid.instance.caDir))
            patch.setenv("DIRAC_TEST_XROOTD_DIR", str(state))
            patch.delenv("DIRAC_TEST_XROOTD_PORT", raising=False)
            patch.delenv("DIRAC_TEST_XROOTD_ANON_PORT", raising=False)
            with runningServer("xrootd") as settings:
                yield settings
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def ses(grid, xrootd) -> dict[str, tuple[str, str, str]]:  # noqa: ANN001
    """The XROOT SEs in this client's CS, with short timeouts."""
    options = {}
    for name, (port, location, mode) in SES.items():
        section = f"/Resources/StorageElements/{name}/XROOT"
        options.update({f"{section}/Host": xrootd["XROOTD_HOST"], f"{section}/Port": xrootd[port],
                        f"{section}/Path": location, f"{section}/ChecksumMode": mode, f"{section}/Timeout": "20"})
    gConfig.initialize(options=options)
    return SES


def onServer(xrootd: dict[str, str], location: str, lfn: str) -> Path:
    return Path(xrootd["XROOTD_ROOT"]) / location.strip("/") / lfn.lstrip("/")


def published(xrootd: dict[str, str], location: str, lfn: str, source: Path) -> Path:
    """A file put in place on the server's disk by the site (as the server's user)."""
    path = onServer(xrootd, location, lfn)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    shutil.chown(path.parent, xrootd["XROOTD_USER"])
    shutil.chown(path, xrootd["XROOTD_USER"])
    return path


@pytest.mark.parametrize("seName", ["XROOT-SE", "XROOT-ReadBack-SE"])
def test_storageElement_put_exists_size_metadata_list_get_remove(grid, xrootd, ses, area, data, tmp_path,
                                                                  seName) -> None:
    se = StorageElement(seName, **asBob(grid))
    lfn, other = f"{area}/sub/data.bin", f"{area}/small.txt"
    (tmp_path / "small.txt").write_bytes(b"hello")
    assert se.putFile({lfn: data, other: tmp_path / "small.txt"}) == {
        "OK": True, "Value": {"Successful": {lfn: data.stat().st_size, other: 5}, "Failed": {}}}
    assert onServer(xrootd, "/store", lfn).read_bytes() == data.read_bytes()
    assert se.exists([lfn, f"{area}/absent"])["Value"]["Successful"] == {lfn: True, f"{area}/absent": False}
    assert se.getFileSize(lfn)["Value"]["Successful"] == {lfn: data.stat().st_size}
    meta = se.getFileMetadata(lfn)["Value"]["Successful"][lfn]
    assert (meta["Size"], meta["Checksum"], meta["File"]) == (data.stat().st_size, fileAdler32(data), True)
    assert "no such file or directory on " + seName in se.getFileMetadata(f"{area}/absent")["Value"]["Failed"][
        f"{area}/absent"]

    listing = se.listDirectory(area)["Value"]["Successful"][area]
    assert list(listing["SubDirs"]) == [f"{area}/sub"]
    assert {name: entry["Size"] for name, entry in listing["Files"].items()} == {other: 5}
    assert list(se.listDirectory(f"{area}/sub")["Value"]["Successful"][f"{area}/sub"]["Files"]) == [lfn]
    assert list(os.listdir(onServer(xrootd, "/store", lfn).parent)) == ["data.bin"]  # no partial upload left

    url = se.getURL(lfn)["Value"]["Successful"][lfn]
    assert url == f"root://localhost:{xrootd['XROOTD_PORT']}//store{lfn}"
    assert se.getURL(lfn, "xroot")["Value"]["Successful"][lfn] == url

    (tmp_path / "out").mkdir()
    got = se.getFile(lfn, tmp_path / "out", checksums={lfn: fileAdler32(data)})
    assert got["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert (tmp_path / "out" / "data.bin").read_bytes() == data.read_bytes()

    assert se.removeFile([lfn, lfn])["Value"]["Successful"] == {lfn: True}  # absent already: still success
    assert not onServer(xrootd, "/store", lfn).exists()
    assert "directory not empty" in se.removeDirectory(area)["Value"]["Failed"][area]
    removed = se.removeDirectory(area, recursive=True)["Value"]["Successful"][area]
    assert removed == {"FilesRemoved": 1, "SizeRemoved": 5}
    assert se.exists(area)["Value"]["Successful"] == {area: False}


def test_checksums_serverAdler32_andReadBack_agree_readBackSeesTheBytes(grid, xrootd, ses, area, data) -> None:
    """The server keeps the Adler32 it computed (in an extended attribute, keyed by the file's mtime): a copy
    changed behind its back with the mtime put back still shows the old value; ReadBack reads the bytes."""
    lfn = f"{area}/cks.bin"
    assert StorageElement("XROOT-SE", **asBob(grid)).putFile({lfn: data})["Value"]["Successful"] == {
        lfn: data.stat().st_size}
    server = XROOTStorage("XROOT-SE", {"Host": "localhost", "Port": xrootd["XROOTD_PORT"], "Path": "/store"},
                          **asBob(grid))
    readBack = XROOTStorage("XROOT-SE", {"Host": "localhost", "Port": xrootd["XROOTD_PORT"], "Path": "/store",
                                         "ChecksumMode": "ReadBack"}, **asBob(grid))
    assert server.getChecksum(lfn) == readBack.getChecksum(lfn) == fileAdler32(data)
    stored = onServer(xrootd, "/store", lfn)
    before = stored.stat()
    with open(stored, "r+b") as out:
        out.write(b"\x00\x01\x02")
    os.utime(stored, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert readBack.getChecksum(lfn) == fileAdler32(stored) != fileAdler32(data)
    assert server.getChecksum(lfn) == fileAdler32(data)  # the server's answer: Auto did not read the file


def test_uploadWithAWrongChecksum_isRefused_andNothingIsLeftOnTheServer(grid, xrootd, ses, area, data) -> None:
    lfn = f"{area}/bad.bin"
    result = StorageElement("XROOT-SE", **asBob(grid)).putFile({lfn: data}, checksums={lfn: "0badc0de"})
    assert result["OK"], result
    assert f"the stored copy has Adler32 {fileAdler32(data)}, 0badc0de expected" in result["Value"]["Failed"][lfn]
    assert list(onServer(xrootd, "/store", lfn).parent.iterdir()) == []  # neither the file nor its partial upload
    failed = DataManager(**asBob(grid)).putAndRegister(lfn, data, "XROOT-SE", checksum="0badc0de")
    assert lfn in failed["Value"]["Failed"], failed
    assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False


def test_dataManager_putAndRegister_getFile_replicateAndRegister_removeFile_withTheRealCatalog(
        grid, xrootd, ses, area, data, tmp_path) -> None:
    dm = DataManager(**asBob(grid))
    catalog = FileCatalogClient(**asBob(grid))
    lfn = f"{area}/dm.bin"
    put = dm.putAndRegister(lfn, data, "XROOT-SE")
    assert lfn in put["Value"]["Successful"], put
    meta = catalog.getFileMetadata(lfn)["Value"]["Successful"][lfn]
    assert (meta["Checksum"], meta["Size"]) == (fileAdler32(data), data.stat().st_size)
    assert dm.getReplicas(lfn)["Value"]["Successful"][lfn] == {
        "XROOT-SE": f"root://localhost:{xrootd['XROOTD_PORT']}//store{lfn}"}

    # from the XRootD SE to the one-box SE and back
    assert lfn in dm.replicateAndRegister(lfn, "OneBox-SE")["Value"]["Successful"]
    dm.removeReplica("XROOT-SE", lfn)
    assert not onServer(xrootd, "/store", lfn).exists()
    assert lfn in dm.replicateAndRegister(lfn, "XROOT-SE", sourceSE="OneBox-SE")["Value"]["Successful"]
    assert set(dm.getReplicas(lfn)["Value"]["Successful"][lfn]) == {"XROOT-SE", "OneBox-SE"}
    got = dm.getFile(lfn, tmp_path, sourceSE="XROOT-SE")
    assert got["Value"]["Successful"] == {lfn: str(tmp_path / "dm.bin")}
    assert (tmp_path / "dm.bin").read_bytes() == data.read_bytes()

    assertDamagedCopyRefusedThenRemoved(dm, lfn, "XROOT-SE", onServer(xrootd, "/store", lfn), tmp_path / "bad")


def test_writesTheServerDoesNotAuthorize_giveAClearError_andNothingIsRegistered(grid, xrootd, ses, area, data,
                                                                                tmp_path) -> None:
    lfn = f"{area}/refused.bin"
    failed = DataManager(**asBob(grid)).putAndRegister(lfn, data, "XROOT-ReadOnly-SE")["Value"]["Failed"][lfn]
    assert "Permission denied" in failed and "XRootD 3010 from XROOT-ReadOnly-SE" in failed, failed
    assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
    assert not onServer(xrootd, "/readonly", lfn).parent.exists()
    # reads are allowed there: a file the site put in place can be read, not removed
    path = published(xrootd, "/readonly", lfn, data)
    readOnly = StorageElement("XROOT-ReadOnly-SE", **asBob(grid))
    assert readOnly.getFile(lfn, tmp_path)["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert "Permission denied" in readOnly.removeFile(lfn)["Value"]["Failed"][lfn]
    assert path.exists()


def test_noProxy_orAProxyOfAnotherCA_isRefused_withAClearError(grid, xrootd, ses, area, tmp_path) -> None:
    missing = StorageElement("XROOT-SE", proxyLocation=str(tmp_path / "absent.pem"), useCertificates=False)
    failed = missing.exists(area)["Value"]["Failed"][area]
    assert "authentication refused by XROOT-SE" in failed and "no proxy found at" in failed, failed

    stranger = CertificateAuthority(tmp_path / "other-ca")
    stranger.create(subject="/O=Elsewhere/CN=Other CA")
    cert, key = stranger.issueUserCertificate("/O=Elsewhere/CN=mallory")
    proxy = tmp_path / "mallory.pem"
    X509Chain.fromPEM(cert + key).generateProxy(3600).dumpToFile(str(proxy))
    failed = StorageElement("XROOT-SE", proxyLocation=str(proxy), useCertificates=False).exists(area)
    assert "authentication refused by XROOT-SE" in failed["Value"]["Failed"][area], failed


def test_theHostCertificate_isUsedThroughAProxyOfIt(grid, xrootd, ses, area, data) -> None:
    gConfig.initialize(options={"/DIRAC/Security/CertFile": str(grid.instance.hostCert),
                                "/DIRAC/Security/KeyFile": str(grid.instance.hostCert.with_name("hostkey.pem"))})
    lfn = f"{area}/by-host.bin"
    se = StorageElement("XROOT-SE", useCertificates=True)
    assert se.putFile({lfn: data})["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert "login as" in Path(xrootd["XROOTD_LOG"]).read_text()
    assert se.removeFile(lfn)["Value"]["Successful"] == {lfn: True}


def test_anonymousDoor_readsWithoutAProxy_andRefusesWrites(grid, xrootd, ses, area, data, tmp_path) -> None:
    lfn = f"{area}/public.bin"
    published(xrootd, "/store", lfn, data)
    anonymous = StorageElement("XROOT-Anon-SE", proxyLocation=str(tmp_path / "none.pem"), useCertificates=False)
    assert anonymous.getFileMetadata(lfn)["Value"]["Successful"][lfn]["Checksum"] == fileAdler32(data)
    assert anonymous.getFile(lfn, tmp_path)["Value"]["Successful"] == {lfn: data.stat().st_size}
    failed = anonymous.putFile({f"{area}/new.bin": data})["Value"]["Failed"][f"{area}/new.bin"]
    assert "Permission denied (XROOT-Anon-SE is read-only here" in failed, failed


def test_fullFilesystem_onARealSmallTmpfs_givesAClearError_andNothingHalfRegistered(grid, xrootd, ses, area,
                                                                                      data) -> None:
    lfn = f"{area}/tiny/big.bin"
    tiny = onServer(xrootd, "/store", lfn).parent
    with smallFilesystem(tiny, "1m"):
        shutil.chown(tiny, xrootd["XROOTD_USER"])
        failed = DataManager(**asBob(grid)).putAndRegister(lfn, data, "XROOT-SE")["Value"]["Failed"][lfn]
        assert "no space left on XROOT-SE" in failed, failed
        assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
        assert list(tiny.iterdir()) == []


def test_stoppedServer_givesAClearPerFileError_andNothingIsRegistered(grid, xrootd, ses, area, data) -> None:
    lfns = [f"{area}/stopped-1.bin", f"{area}/stopped-2.bin"]
    dm = DataManager(**asBob(grid))
    assert serverScript("xrootd", "stop").returncode == 0
    try:
        started = time.monotonic()
        failed = dm.putAndRegister(lfns[0], data, "XROOT-SE")["Value"]["Failed"]
        gone = StorageElement("XROOT-SE", **asBob(grid)).exists(lfns)["Value"]["Failed"]
        assert time.monotonic() - started < 30
        for reason in (failed[lfns[0]], *gone.values()):
            assert "XROOT-SE is not available" in reason, reason
        assert set(gone) == set(lfns)
        assert FileCatalogClient(**asBob(grid)).exists(lfns[0])["Value"]["Successful"][lfns[0]] is False
    finally:
        restarted = serverScript("xrootd", "start")
        assert restarted.returncode == 0, restarted.stderr
    assert not onServer(xrootd, "/store", lfns[0]).exists()


def test_aServerThatHangs_isGivenUpAfterTheTimeout(grid, xrootd, ses, area) -> None:
    pid = int(serverScript("xrootd", "status").stdout.split("XROOTD_PID=")[1].split()[0])
    se = StorageElement("XROOT-SE", **asBob(grid))
    se.plugins[0].timeout = 3
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        failed = se.exists(area)["Value"]["Failed"][area]
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "XROOT-SE" in failed and ("not available" in failed or "did not answer" in failed), failed
    assert elapsed < 20, elapsed


@pytest.mark.timeout(300)
def test_aJobWhoseOutputSEIsTheXRootDSE_storesItsOutputDataThere(wms, xrootd, ses, area, tmp_path) -> None:
    """Bob's job (input on OneBox-SE, placed at the one-box site by the real optimizers, run by dirac-jobwrapper
    with bob's proxy) names XROOT-SE as OutputSE: its output lands on the XRootD server and in the catalog."""
    dm = DataManager(**asBob(wms))
    for name, text in (("input.txt", "some input\n"), ("lib.txt", "a library\n")):
        (tmp_path / name).write_text(text)
        assert f"{area}/{name}" in dm.putAndRegister(f"{area}/{name}", tmp_path / name, "OneBox-SE")["Value"][
            "Successful"]
    match = submitOptimizeAndMatch(wms, tmp_path, area, lfns=["result.dat"], outputSE="XROOT-SE",
                                   outputPath=area.removeprefix("/dirac/user/b/bob") + "/out")
    options = {f"/Resources/StorageElements/XROOT-SE/XROOT/{key}": value for key, value in (
        ("Host", xrootd["XROOTD_HOST"]), ("Port", xrootd["XROOTD_PORT"]), ("Path", "/store"), ("Timeout", "20"))}
    assert runAsBob(wms, match, tmp_path, options) == EXIT_DONE  # the XROOT-SE of the worker node's configuration
    lfn = f"{area}/out/result.dat"
    assert parameters(wms, match["JobID"])["OutputDataSEs"] == f"{lfn}: XROOT-SE"
    assert ok(dm.getReplicas(lfn))["Successful"][lfn] == {
        "XROOT-SE": f"root://localhost:{xrootd['XROOTD_PORT']}//store{lfn}"}
    assert onServer(xrootd, "/store", lfn).read_text() == "SOME INPUT\n"


@pytest.mark.timeout(300)
def test_aJobWithTheProtocolPolicy_readsItsInputDataOnTheXRootDSE_throughItsRootTURL_downloadingNothing(
        wms, xrootd, ses, area, tmp_path) -> None:
    """Bob's job (placed by the real optimizers at the one-box site, whose SEs include XROOT-SE here, and run by
    dirac-jobwrapper with bob's proxy) reads its InputData with ``xrdcp root://... -`` and the proxy of its
    environment: the GSI server refuses anyone without a proxy of the grid's CA."""
    lfn, reported = readByProtocol(wms, tmp_path, area, "XROOT-SE", {
        f"/Resources/StorageElements/XROOT-SE/XROOT/{key}": value for key, value in (
            ("Host", xrootd["XROOTD_HOST"]), ("Port", xrootd["XROOTD_PORT"]), ("Path", "/store"), ("Timeout", "20"))},
        "events on xrootd\n")
    turl = f"root://localhost:{xrootd['XROOTD_PORT']}//store{lfn}"
    assert reported["StandardOutput"].splitlines() == [f"{turl}: events on xrootd"]
    assert reported["InputDataByProtocol"] == f"Resolved 1 LFN(s) by protocol:\n{lfn}: XROOT-SE (root)"
    assert (tmp_path / "node" / "input_data.txt").read_text() == f"{lfn} {turl}\n"
