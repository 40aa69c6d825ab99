"""Kill, delete and reschedule jobs on a user's request, within the job state machine.

A job whose wrapper may be running (Matched, Running, Completing, Stalled) also gets a ``Kill``
command, delivered with its next heartbeat. Jobs the state machine does not let go where they
are asked to are reported back, never forced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Utilities.Exceptions import NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic import JobState
from dirac.WorkloadManagementSystem.Logic.Exceptions import IllegalTransition, StatusConflict
from dirac.WorkloadManagementSystem.Logic.JobState import isLegalTransition, setJobsStatus

log = getLogger("WorkloadManagement/JobControl")

#: statuses in which a job wrapper may be running somewhere
ACTIVE_STATES = (JobStatus.MATCHED, JobStatus.RUNNING, JobStatus.COMPLETING, JobStatus.STALLED)


def _transition(jobDB: JobDB, loggingDB: JobLoggingDB, jobIDs: list[int], status: str, minorStatus: str | None,
                source: str) -> tuple[list[int], dict[int, str]]:
    """Move jobs to ``status`` where legal, grouped by current status: (moved, {JobID: previous status})."""
    current = {jobID: attrs["Status"] for jobID, attrs in jobDB.getJobsAttributes(jobIDs, ["Status"]).items()}
    byStatus: dict[str, list[int]] = defaultdict(list)
    for jobID, old in current.items():
        if old != status and isLegalTransition(old, status):
            byStatus[old].append(jobID)
    moved: list[int] = []
    for old, group in byStatus.items():
        try:
            setJobsStatus(jobDB, loggingDB, group, status, minorStatus, source=source, expectedStatus=old)
            moved += group
        except (StatusConflict, IllegalTransition, NotFound):  # one changed or vanished meanwhile: one by one
            for jobID in group:
                try:
                    setJobsStatus(jobDB, loggingDB, [jobID], status, minorStatus, source=source, expectedStatus=old)
                    moved.append(jobID)
                except (StatusConflict, IllegalTransition, NotFound) as exc:
                    log.info("Job %s not moved to %s: %s", jobID, status, exc)
    return sorted(moved), current


def killJobs(jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB, jobIDs: Iterable[int],
             source: str = "JobManager") -> tuple[list[int], list[int]]:
    """Kill jobs: (killed, not killable because already final)."""
    ids = sorted(set(jobIDs))
    killed, previous = _transition(jobDB, loggingDB, ids, JobStatus.KILLED, JobMinorStatus.MARKED_FOR_TERMINATION,
                                   source)
    for jobID in killed:
        if previous[jobID] == JobStatus.WAITING:
            taskQueueDB.deleteJob(jobID)
        elif previous[jobID] in ACTIVE_STATES:
            jobDB.setJobCommand(jobID, "Kill")
    if killed:
        log.info("killed %d job(s) by %s: %s", len(killed), source, killed[:20])
    return killed, [jobID for jobID in ids if jobID in previous and jobID not in killed
                    and previous[jobID] != JobStatus.KILLED]


def deleteJobs(jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB, jobIDs: Iterable[int],
               source: str = "JobManager") -> tuple[list[int], list[int]]:
    """Mark jobs Deleted (active ones are killed first): (deleted, not deletable)."""
    ids = sorted(set(jobIDs))
    killJobs(jobDB, loggingDB, taskQueueDB, [jobID for jobID, attrs in jobDB.getJobsAttributes(ids, ["Status"]).items()
                                             if attrs["Status"] in ACTIVE_STATES], source)
    deleted, previous = _transition(jobDB, loggingDB, ids, JobStatus.DELETED, None, source)
    for jobID in deleted:
        if previous[jobID] == JobStatus.WAITING:
            taskQueueDB.deleteJob(jobID)
    if deleted:
        log.info("deleted %d job(s) by %s: %s", len(deleted), source, deleted[:20])
    return deleted, [jobID for jobID in ids if jobID in previous and jobID not in deleted
                     and previous[jobID] != JobStatus.DELETED]


def rescheduleJobs(jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB, jobIDs: Iterable[int],
                   source: str = "JobManager") -> tuple[list[int], list[int]]:
    """Send jobs back for a new attempt: (rescheduled or failed past the limit, not reschedulable).

    A job whose wrapper may still run gets a Kill command so the old attempt stops.
    """
    ids = sorted(set(jobIDs))
    current = {jobID: attrs["Status"] for jobID, attrs in jobDB.getJobsAttributes(ids, ["Status"]).items()}
    legal = [jobID for jobID, status in current.items() if isLegalTransition(status, JobStatus.RESCHEDULED)]
    done = JobState.rescheduleJobs(jobDB, loggingDB, legal, source=source, taskQueueDB=taskQueueDB) if legal else {}
    for jobID in done:
        if current[jobID] in ACTIVE_STATES:
            jobDB.setJobCommand(jobID, "Kill")
    return sorted(done), [jobID for jobID in ids if jobID in current and jobID not in done]
