"""DataManagement/StorageElement: a DIRAC Storage Element on the server's disk, over HTTPS.

Paths are ``/<SpaceToken>/<lfn>`` (see ``Logic/StorageElementStore.py``). Files arrive with
``streamFromClient`` (spooled by the framework, then copied into place while their Adler32 is
computed: a wrong size or checksum stores nothing) and leave with ``streamToClient``, chunk
by chunk. Bulk methods answer ``{"Successful": {path: ...}, "Failed": {path: reason}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar

from dirac.Core.Config.PathFinder import getServiceSection
from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from dirac.DataManagementSystem.Logic.CatalogSecurity import CatalogSettings, FileCatalogBase
from dirac.DataManagementSystem.Logic.StorageElementStore import StorageElementStore

READERS = [AUTHENTICATED]
WRITERS = [Properties.NormalUser, Properties.FileCatalogManagement, Properties.TrustedHost]


class StorageElementHandler(RequestHandler):
    """The StorageElement service."""

    store: ClassVar[StorageElementStore]

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        catalog = None
        store = StorageElementStore.fromCS(serviceInfo.section)
        if store.writePolicy == "Catalog":
            settings = CatalogSettings.fromCS(getServiceSection("DataManagement/FileCatalog"))
            catalog = FileCatalogBase(FileCatalogDB(), settings)
        store.catalog = catalog
        store.create()
        cls.store = store
        cls.log.info("storage element files in %s, space tokens %s, write policy %s", store.basePath,
                     ", ".join(store.spaceTokens), store.writePolicy)

    def _writable(self, path: str) -> tuple[Any, str]:
        area, lfn = self.store.resolve(path)
        self.store.checkWrite(self.credDict, lfn)
        return area, lfn

    def _bulk(self, paths: list[str] | str, operation: Callable[[str], Any]) -> dict[str, dict[str, Any]]:
        successful: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for path in [paths] if isinstance(paths, str) else paths:
            try:
                successful[path] = operation(path)
            except DiracError as exc:
                failed[path] = exc.message
            except OSError as exc:
                self.log.warning("%s failed for %s: %s", operation.__name__, path, exc)
                failed[path] = f"{path}: {exc.strerror or exc}"
        return {"Successful": successful, "Failed": failed}

    # -- transfers --------------------------------------------------------------------------------------
    auth_streamFromClient = WRITERS

    def export_streamFromClient(self, spooled: str, path: str, size: int, checksum: str) -> dict[str, Any]:
        """Store the uploaded file as ``path`` if it has ``size`` bytes and Adler32 ``checksum``; {Size, Checksum}."""
        area, lfn = self._writable(path)
        with open(spooled, "rb") as source:
            stored = area.put(source, lfn, size, checksum)
        self.log.info("%s stored by %s", path, self.credDict.get("username") or self.credDict.get("hostname"))
        return stored

    auth_streamToClient = READERS

    def export_streamToClient(self, path: str) -> BinaryIO:
        """The bytes of the file ``path``."""
        area, lfn = self.store.resolve(path)
        return area.open(lfn)

    # -- files ---------------------------------------------------------------------------------------------
    auth_exists = READERS

    def export_exists(self, paths: list[str] | str) -> dict:
        """{path: True/False}."""
        def exists(path: str) -> bool:
            area, lfn = self.store.resolve(path)
            return area.exists(lfn)

        return self._bulk(paths, exists)

    auth_getMetadata = READERS

    def export_getMetadata(self, paths: list[str] | str) -> dict:
        """{path: {Size, Checksum, ChecksumType, ModificationDate, File, Directory}}."""
        def metadata(path: str) -> dict[str, Any]:
            area, lfn = self.store.resolve(path)
            return area.metadata(lfn)

        return self._bulk(paths, metadata)

    auth_remove = WRITERS

    def export_remove(self, paths: list[str] | str) -> dict:
        """Delete files: {path: True (removed) / False (was not there)}."""
        def remove(path: str) -> bool:
            area, lfn = self._writable(path)
            return area.remove(lfn)

        return self._bulk(paths, remove)

    # -- directories ---------------------------------------------------------------------------------------
    auth_listDirectory = READERS

    def export_listDirectory(self, path: str) -> dict:
        """{Files: {path: metadata}, SubDirs: {path: {}}} with paths as the client named them."""
        area, lfn = self.store.resolve(path)
        listing = area.listDirectory(lfn)
        prefix = path[: len(path) - len(lfn)] if lfn != "/" else path.rstrip("/")
        return {kind: {prefix + entry: value for entry, value in entries.items()} for kind, entries in listing.items()}

    auth_createDirectory = WRITERS

    def export_createDirectory(self, path: str) -> None:
        area, lfn = self._writable(path)
        area.createDirectory(lfn)

    auth_removeDirectory = WRITERS

    def export_removeDirectory(self, path: str, recursive: bool = False) -> dict:
        """Remove a directory; {FilesRemoved, SizeRemoved}."""
        area, lfn = self._writable(path)
        return area.removeDirectory(lfn, recursive)

    # -- space -----------------------------------------------------------------------------------------------
    auth_getFreeDiskSpace = READERS

    def export_getFreeDiskSpace(self) -> int:
        """Free bytes on the disk of the store (DIRAC's method name)."""
        return self.store.space()["Free"]

    auth_getTotalDiskSpace = READERS

    def export_getTotalDiskSpace(self) -> int:
        return self.store.space()["Total"]
