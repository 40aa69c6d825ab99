"""Removing jobs at the end of their life: from every WMS database, or not at all.

A job is removed in this order: its task queue entry, its sandbox assignments ("Job:<id>"),
the record of the pilots that ran it, then its JobDB rows (only while it is still in the
expected status, normally Deleted) and last its logging history. If the removal stops half way,
the job is still there in its status and the next pass finishes it; every step can be repeated.
"""

from __future__ import annotations

from collections.abc import Iterable

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic import SandboxStore

log = getLogger("WorkloadManagement/JobCleaning")


def removeJobs(jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB, pilotDB: PilotAgentsDB,
               sandboxDB: SandboxMetadataDB, jobIDs: Iterable[int], status: str = JobStatus.DELETED) -> list[int]:
    """Remove jobs still in ``status`` and everything the WMS holds about them; the JobIDs removed.

    Jobs in another status are left alone; several cleaners may run at once.
    """
    ids = sorted(jobID for jobID, attrs in jobDB.getJobsAttributes(set(jobIDs), ["Status"]).items()
                 if attrs["Status"] == status)
    if not ids:
        return []
    for jobID in ids:
        taskQueueDB.deleteJob(jobID)
    SandboxStore.unassignJobs(sandboxDB, ids)
    pilotDB.deleteJobMappings(ids)
    removed = jobDB.removeJobsInStatus(ids, status)
    loggingDB.deleteJob(removed)
    for jobID in removed:
        log.info("Job %d: removed (%s) with its history, sandbox links and pilot records", jobID, status)
    return removed
