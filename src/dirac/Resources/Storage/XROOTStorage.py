"""The ``XROOT`` plug-in: a Storage Element reached with the XRootD protocol (``root://``): XRootD servers,
EOS, dCache and DPM xrootd doors.

Configuration (DIRAC's protocol section; a URL is ``root://<Host>:<Port>/<Path><lfn>``, the path absolute,
hence the double slash)::

    XROOT                            # the section name is the plug-in name (or PluginName = XROOT)
    {
      Protocol = root                # root (xroot is read as root)
      Host = eos.example.org
      Port = 1094                    # optional
      Path = /eos/example/dirac      # the directory holding the LFN tree
      ChecksumMode = Auto            # Auto: the server's Adler32 (`xrdfs query checksum`), read the file
                                     # back when the server has no adler32; ReadBack: always read back
      Timeout = 600                  # seconds for one request (default: /DIRAC/Client/Timeout)
    }

The plug-in drives the XRootD command-line clients ``xrdcp`` and ``xrdfs`` (Debian/Ubuntu
``xrootd-client``, EL ``xrootd-client``), one process per operation with its own environment: the
user's X509 proxy (``X509_USER_PROXY``, the ``proxyLocation`` client option) or, with
``useCertificates``, a short proxy made from the host certificate; the CA directory of
``/DIRAC/Security/CALocation``; connection, request and stream timeouts. Bearer tokens are not used.

An upload is an ``xrdcp --posc`` to a hidden name next to the target (``.<name>.<id>.part``, parent
directories made by the server), checked for size (``stat``) and Adler32, then an ``xrdfs mv`` to the
LFN's name: a name never shows a partial or corrupt file. Errors per file come from the server's
XRootD error codes: 3010 (not authorized) or a failed authentication is ``Permission denied``, 3011
``NotFound``, 3009/3021 ``StorageFull``, a refused or timed-out connection ``StorageUnavailable``.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import subprocess
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from dirac.Core.Security import Locations
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Tornado.Client import clientCredentials
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

log = getLogger("Storage/XROOT")

PARTIAL = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")
#: bytes per second a transfer may not fall below (its process is stopped after timeout + size / this)
MINIMUM_BANDWIDTH = 1 << 20
HOST_PROXY_SECONDS = 12 * 3600
NO_FILE = "/dev/null/no-credential"
_CODE = re.compile(r"\[(\d{4})\]\s*([^\n]*)")
_NOISE = re.compile(r"Run:|\[(ERROR|FATAL)\]|\((destination|source)\)|Server responded with an error:")
_UNAVAILABLE = ("connection error", "socket error", "socket timeout", "operation expired", "connection refused",
                "invalid address", "no route to host", "stream timeout")


def xrootdError(what: str, seName: str, output: str) -> DiracError:
    """The typed error of a failed xrdcp/xrdfs run, from its XRootD error code or message."""
    text = " ".join(line.strip() for line in output.splitlines() if line.strip())
    lowered = text.lower()
    match = _CODE.search(output)
    code, reason = (int(match.group(1)), match.group(2).strip()) if match else (0, text)
    reason = _NOISE.sub("", reason).strip() or "error"
    if code == 3010 or "permission denied" in lowered:
        return AuthorizationError(f"{what}: Permission denied ({reason}; XRootD {code or 'error'} from {seName})")
    if "auth failed" in lowered:
        return AuthorizationError(f"{what}: authentication refused by {seName} ({reason})")
    if code == 3011 or (not code and "no such file or directory" in lowered):
        return NotFound(f"{what}: no such file or directory on {seName} ({reason})")
    if code in (3009, 3021) or "no space left" in lowered or "quota" in lowered:
        return StorageFull(f"{what}: no space left on {seName} ({reason})")
    if code == 3005 and "read/only" in lowered:
        return AuthorizationError(f"{what}: Permission denied ({seName} is read-only here: {reason})")
    if code == 3019:
        return ChecksumMismatch(f"{what}: {reason} ({seName})")
    if not code and any(marker in lowered for marker in _UNAVAILABLE):
        return StorageUnavailable(f"{what}: {seName} is not available ({reason})", errno.ECONNREFUSED)
    if code == 3005 and "not empty" in lowered:
        return StorageError(f"{what}: directory not empty ({seName})", errno.ENOTEMPTY)
    return StorageError(f"{what}: {reason} ({f'XRootD {code} ' if code else ''}from {seName})")


def parseStat(text: str) -> dict[str, Any]:
    """{Size, File, Directory, ModificationDate} of an ``xrdfs stat`` answer."""
    fields = {key.strip(): value.strip() for key, _, value in
              (line.partition(":") for line in text.splitlines() if ":" in line)}
    if "Size" not in fields or "Flags" not in fields:
        raise StorageError(f"unexpected answer of xrdfs stat: {text.strip()[:200]!r}")
    isDirectory = "IsDir" in fields["Flags"]
    result: dict[str, Any] = {"Size": 0 if isDirectory else int(fields["Size"]), "File": not isDirectory,
                              "Directory": isDirectory}
    modified = _parseDate(fields.get("MTime", ""))
    if modified:
        result["ModificationDate"] = modified
    return result


def parseListing(text: str) -> list[dict[str, Any]]:
    """The entries of an ``xrdfs ls -l`` answer: [{Path, Size, File, Directory, ModificationDate}]."""
    entries = []
    for line in text.splitlines():
        parts = line.split(None, 6)
        if len(parts) < 7:
            continue
        mode, _owner, _group, size, day, clock, path = parts
        isDirectory = mode.startswith("d")
        entry: dict[str, Any] = {"Path": path.rstrip("/"), "Size": 0 if isDirectory else int(size),
                                 "File": not isDirectory, "Directory": isDirectory}
        modified = _parseDate(f"{day} {clock}")
        if modified:
            entry["ModificationDate"] = modified
        entries.append(entry)
    return entries


def parseChecksum(text: str) -> tuple[str, str]:
    """(algorithm, value) of an ``xrdfs query checksum`` answer ('adler32 0a1b2c3d')."""
    parts = text.split()
    if len(parts) < 2:
        raise StorageError(f"unexpected answer of xrdfs query checksum: {text.strip()[:200]!r}")
    return parts[0].lower(), parts[1]


def _parseDate(text: str) -> datetime.datetime | None:
    try:  # xrdfs prints the client's local time
        return datetime.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").astimezone(datetime.UTC)
    except ValueError:
        return None


class XROOTStorage(StorageBase):
    """A Storage Element behind an XRootD server."""

    pluginName = "XROOT"
    protocols = ("root", "xroot")
    transportProtocols = protocols

    def __init__(self, seName: str, parameters: dict[str, Any], timeout: float | None = None,
                 useCertificates: bool | None = None, proxyLocation: str | None = None, **_otherOptions: Any):
        super().__init__(seName, {"Protocol": "root", **parameters})
        if self.protocol not in self.protocols:
            raise StorageError(f"{seName}: XROOT Protocol must be root, not {self.protocol}", errno.EINVAL)
        if not self.host:
            raise StorageError(f"{seName}: the XROOT section has no Host", errno.EINVAL)
        self.checksumMode = checksumModeOption(seName, parameters)
        self.timeout = timeoutOption(seName, parameters, timeout)
        self.endpoint = f"root://{self.host}:{self.port}" if self.port else f"root://{self.host}"
        self.prefix = joinPath(self.basePath).rstrip("/")
        self.useCertificates = useCertificates
        self.proxyLocation = proxyLocation
        self._hostProxy: tuple[str, float] | None = None

    # -- URLs -----------------------------------------------------------------------------------------
    def getURL(self, lfn: str, protocol: str | None = None) -> str:
        if protocol and protocol not in self.protocols:
            raise StorageError(f"{self.seName}: plug-in XROOT does not speak {protocol}")
        return f"{self.endpoint}/{self._path(lfn)}"

    def _path(self, lfn: str) -> str:
        return self.prefix + checkPath(lfn) if lfn != "/" else self.prefix + "/"

    # -- the client tools -----------------------------------------------------------------------------
    def _environment(self) -> tuple[dict[str, str], str]:
        """The environment of xrdcp/xrdfs: credentials, CAs, timeouts; and why there is no proxy ('' if there is)."""
        env = dict(os.environ)
        timeout = str(max(1, int(self.timeout)))
        env.update(XRD_CONNECTIONRETRY="1", XRD_CONNECTIONWINDOW=str(min(int(timeout), 30)),
                   XRD_REQUESTTIMEOUT=timeout, XRD_STREAMTIMEOUT=timeout, XRD_TIMEOUTRESOLUTION="1")
        caDir = Locations.getCAsLocation()
        if caDir:
            env["X509_CERT_DIR"] = caDir
        try:
            _, cert = clientCredentials(token="", useCertificates=self.useCertificates, useAccessToken=False,
                                        proxyLocation=self.proxyLocation)
        except DiracError as exc:  # maybe an anonymous door: the server says whether it wants one
            # and the client must not make a proxy of its own from ~/.globus
            env.update(X509_USER_PROXY=NO_FILE, X509_USER_CERT=NO_FILE, X509_USER_KEY=NO_FILE)
            return env, exc.message
        env["X509_USER_PROXY"] = cert if isinstance(cert, str) else self._proxyOfHost(cert)
        return env, ""

    def _proxyOfHost(self, certAndKey: tuple[str, str]) -> str:
        """A private file holding a proxy of the host certificate (GSI clients take proxies only), renewed at half life."""
        if self._hostProxy and self._hostProxy[1] > time.time() + HOST_PROXY_SECONDS / 2:
            return self._hostProxy[0]
        chain = X509Chain.fromCertAndKeyFiles(*certAndKey)
        handle, path = tempfile.mkstemp(prefix="dirac-xrootd-hostproxy-", suffix=".pem")
        os.close(handle)
        chain.generateProxy(HOST_PROXY_SECONDS).dumpToFile(path)
        if self._hostProxy:
            Path(self._hostProxy[0]).unlink(missing_ok=True)
        self._hostProxy = (path, time.time() + HOST_PROXY_SECONDS)
        return path

    def __del__(self) -> None:
        if getattr(self, "_hostProxy", None):
            Path(self._hostProxy[0]).unlink(missing_ok=True)  # type: ignore[index]

    def _run(self, what: str, *command: str, size: int = 0) -> str:
        """Run ``xrdfs``/``xrdcp`` ``command``; its standard output, or the typed error of its failure."""
        env, noProxy = self._environment()
        limit = self.timeout + 10 + size / MINIMUM_BANDWIDTH
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=limit,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise StorageError(f"{what}: the XRootD client {command[0]} is not installed "
                               "(Debian/Ubuntu and EL: package xrootd-client)", errno.ENOENT) from None
        except subprocess.TimeoutExpired:
            raise StorageUnavailable(f"{what}: {self.seName} did not answer within {limit:.0f} s",
                                     errno.ETIMEDOUT) from None
        if done.returncode == 0:
            return done.stdout
        error = xrootdError(what, self.seName, f"{done.stderr}\n{done.stdout}")
        if noProxy and isinstance(error, AuthorizationError):
            error = AuthorizationError(f"{error.message}; {noProxy}")
        log.debug("%s: %s exited with %s: %s", self.seName, command[:2], done.returncode, done.stderr.strip())
        raise error

    def _xrdfs(self, what: str, *arguments: str) -> str:
        return self._run(what, "xrdfs", self.endpoint, *arguments)

    def _stat(self, path: str, what: str) -> dict[str, Any]:
        return parseStat(self._xrdfs(what, "stat", path))

    # -- checksums ------------------------------------------------------------------------------------
    def _readBack(self, path: str, what: str, size: int = 0) -> str:
        """The Adler32 of a stored file, read back into a temporary file."""
        with tempfile.TemporaryDirectory(prefix="dirac-xrootd-") as scratch:
            local = Path(scratch) / "readback"
            self._run(what, "xrdcp", "--nopbar", "--force", f"{self.endpoint}/{path}", str(local), size=size)
            value = 1
            with open(local, "rb") as data:
                while chunk := data.read(CHUNK):
                    value = zlib.adler32(chunk, value)
        return formatAdler32(value)

    def _checksum(self, path: str, what: str, size: int = 0) -> str:
        """The Adler32 of a stored file: the server's when it computes adler32, else read back."""
        if self.checksumMode == "auto":
            try:
                algorithm, value = parseChecksum(self._xrdfs(what, "query", "checksum", path))
                if algorithm == "adler32":
                    return normalizeAdler32(value)
                log.info("%s answers %s checksums, not adler32: reading %s back", self.seName, algorithm, path)
            except (AuthorizationError, NotFound, StorageUnavailable, StorageFull):
                raise
            except (StorageError, ValueError) as exc:
                log.info("%s: no server checksum for %s (%s): reading it back", self.seName, path, exc)
        return self._readBack(path, what, size)

    def getChecksum(self, lfn: str) -> str:
        """The Adler32 of ``lfn`` (the server's, or computed by reading the file back)."""
        return self._checksum(self._path(lfn), f"checksum of {lfn}")

    # -- files ------------------------------------------------------------------------------------------
    def putFile(self, lfn: str, localPath: Path, size: int, checksum: str) -> dict[str, Any]:
        what = f"upload of {lfn} to {self.seName}"
        expected = normalizeAdler32(checksum)
        if not Path(localPath).is_file():
            raise StorageError(f"{what}: cannot read {localPath}: no such file", errno.ENOENT)
        target = self._path(lfn)
        parent, _, name = target.rpartition("/")
        partial = f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.part"
        try:
            self._run(what, "xrdcp", "--nopbar", "--posc", str(localPath), f"{self.endpoint}/{partial}", size=size)
            storedSize = int(self._stat(partial, what)["Size"])
            if storedSize != size:
                raise SizeMismatch(f"{what}: {storedSize} bytes stored, {size} sent")
            stored = self._checksum(partial, what, size)
            if stored != expected:
                raise ChecksumMismatch(f"{what}: the stored copy has Adler32 {stored}, {expected} expected")
            self._xrdfs(what, "mv", partial, target)
        except DiracError as exc:
            if not isinstance(exc, AuthorizationError):  # refused: nothing was written
                self._discard(partial, what)
            raise
        log.info("%s: stored %s (%d bytes, adler32 %s)", self.seName, lfn, storedSize, stored)
        return {"Size": storedSize, "Checksum": stored}

    def _discard(self, path: str, what: str) -> None:
        """Remove a partial upload (logged, not raised, when that fails too)."""
        try:
            self._xrdfs(what, "rm", path)
        except NotFound:
            pass
        except DiracError as exc:
            log.warning("%s: cannot remove the partial upload %s: %s", self.seName, path, exc.message)

    def getFile(self, lfn: str, localPath: Path) -> int:
        what = f"download of {lfn} from {self.seName}"
        localPath = Path(localPath)
        with partialDownload(localPath, what) as partial:
            self._run(what, "xrdcp", "--nopbar", "--force", f"{self.endpoint}/{self._path(lfn)}", str(partial))
        return localPath.stat().st_size

    def removeFile(self, lfn: str) -> bool:
        try:
            self._xrdfs(f"removal of {lfn} from {self.seName}", "rm", self._path(lfn))
        except NotFound:
            return False
        log.info("%s: removed %s", self.seName, lfn)
        return True

    def getFileMetadata(self, lfn: str) -> dict[str, Any]:
        what = f"metadata of {lfn} on {self.seName}"
        path = self._path(lfn)
        metadata = self._stat(path, what)
        if metadata["Directory"]:
            raise NotFound(f"{lfn} is a directory on {self.seName}")
        metadata.update(Checksum=self._checksum(path, what, metadata["Size"]), ChecksumType="Adler32")
        return metadata

    def exists(self, lfn: str) -> bool:
        try:
            self._stat(self._path(lfn), f"existence of {lfn} on {self.seName}")
        except NotFound:
            return False
        return True

    def getFileSize(self, lfn: str) -> int:
        metadata = self._stat(self._path(lfn), f"size of {lfn} on {self.seName}")
        if metadata["Directory"]:
            raise NotFound(f"{lfn} is a directory on {self.seName}")
        return int(metadata["Size"])

    # -- directories ----------------------------------------------------------------------------------
    def listDirectory(self, path: str) -> dict[str, dict[str, Any]]:
        what = f"listing of {path} on {self.seName}"
        own = self._path(path).rstrip("/") or "/"
        if not self._stat(own, what)["Directory"]:
            raise NotFound(f"{path}: no such directory on {self.seName}")
        files: dict[str, Any] = {}
        subDirs: dict[str, Any] = {}
        for entry in sorted(parseListing(self._xrdfs(what, "ls", "-l", own)), key=lambda e: e["Path"]):
            if PARTIAL.match(entry["Path"].rsplit("/", 1)[-1]):
                continue
            child = entry["Path"][len(self.prefix):] or "/"
            if entry["Directory"]:
                subDirs[child] = {}
            else:
                files[child] = {key: value for key, value in entry.items() if key != "Path"}
        return {"Files": files, "SubDirs": subDirs}

    def createDirectory(self, path: str) -> None:
        self._xrdfs(f"creation of {path} on {self.seName}", "mkdir", "-p", self._path(path))

    def removeDirectory(self, path: str, recursive: bool = False) -> dict[str, int]:
        if checkPath(path) == "/":
            raise NotFound(f"/: the top directory of {self.seName} is not removed")
        listing = self.listDirectory(path)
        files, size = 0, 0
        if recursive:
            for subDir in listing["SubDirs"]:
                removed = self.removeDirectory(subDir, True)
                files, size = files + removed["FilesRemoved"], size + removed["SizeRemoved"]
            for lfn, meta in listing["Files"].items():
                self.removeFile(lfn)
                files, size = files + 1, size + meta.get("Size", 0)
        elif listing["Files"] or listing["SubDirs"]:
            raise StorageError(f"{path}: directory not empty", errno.ENOTEMPTY)
        self._xrdfs(f"removal of {path} from {self.seName}", "rmdir", self._path(path))
        return {"FilesRemoved": files, "SizeRemoved": size}

    def ping(self) -> None:
        self._xrdfs(f"{self.seName} ({self.endpoint})", "query", "config", "version")


__all__ = ["XROOTStorage", "parseChecksum", "parseListing", "parseStat", "xrootdError"]
