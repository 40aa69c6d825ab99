"""JobReport: status records and parameters of one job, buffered and sent in order.

Every record gets a UTC time stamp when it is made (strictly increasing, so none is lost in the
bulk dictionary); ``flush`` sends everything pending with one ``setJobStatusBulk`` and one
``setJobParameters`` call, ``commit`` retries with a doubling delay while the server cannot be
reached. What the server refuses (an illegal status change, e.g. after the job was killed) is
not retried: it is logged and kept in ``rejected``. ``dump`` writes what is left to a JSON file
so that nothing is lost silently.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dirac.Core.Tornado.Client import TRANSIENT_ERRNOS, isTransient  # noqa: F401 (re-exported)
from dirac.Core.Utilities.Logging import getLogger

log = getLogger("WorkloadManagement/JobReport")

MAX_RETRY_DELAY = 60.0
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class JobReport:
    """Status and parameter reports of one job to WorkloadManagement/JobStateUpdate."""

    def __init__(self, jobID: int, client: Any, source: str = "JobWrapper", retryDelay: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.jobID = int(jobID)
        self.client = client
        self.source = source
        self.retryDelay = retryDelay
        self._sleep = sleep
        self._statuses: list[tuple[str, dict[str, str]]] = []
        self._parameters: list[list[str]] = []
        self.rejected: list[dict[str, Any]] = []
        self._lastTime = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        self._lock = threading.RLock()
        self._nextAttempt = 0.0
        self._backoff = retryDelay

    # -- recording ---------------------------------------------------------------------------------
    def _timestamp(self) -> str:
        now = datetime.datetime.now(datetime.UTC)
        if now <= self._lastTime:
            now = self._lastTime + datetime.timedelta(microseconds=1)
        self._lastTime = now
        return now.strftime(TIME_FORMAT)

    def setJobStatus(self, status: str = "", minorStatus: str = "", applicationStatus: str = "",
                     sendFlag: bool = True) -> bool:
        """Record a status change (empty fields stay as they are); with sendFlag, try to send now."""
        record = {name: value for name, value in (("Status", status), ("MinorStatus", minorStatus),
                                                  ("ApplicationStatus", applicationStatus)) if value}
        if record:
            with self._lock:
                self._statuses.append((self._timestamp(), {**record, "Source": self.source}))
        return self.flush() if sendFlag else not self.pending

    def setApplicationStatus(self, applicationStatus: str, sendFlag: bool = True) -> bool:
        """Record an application status; with sendFlag, try to send now."""
        return self.setJobStatus(applicationStatus=applicationStatus, sendFlag=sendFlag)

    def setJobParameters(self, parameters: Iterable[tuple[str, Any]], sendFlag: bool = True) -> bool:
        """Record job parameters (values are sent as text); with sendFlag, try to send now."""
        with self._lock:
            self._parameters += [[str(name), str(value)] for name, value in parameters]
        return self.flush() if sendFlag else not self.pending

    def setJobParameter(self, name: str, value: Any, sendFlag: bool = True) -> bool:
        return self.setJobParameters([(name, value)], sendFlag)

    @property
    def pending(self) -> bool:
        """Whether some records are still to be sent."""
        with self._lock:
            return bool(self._statuses or self._parameters)

    # -- sending -----------------------------------------------------------------------------------
    def flush(self, force: bool = False, withParameters: bool = True) -> bool:
        """One attempt to send everything pending (only the statuses without ``withParameters``), oldest first;
        True when nothing is left to send.

        After a failure to reach the server, attempts are spaced by a doubling delay (so that a
        job does not wait on a dead server at every step); ``force`` tries at once anyway.
        """
        with self._lock:
            if not (self._statuses or (withParameters and self._parameters)):
                return not self.pending
            if not force and time.monotonic() < self._nextAttempt:
                return False
            if self._send(withParameters):
                self._nextAttempt, self._backoff = 0.0, self.retryDelay
                return not self.pending
            self._nextAttempt = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_RETRY_DELAY)
            return False

    def _send(self, withParameters: bool = True) -> bool:
        """Statuses first, then (``withParameters``) parameters; False when the server could not be reached."""
        with self._lock:
            if self._statuses and not self._sendStatuses():
                return False
            if withParameters and self._parameters:
                result = self.client.setJobParameters(self.jobID, self._parameters)
                if isTransient(result):
                    log.warning("Job %d: %d parameter(s) not sent, will retry: %s", self.jobID,
                                len(self._parameters), result["Message"])
                    return False
                if not result["OK"]:
                    self._reject({"Parameters": self._parameters}, result)
                self._parameters = []
            return True

    def _sendStatuses(self) -> bool:
        """Send the pending status records in one bulk; False when the server could not be reached (records kept).

        The server applies the records in time order and stops at the first one it refuses (e.g. a
        change the state machine forbids because the job was killed meanwhile): the whole bulk is
        then kept in ``rejected``, since the records after the refused one were not applied.
        """
        result = self.client.setJobStatusBulk(self.jobID, dict(self._statuses), False)
        if isTransient(result):
            log.warning("Job %d: %d status record(s) not sent, will retry: %s", self.jobID, len(self._statuses),
                        result["Message"])
            return False
        if not result["OK"]:
            self._reject({"StatusBulk": dict(self._statuses)}, result)
        self._statuses = []
        return True

    def _reject(self, what: dict[str, Any], result: dict[str, Any]) -> None:
        log.error("Job %d: the server refused %s: %s", self.jobID, what, result["Message"])
        self.rejected.append({"Report": what, "Message": result["Message"]})

    def commit(self, timeout: float) -> bool:
        """Send everything pending, retrying with a doubling delay for up to ``timeout`` seconds; True when all sent."""
        deadline = time.monotonic() + timeout
        delay = self.retryDelay
        while not self.flush(force=True):
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("Job %d: reports still not sent after %.0f s", self.jobID, timeout)
                return False
            self._sleep(min(delay, left))
            delay = min(delay * 2, MAX_RETRY_DELAY)
        return True

    # -- handing over ------------------------------------------------------------------------------
    def pendingCalls(self) -> list[tuple[str, list[Any]]]:
        """The calls that would deliver what is pending, in order: [(method, args)], as DIRAC's
        ``generateForwardDISET`` turns them into ForwardDISET operations."""
        with self._lock:
            calls: list[tuple[str, list[Any]]] = []
            if self._statuses:
                calls.append(("setJobStatusBulk", [self.jobID, dict(self._statuses), False]))
            if self._parameters:
                calls.append(("setJobParameters", [self.jobID, [list(pair) for pair in self._parameters]]))
            return calls

    def handedOver(self) -> None:
        """What was pending is delivered by someone else (a request replays it): forget it."""
        with self._lock:
            self._statuses, self._parameters = [], []

    # -- last resort -------------------------------------------------------------------------------
    def pendingReports(self) -> dict[str, Any]:
        """What was not delivered: {'JobID', 'StatusBulk' (as setJobStatusBulk takes it), 'Parameters', 'Rejected'}."""
        with self._lock:
            return {"JobID": self.jobID, "StatusBulk": dict(self._statuses), "Parameters": list(self._parameters),
                    "Rejected": list(self.rejected)}

    def dump(self, path: str | Path, **extra: Any) -> Path:
        """Write the undelivered and refused reports (and ``extra`` keys) to ``path`` (JSON) and return it."""
        path = Path(path)
        path.write_text(json.dumps({**self.pendingReports(), **extra}, indent=2, sort_keys=True))
        log.error("Job %d: undelivered reports written to %s", self.jobID, path)
        return path
