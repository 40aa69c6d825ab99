"""WorkloadManagement/JobMonitoring: what is known about jobs, for the jobs the caller may read.

Any authenticated caller may use it; answers cover only the jobs its policy lets it read
(its own, its group's with JobSharing, all with JobAdministrator or JobMonitor). Asking
about a job of somebody else by its ID is refused; selections are silently restricted.
Unknown job IDs are left out of bulk answers, as in DIRAC.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.Core.Utilities.JEncode import DATETIME_FORMAT
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.Logic.JobPolicy import RIGHT_GET_INFO, JobPolicy

JobIDs = int | str | list[int] | list[str]
SUMMARY_ATTRIBUTES = ["JobID", "JobName", "Status", "MinorStatus", "ApplicationStatus", "Site", "JobGroup",
                      "JobType", "Owner", "OwnerGroup", "SubmissionTime", "LastUpdateTime", "HeartBeatTime",
                      "RescheduleCounter", "UserPriority"]
DEFAULT_PAGE_SIZE = 25


def _ids(jobIDs: JobIDs) -> list[int]:
    values = jobIDs if isinstance(jobIDs, list) else [jobIDs]
    try:
        return [int(value) for value in values]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{jobIDs!r} is not a job ID or a list of job IDs") from None


def _date(value: Any, name: str) -> datetime.datetime | None:
    """A UTC datetime from a 'YYYY-MM-DD[ HH:MM[:SS]]' string or a datetime (None for empty)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    try:
        parsed = datetime.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"{name}: {value!r} is not a date (YYYY-MM-DD[ HH:MM:SS])") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def restrictConditions(policy: JobPolicy, condDict: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The caller's conditions narrowed to the jobs it may read; None when nothing can match."""
    conditions = dict(condDict or {})
    for name, allowed in policy.ownerConditions().items():
        if name in conditions:
            asked = conditions[name] if isinstance(conditions[name], (list, tuple)) else [conditions[name]]
            if allowed not in asked:
                return None
        conditions[name] = allowed
    return conditions


class JobMonitoringHandler(RequestHandler):
    """Read-only access to jobs, their attributes, parameters, JDLs, histories and heartbeats."""

    jobDB: JobDB
    loggingDB: JobLoggingDB

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.jobDB = JobDB()
        cls.loggingDB = JobLoggingDB()

    @property
    def policy(self) -> JobPolicy:
        return JobPolicy(self.credDict)

    def _readable(self, jobIDs: JobIDs) -> list[int]:
        """The existing jobs among ``jobIDs`` (AuthorizationError if any of them is not the caller's to read)."""
        return self.policy.checkJobs(self.jobDB, RIGHT_GET_INFO, _ids(jobIDs))

    def _one(self, jobID: int) -> int:
        if not self._readable(jobID):
            raise NotFound(f"Job {jobID} not found")
        return jobID

    def _attribute(self, jobIDs: JobIDs, name: str) -> dict[int, dict[str, Any]]:
        return self.jobDB.getJobsAttributes(self._readable(jobIDs), [name])

    # -- selections ----------------------------------------------------------------------------------
    auth_getJobs = [AUTHENTICATED]

    def export_getJobs(self, attrDict: dict | None = None, cutDate: str | None = None) -> list[str]:
        """IDs (as strings, like DIRAC) of the readable jobs matching attribute values, updated after cutDate."""
        conditions = restrictConditions(self.policy, attrDict)
        if conditions is None:
            return []
        return [str(jobID) for jobID in self.jobDB.selectJobs(conditions, newer=_date(cutDate, "cutDate"))]

    auth_getJobPageSummaryWeb = [AUTHENTICATED]

    def export_getJobPageSummaryWeb(self, selectDict: dict, sortList: list, startItem: int,
                                    maxItems: int) -> dict[str, Any]:
        """One page of a selection: {ParameterNames, Records, TotalRecords, Extras: {status: count}}.

        ``selectDict`` holds attribute conditions plus optional FromDate/ToDate (on LastUpdateTime);
        ``sortList`` is [[attribute, 'ASC'|'DESC']].
        """
        selection = dict(selectDict)
        newer, older = _date(selection.pop("FromDate", None), "FromDate"), _date(selection.pop("ToDate", None), "ToDate")
        conditions = restrictConditions(self.policy, selection)
        page = {"ParameterNames": SUMMARY_ATTRIBUTES, "Records": [], "TotalRecords": 0, "Extras": {}}
        if conditions is None:
            return page
        order = None
        if sortList:
            if not (isinstance(sortList[0], list) and len(sortList[0]) == 2):
                raise InvalidArgument(f"sortList must be [[attribute, 'ASC'|'DESC']], not {sortList!r}")
            order = f"{sortList[0][0]}:{sortList[0][1]}"
        if startItem < 0 or maxItems < 0:
            raise InvalidArgument("startItem and maxItems must not be negative")
        jobIDs = self.jobDB.selectJobs(conditions, older=older, newer=newer, orderAttribute=order,
                                       limit=maxItems or DEFAULT_PAGE_SIZE, offset=startItem)
        attributes = self.jobDB.getJobsAttributes(jobIDs, SUMMARY_ATTRIBUTES[1:])
        page["Records"] = [[jobID, *(attributes[jobID][name] for name in SUMMARY_ATTRIBUTES[1:])] for jobID in jobIDs]
        page["TotalRecords"] = self.jobDB.countJobs(conditions, older=older, newer=newer)
        page["Extras"] = {values["Status"]: count for values, count in
                          self.jobDB.getCounters(["Status"], conditions, older=older, newer=newer)}
        return page

    auth_getCounters = [AUTHENTICATED]

    def export_getCounters(self, attrList: list[str], attrDict: dict | None = None,
                           cutDate: str | None = None) -> list[list]:
        """[[{attribute: value}, count]] of readable jobs grouped by ``attrList``."""
        conditions = restrictConditions(self.policy, attrDict)
        if conditions is None:
            return []
        return [[values, count] for values, count in
                self.jobDB.getCounters(attrList, conditions, newer=_date(cutDate, "cutDate"))]

    def _distinct(self, attribute: str) -> list[Any]:
        conditions = restrictConditions(self.policy, {})
        return self.jobDB.getDistinctJobAttributes(attribute, conditions)

    auth_getSites = [AUTHENTICATED]

    def export_getSites(self) -> list[str]:
        """Sites of the readable jobs."""
        return self._distinct("Site")

    auth_getOwners = [AUTHENTICATED]

    def export_getOwners(self) -> list[str]:
        """Owners of the readable jobs."""
        return self._distinct("Owner")

    auth_getStates = [AUTHENTICATED]

    def export_getStates(self) -> list[str]:
        """Statuses of the readable jobs."""
        return self._distinct("Status")

    auth_getJobGroups = [AUTHENTICATED]

    def export_getJobGroups(self) -> list[str]:
        """Job groups of the readable jobs."""
        return self._distinct("JobGroup")

    # -- per job, in bulk -------------------------------------------------------------------------------
    auth_getJobsStatus = [AUTHENTICATED]

    def export_getJobsStatus(self, jobIDs: JobIDs) -> dict[int, dict[str, Any]]:
        """{jobID: {'Status': ...}}."""
        return self._attribute(jobIDs, "Status")

    auth_getJobsMinorStatus = [AUTHENTICATED]

    def export_getJobsMinorStatus(self, jobIDs: JobIDs) -> dict[int, dict[str, Any]]:
        """{jobID: {'MinorStatus': ...}}."""
        return self._attribute(jobIDs, "MinorStatus")

    auth_getJobsApplicationStatus = [AUTHENTICATED]

    def export_getJobsApplicationStatus(self, jobIDs: JobIDs) -> dict[int, dict[str, Any]]:
        """{jobID: {'ApplicationStatus': ...}}."""
        return self._attribute(jobIDs, "ApplicationStatus")

    auth_getJobsSites = [AUTHENTICATED]

    def export_getJobsSites(self, jobIDs: JobIDs) -> dict[int, dict[str, Any]]:
        """{jobID: {'Site': ...}}."""
        return self._attribute(jobIDs, "Site")

    auth_getJobsStates = [AUTHENTICATED]

    def export_getJobsStates(self, jobIDs: JobIDs) -> dict[int, dict[str, Any]]:
        """{jobID: {'Status', 'MinorStatus', 'ApplicationStatus'}}."""
        return self.jobDB.getJobsAttributes(self._readable(jobIDs), ["Status", "MinorStatus", "ApplicationStatus"])

    auth_getJobsAttributes = [AUTHENTICATED]

    def export_getJobsAttributes(self, jobIDs: JobIDs, attrList: list[str] | None = None) -> dict[int, dict]:
        """{jobID: {attribute: value}} (all attributes when attrList is empty)."""
        return self.jobDB.getJobsAttributes(self._readable(jobIDs), attrList or None)

    auth_getJobsSummary = [AUTHENTICATED]

    def export_getJobsSummary(self, jobIDs: list) -> dict[int, dict]:
        """{jobID: summary attributes}."""
        return self.jobDB.getJobsAttributes(self._readable(jobIDs), SUMMARY_ATTRIBUTES[1:])

    auth_getJobParameters = [AUTHENTICATED]

    def export_getJobParameters(self, jobIDs: JobIDs, parName: str | list[str] | None = None) -> dict[int, dict]:
        """{jobID: {name: value}} (only ``parName`` when given)."""
        names = [parName] if isinstance(parName, str) else parName
        return self.jobDB.getJobParameters(self._readable(jobIDs), names or None)

    # -- one job ------------------------------------------------------------------------------------------
    auth_getJobSummary = [AUTHENTICATED]

    def export_getJobSummary(self, jobID: int) -> dict[str, Any]:
        """The summary attributes of one job."""
        return self.jobDB.getJobAttributes(self._one(jobID), SUMMARY_ATTRIBUTES[1:])

    auth_getJobAttributes = [AUTHENTICATED]

    def export_getJobAttributes(self, jobID: int, attrList: list[str] | None = None) -> dict[str, Any]:
        """{attribute: value} of one job."""
        return self.jobDB.getJobAttributes(self._one(jobID), attrList or None)

    auth_getJobAttribute = [AUTHENTICATED]

    def export_getJobAttribute(self, jobID: int, attribute: str) -> Any:
        """One attribute of one job."""
        return self.jobDB.getJobAttribute(self._one(jobID), attribute)

    auth_getJobParameter = [AUTHENTICATED]

    def export_getJobParameter(self, jobID: int | str, parName: str) -> dict[str, str]:
        """{name: value} of one parameter of one job ({} when unset)."""
        jobID = self._one(_ids(jobID)[0])
        return self.jobDB.getJobParameters(jobID, [parName]).get(jobID, {})

    auth_getJobJDL = [AUTHENTICATED]

    def export_getJobJDL(self, jobID: int, original: bool = False) -> str:
        """The job's JDL as processed (or as submitted, with ``original``)."""
        return self.jobDB.getJobJDL(self._one(jobID), original)

    auth_getJobLoggingInfo = [AUTHENTICATED]

    def export_getJobLoggingInfo(self, jobID: int) -> list[tuple]:
        """[(Status, MinorStatus, ApplicationStatus, 'YYYY-MM-DD HH:MM:SS', Source)], oldest first."""
        return [(r["Status"], r["MinorStatus"], r["ApplicationStatus"], r["StatusTime"].strftime(DATETIME_FORMAT),
                 r["Source"]) for r in self.loggingDB.getJobLoggingInfo(self._one(jobID))]

    auth_getJobHeartBeatData = [AUTHENTICATED]

    def export_getJobHeartBeatData(self, jobID: int) -> list[tuple]:
        """[(name, value, 'YYYY-MM-DD HH:MM:SS')] of the job's heartbeats, oldest first."""
        return [(name, value, time.strftime(DATETIME_FORMAT))
                for name, value, time in self.jobDB.getHeartBeatData(self._one(jobID))]

    auth_getInputData = [AUTHENTICATED]

    def export_getInputData(self, jobID: int) -> list[str]:
        """The LFNs the job reads."""
        return self.jobDB.getInputData(self._one(jobID))
