"""The job's failover request: what the JobWrapper could not finish is left to the Request Management System.

DIRAC's failover, request ``job_<JobID>`` owned by the job's owner:

* status reports the JobStateUpdate did not take (it could not be reached): ``ForwardDISET`` operations
  replaying ``setJobStatusBulk`` and ``setJobParameters`` as they are, first;
* each OutputData file stored on a failover SE: ``ReplicateAndRegister`` to the first OutputSE (from the
  failover SE; Adler32 and size of the file), then ``RemoveReplica`` on the failover SE.

The job then ends ``Completed`` / ``Pending Requests``; the RequestExecutingAgent sets it Done once the
request is. See docs/jobwrapper.md and docs/rms.md.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterable
from typing import Any

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Tornado.Client import isTransient
from dirac.Core.Utilities import DEncode
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.Core.Utilities.Logging import getLogger
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.WorkloadManagementSystem.JobWrapper.JobData import FailedOverFile

JOB_STATE_UPDATE = "WorkloadManagement/JobStateUpdate"
STORED, LEFT, REFUSED = "stored", "left", "refused"
#: failures of the client itself (no URL configured, no credential, TLS): not the ReqManager's refusal
_CLIENT_SIDE = frozenset({DErrno.ECONF, DErrno.EPROXYFIND, DErrno.ECERTFIND, DErrno.EX509, errno.EKEYEXPIRED})
log = getLogger("WorkloadManagement/JobWrapper")


def jobRequest(jobID: int, owner: str, ownerGroup: str) -> Request:
    """An empty request of the job (DIRAC's name and source component)."""
    return Request(RequestName=f"job_{jobID}", JobID=jobID, Owner=owner, OwnerGroup=ownerGroup,
                   SourceComponent=f"Job_{jobID}")


def transferOperations(files: Iterable[FailedOverFile]) -> list[Operation]:
    """ReplicateAndRegister to each target, then RemoveReplica on each failover SE, per (failover, target) pair."""
    pairs: dict[tuple[str, str], list[FailedOverFile]] = {}
    for item in files:
        pairs.setdefault((item.failoverSE, item.targetSE), []).append(item)
    operations = []
    for (failoverSE, targetSE), items in pairs.items():
        replicate = Operation(Type="ReplicateAndRegister", TargetSE=targetSE, SourceSE=failoverSE)
        remove = Operation(Type="RemoveReplica", TargetSE=failoverSE)
        for item in items:
            replicate.addFile(File(LFN=item.output.lfn, Checksum=fileAdler32(item.output.local), ChecksumType="ADLER32",
                                   Size=item.output.local.stat().st_size))
            remove.addFile(File(LFN=item.output.lfn))
        operations += [replicate, remove]
    return operations


def forwardOperations(calls: Iterable[tuple[str, list[Any]]], service: str = JOB_STATE_UPDATE) -> list[Operation]:
    """ForwardDISET operations replaying ``calls`` ([(method, args)]) on ``service``."""
    return [Operation(Type="ForwardDISET", Arguments=DEncode.encode(((service, {}), method, args)))
            for method, args in calls]


def transferRequest(jobID: int, owner: str, ownerGroup: str, files: list[FailedOverFile]) -> Request | None:
    """The job's request moving ``files`` off the failover SEs (None when there are none)."""
    if not files:
        return None
    request = jobRequest(jobID, owner, ownerGroup)
    for operation in transferOperations(files):
        request.addOperation(operation)
    return request


def prependReports(request: Request, calls: list[tuple[str, list[Any]]], service: str = JOB_STATE_UPDATE) -> None:
    """Put the ForwardDISET operations of the undelivered report ``calls`` first in ``request``."""
    for operation in reversed(forwardOperations(calls, service)):
        if len(request):
            request.insertBefore(operation, request[0])
        else:
            request.addOperation(operation)


def withoutReports(request: Request) -> str:
    """The JSON of ``request`` without its ForwardDISET operations ('' when nothing else is left): what the
    JobAgent is to put after delivering the reports itself from the pending-reports file."""
    data = request.toDict()
    data["Operations"] = [operation for operation in data["Operations"] if operation["Type"] != "ForwardDISET"]
    return json.dumps(data) if data["Operations"] else ""


def putJobRequest(client: Any, request: Request, retry: Callable[[str, Callable[[], dict]], dict]) -> tuple[str, str]:
    """Store the job's request: (STORED, its ID), (LEFT, why: the ReqManager could not be reached), or (REFUSED,
    why). A request holding reports is tried once (the server was just found away), else through ``retry``."""
    if any(operation.Type == "ForwardDISET" for operation in request):
        put = client.putRequest(request)
    else:
        put = retry("failover request", lambda: client.putRequest(request))
    if put["OK"]:
        log.info("Job %d: request %s (%s) registered: %s", request.JobID, put["Value"], request.RequestName,
                 ", ".join(operation.Type for operation in request))
        return STORED, str(put["Value"])
    if isTransient(put) or put.get("Errno") in _CLIENT_SIDE:
        log.error("Job %d: the ReqManager cannot be reached, the request is left for the JobAgent: %s", request.JobID,
                  put["Message"])
        return LEFT, put["Message"]
    log.error("Job %d: request %s refused: %s", request.JobID, request.RequestName, put["Message"])
    return REFUSED, put["Message"]
