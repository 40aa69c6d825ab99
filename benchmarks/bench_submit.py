"""Submission: 10,000 parametric jobs in one call, a cold dirac-wms-job-submit, jobs through a warm API session.

The optimizers run as their own agent process (``dirac-agent WorkloadManagement/Optimizers``),
as in a multi-process deployment; "in task queues" means every job Waiting.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from benchmarks.common import BIN, Figure, Grid, Stopwatch

PARAMETRIC_JOBS = 10_000
TARGET_PARAMETRIC_SECONDS = 15.0
TARGET_COLD_SUBMIT_SECONDS = 1.5
TARGET_WARM_MS_PER_JOB = 20.0
JOB_MANAGER = "/Systems/WorkloadManagement/Services/JobManager"


def _waitingCount() -> int:
    from dirac.WorkloadManagementSystem.Client.WMSClients import JobMonitoringClient

    result = JobMonitoringClient().getCounters(["Status"], {"Status": "Waiting"})
    assert result["OK"], result["Message"]
    return sum(count for _, count in result["Value"])


def parametric(grid: Grid, jobs: int) -> list[Figure]:
    from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient

    jdl = (f'[Executable = "/bin/echo"; Arguments = "%s"; Parameters = {jobs}; ParameterStart = 0; '
           f'ParameterStep = 1; CPUTime = 1000; JobName = "bench"]')
    already = _waitingCount()
    with Stopwatch() as accepted:
        result = JobManagerClient(timeout=600).submitJob(jdl)
    assert result["OK"], result["Message"]
    with Stopwatch() as queued:
        grid.startAgent("WorkloadManagement/Optimizers", "-o", "/Systems/WorkloadManagement/Agents/Optimizers/"
                        "PollingTime=0.5")
        while _waitingCount() < already + jobs:
            time.sleep(0.2)
    grid.stopAgents()
    total = accepted.seconds + queued.seconds
    return [Figure("submission", f"{jobs} parametric jobs accepted (one call)", accepted.seconds, "s",
                   better="lower", backend=grid.backend),
            Figure("submission", f"{jobs} parametric jobs accepted and in task queues", total, "s",
                   TARGET_PARAMETRIC_SECONDS, better="lower", backend=grid.backend)]


def coldCommand(grid: Grid, runs: int) -> list[Figure]:
    jdlFile = grid.root / "hello.jdl"
    jdlFile.write_text('[Executable = "/bin/echo"; Arguments = "cold"; CPUTime = 100]')
    env = {**grid.env, "DIRACSYSCONFIG": str(grid.instance / "etc" / "dirac.cfg"),
           "X509_USER_PROXY": str(grid.instance / "user" / "proxy.pem"),
           "X509_CERT_DIR": str(grid.instance / "etc" / "grid-security" / "certificates")}
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([str(BIN / "dirac-wms-job-submit"), str(jdlFile)], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return [Figure("submission", f"dirac-wms-job-submit from a cold process (median of {runs})",
                   statistics.median(times), "s", TARGET_COLD_SUBMIT_SECONDS, better="lower", backend=grid.backend,
                   note="DIRAC: ~8 s, 4-5 s of it imports")]


def warmAPI(grid: Grid, jobs: int) -> list[Figure]:
    from dirac.Interfaces.API.Dirac import Dirac
    from dirac.Interfaces.API.Job import Job

    dirac = Dirac()
    job = Job()
    job.setExecutable("/bin/echo warm")
    job.setCPUTime(100)
    assert dirac.submitJob(job)["OK"]  # connection and configuration ready
    with Stopwatch() as watch:
        for _ in range(jobs):
            result = dirac.submitJob(job)
            assert result["OK"], result["Message"]
    return [Figure("submission", f"Dirac().submitJob, warm session ({jobs} jobs)", watch.seconds / jobs * 1000,
                   "ms/job", TARGET_WARM_MS_PER_JOB, better="lower", backend=grid.backend)]


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    return (parametric(grid, 1000 if quick else PARAMETRIC_JOBS) + coldCommand(grid, 3 if quick else 7)
            + warmAPI(grid, 20 if quick else 100))
