"""DataManager: files on Storage Elements and in the File Catalog, kept in step (DIRAC's method names).

Every transfer is checked with Adler32: uploads by the storage (size and checksum announced,
nothing stored on a mismatch), downloads and replications against the catalog's checksum.
The catalog never lists a replica that was not stored, and a stored copy is not left behind
when its registration fails:

* ``putAndRegister``: upload, then register; a failed registration removes the upload;
* ``replicateAndRegister``: download from a replica to a local cache (checked), upload to the
  destination (checked), then add the replica; a failed registration removes the new copy;
* ``removeFile`` / ``removeReplica``: the catalog's write permission is checked first, then the
  physical copies are removed and only those removed leave the catalog.

What is not covered: a client killed between the storage and the catalog call leaves at most
an unregistered copy on the storage (dark data), never a catalog entry without its copy on
upload; on removal, a catalog that fails right after the copies went leaves entries for the
later clean-up (DIRAC uses Request Management for both).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dirac.Core.Utilities.Adler import fileAdler32, sameAdler32
from dirac.Core.Utilities.Logging import getLogger
from dirac.Core.Utilities.ReturnValues import S_OK, DReturnType
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.Resources.Storage.StorageElement import StorageElement

log = getLogger("DataManager")

Bulk = dict[str, dict[str, Any]]
BulkAnswer = DReturnType[Bulk]
#: called after each file of a bulk operation with (lfn, ok)
Progress = Callable[[str, bool], None]


def _lfnList(lfns: str | Iterable[str]) -> list[str]:
    return [lfns] if isinstance(lfns, str) else list(dict.fromkeys(lfns))


def _noProgress(_lfn: str, _ok: bool) -> None:
    pass


class DataManager:
    """Uploads, downloads, replications and removals that keep storage and catalog consistent."""

    def __init__(self, catalog: Any = None, storageElement: Callable[[str], StorageElement] | None = None,
                 **clientOptions: Any):
        self.catalog = catalog if catalog is not None else FileCatalogClient(**clientOptions)
        self._seFactory = storageElement or (lambda name: StorageElement(name, **clientOptions))
        self._ses: dict[str, StorageElement] = {}

    def storageElement(self, name: str) -> StorageElement:
        if name not in self._ses:
            self._ses[name] = self._seFactory(name)
        return self._ses[name]

    # -- upload -------------------------------------------------------------------------------------------
    def putAndRegister(self, lfn: str, fileName: str | Path, diracSE: str, guid: str | None = None,
                       path: str | None = None, checksum: str | None = None, overwrite: bool = False) -> BulkAnswer:
        """Upload a local file to ``diracSE`` and register it as ``lfn``.

        Successful: {lfn: {"put": seconds, "register": seconds}}; Failed: {lfn: reason}."""
        local = Path(fileName)
        if not local.is_file():
            return S_OK({"Successful": {}, "Failed": {lfn: f"{local}: no such local file"}})
        actual = fileAdler32(local)
        if checksum and not sameAdler32(checksum, actual):
            return S_OK({"Successful": {}, "Failed": {lfn: f"{local}: its Adler32 is {actual}, {checksum} given"}})
        existing = self.catalog.exists(lfn)
        if not existing["OK"]:
            return existing
        if lfn in existing["Value"]["Failed"]:
            return S_OK({"Successful": {}, "Failed": {lfn: existing["Value"]["Failed"][lfn]}})
        if existing["Value"]["Successful"].get(lfn) and not overwrite:
            return S_OK({"Successful": {}, "Failed": {lfn: "File already exists in the File Catalog"}})
        se = self.storageElement(diracSE)
        started = time.monotonic()
        put = se.putFile({lfn: local}, checksums={lfn: actual})
        if not put["OK"]:
            return S_OK({"Successful": {}, "Failed": {lfn: put["Message"]}})
        if lfn in put["Value"]["Failed"]:
            return S_OK({"Successful": {}, "Failed": {lfn: put["Value"]["Failed"][lfn]}})
        putTime = time.monotonic() - started
        url = se.getURL(lfn)
        pfn = url["Value"]["Successful"].get(lfn, "") if url["OK"] else ""
        entry = {"PFN": pfn, "SE": diracSE, "Size": local.stat().st_size, "Checksum": actual,
                 "ChecksumType": "Adler32", "GUID": guid or str(uuid.uuid4()).upper()}
        started = time.monotonic()
        registered = self.catalog.addFile({lfn: entry})
        reason = (registered["Message"] if not registered["OK"]
                  else registered["Value"]["Failed"].get(lfn) if lfn not in registered["Value"]["Successful"] else None)
        if reason:
            return S_OK({"Successful": {}, "Failed": {lfn: self._rollBack(se, lfn, f"registration failed: {reason}")}})
        log.info("%s uploaded to %s and registered", lfn, diracSE)
        return S_OK({"Successful": {lfn: {"put": putTime, "register": time.monotonic() - started}}, "Failed": {}})

    def _rollBack(self, se: StorageElement, lfn: str, reason: str) -> str:
        """Remove the copy of ``lfn`` just stored on ``se`` because it could not be registered; the reason to report."""
        removed = se.removeFile(lfn)
        if removed["OK"] and lfn in removed["Value"]["Successful"]:
            log.warning("%s: %s; the copy on %s was removed", lfn, reason, se.name)
            return f"{reason}; the copy on {se.name} was removed"
        why = removed["Message"] if not removed["OK"] else removed["Value"]["Failed"].get(lfn)
        log.error("%s: %s, and the copy on %s could not be removed: %s", lfn, reason, se.name, why)
        return f"{reason}; the copy on {se.name} could not be removed either ({why}): it is unregistered"

    # -- replicas -------------------------------------------------------------------------------------------
    def getReplicas(self, lfns: str | Iterable[str], allStatus: bool = False, active: bool = False) -> BulkAnswer:
        """{lfn: {SE: PFN}} from the catalog; with ``active`` only the replicas whose SE may be read now."""
        result = self.catalog.getReplicas(_lfnList(lfns), allStatus)
        if result["OK"] and active:
            for replicas in result["Value"]["Successful"].values():
                for se in [se for se in replicas if not self.storageElement(se).isValid()["OK"]]:
                    del replicas[se]
        return result

    def getActiveReplicas(self, lfns: str | Iterable[str]) -> BulkAnswer:
        """{lfn: {SE: PFN}} of the replicas on Storage Elements that may be read now."""
        return self.getReplicas(lfns, active=True)

    def _replicasAndChecksums(self, lfns: list[str], failed: dict[str, str]) -> tuple[dict, dict]:
        replicas = self.getReplicas(lfns)
        metadata = self.catalog.getFileMetadata(lfns)
        for result in (replicas, metadata):
            if not result["OK"]:
                failed.update(dict.fromkeys(lfns, result["Message"]))
                return {}, {}
            failed.update(result["Value"]["Failed"])
        return replicas["Value"]["Successful"], metadata["Value"]["Successful"]

    # -- download ---------------------------------------------------------------------------------------------
    def getFile(self, lfns: str | Iterable[str], destinationDir: str | Path = "", sourceSE: str | None = None,
                progress: Progress = _noProgress, preferredSEs: Iterable[str] = ()) -> BulkAnswer:
        """Download files into ``destinationDir`` (default: the current directory), each from the first replica
        that works (``sourceSE`` only, if given; those on ``preferredSEs`` first), checked against the catalog's
        Adler32. Successful: {lfn: path}."""
        lfns = _lfnList(lfns)
        directory = Path(destinationDir or os.getcwd())
        failed: dict[str, str] = {}
        successful: dict[str, str] = {}
        replicas, metadata = self._replicasAndChecksums(lfns, failed)
        preferred = list(preferredSEs)
        for lfn in lfns:
            if lfn in failed:
                progress(lfn, False)
                continue
            ses = [se for se in _sortedReplicas(replicas.get(lfn, {}), preferred) if not sourceSE or se == sourceSE]
            if not ses:
                failed[lfn] = f"no replica on {sourceSE}" if sourceSE else "no replica"
            errors = []
            for se in ses:
                got = self.storageElement(se).getFile(lfn, directory, {lfn: metadata[lfn]["Checksum"]})
                if got["OK"] and lfn in got["Value"]["Successful"]:
                    successful[lfn] = str(directory / os.path.basename(lfn))
                    failed.pop(lfn, None)
                    log.info("%s downloaded from %s", lfn, se)
                    break
                errors.append(got["Message"] if not got["OK"] else got["Value"]["Failed"][lfn])
                failed[lfn] = "; ".join(errors)
            progress(lfn, lfn in successful)
        return S_OK({"Successful": successful, "Failed": failed})

    # -- replication ------------------------------------------------------------------------------------------
    def replicateAndRegister(self, lfns: str | Iterable[str], destSE: str, sourceSE: str = "", destPath: str = "",
                             localCache: str = "", progress: Progress = _noProgress) -> BulkAnswer:
        """Copy files to ``destSE`` through a local cache and register the new replicas.

        Successful: {lfn: {"replicate": seconds, "register": seconds}} ({} when the replica was there already)."""
        lfns = _lfnList(lfns)
        failed: dict[str, str] = {}
        successful: dict[str, Any] = {}
        replicas, metadata = self._replicasAndChecksums(lfns, failed)
        dest = self.storageElement(destSE)
        valid = dest.isValid("WriteAccess")
        if not valid["OK"]:
            failed.update({lfn: valid["Message"] for lfn in lfns if lfn not in failed})
        with tempfile.TemporaryDirectory(prefix="dirac-replicate-", dir=localCache or None) as cache:
            for lfn in lfns:
                if lfn not in failed:
                    if destSE in replicas.get(lfn, {}):
                        successful[lfn] = {}
                    else:
                        outcome = self._replicateOne(lfn, dest, replicas.get(lfn, {}), metadata[lfn], sourceSE,
                                                     Path(cache))
                        if isinstance(outcome, str):
                            failed[lfn] = outcome
                        else:
                            successful[lfn] = outcome
                progress(lfn, lfn in successful)
        return S_OK({"Successful": successful, "Failed": failed})

    def _replicateOne(self, lfn: str, dest: StorageElement, replicas: dict[str, str], metadata: dict[str, Any],
                      sourceSE: str, cache: Path) -> dict[str, float] | str:
        """Timings of one replication, or why it failed."""
        started = time.monotonic()
        got = self.getFile(lfn, cache, sourceSE=sourceSE or None)
        if lfn not in got["Value"]["Successful"]:
            return f"no source replica could be read: {got['Value']['Failed'][lfn]}"
        local = Path(got["Value"]["Successful"][lfn])
        try:
            put = dest.putFile({lfn: local}, checksums={lfn: metadata["Checksum"]})
        finally:
            local.unlink(missing_ok=True)
        if not put["OK"] or lfn in put["Value"]["Failed"]:
            return put["Message"] if not put["OK"] else put["Value"]["Failed"][lfn]
        replicated = time.monotonic() - started
        url = dest.getURL(lfn)
        pfn = url["Value"]["Successful"].get(lfn, "") if url["OK"] else ""
        started = time.monotonic()
        added = self.catalog.addReplica({lfn: {"SE": dest.name, "PFN": pfn}})
        reason = (added["Message"] if not added["OK"]
                  else added["Value"]["Failed"].get(lfn) if lfn not in added["Value"]["Successful"] else None)
        if reason:
            return self._rollBack(dest, lfn, f"replica registration failed: {reason}")
        log.info("%s replicated to %s (%s)", lfn, dest.name, metadata["Checksum"])
        return {"replicate": replicated, "register": time.monotonic() - started}

    # -- removal ---------------------------------------------------------------------------------------------
    def _writable(self, lfns: list[str], operation: str, failed: dict[str, str]) -> list[str]:
        """The LFNs the catalog lets the caller change (the others go to ``failed``)."""
        access = self.catalog.hasAccess(lfns, operation)
        if not access["OK"]:
            failed.update(dict.fromkeys(lfns, access["Message"]))
            return []
        failed.update(access["Value"]["Failed"])
        allowed = []
        for lfn, ok in access["Value"]["Successful"].items():
            if ok:
                allowed.append(lfn)
            else:
                failed[lfn] = "Permission denied by the File Catalog"
        return allowed

    def removeFile(self, lfns: str | Iterable[str], force: bool = False, progress: Progress = _noProgress
                   ) -> BulkAnswer:
        """Remove files: every replica, then the catalog entry. A file whose copies could not all be removed
        stays registered with those left. Absent files succeed, as in DIRAC. Successful: {lfn: True}."""
        lfns = _lfnList(lfns)
        failed: dict[str, str] = {}
        successful: dict[str, bool] = {}
        allowed = self._writable(lfns, "removeFile", failed)
        replicas = self.catalog.getReplicas(allowed, True) if allowed else S_OK({"Successful": {}, "Failed": {}})
        if not replicas["OK"]:
            return replicas
        for lfn, reason in replicas["Value"]["Failed"].items():
            if "No such file" in reason:
                successful[lfn] = True
            else:
                failed[lfn] = reason
        toUnregister = []
        for lfn, ses in replicas["Value"]["Successful"].items():
            errors = self._removePhysical(lfn, list(ses))
            if errors:
                failed[lfn] = "; ".join(errors)
            else:
                toUnregister.append(lfn)
        if toUnregister:
            removed = self.catalog.removeFile(toUnregister)
            if not removed["OK"]:
                failed.update(dict.fromkeys(toUnregister, f"copies removed, catalog entry not: {removed['Message']}"))
            else:
                successful.update(removed["Value"]["Successful"])
                failed.update(removed["Value"]["Failed"])
        for lfn in lfns:
            progress(lfn, lfn in successful)
        return S_OK({"Successful": successful, "Failed": failed})

    def _removePhysical(self, lfn: str, ses: list[str]) -> list[str]:
        """Remove the copies of ``lfn`` on ``ses``; unregister those removed; the errors of the others."""
        errors, gone = [], []
        for se in ses:
            removed = self.storageElement(se).removeFile(lfn)
            if removed["OK"] and lfn in removed["Value"]["Successful"]:
                gone.append(se)
            else:
                errors.append(removed["Message"] if not removed["OK"] else removed["Value"]["Failed"][lfn])
        for se in gone if errors else []:  # the file stays registered with the replicas that are left
            unregistered = self.catalog.removeReplica({lfn: {"SE": se}})
            if not unregistered["OK"] or lfn in unregistered["Value"]["Failed"]:
                errors.append(f"the removed copy on {se} is still registered")
        return errors

    def removeReplica(self, storageElementName: str, lfns: str | Iterable[str], progress: Progress = _noProgress
                      ) -> BulkAnswer:
        """Remove the replicas of files on one SE (never a file's last replica). Successful: {lfn: True}."""
        lfns = _lfnList(lfns)
        failed: dict[str, str] = {}
        successful: dict[str, bool] = {}
        allowed = self._writable(lfns, "removeReplica", failed)
        replicas = self.catalog.getReplicas(allowed, True) if allowed else S_OK({"Successful": {}, "Failed": {}})
        if not replicas["OK"]:
            return replicas
        failed.update(replicas["Value"]["Failed"])
        for lfn, ses in replicas["Value"]["Successful"].items():
            if storageElementName not in ses:
                successful[lfn] = True
            elif len(ses) == 1:
                failed[lfn] = f"Failed to remove sole replica: {storageElementName} holds the only copy"
            else:
                removed = self.storageElement(storageElementName).removeFile(lfn)
                if not removed["OK"] or lfn in removed["Value"]["Failed"]:
                    failed[lfn] = removed["Message"] if not removed["OK"] else removed["Value"]["Failed"][lfn]
                    continue
                unregistered = self.catalog.removeReplica({lfn: {"SE": storageElementName}})
                if unregistered["OK"] and lfn in unregistered["Value"]["Successful"]:
                    successful[lfn] = True
                else:
                    failed[lfn] = ("copy removed, replica still registered: "
                                   + (unregistered["Message"] if not unregistered["OK"]
                                      else unregistered["Value"]["Failed"][lfn]))
        for lfn in lfns:
            progress(lfn, lfn in successful)
        return S_OK({"Successful": successful, "Failed": failed})


def _sortedReplicas(replicas: dict[str, str], preferred: list[str] | None = None) -> list[str]:
    """SE names in the order downloads try them: the preferred ones in their order, then the others
    alphabetically (stable and predictable)."""
    first = [se for se in preferred or [] if se in replicas]
    return first + sorted(se for se in replicas if se not in first)

