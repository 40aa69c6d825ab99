"""The WebDAV plug-in's parsing (RFC 3230 digests, RFC 4918 multistatus) and configuration checks; the
transfers themselves are tested on a real server in tests/integration/test_DMS_WebDAV.py."""

from __future__ import annotations

import datetime

import pytest

from dirac.Resources.Storage.StorageBase import StorageError
from dirac.Resources.Storage.WebDAVStorage import WebDAVStorage, digestAdler32, parseMultistatus

MULTISTATUS = b"""<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:lp1="DAV:">
 <D:response><D:href>/store/dir/</D:href>
  <D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype>
   <lp1:getlastmodified>Mon, 23 Nov 2026 14:50:44 GMT</lp1:getlastmodified></D:prop>
   <D:status>HTTP/1.1 200 OK</D:status></D:propstat>
  <D:propstat><D:prop><D:getcontentlength/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
 </D:response>
 <D:response><D:href>https://dav.example.org/store/dir/a%20file.bin</D:href>
  <D:propstat><D:prop><lp1:resourcetype/><lp1:getcontentlength>1234</lp1:getcontentlength></D:prop>
   <D:status>HTTP/1.1 200 OK</D:status></D:propstat>
 </D:response>
</D:multistatus>"""


def test_digestAdler32_readsTheAdler32OfAnRFC3230Header_caseInsensitive_amongOthers() -> None:
    assert digestAdler32("adler32=062c0215") == "062c0215"
    assert digestAdler32("MD5=HUXZLQLMuI/KZ5KDcJPcOA==, ADLER32=62C0215") == "062c0215"
    assert digestAdler32("md5=HUXZLQLMuI/KZ5KDcJPcOA==") is None
    assert digestAdler32(None) is None
    assert digestAdler32("adler32=not-hex") is None


def test_parseMultistatus_givesPathsUnquoted_directories_sizes_and_dates() -> None:
    directory, file = parseMultistatus(MULTISTATUS)
    assert directory == {"Path": "/store/dir", "Directory": True, "File": False, "Size": 0,
                         "ModificationDate": datetime.datetime(2026, 11, 23, 14, 50, 44, tzinfo=datetime.UTC)}
    assert file == {"Path": "/store/dir/a file.bin", "Directory": False, "File": True, "Size": 1234}


def test_parseMultistatus_refusesWhatIsNotXML() -> None:
    with pytest.raises(StorageError, match="malformed WebDAV multistatus"):
        parseMultistatus(b"<html>oops")


def test_urls_followDIRACsLayout_andTheTLSFamilyOfTheConfiguredProtocol() -> None:
    plugin = WebDAVStorage("SE", {"Host": "dav.example.org", "Port": "2880", "WSUrl": "/webdav", "Path": "/vo/data"})
    assert plugin.getURL("/vo/user/f.txt") == "https://dav.example.org:2880/webdav/vo/data/vo/user/f.txt"
    assert plugin.getURL("/f", "davs") == "davs://dav.example.org:2880/webdav/vo/data/f"
    assert plugin._url("/a b") == "https://dav.example.org:2880/webdav/vo/data/a%20b"
    with pytest.raises(StorageError, match="serves https/davs here, not http"):
        plugin.getURL("/f", "http")
    with pytest.raises(Exception, match="not a valid storage path"):
        plugin.getURL("/a/../b")


@pytest.mark.parametrize(("parameters", "message"), [
    ({"Host": "h", "Protocol": "gsiftp"}, "Protocol must be one of https, davs, http, dav"),
    ({"Protocol": "https"}, "has no Host"),
    ({"Host": "h", "ChecksumMode": "Never"}, "ChecksumMode must be Auto or ReadBack"),
    ({"Host": "h", "Timeout": "soon"}, "Timeout must be a number of seconds, not 'soon'"),
])
def test_aBadConfiguration_isAClearError(parameters: dict, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        WebDAVStorage("SE", parameters)
