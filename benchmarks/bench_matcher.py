"""Matcher: requestJob calls per second from concurrent pilots over many waiting jobs in many task queues.

The waiting jobs are written straight into the grid's JobDB and TaskQueueDB (as the optimizers
leave them: Waiting, one task queue per owner), so that preparing 100,000 jobs takes a minute,
not the submission time. Pilots are threads in separate processes, each calling
``WorkloadManagement/Matcher.requestJob`` over HTTPS with a pilot proxy (group ``dirac_pilot``)
until the jobs run out or the time is up. Every matched JobID is collected: a job matched twice,
or a Matched count in the database different from the number of answers, is reported. The
server's resident memory is taken right after, with 100,000 jobs waiting (``memory`` figure).

``matcher-scaling`` (MariaDB only) repeats the measure at several numbers of waiting jobs
(``--sizes``, default 1k,10k,100k; 1M on request: filling it takes minutes), each in a fresh
grid of its own so that every size starts from empty tables, in 1,000 task queues (100 for 1k),
with MariaDB's InnoDB buffer pool raised as for the File Catalog (bench_filecatalog.bufferPool).
At each size the pilots stop after 30 s or after matching half the waiting jobs, whichever
comes first, so that the number waiting stays near the size; on MariaDB the window opens once
the pages the fill left dirty are written out (at most SETTLE_SECONDS). It prints rate, p50, p99,
the wait, the InnoDB reads that missed the buffer pool during the window and the server's RSS,
and plots the rate against the waiting jobs (docs/img/matcher-scaling.png).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_filecatalog import bufferPool
from benchmarks.common import Figure, Grid, _onServer, percentile, runningGrid, serverRSS
from benchmarks.drivers.workloads import RESOURCE, concurrentCalls

TARGET_REQUESTS_PER_SECOND = 300
PILOTS = 16
JDL = '[Executable = "/bin/true"; CPUTime = 1000]'
SCALING_SIZES = (1_000, 10_000, 100_000)
SETTLE_SECONDS = 180
SETTLED_PAGES = 5_000  # dirty InnoDB pages (16 KiB each, server-wide) left when the window opens
PLOT = Path(__file__).parent.parent / "docs" / "img" / "matcher-scaling.png"


def waitingJobRecords(owners: list[str]) -> list[dict[str, Any]]:
    """JobDB.insertNewJobs records of Waiting jobs, one per owner given."""
    return [{"attributes": {"Owner": owner, "OwnerGroup": "dirac_user", "VO": "dirac", "JobType": "User",
                            "Status": "Waiting", "MinorStatus": "Pilot Agent Submission", "JobName": "bench"},
             "jdl": JDL} for owner in owners]


def fillTaskQueues(jobs: int, taskQueues: int, batch: int = 5000) -> None:
    """``jobs`` Waiting jobs spread over ``taskQueues`` owners (one task queue each)."""
    from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
    from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB

    jobDB, tqDB = JobDB(), TaskQueueDB()
    for start in range(0, jobs, batch):
        owners = [f"bench{(start + i) % taskQueues:05d}" for i in range(min(batch, jobs - start))]
        jobIDs = jobDB.insertNewJobs(waitingJobRecords(owners))
        tqDB.insertJobs([(jobID, {"Owner": owner, "OwnerGroup": "dirac_user", "VO": "dirac", "CPUTime": 1000,
                                  "JobType": "User"}, 0) for jobID, owner in zip(jobIDs, owners, strict=True)])
        print(f"\r    {start + len(owners):,} / {jobs:,} waiting jobs written", end="", flush=True)
    print(flush=True)


def _pilotProcess(url: str, proxy: str, threads: int, seconds: float, start: float, queue: Any,
                  counter: Any, limit: int) -> None:
    """``threads`` pilots calling requestJob until ``seconds`` pass, the jobs run out, or ``limit`` are matched."""
    from dirac.Core.Tornado.Client import RPCClient

    def newPilot() -> Callable[[], int | None]:
        client = RPCClient(url, proxyLocation=proxy, useCertificates=False)
        client.ping()

        def requestJob() -> int | None:
            result = client.requestJob(RESOURCE)
            if not result["OK"]:
                if "no match" in result["Message"].lower():
                    return None
                raise RuntimeError(result["Message"])
            with counter.get_lock():
                counter.value += 1
            return int(result["Value"]["JobID"])

        return requestJob

    done = concurrentCalls(threads, seconds, newPilot, start=start, stop=lambda: counter.value >= limit)
    queue.put((done["jobIDs"], done["latencies"], done["errors"], done["end"]))


def pilotProxy(grid: Grid) -> str:
    from dirac.Core.Security.X509 import X509Chain

    credentials = grid.instance / "etc" / "grid-security"
    chain = X509Chain.fromPEM((credentials / "pilotcert.pem").read_bytes() + (credentials / "pilotkey.pem").read_bytes())
    path = grid.root / "pilot-proxy.pem"
    chain.generateProxy(4 * 3600, group="dirac_pilot").dumpToFile(str(path))
    return str(path)


def matchedInDB() -> int:
    from dirac.WorkloadManagementSystem.DB.JobDB import JobDB

    return JobDB().countJobs({"Status": "Matched", "JobName": "bench"})


def measure(grid: Grid, jobs: int, taskQueues: int, seconds: float, limit: int | None = None) -> dict[str, Any]:
    """Fill ``jobs`` waiting jobs, let PILOTS pilots match for ``seconds`` (or ``limit`` jobs): what happened."""
    began = time.monotonic()
    fillTaskQueues(jobs, taskQueues)
    prepared = time.monotonic() - began
    url = f"https://127.0.0.1:{grid.port}/WorkloadManagement/Matcher"
    proxy = pilotProxy(grid)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    counter = context.Value("l", 0)
    processes = min(PILOTS, os.cpu_count() or 1)
    spread = [PILOTS // processes + (i < PILOTS % processes) for i in range(processes)]
    settled = _settle(grid)
    dirtyPages = _innodbStatus(grid, "Innodb_buffer_pool_pages_dirty")
    diskReads = _innodbStatus(grid, "Innodb_buffer_pool_reads")
    start = time.time() + 3  # the pilot processes start and connect meanwhile
    workers = [context.Process(target=_pilotProcess, args=(url, proxy, n, seconds, start, queue, counter,
                                                           limit or jobs + 1)) for n in spread]
    for worker in workers:
        worker.start()
    matched: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    end = start
    for _ in workers:
        mine, times, failed, stopped = queue.get()
        matched += mine
        latencies += times
        errors += failed
        end = max(end, stopped)
    for worker in workers:
        worker.join()
    elapsed = max(end - start, 1e-3)  # the window, or less when the jobs ran out or the limit was reached
    latencies.sort()
    diskReads = _innodbStatus(grid, "Innodb_buffer_pool_reads") - diskReads
    return {"fillRate": jobs / prepared, "rate": len(matched) / elapsed, "matched": len(matched),
            "p50ms": percentile(latencies, 0.5) * 1000, "p99ms": percentile(latencies, 0.99) * 1000,
            "diskReads": diskReads, "settleSeconds": settled, "dirtyPages": dirtyPages,
            "duplicates": len(matched) - len(set(matched)), "inDB": matchedInDB(), "errors": errors,
            "rssMiB": serverRSS(grid)}


def _innodbStatus(grid: Grid, name: str) -> int:
    """A counter of MariaDB's SHOW GLOBAL STATUS (server-wide), 0 on SQLite."""
    if grid.backend == "sqlite":
        return 0
    values: list[int] = []
    _onServer(lambda conn: values.append(int(conn.exec_driver_sql("SHOW GLOBAL STATUS LIKE %s", (name,)).one()[1])))
    return values[0]


def _settle(grid: Grid, seconds: float = SETTLE_SECONDS) -> float:
    """Wait (at most ``seconds``) for MariaDB to write out the pages the fill left dirty; the time waited.

    A million jobs written just before the window leave about a gigabyte to flush, and commits
    stall behind it; waiting jobs accumulate over hours in a real installation.
    """
    began = time.monotonic()
    while time.monotonic() - began < seconds and _innodbStatus(grid, "Innodb_buffer_pool_pages_dirty") > SETTLED_PAGES:
        time.sleep(1)
    return time.monotonic() - began


def _note(result: dict[str, Any]) -> str:
    note = (f"{result['duplicates']} job(s) matched twice, {result['inDB']} Matched in JobDB for "
            f"{result['matched']} answers")
    return note + (f"; errors: {result['errors'][0][:120]}" if result["errors"] else "")


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    jobs, taskQueues, seconds = (5_000, 100, 10) if quick else (100_000, 1_000, 30)
    result = measure(grid, jobs, taskQueues, seconds)
    return [
        Figure("matcher", f"waiting jobs written ({jobs:,} in {taskQueues:,} task queues)", result["fillRate"],
               "jobs/s", backend=grid.backend),
        Figure("matcher", f"requestJob/s, {PILOTS} pilots over {jobs:,} waiting jobs", result["rate"], "calls/s",
               TARGET_REQUESTS_PER_SECOND, backend=grid.backend, note=_note(result)),
        Figure("matcher", "requestJob p50 latency", result["p50ms"], "ms", better="lower", backend=grid.backend),
        Figure("matcher", "jobs matched more than once", result["duplicates"], "jobs", 0, better="lower",
               backend=grid.backend),
        Figure("memory", f"server RSS at {jobs:,} waiting jobs (after the matcher)", result["rssMiB"], "MiB",
               better="lower", backend=grid.backend),
    ]


def parseSizes(text: str) -> list[int]:
    """'1k,10k,100k,1M' -> [1000, 10000, 100000, 1000000]."""
    sizes = []
    for item in (part.strip().lower() for part in text.split(",") if part.strip()):
        factor = {"k": 1_000, "m": 1_000_000}.get(item[-1], 1)
        try:
            sizes.append(int(float(item.rstrip("km")) * factor))
        except ValueError:
            raise ValueError(f"not a number of waiting jobs: {item!r} (use e.g. 1k,10k,100k,1M)") from None
    if not sizes or min(sizes) < 100:
        raise ValueError(f"sizes must be at least 100 waiting jobs: {text!r}")
    return sorted(sizes)


def runScaling(grid: Grid, quick: bool = False, sizes: list[int] | None = None) -> list[Figure]:
    """The matcher at several numbers of waiting jobs, each in a fresh grid; a table and a plot."""
    if grid.backend != "mysql":
        print("    skipped: the scaling is measured on MariaDB (use --backend mysql)", file=sys.stderr)
        return []
    sizes = sizes or ([1_000, 10_000] if quick else list(SCALING_SIZES))
    seconds = 10 if quick else 30
    rows = []
    with bufferPool(grid) as pool:  # sized as for the File Catalog: a central server's tables in memory
        for size in sizes:
            taskQueues = min(1_000, size // 10)
            print(f"    {size:,} waiting jobs in {taskQueues:,} task queues, fresh grid ...", file=sys.stderr,
                  flush=True)
            with runningGrid(grid.root.parent, grid.backend) as fresh:
                rows.append((size, taskQueues, measure(fresh, size, taskQueues, seconds, limit=size // 2)))
    print(f"Matcher over waiting jobs, {PILOTS} pilots, MariaDB ({pool})")
    print(scalingTable(rows))
    plot = PLOT if not quick else Path(__file__).parent / "matcher-scaling-quick.png"  # git-ignored
    plotScaling(rows, plot, pool)
    print(f"    plot written to {plot}", file=sys.stderr)
    figures = []
    for size, taskQueues, result in rows:
        label = f"{size:,} waiting jobs in {taskQueues:,} task queues"
        figures += [
            Figure("matcher-scaling", f"requestJob/s, {label}", result["rate"], "calls/s",
                   TARGET_REQUESTS_PER_SECOND, backend=grid.backend, note=f"{_note(result)}; {pool}"),
            Figure("matcher-scaling", f"requestJob p50, {label}", result["p50ms"], "ms", better="lower",
                   backend=grid.backend),
            Figure("matcher-scaling", f"requestJob p99, {label}", result["p99ms"], "ms", better="lower",
                   backend=grid.backend, note=f"{result['diskReads']:,} InnoDB buffer-pool misses (server-wide)"),
            Figure("memory", f"server RSS at {size:,} waiting jobs (after the matcher)", result["rssMiB"], "MiB",
                   better="lower", backend=grid.backend),
        ]
    return figures


def scalingTable(rows: list[tuple[int, int, dict[str, Any]]]) -> str:
    lines = [f"{'waiting jobs':>12}  {'task queues':>11}  {'requestJob/s':>12}  {'p50 ms':>7}  {'p99 ms':>7}  "
             f"{'matched':>8}  {'twice':>5}  {'settle s':>8}  {'dirty pages':>11}  {'disk reads':>10}  "
             f"{'server RSS MiB':>14}"]
    for size, taskQueues, result in rows:
        lines.append(f"{size:>12,}  {taskQueues:>11,}  {result['rate']:>12.1f}  {result['p50ms']:>7.1f}  "
                     f"{result['p99ms']:>7.1f}  {result['matched']:>8,}  {result['duplicates']:>5}  "
                     f"{result['settleSeconds']:>8.0f}  {result['dirtyPages']:>11,}  {result['diskReads']:>10,}  "
                     f"{result['rssMiB']:>14.0f}")
    return "\n".join(lines)


def plotScaling(rows: list[tuple[int, int, dict[str, Any]]], path: Path, pool: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [size for size, _, _ in rows]
    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=110)
    axes.plot(sizes, [result["rate"] for _, _, result in rows], "o-", label="requestJob/s (16 pilots, HTTPS)")
    axes.axhline(TARGET_REQUESTS_PER_SECOND, color="grey", linestyle="--", label=f"target {TARGET_REQUESTS_PER_SECOND}/s")
    axes.set_xscale("log")
    axes.set_xlabel(f"waiting jobs (MariaDB, {pool})")
    axes.set_ylabel("requestJob per second")
    axes.set_ylim(bottom=0)
    axes.set_title("Matcher rate against waiting jobs")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
