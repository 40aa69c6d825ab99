"""DataManagement/FileCatalog: the DIRAC File Catalog service (LFNs, replicas, metadata, datasets).

Method names, arguments and answers are DIRAC's: LFN arguments are one LFN, a list or a dict
{lfn: details}; bulk answers are ``{"Successful": {lfn: ...}, "Failed": {lfn: reason}}``.
Any authenticated caller may read (the catalog then checks each path's mode); writing needs
NormalUser (or FileCatalogManagement), declaring metadata fields and changing owners needs
FileCatalogManagement. The rules are in ``Logic/`` and docs/catalog.md.
"""

from __future__ import annotations

import time
from typing import ClassVar

from dirac.Core.Config import Registry
from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.ReturnValues import S_OK
from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller
from dirac.DataManagementSystem.Logic.CatalogSecurity import CatalogSettings
from dirac.DataManagementSystem.Logic.FileCatalog import FileCatalog

READERS = [AUTHENTICATED]
WRITERS = [Properties.NormalUser, Properties.FileCatalogManagement]
ADMINS = [Properties.FileCatalogManagement]
LFNs = str | list | dict


class FileCatalogHandler(RequestHandler):
    """The FileCatalog service."""

    catalog: ClassVar[FileCatalog]

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.catalog = FileCatalog(FileCatalogDB(), CatalogSettings.fromCS(serviceInfo.section))
        for vo in Registry.getVOs():
            cls.catalog.ensureVORoot(vo)
        cls.log.info("file catalog ready: VO roots %s, directory mode %o, global read access %s",
                     ", ".join(f"/{vo}" for vo in Registry.getVOs()) or "none", cls.catalog.settings.directoryMode,
                     cls.catalog.settings.globalReadAccess)

    @property
    def caller(self) -> Caller:
        return Caller.fromCredentials(self.credDict)

    # -- existence and files ------------------------------------------------------------------------
    auth_exists = auth_isFile = auth_isDirectory = READERS
    auth_getFileMetadata = auth_getFileSize = auth_getReplicas = auth_getReplicaStatus = READERS
    auth_getLFNForGUID = READERS

    def export_exists(self, lfns: LFNs) -> dict:
        """{lfn: lfn (file) | True (directory) | False}."""
        return self.catalog.exists(self.caller, lfns)

    def export_isFile(self, lfns: LFNs) -> dict:
        return self.catalog.isFile(self.caller, lfns)

    def export_isDirectory(self, lfns: LFNs) -> dict:
        return self.catalog.isDirectory(self.caller, lfns)

    def export_getFileMetadata(self, lfns: LFNs) -> dict:
        """{lfn: {Size, Checksum, ChecksumType, GUID, Status, Owner, OwnerGroup, Mode, CreationDate, ...}}."""
        return self.catalog.getFileMetadata(self.caller, lfns)

    def export_getFileSize(self, lfns: LFNs) -> dict:
        return self.catalog.getFileSize(self.caller, lfns)

    def export_getReplicas(self, lfns: LFNs, allStatus: bool = False) -> dict:
        """{lfn: {SE: PFN}} (only visible files and replicas unless allStatus)."""
        return self.catalog.getReplicas(self.caller, lfns, allStatus)

    def export_getReplicaStatus(self, lfns: dict) -> dict:
        """{lfn: status} of the replica at the SE given per LFN ({lfn: SE})."""
        return self.catalog.getReplicaStatus(self.caller, lfns)

    def export_getLFNForGUID(self, guids: LFNs) -> dict:
        return self.catalog.getLFNForGUID(self.caller, guids)

    auth_addFile = auth_removeFile = auth_setFileStatus = WRITERS
    auth_addReplica = auth_removeReplica = auth_setReplicaStatus = WRITERS

    def export_addFile(self, lfns: dict) -> dict:
        """Register files {lfn: {PFN, SE, Size, Checksum, ChecksumType, GUID}}."""
        return self.catalog.addFile(self.caller, lfns)

    def export_removeFile(self, lfns: LFNs) -> dict:
        return self.catalog.removeFile(self.caller, lfns)

    def export_setFileStatus(self, lfns: dict) -> dict:
        return self.catalog.setFileStatus(self.caller, lfns)

    def export_addReplica(self, lfns: dict) -> dict:
        """Add replicas {lfn: {SE, PFN}}."""
        return self.catalog.addReplica(self.caller, lfns)

    def export_removeReplica(self, lfns: dict) -> dict:
        """Remove replicas {lfn: {SE}}."""
        return self.catalog.removeReplica(self.caller, lfns)

    def export_setReplicaStatus(self, lfns: dict) -> dict:
        """Set replica statuses {lfn: {SE, Status}}."""
        return self.catalog.setReplicaStatus(self.caller, lfns)

    # -- directories ---------------------------------------------------------------------------------
    auth_createDirectory = auth_removeDirectory = WRITERS
    auth_listDirectory = auth_getDirectoryDump = auth_getDirectorySize = READERS
    auth_getDirectoryReplicas = auth_getDirectoryMetadata = READERS

    def export_createDirectory(self, lfns: LFNs) -> dict:
        return self.catalog.createDirectory(self.caller, lfns)

    def export_removeDirectory(self, lfns: LFNs) -> dict:
        """Remove empty directories."""
        return self.catalog.removeDirectory(self.caller, lfns)

    def export_listDirectory(self, lfns: LFNs, verbose: bool = False) -> dict:
        """{dir: {Files: {lfn: {MetaData[, Replicas]}}, SubDirs: {path: True | metadata}, Links, Datasets}}."""
        return self.catalog.listDirectory(self.caller, lfns, verbose)

    def export_getDirectoryDump(self, lfns: LFNs) -> dict:
        """{dir: {Files: {lfn: {Size, CreationDate}}, SubDirs: [paths]}} of whole subtrees."""
        return self.catalog.getDirectoryDump(self.caller, lfns)

    def export_getDirectorySize(self, lfns: LFNs, longOut: bool = False, fromFiles: bool = False,
                                recursiveSum: bool = True) -> dict:
        """{dir: {LogicalSize, LogicalFiles, LogicalDirectories[, PhysicalSize]}} (always counted from the files)."""
        start = time.monotonic()
        result = self.catalog.getDirectorySize(self.caller, lfns, longOut, recursiveSum)
        return S_OK(result | {"QueryTime": time.monotonic() - start})

    def export_getDirectoryReplicas(self, lfns: LFNs, allStatus: bool = False) -> dict:
        return self.catalog.getDirectoryReplicas(self.caller, lfns, allStatus)

    def export_getDirectoryMetadata(self, lfns: LFNs) -> dict:
        """{dir: {DirID, Owner, OwnerGroup, Mode, CreationDate, ModificationDate}}."""
        return self.catalog.getDirectoryMetadata(self.caller, lfns)

    # -- ownership and permissions ---------------------------------------------------------------------
    auth_changePathMode = auth_changePathGroup = WRITERS
    auth_changePathOwner = ADMINS
    auth_getPathPermissions = auth_hasAccess = READERS

    def export_changePathMode(self, lfns: dict, recursive: bool = False) -> dict:
        """Set modes {path: mode} (owner or administrator)."""
        return self.catalog.changePathMode(self.caller, lfns, recursive)

    def export_changePathOwner(self, lfns: dict, recursive: bool = False) -> dict:
        return self.catalog.changePathOwner(self.caller, lfns, recursive)

    def export_changePathGroup(self, lfns: dict, recursive: bool = False) -> dict:
        """Set groups {path: group} (owner, to one of its groups, or administrator)."""
        return self.catalog.changePathGroup(self.caller, lfns, recursive)

    def export_getPathPermissions(self, lfns: LFNs) -> dict:
        """{path: {Read, Write, Execute}} of the caller."""
        return self.catalog.getPathPermissions(self.caller, lfns)

    def export_hasAccess(self, paths: LFNs, opType: LFNs) -> dict:
        """{path: bool}: may the caller do opType there (DIRAC's older (opType, paths) order is accepted)."""
        if isinstance(paths, str) and not isinstance(opType, str):
            paths, opType = opType, paths
        return self.catalog.hasAccess(self.caller, paths, str(opType))

    # -- metadata ------------------------------------------------------------------------------------------
    auth_addMetadataField = auth_deleteMetadataField = ADMINS
    auth_getMetadataFields = READERS
    auth_setMetadata = auth_setMetadataBulk = auth_removeMetadata = WRITERS
    auth_getDirectoryUserMetadata = auth_getFileUserMetadata = READERS
    auth_findFilesByMetadata = auth_findDirectoriesByMetadata = auth_getReplicasByMetadata = READERS

    def export_addMetadataField(self, fieldName: str, fieldType: str, metaType: str = "-d") -> str:
        """Declare a field: type int, float, string or date; '-d' for directories, '-f' for files."""
        return self.catalog.addMetadataField(fieldName, fieldType, metaType)

    def export_deleteMetadataField(self, fieldName: str) -> None:
        self.catalog.deleteMetadataField(fieldName)

    def export_getMetadataFields(self) -> dict:
        """{DirectoryMetaFields: {name: type}, FileMetaFields: {name: type}}."""
        return self.catalog.getMetadataFields()

    def export_setMetadata(self, path: str, metadatadict: dict) -> None:
        self.catalog.setMetadata(self.caller, path, metadatadict)

    def export_setMetadataBulk(self, pathMetadataDict: dict) -> dict:
        return self.catalog.setMetadataBulk(self.caller, pathMetadataDict)

    def export_removeMetadata(self, pathMetadataDict: dict) -> dict:
        return self.catalog.removeMetadata(self.caller, pathMetadataDict)

    def export_getDirectoryUserMetadata(self, path: str) -> dict:
        """{field: value} of a directory, inherited ones included (MetadataOwner says which are its own)."""
        values, owners = self.catalog.getDirectoryUserMetadata(self.caller, path)
        return S_OK(values) | {"MetadataOwner": owners}

    def export_getFileUserMetadata(self, path: str) -> dict:
        return self.catalog.getFileUserMetadata(self.caller, path)

    def export_findFilesByMetadata(self, metaDict: dict, path: str = "/") -> list:
        """The LFNs under path meeting the query (see docs/catalog.md for the syntax)."""
        return self.catalog.findFilesByMetadata(self.caller, metaDict, path)

    def export_findDirectoriesByMetadata(self, metaDict: dict, path: str = "/") -> dict:
        return self.catalog.findDirectoriesByMetadata(self.caller, metaDict, path)

    def export_getReplicasByMetadata(self, metaDict: dict, path: str = "/", allStatus: bool = False) -> dict:
        return self.catalog.getReplicasByMetadata(self.caller, metaDict, path, allStatus)

    # -- datasets ---------------------------------------------------------------------------------------------
    auth_addDataset = auth_removeDataset = auth_freezeDataset = auth_releaseDataset = WRITERS
    auth_getDatasets = auth_getDatasetFiles = READERS

    def export_addDataset(self, datasets: dict) -> dict:
        """Define datasets {path: metadata query}."""
        return self.catalog.addDataset(self.caller, datasets)

    def export_getDatasets(self, datasets: LFNs) -> dict:
        return self.catalog.getDatasets(self.caller, datasets)

    def export_getDatasetFiles(self, datasets: LFNs) -> dict:
        return self.catalog.getDatasetFiles(self.caller, datasets)

    def export_freezeDataset(self, datasets: LFNs) -> dict:
        return self.catalog.freezeDataset(self.caller, datasets)

    def export_releaseDataset(self, datasets: LFNs) -> dict:
        return self.catalog.releaseDataset(self.caller, datasets)

    def export_removeDataset(self, datasets: LFNs) -> dict:
        return self.catalog.removeDataset(self.caller, datasets)

    # -- administration ------------------------------------------------------------------------------------------
    auth_getCatalogCounters = ADMINS
    auth_getSEDump = ADMINS

    def export_getCatalogCounters(self) -> dict:
        return self.catalog.db.getCatalogCounters()

    def export_getSEDump(self, seNames: list[str] | str) -> list:
        """[(SE, lfn, checksum, size)] of every replica at the SEs."""
        return self.catalog.db.getSEDump([seNames] if isinstance(seNames, str) else seNames)
