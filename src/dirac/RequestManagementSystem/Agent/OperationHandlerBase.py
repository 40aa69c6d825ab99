"""The base of operation handlers: the plug-ins that carry out one operation type for the RequestExecutingAgent.

A handler is made for one run of one operation and called::

    class RemoveFile(OperationHandlerBase):
        def execute(self) -> None:
            for opFile in self.waitingFiles:
                ...                                   # opFile.Status = "Done", or self.fileFailed(opFile, reason)

Rules the base applies around ``execute``:

* each Waiting file's ``Attempt`` (an operation without files: its own ``Attempt``) grows by one before
  the run; a file still Waiting after ``MaxAttempts`` runs (the handler's CS option, default 256 as in
  DIRAC) is Failed with its last error;
* ``fileFailed(opFile, reason)`` fails the file at once when the reason is permanent (``permanent``
  decides), else leaves it Waiting with the reason as its Error: it is retried after the agent's back-off;
* ``clientOptions()`` are those of the request's owner (proxy or token, see Logic/OwnerCredentials):
  whatever the handler does on storage and catalogs, it does as the owner.

Options live in ``<agent section>/OperationHandlers/<Type>`` (``Location``, ``MaxAttempts``, ...).
"""

from __future__ import annotations

from typing import Any, ClassVar

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Logging import getLogger
from dirac.RequestManagementSystem.Client import Operation as OperationStatus
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.Request import Request

DEFAULT_MAX_ATTEMPTS = 256


class OperationHandlerBase:
    """Carries out one operation of a request (subclasses implement ``execute``)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {"MaxAttempts": DEFAULT_MAX_ATTEMPTS}
    #: reasons (substrings) after which trying again is pointless: the file fails at once
    PERMANENT_ERRORS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, operation: Operation, request: Request, csPath: str = "", credentials: Any = None):
        self.operation = operation
        self.request = request
        self.csPath = csPath
        self.credentials = credentials
        self.log = getLogger(f"RequestManagement/{operation.Type or type(self).__name__}")

    def getOption(self, name: str, default: Any = None) -> Any:
        """The handler's option ``name`` (``<csPath>/<name>``), cast to the default's type."""
        default = self.DEFAULTS.get(name) if default is None else default
        return gConfig.getValue(f"{self.csPath}/{name}", default) if self.csPath else default

    @property
    def where(self) -> str:
        """'request 12 (job_7) operation 0 ReplicateAndRegister', for log lines."""
        return (f"request {self.request.RequestID} ({self.request.RequestName}) operation {self.operation.Order} "
                f"{self.operation.Type}")

    @property
    def waitingFiles(self) -> list[File]:
        return self.operation.waitingFiles()

    def clientOptions(self) -> dict[str, Any]:
        """RPC and DataManager options acting as the request's owner."""
        return self.credentials.clientOptions(self.request.Owner, self.request.OwnerGroup)

    def permanent(self, reason: str) -> bool:
        """Whether a failure for ``reason`` will not go away by trying again."""
        return any(pattern in reason for pattern in self.PERMANENT_ERRORS)

    def fileFailed(self, opFile: File, reason: str) -> None:
        """``opFile`` failed this time: Failed when the reason is permanent, else Waiting for the next attempt."""
        if self.permanent(reason):
            opFile.fail(reason)
            self.log.warning("%s: %s Failed: %s", self.where, opFile.LFN, reason)
        else:
            opFile.Error = reason[:255]
            self.log.info("%s: %s to retry (attempt %d): %s", self.where, opFile.LFN, opFile.Attempt, reason)

    def fileDone(self, opFile: File) -> None:
        opFile.Status = "Done"
        self.log.info("%s: %s Done", self.where, opFile.LFN)

    def __call__(self) -> None:
        """One run: attempts counted, ``execute``, then what reached MaxAttempts is Failed."""
        files = self.waitingFiles
        for opFile in files:
            opFile.Attempt += 1
        if not len(self.operation):
            self.operation.Attempt += 1
        self.execute()
        maxAttempts = int(self.getOption("MaxAttempts"))
        for opFile in self.waitingFiles:
            if opFile.Attempt >= maxAttempts:
                opFile.fail(f"{opFile.Error or 'not done'} (Failed after {opFile.Attempt} attempts)")
        if not len(self.operation) and self.operation.ownStatus() == OperationStatus.WAITING \
                and self.operation.Attempt >= maxAttempts:
            self.operation.fail(f"{self.operation.Error or 'not done'} (Failed after {self.operation.Attempt} "
                                "attempts)")

    def execute(self) -> None:
        """Process the operation's Waiting files (or the operation itself when it has none)."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")
