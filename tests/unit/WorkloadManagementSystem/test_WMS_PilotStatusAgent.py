"""PilotStatusAgent on SQLite and MariaDB: jobs of ended pilots handled at once, silent pilots aborted, old ones cleared."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from sqlalchemy import update

from dirac.Core.Base.DB import utcnow
from dirac.Core.Config import gConfig
from dirac.WorkloadManagementSystem.Agent.PilotStatusAgent import PilotStatusAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB, PilotNotFound
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.JobState import setJobStatus

MINUTE, HOUR, DAY = 60, 3600, 86400
SECTION = "/Systems/WorkloadManagement/Agents/PilotStatusAgent"
JDL = '[Executable = "/bin/true"]'


@dataclass
class Grid:
    jobDB: JobDB
    loggingDB: JobLoggingDB
    tqDB: TaskQueueDB
    pilotDB: PilotAgentsDB

    def job(self, status: str = JobStatus.RUNNING, silentFor: float = 20 * MINUTE) -> int:
        """A job in ``status`` heard from last ``silentFor`` seconds ago."""
        jobID = self.jobDB.insertNewJobIntoDB({"Owner": "alice", "OwnerGroup": "dirac_user", "VO": "dirac"}, JDL)
        setJobStatus(self.jobDB, self.loggingDB, jobID, status, "set up", source="Test", force=True)
        stamp = utcnow() - timedelta(seconds=silentFor)
        with self.jobDB.transaction() as conn:
            conn.execute(update(self.jobDB.jobs).where(self.jobDB.jobs.c.JobID == jobID).values(
                LastUpdateTime=stamp, StartExecTime=stamp if status != JobStatus.MATCHED else None,
                HeartBeatTime=stamp if status != JobStatus.MATCHED else None))
        return jobID

    def pilot(self, ref: str, status: str, updatedAgo: float, *jobIDs: int, submittedAgo: float = 0) -> None:
        self.pilotDB.addPilotReferences([ref], "dirac")
        for jobID in jobIDs:
            self.pilotDB.setJobForPilot(jobID, ref, updateStatus=False)
        self.pilotDB.setPilotStatus(ref, status, statusReason="from the CE")
        now, pa = utcnow(), self.pilotDB.pilotAgents
        with self.pilotDB.transaction() as conn:
            conn.execute(update(pa).where(pa.c.PilotJobReference == ref).values(
                LastUpdateTime=now - timedelta(seconds=updatedAgo),
                SubmissionTime=now - timedelta(seconds=max(submittedAgo, updatedAgo))))

    def pilotState(self, ref: str) -> tuple[str, str]:
        info = self.pilotDB.getPilotInfo(ref)[ref]
        return info["Status"], info["StatusReason"]

    def agent(self, **options: object) -> PilotStatusAgent:
        gConfig.initialize(options={f"{SECTION}/{name}": str(value) for name, value in options.items()},
                           fetchRemote=False)
        agent = PilotStatusAgent(jobDB=self.jobDB, loggingDB=self.loggingDB, taskQueueDB=self.tqDB,
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


# -- jobs of ended pilots --------------------------------------------------------------------------------

def test_runningJobWhosePilotIsAborted_isStalledAtOnce(grid) -> None:
    jobID = grid.job(silentFor=20 * MINUTE)  # far from any StalledTime
    grid.pilot("local://ce/1", "Aborted", 15 * MINUTE, jobID)
    assert "1 job(s) of ended pilots stalled" in grid.agent(EndedPilotGraceTime=10 * MINUTE).execute()
    assert grid.state(jobID) == (JobStatus.STALLED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING)
    assert grid.history(jobID) == [(JobStatus.STALLED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING)]


@pytest.mark.parametrize("pilotStatus", ["Done", "Failed", "Deleted"])
def test_completingJobWhosePilotEnded_isStalled(grid, pilotStatus) -> None:
    jobID = grid.job(JobStatus.COMPLETING)
    grid.pilot("local://ce/1", pilotStatus, 15 * MINUTE, jobID)
    grid.agent(EndedPilotGraceTime=10 * MINUTE).execute()
    assert grid.state(jobID) == (JobStatus.STALLED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING)


def test_matchedJobWhosePilotEnded_isRescheduled(grid) -> None:
    jobID = grid.job(JobStatus.MATCHED)
    grid.pilot("local://ce/1", "Failed", 15 * MINUTE, jobID)
    assert "1 matched job(s) of ended pilots rescheduled" in grid.agent(EndedPilotGraceTime=10 * MINUTE).execute()
    assert grid.jobDB.getJobAttributes(jobID, ["Status", "RescheduleCounter"]) == {
        "Status": JobStatus.RECEIVED, "RescheduleCounter": 1}
    assert grid.history(jobID) == [(JobStatus.FAILED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING),
                                   (JobStatus.RESCHEDULED, JobMinorStatus.RESCHEDULED),
                                   (JobStatus.RECEIVED, JobMinorStatus.RESCHEDULED)]


def test_jobsOfPilotsStillRunningOrEndedWithinTheGraceTime_areLeftAlone(grid) -> None:
    running, justEnded = grid.job(), grid.job()
    grid.pilot("local://ce/1", "Running", 15 * MINUTE, running)
    grid.pilot("local://ce/2", "Done", 2 * MINUTE, justEnded)
    assert "0 job(s) of ended pilots stalled" in grid.agent(EndedPilotGraceTime=10 * MINUTE).execute()
    assert grid.state(running)[0] == grid.state(justEnded)[0] == JobStatus.RUNNING


def test_jobHeardFromAfterItsPilotEnded_isLeftAlone(grid) -> None:
    jobID = grid.job(silentFor=MINUTE)
    grid.pilot("local://ce/1", "Done", HOUR, jobID)
    grid.agent(EndedPilotGraceTime=10 * MINUTE).execute()
    assert grid.state(jobID)[0] == JobStatus.RUNNING


def test_endedPilotOfAnEarlierAttempt_doesNotTouchTheRescheduledJob(grid) -> None:
    jobID = grid.job()
    grid.pilot("local://ce/old", "Aborted", HOUR, jobID)
    grid.jobDB.setJobAttributes(jobID, {"RescheduleTime": utcnow() + timedelta(seconds=1)}, updateTime=False)
    grid.agent(EndedPilotGraceTime=10 * MINUTE).execute()
    assert grid.state(jobID)[0] == JobStatus.RUNNING


def test_pilotsEndedBeforeTheLookbackTime_areNotExamined(grid) -> None:
    jobID = grid.job(silentFor=3 * DAY)
    grid.pilot("local://ce/1", "Aborted", 2 * DAY, jobID)
    grid.agent(EndedPilotLookbackTime=DAY).execute()
    assert grid.state(jobID)[0] == JobStatus.RUNNING  # StalledJobAgent's business


# -- silent pilots ---------------------------------------------------------------------------------------------

def test_stuckPilots_areAbortedWithAReason(grid) -> None:
    grid.pilot("local://ce/submitted", "Submitted", 4 * DAY)
    grid.pilot("local://ce/waiting", "Waiting", 4 * DAY)
    grid.pilot("local://ce/recent", "Waiting", 2 * DAY)
    grid.pilot("local://ce/done", "Done", 4 * DAY)
    summary = grid.agent(PilotStalledDays=3).execute()
    assert summary.startswith("2 silent pilot(s) aborted")
    reason = "No status update for over 3 days (PilotStatusAgent)"
    assert grid.pilotState("local://ce/submitted") == grid.pilotState("local://ce/waiting") == ("Aborted", reason)
    assert grid.pilotState("local://ce/recent") == ("Waiting", "from the CE")
    assert grid.pilotState("local://ce/done") == ("Done", "from the CE")


def test_silentRunningPilot_isAbortedUnlessItsJobIsAlive(grid) -> None:
    alive, silent = grid.job(silentFor=MINUTE), grid.job(silentFor=5 * DAY)
    grid.pilot("local://ce/alive", "Running", 4 * DAY, alive)
    grid.pilot("local://ce/silent", "Running", 4 * DAY, silent)
    grid.agent(PilotStalledDays=3).execute()
    assert grid.pilotState("local://ce/alive")[0] == "Running"
    assert grid.pilotState("local://ce/silent")[0] == "Aborted"


def test_oldPilotRecords_areCleared(grid) -> None:
    grid.pilot("local://ce/old", "Done", 31 * DAY)
    grid.pilot("local://ce/oldAborted", "Aborted", 8 * DAY)
    grid.pilot("local://ce/young", "Done", 6 * DAY)
    assert grid.agent().execute().endswith("2 old pilot(s) cleared")
    for ref in ("local://ce/old", "local://ce/oldAborted"):
        with pytest.raises(PilotNotFound):
            grid.pilotDB.getPilotInfo(ref)
    assert grid.pilotState("local://ce/young")[0] == "Done"


def test_twoAgentCopiesAtOnce_handleEachJobAndPilotOnce(grid) -> None:
    running = [grid.job() for _ in range(20)]
    matched = [grid.job(JobStatus.MATCHED) for _ in range(20)]
    for n, jobID in enumerate(running + matched):
        grid.pilot(f"local://ce/ended{n}", "Aborted", 15 * MINUTE, jobID)
    for n in range(20):
        grid.pilot(f"local://ce/silent{n}", "Submitted", 4 * DAY)
    agents = [grid.agent() for _ in range(2)]
    barrier = threading.Barrier(len(agents))
    summaries: list[str] = []
    errors: list[Exception] = []

    def run(agent: PilotStatusAgent) -> None:
        barrier.wait()
        try:
            summaries.append(agent.execute())
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    aborted = sum(int(summary.split(" silent pilot(s) aborted")[0]) for summary in summaries)
    assert aborted == 20
    for jobID in running:
        assert grid.history(jobID) == [(JobStatus.STALLED, JobMinorStatus.STALLED_PILOT_NOT_RUNNING)]
    for jobID in matched:
        assert [status for status, _ in grid.history(jobID)] == [JobStatus.FAILED, JobStatus.RESCHEDULED,
                                                                 JobStatus.RECEIVED]
