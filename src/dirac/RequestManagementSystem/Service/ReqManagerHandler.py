"""RequestManagement/ReqManager: store requests, show them, cancel them, hand them to executing agents.

DIRAC's methods and answers; requests travel as DIRAC's JSON text. Who may call what is in
Logic/RequestPolicy: users see and change their own requests, ``TrustedHost`` and ``Operator``
callers all of them, and only they may claim requests for execution.
"""

from __future__ import annotations

import datetime
from typing import Any

from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument
from dirac.Core.Utilities.ReturnValues import S_OK
from dirac.RequestManagementSystem.Client import Request as RequestStatus
from dirac.RequestManagementSystem.Client.Operation import toDatetime
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.Client.RequestValidator import validateRequest
from dirac.RequestManagementSystem.DB.RequestDB import RequestDB
from dirac.RequestManagementSystem.Logic.OperationHandlers import knownTypes
from dirac.RequestManagementSystem.Logic.RequestPolicy import MANAGERS, RequestPolicy

#: statuses in which a stored request may be replaced by its owner (not while an agent executes it, nor once canceled)
CHANGEABLE = (RequestStatus.WAITING, RequestStatus.FAILED, RequestStatus.DONE, RequestStatus.SCHEDULED)
CANCELABLE = (RequestStatus.WAITING, RequestStatus.ASSIGNED, RequestStatus.SCHEDULED)
_MANAGERS = list(MANAGERS)


def _json(request: Request) -> str:
    return request.toJSON()["Value"]


class ReqManagerHandler(RequestHandler):
    """The requests of the Request Management System."""

    requestDB: RequestDB

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.requestDB = RequestDB()

    @property
    def policy(self) -> RequestPolicy:
        return RequestPolicy(self.credDict)

    def _check(self, requestID: int, action: str) -> dict[str, Any]:
        """The stored {Owner, OwnerGroup, Status, JobID} of a request the caller may ``action``."""
        return dict(self.policy.check(self.requestDB.getRequestOwners([requestID]), requestID, action))

    # -- storing -------------------------------------------------------------------------------------
    auth_putRequest = [AUTHENTICATED]

    def export_putRequest(self, requestJSON: str) -> int:
        """Store a new request (its owner: the caller, or whom it names with delegation rights), or replace a
        stored one of the caller's that no agent is executing (a reset); S_OK(RequestID)."""
        request = Request(requestJSON)
        policy = self.policy
        if request.RequestID:
            row = self._check(request.RequestID, "change")
            request.Owner, request.OwnerGroup = row["Owner"], row["OwnerGroup"]
            validateRequest(request, knownTypes())
            if not self.requestDB.updateRequest(request, CHANGEABLE):
                status = self.requestDB.getRequestStatus(request.RequestID)
                raise InvalidArgument(f"request {request.RequestID} is {status}: not changed "
                                      f"({'an agent is executing it' if status == RequestStatus.ASSIGNED else 'canceled'})")
            self.log.info("request %d (%s) replaced by %s: %s", request.RequestID, request.RequestName, policy.who,
                          request.Status)
            return request.RequestID
        policy.setOwner(request)
        validateRequest(request, knownTypes())
        return self.requestDB.putRequest(request)

    # -- for executing agents ----------------------------------------------------------------------------
    auth_getRequest = _MANAGERS

    def export_getRequest(self, requestID: int = 0) -> str | None:
        """Claim a request for execution (it becomes Assigned): the given one, or the Waiting one due longest;
        its JSON, S_OK() when none is due."""
        if requestID:
            return _json(self.requestDB.getRequest(requestID))
        claimed = self.requestDB.getRequests(1)
        return _json(claimed[0]) if claimed else None

    auth_getBulkRequests = _MANAGERS

    def export_getBulkRequests(self, numberOfRequest: int, assigned: bool) -> dict[str, Any] | None:
        """Up to ``numberOfRequest`` Waiting requests due now, claimed with ``assigned``:
        {"Successful": {RequestID: JSON}, "Failed": {}}, S_OK() when none."""
        requests = self.requestDB.getRequests(max(1, numberOfRequest), assigned)
        if not requests:
            return None
        return {"Successful": {request.RequestID: _json(request) for request in requests}, "Failed": {}}

    # -- reading ---------------------------------------------------------------------------------------
    auth_peekRequest = [AUTHENTICATED]

    def export_peekRequest(self, requestID: int) -> str:
        """A request's JSON, without claiming it."""
        self._check(requestID, "read")
        return _json(self.requestDB.peekRequest(requestID))

    auth_getRequestStatus = [AUTHENTICATED]

    def export_getRequestStatus(self, requestID: int) -> str:
        """The request's status as stored (Assigned while an agent executes it)."""
        return self._check(requestID, "read")["Status"]

    auth_getBulkRequestStatus = [AUTHENTICATED]

    def export_getBulkRequestStatus(self, requestIDs: list[int]) -> dict[int, str]:
        """{RequestID: status} of the caller's requests among ``requestIDs``."""
        return self.requestDB.getBulkRequestStatus(requestIDs, self.policy.ownerFilter)

    auth_getRequestInfo = [AUTHENTICATED]

    def export_getRequestInfo(self, requestID: int) -> list[Any]:
        """[RequestID, Status, RequestName, JobID, Owner, OwnerGroup, SourceComponent, CreationTime, SubmitTime,
        LastUpdate]."""
        self._check(requestID, "read")
        return self.requestDB.getRequestInfo(requestID)

    auth_getRequestFileStatus = [AUTHENTICATED]

    def export_getRequestFileStatus(self, requestID: int, lfnList: str | list[str]) -> dict[str, str]:
        """{lfn: status} of files in the request ('UNKNOWN' for those not in it)."""
        self._check(requestID, "read")
        return self.requestDB.getRequestFileStatus(requestID, [lfnList] if isinstance(lfnList, str) else lfnList)

    auth_getDigest = [AUTHENTICATED]

    def export_getDigest(self, requestID: int) -> str:
        """DIRAC's one-line-per-operation summary of the request."""
        self._check(requestID, "read")
        return self.requestDB.peekRequest(requestID).getDigest()["Value"]

    auth_getRequestIDForName = [AUTHENTICATED]

    def export_getRequestIDForName(self, requestName: str) -> int:
        """The ID of the caller's request of that name (an error when none or several)."""
        return self.requestDB.getRequestIDForName(requestName, self.policy.ownerFilter)

    auth_getRequestIDsList = [AUTHENTICATED]

    def export_getRequestIDsList(self, statusList: list[str] | None = None, limit: int | None = None,
                                 since: str | datetime.datetime | None = None,
                                 until: str | datetime.datetime | None = None,
                                 getJobID: bool = False) -> list[list[Any]]:
        """[[RequestID, Status, LastUpdate(, JobID)], ...] of the caller's requests in ``statusList`` (default: the
        final ones), last updated between ``since`` and ``until`` (YYYY-mm-dd), at most ``limit`` (100)."""
        bounds = []
        for value in (since, until):
            if isinstance(value, str) and len(value) == 10:
                value += " 00:00:00"
            bounds.append(toDatetime(value) if value else None)
        return self.requestDB.getRequestIDsList(statusList or list(RequestStatus.FINAL_STATES), limit or 100,
                                                bounds[0], bounds[1], getJobID, self.policy.ownerFilter)

    auth_getRequestIDsForJobs = [AUTHENTICATED]

    def export_getRequestIDsForJobs(self, jobIDs: list[int]) -> dict[str, dict[int, Any]]:
        """{"Successful": {jobID: RequestID}, "Failed": {jobID: "Request not found"}} (the caller's requests)."""
        return self.requestDB.getRequestIDsForJobs(jobIDs, self.policy.ownerFilter)

    auth_readRequestsForJobs = [AUTHENTICATED]

    def export_readRequestsForJobs(self, jobIDs: list[int]) -> dict[str, dict[int, Any]]:
        """{"Successful": {jobID: request JSON}, "Failed": {jobID: "Request not found"}}."""
        found = self.requestDB.readRequestsForJobs(jobIDs, self.policy.ownerFilter)
        found["Successful"] = {jobID: _json(request) for jobID, request in found["Successful"].items()}
        return found

    auth_getDBSummary = [AUTHENTICATED]

    def export_getDBSummary(self) -> dict[str, dict[str, Any]]:
        """{"Request": {status: n}, "Operation": {type: {status: n}}, "File": {status: n}} (users: theirs)."""
        return self.requestDB.getDBSummary(self.policy.ownerFilter)

    # -- acting ----------------------------------------------------------------------------------------
    auth_cancelRequest = [AUTHENTICATED]

    def export_cancelRequest(self, requestID: int) -> dict[str, Any]:
        """Cancel a request not over yet (an agent executing it leaves it Canceled)."""
        self._check(requestID, "cancel")
        if not self.requestDB.setRequestStatus(requestID, RequestStatus.CANCELED, CANCELABLE):
            status = self.requestDB.getRequestStatus(requestID)
            if status != RequestStatus.CANCELED:
                raise InvalidArgument(f"request {requestID} is {status}: not canceled")
        self.log.info("request %d canceled by %s", requestID, self.policy.who)
        return S_OK()

    auth_deleteRequest = [AUTHENTICATED]

    def export_deleteRequest(self, requestID: int) -> dict[str, Any]:
        """Remove a request (users: their own, once it is over)."""
        row = self._check(requestID, "delete")
        if not self.policy.seesAll and row["Status"] not in RequestStatus.FINAL_STATES:
            raise AuthorizationError(f"request {requestID} is {row['Status']}: cancel it first, then delete it "
                                     f"(or ask an {Properties.Operator})")
        self.requestDB.deleteRequest(requestID)
        self.log.info("request %d deleted by %s", requestID, self.policy.who)
        return S_OK()
