"""Executing one request: its operations in order, each through its handler, until one is not finished.

``RequestTask(request, credentials).run()`` changes the request in place (file, operation and request
statuses, errors, attempts); the caller writes it back. Operations run while the previous ones are
Done: one that stays Waiting (a file to retry) or fails stops the run. A handler that cannot be loaded,
an owner whose credentials cannot be fetched now, or a handler that raises leaves the operation Waiting
with the reason; an owner with no credential at all fails it (as DIRAC fails the request of a user
without proxy). ``retryDelay`` gives the back-off before the next run.
"""

from __future__ import annotations

import datetime
from typing import Any

from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Core.Utilities.Logging import getLogger
from dirac.RequestManagementSystem.Client import Operation as OperationStatus
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.Logic.OperationHandlers import AGENT, handlerClass, handlersSection
from dirac.RequestManagementSystem.Logic.OwnerCredentials import CredentialsUnavailable, NoOwnerCredentials

log = getLogger("RequestManagement/RequestTask")


class RequestTask:
    """One run of one request."""

    def __init__(self, request: Request, credentials: Any, agentName: str = AGENT):
        self.request = request
        self.credentials = credentials
        self.agentName = agentName

    def run(self) -> None:
        """Run the request's operations from the current one on, as far as they get."""
        request = self.request
        section = handlersSection(self.agentName)
        while (operation := request.currentOperation()) is not None \
                and operation.ownStatus() == OperationStatus.WAITING:
            where = f"request {request.RequestID} ({request.RequestName}) operation {operation.Order} {operation.Type}"
            try:
                handler = handlerClass(operation.Type, self.agentName)(operation, request, f"{section}/{operation.Type}",
                                                                         self.credentials)
                handler()
            except NoOwnerCredentials as exc:
                operation.fail(exc.message)
                log.error("%s: Failed: %s", where, exc.message)
            except (ConfigurationError, CredentialsUnavailable) as exc:
                operation.Error = exc.message[:255]
                log.error("%s: not run, to retry: %s", where, exc.message)
                break
            except Exception as exc:
                operation.Error = f"{type(exc).__name__}: {exc}"[:255]
                log.exception("%s: the handler failed, to retry", where)
                break
            if operation.ownStatus() != OperationStatus.DONE:
                break
        request.Error = self.error()

    def error(self) -> str:
        """Why the request is not Done: the error of its current (or failed) operation or of one of its files."""
        for operation in self.request:
            if operation.ownStatus() == OperationStatus.DONE:
                continue
            errors = [operation.Error] + [f"{opFile.LFN}: {opFile.Error}" for opFile in operation if opFile.Error
                                          and opFile.Status != "Done"]
            return next((error for error in errors if error), "")[:255]
        return ""

    def retryDelay(self, first: float, longest: float) -> datetime.timedelta:
        """The back-off before the next run: ``first`` seconds, doubling with each attempt of the current
        operation's files (or of the operation itself), at most ``longest``."""
        operation = self.request.currentOperation()
        attempts = 0
        if operation is not None:
            attempts = max([opFile.Attempt for opFile in operation.waitingFiles()] or [operation.Attempt])
        return datetime.timedelta(seconds=min(first * 2 ** max(attempts - 1, 0), longest))
