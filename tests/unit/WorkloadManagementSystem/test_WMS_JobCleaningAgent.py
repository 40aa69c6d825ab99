"""JobCleaningAgent on SQLite and MariaDB: Deleted and old finished jobs leave every WMS table, nothing else does."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from sqlalchemy import select, update

from dirac.Core.Base.DB import DB, utcnow
from dirac.Core.Config import gConfig
from dirac.WorkloadManagementSystem.Agent.JobCleaningAgent import JobCleaningAgent
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic import SandboxStore
from dirac.WorkloadManagementSystem.Logic.JobState import setJobStatus
from dirac.WorkloadManagementSystem.Logic.SandboxStorage import DiskSandboxStorage

DAY = 86400
SECTION = "/Systems/WorkloadManagement/Agents/JobCleaningAgent"
STORE_SECTION = "/Systems/WorkloadManagement/Services/SandboxStore"
SE = "SandboxSE"
BOB = {"username": "bob", "group": "dirac_user", "VO": "dirac", "properties": ["NormalUser"]}
JDL = '[Executable = "/bin/true"]'


@dataclass
class Grid:
    jobDB: JobDB
    loggingDB: JobLoggingDB
    tqDB: TaskQueueDB
    pilotDB: PilotAgentsDB
    sandboxDB: SandboxMetadataDB
    storage: DiskSandboxStorage
    tmp: Path

    @property
    def dbs(self) -> list[DB]:
        return [self.jobDB, self.loggingDB, self.tqDB, self.pilotDB, self.sandboxDB]

    def job(self, status: str, daysAgo: float = 0, jobType: str = "User", queued: bool = False) -> int:
        """A job with rows in every table that holds jobs, in ``status`` since ``daysAgo``."""
        jobID = self.jobDB.insertNewJobIntoDB({"Owner": "bob", "OwnerGroup": "dirac_user", "VO": "dirac",
                                               "JobType": jobType}, JDL, inputData=[f"/dirac/data/{jobType}.dat"])
        self.loggingDB.addLoggingRecord(jobID, JobStatus.RECEIVED, "Job accepted", source="Test")
        self.jobDB.setJobParameter(jobID, "Pilot_Reference", f"local://ce/{jobID}")
        self.jobDB.setHeartBeatData(jobID, {"CPUConsumed": 1.5})
        self.jobDB.setJobCommand(jobID, "Kill")
        if queued:
            self.tqDB.insertJob(jobID, {"Owner": "bob", "OwnerGroup": "dirac_user", "CPUTime": 100})
        self.pilotDB.addPilotReferences([f"local://ce/{jobID}"], "dirac")
        self.pilotDB.setJobForPilot(jobID, f"local://ce/{jobID}", updateStatus=False)
        self.assign(jobID, self.upload(f"sandbox of {jobID}".encode()))
        setJobStatus(self.jobDB, self.loggingDB, jobID, status, "set up", source="Test", force=True)
        with self.jobDB.transaction() as conn:
            conn.execute(update(self.jobDB.jobs).where(self.jobDB.jobs.c.JobID == jobID)
                         .values(LastUpdateTime=utcnow() - timedelta(days=daysAgo)))
        return jobID

    def ageDeleted(self) -> None:
        """Pretend the Deleted jobs were deleted a few minutes ago (past the removal margin)."""
        jobs = self.jobDB.jobs
        with self.jobDB.transaction() as conn:
            conn.execute(update(jobs).where(jobs.c.Status == JobStatus.DELETED)
                         .values(LastUpdateTime=utcnow() - timedelta(minutes=5)))

    def upload(self, content: bytes) -> str:
        path = self.tmp / hashlib.sha256(content).hexdigest()
        path.write_bytes(content)
        return SandboxStore.storeSandbox(self.sandboxDB, self.storage, SE, 1 << 20, BOB, path, "sb.tar.bz2",
                                         hashlib.sha256(content).hexdigest(), len(content))

    def assign(self, jobID: int, reference: str) -> None:
        SandboxStore.assignSandboxesToJob(self.sandboxDB, self.jobDB, BOB, jobID, [reference], "Input")

    def ageSandbox(self, reference: str, days: float) -> None:
        sb = self.sandboxDB.sandboxes
        with self.sandboxDB.transaction() as conn:
            conn.execute(update(sb).where(sb.c.SEPFN == SandboxStore.parseSandboxReference(reference)[1])
                         .values(LastAccessTime=utcnow() - timedelta(days=days)))

    def sandbox(self, reference: str) -> dict | None:
        found = self.sandboxDB.getSandboxes([SandboxStore.parseSandboxReference(reference)])
        return next(iter(found.values()), None)

    def rows(self) -> dict[str, Counter]:
        """{table: Counter(JobID each row belongs to, None for rows of no job)} over the five databases."""
        result = {}
        for db in self.dbs:
            with db.connection() as conn:
                for table in db.metadata.sorted_tables:
                    column = next((table.c[name] for name in ("JobID", "JobId", "EntityId") if name in table.c), None)
                    if column is None:
                        result[table.name] = Counter({None: len(conn.execute(select(table)).all())})
                    else:
                        result[table.name] = Counter(_jobOf(value) for value in conn.scalars(select(column)))
        return result

    def agent(self, **options: object) -> JobCleaningAgent:
        gConfig.initialize(options={f"{STORE_SECTION}/BasePath": str(self.storage.basePath),
                                    f"{STORE_SECTION}/LocalSE": SE, f"{SECTION}/CleanSandboxes": "no",
                                    **{f"{SECTION}/{name}": str(value) for name, value in options.items()}},
                           fetchRemote=False)
        agent = JobCleaningAgent(jobDB=self.jobDB, loggingDB=self.loggingDB, taskQueueDB=self.tqDB,
                                 pilotDB=self.pilotDB, sandboxDB=self.sandboxDB)
        agent.initialize()
        return agent


def _jobOf(value: object) -> int:
    return int(str(value).removeprefix("Job:"))


@pytest.fixture
def grid(db_url: str, tmp_path: Path) -> Grid:
    return Grid(JobDB(db_url), JobLoggingDB(db_url), TaskQueueDB(db_url), PilotAgentsDB(db_url),
                SandboxMetadataDB(db_url), DiskSandboxStorage(tmp_path / "store", create=True), tmp_path)


def test_deletedAndOldFinishedJobs_areRemovedWithEverythingAboutThem_andNothingElseIsTouched(grid) -> None:
    deleted = grid.job(JobStatus.DELETED, daysAgo=1, queued=True)
    oldDone = grid.job(JobStatus.DONE, daysAgo=8)
    oldFailed = grid.job(JobStatus.FAILED, daysAgo=8)
    kept = [grid.job(JobStatus.DONE, daysAgo=2),
            grid.job(JobStatus.RUNNING, daysAgo=30),
            grid.job(JobStatus.WAITING, daysAgo=30, queued=True),
            grid.job(JobStatus.FAILED, daysAgo=30, jobType="MCSimulation"),  # a production job: not ours to clean
            grid.job(JobStatus.KILLED, daysAgo=30)]  # RemoveStatusDelay/Killed = -1
    removed = {deleted, oldDone, oldFailed}
    before = grid.rows()
    jobTables = [table for table, counts in before.items() if None not in counts]
    assert sorted(jobTables) == sorted(["Jobs", "JobJDLs", "JobParameters", "InputData", "HeartBeatLoggingInfo",
                                        "JobCommands", "AtticJobParameters", "LoggingInfo", "tq_Jobs",
                                        "JobToPilotMapping", "sb_EntityMapping"])
    for table in set(jobTables) - {"AtticJobParameters", "tq_Jobs"}:
        assert all(before[table][jobID] > 0 for jobID in removed), table

    agent = grid.agent(**{"RemoveStatusDelay/Killed": -1})
    assert agent.execute() == "1 deleted job(s) removed, 2 old job(s) deleted, 0 empty task queue(s) removed"
    assert grid.jobDB.getJobsAttributes([oldDone, oldFailed], ["Status"]) == {
        oldDone: {"Status": JobStatus.DELETED}, oldFailed: {"Status": JobStatus.DELETED}}
    grid.ageDeleted()
    assert agent.execute() == "2 deleted job(s) removed, 0 old job(s) deleted, 0 empty task queue(s) removed"

    after = grid.rows()
    assert set(after) == set(before)
    for table in before:
        expected = Counter({key: n for key, n in before[table].items() if key not in removed})
        assert after[table] == expected, table
    assert grid.jobDB.jobsExist([*removed, *kept]) == set(kept)
    assert {jobID: attrs["Status"] for jobID, attrs in grid.jobDB.getJobsAttributes(kept, ["Status"]).items()} == {
        kept[0]: JobStatus.DONE, kept[1]: JobStatus.RUNNING, kept[2]: JobStatus.WAITING, kept[3]: JobStatus.FAILED,
        kept[4]: JobStatus.KILLED}


def test_removalDelaysAndBatchSize_comeFromTheCS(grid) -> None:
    done = [grid.job(JobStatus.DONE, daysAgo=2) for _ in range(3)]
    deleted = [grid.job(JobStatus.DELETED, daysAgo=1) for _ in range(3)]
    agent = grid.agent(**{"RemoveStatusDelay/Done": 1, "MaxJobsAtOnce": 2})
    assert agent.execute() == "2 deleted job(s) removed, 2 old job(s) deleted, 0 empty task queue(s) removed"
    assert len(grid.jobDB.jobsExist(done + deleted)) == 4
    # the others were deleted just now
    assert agent.execute() == "1 deleted job(s) removed, 1 old job(s) deleted, 0 empty task queue(s) removed"
    grid.ageDeleted()
    assert agent.execute() == "2 deleted job(s) removed, 0 old job(s) deleted, 0 empty task queue(s) removed"
    grid.ageDeleted()
    assert agent.execute() == "1 deleted job(s) removed, 0 old job(s) deleted, 0 empty task queue(s) removed"
    assert grid.jobDB.jobsExist(done + deleted) == set()


def test_anyDelay_deletesOldJobsWhateverTheirStatus(grid) -> None:
    waiting = grid.job(JobStatus.WAITING, daysAgo=40, queued=True)
    young = grid.job(JobStatus.WAITING, daysAgo=10, queued=True)
    agent = grid.agent(**{"RemoveStatusDelay/Any": 30})
    agent.execute()
    assert grid.jobDB.getJobAttribute(waiting, "Status") == JobStatus.DELETED
    assert grid.tqDB.getTaskQueueForJob(waiting) is None
    grid.ageDeleted()
    agent.execute()
    assert grid.jobDB.jobsExist([waiting, young]) == {young}


def test_emptyTaskQueues_areRemoved(grid) -> None:
    """A queue emptied by a Matcher that lost the race to remove it goes at the next cycle; full ones stay."""
    waiting = grid.job(JobStatus.WAITING, queued=True)
    emptied = grid.tqDB.insertJob(grid.job(JobStatus.RUNNING), {"Owner": "ann", "OwnerGroup": "dirac_user",
                                                                 "CPUTime": 100})
    assert grid.tqDB.claimJob(emptied)[0] is not None
    assert set(grid.tqDB.retrieveTaskQueues()) == {emptied, grid.tqDB.getTaskQueueForJob(waiting)}
    assert grid.agent().execute().endswith(", 1 empty task queue(s) removed")
    assert set(grid.tqDB.retrieveTaskQueues()) == {grid.tqDB.getTaskQueueForJob(waiting)}


def test_sandboxesOfRemovedJobs_areUnassignedAndCleanedOnceUnused(grid) -> None:
    shared = grid.upload(b"shared input")
    gone = grid.job(JobStatus.DELETED, daysAgo=1)
    alive = grid.job(JobStatus.RUNNING)
    for jobID in (gone, alive):
        grid.assign(jobID, shared)
    own, = {SandboxStore.makeSandboxReference(SE, sb["SEPFN"])
            for sb in grid.sandboxDB.getSandboxesAssignedToEntity(f"Job:{gone}")} - {shared}
    fresh = grid.upload(b"uploaded this morning, not assigned yet")
    for reference in (shared, own, fresh):
        grid.ageSandbox(reference, 20)
    grid.ageSandbox(fresh, 1)

    summary = grid.agent(CleanSandboxes="yes", UnusedSandboxDays=15).execute()

    assert summary.endswith("1 unused sandbox(es) removed, 0 lost ones forgotten, 0 failed")
    assert grid.sandbox(own) is None
    assert not grid.storage.exists(SandboxStore.parseSandboxReference(own)[1])
    assert grid.sandbox(shared)["Assigned"] is True
    assert grid.sandbox(fresh)["Assigned"] is False
    assert grid.storage.exists(SandboxStore.parseSandboxReference(fresh)[1])


def test_twoAgentCopiesAtOnce_deleteAndRemoveEachJobOnce(grid) -> None:
    jobIDs = [grid.job(JobStatus.DELETED, daysAgo=1) for _ in range(30)] + [grid.job(JobStatus.DONE, daysAgo=9)
                                                                            for _ in range(15)]
    agents = [grid.agent() for _ in range(2)]
    summaries: list[str] = []
    errors: list[Exception] = []

    def run(agent: JobCleaningAgent, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            summaries.append(agent.execute())
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    for _ in range(2):  # the second round removes the jobs the first one deleted
        barrier = threading.Barrier(len(agents))
        threads = [threading.Thread(target=run, args=(agent, barrier)) for agent in agents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        grid.ageDeleted()
    assert errors == []
    counts = [[int(part.split()[0]) for part in summary.split(", ")] for summary in summaries]
    assert sum(removed for removed, _, _ in counts) == 45
    assert sum(deleted for _, deleted, _ in counts) == 15
    assert grid.jobDB.jobsExist(jobIDs) == set()
    assert {table: counts for table, counts in grid.rows().items() if None not in counts and counts} == {}
