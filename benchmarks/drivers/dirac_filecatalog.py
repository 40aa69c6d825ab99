"""DIRAC's FileCatalogDB on MariaDB with its default managers (DIRAC venv only): addFile, then getReplicas.

The schema is DIRAC's FileCatalogDB.sql, run statement by statement as its dirac-install-db does
(comment lines dropped, split on ';'; its ``USE FileCatalogDB`` skipped: the connection is already
on the throwaway database). The managers are the FileCatalog service's defaults
(FileCatalogHandler.initializeHandler): UserAndGroupManagerDB, SEManagerDB, NoSecurityManager,
DirectoryLevelTree, FileManager, DirectoryMetadata, FileMetadata, DatasetManager.
"""

from __future__ import annotations

import time
from importlib import resources

import workloads

MANAGERS = {"UserGroupManager": "UserAndGroupManagerDB", "SEManager": "SEManagerDB",
            "SecurityManager": "NoSecurityManager", "DirectoryManager": "DirectoryLevelTree",
            "FileManager": "FileManager", "DirectoryMetadata": "DirectoryMetadata", "FileMetadata": "FileMetadata",
            "DatasetManager": "DatasetManager"}
SETTINGS = {"UniqueGUID": False, "GlobalReadAccess": True, "LFNPFNConvention": "Strong", "ResolvePFN": True,
            "DefaultUmask": 0o775, "ValidFileStatus": ["AprioriGood", "Trash", "Removing", "Probing"],
            "ValidReplicaStatus": ["AprioriGood", "Trash", "Removing", "Probing"],
            "VisibleFileStatus": ["AprioriGood"], "VisibleReplicaStatus": ["AprioriGood"]}


def createSchema(db) -> None:
    sql = resources.files("DIRAC.DataManagementSystem.DB").joinpath("FileCatalogDB.sql").read_text()
    text = "\n".join(line.strip() for line in sql.splitlines() if line.strip() and not line.strip().startswith("--"))
    for statement in (part.strip() for part in text.split(";")):
        if statement and not statement.upper().startswith("USE "):
            result = db._update(statement)
            if not result["OK"]:
                raise RuntimeError(f"FileCatalogDB.sql: {statement[:80]}: {result['Message']}")


def main() -> None:
    workloads.initialiseDIRAC()
    from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

    settings = workloads.settings()
    db = FileCatalogDB()
    createSchema(db)
    result = db.setConfig({**MANAGERS, **SETTINGS})
    if not result["OK"]:
        raise RuntimeError(f"FileCatalogDB.setConfig: {result['Message']}")
    credentials = {"username": workloads.OWNER, "group": workloads.GROUP, "DN": workloads.OWNER_DN,
                   "properties": ["NormalUser"]}
    lfns = workloads.lfns(settings["root"], settings["files"])
    batch = settings["batch"]
    began = time.perf_counter()
    for start in range(0, len(lfns), batch):
        part = {lfn: {"PFN": "", **workloads.fileEntry(lfn)} for lfn in lfns[start:start + batch]}
        result = db.addFile(part, credentials)
        if not result["OK"] or result["Value"]["Failed"]:
            raise RuntimeError(f"FileCatalogDB.addFile: {result.get('Message') or result['Value']['Failed']}"[:500])
        workloads.progress(start + len(part), len(lfns), "files registered by DIRAC's FileCatalogDB.addFile")
    addRate = len(lfns) / (time.perf_counter() - began)
    per = settings["replicaCall"]
    began = time.perf_counter()
    for start in range(0, len(lfns), per):
        result = db.getReplicas(lfns[start:start + per], False, credentials)
        if not result["OK"] or len(result["Value"]["Successful"]) != len(lfns[start:start + per]):
            raise RuntimeError(f"FileCatalogDB.getReplicas: {result.get('Message') or result['Value']['Failed']}"[:500])
    workloads.report({"addPerSecond": addRate, "replicasPerSecond": len(lfns) / (time.perf_counter() - began)})


if __name__ == "__main__":
    main()
