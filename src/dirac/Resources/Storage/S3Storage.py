"""The ``S3`` plug-in: a Storage Element in a bucket of an S3 server (AWS, Ceph RGW, MinIO, SeaweedFS, EOS...).

Configuration (DIRAC's S3 section: ``Path`` is the bucket, an object's key is its LFN without the
leading slash, a URL is ``s3://<Host>:<Port>/<bucket>/<key>``)::

    S3
    {
      Protocol = s3
      Host = s3.example.org
      Port = 443                       # optional (443, or 80 without SecureConnection)
      Path = dirac-data                # the bucket
      SecureConnection = True          # https (default) or http
      Region = us-east-1               # optional
      Aws_access_key_id = ...          # direct access: give both keys (in the local cfg of the hosts that hold
      Aws_secret_access_key = ...      # them, never in the central CS), else the S3Gateway signs for you
      S3Gateway = DataManagement/S3Gateway   # optional: the service that hands out pre-signed URLs
      MultipartThreshold = 67108864    # bytes: larger files are sent in parts (default 64 MiB)
      MultipartChunkSize = 16777216    # bytes per part (default 16 MiB, at least 5 MiB; more for files that
                                       # would need over 10,000 parts)
      ChecksumMode = Auto              # Auto: the Adler32 kept as object metadata; ReadBack: read the object
      CALocation =                     # CAs the server's certificate is checked with: a directory or a bundle
                                       # file, "system" for the system's; default /DIRAC/Security/CALocation
      Timeout = 600                    # seconds for one request (default: /DIRAC/Client/Timeout)
    }

Every request is an HTTP request to a pre-signed URL (AWS Signature V4): signed here with the keys
when this host has them, else by the ``DataManagement/S3Gateway`` service, which checks the
caller's File Catalog permission for the LFN and signs with keys only the server knows. One code
path for both, and clients never hold the keys.

Uploads: the Adler32 is computed while the file is read, together with an MD5 per request that the
server checks (``Content-MD5``; ``BadDigest`` otherwise): what is stored are the bytes whose Adler32
was computed. The Adler32 is kept as object metadata (``x-amz-meta-checksum``, DIRAC's key); a file
whose Adler32 or size is not the announced one is not stored. Files above ``MultipartThreshold`` go
as a multipart upload: the object appears only when the upload is completed, and a failed upload
is aborted. S3 objects appear whole or not at all, so no temporary name is needed. Downloads are
checked against the metadata checksum.

S3 has no directories: ``createDirectory`` does nothing, a directory exists while objects have its
prefix, ``listDirectory`` lists with the ``/`` delimiter.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import errno
import hashlib
import xml.etree.ElementTree as ElementTree
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Security import Locations
from dirac.Core.Tornado.Client import RPCClient, rootCause
from dirac.Core.Utilities.Adler import CHUNK, formatAdler32, normalizeAdler32
from dirac.Core.Utilities.Exceptions import AuthorizationError, DiracError, InvalidArgument, NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.Resources.Storage.DiskArea import checkPath
from dirac.Resources.Storage.StorageBase import (
    ChecksumMismatch,
    SizeMismatch,
    StorageBase,
    StorageError,
    StorageFull,
    StorageUnavailable,
    checksumModeOption,
    partialDownload,
    timeoutOption,
)

log = getLogger("Storage/S3")

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
CHECKSUM_HEADER = "x-amz-meta-checksum"
DEFAULT_GATEWAY = "DataManagement/S3Gateway"
MiB = 1 << 20
MAX_PARTS = 10000
#: the S3 client methods a pre-signed URL may be asked for, their HTTP verb and the permission they need
METHODS = {"get_object": ("GET", "Read"), "head_object": ("HEAD", "Read"), "list_objects_v2": ("GET", "Read"),
           "put_object": ("PUT", "Write"), "delete_object": ("DELETE", "Write"),
           "create_multipart_upload": ("POST", "Write"), "upload_part": ("PUT", "Write"),
           "complete_multipart_upload": ("POST", "Write"), "abort_multipart_upload": ("DELETE", "Write")}
#: the fields a client may give for each method (everything else, Bucket and Key above all, is the signer's)
FIELDS = {"put_object": {"Checksum", "ContentMD5"}, "create_multipart_upload": {"Checksum"},
          "upload_part": {"UploadId", "PartNumber", "ContentMD5"}, "complete_multipart_upload": {"UploadId"},
          "abort_multipart_upload": {"UploadId"}, "list_objects_v2": {"ContinuationToken", "Recursive"}}
_FULL = ("QuotaExceeded", "XMinioStorageFull", "InsufficientStorage", "EntityTooLarge")
_DENIED = ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled", "RequestTimeTooSkewed")


def s3Failure(what: str, seName: str, status: int, body: bytes | str = b"") -> DiracError:
    """The typed error of an S3 error answer (its status and XML <Error><Code>)."""
    code, message = _errorOf(body)
    detail = f"{code or status}{f': {message}' if message else ''}"
    if status == 507 or code in _FULL:  # before 403: some servers answer a full quota with it
        return StorageFull(f"{what}: no space left on {seName} (S3 {detail})")
    if status in (401, 403) or code in _DENIED:
        return AuthorizationError(f"{what}: Permission denied (S3 {detail}, HTTP {status} from {seName})")
    if status == 404 or code in ("NoSuchKey", "NoSuchBucket", "NoSuchUpload"):
        return NotFound(f"{what}: no such file on {seName} (S3 {detail})")
    if code in ("BadDigest", "InvalidDigest"):
        return ChecksumMismatch(f"{what}: {seName} received other bytes than were sent (S3 {detail})")
    if status in (500, 502, 503, 504):
        return StorageUnavailable(f"{what}: {seName} is not available (S3 {detail}, HTTP {status})")
    return StorageError(f"{what}: S3 {detail} (HTTP {status} from {seName})")


def _errorOf(body: bytes | str) -> tuple[str, str]:
    try:
        root = ElementTree.fromstring(body) if body else None
    except ElementTree.ParseError:
        return "", ""
    if root is None:
        return "", ""
    return root.findtext("Code") or "", root.findtext("Message") or ""


def parseListing(body: bytes) -> tuple[list[dict[str, Any]], list[str], str]:
    """(objects [{Key, Size, ModificationDate}], common prefixes, next continuation token) of a ListObjectsV2 answer."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise StorageError(f"malformed S3 listing: {exc}") from None
    objects = []
    for item in root.iter(f"{S3_NS}Contents"):
        if (item.findtext(f"{S3_NS}Key") or "/").endswith("/"):
            continue  # a folder marker, not a file
        entry: dict[str, Any] = {"Key": item.findtext(f"{S3_NS}Key") or "",
                                 "Size": int(item.findtext(f"{S3_NS}Size") or 0)}
        modified = item.findtext(f"{S3_NS}LastModified")
        if modified:
            entry["ModificationDate"] = _isoDate(modified)
        objects.append(entry)
    prefixes = [item.findtext(f"{S3_NS}Prefix") or "" for item in root.iter(f"{S3_NS}CommonPrefixes")]
    truncated = (root.findtext(f"{S3_NS}IsTruncated") or "false").lower() == "true"
    return objects, prefixes, (root.findtext(f"{S3_NS}NextContinuationToken") or "") if truncated else ""


def _isoDate(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324  (S3's Content-MD5)


class S3Storage(StorageBase):
    """A Storage Element in an S3 bucket."""

    pluginName = "S3"
    protocols = ("s3", "https", "http")
    #: pre-signed download URLs (s3:// URLs need the keys)
    transportProtocols = ("https", "http")

    def __init__(self, seName: str, parameters: dict[str, Any], timeout: float | None = None,
                 skipCACheck: bool = False, **rpcOptions: Any):
        super().__init__(seName, {"Protocol": "s3", **parameters})
        if self.protocol != "s3":
            raise StorageError(f"{seName}: S3 Protocol must be s3, not {self.protocol}", errno.EINVAL)
        if not self.host:
            raise StorageError(f"{seName}: the S3 section has no Host", errno.EINVAL)
        self.bucket = self.basePath.strip("/")
        if not self.bucket or "/" in self.bucket:
            raise StorageError(f"{seName}: the S3 Path must be the bucket name, not {self.basePath!r}", errno.EINVAL)
        self.secure = str(parameters.get("SecureConnection", "True")).lower() in ("true", "yes", "1")
        self.scheme = "https" if self.secure else "http"
        self.port = self.port or ("443" if self.secure else "80")
        self.endpointURL = f"{self.scheme}://{self.host}:{self.port}"
        self.region = str(parameters.get("Region") or "us-east-1")
        self.accessKey = str(parameters.get("Aws_access_key_id") or "")
        self.secretKey = str(parameters.get("Aws_secret_access_key") or "")
        self.directAccess = bool(self.accessKey and self.secretKey)
        self.gateway = str(parameters.get("S3Gateway") or DEFAULT_GATEWAY)
        try:
            self.threshold = int(parameters.get("MultipartThreshold") or 64 * MiB)
            self.chunkSize = int(parameters.get("MultipartChunkSize") or 16 * MiB)
        except ValueError:
            raise StorageError(f"{seName}: MultipartThreshold and MultipartChunkSize are numbers of bytes",
                               errno.EINVAL) from None
        if self.chunkSize < 5 * MiB:
            raise StorageError(f"{seName}: MultipartChunkSize must be at least 5 MiB (S3's smallest part)",
                               errno.EINVAL)
        self.checksumMode = checksumModeOption(seName, parameters)
        self.timeout = timeoutOption(seName, parameters, timeout)
        self.skipCACheck = skipCACheck
        self.caLocation = str(parameters.get("CALocation") or "")
        self.rpcOptions = rpcOptions
        self._signer: Any = None
        self._session: requests.Session | None = None

    # -- keys, URLs and signatures --------------------------------------------------------------------
    def key(self, lfn: str) -> str:
        """The object key of ``lfn``: the LFN without its leading slash."""
        return checkPath(lfn).lstrip("/")

    def lfnOf(self, url: str) -> str:
        """The LFN of one of this SE's URLs (s3://host:port/bucket/key), or ``url`` itself when it is an LFN."""
        prefix = f"s3://{self.host}:{self.port}/{self.bucket}/"
        if url.startswith(prefix):
            return "/" + url[len(prefix):]
        if url.startswith("/"):
            return url
        raise InvalidArgument(f"{url} is neither an LFN nor a URL of {self.seName} ({prefix}...)")

    def getURL(self, lfn: str, protocol: str | None = None) -> str:
        """s3://... (default), or for https/http a pre-signed download URL valid 24 hours."""
        if not protocol or protocol == "s3":
            return f"s3://{self.host}:{self.port}/{self.bucket}/{quote(self.key(lfn))}"
        if protocol != self.scheme:
            raise StorageError(f"{self.seName}: plug-in S3 serves s3 and {self.scheme} here, not {protocol}")
        return self._sign("get_object", lfn, {}, 24 * 3600)

    def createPresignedUrl(self, method: str, lfn: str, fields: dict[str, Any] | None = None,
                           expiration: int = 3600) -> str:
        """A URL that lets its holder do ``method`` (an S3 client method of METHODS) on ``lfn``, signed with
        this SE's keys; ``fields`` as allowed by FIELDS (the rest, bucket and key above all, is set here)."""
        if method not in METHODS:
            raise InvalidArgument(f"{method} is not a method of S3 that can be pre-signed here "
                                  f"(one of {', '.join(METHODS)})")
        fields = dict(fields or {})
        unknown = set(fields) - FIELDS.get(method, set())
        if unknown:
            raise InvalidArgument(f"{method} takes no {', '.join(sorted(unknown))}")
        if not self.directAccess:
            raise StorageError(f"{self.seName}: no S3 keys here (Aws_access_key_id, Aws_secret_access_key)",
                               DErrno.ECONF)
        key = self.key(lfn) if lfn != "/" else ""
        params: dict[str, Any] = {"Bucket": self.bucket}
        if method == "list_objects_v2":
            params["Prefix"] = f"{key}/" if key else ""
            if not fields.get("Recursive"):
                params["Delimiter"] = "/"
            if fields.get("ContinuationToken"):
                params["ContinuationToken"] = str(fields["ContinuationToken"])
        else:
            params["Key"] = key
        if "Checksum" in fields:
            params["Metadata"] = {"checksum": normalizeAdler32(fields["Checksum"])}
        for name in ("ContentMD5", "UploadId"):
            if name in fields:
                params[name] = str(fields[name])
        if "PartNumber" in fields:
            params["PartNumber"] = int(fields["PartNumber"])
        return self._client().generate_presigned_url(ClientMethod=method, Params=params, ExpiresIn=int(expiration))

    def _client(self) -> Any:
        """The boto3 client that signs (it never sends a request itself)."""
        if self._signer is None:
            import boto3
            from botocore.config import Config

            self._signer = boto3.client("s3", endpoint_url=self.endpointURL, region_name=self.region,
                                        aws_access_key_id=self.accessKey, aws_secret_access_key=self.secretKey,
                                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        return self._signer

    def _sign(self, method: str, lfn: str, fields: dict[str, Any], expiration: int = 3600) -> str:
        """A pre-signed URL: signed here with the keys, else by the S3Gateway service."""
        if self.directAccess:
            return self.createPresignedUrl(method, lfn, fields, expiration)
        what = f"{method} of {lfn} on {self.seName}"
        result = RPCClient(self.gateway, **self.rpcOptions).createPresignedUrl(self.seName, method, {lfn: fields},
                                                                               expiration)
        if not result["OK"]:
            code = result.get("Errno") or 0
            if code in (DErrno.EDISET, errno.ECONNREFUSED):
                raise StorageUnavailable(f"{what}: the S3 gateway is not available ({result['Message']})", code)
            raise DiracError(f"{what}: the S3 gateway refused: {result['Message']}", code or None)
        value = result["Value"]
        if lfn in value["Failed"]:
            reason = value["Failed"][lfn]
            kind = AuthorizationError if "Permission denied" in reason else StorageError
            raise kind(f"{what}: the S3 gateway refused: {reason}")
        return value["Successful"][lfn]

    # -- HTTP -----------------------------------------------------------------------------------------
    def _send(self, method: str, lfn: str, fields: dict[str, Any], what: str, data: Any = None,
              headers: dict[str, str] | None = None, stream: bool = False, ok: tuple[int, ...] = (200,)
              ) -> requests.Response:
        """Sign ``method`` for ``lfn`` and send it; the answer, or the typed error of a failure."""
        url = self._sign(method, lfn, fields)
        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False  # no proxies or CA bundles from the environment
        verify: bool | str = not self.skipCACheck
        if verify and self.caLocation != "system":
            verify = self.caLocation or Locations.getCAsLocation() or True
        try:
            response = self._session.request(METHODS[method][0], url, data=data, headers=headers or {},
                                             stream=stream, verify=verify, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise StorageError(f"{what}: TLS with {self.endpointURL} failed (certificate refused or untrusted): "
                               f"{rootCause(exc)}", DErrno.EX509) from None
        except requests.exceptions.RequestException as exc:
            raise StorageUnavailable(f"{what}: {self.seName} is not available ({self.endpointURL}: "
                                     f"{rootCause(exc)})", errno.ECONNREFUSED) from None
        if response.status_code not in ok:
            body = b"" if method == "head_object" else response.content
            raise s3Failure(what, self.seName, response.status_code, body)
        return response

    def _head(self, lfn: str, what: str) -> requests.Response:
        return self._send("head_object", lfn, {}, what)

    # -- files ------------------------------------------------------------------------------------------
    def putFile(self, lfn: str, localPath: Path, size: int, checksum: str) -> dict[str, Any]:
        what = f"upload of {lfn} to {self.seName}"
        expected = normalizeAdler32(checksum)
        try:
            with open(localPath, "rb") as source:
                if size <= self.threshold:
                    self._putWhole(lfn, source, size, expected, what)
                else:
                    self._putInParts(lfn, source, size, expected, what)
        except OSError as exc:
            raise StorageError(f"{what}: cannot read {localPath}: {exc.strerror or exc}", exc.errno or errno.EIO
                               ) from None
        head = self._head(lfn, what)
        storedSize, stored = int(head.headers.get("Content-Length", -1)), head.headers.get(CHECKSUM_HEADER, "")
        if storedSize != size or stored != expected:
            self._removeQuietly(lfn, what)
            raise StorageError(f"{what}: {self.seName} shows {storedSize} bytes with Adler32 {stored or 'none'} "
                               f"after the upload, not {size} with {expected}; the object was removed")
        log.info("%s: stored %s (%d bytes, adler32 %s)", self.seName, lfn, size, expected)
        return {"Size": storedSize, "Checksum": stored}

    @staticmethod
    def _checkLocal(what: str, size: int, expected: str, readSize: int, adler: str) -> None:
        if readSize != size:
            raise SizeMismatch(f"{what}: the local file has {readSize} bytes, {size} announced; nothing stored")
        if adler != expected:
            raise ChecksumMismatch(f"{what}: the local file has Adler32 {adler}, {expected} announced; nothing stored")

    def _putWhole(self, lfn: str, source: Any, size: int, expected: str, what: str) -> None:
        body = source.read(self.threshold + 1)
        self._checkLocal(what, size, expected, len(body), formatAdler32(zlib.adler32(body)))
        md5 = _md5(body)
        self._send("put_object", lfn, {"Checksum": expected, "ContentMD5": md5}, what, data=body,
                   headers={CHECKSUM_HEADER: expected, "Content-MD5": md5})

    def _putInParts(self, lfn: str, source: Any, size: int, expected: str, what: str) -> None:
        created = self._send("create_multipart_upload", lfn, {"Checksum": expected}, what,
                             headers={CHECKSUM_HEADER: expected})
        uploadId = ElementTree.fromstring(created.content).findtext(f"{S3_NS}UploadId") or ""
        if not uploadId:
            raise StorageError(f"{what}: {self.seName} gave no UploadId for the multipart upload")
        try:
            parts, value, readSize = [], 1, 0
            partSize = max(self.chunkSize, -(-size // MAX_PARTS))  # S3 takes 10,000 parts at most
            while chunk := source.read(partSize):
                value, readSize = zlib.adler32(chunk, value), readSize + len(chunk)
                md5, number = _md5(chunk), len(parts) + 1
                answer = self._send("upload_part", lfn, {"UploadId": uploadId, "PartNumber": number, "ContentMD5": md5},
                                    f"{what} (part {number})", data=chunk, headers={"Content-MD5": md5})
                parts.append(f"<Part><PartNumber>{number}</PartNumber><ETag>{answer.headers.get('ETag', '')}</ETag>"
                             "</Part>")
            self._checkLocal(what, size, expected, readSize, formatAdler32(value))
            self._send("complete_multipart_upload", lfn, {"UploadId": uploadId}, what,
                       data=f"<CompleteMultipartUpload>{''.join(parts)}</CompleteMultipartUpload>".encode())
        except (DiracError, OSError):
            try:
                self._send("abort_multipart_upload", lfn, {"UploadId": uploadId}, what, ok=(200, 204, 404))
            except DiracError as exc:
                log.warning("%s: cannot abort the multipart upload of %s: %s", self.seName, lfn, exc.message)
            raise

    def _removeQuietly(self, lfn: str, what: str) -> None:
        try:
            self._send("delete_object", lfn, {}, what, ok=(200, 204, 404))
        except DiracError as exc:
            log.warning("%s: cannot remove %s: %s", self.seName, lfn, exc.message)

    def getFile(self, lfn: str, localPath: Path) -> int:
        what = f"download of {lfn} from {self.seName}"
        size, value = 0, 1
        with partialDownload(Path(localPath), what) as partial:
            try:
                with self._send("get_object", lfn, {}, what, stream=True) as response, open(partial, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        out.write(chunk)
                        value, size = zlib.adler32(chunk, value), size + len(chunk)
                    announced, kept = response.headers.get("Content-Length"), response.headers.get(CHECKSUM_HEADER)
            except requests.exceptions.RequestException as exc:
                raise StorageUnavailable(f"{what}: interrupted ({rootCause(exc)})") from None
            if announced is not None and int(announced) != size:
                raise SizeMismatch(f"{what}: {size} bytes received, {announced} announced")
            if kept and formatAdler32(value) != kept:
                raise ChecksumMismatch(f"{what}: the bytes read have Adler32 {formatAdler32(value)}, the object's "
                                       f"checksum metadata says {kept}")
        return size

    def removeFile(self, lfn: str) -> bool:
        self._send("delete_object", lfn, {}, f"removal of {lfn} from {self.seName}", ok=(200, 204, 404))
        log.info("%s: removed %s", self.seName, lfn)
        return True

    def getFileMetadata(self, lfn: str) -> dict[str, Any]:
        what = f"metadata of {lfn} on {self.seName}"
        try:
            head = self._head(lfn, what)
        except NotFound:
            if self._isDirectory(lfn, what):
                raise NotFound(f"{lfn} is a directory on {self.seName}") from None
            raise
        metadata: dict[str, Any] = {"Size": int(head.headers.get("Content-Length", 0)), "File": True,
                                    "Directory": False, "ChecksumType": "Adler32"}
        if head.headers.get("Last-Modified"):
            metadata["ModificationDate"] = email.utils.parsedate_to_datetime(head.headers["Last-Modified"])
        kept = head.headers.get(CHECKSUM_HEADER)
        metadata["Checksum"] = kept if kept and self.checksumMode == "auto" else self._readBack(lfn, what)
        return metadata

    def _readBack(self, lfn: str, what: str) -> str:
        value = 1
        with self._send("get_object", lfn, {}, what, stream=True) as response:
            for chunk in response.iter_content(CHUNK):
                value = zlib.adler32(chunk, value)
        return formatAdler32(value)

    def getChecksum(self, lfn: str) -> str:
        return str(self.getFileMetadata(lfn)["Checksum"])

    def exists(self, lfn: str) -> bool:
        what = f"existence of {lfn} on {self.seName}"
        try:
            self._head(lfn, what)
        except NotFound:
            return self._isDirectory(lfn, what)
        return True

    def getFileSize(self, lfn: str) -> int:
        return int(self._head(lfn, f"size of {lfn} on {self.seName}").headers.get("Content-Length", 0))

    # -- directories ----------------------------------------------------------------------------------
    def _list(self, path: str, what: str, recursive: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
        objects: list[dict[str, Any]] = []
        prefixes: list[str] = []
        token = ""
        while True:
            fields: dict[str, Any] = {"ContinuationToken": token} if token else {}
            if recursive:
                fields["Recursive"] = True
            page, common, token = parseListing(self._send("list_objects_v2", path, fields, what).content)
            objects += page
            prefixes += common
            if not token:
                return objects, prefixes

    def _isDirectory(self, path: str, what: str) -> bool:
        """Whether objects have the prefix ``path``/ (servers that keep empty folders do not count them)."""
        return bool(self._list(path, what, recursive=True)[0])

    def listDirectory(self, path: str) -> dict[str, dict[str, Any]]:
        objects, prefixes = self._list(path, f"listing of {path} on {self.seName}")
        if not objects and not prefixes and path != "/":
            raise NotFound(f"{path}: no such directory on {self.seName}")
        files = {"/" + entry["Key"]: {"Size": entry["Size"], "File": True, "Directory": False,
                                      **({"ModificationDate": entry["ModificationDate"]}
                                         if "ModificationDate" in entry else {})} for entry in objects}
        return {"Files": files, "SubDirs": {"/" + prefix.rstrip("/"): {} for prefix in prefixes}}

    def createDirectory(self, path: str) -> None:
        checkPath(path)  # S3 has no directories: a prefix exists while objects have it

    def removeDirectory(self, path: str, recursive: bool = False) -> dict[str, int]:
        what = f"removal of {path} from {self.seName}"
        if checkPath(path) == "/":
            raise NotFound(f"/: the top directory of {self.seName} is not removed")
        if not recursive:  # an empty directory does not exist in S3: nothing to remove
            if self._isDirectory(path, what):
                raise StorageError(f"{path}: directory not empty", errno.ENOTEMPTY)
            return {"FilesRemoved": 0, "SizeRemoved": 0}
        objects, _ = self._list(path, what, recursive=True)
        for entry in objects:
            self.removeFile("/" + entry["Key"])
        return {"FilesRemoved": len(objects), "SizeRemoved": sum(entry["Size"] for entry in objects)}

    def ping(self) -> None:
        self._list("/", f"{self.seName} ({self.endpointURL}/{self.bucket})")


__all__ = ["FIELDS", "METHODS", "S3Storage", "parseListing", "s3Failure"]
