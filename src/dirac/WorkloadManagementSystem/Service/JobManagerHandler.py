"""WorkloadManagement/JobManager: submit, kill, delete, reschedule and remove jobs.

Submission checks the whole JDL (parametric ones expanded) before writing anything; the jobs
enter as Received and the Optimizers agent takes them on. Acting on jobs needs the right on
each of them (Logic/JobPolicy); a bulk call processes the jobs it may and lists the others in
DIRAC's ``NonauthorizedJobIDs``, ``InvalidJobIDs`` and ``FailedJobIDs`` keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import RequestHandler, ServiceInfo
from dirac.Core.Utilities.ReturnValues import S_OK
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic import JobControl
from dirac.WorkloadManagementSystem.Logic.Exceptions import JobsNotProcessed
from dirac.WorkloadManagementSystem.Logic.JobCleaning import removeJobs
from dirac.WorkloadManagementSystem.Logic.JobPolicy import (
    RIGHT_DELETE,
    RIGHT_KILL,
    RIGHT_RESCHEDULE,
    JobPolicy,
)
from dirac.WorkloadManagementSystem.Logic.JobSubmission import submitJob

JobIDs = int | list[int]


def _asList(jobIDs: JobIDs) -> list[int]:
    return [jobIDs] if isinstance(jobIDs, int) else list(jobIDs)


class JobManagerHandler(RequestHandler):
    """Job submission and control."""

    jobDB: JobDB
    loggingDB: JobLoggingDB
    taskQueueDB: TaskQueueDB
    pilotAgentsDB: PilotAgentsDB
    sandboxDB: SandboxMetadataDB

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.jobDB = JobDB()
        cls.loggingDB = JobLoggingDB()
        cls.taskQueueDB = TaskQueueDB()
        cls.pilotAgentsDB = PilotAgentsDB()
        cls.sandboxDB = SandboxMetadataDB()

    @property
    def policy(self) -> JobPolicy:
        return JobPolicy(self.credDict)

    # -- submission ------------------------------------------------------------------------------------
    auth_submitJob = [Properties.NormalUser, Properties.JobAdministrator]

    def export_submitJob(self, jobDesc: str) -> dict[str, Any]:
        """Submit a JDL: S_OK(jobID), or S_OK([jobIDs]) for a parametric one; 'JobID' holds the same."""
        policy = self.policy
        policy.canSubmit()
        jobIDs = submitJob(self.jobDB, self.loggingDB, jobDesc, policy.user, policy.group,
                           self.credDict.get("VO") or "", source="JobManager")
        value: int | list[int] = jobIDs if len(jobIDs) > 1 else jobIDs[0]
        result = S_OK(value)
        result["JobID"] = value
        return result

    # -- control ----------------------------------------------------------------------------------------
    def _apply(self, right: str, jobIDs: JobIDs, action: Callable[[list[int]], tuple[list[int], list[int]]],
               verb: str) -> dict[str, Any]:
        allowed, refused, unknown = self.policy.sortJobs(self.jobDB, right, _asList(jobIDs))
        done, failed = action(allowed) if allowed else ([], [])
        if refused or unknown or failed:
            raise JobsNotProcessed(
                f"{len(refused) + len(unknown) + len(failed)} job(s) not {verb}: "
                + "; ".join(part for part in (
                    f"not authorized on {refused}" if refused else "",
                    f"unknown {unknown}" if unknown else "",
                    f"status does not allow it {failed}" if failed else "") if part),
                {"NonauthorizedJobIDs": refused, "InvalidJobIDs": unknown, "FailedJobIDs": failed,
                 "SuccessfulJobIDs": done})
        return S_OK(done)

    def _source(self) -> str:
        return f"JobManager/{self.policy.who}"[:32]

    auth_killJob = [Properties.NormalUser, Properties.JobAdministrator]

    def export_killJob(self, jobIDs: JobIDs, force: bool = False) -> dict[str, Any]:
        """Kill jobs; running ones are stopped through their next heartbeat."""
        return self._apply(RIGHT_KILL, jobIDs, lambda ids: JobControl.killJobs(
            self.jobDB, self.loggingDB, self.taskQueueDB, ids, self._source()), "killed")

    auth_deleteJob = [Properties.NormalUser, Properties.JobAdministrator]

    def export_deleteJob(self, jobIDs: JobIDs, force: bool = False) -> dict[str, Any]:
        """Mark jobs Deleted (killing running ones); the JobCleaningAgent removes them later."""
        return self._apply(RIGHT_DELETE, jobIDs, lambda ids: JobControl.deleteJobs(
            self.jobDB, self.loggingDB, self.taskQueueDB, ids, self._source()), "deleted")

    auth_rescheduleJob = [Properties.NormalUser, Properties.JobAdministrator, Properties.GenericPilot]

    def export_rescheduleJob(self, jobIDs: JobIDs) -> dict[str, Any]:
        """Send jobs back for a new attempt (Failed past MaxRescheduling)."""
        return self._apply(RIGHT_RESCHEDULE, jobIDs, lambda ids: JobControl.rescheduleJobs(
            self.jobDB, self.loggingDB, self.taskQueueDB, ids, self._source()), "rescheduled")

    auth_removeJob = [Properties.JobAdministrator]

    def export_removeJob(self, jobIDs: JobIDs) -> dict[str, Any]:
        """Delete jobs and remove them at once with everything recorded about them (administrators)."""
        ids = _asList(jobIDs)
        JobControl.deleteJobs(self.jobDB, self.loggingDB, self.taskQueueDB, ids, self._source())
        return S_OK(removeJobs(self.jobDB, self.loggingDB, self.taskQueueDB, self.pilotAgentsDB, self.sandboxDB, ids))
