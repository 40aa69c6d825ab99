"""Slurm: pilots as batch jobs, through sbatch, squeue, sacct and scancel.

States come from ``squeue --states=all`` (jobs the controller still remembers, ``MinJobAge``),
then ``sacct`` for older ones when accounting is enabled, then the exit code file the job script
wrote. A job none of them knows is Aborted. Options (CE or queue section): ``Partition``,
``SubmitOptions`` (extra sbatch arguments, e.g. ``--time=24:00:00 --mem=4G``).
"""

from __future__ import annotations

import shlex

from dirac.Resources.Computing.BatchSystems.BatchSystem import (
    JOB_NAME,
    BatchJob,
    BatchSystem,
    BatchSystemError,
    JobState,
)
from dirac.Resources.Computing.CommandRunner import quote
from dirac.Resources.Computing.ComputingElement import ABORTED, DONE, FAILED, RUNNING, UNKNOWN, WAITING

#: Slurm job states (squeue %T / sacct State) -> pilot status
SLURM_STATES: dict[str, str] = {
    **dict.fromkeys(("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD",
                     "SUSPENDED", "SPECIAL_EXIT"), WAITING),
    **dict.fromkeys(("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED"), RUNNING),
    "COMPLETED": DONE,
    **dict.fromkeys(("FAILED", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "DEADLINE"), FAILED),
    **dict.fromkeys(("CANCELLED", "PREEMPTED", "REVOKED"), ABORTED),
}
#: ids per squeue/sacct/scancel call
CHUNK = 500
_SEPARATOR = "|"


def slurmJobState(state: str, reason: str = "") -> JobState:
    """The pilot status of a Slurm state ('CANCELLED by 1001' included), with a reason naming the Slurm state."""
    words = state.strip().split()
    name = words[0].rstrip("+").upper() if words else ""
    status = SLURM_STATES.get(name, UNKNOWN)
    reason = reason.strip()
    if reason in ("None", "(null)"):
        reason = ""
    detail = state.strip() + (f", {reason}" if reason else "")
    if status == ABORTED and name == "CANCELLED":
        return JobState(status, f"cancelled in Slurm ({detail})")
    if status in (FAILED, ABORTED, UNKNOWN):
        return JobState(status, f"Slurm job {detail or 'in no state'}")
    return JobState(status, f"Slurm job {detail}")


def parseStates(output: str, fields: int = 2) -> dict[str, tuple[str, ...]]:
    """{job id: (state, ...)} from 'id|state[|reason]' lines (job steps such as '12.batch' are skipped)."""
    rows: dict[str, tuple[str, ...]] = {}
    for line in output.splitlines():
        parts = line.strip().split(_SEPARATOR)
        if len(parts) < fields or not parts[0] or "." in parts[0]:
            continue
        rows[parts[0].strip()] = tuple(part.strip() for part in parts[1:fields])
    return rows


def parseSubmission(output: str) -> tuple[list[str], str]:
    """(batch ids, error) from the submission script's 'OK <id>[;cluster]' and 'ERROR <message>' lines."""
    ids, error = [], ""
    for line in output.splitlines():
        kind, _, rest = line.strip().partition(" ")
        if kind == "OK" and rest:
            ids.append(rest.split(";")[0].strip())
        elif kind == "ERROR":
            error = rest.strip()
    return ids, error


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


class Slurm(BatchSystem):
    """Submits each pilot with sbatch and follows it with squeue/sacct."""

    name = "Slurm"
    jobIDVariable = "SLURM_JOB_ID"

    def sbatchArguments(self, job: BatchJob) -> list[str]:
        arguments = ["sbatch", "--parsable", f"--job-name={JOB_NAME}", f"--output={self.outputArea}/%j.out",
                     f"--error={self.errorArea}/%j.err", f"--chdir={job.workDirectory}", "--ntasks=1",
                     f"--cpus-per-task={job.processors}"]
        if self.parameters.get("Partition"):
            arguments.append(f"--partition={self.parameters['Partition']}")
        arguments += shlex.split(str(self.parameters.get("SubmitOptions") or ""))
        return arguments + [job.script]

    def submit(self, jobs: list[BatchJob]) -> list[str]:
        lines = []
        for job in jobs:
            command = " ".join(quote(argument) for argument in self.sbatchArguments(job))
            lines.append(f'out=$({command} 2>&1) || {{ echo "ERROR $out" | tr "\\n" " "; echo; exit 1; }}\n'
                         'echo "OK $out"')
        result = self.runner.run("\n".join(lines))
        ids, error = parseSubmission(result.stdout)
        if not ids:
            raise BatchSystemError(f"{self.runner.host}: sbatch refused the pilot: {error or result.describe()}")
        return ids

    def getStatus(self, batchIDs: list[str]) -> dict[str, JobState]:
        states: dict[str, JobState] = {}
        for chunk in _chunks(list(batchIDs)):
            result = self.runner.run(f"squeue --noheader --states=all --jobs={','.join(chunk)} "
                                     f"--format='%i{_SEPARATOR}%T{_SEPARATOR}%r'")
            if not result.ok and "Invalid job id" not in result.stderr:
                raise BatchSystemError(f"{self.runner.host}: squeue failed: {result.describe()}")
            for batchID, (state, reason) in parseStates(result.stdout, 3).items():
                states[batchID] = slurmJobState(state, reason)
        missing = [i for i in batchIDs if i not in states]
        for chunk in _chunks(missing):
            result = self.runner.run(f"sacct -X --noheader --parsable2 --format=JobID,State --jobs={','.join(chunk)}")
            if result.ok:  # no accounting database: sacct says so and knows nothing
                for batchID, (state,) in parseStates(result.stdout, 2).items():
                    states[batchID] = slurmJobState(state)
        missing = [i for i in batchIDs if i not in states]
        codes = self.exitCodes(missing)
        for batchID in missing:
            states[batchID] = (self.stateFromExitCode(codes[batchID]) if batchID in codes
                               else JobState(ABORTED, "unknown to Slurm (squeue, sacct) and no exit code"))
        return states

    def kill(self, batchIDs: list[str]) -> None:
        for chunk in _chunks(list(batchIDs)):
            result = self.runner.run("scancel " + " ".join(quote(i) for i in chunk))
            harmless = ("already completing or completed", "Invalid job id")
            if not result.ok and not all(any(h in line for h in harmless)
                                         for line in result.stderr.splitlines() if line.strip()):
                raise BatchSystemError(f"{self.runner.host}: scancel failed: {result.describe()}")

    def countJobs(self) -> tuple[int, int]:
        result = self.runner.run(f'squeue --noheader --user="$(id -un)" --name={JOB_NAME} --format=%T')
        if not result.ok:
            raise BatchSystemError(f"{self.runner.host}: squeue failed: {result.describe()}")
        statuses = [SLURM_STATES.get(line.strip(), UNKNOWN) for line in result.stdout.splitlines() if line.strip()]
        return statuses.count(RUNNING), statuses.count(WAITING)
