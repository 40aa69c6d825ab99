"""StalledJobAgent on SQLite and MariaDB: silent jobs go Stalled then Failed or rescheduled, live ones stay."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from sqlalchemy import update

from dirac.Core.Base.DB import utcnow
from dirac.Core.Config import gConfig
from dirac.WorkloadManagementSystem.Agent.StalledJobAgent import StalledJobAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.JobState import setJobStatus

HOUR = 3600
SECTION = "/Systems/WorkloadManagement/Agents/StalledJobAgent"
JDL = '[Executable = "/bin/true"; Site = "LCG.CERN.cern"]'


@dataclass
class Grid:
    jobDB: JobDB
    loggingDB: JobLoggingDB
    tqDB: TaskQueueDB
    pilotDB: PilotAgentsDB

    def job(self, status: str = JobStatus.RUNNING, site: str = "LCG.CERN.cern", **ages: float) -> int:
        """A job in ``status`` whose times (HeartBeatTime=..., LastUpdateTime=..., in seconds ago) are set."""
        jobID = self.jobDB.insertNewJobIntoDB({"Owner": "alice", "OwnerGroup": "dirac_user", "VO": "dirac"}, JDL)
        setJobStatus(self.jobDB, self.loggingDB, jobID, status, "set up", source="Test", force=True)
        self.jobDB.setJobAttributes(jobID, {"Site": site})
        self.age(jobID, **ages)
        return jobID

    def age(self, jobID: int, **ages: float | None) -> None:
        now = utcnow()
        values = {name: None if seconds is None else now - timedelta(seconds=seconds) for name, seconds in ages.items()}
        with self.jobDB.transaction() as conn:
            conn.execute(update(self.jobDB.jobs).where(self.jobDB.jobs.c.JobID == jobID).values(values))

    def pilot(self, ref: str, status: str, jobID: int) -> None:
        self.pilotDB.addPilotReferences([ref], "dirac")
        self.pilotDB.setJobForPilot(jobID, ref, updateStatus=False)
        self.pilotDB.setPilotStatus(ref, status, statusReason="test")

    def agent(self, **options: object) -> StalledJobAgent:
        gConfig.initialize(options={f"{SECTION}/{name}": str(value) for name, value in options.items()},
                           fetchRemote=False)
        agent = StalledJobAgent(jobDB=self.jobDB, loggingDB=self.loggingDB, taskQueueDB=self.tqDB,
                                pilotDB=self.pilotDB)
        agent.initialize()
        return agent

    def state(self, jobID: int) -> tuple[str, str]:
        attrs = self.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus"])
        return attrs["Status"], attrs["MinorStatus"]

    def history(self, jobID: int) -> list[tuple[str, str]]:
        return [(r["Status"], r["MinorStatus"]) for r in self.loggingDB.getJobLoggingInfo(jobID) if r["Source"] != "Test"]


@pytest.fixture
def grid(db_url: str) -> Grid:
    return Grid(JobDB(db_url), JobLoggingDB(db_url), TaskQueueDB(db_url), PilotAgentsDB(db_url))


SILENT = {"HeartBeatTime": 2 * HOUR, "LastUpdateTime": 3 * HOUR, "StartExecTime": 4 * HOUR}


def test_runningJobWithoutHeartbeat_goesStalledThenFailed(grid) -> None:
    jobID = grid.job(**SILENT)
    agent = grid.agent(StalledTime=HOUR, FailedTime=3 * HOUR)
    assert agent.execute().startswith("1 job(s) stalled, 0 stalled job(s) failed")
    assert grid.state(jobID) == (JobStatus.STALLED, JobMinorStatus.WATCHDOG_STALLED)
    grid.age(jobID, LastUpdateTime=2 * HOUR)  # stalled two hours ago, heartbeat two hours old too
    agent.execute()
    assert grid.state(jobID) == (JobStatus.STALLED, JobMinorStatus.WATCHDOG_STALLED)
    grid.age(jobID, LastUpdateTime=4 * HOUR, HeartBeatTime=4 * HOUR)
    assert "1 stalled job(s) failed" in agent.execute()
    assert grid.state(jobID) == (JobStatus.FAILED, f"Stalling for more than {3 * HOUR} sec")
    assert grid.history(jobID) == [(JobStatus.STALLED, JobMinorStatus.WATCHDOG_STALLED),
                                   (JobStatus.FAILED, f"Stalling for more than {3 * HOUR} sec")]


def test_completingJobWithoutHeartbeat_isStalledToo(grid) -> None:
    jobID = grid.job(JobStatus.COMPLETING, **SILENT)
    grid.agent(StalledTime=HOUR).execute()
    assert grid.state(jobID) == (JobStatus.STALLED, JobMinorStatus.WATCHDOG_STALLED)


def test_jobThatNeverSentAHeartbeat_isStalledOnItsLastUpdate(grid) -> None:
    silent = grid.job(HeartBeatTime=None, LastUpdateTime=2 * HOUR, StartExecTime=2 * HOUR)
    starting = grid.job(HeartBeatTime=None, LastUpdateTime=60, StartExecTime=60)
    grid.agent(StalledTime=HOUR).execute()
    assert grid.state(silent)[0] == JobStatus.STALLED
    assert grid.state(starting)[0] == JobStatus.RUNNING


def test_heartbeatingJob_isLeftAlone(grid) -> None:
    jobID = grid.job(HeartBeatTime=None, LastUpdateTime=5 * HOUR, StartExecTime=5 * HOUR)
    grid.jobDB.setHeartBeatData(jobID, {"CPUConsumed": 12.5})
    assert grid.agent(StalledTime=HOUR).execute().startswith("0 job(s) stalled")
    assert grid.state(jobID) == (JobStatus.RUNNING, "set up")
    assert grid.history(jobID) == []


def test_stalledJobThatHeartbeatsAgain_isNotFailed(grid) -> None:
    jobID = grid.job(**SILENT)
    agent = grid.agent(StalledTime=HOUR, FailedTime=3 * HOUR)
    agent.execute()
    assert grid.state(jobID)[0] == JobStatus.STALLED
    grid.age(jobID, LastUpdateTime=5 * HOUR)
    grid.jobDB.setHeartBeatData(jobID, {"CPUConsumed": 99})  # the wrapper is back
    agent.execute()
    assert grid.state(jobID)[0] == JobStatus.STALLED
    # JobStateUpdate.sendHeartBeat resumes it; the agent then leaves the running job alone
    setJobStatus(grid.jobDB, grid.loggingDB, jobID, JobStatus.RUNNING, "Job Resumed", source="JobStateUpdate",
                 expectedStatus=JobStatus.STALLED)
    agent.execute()
    assert grid.state(jobID) == (JobStatus.RUNNING, "Job Resumed")


def test_silentJobWhosePilotEnded_isStalledAndFailedAsPilotNotRunning(grid) -> None:
    jobID = grid.job(**SILENT)
    grid.pilot("local://ce/1", "Aborted", jobID)
    summary = grid.agent(StalledTime=HOUR, FailedTime=10 * HOUR).execute()
    assert summary.startswith("1 job(s) stalled, 1 stalled job(s) failed")
    assert grid.history(jobID) == [(JobStatus.STALLED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING),
                                   (JobStatus.FAILED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING)]


def test_silentJobWhosePilotStillRuns_waitsFailedTime(grid) -> None:
    jobID = grid.job(**SILENT)
    grid.pilot("local://ce/1", "Running", jobID)
    grid.agent(StalledTime=HOUR, FailedTime=10 * HOUR).execute()
    assert grid.state(jobID) == (JobStatus.STALLED, JobMinorStatus.WATCHDOG_STALLED)


def test_stalledJob_isRescheduledWhenConfiguredAndFailedPastMaxRescheduling(grid) -> None:
    gConfig.initialize(options={f"{grid.jobDB.section}/MaxRescheduling": "1"}, fetchRemote=False)
    agent = grid.agent(StalledTime=HOUR, FailedTime=3 * HOUR, RescheduleStalled="yes")
    jobID = grid.job(JobStatus.STALLED, HeartBeatTime=5 * HOUR, LastUpdateTime=4 * HOUR, StartExecTime=6 * HOUR)
    assert "1 rescheduled" in agent.execute()
    assert grid.jobDB.getJobAttributes(jobID, ["Status", "RescheduleCounter", "HeartBeatTime"]) == {
        "Status": JobStatus.RECEIVED, "RescheduleCounter": 1, "HeartBeatTime": None}
    assert [status for status, _ in grid.history(jobID)] == [JobStatus.FAILED, JobStatus.RESCHEDULED,
                                                             JobStatus.RECEIVED]
    assert grid.history(jobID)[0] == (JobStatus.FAILED, f"Stalling for more than {3 * HOUR} sec")

    setJobStatus(grid.jobDB, grid.loggingDB, jobID, JobStatus.STALLED, "again", source="Test", force=True)
    grid.age(jobID, LastUpdateTime=4 * HOUR)
    assert "1 stalled job(s) failed, 0 rescheduled" in agent.execute()
    assert grid.state(jobID) == (JobStatus.FAILED, JobMinorStatus.MAX_RESCHEDULING)


def test_stalledJob_isRescheduledOnlyAtTheSitesConfigured(grid) -> None:
    agent = grid.agent(StalledTime=HOUR, FailedTime=HOUR, StalledJobsToRescheduleSites="LCG.Flaky.org, LCG.Other.org")
    flaky = grid.job(JobStatus.STALLED, site="LCG.Flaky.org", **SILENT)
    steady = grid.job(JobStatus.STALLED, site="LCG.CERN.cern", **SILENT)
    agent.execute()
    assert grid.state(flaky)[0] == JobStatus.RECEIVED
    assert grid.state(steady)[0] == JobStatus.FAILED


def test_matchedJobNeverStarted_isRescheduled(grid) -> None:
    stuck = grid.job(JobStatus.MATCHED, LastUpdateTime=3 * HOUR, HeartBeatTime=None, StartExecTime=None)
    fresh = grid.job(JobStatus.MATCHED, LastUpdateTime=60, HeartBeatTime=None, StartExecTime=None)
    assert grid.agent(MatchedTime=2 * HOUR).execute().endswith("1 matched job(s) not started rescheduled")
    assert grid.jobDB.getJobAttributes(stuck, ["Status", "RescheduleCounter"]) == {
        "Status": JobStatus.RECEIVED, "RescheduleCounter": 1}
    assert grid.history(stuck)[0] == (JobStatus.FAILED, f"Not started by its pilot within {2 * HOUR} sec")
    assert grid.state(fresh)[0] == JobStatus.MATCHED


def test_pilotOfAnEarlierAttempt_doesNotMakeTheJobPilotNotRunning(grid) -> None:
    jobID = grid.job(**SILENT)
    grid.pilot("local://ce/old", "Aborted", jobID)
    grid.jobDB.setJobAttributes(jobID, {"RescheduleTime": utcnow() + timedelta(seconds=1)}, updateTime=False)
    grid.agent(StalledTime=HOUR, FailedTime=10 * HOUR).execute()
    assert grid.state(jobID) == (JobStatus.STALLED, JobMinorStatus.WATCHDOG_STALLED)


def test_pilotReferenceParameter_namesThePilotWhenNoMappingExists(grid) -> None:
    jobID = grid.job(**SILENT)
    grid.pilotDB.addPilotReferences(["local://ce/2"], "dirac")
    grid.pilotDB.setPilotStatus("local://ce/2", "Done")
    grid.jobDB.setJobParameter(jobID, "Pilot_Reference", "local://ce/2")
    grid.agent(StalledTime=HOUR, FailedTime=10 * HOUR).execute()
    assert grid.state(jobID) == (JobStatus.FAILED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING)


def test_workPerCycle_isBoundedByMaxJobsAtOnce(grid) -> None:
    jobIDs = [grid.job(**SILENT) for _ in range(5)]
    agent = grid.agent(StalledTime=HOUR, MaxJobsAtOnce=2)
    assert agent.execute().startswith("2 job(s) stalled")
    assert [grid.state(jobID)[0] for jobID in jobIDs].count(JobStatus.STALLED) == 2


def test_twoAgentCopiesAtOnce_stallAndRescheduleEachJobOnce(grid) -> None:
    silent = [grid.job(**SILENT) for _ in range(30)]
    matched = [grid.job(JobStatus.MATCHED, LastUpdateTime=3 * HOUR, HeartBeatTime=None, StartExecTime=None)
               for _ in range(30)]
    agents = [grid.agent(StalledTime=HOUR, FailedTime=10 * HOUR, MatchedTime=HOUR) for _ in range(2)]
    barrier = threading.Barrier(len(agents))
    errors: list[Exception] = []

    def run(agent: StalledJobAgent) -> None:
        barrier.wait()
        try:
            agent.execute()
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    for jobID in silent:
        assert grid.history(jobID) == [(JobStatus.STALLED, JobMinorStatus.WATCHDOG_STALLED)]
    for jobID in matched:
        assert [status for status, _ in grid.history(jobID)] == [JobStatus.FAILED, JobStatus.RESCHEDULED,
                                                                 JobStatus.RECEIVED]
        assert grid.jobDB.getJobAttribute(jobID, "RescheduleCounter") == 1
