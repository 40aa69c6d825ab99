"""Datasets of the File Catalog: named metadata queries, Dynamic (evaluated on use) or Frozen (file list kept).

A dataset is named by a path (``/dirac/user/a/alice/myset``): it lives in a directory, next to
files and subdirectories, and its query is stored as JSON with its ``Path`` (where the query
looks). Freezing stores the IDs of the files the query selects at that moment; releasing
drops them and makes the dataset follow its query again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, update

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.DataManagementSystem.DB import FileCatalogTables as T
from dirac.DataManagementSystem.DB.FileCatalogTables import joinPath, parentOf

if TYPE_CHECKING:
    from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

DYNAMIC, FROZEN = "Dynamic", "Frozen"
_COLUMNS = ("DatasetID", "DatasetName", "DirID", "MetaQuery", "Status", "Owner", "OwnerGroup", "NumberOfFiles",
            "TotalSize", "DatasetHash", "CreationDate", "ModificationDate")


def _parameters(row: Any) -> dict[str, Any]:
    params = {name: row[name] for name in _COLUMNS}
    params["MetaQuery"] = json.loads(row["MetaQuery"])
    return params


class FileCatalogDatasets:
    """The dataset part of FileCatalogDB (a mix-in)."""

    def _datasetQuery(self: FileCatalogDB) -> Any:
        ds, d = T.datasets, T.directories
        return select(*(ds.c[name] for name in _COLUMNS), d.c.Path).join(d, d.c.DirID == ds.c.DirID)

    def addDataset(self: FileCatalogDB, path: str, metaQuery: dict[str, Any], owner: str, group: str,
                   stats: dict[str, Any]) -> int:
        """Define dataset ``path`` (its directory must exist); its DatasetID."""
        ds = T.datasets
        now = utcnow()
        with self.transaction("addDataset") as conn:
            directory = self._directoriesByPath(conn, [parentOf(path)]).get(parentOf(path))
            if directory is None:
                raise NotFound(f"Directory {parentOf(path)} does not exist")
            name = path.rsplit("/", 1)[1]
            if self._datasetsInDirectory(conn, directory["DirID"], parentOf(path), name):
                raise InvalidArgument(f"Dataset {path} already exists")
            result = conn.execute(ds.insert().values(
                DirID=directory["DirID"], DatasetName=name, MetaQuery=json.dumps(metaQuery, sort_keys=True, default=str),
                Status=DYNAMIC, Owner=owner, OwnerGroup=group, NumberOfFiles=stats["NumberOfFiles"],
                TotalSize=stats["TotalSize"], DatasetHash=stats["DatasetHash"], CreationDate=now, ModificationDate=now))
            return int(result.inserted_primary_key[0])

    def _datasetsInDirectory(self: FileCatalogDB, conn: Connection, dirID: int, path: str, name: str | None = None
                             ) -> dict[str, dict[str, Any]]:
        """{dataset path: {'Metadata': parameters}} of the datasets in a directory (one of them when ``name``)."""
        query = self._datasetQuery().where(T.datasets.c.DirID == dirID)
        if name is not None:
            query = query.where(T.datasets.c.DatasetName == name)
        return {joinPath(path, row["DatasetName"]): {"Metadata": _parameters(row)}
                for row in conn.execute(query).mappings()}

    def getDatasets(self: FileCatalogDB, pattern: str) -> dict[str, dict[str, Any]]:
        """{dataset path: parameters} of the datasets whose path matches ``pattern`` ('*' in the last component)."""
        ds, d = T.datasets, T.directories
        directory, name = parentOf(pattern), pattern.rsplit("/", 1)[1]
        query = self._datasetQuery().where(d.c.PathHash == T.pathHash(directory))
        if "*" in name:
            like = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
            query = query.where(ds.c.DatasetName.like(like, escape="\\"))
        else:
            query = query.where(ds.c.DatasetName == name)
        with self.connection("getDatasets") as conn:
            return {joinPath(row["Path"], row["DatasetName"]): _parameters(row)
                    for row in conn.execute(query).mappings()}

    def getDataset(self: FileCatalogDB, path: str) -> dict[str, Any]:
        """The parameters of dataset ``path`` (NotFound when there is none)."""
        found = self.getDatasets(path) if "*" not in path else {}
        if path not in found:
            raise NotFound(f"Dataset {path} does not exist")
        return found[path]

    def removeDataset(self: FileCatalogDB, datasetID: int) -> None:
        with self.transaction("removeDataset") as conn:
            conn.execute(delete(T.datasetFiles).where(T.datasetFiles.c.DatasetID == datasetID))
            conn.execute(delete(T.datasets).where(T.datasets.c.DatasetID == datasetID))

    def setDatasetContents(self: FileCatalogDB, datasetID: int, status: str, fileIDs: Sequence[int],
                           stats: dict[str, Any]) -> None:
        """Freeze a dataset on ``fileIDs`` (status Frozen) or release it (Dynamic, no file list kept)."""
        df, ds = T.datasetFiles, T.datasets
        with self.transaction("setDatasetContents") as conn:
            conn.execute(delete(df).where(df.c.DatasetID == datasetID))
            rows = [{"DatasetID": datasetID, "FileID": fileID} for fileID in fileIDs]
            for start in range(0, len(rows), 5000):
                conn.execute(df.insert(), rows[start:start + 5000])
            conn.execute(update(ds).where(ds.c.DatasetID == datasetID).values(
                Status=status, ModificationDate=utcnow(), NumberOfFiles=stats["NumberOfFiles"],
                TotalSize=stats["TotalSize"], DatasetHash=stats["DatasetHash"]))

    def getFrozenDatasetFiles(self: FileCatalogDB, datasetID: int) -> list[tuple[str, int, int, int]]:
        """[(lfn, FileID, DirID, Size)] kept for a frozen dataset (files removed since are gone from it)."""
        df, f, d = T.datasetFiles, T.files, T.directories
        with self.connection("getFrozenDatasetFiles") as conn:
            return [(joinPath(path, name), fileID, dirID, size) for path, name, fileID, dirID, size in conn.execute(
                select(d.c.Path, f.c.FileName, f.c.FileID, f.c.DirID, f.c.Size).join(f, f.c.FileID == df.c.FileID)
                .join(d, d.c.DirID == f.c.DirID).where(df.c.DatasetID == datasetID))]
