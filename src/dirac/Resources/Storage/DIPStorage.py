"""The ``DIP`` plug-in: a Storage Element served by a DataManagement/StorageElement service over HTTPS.

Configuration (DIRAC's DIP section; the service route is the ``Path``)::

    DIP
    {
      Protocol = https
      Host = server.example.org
      Port = 8443
      Path = /DataManagement/StorageElement
      SpaceToken = Disk
    }

A file ``lfn`` is ``/<SpaceToken><lfn>`` on the service and its URL is
``https://<Host>:<Port><Path>/<SpaceToken><lfn>``. Uploads and downloads are streamed; the
service checks the size and Adler32 of what it receives.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import AuthorizationError, DiracError, NotFound
from dirac.Resources.Storage.StorageBase import (
    ChecksumMismatch,
    SizeMismatch,
    StorageBase,
    StorageError,
    StorageFull,
    StorageUnavailable,
    joinPath,
)

DEFAULT_ROUTE = "/DataManagement/StorageElement"
_ERRORS: dict[int, type[DiracError]] = {
    errno.ENOENT: NotFound, errno.EACCES: AuthorizationError, errno.ENOSPC: StorageFull,
    DErrno.EBADCKS: ChecksumMismatch, DErrno.EFILESIZE: SizeMismatch, DErrno.EDISET: StorageUnavailable,
    errno.ECONNREFUSED: StorageUnavailable, errno.EHOSTDOWN: StorageUnavailable,
}


class DIPStorage(StorageBase):
    """A Storage Element behind the project's StorageElement service."""

    pluginName = "DIP"
    protocols = ("https", "dips")

    def __init__(self, seName: str, parameters: dict[str, Any], **rpcOptions: Any):
        parameters = {"Protocol": "https", "Path": DEFAULT_ROUTE, "Port": "8443", **parameters}
        super().__init__(seName, parameters)
        self.serviceURL = f"https://{self.host}:{self.port}{self.basePath}"
        self.rpcOptions = rpcOptions

    def _rpc(self) -> RPCClient:
        return RPCClient(self.serviceURL, **self.rpcOptions)

    def _path(self, lfn: str) -> str:
        return joinPath(self.spaceToken, lfn) if self.spaceToken else lfn

    def getURL(self, lfn: str, protocol: str | None = None) -> str:
        if protocol and protocol not in self.protocols:
            raise StorageError(f"{self.seName}: plug-in DIP does not speak {protocol}")
        return f"{self.serviceURL}{self._path(lfn)}"

    def _check(self, result: dict[str, Any], what: str) -> Any:
        """The value of an S_OK; a typed error naming the SE for an S_ERROR."""
        if result["OK"]:
            return result["Value"]
        code = result.get("Errno", 0)
        message = result["Message"]
        if code in (DErrno.EDISET, errno.ECONNREFUSED):
            message = f"{self.seName} is not available ({message})"
        raise _ERRORS.get(code, StorageError)(f"{what}: {message}", code or None)

    def _one(self, result: dict[str, Any], path: str, what: str) -> Any:
        """The value for ``path`` of a bulk answer."""
        value = self._check(result, what)
        if path in value["Failed"]:
            raise StorageError(f"{what}: {value['Failed'][path]}")
        return value["Successful"][path]

    # -- files ------------------------------------------------------------------------------------------
    def putFile(self, lfn: str, localPath: Path, size: int, checksum: str) -> dict[str, Any]:
        return self._check(self._rpc().sendFile(localPath, self._path(lfn), size, checksum), f"upload of {lfn}")

    def getFile(self, lfn: str, localPath: Path) -> int:
        self._check(self._rpc().receiveFile(localPath, self._path(lfn)), f"download of {lfn}")
        return Path(localPath).stat().st_size

    def removeFile(self, lfn: str) -> bool:
        path = self._path(lfn)
        return bool(self._one(self._rpc().remove([path]), path, f"removal of {lfn}"))

    def getFileMetadata(self, lfn: str) -> dict[str, Any]:
        path = self._path(lfn)
        result = self._check(self._rpc().getMetadata([path]), f"metadata of {lfn}")
        if path in result["Failed"]:
            raise NotFound(f"{lfn}: {result['Failed'][path]}")
        metadata = result["Successful"][path]
        if not metadata.get("File"):
            raise NotFound(f"{lfn} is a directory on {self.seName}")
        return metadata

    def exists(self, lfn: str) -> bool:
        path = self._path(lfn)
        return bool(self._one(self._rpc().exists([path]), path, f"existence of {lfn}"))

    # -- directories ----------------------------------------------------------------------------------
    def listDirectory(self, path: str) -> dict[str, dict[str, Any]]:
        listing = self._check(self._rpc().listDirectory(self._path(path)), f"listing of {path}")
        cut = len(self._path("/").rstrip("/"))
        return {kind: {entry[cut:]: value for entry, value in entries.items()} for kind, entries in listing.items()}

    def createDirectory(self, path: str) -> None:
        self._check(self._rpc().createDirectory(self._path(path)), f"creation of {path}")

    def removeDirectory(self, path: str, recursive: bool = False) -> dict[str, int]:
        return self._check(self._rpc().removeDirectory(self._path(path), recursive), f"removal of {path}")

    def ping(self) -> None:
        self._check(self._rpc().ping(), f"{self.seName} ({self.serviceURL})")

    def getFreeSpace(self) -> int:
        return int(self._check(self._rpc().getFreeDiskSpace(), f"free space of {self.seName}"))
