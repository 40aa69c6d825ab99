"""Reads of a directory's content: listings, recursive dumps, sizes and directory replicas.

These answers are big (a 10,000-file listing, a dump of 250,000 files), so they are read as plain
rows, built with dict literals while the garbage collector is paused, and carry naive UTC
datetimes (what the wire carries; JEncode writes repeated naive ones from a cache). On
MariaDB/MySQL the rows come packed (``_packedRows``): pymysql (pure Python) decodes every
column of every row on its own, 80 % of a listing's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, cast, func, literal_column, select

from dirac.Core.Utilities.GarbageCollection import gcPaused
from dirac.DataManagementSystem.DB import FileCatalogTables as T
from dirac.DataManagementSystem.DB.FileCatalogTables import joinPath

if TYPE_CHECKING:
    from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

PACKED_ROWS = 2048  # files per packed block (at most ~1 MB of text)
GROUP_CONCAT_MAX = 64 * 2**20
Row = dict[str, Any]

DIR_COLUMNS = [T.directories.c[name] for name in ("DirID", "Path", "Owner", "OwnerGroup", "Mode", "CreationDate",
                                                   "ModificationDate")]
#: a listed file's columns after its FileName, in the order of _listingMetadata; dates read as text
_LISTING_COLUMNS = [T.files.c[key] for key in ("FileID", "Size", "Checksum", "ChecksumType", "GUID", "Status",
                                               "Owner", "OwnerGroup", "Mode", "CreationDate", "ModificationDate")]
_LISTING_INTS = (1, 2, 9)  # FileID, Size, Mode among FileName + _LISTING_COLUMNS
_LISTING_DATES = (10, 11)
_DUMP_COLUMNS = [T.files.c.DirID, T.files.c.FileName, T.files.c.Size, T.files.c.CreationDate]


def _listingMetadata(row: Sequence[Any], dates: dict[str, datetime]) -> Row:
    """The MetaData of a listed file from (FileName, FileID, Size, ..., ModificationDate): a dict literal is
    the fastest way to build 10,000 of them."""
    return {"FileID": row[1], "Size": row[2], "Checksum": row[3], "ChecksumType": row[4], "GUID": row[5],
            "Status": row[6], "Owner": row[7], "OwnerGroup": row[8], "Mode": row[9], "CreationDate": dates[row[10]],
            "ModificationDate": dates[row[11]], "Type": "File"}


def _datesOf(rows: Sequence[Sequence[Any]], columns: Sequence[int]) -> dict[str, datetime]:
    """{text: naive datetime} of the date texts in ``columns`` of ``rows``: files registered together share
    their dates, so each distinct text is parsed once."""
    return {text: datetime.fromisoformat(text) for text in {row[i] for row in rows for i in columns}}


def directoryMetadata(row: Row) -> Row:
    """What getDirectoryMetadata and a verbose listing answer for a directory row."""
    return {"DirID": row["DirID"], "Owner": row["Owner"], "OwnerGroup": row["OwnerGroup"], "Mode": row["Mode"],
            "CreationDate": row["CreationDate"], "ModificationDate": row["ModificationDate"], "Type": "Directory"}


class FileCatalogListings:
    """The directory-content reads of FileCatalogDB (a mix-in)."""

    def listDirectory(self: FileCatalogDB, path: str, verbose: bool) -> dict[str, Any]:
        """{Files: {lfn: {MetaData, Replicas?}}, SubDirs: {path: True | metadata}, Links: {}, Datasets: {}}."""
        d, f = T.directories, T.files
        with self.connection("listDirectory") as conn:
            directory = self._directoriesByPath(conn, [path]).get(path)
            if directory is None:
                raise KeyError(path)
            subdirs = {row["Path"]: (directoryMetadata(dict(row)) if verbose else True) for row in conn.execute(
                select(*DIR_COLUMNS).where(d.c.Parent == directory["DirID"])).mappings()}
            prefix = path.rstrip("/") + "/"
            with gcPaused():  # 10,000s of new dicts would start several full collections on the way
                rows = self._rows(conn, [f.c.FileName, *_LISTING_COLUMNS], f.c.DirID == directory["DirID"],
                                  _LISTING_INTS, _LISTING_DATES)
                dates = _datesOf(rows, _LISTING_DATES)
                filesOut = {prefix + row[0]: {"MetaData": _listingMetadata(row, dates)} for row in rows}
            if verbose and rows:
                names = {row[1]: prefix + row[0] for row in rows}
                for fileID, se, status, pfn in self._replicaRows(conn, f.c.DirID == directory["DirID"]):
                    filesOut[names[fileID]].setdefault("Replicas", {})[self.seName(conn, se)] = {
                        "Status": status, "PFN": pfn}
            dsets = self._datasetsInDirectory(conn, directory["DirID"], path)
        return {"Files": filesOut, "SubDirs": subdirs, "Links": {}, "Datasets": dsets}

    def _rows(self: FileCatalogDB, conn: Connection, columns: Sequence[Any], condition: Any,
              ints: Sequence[int] = (), dates: Sequence[int] = ()) -> list[Sequence[Any]]:
        """The ``columns`` (of FC_Files or FC_Directories) of the rows meeting ``condition``: those at the
        ``ints`` positions as integers, the dates at the ``dates`` positions as their text
        (``YYYY-mm-dd HH:MM:SS[.ffffff]``, naive UTC), the others as stored."""
        if self.isMySQL:
            packed = self._packedRows(conn, columns, condition)
            if packed is not None:
                for row in packed:
                    for i in ints:
                        row[i] = int(row[i])
                return packed
        return conn.execute(select(*(cast(c, String) if i in dates else c for i, c in enumerate(columns)))
                            .where(condition)).all()

    def _packedRows(self: FileCatalogDB, conn: Connection, columns: Sequence[Any], condition: Any
                    ) -> list[list[str]] | None:
        """The rows meeting ``condition`` as lists of text, read packed (MariaDB/MySQL only).

        Each row is one CONCAT_WS string (NUL between the columns, all NOT NULL) and the rows of each
        block of PACKED_ROWS IDs (FileID or DirID) one GROUP_CONCAT string (\\x01 between rows), split here. None
        when the split does not give the counted rows and columns (a NUL or \\x01 inside a value, a
        truncated concatenation): the caller then reads the rows plainly.
        """
        table = columns[0].table
        block = (table.c.FileID if table is T.files else table.c.DirID).op("DIV")(PACKED_ROWS)
        conn.exec_driver_sql(f"SET SESSION group_concat_max_len = {GROUP_CONCAT_MAX}")
        packed = conn.execute(select(func.count(), func.group_concat(
            literal_column(f"CONCAT_WS(0x00, {', '.join(c.name for c in columns)}) SEPARATOR 0x01")))
            .where(condition).group_by(block)).all()
        rows = [row.split("\x00") for count, block in packed for row in block.split("\x01")]
        if len(rows) != sum(count for count, _ in packed) or any(len(row) != len(columns) for row in rows):
            return None
        return rows

    def _replicaRows(self: FileCatalogDB, conn: Connection, fileCondition: Any) -> Any:
        r, f = T.replicas, T.files
        return conn.execute(select(r.c.FileID, r.c.SEID, r.c.Status, r.c.PFN).join(f, f.c.FileID == r.c.FileID)
                            .where(fileCondition))

    def getDirectoryDump(self: FileCatalogDB, path: str) -> dict[str, Any]:
        """{Files: {lfn: {Size, CreationDate}}, SubDirs: [every directory below]} of a whole subtree."""
        d, f, c = T.directories, T.files, T.closure
        with self.connection("getDirectoryDump") as conn:
            directory = self._directoriesByPath(conn, [path]).get(path)
            if directory is None:
                raise KeyError(path)
            subtree = select(c.c.DirID).where(c.c.AncestorID == directory["DirID"])
            with gcPaused():
                dirPaths = dict(self._rows(conn, [d.c.DirID, d.c.Path], d.c.DirID.in_(subtree), (0,)))
                prefixes = {dirID: dirPath.rstrip("/") + "/" for dirID, dirPath in dirPaths.items()}
                rows = self._rows(conn, _DUMP_COLUMNS, f.c.DirID.in_(subtree), (0, 2), (3,))
                dates = _datesOf(rows, (3,))
                filesOut = {prefixes[dirID] + name: {"Size": size, "CreationDate": dates[created]}
                            for dirID, name, size, created in rows}
        return {"Files": filesOut, "SubDirs": sorted(p for i, p in dirPaths.items() if i != directory["DirID"])}

    def getDirectorySize(self: FileCatalogDB, path: str, longOutput: bool, recursive: bool) -> dict[str, Any]:
        """{LogicalSize, LogicalFiles, LogicalDirectories[, PhysicalSize: {SE: {Size, Files}, TotalSize, TotalFiles}]}."""
        d, f, c, r = T.directories, T.files, T.closure, T.replicas
        with self.connection("getDirectorySize") as conn:
            directory = self._directoriesByPath(conn, [path]).get(path)
            if directory is None:
                raise KeyError(path)
            dirID = directory["DirID"]
            if recursive:
                inside = f.c.DirID.in_(select(c.c.DirID).where(c.c.AncestorID == dirID))
                subdirs = conn.scalar(select(func.count()).select_from(c).where(c.c.AncestorID == dirID, c.c.Depth > 0))
            else:
                inside = f.c.DirID == dirID
                subdirs = conn.scalar(select(func.count()).select_from(d).where(d.c.Parent == dirID))
            count, size = conn.execute(select(func.count(), func.coalesce(func.sum(f.c.Size), 0)).where(inside)).one()
            result: dict[str, Any] = {"LogicalSize": int(size), "LogicalFiles": int(count),
                                      "LogicalDirectories": int(subdirs)}
            if longOutput:
                physical: dict[str, Any] = {}
                for seID, seFiles, seSize in conn.execute(
                        select(r.c.SEID, func.count(), func.coalesce(func.sum(f.c.Size), 0))
                        .join(f, f.c.FileID == r.c.FileID).where(inside).group_by(r.c.SEID)):
                    physical[self.seName(conn, seID)] = {"Size": int(seSize), "Files": int(seFiles)}
                totals = {"TotalSize": sum(v["Size"] for v in physical.values()),
                          "TotalFiles": sum(v["Files"] for v in physical.values())}
                result["PhysicalSize"] = physical | totals
        return result

    def getDirectoryReplicas(self: FileCatalogDB, path: str, allStatus: bool, visibleFile: Sequence[str],
                             visibleReplica: Sequence[str]) -> dict[str, dict[str, str]]:
        """{lfn: {SE: PFN}} of the files directly in a directory."""
        f = T.files
        with self.connection("getDirectoryReplicas") as conn:
            directory = self._directoriesByPath(conn, [path]).get(path)
            if directory is None:
                raise KeyError(path)
            fileCond = f.c.DirID == directory["DirID"]
            query = select(f.c.FileID, f.c.FileName).where(fileCond)
            if not allStatus:
                query = query.where(f.c.Status.in_(visibleFile))
            names = {fileID: joinPath(path, name) for fileID, name in conn.execute(query)}
            result: dict[str, dict[str, str]] = {lfn: {} for lfn in names.values()}
            for fileID, seID, status, pfn in self._replicaRows(conn, fileCond):
                if fileID in names and (allStatus or status in visibleReplica):
                    result[names[fileID]][self.seName(conn, seID)] = pfn
        return result
