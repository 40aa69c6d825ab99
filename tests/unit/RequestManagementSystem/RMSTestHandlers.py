"""Operation handlers for the agent's tests, plugged in through the CS (``OperationHandlers/<Type>/Location``)
like an extension's: they record what ran and succeed, fail for a while, or fail for good."""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from dirac.Core.Utilities.Exceptions import NotFound
from dirac.RequestManagementSystem.Agent.OperationHandlerBase import OperationHandlerBase
from dirac.RequestManagementSystem.Client import Request as RequestStatus

RUNS: list[tuple[int, str, str]] = []  # (RequestID, operation Type, LFN or '') of every run
LOCK = threading.Lock()


class Recording(OperationHandlerBase):
    """Every Waiting file Done (an operation without files: Done), after a short pause."""

    def execute(self) -> None:
        time.sleep(0.01)  # overlaps concurrent agents
        with LOCK:
            RUNS.extend((self.request.RequestID, self.operation.Type, opFile.LFN) for opFile in self.waitingFiles)
            if not len(self.operation):
                RUNS.append((self.request.RequestID, self.operation.Type, ""))
        for opFile in self.waitingFiles:
            self.fileDone(opFile)
        if not len(self.operation):
            self.operation.Status = "Done"


class Flaky(OperationHandlerBase):
    """A file fails with a passing reason until its third attempt."""

    def execute(self) -> None:
        for opFile in self.waitingFiles:
            if opFile.Attempt < 3:
                self.fileFailed(opFile, "SE-X is not available (connection refused)")
            else:
                self.fileDone(opFile)


class Broken(OperationHandlerBase):
    """Files that do not exist: Failed at once."""

    PERMANENT_ERRORS: ClassVar[tuple[str, ...]] = ("No such file or directory",)

    def execute(self) -> None:
        for opFile in self.waitingFiles:
            self.fileFailed(opFile, "No such file or directory")


class CanceledMeanwhile(Recording):
    """Its owner cancels the request while it runs (through the DB the test gives it)."""

    db = None

    def execute(self) -> None:
        type(self).db.setRequestStatus(self.request.RequestID, RequestStatus.CANCELED, {RequestStatus.ASSIGNED})
        super().execute()


class Raising(OperationHandlerBase):
    """A handler with a bug."""

    def execute(self) -> None:
        raise NotFound("a bug in the handler")
