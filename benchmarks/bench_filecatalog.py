"""File Catalog: bulk registration, getReplicas, a big listing, a metadata query and a recursive dump.

Measured twice: through ``FileCatalogDB`` in this process (the database and its queries alone)
and through the ``DataManagement/FileCatalog`` service over HTTPS with the grid user's proxy
(what a user sees: RPC, JSON, the permission checks of ``Logic/FileCatalog``). The namespace:

- ``/dirac/bench/db/d00000 ..``: ``files`` files (1,000,000; ``--quick`` 20,000) registered by
  FileCatalogDB.addFiles in batches of 5,000, 1,000 files per directory, one replica each;
- ``/dirac/bench/db/big``: 10,000 files in one directory, for the listing;
- three directory metadata fields (``BenchRun`` int, ``BenchType`` string, ``BenchEnergy``
  float) on every directory, the query matching 1 directory in 100;
- ``/dirac/bench/dump/r000/s000 ..``: 250,000 files (``--quick`` 25,000) in 100 x 1,000 (``--quick``
  10 x 1,000) new directories, 100,100 directories in all, registered by FileCatalogDB.addFiles in
  batches of 5,000: the recursive dump's tree (issue 8: 250k files + 100k directories in <= 3 s),
  dumped through FileCatalogDB and through the service;
- ``/dirac/bench/svc/..``: ``serviceFiles`` files (100,000; ``--quick`` 10,000) registered
  through the service, 1,000 LFNs per ``addFile`` call, and listed and queried the same way as
  above.

getReplicas through FileCatalogDB asks for every registered LFN (1,000,000), 10,000 per call. Each
timed read is the median of REPEATS runs (DUMP_REPEATS for the dumps). Targets (issue 8):
registration >= 5,000 files/s, getReplicas >= 50,000 LFN/s, a 10,000-entry listing <= 50 ms, a
3-field query <= 200 ms, the dump <= 3 s.

On MariaDB the benchmark raises the server's ``innodb_buffer_pool_size`` to BUFFER_POOL (2 GiB,
``$DIRAC_BENCH_INNODB_BUFFER_POOL`` in bytes) for its run, as a catalog server is meant to run with a
pool that holds its tables (docs/catalog.md), and sets the old value back afterwards; its figures
say the pool size they ran with.

Last, the service reads the FileCatalogDB part of the namespace too (getReplicas of up to 100,000
of its LFNs, the 3-field query over it), and the server's resident memory is taken: the
``memory`` figure at 1,000,000 catalog files (1,120,000 with the big directories and the
service's files).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.common import Figure, Grid, _onServer, serverRSS

TARGET_REGISTER = 5_000
TARGET_REPLICAS = 50_000
TARGET_LIST_MS = 50
TARGET_QUERY_MS = 200
TARGET_DUMP_S = 3
PER_DIRECTORY = 1_000
BIG_DIRECTORY = 10_000
BATCH = 5_000
SERVICE_BATCH = 1_000
REPLICA_CALL = 10_000
REPEATS = 5
DUMP_REPEATS = 3
DUMP_ROOT = "/dirac/bench/dump"
SUBDIRS = 1_000  # second-level directories of the dump tree per first-level one
BUFFER_POOL = int(os.environ.get("DIRAC_BENCH_INNODB_BUFFER_POOL", 2 * 2**30))
SE = "ONEBOX-disk"
FIELDS = {"BenchRun": "int", "BenchType": "string", "BenchEnergy": "float"}


def _dirValues(index: int) -> dict[str, Any]:
    """The metadata of directory ``index``: the query below matches directories with index % 100 == 7."""
    return {"BenchRun": index % 100, "BenchType": "raw" if index % 2 else "reco", "BenchEnergy": 6.5 + index % 4}


QUERY = {"BenchRun": 7, "BenchType": "raw", "BenchEnergy": {">": 8.0}}  # index % 100 == 7 -> odd, 7 % 4 == 3


def _lfns(root: str, files: int) -> list[str]:
    return [f"{root}/d{i // PER_DIRECTORY:05d}/f{i % PER_DIRECTORY:04d}" for i in range(files)]


def _dumpLFNs(files: int, topDirectories: int) -> list[str]:
    """``files`` LFNs spread over topDirectories x SUBDIRS leaf directories (2-3 per directory at full size)."""
    leaves = topDirectories * SUBDIRS
    return [f"{DUMP_ROOT}/r{(i % leaves) // SUBDIRS:03d}/s{i % SUBDIRS:03d}/f{i // leaves}" for i in range(files)]


def _entry(lfn: str) -> dict[str, Any]:
    return {"Size": 1000 + len(lfn), "Checksum": "0badcafe", "ChecksumType": "Adler32", "GUID": str(uuid.uuid4()),
            "Status": "AprioriGood", "Replicas": [(SE, "", "AprioriGood")]}


def _median(call: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    """(median seconds, the last answer) of ``repeats`` calls."""
    times, answer = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        answer = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), answer


def _progress(done: int, total: int, what: str) -> None:
    print(f"\r    {done:,} / {total:,} {what}", end="" if done < total else "\n", flush=True)


def _register(db: Any, lfns: list[str], what: str) -> float:
    """Register ``lfns`` through FileCatalogDB.addFiles in batches of BATCH; files/s."""
    began = time.perf_counter()
    for start in range(0, len(lfns), BATCH):
        part = lfns[start:start + BATCH]
        _, failed = db.addFiles({lfn: _entry(lfn) for lfn in part}, "bench", "dirac_user", 0o644, 0o755)
        if failed:
            raise RuntimeError(f"registration failed: {next(iter(failed.items()))}")
        _progress(start + len(part), len(lfns), what)
    return len(lfns) / (time.perf_counter() - began)


def benchDB(grid: Grid, files: int, dumpFiles: int, dumpTop: int) -> list[Figure]:
    """The figures through FileCatalogDB in this process."""
    from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

    db = FileCatalogDB()
    root = "/dirac/bench/db"
    lfns = _lfns(root, files)
    big = [f"{root}/big/f{i:05d}" for i in range(BIG_DIRECTORY)]
    registerRate = _register(db, lfns, "files registered through FileCatalogDB")
    db.addFiles({lfn: _entry(lfn) for lfn in big}, "bench", "dirac_user", 0o644, 0o755)
    for name, typ in FIELDS.items():
        db.addMetadataField(name, typ, "D")
    directories = files // PER_DIRECTORY
    for index in range(directories):
        db.setDirectoryMetadata(f"{root}/d{index:05d}", _dirValues(index))

    dumpRegisterRate = _register(db, _dumpLFNs(dumpFiles, dumpTop), "files registered in new directories (the "
                                                                     "dump's tree)")

    began = time.perf_counter()
    for start in range(0, len(lfns), REPLICA_CALL):
        found, _ = db.getReplicas(lfns[start:start + REPLICA_CALL], False, ["AprioriGood"], ["AprioriGood"])
        assert len(found) == len(lfns[start:start + REPLICA_CALL])
    replicaRate = len(lfns) / (time.perf_counter() - began)
    listing, answer = _median(lambda: db.listDirectory(f"{root}/big", False))
    assert len(answer["Files"]) == BIG_DIRECTORY
    conditions = [("BenchRun", "=", 7), ("BenchType", "=", "raw"), ("BenchEnergy", ">", 8.0)]
    query, found = _median(lambda: db.findFiles(conditions, root))
    expected = sum(PER_DIRECTORY for index in range(directories) if index % 100 == 7)
    assert len(found) == expected, (len(found), expected)
    dump, answer = _median(lambda: db.getDirectoryDump(DUMP_ROOT), repeats=DUMP_REPEATS)
    assert len(answer["Files"]) == dumpFiles and len(answer["SubDirs"]) == dumpTop * (SUBDIRS + 1)
    return [
        Figure("filecatalog", f"FileCatalogDB.addFiles, {files:,} files in batches of {BATCH:,}", registerRate,
               "files/s", TARGET_REGISTER, backend=grid.backend),
        Figure("filecatalog", f"FileCatalogDB.addFiles, {dumpFiles:,} files into {dumpTop * (SUBDIRS + 1):,} new "
               f"directories", dumpRegisterRate, "files/s", backend=grid.backend),
        Figure("filecatalog", f"FileCatalogDB.getReplicas, {len(lfns):,} LFNs, {REPLICA_CALL:,} per call",
               replicaRate, "LFN/s", TARGET_REPLICAS, backend=grid.backend),
        Figure("filecatalog", f"FileCatalogDB.listDirectory, {BIG_DIRECTORY:,} entries", listing * 1000, "ms",
               TARGET_LIST_MS, better="lower", backend=grid.backend),
        Figure("filecatalog", f"FileCatalogDB.findFiles, 3 directory fields over {files:,} files "
               f"({expected:,} found)", query * 1000, "ms", TARGET_QUERY_MS, better="lower", backend=grid.backend),
        Figure("filecatalog", f"FileCatalogDB.getDirectoryDump, {dumpFiles:,} files in "
               f"{dumpTop * (SUBDIRS + 1):,} directories", dump, "s", TARGET_DUMP_S, better="lower",
               backend=grid.backend),
    ]


def _service(grid: Grid) -> Callable[..., Any]:
    """call(method, *args): the FileCatalog service's answer over HTTPS as the grid's user; raises on any failure."""
    from dirac.Core.Tornado.Client import RPCClient

    client = RPCClient(f"https://127.0.0.1:{grid.port}/DataManagement/FileCatalog")

    def call(method: str, *args: Any) -> Any:
        result = getattr(client, method)(*args)
        if not result["OK"]:
            raise RuntimeError(f"FileCatalog.{method}: {result['Message']}")
        value = result["Value"]
        if isinstance(value, dict) and value.get("Failed"):
            raise RuntimeError(f"FileCatalog.{method}: {next(iter(value['Failed'].items()))}")
        return value

    return call


def benchService(grid: Grid, files: int, dumpFiles: int, dumpTop: int) -> list[Figure]:
    """The figures through the FileCatalog service over HTTPS, as the grid's user."""
    call = _service(grid)
    root = "/dirac/bench/svc"
    lfns = _lfns(root, files)
    big = [f"{root}/big/f{i:05d}" for i in range(BIG_DIRECTORY)]

    def wire(lfn: str) -> dict[str, Any]:
        entry = _entry(lfn)
        return {"PFN": "", "SE": SE, "Size": entry["Size"], "Checksum": entry["Checksum"], "GUID": entry["GUID"]}

    began = time.perf_counter()
    for start in range(0, len(lfns), SERVICE_BATCH):
        call("addFile", {lfn: wire(lfn) for lfn in lfns[start:start + SERVICE_BATCH]})
        if (start // SERVICE_BATCH) % 10 == 9 or start + SERVICE_BATCH >= len(lfns):
            _progress(min(start + SERVICE_BATCH, len(lfns)), len(lfns), "files registered through the service")
    registerRate = len(lfns) / (time.perf_counter() - began)
    for start in range(0, len(big), SERVICE_BATCH):
        call("addFile", {lfn: wire(lfn) for lfn in big[start:start + SERVICE_BATCH]})
    for index in range(files // PER_DIRECTORY):
        call("setMetadata", f"{root}/d{index:05d}", _dirValues(index))

    began = time.perf_counter()
    for start in range(0, len(lfns), REPLICA_CALL):
        assert len(call("getReplicas", lfns[start:start + REPLICA_CALL])["Successful"]) == \
            len(lfns[start:start + REPLICA_CALL])
    replicaRate = len(lfns) / (time.perf_counter() - began)
    listing, answer = _median(lambda: call("listDirectory", f"{root}/big"))
    assert len(answer["Successful"][f"{root}/big"]["Files"]) == BIG_DIRECTORY
    query, found = _median(lambda: call("findFilesByMetadata", QUERY, root))
    expected = sum(PER_DIRECTORY for index in range(files // PER_DIRECTORY) if index % 100 == 7)
    assert len(found) == expected, (len(found), expected)
    dump, answer = _median(lambda: call("getDirectoryDump", DUMP_ROOT), repeats=DUMP_REPEATS)
    assert len(answer["Successful"][DUMP_ROOT]["Files"]) == dumpFiles
    return [
        Figure("filecatalog", f"service addFile, {files:,} files, {SERVICE_BATCH:,} per call", registerRate,
               "files/s", TARGET_REGISTER, backend=grid.backend),
        Figure("filecatalog", f"service getReplicas, {REPLICA_CALL:,} LFNs per call", replicaRate, "LFN/s",
               TARGET_REPLICAS, backend=grid.backend),
        Figure("filecatalog", f"service listDirectory, {BIG_DIRECTORY:,} entries", listing * 1000, "ms",
               TARGET_LIST_MS, better="lower", backend=grid.backend),
        Figure("filecatalog", f"service findFilesByMetadata, 3 directory fields ({expected:,} found)", query * 1000,
               "ms", TARGET_QUERY_MS, better="lower", backend=grid.backend),
        Figure("filecatalog", f"service getDirectoryDump, {dumpFiles:,} files in {dumpTop * (SUBDIRS + 1):,} "
               "directories", dump, "s", TARGET_DUMP_S, better="lower", backend=grid.backend),
    ]


def serverMemory(grid: Grid, files: int, serviceFiles: int) -> Figure:
    """The server's RSS once it has also read the FileCatalogDB part of the namespace."""
    call = _service(grid)
    root = "/dirac/bench/db"
    sample = _lfns(root, files)[:: max(1, files // 100_000)][:100_000]
    for start in range(0, len(sample), REPLICA_CALL):
        call("getReplicas", sample[start:start + REPLICA_CALL])
    call("findFilesByMetadata", QUERY, root)
    total = files + serviceFiles + 2 * BIG_DIRECTORY
    return Figure("memory", f"server RSS at {total:,} catalog files (after the filecatalog benchmark)",
                  serverRSS(grid), "MiB", better="lower", backend=grid.backend)


@contextlib.contextmanager
def bufferPool(grid: Grid) -> Iterator[str]:
    """On MariaDB: innodb_buffer_pool_size raised to BUFFER_POOL inside, the old value set back after; yields a
    note saying the size the figures ran with ('' on SQLite)."""
    if grid.backend == "sqlite":
        yield ""
        return
    sizes: list[int] = []
    _onServer(lambda conn: sizes.append(int(conn.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar())))
    old = sizes[0]
    try:
        if old < BUFFER_POOL:
            _onServer(lambda conn: conn.exec_driver_sql(f"SET GLOBAL innodb_buffer_pool_size = {BUFFER_POOL}"))
    except Exception as exc:  # no privilege: run with the server's pool and say so
        print(f"    innodb_buffer_pool_size stays {old / 2**20:,.0f} MiB: {exc}", flush=True)
    sizes.clear()
    _onServer(lambda conn: sizes.append(int(conn.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar())))
    print(f"    MariaDB innodb_buffer_pool_size {sizes[0] / 2**20:,.0f} MiB (was {old / 2**20:,.0f})", flush=True)
    try:
        yield f"InnoDB buffer pool {sizes[0] / 2**20:,.0f} MiB"
    finally:
        if sizes[0] != old:
            _onServer(lambda conn: conn.exec_driver_sql(f"SET GLOBAL innodb_buffer_pool_size = {old}"))


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    files, serviceFiles = (20_000, 10_000) if quick else (1_000_000, 100_000)
    dumpFiles, dumpTop = (25_000, 10) if quick else (250_000, 100)
    with bufferPool(grid) as note:
        figures = (benchDB(grid, files, dumpFiles, dumpTop) + benchService(grid, serviceFiles, dumpFiles, dumpTop)
                   + [serverMemory(grid, files, serviceFiles + dumpFiles)])
    for figure in figures:
        figure.note = note
    return figures
