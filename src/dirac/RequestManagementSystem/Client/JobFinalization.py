"""Finishing the job of a request once the request is Done (DIRAC's ``ReqClient.finalizeRequest``).

A JobWrapper that leaves work in a request (its output on a failover SE to be moved) ends the job
``Completed`` / ``Pending Requests``. When that request is Done, the job is finished:

====================================  =================================
job                                   becomes
====================================  =================================
Completed / Pending Requests          Done / Requests done
Completed / Application Finished      Failed / Requests done
With Errors
Completed / Marked for termination    Killed / Requests done
anything else                         unchanged
====================================  =================================

and its ``PendingRequest`` parameter gets the request's digest. A request that Failed leaves the
job Completed, as in DIRAC: an operator resets the request (``dirac-rms-request --Reset``) and the job
is finished when it succeeds.
"""

from __future__ import annotations

import errno

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Utilities.Logging import getLogger
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType
from dirac.RequestManagementSystem.Client import Request as RequestStatus
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.WorkloadManagementSystem.Client import JobMinorStatus

SOURCE = "RMS"
_NEXT = {JobMinorStatus.PENDING_REQUESTS: JobStatus.DONE, JobMinorStatus.APP_ERRORS: JobStatus.FAILED,
         JobMinorStatus.MARKED_FOR_TERMINATION: JobStatus.KILLED}
log = getLogger("RequestManagement/JobFinalization")


def finalizeJob(request: Request, jobID: int, useCertificates: bool | None = None) -> DReturnType[str]:
    """Finish the job of a Done request: S_OK(the job's new status, '' when left as it is)."""
    from dirac.WorkloadManagementSystem.Client.WMSClients import JobMonitoringClient, JobStateUpdateClient

    if request.Status != RequestStatus.DONE:
        return S_ERROR(f"request {request.RequestID} is {request.Status}, not Done: job {jobID} is not finalized")
    summary = JobMonitoringClient(useCertificates=useCertificates).getJobSummary(jobID)
    if not summary["OK"]:
        if summary.get("Errno") == errno.ENOENT:
            log.info("Job %d: gone: request %s finalized", jobID, request.RequestID)
            return S_OK("")
        return summary
    states = JobStateUpdateClient(useCertificates=useCertificates)
    digest = request.getDigest()["Value"]
    result = states.setJobParameter(jobID, "PendingRequest", digest)
    if not result["OK"]:
        return result
    status, minor = summary["Value"].get("Status"), summary["Value"].get("MinorStatus")
    newStatus = _NEXT.get(minor, "") if status == JobStatus.COMPLETED else ""
    if not newStatus:
        log.info("Job %d: %s / %s left as it is (request %s Done)", jobID, status, minor, request.RequestID)
        return S_OK("")
    result = states.setJobStatus(jobID, newStatus, JobMinorStatus.REQUESTS_DONE, SOURCE)
    if not result["OK"]:
        return result
    log.info("Job %d: %s / %s (request %s Done)", jobID, newStatus, JobMinorStatus.REQUESTS_DONE, request.RequestID)
    return S_OK(newStatus)
