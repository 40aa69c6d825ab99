"""Submission and queueing: a JDL becomes jobs in JobDB, and checked jobs enter their task queues."""

from __future__ import annotations

from collections.abc import Iterable

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.JobDescription import prepareJobs, requirementsFromJDL
from dirac.WorkloadManagementSystem.Logic.JobState import setJobsStatus

log = getLogger("WorkloadManagement/JobSubmission")


def submitJob(jobDB: JobDB, loggingDB: JobLoggingDB, jdl: str, owner: str, ownerGroup: str, vo: str,
              source: str = "JobManager") -> list[int]:
    """Validate and insert the job(s) of a JDL (parametric ones expanded) as Received; their JobIDs.

    The whole description is checked before anything is written and all jobs go in one
    transaction: an invalid JDL (InvalidJDL) or a failed insert leaves no job behind.
    """
    descriptions = prepareJobs(jdl, owner, ownerGroup, vo)
    jobIDs = jobDB.insertNewJobs([description.asJobDBRecord() for description in descriptions])
    now = utcnow()
    try:
        loggingDB.addLoggingRecords([{"JobID": jobID, "Status": JobStatus.RECEIVED, "MinorStatus": "Job accepted",
                                      "ApplicationStatus": "Unknown", "StatusTime": now, "Source": source}
                                     for jobID in jobIDs])
    except Exception:
        log.exception("jobs %s of %s: logging failed, removing them", jobIDs, owner)
        jobDB.removeJobFromDB(jobIDs)
        raise
    log.info("%s/%s submitted %d job(s): %s", owner, ownerGroup, len(jobIDs), jobIDs[:10])
    return jobIDs


def scheduleJobs(jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB, jobIDs: Iterable[int],
                 source: str = "JobScheduling") -> dict[int, int]:
    """Move checked jobs (Received/Checking) to Waiting and into their task queues; {JobID: TQId}."""
    ids = list(jobIDs)
    setJobsStatus(jobDB, loggingDB, ids, JobStatus.WAITING, "Pilot Agent Submission", source=source,
                  expectedStatus=[JobStatus.RECEIVED, JobStatus.CHECKING, JobStatus.WAITING])
    jdls = jobDB.getJobJDLs(ids)
    priorities = jobDB.getJobsAttributes(ids, ["UserPriority"])
    return taskQueueDB.insertJobs([(jobID, requirementsFromJDL(jdls[jobID]), priorities[jobID]["UserPriority"])
                                   for jobID in ids])
