"""The File Catalog's security and settings: LFN screening, permissions, home directories.

Permissions follow DIRAC's directory-level policy: what a caller may do with a path is
given by the nearest existing directory that is the path or above it (its owner, group and
mode bits), so a file is governed by its directory and a new path by the directory it would
be created in. Callers with FileCatalogManagement may do everything. A user's home
``/<vo>/user/<initial>/<user>`` is created, owned by the user, the first time the user
writes below it; the directories above it belong to the VO administrator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dirac.Core.Config import Registry, gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from dirac.DataManagementSystem.DB.FileCatalogTables import parentOf
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller, homeDirectory, lfnError, permissionsFor

DENIED = "Permission denied"
BulkResult = dict[str, dict[str, Any]]
READ, WRITE, EXECUTE = "Read", "Write", "Execute"

#: DIRAC's operation names grouped by the permission they need (hasAccess takes either form)
READ_METHODS = {"exists", "isFile", "getFileSize", "getFileMetadata", "getReplicas", "getReplicaStatus",
                "listDirectory", "isDirectory", "getDirectoryReplicas", "getDirectorySize", "getDirectoryMetadata",
                "getDirectoryDump", "getFileUserMetadata", "getDirectoryUserMetadata", "getDatasets",
                "getDatasetFiles"}
WRITE_METHODS = {"changePathOwner", "changePathGroup", "changePathMode", "addFile", "setFileStatus", "removeFile",
                 "addReplica", "removeReplica", "setReplicaStatus", "createDirectory", "removeDirectory",
                 "setMetadata", "removeMetadata", "addDataset", "removeDataset", "freezeDataset", "releaseDataset"}


def bulk(successful: dict[str, Any] | None = None, failed: dict[str, Any] | None = None) -> BulkResult:
    return {"Successful": successful or {}, "Failed": failed or {}}


def asDict(lfns: str | list | dict) -> dict[str, Any]:
    """DIRAC's LFN argument forms (one LFN, a list, a dict) as a dict {lfn: details or None}."""
    if isinstance(lfns, str):
        return {lfns: None}
    if isinstance(lfns, dict):
        return dict(lfns)
    return dict.fromkeys(lfns)


def voAdministrator(vo: str) -> tuple[str, str]:
    """(user, group) owning /<vo>: the VO's VOAdmin and VOAdminGroup (else that user's default group)."""
    user = gConfig.getValue(f"/Registry/VO/{vo}/VOAdmin", "")
    group = gConfig.getValue(f"/Registry/VO/{vo}/VOAdminGroup", "") or (Registry.getDefaultGroupForUser(user) or "")
    return user, group


@dataclass
class CatalogSettings:
    """Options of the FileCatalog service (see its ConfigTemplate.cfg section)."""

    directoryMode: int = 0o755
    fileMode: int = 0o644
    globalReadAccess: bool = False
    defaultFileStatus: str = "AprioriGood"
    validFileStatus: list[str] = field(default_factory=lambda: ["AprioriGood", "Trash", "Removing", "Probing"])
    validReplicaStatus: list[str] = field(default_factory=lambda: ["AprioriGood", "Trash", "Removing", "Probing"])
    visibleFileStatus: list[str] = field(default_factory=lambda: ["AprioriGood"])
    visibleReplicaStatus: list[str] = field(default_factory=lambda: ["AprioriGood"])

    @classmethod
    def fromCS(cls, section: str) -> CatalogSettings:
        defaults = cls()

        def statuses(option: str, default: list[str]) -> list[str]:
            return toList(gConfig.getValue(f"{section}/{option}", "")) or default

        return cls(
            directoryMode=int(str(gConfig.getValue(f"{section}/DirectoryMode", "755")), 8),
            fileMode=int(str(gConfig.getValue(f"{section}/FileMode", "644")), 8),
            globalReadAccess=gConfig.getValue(f"{section}/GlobalReadAccess", False),
            defaultFileStatus=gConfig.getValue(f"{section}/DefaultFileStatus", defaults.defaultFileStatus),
            validFileStatus=statuses("ValidFileStatus", defaults.validFileStatus),
            validReplicaStatus=statuses("ValidReplicaStatus", defaults.validReplicaStatus),
            visibleFileStatus=statuses("VisibleFileStatus", defaults.visibleFileStatus),
            visibleReplicaStatus=statuses("VisibleReplicaStatus", defaults.visibleReplicaStatus))


class FileCatalogBase:
    """Validation and permission screening shared by the namespace and the metadata operations."""

    def __init__(self, db: FileCatalogDB, settings: CatalogSettings | None = None,
                 voOwner: Callable[[str], tuple[str, str]] = voAdministrator,
                 userGroups: Callable[[str], list[str]] = Registry.getGroupsForUser):
        self.db = db
        self.settings = settings or CatalogSettings()
        self.voOwner = voOwner
        self.userGroups = userGroups

    def screen(self, caller: Caller, paths: Iterable[str], access: str | None, allowRoot: bool = False
               ) -> tuple[list[str], dict[str, str]]:
        """(paths valid and allowed, {path: why not}); ``access`` is Read, Write, Execute or None (no check)."""
        failed: dict[str, str] = {}
        good = []
        for path in paths:
            error = lfnError(path, caller, allowRoot)
            if error:
                failed[path] = error
            else:
                good.append(path)
        if access is None or caller.isAdmin or (access == READ and self.settings.globalReadAccess) or not good:
            return good, failed
        if access == WRITE:
            self.ensureHome(caller, good)
        permissions = self.permissions(caller, good)
        allowed = []
        for path in good:
            if permissions[path][access]:
                allowed.append(path)
            else:
                failed[path] = DENIED
        return allowed, failed

    def permissions(self, caller: Caller, paths: Iterable[str]) -> dict[str, dict[str, bool]]:
        """{path: {Read, Write, Execute}} from the nearest existing directory of each path (the paths governed by
        one directory share one dict: read it, do not change it)."""
        byDirectory: dict[int, dict[str, bool]] = {}
        result = {}
        for path, row in self.db.nearestDirectories(paths).items():
            rights = byDirectory.get(row["DirID"])
            if rights is None:
                rights = byDirectory[row["DirID"]] = permissionsFor(caller, row["Owner"], row["OwnerGroup"],
                                                                    row["Mode"])
            result[path] = rights
        return result

    def ensureHome(self, caller: Caller, paths: Iterable[str]) -> None:
        """Create the caller's home directory (owned by the caller) when it writes below it for the first time."""
        if not caller.vo or not caller.user:
            return
        home = homeDirectory(caller.vo, caller.user)
        if not any(path == home or path.startswith(home + "/") for path in paths):
            return
        if self.db.getDirectories([home]):
            return
        owner, group = self.voOwner(caller.vo)
        self.db.makeDirectories([parentOf(home)], owner, group, self.settings.directoryMode)
        self.db.makeDirectories([home], caller.user, caller.group, self.settings.directoryMode)

    def ensureVORoot(self, vo: str) -> None:
        """Create /<vo> owned by the VO administrator if it does not exist."""
        owner, group = self.voOwner(vo)
        self.db.makeDirectories([f"/{vo}"], owner, group, self.settings.directoryMode)

    def readable(self, caller: Caller, paths: Iterable[str]) -> set[str]:
        """The paths among ``paths`` the caller may read."""
        paths = set(paths)
        if caller.isAdmin or self.settings.globalReadAccess:
            return paths
        permissions = self.permissions(caller, paths)
        return {path for path in paths if path in permissions and permissions[path][READ]}


