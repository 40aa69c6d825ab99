"""The S3 plug-in's reading of S3 answers, its signing rules and configuration checks; the transfers themselves
are tested on a real S3 server in tests/integration/test_DMS_S3.py."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument, NotFound
from dirac.Resources.Storage.S3Storage import S3Storage, parseListing, s3Failure
from dirac.Resources.Storage.StorageBase import ChecksumMismatch, StorageError, StorageFull, StorageUnavailable
from dirac.Resources.Storage.StorageElement import storagePluginClasses

LISTING = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>dirac</Name><Prefix>t/</Prefix>
<IsTruncated>true</IsTruncated><NextContinuationToken>abc</NextContinuationToken>
<Contents><Key>t/m.bin</Key><Size>5242980</Size><LastModified>2026-12-06T18:40:01Z</LastModified></Contents>
<Contents><Key>t/folder/</Key><Size>0</Size></Contents>
<CommonPrefixes><Prefix>t/sub/</Prefix></CommonPrefixes></ListBucketResult>"""
KEYS = {"Host": "s3.example.org", "Path": "bucket", "Aws_access_key_id": "AK", "Aws_secret_access_key": "SK"}


def test_parseListing_givesObjects_prefixes_andTheNextToken_skippingFolderMarkers() -> None:
    objects, prefixes, token = parseListing(LISTING)
    assert objects == [{"Key": "t/m.bin", "Size": 5242980,
                        "ModificationDate": datetime.datetime(2026, 12, 6, 18, 40, 1, tzinfo=datetime.UTC)}]
    assert (prefixes, token) == (["t/sub/"], "abc")
    with pytest.raises(StorageError, match="malformed S3 listing"):
        parseListing(b"<html")


@pytest.mark.parametrize(("status", "code", "kind", "words"), [
    (403, "AccessDenied", AuthorizationError, "Permission denied (S3 AccessDenied: no, HTTP 403 from SE)"),
    (403, "SignatureDoesNotMatch", AuthorizationError, "Permission denied"),
    (404, "NoSuchKey", NotFound, "no such file on SE"),
    (400, "BadDigest", ChecksumMismatch, "SE received other bytes than were sent"),
    (507, "", StorageFull, "no space left on SE"),
    (403, "QuotaExceeded", StorageFull, "no space left on SE"),
    (400, "EntityTooLarge", StorageFull, "no space left on SE"),
    (503, "SlowDown", StorageUnavailable, "SE is not available"),
    (400, "InvalidArgument", StorageError, "S3 InvalidArgument: no (HTTP 400 from SE)"),
])
def test_s3Failure_mapsStatusAndCode_toTypedErrorsNamingTheSE(status: int, code: str, kind: type, words: str) -> None:
    body = f"<Error><Code>{code}</Code><Message>no</Message></Error>".encode() if code else b""
    error = s3Failure("upload of /x to SE", "SE", status, body)
    assert type(error) is kind and error.message.startswith("upload of /x to SE: ")
    assert words in error.message, error.message


def test_presignedUrls_areSignedForTheBucketAndKeyOfTheLFN_withTheAnnouncedChecksum() -> None:
    plugin = S3Storage("SE", KEYS)
    url = urlsplit(plugin.createPresignedUrl("put_object", "/vo/f.txt", {"Checksum": "ad12", "ContentMD5": "bWQ1"}))
    assert (url.scheme, url.netloc, url.path) == ("https", "s3.example.org:443", "/bucket/vo/f.txt")
    assert parse_qs(url.query)["X-Amz-SignedHeaders"] == ["content-md5;host;x-amz-meta-checksum"]
    listing = parse_qs(urlsplit(plugin.createPresignedUrl("list_objects_v2", "/vo")).query)
    assert (listing["prefix"], listing["delimiter"]) == (["vo/"], ["/"])
    with pytest.raises(InvalidArgument, match="put_object takes no Bucket"):
        plugin.createPresignedUrl("put_object", "/vo/f", {"Bucket": "other"})
    with pytest.raises(InvalidArgument, match="not a method of S3"):
        plugin.createPresignedUrl("delete_bucket", "/vo")
    with pytest.raises(Exception, match="not a valid storage path"):
        plugin.createPresignedUrl("get_object", "/vo/../x")
    with pytest.raises(StorageError, match="no S3 keys here"):
        S3Storage("SE", {"Host": "h", "Path": "b"}).createPresignedUrl("get_object", "/f")


def test_urls_andLFNs_followDIRACsLayout() -> None:
    plugin = S3Storage("SE", {**KEYS, "SecureConnection": "False"})
    assert plugin.getURL("/vo/a b") == "s3://s3.example.org:80/bucket/vo/a%20b"
    assert plugin.lfnOf("s3://s3.example.org:80/bucket/vo/f") == "/vo/f" == plugin.lfnOf("/vo/f")
    with pytest.raises(InvalidArgument):
        plugin.lfnOf("s3://elsewhere/bucket/vo/f")
    assert plugin.getURL("/vo/f", "http").startswith("http://s3.example.org:80/bucket/vo/f?")
    with pytest.raises(StorageError, match="serves s3 and http here, not https"):
        plugin.getURL("/vo/f", "https")


@pytest.mark.parametrize(("parameters", "message"), [
    ({"Host": "h", "Path": "b", "Protocol": "https"}, "Protocol must be s3"),
    ({"Path": "b"}, "has no Host"),
    ({"Host": "h", "Path": "/"}, "Path must be the bucket name"),
    ({"Host": "h", "Path": "b/c"}, "Path must be the bucket name"),
    ({"Host": "h", "Path": "b", "MultipartChunkSize": "1000"}, "at least 5 MiB"),
    ({"Host": "h", "Path": "b", "MultipartThreshold": "big"}, "numbers of bytes"),
    ({"Host": "h", "Path": "b", "Timeout": "soon"}, "Timeout must be a number of seconds"),
])
def test_badConfiguration_isAClearError(parameters: dict, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        S3Storage("SE", parameters)


def test_plugin_isRegistered() -> None:
    assert storagePluginClasses()["S3"] == "dirac.Resources.Storage.S3Storage:S3Storage"
