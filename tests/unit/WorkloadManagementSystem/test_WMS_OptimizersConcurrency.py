"""Optimizer agents running at once: every job is checked exactly once; a large parametric submission is fast."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from sqlalchemy import func, select

from dirac.Core.Config import gConfig
from dirac.WorkloadManagementSystem.Agent.OptimizerAgent import OptimizerAgent
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.JobSubmission import submitJob

AGENT_SECTION = "/Systems/WorkloadManagement/Agents/Optimizers"
SE = "ProductionSandboxSE"


def _ownAgent(url: str) -> OptimizerAgent:
    """An agent with DB objects of its own, as a separate process would have."""
    return OptimizerAgent(jobDB=JobDB(url), loggingDB=JobLoggingDB(url), taskQueueDB=TaskQueueDB(url),
                          sandboxDB=SandboxMetadataDB(url))


def _submit(url: str, jobs: int, owner: str, sandbox: str, sites: str = "") -> list[int]:
    jdl = (f'[ Executable = "/bin/echo"; Arguments = "%s"; Parameters = {jobs}; ParameterStart = 1; '
           f'ParameterStep = 1; InputSandbox = {{ "{sandbox}" }}; {sites} ]')
    return submitJob(JobDB(url), JobLoggingDB(url), jdl, owner, "dirac_user", "dirac")


def _registerSandbox(url: str, owner: str) -> str:
    SandboxMetadataDB(url).registerAndGetSandbox(owner, "dirac_user", "dirac", SE, f"/{owner}/sb.tar.bz2", 10)
    return f"SB:{SE}|/{owner}/sb.tar.bz2"


@pytest.mark.parametrize("agents", [2, 4])
def test_severalAgentsAtOnce_checkEveryJobExactlyOnce(db_url: str, agents: int) -> None:
    gConfig.initialize(options={f"{AGENT_SECTION}/BatchSize": "25"}, fetchRemote=False)
    jobIDs = []
    for owner in ("alice", "bob", "carol"):  # three task queues created while the agents race
        jobIDs += _submit(db_url, 200, owner, _registerSandbox(db_url, owner))
    copies = [_ownAgent(db_url) for _ in range(agents)]
    start = threading.Barrier(agents)
    errors: list[BaseException] = []

    def run(agent: OptimizerAgent) -> None:
        try:
            start.wait()
            agent.run(once=True)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(agent,)) for agent in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and all(agent.failedCycles == 0 for agent in copies)
    assert sum(agent.processed.claimed for agent in copies) == len(jobIDs)
    assert sum(agent.processed.waiting for agent in copies) == len(jobIDs)

    jobDB, loggingDB, tqDB = JobDB(db_url), JobLoggingDB(db_url), TaskQueueDB(db_url)
    assert jobDB.getCounters(["Status"]) == [({"Status": JobStatus.WAITING}, len(jobIDs))]
    li = loggingDB.loggingInfo
    with loggingDB.connection() as conn:
        records = Counter(tuple(row) for row in conn.execute(
            select(li.c.JobID, li.c.Status).where(li.c.Status.in_([JobStatus.CHECKING, JobStatus.WAITING]))))
    assert records == Counter({(jobID, status): 1 for jobID in jobIDs
                               for status in (JobStatus.CHECKING, JobStatus.WAITING)})
    with tqDB.connection() as conn:
        assert conn.scalar(select(func.count()).select_from(tqDB.tqJobs)) == len(jobIDs)
    assert sorted(queue["Jobs"] for queue in tqDB.retrieveTaskQueues().values()) == [200, 200, 200]
    sandboxDB = SandboxMetadataDB(db_url)
    assert all(len(sandboxDB.getSandboxesAssignedToEntity(f"Job:{jobID}")) == 1 for jobID in jobIDs[::50])


@pytest.mark.slow
def test_tenThousandParametricJobs_reachWaitingInAFewSeconds(db_url: str) -> None:
    gConfig.initialize(options={"/Systems/WorkloadManagement/Services/JobManager/MaxParametricJobs": "10000"},
                       fetchRemote=False)
    jobIDs = _submit(db_url, 10_000, "alice", _registerSandbox(db_url, "alice"),
                     sites='Site = { "LCG.CERN.ch", "LCG.PIC.es" }; BannedSites = { "LCG.PIC.es" };')
    agent = _ownAgent(db_url)
    started = time.monotonic()
    agent.run(once=True)
    seconds = time.monotonic() - started
    assert agent.processed.waiting == len(jobIDs) == 10_000
    assert JobDB(db_url).getCounters(["Status"]) == [({"Status": JobStatus.WAITING}, 10_000)]
    [queue] = TaskQueueDB(db_url).retrieveTaskQueues().values()
    assert queue["Jobs"] == 10_000 and queue["Sites"] == ["LCG.CERN.ch"]
    print(f"10,000 jobs Received -> Waiting in {seconds:.1f} s")
    assert seconds < 30  # a few seconds on a laptop (see docs/optimizers.md); generous for loaded CI hosts
