"""RequestExecutingAgent: carries out the requests of the ReqDB (DIRAC's agent of that name).

Each cycle:

1. requests Assigned for longer than ``KickGraceTime`` (their agent died) go back to Waiting;
2. up to ``RequestsPerCycle`` times: claim the Waiting request due longest (Assigned in the same
   transaction: another copy of the agent never gets it), run it (Logic/RequestTask: each operation
   through its handler, as the request's owner), write it back unless it was canceled meanwhile: Done,
   Failed, or Waiting again with ``NotBefore`` pushed by the back-off (``RetryDelay`` seconds doubling per
   attempt, at most ``MaxRetryDelay``);
3. a Done request of a job finishes the job (Completed / Pending Requests -> Done / Requests done); a
   finalization that fails is tried again in the next cycles.

Several copies may run at once, on one host or many (MariaDB). Options in
``/Systems/RequestManagement/Agents/RequestExecutingAgent``; handlers and their options in its
``OperationHandlers`` section. See docs/rms.md.
"""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any, ClassVar

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.RequestManagementSystem.Client import Request as RequestStatus
from dirac.RequestManagementSystem.Client.JobFinalization import finalizeJob
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.DB.RequestDB import RequestDB
from dirac.RequestManagementSystem.Logic.OwnerCredentials import OwnerCredentials
from dirac.RequestManagementSystem.Logic.RequestTask import RequestTask


class RequestExecutingAgent(AgentModule):
    """Claims due requests and executes them, operation by operation."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **AgentModule.DEFAULTS,
        "PollingTime": 60.0,
        "RequestsPerCycle": 100,
        "RetryDelay": 60.0,
        "MaxRetryDelay": 3600.0,
        "KickGraceTime": 3600.0,
    }

    def __init__(self, agentName: str = "RequestManagement/RequestExecutingAgent", requestDB: RequestDB | None = None,
                 credentials: Any = None):
        super().__init__(agentName)
        self.requestDB = requestDB
        self.credentials = credentials
        #: {RequestID: JobID} of Done requests whose job could not be finalized yet
        self.toFinalize: dict[int, int] = {}

    def initialize(self) -> None:
        self.requestDB = self.requestDB or RequestDB()
        self.credentials = self.credentials or OwnerCredentials()

    def finalize(self) -> None:
        if hasattr(self.credentials, "close"):
            self.credentials.close()

    def execute(self) -> str:
        assert self.requestDB is not None
        kicked = self.requestDB.kickStuckRequests(utcnow() - datetime.timedelta(
            seconds=self.am_getOption("KickGraceTime")))
        for requestID in kicked:
            self.log.warning("request %d: Assigned for over %.0f s (its agent stopped): Waiting again", requestID,
                             self.am_getOption("KickGraceTime"))
        outcomes: Counter[str] = Counter()
        for _ in range(int(self.am_getOption("RequestsPerCycle"))):
            if self.stopRequested:
                break
            claimed = self.requestDB.getRequests(1)
            if not claimed:
                break
            outcomes[self.executeRequest(claimed[0])] += 1
        finalized = self.finalizeJobs()
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "none due"
        return f"requests: {summary}; {len(kicked)} kicked; {finalized} job(s) finalized"

    def executeRequest(self, request: Request) -> str:
        """Run one claimed request and write it back; its outcome (Done, Failed, Waiting, Canceled, Error)."""
        assert self.requestDB is not None
        requestID = request.RequestID
        self.log.info("request %d (%s) of %s@%s: executing %s", requestID, request.RequestName, request.Owner,
                      request.OwnerGroup, ", ".join(f"{op.Type}:{op.Status}" for op in request))
        task = RequestTask(request, self.credentials, self.agentName)
        try:
            task.run()
            if request.Status == RequestStatus.WAITING:
                delay = task.retryDelay(self.am_getOption("RetryDelay"), self.am_getOption("MaxRetryDelay"))
                request.NotBefore = utcnow() + delay
            written = self.requestDB.updateRequest(request, {RequestStatus.ASSIGNED})
        except DiracError as exc:
            self.log.error("request %d: cannot be written back (Assigned until kicked back): %s", requestID,
                           exc.message)
            return "Error"
        if not written:
            self.log.warning("request %d: canceled while it ran: left Canceled", requestID)
            return RequestStatus.CANCELED
        status = request.Status
        if status == RequestStatus.WAITING:
            self.log.info("request %d: Waiting, next attempt at %s: %s", requestID, request.NotBefore, request.Error)
        else:
            self.log.info("request %d: %s%s", requestID, status, f": {request.Error}" if request.Error else "")
        if status == RequestStatus.DONE and request.JobID:
            self.toFinalize[requestID] = request.JobID
        return status

    def finalizeJobs(self) -> int:
        """Finish the jobs of Done requests (those that fail are tried again next cycle); how many were."""
        assert self.requestDB is not None
        done = 0
        for requestID, jobID in list(self.toFinalize.items()):
            try:
                request = self.requestDB.peekRequest(requestID)
            except DiracError as exc:
                self.log.warning("request %d: gone before job %d was finalized: %s", requestID, jobID, exc.message)
                del self.toFinalize[requestID]
                continue
            result = finalizeJob(request, jobID)
            if result["OK"]:
                del self.toFinalize[requestID]
                done += 1
            else:
                self.log.error("request %d: job %d not finalized, to retry: %s", requestID, jobID, result["Message"])
        return done
