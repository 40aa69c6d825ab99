"""The work both sides do in the ``dirac`` benchmark: the same JDLs, waiting jobs, resource and files.

Standard library only: the drivers next to this file import it from our venv's Python and from
the DIRAC venv's Python alike (``python drivers/<side>_<workload>.py settings.json result.json``),
so that DIRAC's classes and ours are given literally the same input. Each driver times its own
work and writes ``{"figures": {...}, "notes": [...], "maxRSSMiB": ...}`` as JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

OWNER, GROUP, VO = "bench", "dirac_user", "dirac"
OWNER_DN = "/O=DIRAC-Bench/CN=bench"
SITES = ["DIRAC.OneBox.local", "DIRAC.SiteA.org", "DIRAC.SiteB.org", "DIRAC.SiteC.org"]
SE = "ONEBOX-disk"
#: the pilot's resource description (also the matcher benchmark's): DIRAC's JobAgent sends this shape
RESOURCE = {"Site": "DIRAC.OneBox.local", "GridCE": "onebox.local", "CPUTime": 86400, "NumberOfProcessors": 1,
            "Platform": "x86_64-el9", "Tag": []}
PER_DIRECTORY = 1_000


# -- (a) job descriptions --------------------------------------------------------------------------
def jobDescriptions(count: int) -> list[str]:
    """``count`` different, valid single-job JDLs of the kinds users submit."""
    jdls = []
    for i in range(count):
        attributes = [
            f'Executable = "{("/bin/echo", "my_app.sh", "python3")[i % 3]}"',
            f'Arguments = "run {i} --seed {i * 7 % 1000}"',
            f'JobName = "bench_{i:05d}"',
            f'JobGroup = "group{i % 20}"',
            f"CPUTime = {(3600, 86400, 7200, 1000)[i % 4]}",
            f"Priority = {i % 10}",
            'StdOutput = "std.out"',
            'StdError = "std.err"',
            f'OutputSandbox = {{"std.out", "std.err", "result_{i}.txt"}}',
            f'LogLevel = "{("INFO", "DEBUG", "WARN")[i % 3]}"',
            f'JobType = "{"Test" if i % 8 == 0 else "User"}"',
        ]
        if i % 2:
            attributes.append(f'InputSandbox = {{"LFN:/{VO}/user/b/bench/in_{i % 100}.tar.gz", "local_{i % 7}.cfg"}}')
        if i % 5 == 0:
            attributes.append(f'InputData = {{"/{VO}/bench/data/f{i:05d}.dat", "/{VO}/bench/data/f{i + 1:05d}.dat"}}')
        if i % 4 == 0:
            attributes.append(f'Site = "{SITES[0]}"')
        elif i % 4 == 1:
            attributes.append(f'Site = {{"{SITES[1]}", "{SITES[2]}"}}')
        if i % 5 == 2:
            attributes.append(f'BannedSites = {{"{SITES[3]}"}}')
        if i % 6 == 0:
            attributes.append('Tags = {"GPU"}')
        if i % 10 == 3:
            attributes.append("NumberOfProcessors = 4")
        jdls.append("[\n  " + ";\n  ".join(attributes) + "\n]")
    return jdls


def submitAll(submit: Callable[[int, str], Any]) -> None:
    """Time ``submit(jobID, jdl)`` over the settings' number of descriptions (after one warm-up) and report."""
    jdls = jobDescriptions(settings()["jobs"])
    submit(0, jdls[0])  # imports and caches warm, as in a running service
    rejected = []
    began = time.perf_counter()
    for jobID, jdl in enumerate(jdls, start=1):
        try:
            submit(jobID, jdl)
        except Exception as exc:  # counted and reported: both sides must accept every description
            rejected.append(f"job {jobID}: {type(exc).__name__}: {str(exc)[:300]}")
    elapsed = time.perf_counter() - began
    report({"jobsPerSecond": len(jdls) / elapsed, "accepted": len(jdls) - len(rejected)}, rejected[:3])


# -- (b) waiting jobs in task queues -----------------------------------------------------------------
#: requirement sets each owner's jobs come in: 5 CPU times (a different CPU-time segment in both
#: TaskQueueDBs) x anywhere or at the pilot's site; all of them fit the pilot of RESOURCE
REQUIREMENT_SETS = [(cpuTime, sites) for cpuTime in (300, 1000, 3000, 20000, 40000)
                    for sites in ([], [RESOURCE["Site"]])]


def waitingJobs(count: int, taskQueues: int) -> list[tuple[int, str, int, list[str]]]:
    """(JobID, owner, CPUTime, Sites) of ``count`` waiting jobs spread round-robin over ``taskQueues`` queues.

    The queues are ``taskQueues // 10`` owners (one group) x REQUIREMENT_SETS, not one owner each:
    at each new owner DIRAC's insertJob re-prioritises every owner's queues of the group, which
    with 1,000 owners alone takes longer than the whole benchmark (docs/performance.md).
    """
    owners = max(1, taskQueues // len(REQUIREMENT_SETS))
    jobs = []
    for jobID in range(1, count + 1):
        queue = (jobID - 1) % (owners * len(REQUIREMENT_SETS))
        cpuTime, sites = REQUIREMENT_SETS[queue // owners]
        jobs.append((jobID, f"bench{queue % owners:05d}", cpuTime, sites))
    return jobs


# -- (c) catalog files ------------------------------------------------------------------------------
def lfns(root: str, count: int) -> list[str]:
    return [f"{root}/d{i // PER_DIRECTORY:05d}/f{i % PER_DIRECTORY:04d}" for i in range(count)]


def fileEntry(lfn: str) -> dict[str, Any]:
    """What both catalogs are told about a file (the GUID derives from the LFN: the same on both sides)."""
    return {"Size": 1000 + len(lfn), "Checksum": "0badcafe", "ChecksumType": "Adler32",
            "GUID": str(uuid.uuid5(uuid.NAMESPACE_URL, lfn)), "SE": SE}


# -- running and reporting ----------------------------------------------------------------------------
def concurrentCalls(callers: int, seconds: float, newCaller: Callable[[], Callable[[], int | None]],
                    start: float | None = None, stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """``callers`` threads, each calling its ``newCaller()`` (a JobID, or None when nothing is left) for ``seconds``.

    The window opens at ``start`` (``time.time()``, shared by several processes) or at once, and
    a caller also stops when ``stop()`` says so or at its first error. Returns every JobID got,
    the sorted latencies, their median, the errors, the end (``time.time()``) and the elapsed
    time (shorter than ``seconds`` when the jobs ran out for every caller).
    """
    got: list[int] = []
    latencies: list[float] = []
    errors: list[str] = []
    ends: list[float] = []
    lock = threading.Lock()
    start = time.time() if start is None else start

    def caller() -> None:
        mine, times = [], []
        try:
            call = newCaller()
            while time.time() < start:
                time.sleep(0.001)
            while time.time() < start + seconds and not stop():
                began = time.perf_counter()
                jobID = call()
                times.append(time.perf_counter() - began)
                if jobID is None:
                    break
                mine.append(jobID)
        except Exception as exc:  # reported in the results: the benchmark must say what failed
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            got.extend(mine)
            latencies.extend(times)
            ends.append(time.time())

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {"jobIDs": got, "latencies": latencies, "end": max(ends), "elapsed": max(ends) - start,
            "errors": errors[:3], "p50ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0}


def matchFigures(result: dict[str, Any], inserted: int, remaining: int) -> dict[str, Any]:
    """The figures of a concurrent match run, with the exactly-once checks."""
    jobIDs = result["jobIDs"]
    return {"matchPerSecond": len(jobIDs) / max(result["elapsed"], 1e-3), "matchP50ms": result["p50ms"],
            "matched": len(jobIDs), "matchedTwice": len(jobIDs) - len(set(jobIDs)),
            "lostOrExtra": inserted - remaining - len(set(jobIDs)), "errors": result["errors"]}


def initialiseDIRAC() -> None:
    """DIRAC's configuration from the local dirac.cfg ($DIRACSYSCONFIG) only, no CS server; its log quiet."""
    import DIRAC

    DIRAC.initialize(require_auth=False)
    DIRAC.gLogger.setLevel("ERROR")


def settings() -> dict[str, Any]:
    """The driver's settings (argv[1], JSON)."""
    return json.loads(Path(sys.argv[1]).read_text())


def report(figures: dict[str, Any], notes: list[str] | None = None) -> None:
    """Write the driver's results (argv[2], JSON) with its peak resident memory."""
    maxRSS = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(sys.argv[2]).write_text(json.dumps({"figures": figures, "notes": notes or [], "maxRSSMiB": maxRSS}))


def progress(done: int, total: int, what: str) -> None:
    print(f"\r    {done:,} / {total:,} {what}", end="" if done < total else "\n", file=sys.stderr, flush=True)
