"""Job throughput end to end on the one-box site: trivial jobs through the optimizers, the SiteDirector, real
pilots (local processes), the JobAgent and a JobWrapper each, to Done.

Measured: jobs finished per second from submission to the last Done, the CPU seconds the server
process and the agents spent per job, and the rest of the machine's CPU per job (pilots,
JobAgents, JobWrappers, the database; on a real grid mostly spent on worker nodes).
"""

from __future__ import annotations

import time

import psutil

from benchmarks.common import Figure, Grid

TARGET_JOBS_PER_SECOND = 10.0
AGENT = "/Systems/WorkloadManagement/Agents"
QUEUE = "/Resources/Sites/DIRAC/DIRAC.OneBox.local/CEs/onebox.local/Queues/default"
SLOTS = 8  # pilots at once on the one-box CE (its default is one per core)


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _machineCPU() -> float:
    times = psutil.cpu_times()
    return times.user + times.system


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient, JobMonitoringClient

    jobs = 40 if quick else 400
    server = psutil.Process(int((grid.instance / "run" / "server.pid").read_text()))
    grid.startAgent("WorkloadManagement/Optimizers", "-o", f"{AGENT}/Optimizers/PollingTime=0.5")
    grid.startAgent("WorkloadManagement/SiteDirector", "-o", f"{AGENT}/SiteDirector/PollingTime=1",
                    "-o", f"{QUEUE}/MaxTotalJobs={SLOTS}", "-o", f"{QUEUE}/MaxWaitingJobs={SLOTS}",
                    "-o", f"{AGENT}/JobAgent/PollingTime=0.2", "-o", f"{AGENT}/JobAgent/StopAfterFailedMatches=5")
    agents = [psutil.Process(agent.pid) for agent in grid.agents]
    cpuBefore, machineBefore = _cpu([server, *agents]), _machineCPU()
    began = time.monotonic()
    jdl = (f'[Executable = "/bin/true"; Parameters = {jobs}; ParameterStart = 0; ParameterStep = 1; '
           f'Arguments = "%s"; CPUTime = 100; JobName = "throughput"]')
    result = JobManagerClient().submitJob(jdl)
    assert result["OK"], result["Message"]
    jobIDs = result["Value"]
    monitor = JobMonitoringClient()
    done = failed = 0
    deadline = began + (300 if quick else 1800)
    while time.monotonic() < deadline:
        counts = monitor.getCounters(["Status"], {"JobID": jobIDs})
        assert counts["OK"], counts["Message"]
        byStatus = {attrs["Status"]: count for attrs, count in counts["Value"]}
        done, failed = byStatus.get("Done", 0), byStatus.get("Failed", 0)
        print(f"\r    {done}/{jobs} Done, {failed} Failed", end="", flush=True)
        if done + failed >= jobs:
            break
        time.sleep(0.5)
    print(flush=True)
    elapsed = time.monotonic() - began
    serverCPU = _cpu([server, *agents]) - cpuBefore
    pilotCPU = _machineCPU() - machineBefore - serverCPU
    grid.stopAgents()
    note = f"{done} Done, {failed} Failed of {jobs} in {elapsed:.0f} s"
    return [
        Figure("throughput", f"jobs finished per second ({jobs} trivial jobs, real pilots)", done / elapsed, "jobs/s",
               TARGET_JOBS_PER_SECOND, backend=grid.backend, note=note),
        Figure("throughput", "server and agents CPU per job", serverCPU / max(done, 1) * 1000, "ms/job",
               better="lower", backend=grid.backend),
        Figure("throughput", "rest of the machine's CPU per job (pilots, wrappers, database, this client)",
               pilotCPU / max(done, 1) * 1000, "ms/job", better="lower", backend=grid.backend),
    ]
