"""WorkloadManagement/JobStateUpdate: job wrappers and pilots report statuses, parameters and heartbeats.

Callers need the ``ChangeStatus`` right on the job (pilots have it on every job, owners on
their own). Every status change goes through the job state machine; ``force`` (skip it) is
honoured for JobAdministrator only. A heartbeat answers the commands waiting for the job, and
``Kill`` whenever the job is in a status where no wrapper should be running any more.
"""

from __future__ import annotations

import datetime
from typing import Any

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.Logic.Exceptions import StatusConflict
from dirac.WorkloadManagementSystem.Logic.JobControl import ACTIVE_STATES
from dirac.WorkloadManagementSystem.Logic.JobPolicy import RIGHT_CHANGE_STATUS, JobPolicy
from dirac.WorkloadManagementSystem.Logic.JobState import StatusRecord, setJobStatus, setJobStatusRecords

REPORTERS = [Properties.GenericPilot, Properties.Pilot, Properties.JobAdministrator, Properties.NormalUser,
             Properties.TrustedHost]
JobID = int | str
#: parameters a heartbeat's dynamic data may not overwrite
STATUS_ATTRIBUTES = ("Status", "MinorStatus", "ApplicationStatus")


def _jobID(jobID: JobID) -> int:
    try:
        return int(jobID)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{jobID!r} is not a job ID") from None


def _date(value: Any) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    try:
        parsed = datetime.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"{value!r} is not a date (YYYY-MM-DD HH:MM:SS)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


class JobStateUpdateHandler(RequestHandler):
    """Status, parameters and heartbeats of jobs, reported from where they run."""

    jobDB: JobDB
    loggingDB: JobLoggingDB

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.jobDB = JobDB()
        cls.loggingDB = JobLoggingDB()

    def _allowed(self, jobID: JobID) -> int:
        """The job ID once the caller's ChangeStatus right on it is checked (NotFound if unknown)."""
        jobID = _jobID(jobID)
        if not JobPolicy(self.credDict).checkJobs(self.jobDB, RIGHT_CHANGE_STATUS, [jobID]):
            raise NotFound(f"Job {jobID} not found")
        return jobID

    def _force(self, force: bool) -> bool:
        return bool(force) and Properties.JobAdministrator in self.credDict.get("properties", [])

    # -- statuses --------------------------------------------------------------------------------------
    auth_setJobStatus = REPORTERS

    def export_setJobStatus(self, jobID: JobID, status: str = "", minorStatus: str = "", source: str = "Unknown",
                            datetime: str | None = None, force: bool = False) -> str:
        """Set status and/or minor status (empty strings leave them as they are); the new status."""
        jobID = self._allowed(jobID)
        return setJobStatus(self.jobDB, self.loggingDB, jobID, status or None, minorStatus or None, None, source,
                            date=_date(datetime), force=self._force(force))

    auth_setJobStatusBulk = REPORTERS

    def export_setJobStatusBulk(self, jobID: JobID, statusDict: dict, force: bool = False) -> dict[str, str]:
        """Apply {date: {Status, MinorStatus, ApplicationStatus, Source}} in time order (a wrapper's backlog),
        in one transaction; at a record the state machine refuses, the ones before it stay applied."""
        jobID = self._allowed(jobID)
        records = []
        for date, values in sorted(((_date(date), values) for date, values in statusDict.items()),
                                   key=lambda item: item[0] or datetime.datetime.now(datetime.UTC)):
            if not isinstance(values, dict):
                raise InvalidArgument(f"status record of {date} must be a dict, not {type(values).__name__}")
            records.append(StatusRecord(date, values.get("Status") or None, values.get("MinorStatus") or None,
                                        values.get("ApplicationStatus") or None, values.get("Source") or "Unknown"))
        return {"Status": setJobStatusRecords(self.jobDB, self.loggingDB, jobID, records, force=self._force(force))}

    auth_setJobApplicationStatus = REPORTERS

    def export_setJobApplicationStatus(self, jobID: JobID, appStatus: str, source: str = "Unknown") -> str:
        """Set the application status."""
        jobID = self._allowed(jobID)
        return setJobStatus(self.jobDB, self.loggingDB, jobID, None, None, appStatus, source)

    auth_setJobSite = REPORTERS

    def export_setJobSite(self, jobID: JobID, site: str) -> None:
        """Record the site the job runs at."""
        self.jobDB.setJobAttributes(self._allowed(jobID), {"Site": site})

    auth_setJobAttribute = [Properties.JobAdministrator, Properties.GenericPilot, Properties.TrustedHost]

    def export_setJobAttribute(self, jobID: JobID, attribute: str, value: str) -> None:
        """Set one job attribute (not Status: statuses go through setJobStatus)."""
        self.jobDB.setJobAttributes(self._allowed(jobID), {attribute: value})

    # -- parameters -------------------------------------------------------------------------------------
    auth_setJobParameter = REPORTERS

    def export_setJobParameter(self, jobID: JobID, name: str, value: str) -> None:
        """Set one job parameter."""
        self.jobDB.setJobParameter(self._allowed(jobID), name, value)

    auth_setJobParameters = REPORTERS

    def export_setJobParameters(self, jobID: JobID, parameters: list) -> None:
        """Set parameters given as [[name, value], ...]."""
        pairs = []
        for item in parameters:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise InvalidArgument(f"parameters must be [[name, value], ...], got {item!r}")
            pairs.append((item[0], item[1]))
        self.jobDB.setJobParameters(self._allowed(jobID), pairs)

    auth_setJobsParameter = REPORTERS

    def export_setJobsParameter(self, jobsParameterDict: dict) -> None:
        """Set one parameter of several jobs: {jobID: [name, value]}."""
        for jobID, item in jobsParameterDict.items():
            if not (isinstance(item, list) and len(item) == 2):
                raise InvalidArgument(f"job {jobID}: expected [name, value], got {item!r}")
            self.jobDB.setJobParameter(self._allowed(jobID), str(item[0]), item[1])

    # -- heartbeats --------------------------------------------------------------------------------------
    auth_sendHeartBeat = REPORTERS

    def export_sendHeartBeat(self, jobID: JobID, dynamicData: dict, staticData: dict) -> dict[str, str]:
        """Record a heartbeat; answer the commands for the job's wrapper ({'Kill': ''} to stop it)."""
        jobID = self._allowed(jobID)
        self.jobDB.setHeartBeatData(jobID, dynamicData)
        if staticData:
            self.jobDB.setJobParameters(jobID, [(name, value) for name, value in staticData.items()
                                                if name not in STATUS_ATTRIBUTES])
        status = self.jobDB.getJobAttribute(jobID, "Status")
        if status == JobStatus.STALLED:
            try:
                status = setJobStatus(self.jobDB, self.loggingDB, jobID, JobStatus.RUNNING, "Job Resumed",
                                      source="JobStateUpdate", expectedStatus=JobStatus.STALLED)
            except StatusConflict:  # another update came first: answer for the status it left
                status = self.jobDB.getJobAttribute(jobID, "Status")
        commands = self.jobDB.popJobCommands(jobID)
        if status not in ACTIVE_STATES:
            commands.setdefault("Kill", "")
        return commands
