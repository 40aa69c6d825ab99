"""Matcher: requestJob calls per second from concurrent pilots over many waiting jobs in many task queues.

The waiting jobs are written straight into the grid's JobDB and TaskQueueDB (as the optimizers
leave them: Waiting, one task queue per owner), so that preparing 100,000 jobs takes a minute,
not the submission time. Pilots are threads in separate processes, each calling
``WorkloadManagement/Matcher.requestJob`` over HTTPS with a pilot proxy (group ``dirac_pilot``)
until the jobs run out or the time is up. Every matched JobID is collected: a job matched twice,
or a Matched count in the database different from the number of answers, is reported.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any

from benchmarks.common import Figure, Grid

TARGET_REQUESTS_PER_SECOND = 300
PILOTS = 16
RESOURCE = {"Site": "DIRAC.OneBox.local", "GridCE": "onebox.local", "CPUTime": 86400, "NumberOfProcessors": 1,
            "Platform": "x86_64-el9", "Tag": []}
JDL = '[Executable = "/bin/true"; CPUTime = 1000]'


def fillTaskQueues(jobs: int, taskQueues: int, batch: int = 5000) -> None:
    """``jobs`` Waiting jobs spread over ``taskQueues`` owners (one task queue each)."""
    from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
    from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB

    jobDB, tqDB = JobDB(), TaskQueueDB()
    for start in range(0, jobs, batch):
        owners = [f"bench{(start + i) % taskQueues:05d}" for i in range(min(batch, jobs - start))]
        jobIDs = jobDB.insertNewJobs([{"attributes": {"Owner": owner, "OwnerGroup": "dirac_user", "VO": "dirac",
                                                      "JobType": "User", "Status": "Waiting",
                                                      "MinorStatus": "Pilot Agent Submission", "JobName": "bench"},
                                       "jdl": JDL} for owner in owners])
        tqDB.insertJobs([(jobID, {"Owner": owner, "OwnerGroup": "dirac_user", "VO": "dirac", "CPUTime": 1000,
                                  "JobType": "User"}, 0) for jobID, owner in zip(jobIDs, owners, strict=True)])
        print(f"\r    {start + len(owners):,} / {jobs:,} waiting jobs written", end="", flush=True)
    print(flush=True)


def _pilotProcess(url: str, proxy: str, threads: int, seconds: float, start: float, queue: Any) -> None:
    from dirac.Core.Tornado.Client import RPCClient

    matched: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    ends: list[float] = []
    lock = threading.Lock()

    def pilot() -> None:
        client = RPCClient(url, proxyLocation=proxy, useCertificates=False)
        client.ping()
        mine, times = [], []
        while time.time() < start:
            time.sleep(0.001)
        while time.time() < start + seconds:
            began = time.perf_counter()
            result = client.requestJob(RESOURCE)
            times.append(time.perf_counter() - began)
            if not result["OK"]:
                if "No match" not in result["Message"] and "no match" not in result["Message"].lower():
                    with lock:
                        errors.append(result["Message"])
                break
            mine.append(int(result["Value"]["JobID"]))
        with lock:
            matched.extend(mine)
            latencies.extend(times)
            ends.append(time.time())

    pool = [threading.Thread(target=pilot) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put((matched, latencies, errors[:3], max(ends)))


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


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    jobs, taskQueues, seconds = (5_000, 100, 10) if quick else (100_000, 1_000, 30)
    began = time.monotonic()
    fillTaskQueues(jobs, taskQueues)
    prepared = time.monotonic() - began
    url = f"https://127.0.0.1:{grid.port}/WorkloadManagement/Matcher"
    proxy = pilotProxy(grid)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = min(PILOTS, os.cpu_count() or 1)
    start = time.time() + 3
    spread = [PILOTS // processes + (i < PILOTS % processes) for i in range(processes)]
    workers = [context.Process(target=_pilotProcess, args=(url, proxy, n, seconds, start, queue)) for n in spread]
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
    elapsed = max(end - start, 1e-3)  # the window, or less when the jobs ran out
    duplicates = len(matched) - len(set(matched))
    inDB = matchedInDB()
    note = f"{duplicates} job(s) matched twice, {inDB} Matched in JobDB for {len(matched)} answers"
    if errors:
        note += f"; errors: {errors[0][:120]}"
    return [
        Figure("matcher", f"waiting jobs written ({jobs:,} in {taskQueues:,} task queues)", jobs / prepared, "jobs/s",
               backend=grid.backend),
        Figure("matcher", f"requestJob/s, {PILOTS} pilots over {jobs:,} waiting jobs", len(matched) / elapsed,
               "calls/s", TARGET_REQUESTS_PER_SECOND, backend=grid.backend, note=note),
        Figure("matcher", "requestJob p50 latency", sorted(latencies)[len(latencies) // 2] * 1000 if latencies else 0,
               "ms", better="lower", backend=grid.backend),
        Figure("matcher", "jobs matched more than once", duplicates, "jobs", 0, better="lower", backend=grid.backend),
    ]
