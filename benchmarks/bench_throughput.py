"""Job throughput end to end on the one-box site: trivial jobs through the optimizers, the SiteDirector, real
pilots (local processes), the JobAgent and a JobWrapper each, to Done.

Measured:

- the sustained rate: jobs that reached Done between the moments 10 % and 90 % of them were Done,
  per second (the target); and the whole run, from the submission to the last Done (start-up of
  the first pilots included);
- CPU seconds per job of the server process, of the agents (Optimizers, SiteDirector), and of the
  worker-node side: every pilot with its JobAgent, JobWrappers and payloads. The pilots are
  children of the SiteDirector, so once they have ended and it has collected them their whole
  trees are in its children's CPU times; the benchmark waits for that before reading them;
- the whole machine's CPU per job, for context: on a shared machine it includes other work.
"""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from benchmarks.common import BIN, Figure, Grid

TARGET_JOBS_PER_SECOND = 10.0
AGENT = "/Systems/WorkloadManagement/Agents"
QUEUE = "/Resources/Sites/DIRAC/DIRAC.OneBox.local/CEs/onebox.local/Queues/default"
SLOTS = 8  # pilots at once on the one-box CE (its default is one per core)
#: seconds a pilot's JobAgent waits between two requests that found nothing, and rounds before it stops
JOBAGENT_POLLING, JOBAGENT_ROUNDS = 0.2, 5


def _ownCPU(process: psutil.Process, children: bool = False) -> float:
    """CPU seconds of the process, or (``children``) of the children and descendants it has collected."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.children_user + times.children_system if children else times.user + times.system


def _machineCPU() -> float:
    times = psutil.cpu_times()
    return times.user + times.system


def sustainedRate(doneAt: list[tuple[float, int]], jobs: int, low: float = 0.1, high: float = 0.9) -> float:
    """Jobs per second between the first moments ``low`` and ``high`` of ``jobs`` were Done ((time, done) samples)."""
    start = next(((t, n) for t, n in doneAt if n >= low * jobs), None)
    end = next(((t, n) for t, n in doneAt if n >= high * jobs), None)
    if start is None or end is None or end[0] <= start[0]:
        return 0.0
    return (end[1] - start[1]) / (end[0] - start[0])


def _waitForPilots(director: psutil.Process, timeout: float) -> int:
    """Wait until the SiteDirector has collected every pilot (so their CPU is accounted); how many are left."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            left = len(director.children())
        except psutil.NoSuchProcess:
            return 0
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _uploadAdministratorProxy(grid: Grid) -> None:
    """Pilots run jobs with their owner's proxy: on MariaDB (configured after ``init``, which stores the
    administrator's proxy in the SQLite ProxyDB only) it is uploaded with dirac-proxy-init, as an administrator would."""
    instance = grid.instance / "user"
    done = subprocess.run([str(BIN / "dirac-proxy-init"), "-C", str(instance / "usercert.pem"), "-K",
                           str(instance / "userkey.pem"), "-g", "dirac_user"], capture_output=True, text=True,
                          env={**os.environ, "X509_USER_PROXY": str(grid.root / "uploaded-proxy.pem")}, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"dirac-proxy-init failed: {done.stdout}{done.stderr}")


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient, JobMonitoringClient

    jobs = 40 if quick else 400
    monitor = JobMonitoringClient()
    others = monitor.getCounters(["Status"], {"Status": "Waiting"})
    waitingBefore = sum(count for _, count in others["Value"]) if others["OK"] else 0
    if grid.backend != "sqlite":
        _uploadAdministratorProxy(grid)
    server = psutil.Process(int((grid.instance / "run" / "server.pid").read_text()))
    grid.startAgent("WorkloadManagement/Optimizers", "-o", f"{AGENT}/Optimizers/PollingTime=0.5")
    grid.startAgent("WorkloadManagement/SiteDirector", "-o", f"{AGENT}/SiteDirector/PollingTime=1",
                    "-o", f"{QUEUE}/MaxTotalJobs={SLOTS}", "-o", f"{QUEUE}/MaxWaitingJobs={SLOTS}",
                    "-o", f"{AGENT}/JobAgent/PollingTime={JOBAGENT_POLLING}",
                    "-o", f"{AGENT}/JobAgent/StopAfterFailedMatches={JOBAGENT_ROUNDS}")
    agents = [psutil.Process(agent.pid) for agent in grid.agents]
    director = agents[1]
    serverBefore, agentsBefore = _ownCPU(server), sum(map(_ownCPU, agents))
    workersBefore, machineBefore = _ownCPU(director, children=True), _machineCPU()
    began = time.monotonic()
    jdl = (f'[Executable = "/bin/true"; Parameters = {jobs}; ParameterStart = 0; ParameterStep = 1; '
           f'Arguments = "%s"; CPUTime = 100; JobName = "throughput"]')
    result = JobManagerClient().submitJob(jdl)
    assert result["OK"], result["Message"]
    jobIDs = result["Value"]
    done = failed = 0
    doneAt: list[tuple[float, int]] = []
    deadline = began + (300 if quick else 1800)
    while time.monotonic() < deadline:
        counts = monitor.getCounters(["Status"], {"JobID": jobIDs})
        assert counts["OK"], counts["Message"]
        byStatus = {attrs["Status"]: count for attrs, count in counts["Value"]}
        done, failed = byStatus.get("Done", 0), byStatus.get("Failed", 0)
        doneAt.append((time.monotonic(), done))
        print(f"\r    {done}/{jobs} Done, {failed} Failed", end="", flush=True)
        if done + failed >= jobs:
            break
        time.sleep(0.25)
    print(flush=True)
    elapsed = time.monotonic() - began
    serverCPU = _ownCPU(server) - serverBefore
    # the pilots stop after JOBAGENT_ROUNDS empty rounds; the director collects them at its next cycles
    left = _waitForPilots(director, 60)
    agentsCPU = sum(map(_ownCPU, agents)) - agentsBefore
    workersCPU = _ownCPU(director, children=True) - workersBefore
    machineCPU = _machineCPU() - machineBefore
    grid.stopAgents()
    perJob = 1000 / max(done, 1)
    note = f"{done} Done, {failed} Failed of {jobs} in {elapsed:.0f} s" + (
        f"; {waitingBefore} other jobs were Waiting: pilots ran them too" if waitingBefore else "")
    return [
        Figure("throughput", f"sustained jobs finished per second ({jobs} trivial jobs, real pilots, 10-90 %)",
               sustainedRate(doneAt, jobs), "jobs/s", TARGET_JOBS_PER_SECOND, backend=grid.backend, note=note),
        Figure("throughput", "jobs per second from submission to the last Done", done / elapsed, "jobs/s",
               backend=grid.backend),
        Figure("throughput", "server process CPU per job", serverCPU * perJob, "ms/job", better="lower",
               backend=grid.backend),
        Figure("throughput", "agents' CPU per job (Optimizers, SiteDirector)", agentsCPU * perJob, "ms/job",
               better="lower", backend=grid.backend),
        Figure("throughput", "worker-node CPU per job (pilots, JobAgents, JobWrappers, payloads)", workersCPU * perJob,
               "ms/job", better="lower", backend=grid.backend,
               note=f"{left} pilot(s) not ended or not collected, not counted" if left else ""),
        Figure("throughput", "whole machine's CPU per job (shared machine: includes other work)",
               machineCPU * perJob, "ms/job", better="lower", backend=grid.backend),
    ]
