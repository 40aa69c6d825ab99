"""RequestDB: requests, their operations and files (DIRAC's ReqDB: tables ``Request``, ``Operation``, ``File``).

A request is written whole (``putRequest``) and read whole (``peekRequest``); the status stored for
it is the one its operations give (see Client/Request), except ``Assigned``, which only the DB
knows: the request is being executed. Agents claim requests with ``getRequests``: the Waiting
ones whose ``NotBefore`` has passed, oldest update first, locked with ``SELECT ... FOR UPDATE SKIP
LOCKED`` and set Assigned in the same transaction (SQLite: one writer at a time), so two agents
never get the same request. They write them back with ``updateRequest(request, {Assigned})``,
which changes nothing when the request was canceled (or kicked back) meanwhile.

Methods raise ``NotFound`` / ``InvalidArgument`` / ``DatabaseError``; selections take an ``owner``
(a user name) to see only that user's requests.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from dirac.Core.Base.DB import DB, LongText, UTCDateTime, utcnow
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.RequestManagementSystem.Client import Request as RequestStatus
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.Request import Request

metadata = MetaData()

requestTable = Table(
    "Request", metadata,
    Column("RequestID", Integer, primary_key=True, autoincrement=True),
    Column("RequestName", String(255), nullable=False),
    Column("Owner", String(255), nullable=False, server_default=""),
    Column("OwnerGroup", String(32), nullable=False, server_default=""),
    Column("Status", String(16), nullable=False, server_default=RequestStatus.WAITING),
    Column("Error", String(255), nullable=False, server_default=""),
    Column("SourceComponent", String(255), nullable=False, server_default=""),
    Column("JobID", Integer, nullable=False, server_default="0"),
    Column("CreationTime", UTCDateTime),
    Column("SubmitTime", UTCDateTime),
    Column("LastUpdate", UTCDateTime),
    Column("NotBefore", UTCDateTime),
    Index("ix_Request_Status_NotBefore", "Status", "NotBefore"),
    Index("ix_Request_JobID", "JobID"),
    Index("ix_Request_Owner", "Owner"),
    Index("ix_Request_RequestName", "RequestName"),
    sqlite_autoincrement=True,
)

operationTable = Table(
    "Operation", metadata,
    Column("OperationID", Integer, primary_key=True, autoincrement=True),
    Column("RequestID", Integer, ForeignKey("Request.RequestID", ondelete="CASCADE"), nullable=False, index=True),
    Column("Type", String(64), nullable=False),
    Column("Status", String(16), nullable=False),
    Column("Arguments", LongText),
    Column("Order", Integer, nullable=False),
    Column("SourceSE", String(255), nullable=False, server_default=""),
    Column("TargetSE", String(255), nullable=False, server_default=""),
    Column("Catalog", String(255), nullable=False, server_default=""),
    Column("Error", String(255), nullable=False, server_default=""),
    Column("Attempt", Integer, nullable=False, server_default="0"),
    Column("CreationTime", UTCDateTime),
    Column("SubmitTime", UTCDateTime),
    Column("LastUpdate", UTCDateTime),
    sqlite_autoincrement=True,
)

fileTable = Table(
    "File", metadata,
    Column("FileID", Integer, primary_key=True, autoincrement=True),
    Column("OperationID", Integer, ForeignKey("Operation.OperationID", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("Status", String(16), nullable=False),
    Column("LFN", String(255), nullable=False, index=True),
    Column("PFN", String(255), nullable=False, server_default=""),
    Column("ChecksumType", String(16), nullable=False, server_default=""),
    Column("Checksum", String(255), nullable=False, server_default=""),
    Column("GUID", String(36), nullable=False, server_default=""),
    Column("Size", BigInteger, nullable=False, server_default="0"),
    Column("Attempt", Integer, nullable=False, server_default="0"),
    Column("Error", String(255), nullable=False, server_default=""),
    sqlite_autoincrement=True,
)

#: columns copied between a model object and its row (the IDs and the Request's status apart)
_REQUEST_COLUMNS = ("RequestName", "Owner", "OwnerGroup", "Error", "SourceComponent", "JobID", "CreationTime",
                    "SubmitTime", "NotBefore")
_OPERATION_COLUMNS = ("Type", "Status", "Arguments", "Order", "SourceSE", "TargetSE", "Catalog", "Error", "Attempt",
                      "CreationTime", "SubmitTime", "LastUpdate")
_FILE_COLUMNS = ("Status", "LFN", "PFN", "ChecksumType", "Checksum", "GUID", "Size", "Attempt", "Error")
_TEXT_LIMITS = {"Error": 255, "SourceComponent": 255, "PFN": 255}


def _values(obj: Any, columns: Iterable[str]) -> dict[str, Any]:
    values = {name: getattr(obj, name) for name in columns}
    for name, limit in _TEXT_LIMITS.items():
        if isinstance(values.get(name), str):
            values[name] = values[name][:limit]
    return values


class RequestDB(DB):
    """The Request Management database."""

    dbName = "RequestManagement/ReqDB"
    metadata = metadata

    # -- writing -----------------------------------------------------------------------------------
    def putRequest(self, request: Request) -> int:
        """Store a new request (it gets its RequestID, its operations and files theirs); the RequestID."""
        if request.RequestID:
            raise InvalidArgument(f"request {request.RequestID} is already stored: use updateRequest")
        now = utcnow()
        with self.transaction("putRequest") as conn:
            values = {**_values(request, _REQUEST_COLUMNS), "Status": request.Status, "LastUpdate": now}
            requestID = conn.execute(insert(requestTable).values(values)).inserted_primary_key[0]
            request.RequestID = requestID
            for operation in request:
                self._insertOperation(conn, requestID, operation, now)
        request.LastUpdate = now
        self.log.info("request %d (%s) of %s@%s stored: %d operation(s), %s", requestID, request.RequestName,
                      request.Owner, request.OwnerGroup, len(request), request.Status)
        return requestID

    def _insertOperation(self, conn: Connection, requestID: int, operation: Operation, now: datetime.datetime) -> None:
        values = {**_values(operation, _OPERATION_COLUMNS), "RequestID": requestID, "LastUpdate": now}
        operation.OperationID = conn.execute(insert(operationTable).values(values)).inserted_primary_key[0]
        operation.RequestID = requestID
        for opFile in operation:
            self._insertFile(conn, operation.OperationID, opFile)

    @staticmethod
    def _insertFile(conn: Connection, operationID: int, opFile: File) -> None:
        values = {**_values(opFile, _FILE_COLUMNS), "OperationID": operationID}
        opFile.FileID = conn.execute(insert(fileTable).values(values)).inserted_primary_key[0]
        opFile.OperationID = operationID

    def updateRequest(self, request: Request, fromStatuses: Collection[str]) -> bool:
        """Write a stored request back whole, if its status in the DB is one of ``fromStatuses`` (e.g. Assigned for
        the agent that claimed it: not a request canceled meanwhile); False when nothing was written."""
        requestID = request.RequestID
        if not requestID:
            raise InvalidArgument("updateRequest needs a stored request (RequestID)")
        now = utcnow()
        with self.transaction("updateRequest") as conn:
            query = select(requestTable.c.Status).where(requestTable.c.RequestID == requestID)
            current = conn.scalar(query.with_for_update() if self.isMySQL else query)
            if current is None:
                raise NotFound(f"request {requestID} does not exist")
            if current not in fromStatuses:
                self.log.info("request %d is %s: not written back", requestID, current)
                return False
            values = {**_values(request, _REQUEST_COLUMNS), "Status": request.Status, "LastUpdate": now}
            conn.execute(update(requestTable).where(requestTable.c.RequestID == requestID).values(values))
            self._writeOperations(conn, request, now)
        request.LastUpdate = now
        return True

    def _writeOperations(self, conn: Connection, request: Request, now: datetime.datetime) -> None:
        """Make the request's Operation and File rows those of the model: update, insert, delete."""
        requestID = request.RequestID
        stored = set(conn.scalars(select(operationTable.c.OperationID).where(operationTable.c.RequestID == requestID)))
        kept = {operation.OperationID for operation in request if operation.OperationID in stored}
        if stored - kept:
            conn.execute(delete(operationTable).where(operationTable.c.OperationID.in_(stored - kept)))
        for operation in request:
            if operation.OperationID not in kept:
                self._insertOperation(conn, requestID, operation, now)
                continue
            values = {**_values(operation, _OPERATION_COLUMNS), "LastUpdate": now}
            conn.execute(update(operationTable).where(operationTable.c.OperationID == operation.OperationID)
                         .values(values))
            storedFiles = set(conn.scalars(select(fileTable.c.FileID)
                                           .where(fileTable.c.OperationID == operation.OperationID)))
            keptFiles = [opFile for opFile in operation if opFile.FileID in storedFiles]
            gone = storedFiles - {opFile.FileID for opFile in keptFiles}
            if gone:
                conn.execute(delete(fileTable).where(fileTable.c.FileID.in_(gone)))
            if keptFiles:
                conn.execute(update(fileTable).where(fileTable.c.FileID == bindparam("_id"))
                             .values({name: bindparam(name) for name in _FILE_COLUMNS}),
                             [{**_values(opFile, _FILE_COLUMNS), "_id": opFile.FileID} for opFile in keptFiles])
            for opFile in operation:
                if opFile.FileID not in storedFiles:
                    self._insertFile(conn, operation.OperationID, opFile)

    def setRequestStatus(self, requestID: int, status: str, fromStatuses: Collection[str], error: str = "") -> bool:
        """Set a request's status (Canceled, Waiting) if it is one of ``fromStatuses``; whether it changed."""
        values: dict[str, Any] = {"Status": status, "LastUpdate": utcnow()}
        if error:
            values["Error"] = error[:255]
        with self.transaction("setRequestStatus") as conn:
            changed = conn.execute(update(requestTable).where(requestTable.c.RequestID == requestID,
                                                              requestTable.c.Status.in_(list(fromStatuses)))
                                   .values(values)).rowcount
            if not changed and conn.scalar(select(requestTable.c.Status)
                                           .where(requestTable.c.RequestID == requestID)) is None:
                raise NotFound(f"request {requestID} does not exist")
        return bool(changed)

    def deleteRequest(self, requestID: int) -> bool:
        """Remove a request with its operations and files; False when there was none."""
        with self.transaction("deleteRequest") as conn:
            return bool(conn.execute(delete(requestTable).where(requestTable.c.RequestID == requestID)).rowcount)

    def kickStuckRequests(self, assignedBefore: datetime.datetime, limit: int = 10000) -> list[int]:
        """Requests Assigned (claimed by an agent) since before ``assignedBefore``: back to Waiting (the agent
        died). Their IDs."""
        with self.transaction("kickStuckRequests") as conn:
            ids = list(conn.scalars(self.selectForUpdateSkipLocked(
                select(requestTable.c.RequestID).where(requestTable.c.Status == RequestStatus.ASSIGNED,
                                                       requestTable.c.LastUpdate < assignedBefore).limit(limit))))
            if ids:
                conn.execute(update(requestTable).where(requestTable.c.RequestID.in_(ids),
                                                        requestTable.c.Status == RequestStatus.ASSIGNED)
                             .values(Status=RequestStatus.WAITING, LastUpdate=utcnow()))
        return ids

    def deleteFinishedRequests(self, updatedBefore: datetime.datetime, statuses: Collection[str],
                               limit: int = 100) -> int:
        """Remove up to ``limit`` requests in ``statuses`` not updated since ``updatedBefore``; how many went."""
        with self.transaction("deleteFinishedRequests") as conn:
            ids = list(conn.scalars(self.selectForUpdateSkipLocked(
                select(requestTable.c.RequestID).where(requestTable.c.Status.in_(list(statuses)),
                                                       requestTable.c.LastUpdate < updatedBefore).limit(limit))))
            if ids:
                conn.execute(delete(requestTable).where(requestTable.c.RequestID.in_(ids)))
        return len(ids)

    # -- claiming ------------------------------------------------------------------------------------
    def getRequests(self, limit: int = 1, assigned: bool = True) -> list[Request]:
        """Up to ``limit`` Waiting requests due now (NotBefore passed), least recently updated first; with
        ``assigned`` they are claimed: Assigned, and no other caller gets them."""
        now = utcnow()
        with self.transaction("getRequests") as conn:
            candidates = select(requestTable.c.RequestID).where(
                requestTable.c.Status == RequestStatus.WAITING, requestTable.c.NotBefore <= now,
            ).order_by(requestTable.c.LastUpdate, requestTable.c.RequestID).limit(limit)
            ids = list(conn.scalars(self.selectForUpdateSkipLocked(candidates) if assigned else candidates))
            if ids and assigned:
                conn.execute(update(requestTable).where(requestTable.c.RequestID.in_(ids),
                                                        requestTable.c.Status == RequestStatus.WAITING)
                             .values(Status=RequestStatus.ASSIGNED, LastUpdate=now))
            requests = self._read(conn, ids)
        return [requests[requestID] for requestID in ids]

    def getRequest(self, requestID: int) -> Request:
        """Claim one given request (Waiting -> Assigned); InvalidArgument when it is not Waiting."""
        with self.transaction("getRequest") as conn:
            changed = conn.execute(update(requestTable).where(requestTable.c.RequestID == requestID,
                                                              requestTable.c.Status == RequestStatus.WAITING)
                                   .values(Status=RequestStatus.ASSIGNED, LastUpdate=utcnow())).rowcount
            requests = self._read(conn, [requestID])
        if requestID not in requests:
            raise NotFound(f"request {requestID} does not exist")
        if not changed:
            status = self.getRequestStatus(requestID)
            raise InvalidArgument(f"request {requestID} is {status}: only a Waiting request can be assigned")
        return requests[requestID]

    # -- reading -------------------------------------------------------------------------------------
    def _read(self, conn: Connection, ids: list[int]) -> dict[int, Request]:
        """{RequestID: Request} of those of ``ids`` that exist, whole."""
        if not ids:
            return {}
        requests: dict[int, Request] = {}
        for row in conn.execute(select(requestTable).where(requestTable.c.RequestID.in_(ids))).mappings():
            requests[row["RequestID"]] = Request(dict(row))
        operations: dict[int, Operation] = {}
        rows = conn.execute(select(operationTable).where(operationTable.c.RequestID.in_(ids))
                            .order_by(operationTable.c.RequestID, operationTable.c.Order)).mappings()
        for row in rows:
            operation = Operation(dict(row))
            operations[row["OperationID"]] = operation
            requests[row["RequestID"]].addOperation(operation)
        if operations:
            for row in conn.execute(select(fileTable).where(fileTable.c.OperationID.in_(list(operations)))
                                    .order_by(fileTable.c.FileID)).mappings():
                operations[row["OperationID"]].addFile(File(dict(row)))
        return requests

    def peekRequest(self, requestID: int) -> Request:
        """A request whole, without claiming it (NotFound when there is none)."""
        with self.connection("peekRequest") as conn:
            requests = self._read(conn, [requestID])
        if requestID not in requests:
            raise NotFound(f"request {requestID} does not exist")
        return requests[requestID]

    def getRequestOwners(self, requestIDs: Iterable[int]) -> dict[int, dict[str, Any]]:
        """{RequestID: {Owner, OwnerGroup, Status, JobID}} of those that exist."""
        ids = sorted({int(requestID) for requestID in requestIDs})
        with self.connection("getRequestOwners") as conn:
            rows = conn.execute(select(requestTable.c.RequestID, requestTable.c.Owner, requestTable.c.OwnerGroup,
                                       requestTable.c.Status, requestTable.c.JobID)
                                .where(requestTable.c.RequestID.in_(ids))).mappings()
            return {row["RequestID"]: dict(row) for row in rows}

    def getRequestStatus(self, requestID: int) -> str:
        """The status the DB holds (Assigned while an agent executes it)."""
        with self.connection("getRequestStatus") as conn:
            status = conn.scalar(select(requestTable.c.Status).where(requestTable.c.RequestID == requestID))
        if status is None:
            raise NotFound(f"Request {requestID} does not exist")
        return status

    def getRequestInfo(self, requestID: int) -> list[Any]:
        """DIRAC's row: [RequestID, Status, RequestName, JobID, Owner, OwnerGroup, SourceComponent, CreationTime,
        SubmitTime, LastUpdate]."""
        columns = [requestTable.c[name] for name in ("RequestID", "Status", "RequestName", "JobID", "Owner",
                                                      "OwnerGroup", "SourceComponent", "CreationTime",
                                                      "SubmitTime", "LastUpdate")]
        with self.connection("getRequestInfo") as conn:
            row = conn.execute(select(*columns).where(requestTable.c.RequestID == requestID)).first()
        if row is None:
            raise NotFound(f"No such request {requestID}")
        return list(row)

    def getRequestFileStatus(self, requestID: int, lfns: list[str]) -> dict[str, str]:
        """{lfn: status} in the request: Failed or Scheduled in any operation wins, else the last one's
        ('UNKNOWN' for a file not in it)."""
        answer = dict.fromkeys(lfns, "UNKNOWN")
        with self.connection("getRequestFileStatus") as conn:
            rows = conn.execute(select(fileTable.c.LFN, fileTable.c.Status)
                                .join(operationTable, operationTable.c.OperationID == fileTable.c.OperationID)
                                .where(operationTable.c.RequestID == requestID, fileTable.c.LFN.in_(lfns))
                                .order_by(operationTable.c.Order)).all()
        for lfn, status in rows:
            if answer[lfn] not in ("Failed", "Scheduled"):
                answer[lfn] = status
        return answer

    def _owned(self, query: Any, owner: str | None) -> Any:
        return query if owner is None else query.where(requestTable.c.Owner == owner)

    def getBulkRequestStatus(self, requestIDs: Iterable[int], owner: str | None = None) -> dict[int, str]:
        """{RequestID: status} of those that exist (and are ``owner``'s)."""
        ids = sorted({int(requestID) for requestID in requestIDs})
        with self.connection("getBulkRequestStatus") as conn:
            return dict(conn.execute(self._owned(select(requestTable.c.RequestID, requestTable.c.Status)
                                                 .where(requestTable.c.RequestID.in_(ids)), owner)).all())

    def getRequestIDForName(self, requestName: str, owner: str | None = None) -> int:
        """The ID of the request so named; NotFound, or InvalidArgument when the name is not unique."""
        with self.connection("getRequestIDForName") as conn:
            ids = list(conn.scalars(self._owned(select(requestTable.c.RequestID)
                                                .where(requestTable.c.RequestName == requestName), owner)))
        if not ids:
            raise NotFound(f"No such request {requestName}")
        if len(ids) > 1:
            raise InvalidArgument(f"RequestName {requestName} not unique ({len(ids)} matches)")
        return ids[0]

    def getRequestIDsList(self, statuses: list[str], limit: int = 100, since: datetime.datetime | None = None,
                          until: datetime.datetime | None = None, getJobID: bool = False,
                          owner: str | None = None) -> list[list[Any]]:
        """[[RequestID, Status, LastUpdate(, JobID)], ...] in ``statuses``, oldest update first."""
        columns = [requestTable.c.RequestID, requestTable.c.Status, requestTable.c.LastUpdate]
        query = select(*columns, *([requestTable.c.JobID] if getJobID else [])).where(
            requestTable.c.Status.in_(statuses))
        if since:
            query = query.where(requestTable.c.LastUpdate >= since)
        if until:
            query = query.where(requestTable.c.LastUpdate <= until)
        with self.connection("getRequestIDsList") as conn:
            rows = conn.execute(self._owned(query, owner).order_by(requestTable.c.LastUpdate).limit(limit)).all()
        return [list(row) for row in rows]

    def getRequestIDsForJobs(self, jobIDs: Iterable[int], owner: str | None = None) -> dict[str, dict[int, Any]]:
        """{"Successful": {jobID: RequestID (its latest)}, "Failed": {jobID: "Request not found"}}."""
        ids = {int(jobID) for jobID in jobIDs}
        with self.connection("getRequestIDsForJobs") as conn:
            rows = conn.execute(self._owned(select(requestTable.c.JobID, func.max(requestTable.c.RequestID))
                                            .where(requestTable.c.JobID.in_(ids)), owner)
                                .group_by(requestTable.c.JobID)).all()
        found = dict(rows)
        return {"Successful": found, "Failed": {jobID: "Request not found" for jobID in sorted(ids - set(found))}}

    def readRequestsForJobs(self, jobIDs: Iterable[int], owner: str | None = None) -> dict[str, dict[int, Any]]:
        """{"Successful": {jobID: Request}, "Failed": {jobID: "Request not found"}}."""
        found = self.getRequestIDsForJobs(jobIDs, owner)
        with self.connection("readRequestsForJobs") as conn:
            requests = self._read(conn, list(found["Successful"].values()))
        found["Successful"] = {jobID: requests[requestID] for jobID, requestID in found["Successful"].items()}
        return found

    def getDBSummary(self, owner: str | None = None) -> dict[str, dict[str, Any]]:
        """DIRAC's counts: {"Request": {status: n}, "Operation": {type: {status: n}}, "File": {status: n}}."""
        summary: dict[str, dict[str, Any]] = {"Request": {}, "Operation": {}, "File": {}}
        with self.connection("getDBSummary") as conn:
            query = select(requestTable.c.Status, func.count()).group_by(requestTable.c.Status)
            summary["Request"] = dict(conn.execute(self._owned(query, owner)).all())
            joined = operationTable.join(requestTable, requestTable.c.RequestID == operationTable.c.RequestID)
            query = select(operationTable.c.Type, operationTable.c.Status, func.count()).select_from(joined)
            for opType, status, count in conn.execute(self._owned(query, owner).group_by(
                    operationTable.c.Type, operationTable.c.Status)):
                summary["Operation"].setdefault(opType, {})[status] = count
            query = select(fileTable.c.Status, func.count()).select_from(
                fileTable.join(joined, operationTable.c.OperationID == fileTable.c.OperationID))
            summary["File"] = dict(conn.execute(self._owned(query, owner).group_by(fileTable.c.Status)).all())
        return summary
