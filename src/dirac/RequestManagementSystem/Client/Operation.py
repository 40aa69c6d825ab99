"""Operation: one step of a request, e.g. replicate these files to that SE (DIRAC's RMS ``Operation``).

Statuses: ``Queued`` (waiting behind an earlier operation), ``Waiting`` (the next one to run),
``Scheduled``, ``Assigned``, ``Done``, ``Failed``, ``Canceled``. An operation with files takes its
status from them:

* every file Failed, or some Failed and none left to do: ``Failed``;
* a file Scheduled: ``Scheduled``; a file still Waiting: pending;
* otherwise (all Done): ``Done``.

A pending operation is ``Waiting`` when it is its request's next one, else ``Queued``. An
operation without files (``ForwardDISET``) has the status its handler gives it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.RequestManagementSystem.Client import File as FileStatus
from dirac.RequestManagementSystem.Client.File import File

QUEUED = "Queued"
WAITING = "Waiting"
SCHEDULED = "Scheduled"
ASSIGNED = "Assigned"
FAILED = "Failed"
DONE = "Done"
CANCELED = "Canceled"
ALL_STATES = (QUEUED, WAITING, SCHEDULED, ASSIGNED, FAILED, DONE, CANCELED)
FINAL_STATES = (FAILED, DONE, CANCELED)
#: files one operation may hold (DIRAC's Operation.MAX_FILES)
MAX_FILES = 10000
#: the attributes of an Operation in DIRAC's JSON, in its order; ``Attempt`` (runs of an operation without
#: files, for the retry back-off) is ours, a DIRAC client keeps it as an unused attribute
JSON_ATTRIBUTES = ("OperationID", "RequestID", "Type", "Status", "Arguments", "Order", "SourceSE", "TargetSE",
                   "Catalog", "Error", "CreationTime", "SubmitTime", "LastUpdate", "Attempt")
TIME_ATTRIBUTES = ("CreationTime", "SubmitTime", "LastUpdate")
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def utcnow() -> datetime.datetime:
    """Now, UTC, to the second (as DIRAC keeps request times)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def toDatetime(value: datetime.datetime | str | None) -> datetime.datetime | None:
    """An aware UTC datetime from DIRAC's ``YYYY-mm-dd HH:MM:SS`` text (sub-seconds ignored) or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.strptime(value.split(".")[0], DATETIME_FORMAT)
        except ValueError as exc:
            raise InvalidArgument(f"{value!r} is not a time as YYYY-mm-dd HH:MM:SS") from exc
    if not isinstance(value, datetime.datetime):
        raise InvalidArgument(f"{value!r} is not a time")
    return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)


def timeText(value: datetime.datetime | None) -> str | None:
    """DIRAC's JSON text of a time (naive UTC)."""
    return value.astimezone(datetime.UTC).strftime(DATETIME_FORMAT) if value else None


def splitList(value: str | list[str] | None) -> list[str]:
    """'A, B' or ['A', 'B'] -> ['A', 'B']."""
    items = value.split(",") if isinstance(value, str) else (value or [])
    return [str(item).strip() for item in items if str(item).strip()]


class Operation:
    """A step of a request and the files it acts on."""

    def __init__(self, fromDict: dict[str, Any] | None = None, **attributes: Any):
        now = utcnow()
        self.OperationID: int | None = None
        self.RequestID: int | None = None
        self.Type = ""
        self._status = QUEUED
        self._arguments = ""
        self._order = 0
        self.SourceSE = ""
        self.TargetSE = ""
        self._catalog = ""
        self.Error = ""
        self.CreationTime: datetime.datetime | None = now
        self.SubmitTime: datetime.datetime | None = now
        self.LastUpdate: datetime.datetime | None = now
        self.Attempt = 0
        self._files: list[File] = []
        self._parent: Any = None
        values = {**(fromDict or {}), **attributes}
        for fileDict in values.pop("Files", None) or []:
            self.addFile(fileDict if isinstance(fileDict, File) else File(fileDict))
        for name, value in values.items():
            if name in JSON_ATTRIBUTES and value not in (None, ""):
                setattr(self, name, toDatetime(value) if name in TIME_ATTRIBUTES else value)

    # -- files -------------------------------------------------------------------------------------
    def addFile(self, opFile: File) -> None:
        """Add a file (a File object belongs to one operation only)."""
        if len(self._files) >= MAX_FILES:
            raise InvalidArgument(f"an operation holds at most {MAX_FILES} files")
        if opFile._parent is not None and opFile._parent is not self:
            raise InvalidArgument(f"{opFile.LFN} already belongs to another operation")
        if opFile not in self._files:
            opFile._parent = self
            self._files.append(opFile)

    def __iadd__(self, opFile: File) -> Operation:
        self.addFile(opFile)
        return self

    def __iter__(self) -> Iterator[File]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index: int) -> File:
        return self._files[index]

    def __bool__(self) -> bool:
        return True

    def fileStatusList(self) -> list[str]:
        return [opFile.Status for opFile in self._files]

    def waitingFiles(self) -> list[File]:
        """The files still to process."""
        return [opFile for opFile in self._files if opFile.Status == FileStatus.WAITING]

    # -- status ------------------------------------------------------------------------------------
    def ownStatus(self) -> str:
        """Done, Failed, Scheduled, Canceled, or Waiting for a pending operation (whatever its place)."""
        if not self._files:
            return WAITING if self._status in (QUEUED, WAITING, ASSIGNED) else self._status
        statuses = set(self.fileStatusList())
        if statuses == {FileStatus.FAILED}:
            return FAILED
        if FileStatus.SCHEDULED in statuses:
            return SCHEDULED
        if FileStatus.WAITING in statuses:
            return WAITING
        return FAILED if FileStatus.FAILED in statuses else DONE

    @property
    def Status(self) -> str:
        status = self.ownStatus()
        if status == WAITING:
            return WAITING if self._parent is not None and self._parent.currentOperation() is self else QUEUED
        return status

    @Status.setter
    def Status(self, value: str) -> None:
        """The status of an operation without files; one with files follows them (the value is then ignored)."""
        if value not in ALL_STATES:
            raise InvalidArgument(f"unknown Operation status {value!r} (known: {', '.join(ALL_STATES)})")
        if value == DONE:
            self.Error = ""
        self._status = value

    @property
    def Order(self) -> int:
        return self._parent.indexOf(self) if self._parent is not None else self._order

    @Order.setter
    def Order(self, value: int) -> None:
        self._order = int(value)

    @property
    def Arguments(self) -> str:
        """Text (a DEncoded RPC stub for ForwardDISET); bytes given are decoded as UTF-8."""
        return self._arguments

    @Arguments.setter
    def Arguments(self, value: str | bytes | None) -> None:
        if isinstance(value, bytes):
            value = value.decode(errors="surrogateescape")
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(f"Arguments should be text or bytes, got {type(value).__name__}")
        self._arguments = value or ""

    @property
    def Catalog(self) -> str:
        return self._catalog

    @Catalog.setter
    def Catalog(self, value: str | list[str] | None) -> None:
        catalogs = ",".join(dict.fromkeys(splitList(value)))
        if len(catalogs) > 255:
            raise InvalidArgument("Catalog list too long (255 characters at most)")
        self._catalog = catalogs

    @property
    def targetSEList(self) -> list[str]:
        return splitList(self.TargetSE)

    @property
    def sourceSEList(self) -> list[str]:
        return splitList(self.SourceSE)

    @property
    def catalogList(self) -> list[str]:
        return splitList(self.Catalog)

    def fail(self, reason: str) -> None:
        """Failed with ``reason``: an operation without files, or each file still to do."""
        self.Error = reason[:255]
        if not self._files:
            self._status = FAILED
        for opFile in self.waitingFiles():
            opFile.fail(reason)

    def toDict(self) -> dict[str, Any]:
        """The Operation as DIRAC's JSON has it, its files under ``Files``."""
        data = {name: (timeText(getattr(self, name)) if name in TIME_ATTRIBUTES else getattr(self, name))
                for name in JSON_ATTRIBUTES}
        data["Files"] = [opFile.toDict() for opFile in self._files]
        return data

    def __repr__(self) -> str:
        return f"Operation({self.Type}, {self.Status}, {len(self)} file(s))"
