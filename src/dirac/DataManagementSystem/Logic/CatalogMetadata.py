"""User metadata and datasets of the File Catalog: who may set, read and query them.

Setting or removing metadata needs write access to the path, reading it read access. A
query (``findFilesByMetadata``) answers only the files in directories the caller may read.
A dataset is a named query (``/<vo>/.../name``); its creator (or an administrator) may
freeze, release or remove it, and anyone who may read its directory may use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from dirac.Core.Utilities.Exceptions import AuthorizationError, DiracError, InvalidArgument, NotFound
from dirac.DataManagementSystem.DB.FileCatalogDatasets import DYNAMIC, FROZEN
from dirac.DataManagementSystem.DB.FileCatalogTables import ROOT, parentOf
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller, lfnError
from dirac.DataManagementSystem.Logic.CatalogSecurity import DENIED, READ, WRITE, BulkResult, FileCatalogBase, bulk
from dirac.DataManagementSystem.Logic.MetaQuery import PATH_KEY, parseMetaQuery

META_TYPES = {"-d": "D", "-f": "F", "d": "D", "f": "F", "directory": "D", "file": "F"}
FileRow = tuple[str, int, int, int]  # (lfn, FileID, DirID, Size)


class CatalogMetadata(FileCatalogBase):
    """Metadata fields, values, queries and datasets."""

    def _checkPath(self, caller: Caller, path: str, access: str, allowRoot: bool = False) -> None:
        good, failed = self.screen(caller, [path], access, allowRoot)
        if failed:
            error = failed[path]
            raise AuthorizationError(f"{path}: {error}") if error == DENIED else InvalidArgument(f"{path}: {error}")

    # -- fields ------------------------------------------------------------------------------------
    def addMetadataField(self, name: str, fieldType: str, metaType: str = "-d") -> str:
        """Declare a field for directories ('-d') or files ('-f'): 'Added' or 'Already exists'."""
        kind = META_TYPES.get(metaType.lower())
        if kind is None:
            raise InvalidArgument(f"Unknown metadata type {metaType}: use -d (directories) or -f (files)")
        return self.db.addMetadataField(name, fieldType, kind)

    def deleteMetadataField(self, name: str) -> None:
        self.db.deleteMetadataField(name)

    def getMetadataFields(self) -> dict[str, dict[str, str]]:
        fields = self.db.getMetadataFields()
        return {"DirectoryMetaFields": fields["D"], "FileMetaFields": fields["F"]}

    # -- values --------------------------------------------------------------------------------------
    def setMetadata(self, caller: Caller, path: str, metaDict: dict[str, Any]) -> None:
        """Set metadata on a directory (directory fields) or a file (file fields)."""
        self._checkPath(caller, path, WRITE)
        if not metaDict:
            raise InvalidArgument("No metadata given")
        kind = self.db.pathKinds([path])[path]
        if kind == "Directory":
            self.db.setDirectoryMetadata(path, metaDict)
        elif kind == "File":
            self.db.setFileMetadata(path, metaDict)
        else:
            raise NotFound(f"{path} does not exist")

    def setMetadataBulk(self, caller: Caller, pathMetadata: dict[str, dict[str, Any]]) -> BulkResult:
        return self._perPath(pathMetadata, lambda path, meta: self.setMetadata(caller, path, meta))

    def removeMetadata(self, caller: Caller, pathMetadata: dict[str, Any]) -> BulkResult:
        """Remove fields from paths: {path: [field, ...]} (a dict or one name also do)."""
        def remove(path: str, names: Any) -> None:
            self._checkPath(caller, path, WRITE)
            names = [names] if isinstance(names, str) else list(names)
            kind = self.db.pathKinds([path])[path]
            if kind is None:
                raise NotFound(f"{path} does not exist")
            self.db.removeMetadata("D" if kind == "Directory" else "F", path, names)

        return self._perPath(pathMetadata, remove)

    @staticmethod
    def _perPath(items: Any, call: Callable[[str, Any], Any]) -> BulkResult:
        """Run ``call(path, value)`` for each item of a dict (a list or one path: value None); its answer or True."""
        pairs = items.items() if isinstance(items, dict) else dict.fromkeys([items] if isinstance(items, str)
                                                                           else items).items()
        successful, failed = {}, {}
        for path, value in pairs:
            try:
                answer = call(path, value)
                successful[path] = True if answer is None else answer
            except DiracError as exc:
                failed[path] = exc.message
        return bulk(successful, failed)

    def getDirectoryUserMetadata(self, caller: Caller, path: str) -> tuple[dict[str, Any], dict[str, str]]:
        """({field: value} of the directory and its ancestors, {field: OwnMetadata | ParentMetadata})."""
        self._checkPath(caller, path, READ, allowRoot=True)
        return self.db.getDirectoryUserMetadata(path)

    def getFileUserMetadata(self, caller: Caller, path: str) -> dict[str, Any]:
        """{field: value} of a file: its own fields and those its directory holds or inherits."""
        self._checkPath(caller, path, READ)
        values = self.db.getFileUserMetadata(path)
        inherited, _ = self.db.getDirectoryUserMetadata(parentOf(path))
        return inherited | values

    # -- queries --------------------------------------------------------------------------------------
    def _queryPath(self, caller: Caller, path: str) -> str:
        error = lfnError(path, caller, allowRoot=True)
        if error:
            raise InvalidArgument(f"{path}: {error}")
        if path == ROOT and not caller.isAdmin and caller.vo:
            return f"/{caller.vo}"  # a user's query never looks into another VO's tree
        return path

    def _findFiles(self, caller: Caller, metaDict: dict[str, Any], path: str) -> list[FileRow]:
        rows = self.db.findFiles(parseMetaQuery(metaDict), self._queryPath(caller, path))
        readable = self.readable(caller, {parentOf(lfn) for lfn, *_ in rows})
        return [row for row in rows if parentOf(row[0]) in readable]

    def findFilesByMetadata(self, caller: Caller, metaDict: dict[str, Any], path: str = ROOT) -> list[str]:
        """The LFNs under ``path`` whose metadata meet the query (readable ones only)."""
        return sorted(lfn for lfn, *_ in self._findFiles(caller, metaDict, path))

    def findDirectoriesByMetadata(self, caller: Caller, metaDict: dict[str, Any], path: str = ROOT) -> dict[int, str]:
        """{DirID: path} of the directories under ``path`` whose directory metadata meet the query."""
        found = self.db.findDirectories(parseMetaQuery(metaDict), self._queryPath(caller, path))
        readable = self.readable(caller, found.values())
        return {dirID: dirPath for dirID, dirPath in found.items() if dirPath in readable}

    def getReplicasByMetadata(self, caller: Caller, metaDict: dict[str, Any], path: str = ROOT,
                              allStatus: bool = False) -> BulkResult:
        lfns = [lfn for lfn, *_ in self._findFiles(caller, metaDict, path)]
        successful, failed = self.db.getReplicas(lfns, allStatus, self.settings.visibleFileStatus,
                                                 self.settings.visibleReplicaStatus)
        return bulk(successful, failed)

    # -- datasets ----------------------------------------------------------------------------------------
    @staticmethod
    def _stats(rows: list[FileRow]) -> dict[str, Any]:
        lfns = sorted(lfn for lfn, *_ in rows)
        return {"NumberOfFiles": len(rows), "TotalSize": sum(size for *_, size in rows),
                "DatasetHash": hashlib.md5("\n".join(lfns).encode(), usedforsecurity=False).hexdigest()}

    def _datasetQuery(self, caller: Caller, path: str, metaQuery: dict[str, Any]) -> tuple[dict[str, Any], str]:
        if not isinstance(metaQuery, dict):
            raise InvalidArgument("A dataset is defined by a metadata query dict")
        query = dict(metaQuery)
        query.setdefault(PATH_KEY, f"/{caller.vo}" if caller.vo else ROOT)
        parseMetaQuery(query)
        return query, query[PATH_KEY]

    def addDataset(self, caller: Caller, datasets: dict[str, dict[str, Any]]) -> BulkResult:
        """Define datasets {path: metadata query (with an optional 'Path' where it looks)}."""
        def add(path: str, metaQuery: dict[str, Any]) -> None:
            self._checkPath(caller, path, WRITE)
            query, where = self._datasetQuery(caller, path, metaQuery)
            stats = self._stats(self._findFiles(caller, query, where))
            created, failed = self.db.makeDirectories([parentOf(path)], caller.user, caller.group,
                                                      self.settings.directoryMode)
            if failed:
                raise InvalidArgument(failed[parentOf(path)])
            self.db.addDataset(path, query, caller.user, caller.group, stats)

        return self._perPath(datasets, add)

    def _ownDataset(self, caller: Caller, path: str) -> dict[str, Any]:
        self._checkPath(caller, path, READ)
        dataset = self.db.getDataset(path)
        if not caller.isAdmin and dataset["Owner"] != caller.user:
            raise AuthorizationError(f"{path}: {DENIED} (the dataset belongs to {dataset['Owner']})")
        return dataset

    def getDatasets(self, caller: Caller, datasets: Any) -> BulkResult:
        """{pattern: {dataset path: parameters}} ('*' allowed in the last component)."""
        def get(pattern: str, _: Any = None) -> dict[str, Any]:
            self._checkPath(caller, pattern.replace("*", "x"), READ)
            return self.db.getDatasets(pattern)

        return self._perPath(datasets, get)

    def getDatasetFiles(self, caller: Caller, datasets: Any) -> BulkResult:
        """{dataset path: [lfn]}: the kept list of a frozen dataset, the query's answer now for a dynamic one."""
        def files(path: str, _: Any = None) -> list[str]:
            self._checkPath(caller, path, READ)
            dataset = self.db.getDataset(path)
            if dataset["Status"] == FROZEN:
                return sorted(lfn for lfn, *_ in self.db.getFrozenDatasetFiles(dataset["DatasetID"]))
            query = dataset["MetaQuery"]
            return sorted(lfn for lfn, *_ in self._findFiles(caller, query, query[PATH_KEY]))

        return self._perPath(datasets, files)

    def freezeDataset(self, caller: Caller, datasets: Any) -> BulkResult:
        """Keep the files a dataset's query selects now as its contents."""
        def freeze(path: str, _: Any = None) -> bool:
            dataset = self._ownDataset(caller, path)
            query = dataset["MetaQuery"]
            rows = self._findFiles(caller, query, query[PATH_KEY])
            self.db.setDatasetContents(dataset["DatasetID"], FROZEN, [fileID for _, fileID, *_ in rows],
                                       self._stats(rows))
            return True

        return self._perPath(datasets, freeze)

    def releaseDataset(self, caller: Caller, datasets: Any) -> BulkResult:
        """Make a frozen dataset follow its query again."""
        def release(path: str, _: Any = None) -> bool:
            dataset = self._ownDataset(caller, path)
            query = dataset["MetaQuery"]
            self.db.setDatasetContents(dataset["DatasetID"], DYNAMIC, [],
                                       self._stats(self._findFiles(caller, query, query[PATH_KEY])))
            return True

        return self._perPath(datasets, release)

    def removeDataset(self, caller: Caller, datasets: Any) -> BulkResult:
        def remove(path: str, _: Any = None) -> bool:
            self.db.removeDataset(self._ownDataset(caller, path)["DatasetID"])
            return True

        return self._perPath(datasets, remove)
