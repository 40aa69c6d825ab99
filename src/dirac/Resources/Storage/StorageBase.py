"""The interface every Storage Element plug-in implements, and the errors they raise.

A plug-in serves one access protocol of one Storage Element, configured by a section of
``/Resources/StorageElements/<SE>`` (DIRAC's layout)::

    DIP                              # the section name is the plug-in name (or PluginName = ...)
    {
      Protocol = https
      Host = server.example.org
      Port = 8443
      Path = /DataManagement/StorageElement
      SpaceToken = Disk              # optional: an area of the endpoint
      Access = remote
    }

Plug-in methods work on one LFN and raise ``StorageError`` subclasses; the ``StorageElement``
facade turns them into DIRAC's bulk answers ``{"Successful": {lfn: ...}, "Failed": {lfn: reason}}``.
Files appear under their name whole or not at all (written to a temporary name, then renamed).
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Config import gConfig
from dirac.Core.Tornado.Client import DEFAULT_TIMEOUT
from dirac.Core.Utilities.Exceptions import DiracError


class StorageError(DiracError):
    """A storage operation failed."""

    errno = errno.EIO


class ChecksumMismatch(StorageError):
    """The bytes stored or read do not have the expected Adler32."""

    errno = DErrno.EBADCKS


class SizeMismatch(StorageError):
    """The bytes stored or read are not the expected size."""

    errno = DErrno.EFILESIZE


class StorageFull(StorageError):
    """No space left on the storage (ENOSPC, quota)."""

    errno = errno.ENOSPC


class StorageUnavailable(StorageError):
    """The storage cannot be used now: its server is stopped or unreachable, or its access is not Active."""

    errno = errno.EHOSTDOWN


CHECKSUM_MODES = ("auto", "readback")


def joinPath(*parts: str) -> str:
    """'/a', 'b/', '/c' -> '/a/b/c' (no empty components)."""
    return "/" + "/".join(piece for part in parts for piece in str(part).split("/") if piece)


def timeoutOption(seName: str, parameters: dict[str, Any], timeout: float | None) -> float:
    """Seconds per request: the plug-in section's ``Timeout``, the client's ``timeout``, /DIRAC/Client/Timeout."""
    try:
        return float(parameters.get("Timeout") or timeout or gConfig.getValue("/DIRAC/Client/Timeout", DEFAULT_TIMEOUT))
    except ValueError:
        raise StorageError(f"{seName}: Timeout must be a number of seconds, not {parameters.get('Timeout')!r}",
                           errno.EINVAL) from None


def checksumModeOption(seName: str, parameters: dict[str, Any]) -> str:
    """The section's ``ChecksumMode``, lower case: auto (the server's Adler32 when it gives one) or readback."""
    mode = str(parameters.get("ChecksumMode") or "Auto").lower()
    if mode not in CHECKSUM_MODES:
        raise StorageError(f"{seName}: ChecksumMode must be Auto or ReadBack, not {mode}", errno.EINVAL)
    return mode


@contextlib.contextmanager
def partialDownload(localPath: Path, what: str) -> Iterator[Path]:
    """A hidden file next to ``localPath`` to download into: renamed to ``localPath`` when the block succeeds,
    removed otherwise, so that ``localPath`` is whole or absent. A local write failure is a StorageError."""
    partial = localPath.with_name(f".{localPath.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield partial
        os.replace(partial, localPath)
    except OSError as exc:
        raise StorageError(f"{what}: cannot write {localPath}: {exc.strerror or exc}", exc.errno or errno.EIO) from None
    finally:
        partial.unlink(missing_ok=True)


class StorageBase(ABC):
    """One access protocol of one Storage Element."""

    pluginName: ClassVar[str] = ""
    #: protocols this plug-in can read from and write to (DIRAC's _INPUT/_OUTPUT_PROTOCOLS)
    protocols: ClassVar[tuple[str, ...]] = ()
    #: protocols in which ``getURL`` gives a transport URL (DIRAC's TURL) that other programs read directly,
    #: e.g. a job's payload with xrdcp, curl or ROOT; not DIP's, whose URLs name the RPC service
    transportProtocols: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seName: str, parameters: dict[str, Any]):
        self.seName = seName
        self.parameters = dict(parameters)
        self.protocol = str(parameters.get("Protocol") or (self.protocols[0] if self.protocols else ""))
        self.host = str(parameters.get("Host") or "")
        self.port = str(parameters.get("Port") or "")
        self.wsUrl = str(parameters.get("WSUrl") or "")
        self.basePath = str(parameters.get("Path") or "/")
        self.spaceToken = str(parameters.get("SpaceToken") or "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.seName!r}, {self.getURL('/')!r})"

    # -- URLs -----------------------------------------------------------------------------------------
    def getURL(self, lfn: str, protocol: str | None = None) -> str:
        """The URL of ``lfn`` on this storage: ``<Protocol>://<Host>:<Port><WSUrl><Path><lfn>``."""
        if protocol and protocol != self.protocol:
            raise StorageError(f"{self.seName}: plug-in {self.pluginName} does not speak {protocol}")
        endpoint = f"{self.host}:{self.port}" if self.port else self.host
        return f"{self.protocol}://{endpoint}{self.wsUrl}{joinPath(self.basePath, lfn)}"

    # -- files ------------------------------------------------------------------------------------------
    @abstractmethod
    def putFile(self, lfn: str, localPath: Path, size: int, checksum: str) -> dict[str, Any]:
        """Store the local file as ``lfn``; refused (nothing stored) unless it has ``size`` bytes and Adler32
        ``checksum``. Returns {Size, Checksum} of what was stored."""

    @abstractmethod
    def getFile(self, lfn: str, localPath: Path) -> int:
        """Copy ``lfn`` to the local file ``localPath`` (whole or not at all); its size."""

    @abstractmethod
    def removeFile(self, lfn: str) -> bool:
        """Delete ``lfn``; False when it was not there (not an error, as in DIRAC)."""

    @abstractmethod
    def getFileMetadata(self, lfn: str) -> dict[str, Any]:
        """{Size, Checksum, ChecksumType, ModificationDate, File: True} of ``lfn`` (NotFound when absent)."""

    @abstractmethod
    def exists(self, lfn: str) -> bool:
        """Whether a file or directory ``lfn`` is there."""

    def getFileSize(self, lfn: str) -> int:
        return int(self.getFileMetadata(lfn)["Size"])

    # -- directories ----------------------------------------------------------------------------------
    @abstractmethod
    def listDirectory(self, path: str) -> dict[str, dict[str, Any]]:
        """{"Files": {lfn: metadata}, "SubDirs": {path: {}}} of a directory."""

    @abstractmethod
    def createDirectory(self, path: str) -> None:
        """Create a directory and its parents (no error when it exists)."""

    @abstractmethod
    def removeDirectory(self, path: str, recursive: bool = False) -> dict[str, int]:
        """Remove a directory (with its content when ``recursive``); {FilesRemoved, SizeRemoved}."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StorageUnavailable when the storage cannot be used."""
