"""The Slurm plug-in: state mapping, parsing of sbatch/squeue/sacct output, and which command answers what.

The commands are answered by a scripted runner that records them, so each test states exactly
what Slurm printed and what the plug-in made of it.
"""

from __future__ import annotations

import pytest

from dirac.Resources.Computing.BatchSystems import getBatchSystemClass
from dirac.Resources.Computing.BatchSystems.BatchSystem import BatchJob, BatchSystemError, JobState
from dirac.Resources.Computing.BatchSystems.Slurm import Slurm, parseStates, parseSubmission, slurmJobState
from dirac.Resources.Computing.CommandRunner import CommandResult, CommandRunner


class ScriptedRunner(CommandRunner):
    """Answers each command with the first scripted answer whose key starts the command."""

    host = "slurm.example.org"

    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        super().__init__()
        self.answers = answers
        self.commands: list[str] = []

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        self.commands.append(command)
        for prefix, (code, out, err) in self.answers.items():
            if command.startswith(prefix):
                return CommandResult(command, code, out, err)
        raise AssertionError(f"unexpected command {command!r}")


def slurm(answers: dict[str, tuple[int, str, str]], **parameters: str) -> tuple[Slurm, ScriptedRunner]:
    runner = ScriptedRunner(answers)
    return Slurm(runner, "/data/out", "/data/err", parameters), runner


@pytest.mark.parametrize(("state", "status"), [
    ("PENDING", "Waiting"), ("CONFIGURING", "Waiting"), ("SUSPENDED", "Waiting"), ("REQUEUED", "Waiting"),
    ("RUNNING", "Running"), ("COMPLETING", "Running"),
    ("COMPLETED", "Done"),
    ("FAILED", "Failed"), ("TIMEOUT", "Failed"), ("NODE_FAIL", "Failed"), ("OUT_OF_MEMORY", "Failed"),
    ("BOOT_FAIL", "Failed"),
    ("CANCELLED", "Aborted"), ("CANCELLED by 1001", "Aborted"), ("PREEMPTED", "Aborted"),
    ("SOMETHING_NEW", "Unknown"), ("", "Unknown"),
])
def test_slurm_states_map_to_pilot_statuses(state: str, status: str) -> None:
    assert slurmJobState(state).status == status


def test_a_cancelled_job_says_it_was_cancelled_in_slurm_and_by_whom() -> None:
    state = slurmJobState("CANCELLED by 1001")
    assert state == JobState("Aborted", "cancelled in Slurm (CANCELLED by 1001)")


def test_a_failed_job_reason_carries_slurms_reason_but_not_none() -> None:
    assert slurmJobState("FAILED", "NonZeroExitCode").reason == "Slurm job FAILED, NonZeroExitCode"
    assert slurmJobState("RUNNING", "None").reason == "Slurm job RUNNING"


def test_state_lines_are_parsed_and_job_steps_skipped() -> None:
    output = "12|RUNNING|None\n12.batch|RUNNING|None\n13|PENDING|Priority\n\ngarbage\n"
    assert parseStates(output, 3) == {"12": ("RUNNING", "None"), "13": ("PENDING", "Priority")}


def test_submission_output_gives_ids_in_order_without_the_cluster_name() -> None:
    assert parseSubmission("OK 41\nOK 42;cluster\n") == (["41", "42"], "")
    assert parseSubmission("OK 41\nERROR sbatch: error: invalid partition specified: nope\n") == (
        ["41"], "sbatch: error: invalid partition specified: nope")


def test_sbatch_gets_the_output_files_directory_processors_partition_and_extra_options() -> None:
    batch, runner = slurm({"out=$(sbatch": (0, "OK 77\n", "")}, Partition="short",
                          SubmitOptions="--time=01:00:00 --mem=2G")
    ids = batch.submit([BatchJob("a" * 16, "/data/x.sh", "/work", processors=4)])
    assert ids == ["77"]
    command = runner.commands[0]
    for expected in ("--parsable", "--job-name=dirac-pilot", "--output=/data/out/%j.out", "--error=/data/err/%j.err",
                     "--chdir=/work", "--cpus-per-task=4", "--partition=short", "--time=01:00:00", "--mem=2G",
                     "/data/x.sh"):
        assert expected in command


def test_a_refused_submission_raises_with_sbatchs_message() -> None:
    batch, _ = slurm({"out=$(sbatch": (1, "ERROR sbatch: error: Batch job submission failed: Invalid account\n", "")})
    with pytest.raises(BatchSystemError, match="Invalid account"):
        batch.submit([BatchJob("a" * 16, "/data/x.sh", "/work")])


def test_status_comes_from_squeue_when_slurm_remembers_the_jobs() -> None:
    batch, runner = slurm({"squeue": (0, "5|RUNNING|None\n6|CANCELLED|None\n", "")})
    states = batch.getStatus(["5", "6"])
    assert states == {"5": JobState("Running", "Slurm job RUNNING"),
                      "6": JobState("Aborted", "cancelled in Slurm (CANCELLED)")}
    assert len(runner.commands) == 1 and "--states=all" in runner.commands[0] and "--jobs=5,6" in runner.commands[0]


def test_jobs_squeue_forgot_come_from_sacct_then_from_their_exit_code_files() -> None:
    batch, runner = slurm({
        "squeue": (1, "", "slurm_load_jobs error: Invalid job id specified\n"),
        "sacct": (0, "7|COMPLETED\n7.batch|COMPLETED\n", ""),
        "[ -f": (0, "8 3\n", ""),
    })
    states = batch.getStatus(["7", "8", "9"])
    assert states["7"] == JobState("Done", "Slurm job COMPLETED")
    assert states["8"] == JobState("Failed", "exit code 3")
    assert states["9"].status == "Aborted" and "unknown to Slurm" in states["9"].reason
    assert "/data/out/8.exit" in runner.commands[2] and "7.exit" not in runner.commands[2]


def test_without_accounting_sacct_is_ignored_and_exit_codes_decide() -> None:
    batch, _ = slurm({
        "squeue": (0, "", ""),
        "sacct": (1, "", "Slurm accounting storage is disabled\n"),
        "[ -f": (0, "10 0\n", ""),
    })
    assert batch.getStatus(["10"]) == {"10": JobState("Done", "exit code 0")}


def test_a_failing_squeue_is_an_error_not_aborted_pilots() -> None:
    batch, _ = slurm({"squeue": (1, "", "slurm_load_jobs error: Unable to contact slurm controller\n")})
    with pytest.raises(BatchSystemError, match="Unable to contact slurm controller"):
        batch.getStatus(["5"])


def test_cancelling_ended_jobs_is_harmless_but_other_scancel_errors_raise() -> None:
    batch, runner = slurm({"scancel": (1, "", "scancel: error: Kill job error on job id 5: "
                                              "Job/step already completing or completed\n")})
    batch.kill(["5", "6"])
    assert runner.commands == ["scancel 5 6"]
    batch, _ = slurm({"scancel": (1, "", "scancel: error: Unable to contact slurm controller\n")})
    with pytest.raises(BatchSystemError, match="Unable to contact"):
        batch.kill(["5"])


def test_pilot_jobs_of_this_account_are_counted_running_and_waiting() -> None:
    batch, runner = slurm({"squeue": (0, "RUNNING\nPENDING\nPENDING\nCOMPLETING\n", "")})
    assert batch.countJobs() == (2, 2)
    assert "--name=dirac-pilot" in runner.commands[0]


def test_batch_systems_are_found_by_name_whatever_the_case() -> None:
    assert getBatchSystemClass("SLURM") is Slurm
    assert getBatchSystemClass("host").name == "Host"
    with pytest.raises(Exception, match="no batch system 'PBS'"):
        getBatchSystemClass("PBS")
