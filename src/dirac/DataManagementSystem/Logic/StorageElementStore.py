"""The DataManagement/StorageElement service's rules: where files live on its disk and who may write them.

The service keeps ``<BasePath>/<SpaceToken>/<lfn>``: a request names ``/<SpaceToken>/<lfn>``.
A space token is a directory under ``BasePath`` (those of ``SpaceTokens`` are created at start;
an operator may add one, e.g. a separately mounted disk), so several Storage Elements can share
one service: a disk SE and a failover SE, each with its own token and directory.

Who may write (put, remove, create and remove directories), by the ``WritePolicy`` option:

* ``Catalog`` (default): the File Catalog's rules for the LFN, read from the FileCatalogDB
  (the same system): the caller needs the Write permission the nearest existing catalog
  directory of the LFN gives it, exactly as if it registered the file (its home directory is
  created on its first write). FileCatalogManagement and TrustedHost callers may write anywhere.
* ``VO``: any caller allowed to call the method may write valid LFNs under its VO root.

Reading is open to every registered identity (any valid LFN; the service does not check
catalog read permissions).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Security import Properties
from dirac.Core.Utilities.Exceptions import AuthorizationError, ConfigurationError, InvalidArgument, NotFound
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller, lfnError
from dirac.Resources.Storage.DiskArea import DiskArea, checkPath

POLICIES = ("Catalog", "VO")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
MARKER = ".dirac-storage-element"


@dataclass
class StorageElementStore:
    """The disk areas of the service and its write policy."""

    basePath: Path
    spaceTokens: list[str] = field(default_factory=lambda: ["Disk"])
    writePolicy: str = "Catalog"
    catalog: Any = None  # a FileCatalogBase for the Catalog policy

    @classmethod
    def fromCS(cls, section: str, catalog: Any = None) -> StorageElementStore:
        basePath = gConfig.getValue(f"{section}/BasePath", "").strip()
        if not basePath:
            instance = gConfig.getValue("/LocalInstallation/InstancePath", "") or str(Path.home() / ".dirac")
            basePath = str(Path(instance).expanduser() / "storage")
        if not Path(basePath).expanduser().is_absolute():
            raise ConfigurationError(f"{section}/BasePath must be an absolute path, not {basePath!r}")
        tokens = toList(gConfig.getValue(f"{section}/SpaceTokens", "Disk")) or ["Disk"]
        bad = [token for token in tokens if not _TOKEN.match(token)]
        if bad:
            raise ConfigurationError(f"{section}/SpaceTokens: {', '.join(bad)} are not plain names")
        policy = gConfig.getValue(f"{section}/WritePolicy", "Catalog")
        if policy not in POLICIES:
            raise ConfigurationError(f"{section}/WritePolicy = {policy} is not one of {', '.join(POLICIES)}")
        return cls(Path(basePath).expanduser(), tokens, policy, catalog)

    def create(self) -> None:
        """Make the directories of the configured space tokens (at service start)."""
        for token in self.spaceTokens:
            (self.basePath / token).mkdir(parents=True, exist_ok=True)
        marker = self.basePath / MARKER
        if not marker.exists():
            marker.write_text("Files of the DataManagement/StorageElement service; do not remove.\n")

    def resolve(self, path: str) -> tuple[DiskArea, str]:
        """(the disk area, the LFN) of a request path '/<SpaceToken>/<lfn>'."""
        checkPath(path)
        _, token, rest = path.split("/", 2) if path.count("/") >= 2 else (None, path.strip("/"), "")
        area = DiskArea(self.basePath / token, f"space token {token}") if token and _TOKEN.match(token) else None
        if area is None or not area.available():
            raise NotFound(f"{path}: no space token {token!r} on this storage element "
                           f"(configured: {', '.join(self.spaceTokens)})")
        return area, "/" + rest

    def checkWrite(self, credDict: dict[str, Any], lfn: str) -> None:
        """Raise AuthorizationError unless the caller may write ``lfn`` (see the module's documentation)."""
        properties = credDict.get("properties", [])
        if Properties.TrustedHost in properties or Properties.FileCatalogManagement in properties:
            return
        caller = Caller.fromCredentials(credDict)
        error = lfnError(lfn, caller)
        if error:
            raise InvalidArgument(f"{lfn}: {error}")
        if self.writePolicy == "Catalog":
            from dirac.DataManagementSystem.Logic.CatalogSecurity import WRITE

            allowed, failed = self.catalog.screen(caller, [lfn], WRITE)
            if not allowed:
                raise AuthorizationError(f"{lfn}: {failed.get(lfn, 'Permission denied')} "
                                         f"(the File Catalog gives {caller.user}@{caller.group} no write access)")

    def space(self) -> dict[str, int]:
        """{Free, Total} bytes of the disk holding the store."""
        usage = shutil.disk_usage(self.basePath)
        return {"Free": usage.free, "Total": usage.total}
