"""The batch-system plug-in interface: submit job scripts, read their states, kill them, find their output.

A batch system runs its commands through a ``CommandRunner`` (this host or SSH), so one plug-in
serves both a local CE and an SSH CE. Each job gets a batch id from the batch system (Slurm's job
number; for ``Host``, the pilot stamp). Its standard output and error go to
``<BatchOutput>/<id>.out`` and ``<BatchError>/<id>.err``, and the job script writes its exit code
to ``<BatchOutput>/<id>.exit`` when it ends, so a job the batch system has forgotten still has a
final state.

A new plug-in (HTCondor, PBS/Torque, LSF, OAR) subclasses ``BatchSystem``, sets ``name`` and
``jobIDVariable`` (the environment variable holding the batch id inside a job: ``PBS_JOBID``,
``LSB_JOBID``, ``OAR_JOB_ID``, ...), implements ``submit``, ``getStatus``, ``kill`` and
``countJobs``, and is registered in ``BatchSystems/__init__.py`` or the
``dirac.batch_systems`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from dirac.Resources.Computing.CommandRunner import CommandRunner, quote
from dirac.Resources.Computing.ComputingElement import DONE, FAILED, ComputingElementError

#: name given to the pilots' batch jobs, so the CE counts its own jobs only
JOB_NAME = "dirac-pilot"


class BatchSystemError(ComputingElementError):
    """A batch-system command failed (e.g. sbatch refused the job)."""


@dataclass(frozen=True)
class BatchJob:
    """One pilot to submit: its stamp, the job script to run and the directory it starts in (both on the batch host)."""

    stamp: str
    script: str
    workDirectory: str
    processors: int = 1


@dataclass(frozen=True)
class JobState:
    """A job's status (a pilot status name) and why, in the batch system's words."""

    status: str
    reason: str = ""


class BatchSystem:
    """Base of the batch-system plug-ins."""

    name: ClassVar[str] = ""
    #: environment variable holding the job's batch id inside the job ('' when the id is the stamp)
    jobIDVariable: ClassVar[str] = ""

    def __init__(self, runner: CommandRunner, outputArea: str, errorArea: str,
                 parameters: Mapping[str, Any] | None = None):
        self.runner = runner
        self.outputArea = outputArea
        self.errorArea = errorArea
        self.parameters = dict(parameters or {})

    # -- files ------------------------------------------------------------------------------------------
    def outputFiles(self, batchID: str) -> tuple[str, str]:
        """Paths (on the batch host) of the job's standard output and error."""
        return f"{self.outputArea}/{batchID}.out", f"{self.errorArea}/{batchID}.err"

    def exitCodeFile(self, batchID: str) -> str:
        """Path of the file the job script writes its exit code to."""
        return f"{self.outputArea}/{batchID}.exit"

    def jobIDExpression(self, stamp: str) -> str:
        """A /bin/sh expression giving the job's batch id inside the job."""
        return f'"${{{self.jobIDVariable}}}"' if self.jobIDVariable else quote(stamp)

    def exitCodes(self, batchIDs: Iterable[str]) -> dict[str, int]:
        """{batch id: exit code} of the jobs that wrote one (one command for all)."""
        ids = list(batchIDs)
        if not ids:
            return {}
        command = " ".join(
            f'[ -f {quote(self.exitCodeFile(i))} ] && echo {quote(i)} "$(cat {quote(self.exitCodeFile(i))})";'
            for i in ids
        )
        result = self.runner.run(command + " true")
        codes = {}
        for line in result.stdout.splitlines():
            batchID, _, code = line.strip().partition(" ")
            if code.strip().lstrip("-").isdigit():
                codes[batchID] = int(code)
        return codes

    @staticmethod
    def stateFromExitCode(code: int) -> JobState:
        return JobState(DONE, "exit code 0") if code == 0 else JobState(FAILED, f"exit code {code}")

    # -- the interface -------------------------------------------------------------------------------
    def submit(self, jobs: list[BatchJob]) -> list[str]:
        """Submit the jobs in order; their batch ids. Stops at the first refusal: the ids of the jobs
        submitted before it are returned; BatchSystemError when none was."""
        raise NotImplementedError

    def getStatus(self, batchIDs: list[str]) -> dict[str, JobState]:
        """{batch id: JobState} for each id (Unknown when the batch system cannot tell)."""
        raise NotImplementedError

    def kill(self, batchIDs: list[str]) -> None:
        """Cancel the jobs (those already ended are ignored)."""
        raise NotImplementedError

    def countJobs(self) -> tuple[int, int]:
        """(running, waiting) pilot jobs of this account in the batch system."""
        raise NotImplementedError
