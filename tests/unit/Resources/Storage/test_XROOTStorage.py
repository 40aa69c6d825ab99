"""The XROOT plug-in's reading of xrdfs answers and errors, and its configuration checks; the transfers
themselves are tested on real XRootD servers in tests/integration/test_DMS_XROOT.py."""

from __future__ import annotations

import datetime
import errno

import pytest

from dirac.Core.Utilities.Exceptions import AuthorizationError, NotFound
from dirac.Resources.Storage.StorageBase import ChecksumMismatch, StorageError, StorageFull, StorageUnavailable
from dirac.Resources.Storage.StorageElement import storagePluginClasses
from dirac.Resources.Storage.XROOTStorage import XROOTStorage, parseChecksum, parseListing, parseStat, xrootdError

STAT_FILE = """Path:   /store/a/f.bin
Id:     9504118381018624
Size:   3000000
MTime:  2026-12-06 18:13:50
CTime:  2026-12-06 18:13:51
Flags:  48 (IsReadable|IsWritable)
Mode:   0644
"""
STAT_DIR = STAT_FILE.replace("Size:   3000000", "Size:   4096").replace(
    "48 (IsReadable|IsWritable)", "51 (XBitSet|IsDir|IsReadable|IsWritable)")
LISTING = """-rw-r--r-- xrootd xrootd 3000000 2026-12-06 18:17:09 /store/a/f.bin
-rw-r--r-- xrootd xrootd       5 2026-12-06 18:17:42 /store/a/sp ace.bin
drwxr-x--- xrootd xrootd    4096 2026-12-06 18:17:43 /store/a/sub
"""


def test_parseStat_givesSize_kind_andTheModificationDateInUTC() -> None:
    stat = parseStat(STAT_FILE)
    assert (stat["Size"], stat["File"], stat["Directory"]) == (3000000, True, False)
    assert stat["ModificationDate"] == datetime.datetime(2026, 12, 6, 18, 13, 50).astimezone(datetime.UTC)
    assert parseStat(STAT_DIR)["Directory"] is True and parseStat(STAT_DIR)["Size"] == 0
    with pytest.raises(StorageError, match="unexpected answer of xrdfs stat"):
        parseStat("garbage")


def test_parseListing_keepsNamesWithSpaces_andTellsDirectoriesApart() -> None:
    entries = parseListing(LISTING)
    assert [(e["Path"], e["Size"], e["Directory"]) for e in entries] == [
        ("/store/a/f.bin", 3000000, False), ("/store/a/sp ace.bin", 5, False), ("/store/a/sub", 0, True)]


def test_parseChecksum_readsAlgorithmAndValue() -> None:
    assert parseChecksum("adler32 807ee968\n") == ("adler32", "807ee968")
    with pytest.raises(StorageError):
        parseChecksum("")


@pytest.mark.parametrize(("output", "kind", "words"), [
    ("[ERROR] Server responded with an error: [3011] Unable to locate /x; no such file or directory",
     NotFound, "no such file or directory on SE"),
    ("Run: [ERROR] Server responded with an error: [3010] Unable to create /r/x; permission denied  (destination)",
     AuthorizationError, "Permission denied (Unable to create /r/x; permission denied; XRootD 3010 from SE)"),
    ("[FATAL] Auth failed: No protocols left to try", AuthorizationError, "authentication refused by SE"),
    ("[ERROR] Server responded with an error: [3005] Unable to create /x; file path marked read/only",
     AuthorizationError, "SE is read-only here"),
    ("[ERROR] Server responded with an error: [3009] Unable to write /x; no space left on device",
     StorageFull, "no space left on SE"),
    ("[FATAL] Connection error", StorageUnavailable, "SE is not available (Connection error"),
    ("[ERROR] Operation expired", StorageUnavailable, "SE is not available"),
    ("[ERROR] Server responded with an error: [3019] checksum mismatch", ChecksumMismatch, "checksum mismatch"),
    ("[ERROR] Server responded with an error: [3005] Unable to remove /d; directory not empty", StorageError,
     "directory not empty"),
    ("[ERROR] Server responded with an error: [3012] internal error", StorageError, "internal error (XRootD 3012"),
])
def test_xrootdError_mapsServerCodesAndMessages_toTypedErrorsNamingTheSE(output: str, kind: type, words: str) -> None:
    error = xrootdError("upload of /x to SE", "SE", output)
    assert type(error) is kind
    assert error.message.startswith("upload of /x to SE: ") and words in error.message, error.message
    if words == "directory not empty":
        assert error.errno == errno.ENOTEMPTY


def test_urls_haveTheAbsolutePathAfterADoubleSlash() -> None:
    plugin = XROOTStorage("SE", {"Host": "eos.example.org", "Port": "1094", "Path": "/eos/vo/data"})
    assert plugin.getURL("/vo/user/f.txt") == "root://eos.example.org:1094//eos/vo/data/vo/user/f.txt"
    assert plugin.getURL("/f", "xroot") == "root://eos.example.org:1094//eos/vo/data/f"
    with pytest.raises(StorageError, match="does not speak https"):
        plugin.getURL("/f", "https")
    with pytest.raises(Exception, match="not a valid storage path"):
        plugin.getURL("/a/../b")


@pytest.mark.parametrize(("parameters", "message"), [
    ({"Host": "h", "Protocol": "https"}, "Protocol must be root"),
    ({}, "has no Host"),
    ({"Host": "h", "ChecksumMode": "MD5"}, "ChecksumMode must be Auto or ReadBack"),
    ({"Host": "h", "Timeout": "soon"}, "Timeout must be a number of seconds"),
])
def test_badConfiguration_isAClearError(parameters: dict, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        XROOTStorage("SE", parameters)


def test_plugin_isRegistered_underDIRACsNames() -> None:
    classes = storagePluginClasses()
    assert classes["XROOT"] == classes["GFAL2_XROOT"] == "dirac.Resources.Storage.XROOTStorage:XROOTStorage"
