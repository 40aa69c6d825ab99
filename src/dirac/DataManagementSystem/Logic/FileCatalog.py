"""The File Catalog's namespace operations: what each bulk call checks and answers.

Every method takes the caller and a batch of LFNs (a string, a list or DIRAC's dict
{lfn: details}) and answers DIRAC's ``{"Successful": {...}, "Failed": {lfn: reason}}``:
invalid LFNs and refused ones are in Failed with the reason (rules in ``CatalogSecurity``),
the rest goes to the database in one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dirac.DataManagementSystem.DB.FileCatalogDB import NO_SUCH, fileMetadata, newGUID
from dirac.DataManagementSystem.DB.FileCatalogListings import directoryMetadata
from dirac.DataManagementSystem.Logic.CatalogMetadata import CatalogMetadata
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller
from dirac.DataManagementSystem.Logic.CatalogSecurity import (
    DENIED,
    EXECUTE,
    READ,
    READ_METHODS,
    WRITE,
    WRITE_METHODS,
    BulkResult,
    asDict,
    bulk,
)


class FileCatalog(CatalogMetadata):
    """Every catalog operation: the namespace here, metadata and datasets from CatalogMetadata."""

    # -- existence ---------------------------------------------------------------------------------
    def exists(self, caller: Caller, lfns: Any) -> BulkResult:
        """{lfn: lfn (a file) | True (a directory) | False}."""
        good, failed = self.screen(caller, asDict(lfns), READ, allowRoot=True)
        kinds = self.db.pathKinds(good)
        return bulk({p: p if kinds[p] == "File" else kinds[p] == "Directory" for p in good}, failed)

    def isFile(self, caller: Caller, lfns: Any) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), READ, allowRoot=True)
        kinds = self.db.pathKinds(good)
        return bulk({p: kinds[p] == "File" for p in good}, failed)

    def isDirectory(self, caller: Caller, lfns: Any) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), READ, allowRoot=True)
        kinds = self.db.pathKinds(good)
        return bulk({p: kinds[p] == "Directory" for p in good}, failed)

    # -- files ---------------------------------------------------------------------------------------
    def addFile(self, caller: Caller, lfns: dict[str, Any]) -> BulkResult:
        """Register files {lfn: {PFN, SE, Size, Checksum, ChecksumType, GUID}}; SE may be a list."""
        entries: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        for lfn, info in lfns.items():
            try:
                entries[lfn] = self._fileEntry(info)
            except ValueError as exc:
                failed[lfn] = str(exc)
        good, refused = self.screen(caller, entries, WRITE)
        failed.update(refused)
        successful, dbFailed = self.db.addFiles({lfn: entries[lfn] for lfn in good}, caller.user, caller.group,
                                                self.settings.fileMode, self.settings.directoryMode)
        return bulk(successful, failed | dbFailed)

    def _fileEntry(self, info: Any) -> dict[str, Any]:
        if not isinstance(info, dict):
            raise ValueError("Missing file parameters (a dict with SE, Size, Checksum, GUID)")
        for key in ("SE", "Size", "Checksum"):
            if key not in info:
                raise ValueError(f"Missing '{key}' parameter")
        size = info["Size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"Invalid size {size!r}: a non-negative integer")
        checksumType = str(info.get("ChecksumType") or "Adler32")
        if checksumType.upper() in ("AD", "ADLER32"):
            checksumType = "Adler32"
        checksum = str(info["Checksum"] or "").strip().lower()
        if checksumType == "Adler32" and checksum:
            if len(checksum) > 8 or any(c not in "0123456789abcdef" for c in checksum):
                raise ValueError(f"Invalid Adler32 checksum {info['Checksum']!r}: up to 8 hexadecimal digits")
            checksum = checksum.zfill(8)
        status = info.get("Status") or self.settings.defaultFileStatus
        if status not in self.settings.validFileStatus:
            raise ValueError(f"Invalid file status {status}")
        guid = str(info.get("GUID") or newGUID())
        if len(guid) > 36:
            raise ValueError(f"Invalid GUID {guid!r}: at most 36 characters")
        return {"Size": size, "Checksum": checksum, "ChecksumType": checksumType, "GUID": guid, "Status": status,
                "Replicas": [(se, str(info.get("PFN") or ""), "AprioriGood") for se in self._seList(info["SE"])]}

    @staticmethod
    def _seList(se: Any) -> list[str]:
        names = [se] if isinstance(se, str) else list(se) if isinstance(se, (list, tuple)) else []
        if not names or not all(isinstance(name, str) and name and len(name) <= 128 for name in names):
            raise ValueError(f"Invalid SE {se!r}: a Storage Element name or a list of them")
        return names

    def removeFile(self, caller: Caller, lfns: Any) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), WRITE)
        kinds = self.db.pathKinds(good)
        failed.update({p: "Is a directory (use removeDirectory)" for p in good if kinds[p] == "Directory"})
        return bulk(self.db.removeFiles(p for p in good if p not in failed), failed)

    def setFileStatus(self, caller: Caller, lfns: dict[str, str]) -> BulkResult:
        failed = {lfn: f"Invalid file status {status}" for lfn, status in lfns.items()
                  if status not in self.settings.validFileStatus}
        good, refused = self.screen(caller, [lfn for lfn in lfns if lfn not in failed], WRITE)
        successful, dbFailed = self.db.setFileStatus({lfn: lfns[lfn] for lfn in good})
        return bulk(successful, failed | refused | dbFailed)

    def getFileMetadata(self, caller: Caller, lfns: Any) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), READ)
        found = self.db.getFiles(good)
        return bulk({p: fileMetadata(found[p]) for p in good if p in found},
                    failed | {p: NO_SUCH for p in good if p not in found})

    def getFileSize(self, caller: Caller, lfns: Any) -> BulkResult:
        result = self.getFileMetadata(caller, lfns)
        result["Successful"] = {lfn: meta["Size"] for lfn, meta in result["Successful"].items()}
        return result

    def getLFNForGUID(self, caller: Caller, guids: Any) -> BulkResult:
        """{GUID: lfn} of the GUIDs whose file the caller may read."""
        guids = list(asDict(guids))
        found = self.db.getLFNsForGUIDs(guids)
        readable = self.readable(caller, found.values())
        return bulk({g: found[g] for g in guids if g in found and found[g] in readable},
                    {g: "GUID not found" if g not in found else DENIED for g in guids
                     if g not in found or found[g] not in readable})

    # -- replicas -------------------------------------------------------------------------------------
    def addReplica(self, caller: Caller, lfns: dict[str, Any]) -> BulkResult:
        """Add replicas {lfn: {SE, PFN}} (SE may be a list)."""
        entries: dict[str, list[tuple[str, str, str]]] = {}
        failed: dict[str, str] = {}
        for lfn, info in lfns.items():
            try:
                if not isinstance(info, dict) or "SE" not in info:
                    raise ValueError("Missing 'SE' parameter")
                entries[lfn] = [(se, str(info.get("PFN") or ""), "AprioriGood") for se in self._seList(info["SE"])]
            except ValueError as exc:
                failed[lfn] = str(exc)
        good, refused = self.screen(caller, entries, WRITE)
        successful, dbFailed = self.db.addReplicas({lfn: entries[lfn] for lfn in good})
        return bulk(successful, failed | refused | dbFailed)

    def removeReplica(self, caller: Caller, lfns: dict[str, Any]) -> BulkResult:
        """Remove replicas {lfn: {SE}}; replicas already gone count as removed."""
        entries = {lfn: info.get("SE") if isinstance(info, dict) else info for lfn, info in lfns.items()}
        failed = {lfn: "Missing 'SE' parameter" for lfn, se in entries.items() if not isinstance(se, str) or not se}
        good, refused = self.screen(caller, [lfn for lfn in entries if lfn not in failed], WRITE)
        return bulk(self.db.removeReplicas({lfn: entries[lfn] for lfn in good}), failed | refused)

    def setReplicaStatus(self, caller: Caller, lfns: dict[str, Any]) -> BulkResult:
        """Set replica statuses {lfn: {SE, Status}}."""
        entries: dict[str, tuple[str, str]] = {}
        failed: dict[str, str] = {}
        for lfn, info in lfns.items():
            if not isinstance(info, dict) or "SE" not in info or "Status" not in info:
                failed[lfn] = "Missing 'SE' or 'Status' parameter"
            elif info["Status"] not in self.settings.validReplicaStatus:
                failed[lfn] = f"Invalid replica status {info['Status']}"
            else:
                entries[lfn] = (info["SE"], info["Status"])
        good, refused = self.screen(caller, entries, WRITE)
        successful, dbFailed = self.db.setReplicaStatus({lfn: entries[lfn] for lfn in good})
        return bulk(successful, failed | refused | dbFailed)

    def getReplicas(self, caller: Caller, lfns: Any, allStatus: bool = False) -> BulkResult:
        """{lfn: {SE: PFN}}; without ``allStatus`` only visible files and replicas."""
        good, failed = self.screen(caller, asDict(lfns), READ)
        successful, dbFailed = self.db.getReplicas(good, allStatus, self.settings.visibleFileStatus,
                                                   self.settings.visibleReplicaStatus)
        return bulk(successful, failed | dbFailed)

    def getReplicaStatus(self, caller: Caller, lfns: dict[str, Any]) -> BulkResult:
        """{lfn: status} of the replica at the SE given for each LFN ({lfn: SE})."""
        good, failed = self.screen(caller, lfns, READ)
        successful, dbFailed = self.db.getReplicaStatus({lfn: lfns[lfn] for lfn in good})
        return bulk(successful, failed | dbFailed)

    # -- directories -----------------------------------------------------------------------------------
    def createDirectory(self, caller: Caller, lfns: Any) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), WRITE)
        created, dbFailed = self.db.makeDirectories(good, caller.user, caller.group, self.settings.directoryMode)
        return bulk(dict.fromkeys(created, True), failed | dbFailed)

    def removeDirectory(self, caller: Caller, lfns: Any) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), WRITE)
        kinds = self.db.pathKinds(good)
        failed.update({p: "Not a directory" for p in good if kinds[p] == "File"})
        successful, dbFailed = self.db.removeDirectories(p for p in good if p not in failed)
        return bulk(successful, failed | dbFailed)

    def _perDirectory(self, caller: Caller, lfns: Any, call: Callable[[str], Any]) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), READ, allowRoot=True)
        successful = {}
        for path in good:
            try:
                successful[path] = call(path)
            except KeyError:
                failed[path] = "Directory does not exist"
        return bulk(successful, failed)

    def listDirectory(self, caller: Caller, lfns: Any, verbose: bool = False) -> BulkResult:
        return self._perDirectory(caller, lfns, lambda path: self.db.listDirectory(path, verbose))

    def getDirectoryDump(self, caller: Caller, lfns: Any) -> BulkResult:
        return self._perDirectory(caller, lfns, self.db.getDirectoryDump)

    def getDirectorySize(self, caller: Caller, lfns: Any, longOutput: bool = False, recursiveSum: bool = True
                         ) -> BulkResult:
        return self._perDirectory(caller, lfns, lambda path: self.db.getDirectorySize(path, longOutput, recursiveSum))

    def getDirectoryReplicas(self, caller: Caller, lfns: Any, allStatus: bool = False) -> BulkResult:
        return self._perDirectory(caller, lfns, lambda path: self.db.getDirectoryReplicas(
            path, allStatus, self.settings.visibleFileStatus, self.settings.visibleReplicaStatus))

    def getDirectoryMetadata(self, caller: Caller, lfns: Any) -> BulkResult:
        good, failed = self.screen(caller, asDict(lfns), READ, allowRoot=True)
        found = self.db.getDirectories(good)
        return bulk({p: directoryMetadata(found[p]) for p in good if p in found},
                    failed | {p: "Directory does not exist" for p in good if p not in found})

    # -- ownership and permissions ------------------------------------------------------------------------
    def _owners(self, paths: Iterable[str]) -> dict[str, tuple[str, str]]:
        paths = set(paths)
        dirs = self.db.getDirectories(paths)
        files = self.db.getFiles(paths - set(dirs))
        return {p: (row["Owner"], row["OwnerGroup"]) for p, row in (dirs | files).items()}

    def _change(self, caller: Caller, changes: dict[str, Any], column: str, recursive: bool,
                check: Callable[[str, Any, tuple[str, str]], str | None]) -> BulkResult:
        good, failed = self.screen(caller, changes, None)
        owners = self._owners(good)
        allowed = {}
        for path in good:
            error = NO_SUCH if path not in owners else check(path, changes[path], owners[path])
            if error:
                failed[path] = error
            else:
                allowed[path] = {column: changes[path]}
        successful, dbFailed = self.db.changePathAttributes(allowed, recursive)
        return bulk(successful, failed | dbFailed)

    def changePathMode(self, caller: Caller, changes: dict[str, Any], recursive: bool = False) -> BulkResult:
        """Set modes {path: mode} (the owner or an administrator)."""
        def check(_path: str, mode: Any, owner: tuple[str, str]) -> str | None:
            if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
                return f"Invalid mode {mode!r}: an integer from 0 to 0o777"
            return None if caller.isAdmin or caller.user == owner[0] else DENIED

        return self._change(caller, changes, "Mode", recursive, check)

    def changePathOwner(self, caller: Caller, changes: dict[str, Any], recursive: bool = False) -> BulkResult:
        """Set owners {path: user} (administrators only)."""
        def check(_path: str, user: Any, _owner: tuple[str, str]) -> str | None:
            if not isinstance(user, str) or not user or len(user) > 64:
                return f"Invalid user name {user!r}"
            return None if caller.isAdmin else DENIED

        return self._change(caller, changes, "Owner", recursive, check)

    def changePathGroup(self, caller: Caller, changes: dict[str, Any], recursive: bool = False) -> BulkResult:
        """Set groups {path: group} (the owner, to one of its own groups, or an administrator)."""
        def check(_path: str, group: Any, owner: tuple[str, str]) -> str | None:
            if not isinstance(group, str) or not group or len(group) > 128:
                return f"Invalid group name {group!r}"
            if caller.isAdmin or (caller.user == owner[0] and group in self.userGroups(caller.user)):
                return None
            return DENIED

        return self._change(caller, changes, "OwnerGroup", recursive, check)

    def getPathPermissions(self, caller: Caller, lfns: Any) -> BulkResult:
        """{path: {Read, Write, Execute}} of the caller."""
        good, failed = self.screen(caller, asDict(lfns), None, allowRoot=True)
        permissions = {path: dict(rights) for path, rights in self.permissions(caller, good).items()}
        if self.settings.globalReadAccess:
            for value in permissions.values():
                value[READ] = True
        return bulk(permissions, failed)

    def hasAccess(self, caller: Caller, paths: Any, opType: str) -> BulkResult:
        """{path: True/False}: may the caller do ``opType`` (a method name, or Read/Write/Execute) there."""
        access = READ if opType in READ_METHODS else WRITE if opType in WRITE_METHODS else opType.capitalize()
        if access not in (READ, WRITE, EXECUTE):
            return bulk(failed=dict.fromkeys(asDict(paths), f"Unknown operation {opType}"))
        result = self.getPathPermissions(caller, paths)
        result["Successful"] = {path: perms[access] for path, perms in result["Successful"].items()}
        return result
