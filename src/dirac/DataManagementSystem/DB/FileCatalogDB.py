"""FileCatalogDB: the namespace (directories, files, replicas) of the DIRAC File Catalog.

Methods take LFNs the caller already validated and was allowed to use (``Logic/FileCatalog``
does both) and work on whole batches: a batch of LFNs is resolved by their path hashes in
one query per CHUNK, written with one executemany per table. Per-LFN outcomes come back as
``(successful, failed)`` dicts; database failures raise ``DatabaseError``.
Metadata and datasets are in ``FileCatalogMetadata`` and ``FileCatalogDatasets``, the reads of a
directory's content (listing, dump, size, directory replicas) in ``FileCatalogListings``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    select,
    update,
)

from dirac.Core.Base.DB import DB, utcnow
from dirac.DataManagementSystem.DB import FileCatalogTables as T
from dirac.DataManagementSystem.DB.FileCatalogDatasets import FileCatalogDatasets
from dirac.DataManagementSystem.DB.FileCatalogListings import DIR_COLUMNS, FileCatalogListings
from dirac.DataManagementSystem.DB.FileCatalogMetadata import FileCatalogMetadata
from dirac.DataManagementSystem.DB.FileCatalogTables import (
    ROOT,
    ancestorsOf,
    chunks,
    depthOf,
    joinPath,
    parentOf,
    pathHash,
)

NO_SUCH = "No such file or directory"

Row = dict[str, Any]


_FILE_COLUMNS = [T.files.c[name] for name in ("FileID", "DirID", "FileName", "LFNHash", "Size", "Checksum",
                                               "ChecksumType", "GUID", "Status", "Owner", "OwnerGroup", "Mode",
                                               "CreationDate", "ModificationDate")]


class FileCatalogDB(FileCatalogMetadata, FileCatalogDatasets, FileCatalogListings, DB):
    """Directories, files and replicas of the File Catalog (plus metadata, datasets and directory reads from the
    mix-ins)."""

    dbName = "DataManagement/FileCatalogDB"
    metadata = T.metadata

    def __init__(self, url: str | None = None, *, createTables: bool = True):
        super().__init__(url, createTables=createTables)
        self._seIDs: dict[str, int] = {}
        self._seNames: dict[int, str] = {}
        if createTables:
            with self.transaction("createRoot") as conn:
                self._makeDirectories(conn, [ROOT], "", "", 0o755)

    # -- storage elements ------------------------------------------------------------------------
    def seIDs(self, conn: Connection, names: Iterable[str]) -> dict[str, int]:
        """{SEName: SEID}, registering unknown SE names (IDs never change, so they are cached)."""
        missing = sorted(set(names) - set(self._seIDs))
        if missing:
            se = T.storageElements
            conn.execute(self.insertIgnore(se), [{"SEName": name} for name in missing])
            for seID, name in conn.execute(select(se.c.SEID, se.c.SEName).where(se.c.SEName.in_(missing))):
                self._seIDs[name], self._seNames[seID] = seID, name
        return {name: self._seIDs[name] for name in names}

    def seName(self, conn: Connection, seID: int) -> str:
        if seID not in self._seNames:
            se = T.storageElements
            for sid, name in conn.execute(select(se.c.SEID, se.c.SEName)):
                self._seIDs[name], self._seNames[sid] = sid, name
        return self._seNames.get(seID, f"Unknown-{seID}")

    def knownSEIDs(self, conn: Connection, names: Iterable[str]) -> dict[str, int]:
        """{SEName: SEID} of the SE names the catalog already knows (nothing registered)."""
        wanted = set(names)
        if wanted - set(self._seIDs):
            se = T.storageElements
            for seID, name in conn.execute(select(se.c.SEID, se.c.SEName).where(se.c.SEName.in_(sorted(wanted)))):
                self._seIDs[name], self._seNames[seID] = seID, name
        return {name: self._seIDs[name] for name in wanted if name in self._seIDs}

    # -- lookups -----------------------------------------------------------------------------------
    def _directoriesByPath(self, conn: Connection, paths: Iterable[str]) -> dict[str, Row]:
        byHash = {pathHash(path): path for path in set(paths)}
        found: dict[str, Row] = {}
        for part in chunks(list(byHash)):
            for row in conn.execute(select(*DIR_COLUMNS).where(T.directories.c.PathHash.in_(part))).mappings():
                found[row["Path"]] = dict(row)
        return found

    def _filesByLFN(self, conn: Connection, lfns: Iterable[str]) -> dict[str, Row]:
        byHash = {pathHash(lfn): lfn for lfn in set(lfns)}
        found: dict[str, Row] = {}
        for part in chunks(list(byHash)):
            for row in conn.execute(select(*_FILE_COLUMNS).where(T.files.c.LFNHash.in_(part))).mappings():
                found[byHash[row["LFNHash"]]] = dict(row)
        return found

    def getDirectories(self, paths: Iterable[str]) -> dict[str, Row]:
        """{path: {DirID, Path, Owner, OwnerGroup, Mode, CreationDate, ModificationDate}} of existing directories."""
        with self.connection("getDirectories") as conn:
            return self._directoriesByPath(conn, paths)

    def getFiles(self, lfns: Iterable[str]) -> dict[str, Row]:
        """{lfn: file row} of the registered files among ``lfns``."""
        with self.connection("getFiles") as conn:
            return self._filesByLFN(conn, lfns)

    def nearestDirectories(self, paths: Iterable[str]) -> dict[str, Row]:
        """{path: the row of the nearest existing directory that is ``path`` or above it}.

        A batch of LFNs has few distinct parents: their chains are looked up, and the paths themselves
        as ``_directoriesAmong`` does, so a batch of files in leaf directories costs no lookup per file.
        """
        parentOfPath = {path: parentOf(path) for path in paths}
        chains = {parent: ancestorsOf(parent) for parent in set(parentOfPath.values())}
        with self.connection("nearestDirectories") as conn:
            known = self._directoriesByPath(conn, {p for chain in chains.values() for p in chain})
            known.update(self._directoriesAmong(conn, parentOfPath, {p: row["DirID"] for p, row in known.items()}))
        ofParent = {parent: next((known[p] for p in chain if p in known), None) for parent, chain in chains.items()}
        nearest = {path: known.get(path) or ofParent[parent] for path, parent in parentOfPath.items()}
        return {path: row for path, row in nearest.items() if row is not None}

    def _directoriesAmong(self, conn: Connection, parentOfPath: Mapping[str, str], parentIDs: Mapping[str, int]
                          ) -> dict[str, Row]:
        """{path: row} of the directories among the paths of ``parentOfPath`` ({path: its parent}), given the
        DirIDs of their existing parents: a directory's parent exists and has subdirectories, so only the
        paths under such a parent are looked up."""
        d = T.directories
        child = d.alias("child")
        ids = sorted({parentIDs[parent] for parent in set(parentOfPath.values()) if parent in parentIDs})
        withSubdirs: set[int] = set()
        for part in chunks(ids):
            withSubdirs.update(conn.scalars(select(d.c.DirID).where(
                d.c.DirID.in_(part), select(child.c.DirID).where(child.c.Parent == d.c.DirID).exists())))
        return self._directoriesByPath(conn, [path for path, parent in parentOfPath.items()
                                              if parentIDs.get(parent) in withSubdirs])

    def pathKinds(self, paths: Iterable[str]) -> dict[str, str | None]:
        """{path: 'Directory' | 'File' | None}."""
        paths = set(paths)
        with self.connection("pathKinds") as conn:
            dirs = self._directoriesByPath(conn, paths)
            fileHashes = self._existingFileHashes(conn, paths - set(dirs))
        return {p: "Directory" if p in dirs else "File" if pathHash(p) in fileHashes else None for p in paths}

    def _existingFileHashes(self, conn: Connection, paths: Iterable[str]) -> set[bytes]:
        hashes = [pathHash(p) for p in set(paths)]
        found: set[bytes] = set()
        for part in chunks(hashes):
            found.update(conn.scalars(select(T.files.c.LFNHash).where(T.files.c.LFNHash.in_(part))))
        return found

    # -- directories --------------------------------------------------------------------------------
    def makeDirectories(self, paths: Iterable[str], owner: str, group: str, mode: int
                        ) -> tuple[dict[str, int], dict[str, str]]:
        """Create ``paths`` and their missing parents: ({path: DirID}, {path: reason})."""
        with self.transaction("makeDirectories") as conn:
            return self._makeDirectories(conn, paths, owner, group, mode)

    def _makeDirectories(self, conn: Connection, paths: Iterable[str], owner: str, group: str, mode: int
                         ) -> tuple[dict[str, int], dict[str, str]]:
        paths = set(paths)
        chains = {path: ancestorsOf(path) for path in paths}
        wanted = {p for chain in chains.values() for p in chain}
        ids = {path: row["DirID"] for path, row in self._directoriesByPath(conn, wanted).items()}
        missing = wanted - set(ids)
        failed: dict[str, str] = {}
        if missing:
            fileHashes = self._existingFileHashes(conn, missing)
            clashes = {p for p in missing if pathHash(p) in fileHashes}
            for path, chain in chains.items():
                clash = next((p for p in chain if p in clashes), None)
                if clash is not None:
                    failed[path] = f"{clash} is a file"
            missing -= {p for path in failed for p in chains[path]}
            now = utcnow()
            created: list[str] = []
            for depth in sorted({depthOf(p) for p in missing}):
                level = sorted(p for p in missing if depthOf(p) == depth)
                conn.execute(self.insertIgnore(T.directories), [
                    {"Parent": ids.get(parentOf(p)) if p != ROOT else None, "Path": p, "PathHash": pathHash(p),
                     "Owner": owner, "OwnerGroup": group, "Mode": mode, "CreationDate": now,
                     "ModificationDate": now} for p in level])
                ids.update({path: row["DirID"] for path, row in self._directoriesByPath(conn, level).items()})
                created += level
            rows = [{"AncestorID": ids[ancestor], "DirID": ids[path], "Depth": depth}
                    for path in created for depth, ancestor in enumerate(ancestorsOf(path))]
            for part in chunks(rows):
                conn.execute(self.insertIgnore(T.closure), list(part))
        return {path: ids[path] for path in paths if path not in failed}, failed

    def removeDirectories(self, paths: Iterable[str]) -> tuple[dict[str, bool], dict[str, str]]:
        """Remove empty directories (absent ones count as removed)."""
        paths = set(paths)
        successful: dict[str, bool] = {}
        failed: dict[str, str] = {}
        d, c = T.directories, T.closure
        with self.transaction("removeDirectories") as conn:
            found = self._directoriesByPath(conn, paths)
            for path in paths:
                if path not in found:
                    successful[path] = True
                    continue
                dirID = found[path]["DirID"]
                if path == ROOT:
                    failed[path] = "The root directory cannot be removed"
                elif (conn.scalar(select(func.count()).select_from(d).where(d.c.Parent == dirID))
                      or conn.scalar(select(func.count()).select_from(T.files).where(T.files.c.DirID == dirID))
                      or conn.scalar(select(func.count()).select_from(T.datasets)
                                     .where(T.datasets.c.DirID == dirID))):
                    failed[path] = "Directory not empty"
                else:
                    conn.execute(delete(c).where(c.c.DirID == dirID))
                    conn.execute(delete(d).where(d.c.DirID == dirID))
                    self._deleteMetaValues(conn, "D", [dirID])
                    successful[path] = True
        return successful, failed

    def subtreeDirIDs(self, conn: Connection, dirID: int) -> Any:
        """A SELECT of the DirIDs of a directory and everything below it."""
        return select(T.closure.c.DirID).where(T.closure.c.AncestorID == dirID)

    def changePathAttributes(self, changes: Mapping[str, Mapping[str, Any]], recursive: bool
                             ) -> tuple[dict[str, bool], dict[str, str]]:
        """Set Owner / OwnerGroup / Mode of paths ({path: {column: value}}), of their subtrees when recursive."""
        successful: dict[str, bool] = {}
        failed: dict[str, str] = {}
        d, f, c = T.directories, T.files, T.closure
        now = utcnow()
        with self.transaction("changePathAttributes") as conn:
            dirs = self._directoriesByPath(conn, changes)
            fileRows = self._filesByLFN(conn, set(changes) - set(dirs))
            for path, values in changes.items():
                if path in dirs:
                    dirID = dirs[path]["DirID"]
                    target = d.c.DirID.in_(select(c.c.DirID).where(c.c.AncestorID == dirID)) if recursive \
                        else d.c.DirID == dirID
                    conn.execute(update(d).where(target).values(**values, ModificationDate=now))
                    if recursive:
                        conn.execute(update(f).where(f.c.DirID.in_(select(c.c.DirID).where(c.c.AncestorID == dirID)))
                                     .values(**values, ModificationDate=now))
                elif path in fileRows:
                    conn.execute(update(f).where(f.c.FileID == fileRows[path]["FileID"])
                                 .values(**values, ModificationDate=now))
                else:
                    failed[path] = NO_SUCH
                    continue
                successful[path] = True
        return successful, failed

    # -- files ----------------------------------------------------------------------------------------
    def addFiles(self, entries: Mapping[str, Mapping[str, Any]], owner: str, group: str, mode: int,
                 dirMode: int) -> tuple[dict[str, bool], dict[str, str]]:
        """Register files: {lfn: {Size, Checksum, ChecksumType, GUID, Status, Replicas: [(SE, PFN, Status)]}}.

        A file already registered with the same size, checksum and GUID is a success (its new replicas
        are added); with other values it fails. Missing parent directories are created.
        """
        successful: dict[str, bool] = {}
        failed: dict[str, str] = {}
        with self.transaction("addFiles") as conn:
            todo = dict(entries)
            parentOfLFN = {lfn: parentOf(lfn) for lfn in todo}
            dirIDs, dirFailed = self._makeDirectories(conn, set(parentOfLFN.values()), owner, group, dirMode)
            for lfn in self._directoriesAmong(conn, parentOfLFN, dirIDs):
                failed[lfn] = "A directory of this name exists"
                del todo[lfn]
            for lfn in list(todo):
                if parentOfLFN[lfn] in dirFailed:  # under a file: no file can be registered there yet
                    failed[lfn] = dirFailed[parentOfLFN[lfn]]
                    del todo[lfn]
            now = utcnow()
            newRows = [{"DirID": dirIDs[parentOfLFN[lfn]], "FileName": lfn.rsplit("/", 1)[1],
                        "LFNHash": pathHash(lfn), "Size": info["Size"], "Checksum": info["Checksum"],
                        "ChecksumType": info["ChecksumType"], "GUID": info["GUID"], "Status": info["Status"],
                        "Owner": owner, "OwnerGroup": group, "Mode": mode, "CreationDate": now,
                        "ModificationDate": now} for lfn, info in todo.items()]
            for part in chunks(newRows):  # files already registered are skipped, then compared below
                conn.execute(self.insertIgnore(T.files), list(part))
            registered = self._fileKeys(conn, todo)
            replicaRows = []
            for lfn, info in todo.items():
                fileID, size, checksum, guid = registered[lfn]
                if (size, checksum.lower(), guid) != (info["Size"], info["Checksum"].lower(), info["GUID"]):
                    failed[lfn] = "File already registered with alternative metadata"
                    continue
                seIDs = self.seIDs(conn, [se for se, _, _ in info["Replicas"]])
                replicaRows += [{"FileID": fileID, "SEID": seIDs[se], "Status": status, "PFN": pfn}
                                for se, pfn, status in info["Replicas"]]
                successful[lfn] = True
            for part in chunks(replicaRows):
                conn.execute(self.insertIgnore(T.replicas), list(part))
        return successful, failed

    def _fileKeys(self, conn: Connection, lfns: Iterable[str]) -> dict[str, tuple[int, int, str, str]]:
        """{lfn: (FileID, Size, Checksum, GUID)} of the registered files among ``lfns``."""
        f = T.files
        byHash = {pathHash(lfn): lfn for lfn in set(lfns)}
        found: dict[str, tuple[int, int, str, str]] = {}
        for part in chunks(list(byHash)):
            for lfnHash, fileID, size, checksum, guid in conn.execute(
                    select(f.c.LFNHash, f.c.FileID, f.c.Size, f.c.Checksum, f.c.GUID).where(f.c.LFNHash.in_(part))):
                found[byHash[lfnHash]] = (fileID, size, checksum, guid)
        return found

    def removeFiles(self, lfns: Iterable[str]) -> dict[str, bool]:
        """Remove files with their replicas, metadata and dataset entries (absent ones count as removed)."""
        lfns = set(lfns)
        with self.transaction("removeFiles") as conn:
            fileIDs = [row["FileID"] for row in self._filesByLFN(conn, lfns).values()]
            for part in chunks(fileIDs):
                conn.execute(delete(T.replicas).where(T.replicas.c.FileID.in_(part)))
                conn.execute(delete(T.datasetFiles).where(T.datasetFiles.c.FileID.in_(part)))
                self._deleteMetaValues(conn, "F", part)
                conn.execute(delete(T.files).where(T.files.c.FileID.in_(part)))
        return dict.fromkeys(lfns, True)

    def setFileStatus(self, statuses: Mapping[str, str]) -> tuple[dict[str, bool], dict[str, str]]:
        """Set the Status of files: {lfn: status}."""
        with self.transaction("setFileStatus") as conn:
            found = self._filesByLFN(conn, statuses)
            rows = [{"id": found[lfn]["FileID"], "status": status} for lfn, status in statuses.items() if lfn in found]
            if rows:
                conn.execute(update(T.files).where(T.files.c.FileID == bindparam("id"))
                             .values(Status=bindparam("status"), ModificationDate=utcnow()), rows)
        return (dict.fromkeys((lfn for lfn in statuses if lfn in found), True),
                {lfn: NO_SUCH for lfn in statuses if lfn not in found})

    def getLFNsForGUIDs(self, guids: Iterable[str]) -> dict[str, str]:
        """{GUID: lfn} of the GUIDs known to the catalog."""
        f, d = T.files, T.directories
        guids = sorted(set(guids))
        result: dict[str, str] = {}
        with self.connection("getLFNsForGUIDs") as conn:
            for part in chunks(guids):
                for guid, path, name in conn.execute(select(f.c.GUID, d.c.Path, f.c.FileName)
                                                     .join(d, d.c.DirID == f.c.DirID).where(f.c.GUID.in_(part))):
                    result[guid] = joinPath(path, name)
        return result

    # -- replicas --------------------------------------------------------------------------------------
    def addReplicas(self, entries: Mapping[str, Sequence[tuple[str, str, str]]]
                    ) -> tuple[dict[str, bool], dict[str, str]]:
        """Add replicas: {lfn: [(SE, PFN, Status)]}; a replica already registered is a success."""
        with self.transaction("addReplicas") as conn:
            found = self._filesByLFN(conn, entries)
            seIDs = self.seIDs(conn, {se for lfn in found for se, _, _ in entries[lfn]})
            rows = [{"FileID": found[lfn]["FileID"], "SEID": seIDs[se], "Status": status, "PFN": pfn}
                    for lfn in found for se, pfn, status in entries[lfn]]
            for part in chunks(rows):
                conn.execute(self.insertIgnore(T.replicas), list(part))
        return dict.fromkeys(found, True), {lfn: NO_SUCH for lfn in entries if lfn not in found}

    def removeReplicas(self, entries: Mapping[str, str]) -> dict[str, bool]:
        """Remove replicas: {lfn: SE}; absent files and replicas count as removed."""
        r = T.replicas
        with self.transaction("removeReplicas") as conn:
            found = self._filesByLFN(conn, entries)
            seIDs = self.knownSEIDs(conn, {entries[lfn] for lfn in found})
            rows = [{"id": found[lfn]["FileID"], "se": seIDs[entries[lfn]]} for lfn in found if entries[lfn] in seIDs]
            if rows:
                conn.execute(delete(r).where(r.c.FileID == bindparam("id"), r.c.SEID == bindparam("se")), rows)
        return dict.fromkeys(entries, True)

    def _replicasOf(self, conn: Connection, fileIDs: Sequence[int]) -> dict[int, dict[str, tuple[str, str]]]:
        """{FileID: {SE: (Status, PFN)}}."""
        r = T.replicas
        result: dict[int, dict[str, tuple[str, str]]] = {}
        for part in chunks(list(fileIDs)):
            for fileID, seID, status, pfn in conn.execute(select(r.c.FileID, r.c.SEID, r.c.Status, r.c.PFN)
                                                          .where(r.c.FileID.in_(part))):
                result.setdefault(fileID, {})[self.seName(conn, seID)] = (status, pfn)
        return result

    def setReplicaStatus(self, entries: Mapping[str, tuple[str, str]]) -> tuple[dict[str, bool], dict[str, str]]:
        """Set replica statuses: {lfn: (SE, status)}."""
        failed: dict[str, str] = {}
        r = T.replicas
        with self.transaction("setReplicaStatus") as conn:
            found = self._filesByLFN(conn, entries)
            current = self._replicasOf(conn, [row["FileID"] for row in found.values()])
            seIDs = self.knownSEIDs(conn, {se for se, _ in entries.values()})
            rows = []
            for lfn, (se, status) in entries.items():
                if lfn not in found:
                    failed[lfn] = NO_SUCH
                elif se not in current.get(found[lfn]["FileID"], {}):
                    failed[lfn] = f"No replica at {se}"
                else:
                    rows.append({"id": found[lfn]["FileID"], "se": seIDs[se], "status": status})
            if rows:
                conn.execute(update(r).where(r.c.FileID == bindparam("id"), r.c.SEID == bindparam("se"))
                             .values(Status=bindparam("status")), rows)
        return dict.fromkeys((lfn for lfn in entries if lfn not in failed), True), failed

    def getReplicas(self, lfns: Iterable[str], allStatus: bool, visibleFile: Sequence[str],
                    visibleReplica: Sequence[str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """{lfn: {SE: PFN}} (visible statuses only unless ``allStatus``); absent files in the failed dict."""
        f, r = T.files, T.replicas
        byHash = {pathHash(lfn): lfn for lfn in set(lfns)}
        successful: dict[str, dict[str, str]] = {}
        joined = r.c.FileID == f.c.FileID
        if not allStatus:  # hidden replicas left out by the join: the file still answers, with no replica
            joined = and_(joined, r.c.Status.in_(visibleReplica))
        seNames = self._seNames
        with self.connection("getReplicas") as conn:
            for part in chunks(list(byHash)):
                query = select(f.c.LFNHash, r.c.SEID, r.c.PFN).outerjoin(r, joined).where(f.c.LFNHash.in_(part))
                if not allStatus:
                    query = query.where(f.c.Status.in_(visibleFile))
                for lfnHash, seID, pfn in conn.execute(query).all():
                    lfn = byHash[lfnHash]
                    replicasOf = successful.get(lfn)
                    if replicasOf is None:
                        replicasOf = successful[lfn] = {}
                    if seID is not None:
                        replicasOf[seNames.get(seID) or self.seName(conn, seID)] = pfn
        return successful, {lfn: NO_SUCH for lfn in byHash.values() if lfn not in successful}

    def getReplicaStatus(self, entries: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """{lfn: status of its replica at the SE asked for}."""
        successful: dict[str, str] = {}
        failed: dict[str, str] = {}
        with self.connection("getReplicaStatus") as conn:
            found = self._filesByLFN(conn, entries)
            current = self._replicasOf(conn, [row["FileID"] for row in found.values()])
            for lfn, se in entries.items():
                if lfn not in found:
                    failed[lfn] = NO_SUCH
                elif se not in current.get(found[lfn]["FileID"], {}):
                    failed[lfn] = f"No replica at {se}"
                else:
                    successful[lfn] = current[found[lfn]["FileID"]][se][0]
        return successful, failed

    def getSEDump(self, seNames: Sequence[str]) -> list[tuple[str, str, str, int]]:
        """[(SE, lfn, checksum, size)] of every replica at the SEs."""
        f, d, r = T.files, T.directories, T.replicas
        with self.connection("getSEDump") as conn:
            seIDs = self.knownSEIDs(conn, seNames)
            if not seIDs:
                return []
            return [(self.seName(conn, seID), joinPath(path, name), checksum, size) for seID, path, name, checksum, size
                    in conn.execute(select(r.c.SEID, d.c.Path, f.c.FileName, f.c.Checksum, f.c.Size)
                                    .join(f, f.c.FileID == r.c.FileID).join(d, d.c.DirID == f.c.DirID)
                                    .where(r.c.SEID.in_(sorted(seIDs.values())))
                                    .order_by(r.c.SEID, d.c.Path, f.c.FileName))]

    def getCatalogCounters(self) -> dict[str, int]:
        """How many directories, files and replicas the catalog holds."""
        with self.connection("getCatalogCounters") as conn:
            return {"Directories": conn.scalar(select(func.count()).select_from(T.directories)),
                    "Files": conn.scalar(select(func.count()).select_from(T.files)),
                    "Replicas": conn.scalar(select(func.count()).select_from(T.replicas))}


def fileMetadata(row: Row) -> Row:
    """What getFileMetadata and listDirectory answer for a file row."""
    return {key: row[key] for key in ("FileID", "Size", "Checksum", "ChecksumType", "GUID", "Status", "Owner",
                                      "OwnerGroup", "Mode", "CreationDate", "ModificationDate")} | {"Type": "File"}


def newGUID() -> str:
    """A new file GUID in DIRAC's upper-case form."""
    return str(uuid.uuid4()).upper()
