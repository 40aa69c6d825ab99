"""The StorageElement facade: one Storage Element of the CS, bulk operations by LFN, the plug-in chosen for you.

Configuration (DIRAC's layout)::

    /Resources/StorageElements/<SE>
      BackendType = DISK              # informational
      AccessProtocols = https, file   # protocols used to read, in order (default: every plug-in)
      WriteProtocols = https          # protocols used to write, in order (default: every plug-in)
      ReadAccess = Active             # Active or Degraded allow; InActive, Banned, ... refuse
      WriteAccess = Active
      RemoveAccess = Active
      <Plug-in section>               # named after the plug-in (File, DIP, WebDAV, XROOT, S3) or with PluginName = ...
      {
        Protocol = ...  Host = ...  Port = ...  Path = ...  SpaceToken = ...
      }

Every method takes one LFN, a list or a dict and answers DIRAC's
``S_OK({"Successful": {lfn: ...}, "Failed": {lfn: reason}})``; S_ERROR only when the SE as a
whole cannot be used (unknown, misconfigured, access not Active). Per LFN, the plug-ins are
tried in protocol order and the next one is used only when one is unreachable.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dirac.Core.Base.Components import loadClass, pluginClasses
from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Utilities.Adler import fileAdler32, sameAdler32
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError
from dirac.Core.Utilities.Logging import getLogger
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType
from dirac.Resources.Storage.StorageBase import ChecksumMismatch, StorageBase, StorageUnavailable

log = getLogger("StorageElement")

STORAGE_ELEMENTS = "/Resources/StorageElements"
STORAGE_PLUGINS = "dirac.storage_plugins"
_BUILTIN_PLUGINS = {"File": "dirac.Resources.Storage.FileStorage:FileStorage",
                    "DIP": "dirac.Resources.Storage.DIPStorage:DIPStorage",
                    "WebDAV": "dirac.Resources.Storage.WebDAVStorage:WebDAVStorage",
                    "XROOT": "dirac.Resources.Storage.XROOTStorage:XROOTStorage",
                    "GFAL2_XROOT": "dirac.Resources.Storage.XROOTStorage:XROOTStorage",
                    "S3": "dirac.Resources.Storage.S3Storage:S3Storage"}
USABLE_STATUS = ("Active", "Degraded")
READ, WRITE, REMOVE = "ReadAccess", "WriteAccess", "RemoveAccess"
SE_OPTIONS = {"BackendType", "AccessProtocols", "WriteProtocols", "ReadAccess", "WriteAccess", "RemoveAccess",
              "CheckAccess", "OccupancyLFN", "SpaceReservation", "Alias", "BaseSE"}

BulkAnswer = DReturnType[dict[str, dict[str, Any]]]


def getStorageElements() -> list[str]:
    """Names of every Storage Element in the CS."""
    result = gConfig.getSections(STORAGE_ELEMENTS)
    return result["Value"] if result["OK"] else []


def storagePluginClasses() -> dict[str, str]:
    """{plug-in name: 'module:Class'}: the built-in ones and those of the dirac.storage_plugins entry points."""
    return pluginClasses(_BUILTIN_PLUGINS, STORAGE_PLUGINS)


def _lfnList(lfns: str | Iterable[str] | dict[str, Any]) -> list[str]:
    return [lfns] if isinstance(lfns, str) else list(lfns)


class StorageElement:
    """One Storage Element of the CS."""

    def __init__(self, name: str, **clientOptions: Any):
        self.name = name
        self.section = f"{STORAGE_ELEMENTS}/{name}"
        self.clientOptions = clientOptions
        self.options: dict[str, str] = {}
        self.plugins: list[StorageBase] = []
        self.error = ""
        try:
            self._configure()
        except DiracError as exc:
            self.error = exc.message

    def __repr__(self) -> str:
        return f"StorageElement({self.name!r})"

    def _configure(self) -> None:
        if not gConfig.isSection(self.section):
            raise ConfigurationError(f"no Storage Element {self.name} in the CS ({self.section})")
        options = gConfig.getOptionsDict(self.section)
        self.options = options["Value"] if options["OK"] else {}
        classes = storagePluginClasses()
        for section in gConfig.getSections(self.section)["Value"]:
            parameters = gConfig.getOptionsDict(f"{self.section}/{section}")["Value"]
            pluginName = parameters.get("PluginName") or parameters.get("ProtocolName") or section
            if pluginName not in classes:
                raise ConfigurationError(f"{self.section}/{section}: unknown storage plug-in {pluginName} "
                                         f"(known: {', '.join(sorted(classes))})")
            cls = loadClass(classes[pluginName], f"storage plug-in {pluginName}")
            self.plugins.append(cls(self.name, parameters, **self.clientOptions))
        if not self.plugins:
            raise ConfigurationError(f"{self.section} has no plug-in section (e.g. DIP or File)")

    # -- status and plug-ins -----------------------------------------------------------------------------
    def isValid(self, operation: str = READ) -> DReturnType[None]:
        """S_OK when the SE is configured and ``operation`` (ReadAccess, WriteAccess, RemoveAccess) is allowed."""
        if self.error:
            return S_ERROR(errno.EINVAL, self.error)
        status = self.options.get(operation, "Active")
        if status not in USABLE_STATUS:
            return S_ERROR(errno.EHOSTDOWN, f"{self.name}: {operation} is {status}")
        return S_OK()

    def status(self) -> dict[str, bool]:
        """{Read, Write, Remove}: which operations the SE allows now."""
        return {name: self.isValid(operation)["OK"]
                for name, operation in (("Read", READ), ("Write", WRITE), ("Remove", REMOVE))}

    def _plugins(self, operation: str, protocol: str | None = None) -> list[StorageBase]:
        order = toList(self.options.get("WriteProtocols" if operation == WRITE else "AccessProtocols", ""))
        if protocol:
            order = [protocol]
        if not order:
            return list(self.plugins)
        chosen = [plugin for wanted in order for plugin in self.plugins
                  if plugin.protocol == wanted or wanted in plugin.protocols]
        return list(dict.fromkeys(chosen))

    def _bulk(self, operation: str, lfns: Iterable[str], action: Callable[[StorageBase, str], Any],
              protocol: str | None = None) -> BulkAnswer:
        valid = self.isValid(operation)
        if not valid["OK"]:
            return valid
        plugins = self._plugins(operation, protocol)
        if not plugins:
            return S_ERROR(errno.EPROTONOSUPPORT, f"{self.name} has no plug-in for protocol {protocol}")
        successful: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for lfn in lfns:
            for plugin in plugins:
                try:
                    successful[lfn] = action(plugin, lfn)
                    failed.pop(lfn, None)
                    break
                except StorageUnavailable as exc:
                    failed[lfn] = exc.message
                except DiracError as exc:
                    failed[lfn] = exc.message
                    break
                except OSError as exc:
                    failed[lfn] = f"{self.name}: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
                    break
            if lfn in failed:
                log.warning("%s: %s failed for %s: %s", self.name, action.__name__, lfn, failed[lfn])
        return S_OK({"Successful": successful, "Failed": failed})

    # -- files ----------------------------------------------------------------------------------------------
    def putFile(self, lfns: dict[str, str | Path], checksums: dict[str, str] | None = None) -> BulkAnswer:
        """Upload {lfn: local path}; each file is checked (size and Adler32) by the storage. Successful: {lfn: size}."""
        checksums = checksums or {}

        def put(plugin: StorageBase, lfn: str) -> int:
            local = Path(lfns[lfn])
            checksum = checksums.get(lfn) or fileAdler32(local)
            result = plugin.putFile(lfn, local, local.stat().st_size, checksum)
            if not sameAdler32(result.get("Checksum"), checksum):
                raise ChecksumMismatch(f"{lfn}: {self.name} stored Adler32 {result.get('Checksum')}, sent {checksum}")
            return int(result["Size"])

        return self._bulk(WRITE, lfns, put)

    def getFile(self, lfns: str | Iterable[str], localPath: str | Path | None = None,
                checksums: dict[str, str] | None = None) -> BulkAnswer:
        """Download files into the directory ``localPath`` (default: the current one), named after their LFN;
        with ``checksums`` each download is checked and removed when it does not match. Successful: {lfn: size}."""
        directory = Path(localPath or os.getcwd())
        checksums = checksums or {}

        def get(plugin: StorageBase, lfn: str) -> int:
            target = directory / os.path.basename(lfn)
            size = plugin.getFile(lfn, target)
            expected = checksums.get(lfn)
            if expected:
                actual = fileAdler32(target)
                if not sameAdler32(actual, expected):
                    target.unlink(missing_ok=True)
                    raise ChecksumMismatch(f"{lfn}: the copy read from {self.name} has Adler32 {actual}, "
                                           f"{expected} expected; the copy was removed")
            return size

        return self._bulk(READ, _lfnList(lfns), get)

    def removeFile(self, lfns: str | Iterable[str]) -> BulkAnswer:
        """Delete files; removing an absent file succeeds, as in DIRAC. Successful: {lfn: True}."""

        def remove(plugin: StorageBase, lfn: str) -> bool:
            plugin.removeFile(lfn)
            return True

        return self._bulk(REMOVE, _lfnList(lfns), remove)

    def exists(self, lfns: str | Iterable[str]) -> BulkAnswer:
        return self._bulk(READ, _lfnList(lfns), lambda plugin, lfn: plugin.exists(lfn))

    def getFileSize(self, lfns: str | Iterable[str]) -> BulkAnswer:
        return self._bulk(READ, _lfnList(lfns), lambda plugin, lfn: plugin.getFileSize(lfn))

    def getFileMetadata(self, lfns: str | Iterable[str]) -> BulkAnswer:
        """{lfn: {Size, Checksum, ChecksumType, ModificationDate, File, Directory}}."""
        return self._bulk(READ, _lfnList(lfns), lambda plugin, lfn: plugin.getFileMetadata(lfn))

    def getURL(self, lfns: str | Iterable[str], protocol: str | None = None) -> BulkAnswer:
        """{lfn: URL} for ``protocol`` (default: the first access protocol)."""
        return self._bulk(READ, _lfnList(lfns), lambda plugin, lfn: plugin.getURL(lfn, protocol), protocol)

    def getTransportURL(self, lfns: str | Iterable[str], protocols: Sequence[str]) -> BulkAnswer:
        """{lfn: TURL}: the URL a program other than DIRAC (a job's payload) reads the file with, in the first of
        ``protocols`` that a read plug-in of the SE (AccessProtocols) serves as a transport protocol. S_ERROR
        (EPROTONOSUPPORT) when none of them does."""
        valid = self.isValid(READ)
        if not valid["OK"]:
            return valid
        plugins = self._plugins(READ)
        offers = [(protocol, plugin) for protocol in protocols for plugin in plugins
                  if protocol in plugin.transportProtocols]
        if not offers:
            readWith = ", ".join(f"{plugin.protocol} ({plugin.pluginName})" for plugin in plugins) or "nothing"
            return S_ERROR(errno.EPROTONOSUPPORT, f"{self.name} gives no transport URL in {', '.join(protocols)} "
                                                  f"(it is read with {readWith})")
        successful: dict[str, str] = {}
        failed: dict[str, str] = {}
        for lfn in _lfnList(lfns):
            errors = []
            for protocol, plugin in offers:
                try:
                    successful[lfn] = plugin.getURL(lfn, protocol)
                    break
                except DiracError as exc:
                    errors.append(exc.message)
            else:
                failed[lfn] = "; ".join(errors)
                log.warning("%s: no transport URL for %s: %s", self.name, lfn, failed[lfn])
        return S_OK({"Successful": successful, "Failed": failed})

    # -- directories -------------------------------------------------------------------------------------------
    def listDirectory(self, paths: str | Iterable[str]) -> BulkAnswer:
        return self._bulk(READ, _lfnList(paths), lambda plugin, path: plugin.listDirectory(path))

    def createDirectory(self, paths: str | Iterable[str]) -> BulkAnswer:
        def create(plugin: StorageBase, path: str) -> bool:
            plugin.createDirectory(path)
            return True

        return self._bulk(WRITE, _lfnList(paths), create)

    def removeDirectory(self, paths: str | Iterable[str], recursive: bool = False) -> BulkAnswer:
        return self._bulk(REMOVE, _lfnList(paths), lambda plugin, path: plugin.removeDirectory(path, recursive))
