# ruff: noqa: F811  (pytest fixtures imported from test_DMS_StorageElement are parameters here)
"""Storage Elements on a real WebDAV server (Apache httpd + mod_dav_fs of tests/servers/webdav.sh, its TLS
certificate from the grid's CA, X509 proxies as client certificates) with the real File Catalog of the grid.

Three SEs on that server: WebDAV-SE (``/store``: no RFC 3230 digest, so checksums are computed by reading
files back), WebDAV-Digest-SE (``/digest``: the same files, with ``Digest: adler32=...`` answered) and
WebDAV-ReadOnly-SE (``/readonly``: writes refused with 403); WebDAV-Token-SE (``/token``: the files
of ``/store`` for bearer tokens of the server's test issuer, checked by mod_auth_openidc). Which checksum path was taken is read in
the server's access log. Fails (not skips) when CI=true and the server cannot start.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.Resources.Storage.StorageElement import StorageElement
from dirac.Resources.Storage.WebDAVStorage import WebDAVStorage
from tests.system.gridtools import runningServer, serverScript
from tests.unit.Resources.Storage.conftest import smallFilesystem

# the fixtures area (a fresh directory in bob's home) and data (a 3 MiB file) of the DIP Storage Element tests
from .test_DMS_StorageElement import area, asBob, assertDamagedCopyRefusedThenRemoved, data  # noqa: F401

# the WMS pieces of the data-aware job tests: the grid with a pilot proxy, submission through the real
# optimizers and a pilot's match, dirac-jobwrapper run with bob's proxy
from .test_WMS_JobWrapper import wms  # noqa: F401
from .test_WMS_JobWrapperData import readByProtocol

SES = {"WebDAV-SE": "/store", "WebDAV-Digest-SE": "/digest", "WebDAV-ReadOnly-SE": "/readonly",
       "WebDAV-Token-SE": "/token"}


@pytest.fixture(scope="module")
def webdav(sqliteGrid) -> Iterator[dict[str, str]]:  # noqa: ANN001
    """A WebDAV server of this module, with a host certificate of the grid's CA; its state in a directory
    of its own (readable by the server's user, unlike pytest's), so test sessions running at once do not meet."""
    state = Path(tempfile.mkdtemp(prefix="dirac-seed-webdav-"))
    state.chmod(0o755)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DIRAC_TEST_WEBDAV_CA", str(sqliteGrid.instance.caDir))
            patch.setenv("DIRAC_TEST_WEBDAV_DIR", str(state))
            patch.delenv("DIRAC_TEST_WEBDAV_PORT", raising=False)
            with runningServer("webdav") as settings:
                yield settings
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def ses(grid, webdav) -> dict[str, str]:  # noqa: ANN001
    """The WebDAV SEs in this client's CS; {name: location on the server}."""
    options = {}
    for name, location in SES.items():
        section = f"/Resources/StorageElements/{name}/WebDAV"
        options.update({f"{section}/Protocol": "https", f"{section}/Host": webdav["WEBDAV_HOST"],
                        f"{section}/Port": webdav["WEBDAV_PORT"], f"{section}/Path": location})
    gConfig.initialize(options=options)
    return SES


def onServer(webdav: dict[str, str], location: str, lfn: str) -> Path:
    """The file the server keeps for ``lfn`` of a location (/digest serves the files of /store)."""
    directory = "store" if location in ("/store", "/digest", "/token") else location.strip("/")
    return Path(webdav["WEBDAV_ROOT"]) / directory / lfn.lstrip("/")


def accessLog(webdav: dict[str, str], since: int = 0, until: str = "") -> str:
    """The server's access log from byte ``since``; waits (5 s at most) for a line with ``until``: httpd writes
    a request's line after its answer."""
    deadline = time.monotonic() + 5
    while True:
        text = Path(webdav["WEBDAV_ACCESS_LOG"]).read_text()[since:]
        if until in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


@pytest.mark.parametrize("seName", ["WebDAV-SE", "WebDAV-Digest-SE"])
def test_storageElement_put_exists_size_metadata_list_get_remove(grid, webdav, ses, area, data, tmp_path,
                                                                  seName) -> None:
    se = StorageElement(seName, **asBob(grid))
    lfn, other = f"{area}/sub/data.bin", f"{area}/small.txt"
    (tmp_path / "small.txt").write_bytes(b"hello")
    assert se.putFile({lfn: data, other: tmp_path / "small.txt"}) == {
        "OK": True, "Value": {"Successful": {lfn: data.stat().st_size, other: 5}, "Failed": {}}}
    assert onServer(webdav, ses[seName], lfn).read_bytes() == data.read_bytes()
    assert se.exists([lfn, f"{area}/absent"])["Value"]["Successful"] == {lfn: True, f"{area}/absent": False}
    assert se.getFileSize(lfn)["Value"]["Successful"] == {lfn: data.stat().st_size}
    meta = se.getFileMetadata(lfn)["Value"]["Successful"][lfn]
    assert (meta["Size"], meta["Checksum"], meta["File"]) == (data.stat().st_size, fileAdler32(data), True)
    assert "absent" in se.getFileMetadata(f"{area}/absent")["Value"]["Failed"][f"{area}/absent"]

    listing = se.listDirectory(area)["Value"]["Successful"][area]
    assert list(listing["SubDirs"]) == [f"{area}/sub"]
    assert {name: entry["Size"] for name, entry in listing["Files"].items()} == {other: 5}
    assert list(se.listDirectory(f"{area}/sub")["Value"]["Successful"][f"{area}/sub"]["Files"]) == [lfn]

    url = se.getURL(lfn)["Value"]["Successful"][lfn]
    assert url == f"https://127.0.0.1:{webdav['WEBDAV_PORT']}{ses[seName]}{lfn}"
    assert se.getURL(lfn, "davs")["Value"]["Successful"][lfn] == url.replace("https://", "davs://")

    (tmp_path / "out").mkdir()
    got = se.getFile(lfn, tmp_path / "out", checksums={lfn: fileAdler32(data)})
    assert got["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert (tmp_path / "out" / "data.bin").read_bytes() == data.read_bytes()

    assert se.removeFile([lfn, lfn])["Value"]["Successful"] == {lfn: True}  # absent already: still success
    assert not onServer(webdav, ses[seName], lfn).exists()
    removed = se.removeDirectory(area, recursive=True)["Value"]["Successful"][area]
    assert removed == {"FilesRemoved": 1, "SizeRemoved": 5}
    assert se.exists(area)["Value"]["Successful"] == {area: False}


def test_checksums_useTheServerDigest_whenOffered_elseReadTheFileBack(grid, webdav, ses, area, data) -> None:
    for seName, location in (("WebDAV-Digest-SE", "/digest"), ("WebDAV-SE", "/store")):
        lfn = f"{area}/{seName}.bin"
        before = len(accessLog(webdav))
        assert StorageElement(seName, **asBob(grid)).putFile({lfn: data})["Value"]["Successful"] == {
            lfn: data.stat().st_size}
        log = accessLog(webdav, before, f'"MOVE {location}{area}/')
        requests = [line for line in log.splitlines() if f"{location}{area}/" in line]
        partialReads = [line for line in requests if '"GET ' in line and ".part" in line]
        digestAsks = [line for line in requests if '"HEAD ' in line and ".part" in line]
        assert '"MOVE ' in "\n".join(requests) and digestAsks, requests
        if location == "/digest":
            assert partialReads == [], requests  # the server's Digest header was used
        else:
            assert len(partialReads) == 1, requests  # no digest: the stored file was read back once
    forced = WebDAVStorage("WebDAV-Digest-SE", {"Host": webdav["WEBDAV_HOST"], "Port": webdav["WEBDAV_PORT"],
                                                "Path": "/digest", "ChecksumMode": "ReadBack"}, **asBob(grid))
    before = len(accessLog(webdav))
    assert forced.getChecksum(f"{area}/WebDAV-SE.bin") == fileAdler32(data)
    assert f'"GET /digest{area}/WebDAV-SE.bin' in accessLog(webdav, before, '"GET /digest')


@pytest.mark.parametrize("seName", ["WebDAV-SE", "WebDAV-Digest-SE"])
def test_uploadWithAWrongChecksum_isDetected_andNothingIsLeftOnTheServer(grid, webdav, ses, area, data,
                                                                         seName) -> None:
    lfn = f"{area}/bad.bin"
    result = StorageElement(seName, **asBob(grid)).putFile({lfn: data}, checksums={lfn: "0badc0de"})
    assert result["OK"], result
    assert f"the stored copy has Adler32 {fileAdler32(data)}, 0badc0de expected" in result["Value"]["Failed"][lfn]
    directory = onServer(webdav, ses[seName], lfn).parent
    assert list(directory.iterdir()) == []  # neither the file nor its partial upload


def test_dataManager_putAndRegister_getFile_removeFile_withTheRealCatalog(grid, webdav, ses, area, data,
                                                                          tmp_path) -> None:
    dm = DataManager(**asBob(grid))
    catalog = FileCatalogClient(**asBob(grid))
    lfn = f"{area}/dm.bin"
    put = dm.putAndRegister(lfn, data, "WebDAV-SE")
    assert lfn in put["Value"]["Successful"], put
    meta = catalog.getFileMetadata(lfn)["Value"]["Successful"][lfn]
    assert (meta["Checksum"], meta["Size"]) == (fileAdler32(data), data.stat().st_size)
    assert dm.getReplicas(lfn)["Value"]["Successful"][lfn] == {
        "WebDAV-SE": f"https://127.0.0.1:{webdav['WEBDAV_PORT']}/store{lfn}"}

    assert lfn in dm.replicateAndRegister(lfn, "OneBox-SE")["Value"]["Successful"]
    got = dm.getFile(lfn, tmp_path, sourceSE="WebDAV-SE")
    assert got["Value"]["Successful"] == {lfn: str(tmp_path / "dm.bin")}
    assert (tmp_path / "dm.bin").read_bytes() == data.read_bytes()

    assertDamagedCopyRefusedThenRemoved(dm, lfn, "WebDAV-SE", onServer(webdav, "/store", lfn), tmp_path / "bad")


def test_writesRefusedWith403_giveAClearError_andNothingIsRegistered(grid, webdav, ses, area, data,
                                                                      tmp_path) -> None:
    lfn = f"{area}/refused.bin"
    failed = DataManager(**asBob(grid)).putAndRegister(lfn, data, "WebDAV-ReadOnly-SE")["Value"]["Failed"][lfn]
    assert "Permission denied (HTTP 403 from WebDAV-ReadOnly-SE)" in failed, failed
    assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
    assert not onServer(webdav, "/readonly", lfn).parent.exists()
    # reads are allowed there: a file the site put in place can be read
    published = onServer(webdav, "/readonly", lfn)
    published.parent.mkdir(parents=True)
    shutil.copyfile(data, published)
    readOnly = StorageElement("WebDAV-ReadOnly-SE", **asBob(grid))
    assert readOnly.getFile(lfn, tmp_path)["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert "Permission denied" in readOnly.removeFile(lfn)["Value"]["Failed"][lfn]
    assert published.exists()


def test_insufficientStorage507_onARealSmallFilesystem_givesAClearError(grid, webdav, ses, area, data) -> None:
    lfn = f"{area}/tiny/big.bin"
    tiny = onServer(webdav, "/store", lfn).parent
    with smallFilesystem(tiny, "1m"):
        shutil.chown(tiny, webdav["WEBDAV_USER"])
        failed = DataManager(**asBob(grid)).putAndRegister(lfn, data, "WebDAV-SE")["Value"]["Failed"][lfn]
        assert "no space left (Insufficient Storage) (HTTP 507 from WebDAV-SE)" in failed, failed
        assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
        assert list(tiny.iterdir()) == []


def test_aClientCertificateOfAnotherCA_isRefusedWithAClearError(grid, webdav, ses, area, tmp_path) -> None:
    stranger = CertificateAuthority(tmp_path / "other-ca")
    stranger.create(subject="/O=Elsewhere/CN=Other CA")
    cert, key = stranger.issueUserCertificate("/O=Elsewhere/CN=mallory")
    proxy = tmp_path / "mallory.pem"
    X509Chain.fromPEM(cert + key).generateProxy(3600).dumpToFile(str(proxy))
    se = StorageElement("WebDAV-SE", proxyLocation=str(proxy), useCertificates=False)
    failed = se.exists(area)["Value"]["Failed"][area]
    assert "WebDAV-SE" in failed and ("TLS" in failed or "not available" in failed), failed


def test_stoppedServer_givesAClearPerFileError_andNothingIsRegistered(grid, webdav, ses, area, data) -> None:
    lfn = f"{area}/stopped.bin"
    dm = DataManager(**asBob(grid))
    assert serverScript("webdav", "stop").returncode == 0
    try:
        failed = dm.putAndRegister(lfn, data, "WebDAV-SE")["Value"]["Failed"][lfn]
        assert "WebDAV-SE is not available" in failed and "Connection refused" in failed, failed
        assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
    finally:
        started = serverScript("webdav", "start")
        assert started.returncode == 0, started.stderr
    assert not onServer(webdav, "/store", lfn).exists()


def bearerToken(webdav: dict[str, str], **claims: object) -> str:
    """A JWT of the test server's issuer (RS256 with its key)."""
    now = int(time.time())
    payload = {"iss": webdav["WEBDAV_TOKEN_ISSUER"], "sub": "bob", "aud": "dirac", "iat": now, "exp": now + 600,
               **claims}
    return jwt.encode(payload, Path(webdav["WEBDAV_TOKEN_KEY"]).read_text(), algorithm="RS256",
                      headers={"kid": webdav["WEBDAV_TOKEN_KID"]})


def test_bearerToken_authenticates_withoutACertificate_andBadTokensAreRefused(grid, webdav, ses, area, data,
                                                                               tmp_path) -> None:
    lfn = f"{area}/token.bin"
    se = StorageElement("WebDAV-Token-SE", token=bearerToken(webdav))
    assert se.putFile({lfn: data})["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert onServer(webdav, "/token", lfn).read_bytes() == data.read_bytes()
    assert se.getFileMetadata(lfn)["Value"]["Successful"][lfn]["Checksum"] == fileAdler32(data)
    assert se.getFile(lfn, tmp_path)["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert (tmp_path / "data.bin").read_bytes() == data.read_bytes()

    for claims in ({"aud": "someone-else"}, {"exp": int(time.time()) - 60, "iat": int(time.time()) - 600}):
        refused = StorageElement("WebDAV-Token-SE", token=bearerToken(webdav, **claims)).exists(lfn)
        assert "authentication refused (HTTP 401 from WebDAV-Token-SE)" in refused["Value"]["Failed"][lfn], refused
    # the certificate locations do not take tokens
    failed = StorageElement("WebDAV-SE", token=bearerToken(webdav)).removeFile(lfn)["Value"]["Failed"][lfn]
    assert "Permission denied (HTTP 403 from WebDAV-SE)" in failed
    assert se.removeFile(lfn)["Value"]["Successful"] == {lfn: True}
    assert not onServer(webdav, "/token", lfn).exists()


@pytest.mark.timeout(300)
def test_aJobWithTheProtocolPolicy_readsItsInputDataOnTheWebDAVSE_throughItsHttpsTURL_downloadingNothing(
        wms, webdav, ses, area, tmp_path) -> None:
    """Bob's job (placed by the real optimizers at the one-box site, whose SEs include WebDAV-SE here, and run by
    dirac-jobwrapper with bob's proxy) reads its InputData with ``curl https://...`` and the proxy and CAs of its
    environment: the server takes only client certificates of the grid's CA."""
    lfn, reported = readByProtocol(wms, tmp_path, area, "WebDAV-SE", {
        f"/Resources/StorageElements/WebDAV-SE/WebDAV/{key}": value for key, value in (
            ("Protocol", "https"), ("Host", webdav["WEBDAV_HOST"]), ("Port", webdav["WEBDAV_PORT"]), ("Path", "/store"))},
        "events on webdav\n")
    turl = f"https://{webdav['WEBDAV_HOST']}:{webdav['WEBDAV_PORT']}/store{lfn}"
    assert reported["StandardOutput"].splitlines() == [f"{turl}: events on webdav"]
    assert reported["InputDataByProtocol"] == f"Resolved 1 LFN(s) by protocol:\n{lfn}: WebDAV-SE (https)"
