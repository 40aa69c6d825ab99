"""ReqClient: the RequestManagement/ReqManager service with Request objects (DIRAC's ReqClient).

Every method answers S_OK/S_ERROR; requests come back as ``Request`` objects and job IDs as ints
(JSON turns dictionary keys into text)::

    client = ReqClient()
    requestID = client.putRequest(request)["Value"]
    client.getRequestStatus(requestID)            # S_OK("Waiting")
    client.peekRequest(requestID)["Value"]        # Request
    client.getRequestIDsForJobs([12])             # S_OK({"Successful": {12: requestID}, "Failed": {}})
    client.resetFailedRequest(requestID)          # Failed files back to Waiting, due now
    client.cancelRequest(requestID)
"""

from __future__ import annotations

from typing import Any

from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.ReturnValues import S_OK, DReturnType
from dirac.RequestManagementSystem.Client import File as FileStatus
from dirac.RequestManagementSystem.Client import Operation as OperationStatus
from dirac.RequestManagementSystem.Client import Request as RequestStatus
from dirac.RequestManagementSystem.Client.Operation import utcnow
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.Client.RequestValidator import validateRequest

SERVICE = "RequestManagement/ReqManager"


def _intKeys(mapping: dict[Any, Any]) -> dict[int, Any]:
    return {int(key): value for key, value in mapping.items()}


def _request(result: DReturnType[Any]) -> DReturnType[Any]:
    """S_OK(Request) from S_OK(JSON); S_OK(None) stays."""
    if not result["OK"] or not result["Value"]:
        return result
    try:
        return S_OK(Request(result["Value"]))
    except DiracError as exc:
        return exc.toSError()


class ReqClient:
    """Requests through the ReqManager service; ``rpcOptions`` go to the RPC client (proxyLocation, ...)."""

    def __init__(self, url: str | None = None, **rpcOptions: Any):
        self.rpc = RPCClient(url or SERVICE, **rpcOptions)

    def putRequest(self, request: Request, useFailoverProxy: bool = True, retryMainService: int = 0
                   ) -> DReturnType[int]:
        """Store ``request`` (checked here first): S_OK(RequestID). DIRAC's ReqProxy arguments are accepted and
        unused (there is no ReqProxy: an unreachable service is an S_ERROR whose caller keeps the request)."""
        try:
            validateRequest(request, requireOwner=False)
        except DiracError as exc:
            return exc.toSError()
        result = self.rpc.putRequest(request.toJSON()["Value"])
        for _ in range(retryMainService):
            if result["OK"]:
                break
            result = self.rpc.putRequest(request.toJSON()["Value"])
        if result["OK"] and not request.RequestID:
            request.RequestID = result["Value"]
        return result

    def getRequest(self, requestID: int = 0) -> DReturnType[Request | None]:
        """Claim a request for execution (agents): S_OK(Request), S_OK(None) when none is due."""
        return _request(self.rpc.getRequest(int(requestID)))

    def getBulkRequests(self, numberOfRequest: int = 10, assigned: bool = True) -> DReturnType[Any]:
        """S_OK({"Successful": {RequestID: Request}, "Failed": {RequestID: reason}}), S_OK(None) when none."""
        result = self.rpc.getBulkRequests(int(numberOfRequest), bool(assigned))
        if not result["OK"] or not result["Value"]:
            return result
        return S_OK({"Successful": {int(key): Request(text) for key, text in result["Value"]["Successful"].items()},
                     "Failed": _intKeys(result["Value"]["Failed"])})

    def peekRequest(self, requestID: int) -> DReturnType[Request]:
        """S_OK(Request) without claiming it."""
        return _request(self.rpc.peekRequest(int(requestID)))

    def getRequestStatus(self, requestID: int) -> DReturnType[str]:
        return self.rpc.getRequestStatus(int(requestID))

    def getBulkRequestStatus(self, requestIDs: list[int]) -> DReturnType[dict[int, str]]:
        result = self.rpc.getBulkRequestStatus([int(requestID) for requestID in requestIDs])
        return S_OK(_intKeys(result["Value"])) if result["OK"] else result

    def getRequestInfo(self, requestID: int) -> DReturnType[list[Any]]:
        return self.rpc.getRequestInfo(int(requestID))

    def getRequestFileStatus(self, requestID: int, lfns: str | list[str]) -> DReturnType[dict[str, str]]:
        return self.rpc.getRequestFileStatus(int(requestID), lfns)

    def getDigest(self, requestID: int) -> DReturnType[str]:
        return self.rpc.getDigest(int(requestID))

    def getRequestIDForName(self, requestName: str) -> DReturnType[int]:
        return self.rpc.getRequestIDForName(requestName)

    def getRequestIDsList(self, statusList: list[str] | None = None, limit: int | None = None, since: Any = None,
                          until: Any = None, getJobID: bool = False) -> DReturnType[list[list[Any]]]:
        """[[RequestID, Status, LastUpdate(, JobID)], ...]; ``since``/``until``: datetimes or YYYY-mm-dd."""
        bounds = [value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else (value or None)
                  for value in (since, until)]
        return self.rpc.getRequestIDsList(statusList or list(RequestStatus.FINAL_STATES), limit or 100, bounds[0],
                                          bounds[1], getJobID)

    def getRequestIDsForJobs(self, jobIDs: list[int]) -> DReturnType[dict[str, dict[int, Any]]]:
        """S_OK({"Successful": {jobID: RequestID}, "Failed": {jobID: reason}})."""
        result = self.rpc.getRequestIDsForJobs([int(jobID) for jobID in jobIDs])
        if not result["OK"]:
            return result
        return S_OK({key: _intKeys(result["Value"][key]) for key in ("Successful", "Failed")})

    def readRequestsForJobs(self, jobIDs: list[int]) -> DReturnType[dict[str, dict[int, Any]]]:
        """S_OK({"Successful": {jobID: Request}, "Failed": {jobID: reason}})."""
        result = self.rpc.readRequestsForJobs([int(jobID) for jobID in jobIDs])
        if not result["OK"]:
            return result
        return S_OK({"Successful": {int(jobID): Request(text) for jobID, text in result["Value"]["Successful"].items()},
                     "Failed": _intKeys(result["Value"]["Failed"])})

    def getDBSummary(self) -> DReturnType[dict[str, Any]]:
        return self.rpc.getDBSummary()

    def cancelRequest(self, requestID: int) -> DReturnType[None]:
        return self.rpc.cancelRequest(int(requestID))

    def deleteRequest(self, requestID: int) -> DReturnType[None]:
        return self.rpc.deleteRequest(int(requestID))

    def resetFailedRequest(self, requestID: int, allR: bool = False) -> DReturnType[Any]:
        """Give a request another chance (DIRAC's): its Failed files and operations back to Waiting (Attempt 1, no
        error), due now; ``allR`` also resets a request that is not Failed (only its NotBefore changes)."""
        peeked = self.peekRequest(requestID)
        if not peeked["OK"]:
            return peeked
        request: Request = peeked["Value"]
        if request.Status != RequestStatus.FAILED and not allR:
            return S_OK("Not reset")
        for operation in request:
            if operation.ownStatus() != OperationStatus.FAILED:
                continue
            operation.Error = ""
            for opFile in operation:
                if opFile.Status == FileStatus.FAILED:
                    opFile.Attempt, opFile.Error, opFile.Status = 1, "", FileStatus.WAITING
            if not len(operation):
                operation.Status = OperationStatus.WAITING
        request.Error = ""
        request.NotBefore = utcnow()
        return self.putRequest(request)

    def finalizeRequest(self, requestID: int, jobID: int, useCertificates: bool | None = None) -> DReturnType[str]:
        """Once the request of a job is Done, finish the job: Completed / Pending Requests -> Done / Requests done;
        S_OK(the job's new status, '' when unchanged). See ``JobFinalization``."""
        from dirac.RequestManagementSystem.Client.JobFinalization import finalizeJob

        peeked = self.peekRequest(requestID)
        if not peeked["OK"]:
            return peeked
        return finalizeJob(peeked["Value"], int(jobID), useCertificates)
