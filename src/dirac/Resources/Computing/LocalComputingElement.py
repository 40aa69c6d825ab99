"""LocalComputingElement: pilots as detached local processes, one working directory each (the one-box site).

Each pilot gets ``<WorkingDirectory>/<stamp>/`` holding a copy of the executable, ``std.out``,
``std.err``, ``pilot.json`` (pid and process start time), ``proxy.pem`` (mode 0600, pointed to by
``X509_USER_PROXY``) when a proxy is given, ``token`` (``BEARER_TOKEN_FILE``) when the CE has a
token, and ``exit_code`` once the pilot has ended. Everything needed to answer ``getJobStatus``
is on disk, so a new CE object on the same directory (a restarted SiteDirector) sees the same
statuses. Statuses: Running; Done (exit code 0); Failed (non-zero); Aborted (killed, or gone
without an exit code). The proxy may be PEM text or the path of a PEM file.

With ``BatchSystem = Slurm`` (or another batch system) the pilots are batch jobs submitted on this
host instead: the factory then builds a ``LocalBatchComputingElement`` (BatchComputingElement.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.BatchComputingElement import LocalBatchComputingElement
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
    newStamp,
    splitStamp,
)
from dirac.Resources.Computing.ProcessUtilities import (
    isProcessAlive,
    processStartTime,
    terminateProcessGroups,
    writeCredentialFile,
)

STATE_FILE = "pilot.json"
EXIT_CODE_FILE = "exit_code"
KILLED_FILE = "killed"
STDOUT_FILE = "std.out"
STDERR_FILE = "std.err"
PROXY_FILE = "proxy.pem"
TOKEN_FILE = "token"

# Runs the pilot, then records its exit code atomically. Killing the process group kills this
# shell as well, so a killed pilot leaves no exit code behind.
_WRAPPER = '"$@"; rc=$?; echo "$rc" > exit_code.tmp && mv -f exit_code.tmp exit_code; exit "$rc"'


class LocalComputingElement(ComputingElement):
    """Runs each pilot as a detached process group on this host, in its own working directory."""

    ceType = "Local"
    referenceScheme = "local"

    @classmethod
    def implementation(cls, parameters: Mapping[str, Any]) -> type[ComputingElement]:
        """With ``BatchSystem`` set to a batch system (e.g. Slurm), pilots are batch jobs on this host instead."""
        if str(parameters.get("BatchSystem") or "Host").lower() == "host":
            return cls
        return LocalBatchComputingElement

    def __init__(self, ceName: str, parameters: Mapping[str, Any] | None = None):
        super().__init__(ceName, parameters)
        workingDirectory = self.getParameter("WorkingDirectory")
        if not workingDirectory:
            raise ConfigurationError(f"CE {ceName}: option WorkingDirectory is not set (where pilots run)")
        self.workingDirectory = Path(workingDirectory).absolute()
        self.workingDirectory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._processes: dict[str, subprocess.Popen] = {}
        self._finalStatus: dict[str, str] = {}

    # -- submission ---------------------------------------------------------------------------------
    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any) -> list[str]:
        environment: Mapping[str, str] = kwargs.get("environment") or {}
        with self._submissionLock():
            status = self._getCEStatus()
            free = self._freeSlots(status)
            if numberOfJobs > free:
                raise NotEnoughSlots(
                    f"CE {self.ceName}: cannot submit {numberOfJobs} pilot(s): {status['RunningJobs']} running"
                    f" with MaxTotalJobs={self.maxTotalJobs}, {free} slot(s) free"
                )
            return [self._startPilot(executableFile, proxy, environment) for _ in range(numberOfJobs)]

    def _freeSlots(self, status: Mapping[str, Any]) -> int:
        """Local pilots start at once and never wait, so only MaxTotalJobs limits them."""
        return max(0, self.maxTotalJobs - int(status["RunningJobs"]))

    @contextmanager
    def _submissionLock(self) -> Iterator[None]:
        """Serialise count-then-start between CE objects (and processes) sharing the working directory."""
        with open(self.workingDirectory / ".submit.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _startPilot(self, executableFile: str, proxy: bytes | None, environment: Mapping[str, str]) -> str:
        stamp = newStamp()
        reference = self.makeReference(stamp)
        pilotDir = self.workingDirectory / stamp
        pilotDir.mkdir(mode=0o700)
        executable = pilotDir / Path(executableFile).name
        shutil.copyfile(executableFile, executable)
        executable.chmod(0o700)
        env = {**os.environ, **environment, "DIRAC_PILOT_REFERENCE": reference, "DIRAC_PILOT_STAMP": stamp}
        if proxy is not None:
            env["X509_USER_PROXY"] = str(writeCredentialFile(pilotDir / PROXY_FILE, proxy))
        if self.token:
            env["BEARER_TOKEN_FILE"] = str(writeCredentialFile(pilotDir / TOKEN_FILE, self.token.encode()))
        try:
            with open(pilotDir / STDOUT_FILE, "wb") as out, open(pilotDir / STDERR_FILE, "wb") as err:
                process = subprocess.Popen(
                    ["/bin/sh", "-c", _WRAPPER, "dirac-local-pilot", str(executable)],
                    cwd=pilotDir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, close_fds=True,
                )
        except OSError as exc:
            raise SubmissionError(f"{reference}: cannot start {executable}: {exc}") from exc
        self._processes[stamp] = process
        state = {
            "Reference": reference,
            "Stamp": stamp,
            "PID": process.pid,
            "StartTime": processStartTime(process.pid),
            "SubmissionTime": time.time(),
            "Executable": str(executable),
        }
        tmp = pilotDir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(pilotDir / STATE_FILE)
        self.log.info("%s: pilot started as process %d in %s", reference, process.pid, pilotDir)
        return reference

    # -- state on disk ------------------------------------------------------------------------------
    def _pilotDir(self, reference: str) -> Path:
        """The working directory of a pilot this CE started (UnknownJobReference otherwise)."""
        pilotDir = self.workingDirectory / splitStamp(reference)
        if not (pilotDir / STATE_FILE).is_file():
            raise UnknownJobReference(f"{reference}: no such pilot in {self.workingDirectory}")
        return pilotDir

    @staticmethod
    def _exitCode(pilotDir: Path) -> int | None:
        try:
            return int((pilotDir / EXIT_CODE_FILE).read_text().strip())
        except FileNotFoundError:
            return None

    def _status(self, pilotDir: Path, reference: str) -> str:
        """The status of the pilot in ``pilotDir`` from its exit code file and its process."""
        stamp = pilotDir.name
        if stamp in self._finalStatus:
            return self._finalStatus[stamp]
        if stamp in self._processes:
            self._processes[stamp].poll()  # reap our own child
        state = json.loads((pilotDir / STATE_FILE).read_text())
        exitCode = self._exitCode(pilotDir)
        if exitCode is None and isProcessAlive(state["PID"], state.get("StartTime")):
            return RUNNING
        exitCode = self._exitCode(pilotDir) if exitCode is None else exitCode  # it may have ended meanwhile
        if exitCode is None:
            status = ABORTED
            why = "killed" if (pilotDir / KILLED_FILE).exists() else "gone without an exit code"
            self.log.info("%s: pilot process %d %s: %s", reference, state["PID"], why, status)
        else:
            status = DONE if exitCode == 0 else FAILED
            self.log.info("%s: pilot ended with exit code %d: %s", reference, exitCode, status)
        self._finalStatus[stamp] = status
        self._processes.pop(stamp, None)
        return status

    # -- the interface ------------------------------------------------------------------------------
    def _getJobStatus(self, references: list[str]) -> dict[str, str]:
        statuses = {}
        for reference in references:
            try:
                statuses[reference] = self._status(self._pilotDir(reference), reference)
            except UnknownJobReference as exc:
                self.log.warning("%s", exc.message)
                statuses[reference] = UNKNOWN
        return statuses

    def _getJobOutput(self, reference: str) -> tuple[str, str]:
        pilotDir = self._pilotDir(reference)
        return tuple(  # type: ignore[return-value]
            (pilotDir / name).read_text(errors="replace") if (pilotDir / name).exists() else ""
            for name in (STDOUT_FILE, STDERR_FILE)
        )

    def _killJobs(self, references: list[str]) -> None:
        pilotDirs = {reference: self._pilotDir(reference) for reference in references}
        groups = {}
        for reference, pilotDir in pilotDirs.items():
            if self._status(pilotDir, reference) != RUNNING:
                self.log.info("%s: not killed, it is no longer running", reference)
                continue
            (pilotDir / KILLED_FILE).write_text(f"{time.time()}\n")
            groups[reference] = json.loads((pilotDir / STATE_FILE).read_text())["PID"]
            self.log.info("%s: killing pilot process group %d", reference, groups[reference])
        terminateProcessGroups(groups, self.killGracePeriod, self.log)
        for reference in groups:
            self._status(pilotDirs[reference], reference)

    def _getCEStatus(self) -> dict[str, Any]:
        running = 0
        for pilotDir in self.workingDirectory.iterdir():
            if pilotDir.name in self._finalStatus or not (pilotDir / STATE_FILE).is_file():
                continue
            if self._status(pilotDir, self.makeReference(pilotDir.name)) not in PILOT_FINAL_STATES:
                running += 1
        return {"RunningJobs": running, "WaitingJobs": 0}
