"""The ``File`` plug-in: a Storage Element that is a directory this machine reaches (local disk, NFS, CephFS).

``Path`` is the directory holding the files (``<Path>/<lfn>``); URLs are ``file://<Path><lfn>``.
The client writes and reads the files itself, with the rights of its Unix user: use it for
storage only trusted processes reach (a one-box instance, a shared cluster file system).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dirac.Core.Utilities.Exceptions import NotFound
from dirac.Resources.Storage.DiskArea import DiskArea
from dirac.Resources.Storage.StorageBase import (
    StorageBase,
    StorageError,
    StorageUnavailable,
    joinPath,
    partialDownload,
)


class FileStorage(StorageBase):
    """A Storage Element in a local directory."""

    pluginName = "File"
    protocols = ("file",)
    transportProtocols = ("file",)

    def __init__(self, seName: str, parameters: dict[str, Any], **_clientOptions: Any):
        super().__init__(seName, parameters)
        self.area = DiskArea(joinPath(self.basePath, self.spaceToken), seName)

    def getURL(self, lfn: str, protocol: str | None = None) -> str:
        if protocol and protocol != "file":
            raise StorageError(f"{self.seName}: plug-in File does not speak {protocol}")
        return f"file://{self.area.local(lfn)}"

    def ping(self) -> None:
        if not self.area.available():
            raise StorageUnavailable(f"{self.seName} is not available: {self.area.root} is not a directory")

    def putFile(self, lfn: str, localPath: Path, size: int, checksum: str) -> dict[str, Any]:
        self.ping()
        with open(localPath, "rb") as source:
            return self.area.put(source, lfn, size, checksum)

    def getFile(self, lfn: str, localPath: Path) -> int:
        localPath = Path(localPath)
        with partialDownload(localPath, f"download of {lfn} from {self.seName}") as partial, \
                self.area.open(lfn) as source, open(partial, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        return localPath.stat().st_size

    def removeFile(self, lfn: str) -> bool:
        self.ping()
        return self.area.remove(lfn)

    def getFileMetadata(self, lfn: str) -> dict[str, Any]:
        metadata = self.area.metadata(lfn)
        if not metadata["File"]:
            raise NotFound(f"{lfn} is a directory on {self.seName}")
        return metadata

    def exists(self, lfn: str) -> bool:
        self.ping()
        return self.area.exists(lfn)

    def listDirectory(self, path: str) -> dict[str, dict[str, Any]]:
        return self.area.listDirectory(path)

    def createDirectory(self, path: str) -> None:
        self.area.createDirectory(path)

    def removeDirectory(self, path: str, recursive: bool = False) -> dict[str, int]:
        return self.area.removeDirectory(path, recursive)
