"""Client of the DIRAC File Catalog service, DataManagement/FileCatalog, with DIRAC's method names.

Bulk methods take one LFN, a list or a dict {lfn: details} and answer
``S_OK({"Successful": {...}, "Failed": {lfn: reason}})``; batches bigger than CHUNK go in
several calls whose answers are merged, so a DataManager can hand over any number of LFNs.
A call that fails as a whole (no server, no permission to call the method) is an S_ERROR.
"""

from __future__ import annotations

from typing import Any

from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.ReturnValues import S_OK, DReturnType

SERVICE = "DataManagement/FileCatalog"
CHUNK = 10_000

LFNs = str | list[str] | dict[str, Any]


def _chunks(lfns: LFNs, size: int) -> list[Any]:
    if isinstance(lfns, str):
        return [lfns]
    if isinstance(lfns, dict):
        items = list(lfns.items())
        return [dict(items[i:i + size]) for i in range(0, len(items), size)] or [{}]
    items = list(lfns)
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


class FileCatalogClient:
    """DIRAC File Catalog operations over RPC."""

    def __init__(self, url: str | None = None, chunkSize: int = CHUNK, **rpcOptions: Any):
        self.rpc = RPCClient(url or SERVICE, **rpcOptions)
        self.chunkSize = chunkSize

    def _bulk(self, method: str, lfns: LFNs, *args: Any) -> DReturnType[dict[str, dict[str, Any]]]:
        successful: dict[str, Any] = {}
        failed: dict[str, Any] = {}
        for chunk in _chunks(lfns, self.chunkSize):
            result = self.rpc.executeRPC(method, chunk, *args)
            if not result["OK"]:
                return result
            successful.update(result["Value"]["Successful"])
            failed.update(result["Value"]["Failed"])
        return S_OK({"Successful": successful, "Failed": failed})

    # -- files and replicas ----------------------------------------------------------------------
    def exists(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("exists", lfns)

    def isFile(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("isFile", lfns)

    def isDirectory(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("isDirectory", lfns)

    def addFile(self, lfns: dict[str, dict[str, Any]]) -> DReturnType[dict]:
        """Register files {lfn: {PFN, SE, Size, Checksum, ChecksumType, GUID}} (SE may be a list)."""
        return self._bulk("addFile", lfns)

    def removeFile(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("removeFile", lfns)

    def setFileStatus(self, lfns: dict[str, str]) -> DReturnType[dict]:
        return self._bulk("setFileStatus", lfns)

    def getFileMetadata(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("getFileMetadata", lfns)

    def getFileSize(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("getFileSize", lfns)

    def getLFNForGUID(self, guids: LFNs) -> DReturnType[dict]:
        return self._bulk("getLFNForGUID", guids)

    def addReplica(self, lfns: dict[str, dict[str, Any]]) -> DReturnType[dict]:
        """Add replicas {lfn: {SE, PFN}}."""
        return self._bulk("addReplica", lfns)

    def removeReplica(self, lfns: dict[str, dict[str, Any]]) -> DReturnType[dict]:
        """Remove replicas {lfn: {SE}}."""
        return self._bulk("removeReplica", lfns)

    def setReplicaStatus(self, lfns: dict[str, dict[str, Any]]) -> DReturnType[dict]:
        return self._bulk("setReplicaStatus", lfns)

    def getReplicas(self, lfns: LFNs, allStatus: bool = False) -> DReturnType[dict]:
        """{lfn: {SE: PFN}}; like DIRAC's client, an empty PFN is replaced by the LFN."""
        result = self._bulk("getReplicas", sorted(lfns) if not isinstance(lfns, str) else lfns, allStatus)
        if result["OK"]:
            for lfn, replicas in result["Value"]["Successful"].items():
                for se, pfn in replicas.items():
                    replicas[se] = pfn or lfn
        return result

    def getReplicaStatus(self, lfns: dict[str, str]) -> DReturnType[dict]:
        return self._bulk("getReplicaStatus", lfns)

    # -- directories ----------------------------------------------------------------------------------
    def createDirectory(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("createDirectory", lfns)

    def removeDirectory(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("removeDirectory", lfns)

    def listDirectory(self, lfns: LFNs, verbose: bool = False) -> DReturnType[dict]:
        return self._bulk("listDirectory", lfns, verbose)

    def getDirectoryDump(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("getDirectoryDump", lfns)

    def getDirectorySize(self, lfns: LFNs, longOut: bool = False, fromFiles: bool = False,
                         recursiveSum: bool = True) -> DReturnType[dict]:
        return self._bulk("getDirectorySize", lfns, longOut, fromFiles, recursiveSum)

    def getDirectoryReplicas(self, lfns: LFNs, allStatus: bool = False) -> DReturnType[dict]:
        return self._bulk("getDirectoryReplicas", lfns, allStatus)

    def getDirectoryMetadata(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("getDirectoryMetadata", lfns)

    # -- ownership and permissions -----------------------------------------------------------------------
    def changePathMode(self, lfns: dict[str, int], recursive: bool = False) -> DReturnType[dict]:
        return self._bulk("changePathMode", lfns, recursive)

    def changePathOwner(self, lfns: dict[str, str], recursive: bool = False) -> DReturnType[dict]:
        return self._bulk("changePathOwner", lfns, recursive)

    def changePathGroup(self, lfns: dict[str, str], recursive: bool = False) -> DReturnType[dict]:
        return self._bulk("changePathGroup", lfns, recursive)

    def getPathPermissions(self, lfns: LFNs) -> DReturnType[dict]:
        return self._bulk("getPathPermissions", lfns)

    def hasAccess(self, paths: LFNs, opType: str) -> DReturnType[dict]:
        return self._bulk("hasAccess", paths, opType)

    # -- metadata ---------------------------------------------------------------------------------------------
    def addMetadataField(self, fieldName: str, fieldType: str, metaType: str = "-d") -> DReturnType[str]:
        return self.rpc.addMetadataField(fieldName, fieldType, metaType)

    def deleteMetadataField(self, fieldName: str) -> DReturnType[None]:
        return self.rpc.deleteMetadataField(fieldName)

    def getMetadataFields(self) -> DReturnType[dict]:
        return self.rpc.getMetadataFields()

    def setMetadata(self, path: str, metadataDict: dict[str, Any]) -> DReturnType[None]:
        return self.rpc.setMetadata(path, metadataDict)

    def setMetadataBulk(self, pathMetadataDict: dict[str, dict[str, Any]]) -> DReturnType[dict]:
        return self._bulk("setMetadataBulk", pathMetadataDict)

    def removeMetadata(self, pathMetadataDict: dict[str, Any]) -> DReturnType[dict]:
        return self._bulk("removeMetadata", pathMetadataDict)

    def getDirectoryUserMetadata(self, path: str) -> DReturnType[dict]:
        return self.rpc.getDirectoryUserMetadata(path)

    def getFileUserMetadata(self, path: str) -> DReturnType[dict]:
        return self.rpc.getFileUserMetadata(path)

    def findFilesByMetadata(self, metaDict: dict[str, Any], path: str = "/") -> DReturnType[list[str]]:
        return self.rpc.findFilesByMetadata(metaDict, path)

    def findDirectoriesByMetadata(self, metaDict: dict[str, Any], path: str = "/") -> DReturnType[dict]:
        return self.rpc.findDirectoriesByMetadata(metaDict, path)

    def getReplicasByMetadata(self, metaDict: dict[str, Any], path: str = "/", allStatus: bool = False
                              ) -> DReturnType[dict]:
        return self.rpc.getReplicasByMetadata(metaDict, path, allStatus)

    # -- datasets ----------------------------------------------------------------------------------------------
    def addDataset(self, datasets: dict[str, dict[str, Any]]) -> DReturnType[dict]:
        return self.rpc.addDataset(datasets)

    def getDatasets(self, datasets: LFNs) -> DReturnType[dict]:
        return self.rpc.getDatasets(datasets)

    def getDatasetFiles(self, datasets: LFNs) -> DReturnType[dict]:
        return self.rpc.getDatasetFiles(datasets)

    def freezeDataset(self, datasets: LFNs) -> DReturnType[dict]:
        return self.rpc.freezeDataset(datasets)

    def releaseDataset(self, datasets: LFNs) -> DReturnType[dict]:
        return self.rpc.releaseDataset(datasets)

    def removeDataset(self, datasets: LFNs) -> DReturnType[dict]:
        return self.rpc.removeDataset(datasets)
