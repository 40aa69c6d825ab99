"""Our FileCatalogDB on MariaDB: addFiles, then getReplicas, on the same files in the same batches as DIRAC's."""

from __future__ import annotations

import time

import workloads


def main() -> None:
    from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

    settings = workloads.settings()
    db = FileCatalogDB()
    lfns = workloads.lfns(settings["root"], settings["files"])
    batch = settings["batch"]

    def entry(lfn: str) -> dict:
        common = workloads.fileEntry(lfn)
        return {**{key: common[key] for key in ("Size", "Checksum", "ChecksumType", "GUID")},
                "Status": "AprioriGood", "Replicas": [(common["SE"], "", "AprioriGood")]}

    began = time.perf_counter()
    for start in range(0, len(lfns), batch):
        part = {lfn: entry(lfn) for lfn in lfns[start:start + batch]}
        _, failed = db.addFiles(part, workloads.OWNER, workloads.GROUP, 0o644, 0o755)
        if failed:
            raise RuntimeError(f"FileCatalogDB.addFiles: {next(iter(failed.items()))}")
        workloads.progress(start + len(part), len(lfns), "files registered by our FileCatalogDB.addFiles")
    addRate = len(lfns) / (time.perf_counter() - began)
    per = settings["replicaCall"]
    began = time.perf_counter()
    for start in range(0, len(lfns), per):
        found, failed = db.getReplicas(lfns[start:start + per], False, ["AprioriGood"], ["AprioriGood"])
        if failed or len(found) != len(lfns[start:start + per]):
            raise RuntimeError(f"FileCatalogDB.getReplicas: {len(found)} found, {next(iter(failed.items()), '')}")
    workloads.report({"addPerSecond": addRate, "replicasPerSecond": len(lfns) / (time.perf_counter() - began)})


if __name__ == "__main__":
    main()
