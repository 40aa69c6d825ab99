"""The ``WebDAV`` plug-in: a Storage Element reached over HTTP(S)/WebDAV (dCache, EOS, StoRM, XRootD, Apache mod_dav).

Configuration (DIRAC's protocol section; a URL is ``<Protocol>://<Host>:<Port><WSUrl><Path><lfn>``)::

    WebDAV                           # the section name is the plug-in name (or PluginName = WebDAV)
    {
      Protocol = https               # https or davs (TLS), http or dav (plain, tests only)
      Host = webdav.example.org
      Port = 443                     # optional
      WSUrl =                        # optional: a prefix before Path (e.g. /webdav)
      Path = /dirac/data             # the collection holding the LFN tree
      ChecksumMode = Auto            # Auto: ask the server (RFC 3230 Want-Digest: adler32) and read the file
                                     # back when it does not answer; ReadBack: always read the file back
      Timeout = 600                  # seconds for one request (default: /DIRAC/Client/Timeout)
    }

Authentication is the client's, as for the RPC calls (``clientCredentials``): a bearer token
(``token=``, ``$DIRAC_TOKEN`` or the user's access token) in an ``Authorization`` header, else the
host certificate or the user's X509 proxy as TLS client certificate. The server is verified
against the CA directory of ``/DIRAC/Security/CALocation`` (``$X509_CERT_DIR``).

An upload is a streamed PUT to a hidden name next to the target (``.<name>.<id>.part``, parent
collections made with MKCOL), checked for size and Adler32, then a MOVE to the LFN's name: a name
never shows a partial or corrupt file, and a failed check leaves nothing behind. Errors per file:
403 is ``Permission denied``, 404 ``NotFound``, 507 Insufficient Storage ``StorageFull``, a refused
or timed-out connection ``StorageUnavailable`` (the next protocol of the SE is then tried).
"""

from __future__ import annotations

import email.utils
import errno
import os
import re
import uuid
import xml.etree.ElementTree as ElementTree
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Security import Locations
from dirac.Core.Tornado.Client import clientCredentials, httpSession, rootCause
from dirac.Core.Utilities.Adler import CHUNK, formatAdler32, normalizeAdler32
from dirac.Core.Utilities.Exceptions import AuthorizationError, DiracError, NotFound
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
    joinPath,
    partialDownload,
    timeoutOption,
)

log = getLogger("Storage/WebDAV")

DAV = "{DAV:}"
SECURE = ("https", "davs")
PLAIN = ("http", "dav")
PROPFIND_BODY = (b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
                 b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>")
PARTIAL = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")
_REASONS = {401: "authentication refused", 403: "Permission denied", 404: "no such file or directory",
            507: "no space left (Insufficient Storage)"}


def digestAdler32(header: str | None) -> str | None:
    """The Adler32 of an RFC 3230 ``Digest`` header ('adler32=0a1b2c3d, md5=...'), None when it has none."""
    for item in (header or "").split(","):
        algorithm, _, value = item.strip().partition("=")
        if algorithm.strip().lower() == "adler32" and value.strip():
            try:
                return normalizeAdler32(value.strip())
            except ValueError:
                log.warning("ignoring a malformed adler32 digest %r", value)
    return None


def parseMultistatus(body: bytes) -> list[dict[str, Any]]:
    """The entries of a PROPFIND answer: [{Path (unquoted href path), Directory, Size, ModificationDate}]."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise StorageError(f"malformed WebDAV multistatus answer: {exc}") from None
    entries = []
    for response in root.iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href") or ""
        properties: dict[str, Any] = {}
        for propstat in response.iter(f"{DAV}propstat"):
            if " 200 " not in f" {propstat.findtext(f'{DAV}status') or ''} ":
                continue
            for prop in propstat.iter(f"{DAV}prop"):
                properties["Directory"] = prop.find(f"{DAV}resourcetype/{DAV}collection") is not None
                length = prop.findtext(f"{DAV}getcontentlength")
                if length:
                    properties["Size"] = int(length)
                modified = prop.findtext(f"{DAV}getlastmodified")
                if modified:
                    properties["ModificationDate"] = email.utils.parsedate_to_datetime(modified)
        isDirectory = bool(properties.get("Directory"))
        entries.append({"Path": unquote(urlsplit(href).path).rstrip("/") or "/", "Directory": isDirectory,
                        "File": not isDirectory, "Size": 0 if isDirectory else properties.get("Size", 0),
                        **({"ModificationDate": properties["ModificationDate"]}
                           if "ModificationDate" in properties else {})})
    return entries


class WebDAVStorage(StorageBase):
    """A Storage Element behind a WebDAV server."""

    pluginName = "WebDAV"
    protocols = ("https", "davs", "http", "dav")
    transportProtocols = protocols

    def __init__(self, seName: str, parameters: dict[str, Any], timeout: float | None = None,
                 useCertificates: bool | None = None, proxyLocation: str | None = None, token: str | None = None,
                 skipCACheck: bool = False, useAccessToken: bool | None = None, **_otherOptions: Any):
        super().__init__(seName, {"Protocol": "https", **parameters})
        if self.protocol not in self.protocols:
            raise StorageError(f"{seName}: WebDAV Protocol must be one of {', '.join(self.protocols)}, "
                               f"not {self.protocol}", errno.EINVAL)
        if not self.host:
            raise StorageError(f"{seName}: the WebDAV section has no Host", errno.EINVAL)
        self.checksumMode = checksumModeOption(seName, parameters)
        self.timeout = timeoutOption(seName, parameters, timeout)
        self.scheme = "https" if self.protocol in SECURE else "http"
        endpoint = f"{self.host}:{self.port}" if self.port else self.host
        self.prefix = joinPath(self.wsUrl, self.basePath).rstrip("/")
        self.baseURL = f"{self.scheme}://{endpoint}"
        self.credentialOptions = {"token": token, "useCertificates": useCertificates,
                                  "useAccessToken": useAccessToken, "proxyLocation": proxyLocation}
        self.skipCACheck = skipCACheck

    # -- URLs -----------------------------------------------------------------------------------------
    def getURL(self, lfn: str, protocol: str | None = None) -> str:
        family = SECURE if self.protocol in SECURE else PLAIN
        if protocol and protocol not in family:
            raise StorageError(f"{self.seName}: plug-in WebDAV serves {'/'.join(family)} here, not {protocol}")
        endpoint = f"{self.host}:{self.port}" if self.port else self.host
        return f"{protocol or self.protocol}://{endpoint}{self._path(lfn)}"

    def _path(self, lfn: str) -> str:
        return self.prefix + checkPath(lfn) if lfn != "/" else self.prefix + "/"

    def _url(self, lfn: str) -> str:
        return self.baseURL + quote(self._path(lfn))

    # -- HTTP -----------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, what: str, headers: dict[str, str] | None = None,
              **kwargs: Any) -> requests.Response:
        """One request with the client's credentials; connection and TLS failures become storage errors."""
        extra, cert = clientCredentials(**self.credentialOptions)
        verify: bool | str = False if self.skipCACheck else Locations.getCAsLocation()
        session = httpSession((cert, verify, "Authorization" in extra))
        try:
            return session.request(method, url, headers={**extra, **(headers or {})}, cert=cert, verify=verify,
                                   timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise StorageError(f"{what}: TLS with {self.baseURL} failed (certificate refused or untrusted): "
                               f"{rootCause(exc)}", DErrno.EX509) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise StorageUnavailable(f"{what}: {self.seName} is not available ({self.baseURL}: {rootCause(exc)})",
                                     errno.ECONNREFUSED) from None

    def _failure(self, response: requests.Response, what: str) -> DiracError:
        """The typed error of an HTTP error answer."""
        status = response.status_code
        reason = _REASONS.get(status, response.reason or "error")
        message = f"{what}: {reason} (HTTP {status} from {self.seName})"
        if status in (401, 403):
            return AuthorizationError(message)
        if status == 404:
            return NotFound(message)
        if status == 507:
            return StorageFull(message)
        if status in (502, 503, 504):
            return StorageUnavailable(f"{what}: {self.seName} is not available (HTTP {status})")
        return StorageError(message)

    def _propfind(self, lfn: str, depth: int, what: str) -> list[dict[str, Any]]:
        response = self._send("PROPFIND", self._url(lfn), what, data=PROPFIND_BODY,
                              headers={"Depth": str(depth), "Content-Type": "application/xml"})
        if response.status_code != 207:
            raise self._failure(response, what)
        return parseMultistatus(response.content)

    def _lfnOf(self, path: str) -> str:
        return path[len(self.prefix):] or "/"

    # -- checksums ------------------------------------------------------------------------------------
    def _readBack(self, url: str, what: str) -> tuple[int, str]:
        """(size, Adler32) of the file at ``url``, read back in a streamed GET."""
        value, size = 1, 0
        with self._send("GET", url, what, stream=True) as response:
            if response.status_code != 200:
                raise self._failure(response, what)
            try:
                for chunk in response.iter_content(CHUNK):
                    value = zlib.adler32(chunk, value)
                    size += len(chunk)
            except requests.exceptions.RequestException as exc:
                raise StorageUnavailable(f"{what}: interrupted ({rootCause(exc)})") from None
        return size, formatAdler32(value)

    def _sizeAndChecksum(self, url: str, what: str) -> tuple[int, str]:
        """(size, Adler32) of a file: the server's RFC 3230 digest when it gives one, else read back."""
        if self.checksumMode == "auto":
            response = self._send("HEAD", url, what, headers={"Want-Digest": "adler32"})
            if response.status_code != 200:
                raise self._failure(response, what)
            digest = digestAdler32(response.headers.get("Digest"))
            if digest is not None and "Content-Length" in response.headers:
                return int(response.headers["Content-Length"]), digest
        return self._readBack(url, what)

    def getChecksum(self, lfn: str) -> str:
        """The Adler32 of ``lfn`` (the server's digest, or computed by reading the file back)."""
        return self._sizeAndChecksum(self._url(lfn), f"checksum of {lfn}")[1]

    # -- files ------------------------------------------------------------------------------------------
    def putFile(self, lfn: str, localPath: Path, size: int, checksum: str) -> dict[str, Any]:
        what = f"upload of {lfn} to {self.seName}"
        expected = normalizeAdler32(checksum)
        target = self._url(lfn)
        parent, _, name = self._path(lfn).rpartition("/")
        partial = self.baseURL + quote(f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.part")
        response = self._upload(partial, localPath, what)
        if response.status_code == 409:  # a parent collection is missing
            self.createDirectory(os.path.dirname(lfn))
            response = self._upload(partial, localPath, what)
        if response.status_code not in (200, 201, 204):
            if response.status_code not in (401, 403, 409):  # nothing was written
                self._discard(partial, what)
            raise self._failure(response, what)
        try:
            storedSize, stored = self._sizeAndChecksum(partial, what)
            if storedSize != size:
                raise SizeMismatch(f"{what}: {storedSize} bytes stored, {size} sent")
            if stored != expected:
                raise ChecksumMismatch(f"{what}: the stored copy has Adler32 {stored}, {expected} expected")
            moved = self._send("MOVE", partial, what, headers={"Destination": target, "Overwrite": "T"})
            if moved.status_code not in (201, 204):
                raise self._failure(moved, what)
        except DiracError:
            self._discard(partial, what)
            raise
        log.info("%s: stored %s (%d bytes, adler32 %s)", self.seName, lfn, storedSize, stored)
        return {"Size": storedSize, "Checksum": stored}

    def _upload(self, url: str, localPath: Path, what: str) -> requests.Response:
        try:
            with open(localPath, "rb") as body:
                return self._send("PUT", url, what, data=body, headers={"Content-Type": "application/octet-stream"})
        except OSError as exc:
            if isinstance(exc, requests.exceptions.RequestException):
                raise
            raise StorageError(f"{what}: cannot read {localPath}: {exc.strerror or exc}",
                               exc.errno or errno.EIO) from None

    def _discard(self, url: str, what: str) -> None:
        """Remove a partial upload (logged, not raised, when that fails too)."""
        try:
            response = self._send("DELETE", url, what)
            if response.status_code not in (200, 204, 404):
                log.warning("%s: cannot remove the partial upload %s: HTTP %s", self.seName, url,
                            response.status_code)
        except DiracError as exc:
            log.warning("%s: cannot remove the partial upload %s: %s", self.seName, url, exc.message)

    def getFile(self, lfn: str, localPath: Path) -> int:
        what = f"download of {lfn} from {self.seName}"
        size = 0
        with partialDownload(Path(localPath), what) as partial:
            try:
                with self._send("GET", self._url(lfn), what, stream=True) as response:
                    if response.status_code != 200:
                        raise self._failure(response, what)
                    with open(partial, "wb") as out:
                        for chunk in response.iter_content(CHUNK):
                            out.write(chunk)
                            size += len(chunk)
                    announced = response.headers.get("Content-Length")
                    if announced is not None and int(announced) != size:
                        raise SizeMismatch(f"{what}: {size} bytes received, {announced} announced")
            except requests.exceptions.RequestException as exc:
                raise StorageUnavailable(f"{what}: interrupted ({rootCause(exc)})") from None
        return size

    def removeFile(self, lfn: str) -> bool:
        what = f"removal of {lfn} from {self.seName}"
        response = self._send("DELETE", self._url(lfn), what)
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._failure(response, what)
        log.info("%s: removed %s", self.seName, lfn)
        return True

    def getFileMetadata(self, lfn: str) -> dict[str, Any]:
        what = f"metadata of {lfn} on {self.seName}"
        entry = self._propfind(lfn, 0, what)[0]
        if entry["Directory"]:
            raise NotFound(f"{lfn} is a directory on {self.seName}")
        metadata = {key: value for key, value in entry.items() if key != "Path"}
        metadata.update(Checksum=self.getChecksum(lfn), ChecksumType="Adler32")
        return metadata

    def exists(self, lfn: str) -> bool:
        try:
            self._propfind(lfn, 0, f"existence of {lfn} on {self.seName}")
        except NotFound:
            return False
        return True

    def getFileSize(self, lfn: str) -> int:
        entry = self._propfind(lfn, 0, f"size of {lfn} on {self.seName}")[0]
        if entry["Directory"]:
            raise NotFound(f"{lfn} is a directory on {self.seName}")
        return int(entry["Size"])

    # -- directories ----------------------------------------------------------------------------------
    def listDirectory(self, path: str) -> dict[str, dict[str, Any]]:
        entries = self._propfind(path, 1, f"listing of {path} on {self.seName}")
        own = self._path(path).rstrip("/") or "/"
        if not any(entry["Path"] == own and entry["Directory"] for entry in entries):
            raise NotFound(f"{path}: no such directory on {self.seName}")
        files: dict[str, Any] = {}
        subDirs: dict[str, Any] = {}
        for entry in sorted(entries, key=lambda e: e["Path"]):
            name = entry["Path"].rsplit("/", 1)[-1]
            if entry["Path"] == own or PARTIAL.match(name):
                continue
            child = self._lfnOf(entry["Path"])
            if entry["Directory"]:
                subDirs[child] = {}
            else:
                files[child] = {key: value for key, value in entry.items() if key != "Path"}
        return {"Files": files, "SubDirs": subDirs}

    def createDirectory(self, path: str) -> None:
        current = ""
        for part in checkPath(path).strip("/").split("/"):
            if not part:
                continue
            current += f"/{part}"
            what = f"creation of {current} on {self.seName}"
            response = self._send("MKCOL", self._url(current) + "/", what)
            if response.status_code == 405:  # it exists (a collection, or a file: the next PUT says so)
                continue
            if response.status_code not in (200, 201):
                raise self._failure(response, what)

    def removeDirectory(self, path: str, recursive: bool = False) -> dict[str, int]:
        if checkPath(path) == "/":
            raise NotFound(f"/: the top directory of {self.seName} is not removed")
        listing = self.listDirectory(path)
        files, size = 0, 0
        if recursive:
            for subDir in listing["SubDirs"]:
                removed = self.removeDirectory(subDir, True)
                files, size = files + removed["FilesRemoved"], size + removed["SizeRemoved"]
            files += len(listing["Files"])
            size += sum(meta.get("Size", 0) for meta in listing["Files"].values())
        elif listing["Files"] or listing["SubDirs"]:
            raise StorageError(f"{path}: directory not empty", errno.ENOTEMPTY)
        what = f"removal of {path} from {self.seName}"
        response = self._send("DELETE", self._url(path) + "/", what)
        if response.status_code not in (200, 204, 404):
            raise self._failure(response, what)
        return {"FilesRemoved": files, "SizeRemoved": size}

    def ping(self) -> None:
        response = self._send("OPTIONS", self._url("/"), f"{self.seName} ({self.baseURL})")
        if response.status_code >= 400:
            raise self._failure(response, f"{self.seName} ({self.baseURL})")


__all__ = ["WebDAVStorage", "digestAdler32", "parseMultistatus"]
