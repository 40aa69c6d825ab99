"""InProcessComputingElement: the JobAgent's inner CE for a single-slot pilot, one payload at a time.

``submitJob`` runs the payload (the JobWrapper script) in a subprocess of its own session and
returns when it has ended: ``S_OK([reference])`` with ``ExitCode`` in the result, and DIRAC's
``PayloadFailed`` when that code is not 0. The payload runs in ``workingDirectory`` (keyword),
else the CE's ``WorkingDirectory``, else the current directory; its output goes to
``payload-<stamp>.out`` and ``.err`` there. A proxy (PEM text or a file path) is written next to
them with mode 0600 for ``X509_USER_PROXY`` and removed when the payload ends. The optional
``timeout`` keyword (seconds) is a last-resort limit; the real watchdog belongs to the JobWrapper.
Exit codes are ``subprocess``'s: negative for a payload ended by a signal.

With a fork server (``setForkServer``, see ``Core/Utilities/ForkServer.py``), a payload submitted
with the ``entryPoint`` keyword (``'module:function'``, called with ``arguments``) is started as a
fork of that pre-imported server instead of a new interpreter running the executable: same working
directory, environment, output files, proxy file and own session, much less start-up time. When the
fork server cannot start it, the executable is run as usual.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.Core.Utilities.ForkServer import ForkedProcess, ForkServer, ForkServerError
from dirac.Core.Utilities.ReturnValues import DReturnType
from dirac.Resources.Computing.ComputingElement import (
    ABORTED,
    DONE,
    FAILED,
    PILOT_FINAL_STATES,
    RUNNING,
    UNKNOWN,
    ComputingElement,
    NotEnoughSlots,
    SubmissionError,
    UnknownJobReference,
    edgeMethod,
    newStamp,
    splitStamp,
)
from dirac.Resources.Computing.ProcessUtilities import removeFiles, terminateProcessGroups, writeCredentialFile


@dataclass
class Payload:
    """One payload started by an inner CE."""

    reference: str
    process: subprocess.Popen | ForkedProcess
    processors: int
    stdout: Path
    stderr: Path
    credentials: list[Path] = field(default_factory=list)
    timeout: float | None = None
    status: str = RUNNING
    exitCode: int | None = None
    killed: bool = False


class InProcessComputingElement(ComputingElement):
    """Runs one payload at a time, synchronously, in a subprocess."""

    ceType = "InProcess"
    referenceScheme = "inprocess"

    def __init__(self, ceName: str, parameters: Mapping[str, Any] | None = None):
        super().__init__(ceName, parameters)
        self._payloads: dict[str, Payload] = {}
        self._uncollected: list[str] = []
        self._lock = threading.Condition()
        self.forkServer: ForkServer | None = None

    def setForkServer(self, forkServer: ForkServer | None) -> None:
        """Start payloads submitted with an ``entryPoint`` as forks of this server (None: never)."""
        self.forkServer = forkServer

    # -- submission ---------------------------------------------------------------------------------
    def submitJob(
        self, executableFile: str, proxy: str | bytes | None = None, numberOfJobs: int = 1, **kwargs: Any
    ) -> DReturnType[list[str]]:
        """Run the payload to its end: S_OK([reference]) with 'ExitCode' (and 'PayloadFailed' when not 0)."""
        result = super().submitJob(executableFile, proxy, numberOfJobs, **kwargs)
        if result["OK"]:
            payload = self._payloads[splitStamp(result["Value"][0])]
            result["ExitCode"] = payload.exitCode
            if payload.exitCode:
                result["PayloadFailed"] = payload.exitCode
        return result

    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any) -> list[str]:
        payload = self._startPayload(executableFile, proxy, numberOfJobs, kwargs)
        self._waitForPayload(payload)
        return [payload.reference]

    def _checkRoom(self, processors: int) -> None:
        """Raise NotEnoughSlots unless a payload needing ``processors`` can start now (lock held)."""
        if self._running():
            raise NotEnoughSlots(f"CE {self.ceName}: busy with {self._running()[0].reference}")
        if processors > self.numberOfProcessors:
            raise NotEnoughSlots(
                f"CE {self.ceName}: the payload needs {processors} processors, the slot has {self.numberOfProcessors}"
            )

    def _startPayload(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, kwargs: dict) -> Payload:
        """Reserve room for the payload and start it (in its own session, so it can be killed as a group)."""
        if numberOfJobs != 1:
            raise InvalidArgument(f"CE {self.ceName}: payloads are submitted one at a time, not {numberOfJobs}")
        processors = int(kwargs.get("numberOfProcessors", 1))
        if processors < 1:
            raise InvalidArgument(f"CE {self.ceName}: numberOfProcessors must be at least 1, not {processors}")
        workDir = Path(kwargs.get("workingDirectory") or self.getParameter("WorkingDirectory") or os.getcwd())
        workDir.mkdir(parents=True, exist_ok=True)
        executable = Path(executableFile).absolute()
        if not os.access(executable, os.X_OK):
            executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
        with self._lock:
            self._checkRoom(processors)
            stamp = newStamp()
            reference = self.makeReference(stamp)
            env = {**os.environ, **(kwargs.get("environment") or {})}
            credentials = []
            if proxy is not None:
                credentials.append(writeCredentialFile(workDir / f".proxy-{stamp}.pem", proxy))
                env["X509_USER_PROXY"] = str(credentials[-1])
            if self.token:
                credentials.append(writeCredentialFile(workDir / f".token-{stamp}", self.token.encode()))
                env["BEARER_TOKEN_FILE"] = str(credentials[-1])
            stdout, stderr = workDir / f"payload-{stamp}.out", workDir / f"payload-{stamp}.err"
            arguments = [str(argument) for argument in kwargs.get("arguments") or []]
            process = self._fork(reference, kwargs.get("entryPoint"), arguments, workDir, env, stdout, stderr)
            what = kwargs.get("entryPoint") if process is not None else executable
            if process is None:
                try:
                    with open(stdout, "wb") as out, open(stderr, "wb") as err:
                        process = subprocess.Popen([str(executable), *arguments], cwd=workDir, env=env,
                                                   stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                                   start_new_session=True, close_fds=True)
                except OSError as exc:
                    removeFiles(credentials, self.log, reference)
                    raise SubmissionError(f"{reference}: cannot start {executable}: {exc}") from exc
            payload = Payload(reference, process, processors, stdout, stderr, credentials, kwargs.get("timeout"))
            self._payloads[stamp] = payload
        self.log.info("%s: payload %s started as process %d on %d processor(s)", reference, what, process.pid,
                      processors)
        return payload

    def _fork(self, reference: str, entryPoint: str | None, arguments: list[str], workDir: Path,
              env: dict[str, str], stdout: Path, stderr: Path) -> ForkedProcess | None:
        """The payload started by the fork server, when there is one and an entry point; None otherwise."""
        if not entryPoint or self.forkServer is None:
            return None
        try:
            return self.forkServer.run(entryPoint, arguments, workDir, env, stdout, stderr)
        except ForkServerError as exc:
            self.log.warning("%s: %s; starting the executable instead", reference, exc.message)
            return None

    def _waitForPayload(self, payload: Payload) -> None:
        """Wait for the payload to end (killing it at its timeout) and record how it ended."""
        timedOut = False
        try:
            payload.process.wait(timeout=payload.timeout)
        except subprocess.TimeoutExpired:
            timedOut = True
            self.log.warning("%s: payload still running after its %s s timeout, killing it", payload.reference,
                             payload.timeout)
            terminateProcessGroups({payload.reference: payload.process.pid}, self.killGracePeriod, self.log,
                                   reap=False)
            payload.process.wait()
        exitCode = payload.process.returncode
        removeFiles(payload.credentials, self.log, payload.reference)
        with self._lock:
            payload.exitCode = exitCode
            payload.status = ABORTED if payload.killed else DONE if exitCode == 0 and not timedOut else FAILED
            self._uncollected.append(splitStamp(payload.reference))
            self._lock.notify_all()
        self.log.info("%s: payload ended with exit code %d: %s", payload.reference, exitCode, payload.status)

    # -- the interface ------------------------------------------------------------------------------
    def _running(self) -> list[Payload]:
        return [payload for payload in self._payloads.values() if payload.status == RUNNING]

    def runningReferences(self) -> list[str]:
        """References of the payloads running now (e.g. to kill them when the pilot is told to stop)."""
        with self._lock:
            return [payload.reference for payload in self._running()]

    def _payload(self, reference: str) -> Payload:
        payload = self._payloads.get(splitStamp(reference))
        if payload is None:
            raise UnknownJobReference(f"{reference}: no such payload in CE {self.ceName}")
        return payload

    def _getJobStatus(self, references: list[str]) -> dict[str, str]:
        statuses = {}
        for reference in references:
            try:
                statuses[reference] = self._payload(reference).status
            except UnknownJobReference as exc:
                self.log.warning("%s", exc.message)
                statuses[reference] = UNKNOWN
        return statuses

    def _getJobOutput(self, reference: str) -> tuple[str, str]:
        payload = self._payload(reference)
        return payload.stdout.read_text(errors="replace"), payload.stderr.read_text(errors="replace")

    def _killJobs(self, references: list[str]) -> None:
        payloads = [self._payload(reference) for reference in references]
        groups = {}
        with self._lock:
            for payload in payloads:
                if payload.status == RUNNING:
                    payload.killed = True
                    groups[payload.reference] = payload.process.pid
                    self.log.info("%s: killing payload process group %d", payload.reference, payload.process.pid)
        terminateProcessGroups(groups, self.killGracePeriod, self.log, reap=False)
        with self._lock:
            # the thread waiting for each payload records its end; give it a moment to do so
            self._lock.wait_for(lambda: all(p.status in PILOT_FINAL_STATES for p in payloads), timeout=5)

    def _getCEStatus(self) -> dict[str, Any]:
        with self._lock:
            running = self._running()
            used = sum(payload.processors for payload in running)
        return {
            "RunningJobs": len(running),
            "WaitingJobs": 0,
            "UsedProcessors": used,
            "AvailableProcessors": max(0, self.numberOfProcessors - used),
        }

    def _freeSlots(self, status: Mapping[str, Any]) -> int:
        """One payload at a time: 1 when idle, else 0."""
        return 0 if status["RunningJobs"] else 1

    @edgeMethod
    def collectFinishedJobs(self, timeout: float | None = 0) -> dict[str, int]:
        """S_OK({reference: exit code}) of the payloads ended since the last call, waiting up to ``timeout`` s for one.

        ``timeout=None`` waits until a payload ends (returns at once when none is running).
        """
        with self._lock:
            if timeout != 0:
                self._lock.wait_for(lambda: self._uncollected or not self._running(), timeout=timeout)
            stamps, self._uncollected = self._uncollected, []
            return {self._payloads[stamp].reference: self._payloads[stamp].exitCode for stamp in stamps}
