"""The one place where job statuses change.

Every change is checked against DIRACCommon's ``JobsStateMachine``, applied by
``JobDB.transitionJobs`` (rows locked, ``UPDATE ... WHERE Status=<the status checked>``) and
written to JobLoggingDB's LoggingInfo in the same call. An illegal change raises
``IllegalTransition`` naming the job and ``from -> to``; nothing is changed then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from DIRACCommon.WorkloadManagementSystem.Client.JobStatus import JobsStateMachine
from sqlalchemy import Connection

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.Exceptions import (
    IllegalTransition,
    RescheduleLimitReached,
    StatusConflict,
)

log = getLogger("WorkloadManagement/JobState")
_STATES = JobsStateMachine(None).states
RESCHEDULE_LIMIT_MINOR = "Maximum of reschedulings reached"


def isLegalTransition(current: str, new: str) -> bool:
    """Whether DIRAC's job state machine allows ``current -> new`` (staying put is always allowed)."""
    if new not in _STATES:
        raise InvalidArgument(f"{new!r} is not a job status (known: {', '.join(_STATES)})")
    state = _STATES.get(current)
    return current == new or (state is not None and new in state.stateMap)


def _timestamps(row: dict[str, Any], new: str, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if new == JobStatus.RUNNING and row["StartExecTime"] is None:
        values["StartExecTime"] = now
    if new in JobStatus.JOB_FINAL_STATES and row["EndExecTime"] is None:
        values["EndExecTime"] = now
    return values


def setJobsStatus(jobDB: JobDB, loggingDB: JobLoggingDB, jobIDs: Iterable[int], status: str | None = None,
                  minorStatus: str | None = None, applicationStatus: str | None = None, source: str = "Unknown", *,
                  expectedStatus: str | Iterable[str] | None = None, force: bool = False,
                  date: datetime | None = None, extraAttributes: dict[str, Any] | None = None) -> dict[int, str]:
    """Change status (and/or minor/application status) of jobs, all or none; {JobID: new status}.

    ``expectedStatus`` refuses (StatusConflict) jobs not in that status; ``force`` skips the state
    machine (administrators). ``extraAttributes`` are set in the same UPDATE (e.g. Site when matched).
    """
    if status == JobStatus.RESCHEDULED:
        raise InvalidArgument("jobs are rescheduled with rescheduleJob, not by setting their status")
    if status is not None and status not in _STATES:
        raise InvalidArgument(f"{status!r} is not a job status (known: {', '.join(_STATES)})")
    expected = {expectedStatus} if isinstance(expectedStatus, str) else set(expectedStatus or ())
    now = utcnow()

    def plan(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        values: dict[int, dict[str, Any]] = {}
        for jobID, row in rows.items():
            current = row["Status"]
            new = status or current
            if expected and current not in expected:
                raise StatusConflict(f"Job {jobID}: status is {current}, expected {' or '.join(sorted(expected))}")
            if not force and not isLegalTransition(current, new):
                raise IllegalTransition(f"Job {jobID}: illegal status transition {current} -> {new}")
            values[jobID] = {"Status": new, "LastUpdateTime": now, **_timestamps(row, new, now),
                             **(extraAttributes or {})}
            if minorStatus is not None:
                values[jobID]["MinorStatus"] = minorStatus[:128]
            if applicationStatus is not None:
                values[jobID]["ApplicationStatus"] = applicationStatus[:255]
        return values

    done = jobDB.transitionJobs(jobIDs, plan)
    loggingDB.addLoggingRecords([
        {"JobID": jobID, "Status": new["Status"], "MinorStatus": new.get("MinorStatus", old["MinorStatus"]),
         "ApplicationStatus": new.get("ApplicationStatus", old["ApplicationStatus"]),
         "StatusTime": date or now, "Source": source}
        for jobID, (old, new) in sorted(done.items())])
    for jobID, (old, new) in sorted(done.items()):
        if old["Status"] != new["Status"]:
            log.info("Job %s: %s -> %s (%s) by %s", jobID, old["Status"], new["Status"],
                     new.get("MinorStatus", old["MinorStatus"]), source)
    return {jobID: new["Status"] for jobID, (_, new) in done.items()}


def setJobStatus(jobDB: JobDB, loggingDB: JobLoggingDB, jobID: int, status: str | None = None,
                 minorStatus: str | None = None, applicationStatus: str | None = None, source: str = "Unknown",
                 **kwargs: Any) -> str:
    """Change the status of one job (see setJobsStatus); its new status."""
    return setJobsStatus(jobDB, loggingDB, [jobID], status, minorStatus, applicationStatus, source, **kwargs)[jobID]


@dataclass(frozen=True)
class StatusRecord:
    """One record of a job's status history as a wrapper reports it: None leaves a field as it is."""

    date: datetime | None
    status: str | None = None
    minorStatus: str | None = None
    applicationStatus: str | None = None
    source: str = "Unknown"


def setJobStatusRecords(jobDB: JobDB, loggingDB: JobLoggingDB, jobID: int, records: Iterable[StatusRecord],
                        force: bool = False) -> str:
    """Apply a job's status records in the order given (a wrapper's bulk, oldest first) in one JobDB
    transaction and one logging insert; the job's status after them.

    At the first record the state machine refuses (unless ``force``), the records before it are
    applied and logged, and IllegalTransition is raised for it: the records after it are not applied.
    """
    records = list(records)
    for record in records:
        if record.status == JobStatus.RESCHEDULED:
            raise InvalidArgument("jobs are rescheduled with rescheduleJob, not by setting their status")
        if record.status is not None and record.status not in _STATES:
            raise InvalidArgument(f"{record.status!r} is not a job status (known: {', '.join(_STATES)})")
    now = utcnow()
    applied: list[tuple[StatusRecord, str, dict[str, Any]]] = []  # (record, status before, state after)
    refused: list[IllegalTransition] = []

    def plan(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        applied.clear()
        refused.clear()
        row, values = dict(rows[jobID]), {}
        for record in records:
            current, new = row["Status"], record.status or row["Status"]
            if not force and not isLegalTransition(current, new):
                refused.append(IllegalTransition(f"Job {jobID}: illegal status transition {current} -> {new}"))
                break
            change = {"Status": new, **_timestamps(row, new, now)}
            if record.minorStatus is not None:
                change["MinorStatus"] = record.minorStatus[:128]
            if record.applicationStatus is not None:
                change["ApplicationStatus"] = record.applicationStatus[:255]
            row.update(change)
            values.update(change)
            applied.append((record, current, {name: row[name] for name in ("Status", "MinorStatus",
                                                                           "ApplicationStatus")}))
        return {jobID: {**values, "LastUpdateTime": now}} if values else {}

    jobDB.transitionJobs([jobID], plan)
    loggingDB.addLoggingRecords([{"JobID": jobID, **state, "StatusTime": record.date or now, "Source": record.source}
                                 for record, _, state in applied])
    for record, before, state in applied:
        if before != state["Status"]:
            log.info("Job %s: %s -> %s (%s) by %s", jobID, before, state["Status"], state["MinorStatus"],
                     record.source)
    if refused:
        raise refused[0]
    return applied[-1][2]["Status"] if applied else ""


def setJobMatched(jobDB: JobDB, loggingDB: JobLoggingDB, jobID: int, site: str, source: str = "Matcher",
                  minorStatus: str = "Assigned", conn: Connection | None = None) -> str:
    """Waiting -> Matched for a job the Matcher took out of its task queue; its processed JDL.

    The Matcher's hot path, as setJobStatus(..., MATCHED, expectedStatus=WAITING) would do it but in
    one JobDB transaction (conditional UPDATE, JDL read, stale commands dropped) and one logging
    insert, or both in ``conn``, the TaskQueueDB transaction of the claim, when the databases share
    a server (DB.joinTransaction). Raises StatusConflict when the job is no longer Waiting (nothing
    is changed then).
    """
    if not isLegalTransition(JobStatus.WAITING, JobStatus.MATCHED):  # DIRACCommon's state machine decides
        raise IllegalTransition(f"Job {jobID}: illegal status transition {JobStatus.WAITING} -> {JobStatus.MATCHED}")
    now = utcnow()
    values = {"Status": JobStatus.MATCHED, "MinorStatus": minorStatus[:128], "LastUpdateTime": now, "Site": site}
    done = jobDB.setWaitingJobMatched(jobID, values, conn)
    if done is None:
        raise StatusConflict(f"Job {jobID}: status is no longer {JobStatus.WAITING}")
    loggingDB.addLoggingRecords([{"JobID": jobID, "Status": JobStatus.MATCHED, "MinorStatus": values["MinorStatus"],
                                  "ApplicationStatus": done["ApplicationStatus"], "StatusTime": now,
                                  "Source": source}], conn)
    log.info("Job %s: %s -> %s (%s) by %s", jobID, JobStatus.WAITING, JobStatus.MATCHED, minorStatus, source)
    return done["JDL"]


def rescheduleJobs(jobDB: JobDB, loggingDB: JobLoggingDB, jobIDs: Iterable[int], source: str = "JobManager",
                   taskQueueDB: TaskQueueDB | None = None) -> dict[int, str]:
    """Send jobs back to Received for a new attempt, or to Failed past MaxRescheduling; {JobID: new status}."""
    limit = jobDB.maxRescheduling
    now = utcnow()

    def plan(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        values: dict[int, dict[str, Any]] = {}
        for jobID, row in rows.items():
            if not isLegalTransition(row["Status"], JobStatus.RESCHEDULED):
                raise IllegalTransition(f"Job {jobID}: illegal status transition {row['Status']} -> "
                                        f"{JobStatus.RESCHEDULED}")
            if row["RescheduleCounter"] >= limit:
                values[jobID] = {"Status": JobStatus.FAILED, "MinorStatus": RESCHEDULE_LIMIT_MINOR,
                                 "LastUpdateTime": now, **_timestamps(row, JobStatus.FAILED, now)}
            else:
                values[jobID] = {"Status": JobStatus.RECEIVED, "MinorStatus": "Job Rescheduled",
                                 "ApplicationStatus": "Unknown", "RescheduleCounter": row["RescheduleCounter"] + 1,
                                 "RescheduleTime": now, "LastUpdateTime": now, "StartExecTime": None,
                                 "EndExecTime": None, "HeartBeatTime": None}
        return values

    done = jobDB.transitionJobs(jobIDs, plan)
    records = []
    for jobID, (old, new) in sorted(done.items()):
        if new["Status"] == JobStatus.FAILED:
            log.warning("Job %s: not rescheduled, %s (%d)", jobID, RESCHEDULE_LIMIT_MINOR, limit)
        else:
            records.append({"JobID": jobID, "Status": JobStatus.RESCHEDULED, "MinorStatus": "Job Rescheduled",
                            "StatusTime": now, "Source": source})
            log.info("Job %s: rescheduled (%d of %d)", jobID, new["RescheduleCounter"], limit)
        records.append({"JobID": jobID, "Status": new["Status"], "MinorStatus": new["MinorStatus"],
                        "ApplicationStatus": new.get("ApplicationStatus", old["ApplicationStatus"]),
                        "StatusTime": now, "Source": source})
        if taskQueueDB is not None and old["Status"] == JobStatus.WAITING:
            taskQueueDB.deleteJob(jobID)
    loggingDB.addLoggingRecords(records)
    return {jobID: new["Status"] for jobID, (_, new) in done.items()}


def rescheduleJob(jobDB: JobDB, loggingDB: JobLoggingDB, jobID: int, source: str = "JobManager",
                  taskQueueDB: TaskQueueDB | None = None) -> str:
    """Reschedule one job; RescheduleLimitReached (job now Failed) past MaxRescheduling."""
    status = rescheduleJobs(jobDB, loggingDB, [jobID], source, taskQueueDB)[jobID]
    if status == JobStatus.FAILED:
        raise RescheduleLimitReached(f"Job {jobID}: {RESCHEDULE_LIMIT_MINOR} ({jobDB.maxRescheduling}), "
                                     "the job is now Failed")
    return status


# == claims and per-job changes of a batch (the Optimizers agent) ====================================================
@dataclass(frozen=True)
class StatusChange:
    """What to set on one job: its status, the minor and application status when not None, other attributes."""

    status: str
    minorStatus: str | None = None
    applicationStatus: str | None = None
    source: str = "Unknown"
    attributes: Mapping[str, Any] | None = None


def claimJobs(jobDB: JobDB, loggingDB: JobLoggingDB, statuses: Mapping[str, datetime | None], status: str,
              minorStatus: str, limit: int, source: str = "Unknown") -> list[int]:
    """Move up to ``limit`` jobs that no one else holds to ``status``, logged; their JobIDs.

    ``statuses`` maps each status to claim from to a date its LastUpdateTime must be before (None:
    any), e.g. {Received: None, Checking: a claim timeout ago}; several claimers at once never
    get the same job.
    """
    for current in statuses:
        if not isLegalTransition(current, status):
            raise IllegalTransition(f"illegal status transition {current} -> {status}")
    now = utcnow()
    minor = minorStatus[:128]

    def plan(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {jobID: {"Status": status, "MinorStatus": minor, "LastUpdateTime": now} for jobID in rows}

    done = jobDB.claimJobsForTransition(statuses, limit, plan)
    loggingDB.addLoggingRecords([{"JobID": jobID, "Status": status, "MinorStatus": minor,
                                  "ApplicationStatus": old["ApplicationStatus"], "StatusTime": now, "Source": source}
                                 for jobID, (old, _) in sorted(done.items())])
    return sorted(done)


def applyStatusChanges(jobDB: JobDB, loggingDB: JobLoggingDB, changes: Mapping[int, StatusChange],
                       expectedStatus: str | Iterable[str]) -> dict[int, str]:
    """Apply a change of its own to each job in one transaction, logged; {JobID: new status} of the jobs changed.

    Jobs no longer in ``expectedStatus`` (e.g. killed meanwhile) or no longer in JobDB are left
    alone and missing from the answer; a change the state machine forbids raises IllegalTransition.
    """
    expected = {expectedStatus} if isinstance(expectedStatus, str) else set(expectedStatus)
    now = utcnow()

    def plan(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        values: dict[int, dict[str, Any]] = {}
        for jobID, row in rows.items():
            change = changes[jobID]
            if row["Status"] not in expected:
                log.info("Job %s: left alone, it is %s now (not %s)", jobID, row["Status"], " or ".join(sorted(expected)))
                continue
            if not isLegalTransition(row["Status"], change.status):
                raise IllegalTransition(f"Job {jobID}: illegal status transition {row['Status']} -> {change.status}")
            values[jobID] = {**(change.attributes or {}), "Status": change.status, "LastUpdateTime": now,
                             **_timestamps(row, change.status, now)}
            if change.minorStatus is not None:
                values[jobID]["MinorStatus"] = change.minorStatus[:128]
            if change.applicationStatus is not None:
                values[jobID]["ApplicationStatus"] = change.applicationStatus[:255]
        return values

    ids = sorted(changes)
    try:
        done = jobDB.transitionJobs(ids, plan)
    except NotFound:  # removed meanwhile: change the others
        done = jobDB.transitionJobs(sorted(jobDB.jobsExist(ids)), plan)
    loggingDB.addLoggingRecords([
        {"JobID": jobID, "Status": new["Status"], "MinorStatus": new.get("MinorStatus", old["MinorStatus"]),
         "ApplicationStatus": new.get("ApplicationStatus", old["ApplicationStatus"]), "StatusTime": now,
         "Source": changes[jobID].source}
        for jobID, (old, new) in sorted(done.items())])
    return {jobID: new["Status"] for jobID, (_, new) in done.items()}
