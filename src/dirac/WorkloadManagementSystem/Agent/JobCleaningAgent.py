"""JobCleaningAgent: jobs at the end of their life leave the WMS, with everything about them.

Each cycle:

1. At most ``MaxJobsAtOnce`` jobs Deleted for over a minute are removed: their task queue entry,
   sandbox links, pilot mapping, JobDB rows and logging history (Logic/JobCleaning.removeJobs).
   The minute lets whoever deleted a job write its logging record before the history goes.
2. Jobs Done, Killed or Failed for more than ``RemoveStatusDelay/<status>`` days (``Any``:
   whatever their status; a negative delay disables the rule) are set Deleted, except the job
   types of ``ProductionTypes`` (the Transformation System cleans those); the next cycle removes them.
3. Task queues left empty are removed (the Matcher removes a queue it empties, unless it lost a
   lock race doing so).
4. With ``CleanSandboxes``, sandboxes no job uses and nobody read for ``UnusedSandboxDays`` are
   removed, file and metadata (Logic/SandboxStore.cleanOrphanSandboxes: this agent must then
   reach the SandboxStore's storage).

See docs/agents.md for the options.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from DIRACCommon.WorkloadManagementSystem.Client.JobStatus import JobsStateMachine

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Base.DB import utcnow
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import NotFound
from dirac.WorkloadManagementSystem.Agent.JobDatabasesAgent import JobDatabasesAgent
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.Logic import JobCleaning, JobControl, SandboxStore, StalledJobs

SOURCE = "JobCleaningAgent"
#: the statuses RemoveStatusDelay has an option for; "Any" means every status
REMOVE_STATUSES = (JobStatus.DONE, JobStatus.KILLED, JobStatus.FAILED, "Any")
#: where the production job types come from when ProductionTypes is not set
PRODUCTION_TYPES_OPTION = "/Operations/Defaults/Transformations/DataProcessing"
DEFAULT_PRODUCTION_TYPES = ["MCSimulation", "Merge"]
#: seconds a job stays Deleted before it is removed (its deletion's logging record is written meanwhile)
REMOVAL_MARGIN = 60
_NOT_DELETED = [status for status in JobsStateMachine(None).states
                if status not in (JobStatus.DELETED, JobStatus.RESCHEDULED)]


class JobCleaningAgent(JobDatabasesAgent):
    """Deletes old finished jobs and removes Deleted jobs from every WMS database."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **AgentModule.DEFAULTS,
        "PollingTime": 3600.0,
        "MaxJobsAtOnce": 500,
        "RemoveStatusDelay/Done": 7.0,
        "RemoveStatusDelay/Killed": 7.0,
        "RemoveStatusDelay/Failed": 7.0,
        "RemoveStatusDelay/Any": -1.0,
        "ProductionTypes": [],
        "CleanSandboxes": True,
        "UnusedSandboxDays": SandboxStore.DEFAULT_UNUSED_DAYS,
    }

    def __init__(self, agentName: str = "WorkloadManagement/JobCleaningAgent",
                 sandboxDB: SandboxMetadataDB | None = None, **databases: Any):
        super().__init__(agentName, **databases)
        self.sandboxDB = sandboxDB

    def initialize(self) -> None:
        super().initialize()
        self.sandboxDB = self.sandboxDB or SandboxMetadataDB()

    def execute(self) -> str:
        now = utcnow()
        removed = self.removeDeletedJobs(now)
        deleted = self.deleteOldJobs(now)
        emptyQueues = self.taskQueueDB.cleanEmptyTaskQueues()
        summary = (f"{len(removed)} deleted job(s) removed, {len(deleted)} old job(s) deleted, "
                   f"{emptyQueues} empty task queue(s) removed")
        if not self.am_getOption("CleanSandboxes"):
            return summary
        try:
            report = SandboxStore.cleanOrphanSandboxes(self.am_getOption("UnusedSandboxDays"), sandboxDB=self.sandboxDB)
        except Exception:
            self.log.error("%s, then sandbox cleaning failed (on a host without the SandboxStore's storage set "
                           "%s/CleanSandboxes = False)", summary, self.section)
            raise
        return (f"{summary}, {len(report.removed)} unused sandbox(es) removed, {len(report.lost)} lost ones "
                f"forgotten, {len(report.failed)} failed")

    def productionTypes(self) -> list[str]:
        """The job types left to the Transformation System: ProductionTypes, else Operations' DataProcessing."""
        return self.am_getOption("ProductionTypes") or gConfig.getValue(PRODUCTION_TYPES_OPTION,
                                                                         DEFAULT_PRODUCTION_TYPES)

    def deleteOldJobs(self, now: datetime) -> list[int]:
        """Set Deleted the jobs past their RemoveStatusDelay (production types excepted); the JobIDs deleted."""
        excluded = set(self.productionTypes())
        jobTypes = [jobType for jobType in self.jobDB.getDistinctJobAttributes("JobType") if jobType not in excluded]
        if not jobTypes:
            return []
        deleted: list[int] = []
        for status in REMOVE_STATUSES:
            days = self.am_getOption(f"RemoveStatusDelay/{status}")
            if days < 0:
                continue
            condDict = {"JobType": jobTypes, "Status": _NOT_DELETED if status == "Any" else status}
            jobIDs = self.jobDB.selectJobs(condDict, older=now - timedelta(days=days), orderAttribute="LastUpdateTime",
                                           limit=self.am_getOption("MaxJobsAtOnce"))
            for jobID in jobIDs:
                self.log.info("Job %d: %s for over %g days: deleting it", jobID,
                              "unchanged" if status == "Any" else status, days)
            if status != "Any":
                deleted += StalledJobs.moveJobs(self.jobDB, self.loggingDB, dict.fromkeys(jobIDs, (status, None)),
                                                JobStatus.DELETED, SOURCE)
            else:
                deleted += self._deleteWhateverTheirStatus(jobIDs)
        return sorted(set(deleted))

    def _deleteWhateverTheirStatus(self, jobIDs: list[int]) -> list[int]:
        """Delete jobs in any status (active ones are killed first); jobs removed meanwhile are skipped."""
        try:
            return JobControl.deleteJobs(self.jobDB, self.loggingDB, self.taskQueueDB, jobIDs, SOURCE)[0]
        except NotFound:  # another cleaner removed some of them meanwhile: one at a time
            pass
        deleted: list[int] = []
        for jobID in jobIDs:
            try:
                deleted += JobControl.deleteJobs(self.jobDB, self.loggingDB, self.taskQueueDB, [jobID], SOURCE)[0]
            except NotFound:
                self.log.info("Job %d: removed meanwhile", jobID)
        return deleted

    def removeDeletedJobs(self, now: datetime) -> list[int]:
        """Remove at most MaxJobsAtOnce jobs Deleted for over REMOVAL_MARGIN from every WMS database; their JobIDs."""
        jobIDs = self.jobDB.selectJobs({"Status": JobStatus.DELETED}, older=now - timedelta(seconds=REMOVAL_MARGIN),
                                       orderAttribute="LastUpdateTime", limit=self.am_getOption("MaxJobsAtOnce"))
        return JobCleaning.removeJobs(self.jobDB, self.loggingDB, self.taskQueueDB, self.pilotDB, self.sandboxDB,
                                      jobIDs)
