"""Request: operations to carry out later, in order, for an owner (DIRAC's RMS ``Request``).

A request's status follows its operations, read in order:

* every operation Done: ``Done``;
* the first one not Done is Failed: ``Failed`` (the later ones never run);
* it is pending: ``Waiting`` (that operation is the next to run, the later ones are ``Queued``);
* it is Scheduled: ``Scheduled``.

``Canceled`` is set by hand and sticks. ``Assigned`` (being executed by an agent) exists only in
the ReqDB: ``ReqClient.getRequestStatus`` shows it. ``NotBefore`` holds a request back until then
(the agent's retry back-off). The JSON form is DIRAC's (``toJSON``), times as naive UTC
``YYYY-mm-dd HH:MM:SS``. Standard library and project Core only: the JobWrapper builds requests.

Example, DIRAC's failover of a job output (what the JobWrapper registers)::

    request = Request(RequestName="job_12", JobID=12)
    replicate = Operation(Type="ReplicateAndRegister", TargetSE="OneBox-SE", SourceSE="OneBox-Failover")
    replicate.addFile(File(LFN="/dirac/user/b/bob/0/12/out.dat", Checksum="0a1b2c3d", ChecksumType="ADLER32"))
    remove = Operation(Type="RemoveReplica", TargetSE="OneBox-Failover")
    remove.addFile(File(LFN="/dirac/user/b/bob/0/12/out.dat"))
    request.addOperation(replicate)
    request.addOperation(remove)
    ReqClient().putRequest(request)      # S_OK(requestID)
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.Core.Utilities.ReturnValues import S_OK, DReturnType
from dirac.RequestManagementSystem.Client import Operation as OperationStatus
from dirac.RequestManagementSystem.Client.Operation import Operation, timeText, toDatetime, utcnow

WAITING = "Waiting"
FAILED = "Failed"
DONE = "Done"
SCHEDULED = "Scheduled"
ASSIGNED = "Assigned"
CANCELED = "Canceled"
ALL_STATES = (WAITING, FAILED, DONE, SCHEDULED, ASSIGNED, CANCELED)
FINAL_STATES = (DONE, FAILED, CANCELED)
#: the attributes of a Request in DIRAC's JSON (v9: Owner is the user name), in its order
JSON_ATTRIBUTES = ("RequestID", "RequestName", "Owner", "OwnerGroup", "Status", "Error", "SourceComponent", "JobID",
                   "CreationTime", "SubmitTime", "LastUpdate", "NotBefore")
TIME_ATTRIBUTES = ("CreationTime", "SubmitTime", "LastUpdate", "NotBefore")


class Request:
    """A named list of operations with an owner, executed in order by the RequestExecutingAgent."""

    def __init__(self, fromDict: dict[str, Any] | str | None = None, **attributes: Any):
        if isinstance(fromDict, str):
            try:
                fromDict = json.loads(fromDict)
            except ValueError as exc:
                raise InvalidArgument(f"a request's JSON cannot be read: {exc}") from exc
        if fromDict is not None and not isinstance(fromDict, dict):
            raise InvalidArgument(f"a request is a JSON object, got {type(fromDict).__name__}")
        now = utcnow()
        self.RequestID: int | None = None
        self.RequestName = ""
        self.Owner = ""
        self.OwnerGroup = ""
        #: DIRAC v8 clients name the owner by DN: kept when they do (the service finds the user name)
        self.OwnerDN = ""
        self._status = WAITING
        self.Error = ""
        self.SourceComponent = ""
        self.JobID = 0
        self.CreationTime: datetime.datetime | None = now
        self.SubmitTime: datetime.datetime | None = now
        self.LastUpdate: datetime.datetime | None = now
        self.NotBefore: datetime.datetime | None = now
        self._operations: list[Operation] = []
        values = {**(fromDict or {}), **attributes}
        for opDict in values.pop("Operations", None) or []:
            self.addOperation(opDict if isinstance(opDict, Operation) else Operation(opDict))
        for name, value in values.items():
            if name in (*JSON_ATTRIBUTES, "OwnerDN") and value not in (None, ""):
                setattr(self, name, toDatetime(value) if name in TIME_ATTRIBUTES else value)
        self.JobID = int(self.JobID or 0)
        if isinstance(self.SourceComponent, bytes):
            self.SourceComponent = self.SourceComponent.decode()

    # -- operations ----------------------------------------------------------------------------------
    def addOperation(self, operation: Operation) -> DReturnType[None]:
        """Append an operation (run after those already in)."""
        if operation in self._operations:
            raise InvalidArgument(f"{operation} is already in request {self.RequestName}")
        operation._parent = self
        self._operations.append(operation)
        return S_OK()

    def __iadd__(self, operation: Operation) -> Request:
        self.addOperation(operation)
        return self

    def insertBefore(self, newOperation: Operation, existing: Operation) -> DReturnType[None]:
        """Insert ``newOperation`` just before ``existing``."""
        if existing not in self._operations or newOperation in self._operations:
            raise InvalidArgument("insertBefore needs an operation of this request and a new one")
        newOperation._parent = self
        self._operations.insert(self._operations.index(existing), newOperation)
        return S_OK()

    def insertAfter(self, newOperation: Operation, existing: Operation) -> DReturnType[None]:
        """Insert ``newOperation`` just after ``existing``."""
        if existing not in self._operations or newOperation in self._operations:
            raise InvalidArgument("insertAfter needs an operation of this request and a new one")
        newOperation._parent = self
        self._operations.insert(self._operations.index(existing) + 1, newOperation)
        return S_OK()

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations)

    def __len__(self) -> int:
        return len(self._operations)

    def __getitem__(self, index: int) -> Operation:
        return self._operations[index]

    def __bool__(self) -> bool:
        return True

    def isEmpty(self) -> bool:
        return not self._operations

    def indexOf(self, operation: Operation) -> int:
        """The execution order of ``operation`` (-1 when not in this request)."""
        return self._operations.index(operation) if operation in self._operations else -1

    def subStatusList(self) -> list[str]:
        return [operation.Status for operation in self._operations]

    # -- status -------------------------------------------------------------------------------------
    def currentOperation(self) -> Operation | None:
        """The operation to run next (pending or Scheduled); None when the request is over."""
        for operation in self._operations:
            status = operation.ownStatus()
            if status == OperationStatus.DONE:
                continue
            return operation if status in (OperationStatus.WAITING, OperationStatus.SCHEDULED) else None
        return None

    def getWaiting(self) -> DReturnType[Operation | None]:
        """DIRAC's name: S_OK(the operation to run next, or None)."""
        return S_OK(self.currentOperation())

    @property
    def Status(self) -> str:
        if self._status == CANCELED:
            return CANCELED
        for operation in self._operations:
            status = operation.ownStatus()
            if status == OperationStatus.DONE:
                continue
            return {OperationStatus.WAITING: WAITING, OperationStatus.SCHEDULED: SCHEDULED,
                    OperationStatus.CANCELED: CANCELED}.get(status, FAILED)
        return DONE if self._operations else WAITING

    @Status.setter
    def Status(self, value: str) -> None:
        """Only ``Canceled`` sticks; the other statuses follow the operations."""
        if value not in ALL_STATES:
            raise InvalidArgument(f"unknown Request status {value!r} (known: {', '.join(ALL_STATES)})")
        self._status = value

    def delayNextExecution(self, minutes: float) -> DReturnType[None]:
        """Hold the request back for ``minutes`` (DIRAC's name)."""
        self.NotBefore = utcnow() + datetime.timedelta(minutes=minutes)
        return S_OK()

    # -- JSON and digest --------------------------------------------------------------------------------
    def toDict(self) -> dict[str, Any]:
        """The request as DIRAC's JSON has it, its operations under ``Operations``."""
        data = {name: (timeText(getattr(self, name)) if name in TIME_ATTRIBUTES else getattr(self, name))
                for name in JSON_ATTRIBUTES}
        if self.OwnerDN:
            data["OwnerDN"] = self.OwnerDN
        data["Operations"] = [operation.toDict() for operation in self._operations]
        return data

    def toJSON(self) -> DReturnType[str]:
        """S_OK(the JSON text), as DIRAC's Request.toJSON."""
        return S_OK(json.dumps(self.toDict()))

    def getDigest(self) -> DReturnType[str]:
        """S_OK(DIRAC's one-line-per-operation summary), e.g. ``Name:job_12`` then
        ``ReplicateAndRegister:ReplicateAndRegister:Waiting:0:OneBox-SE:/dirac/a...+<2 files>``."""
        lines = [f"Name:{self.RequestName}"]
        for operation in self._operations:
            parts = [operation.Type, operation.Type, operation.Status, str(operation.Order)]
            parts += [value for value in (operation.TargetSE, operation.Catalog) if value]
            if len(operation):
                parts.append(operation[0].LFN + (f"...+<{len(operation) - 1} files>" if len(operation) > 1 else ""))
            lines.append(":".join(parts))
        return S_OK("\n".join(lines))

    def __repr__(self) -> str:
        return f"Request({self.RequestID}, {self.RequestName!r}, {self.Status}, {len(self)} operation(s))"
