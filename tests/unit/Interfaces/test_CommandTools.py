"""What the job commands share: job IDs, tables, exit codes of bulk answers, progress bars."""

from __future__ import annotations

import argparse
import io
import json
import sys

import pytest

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, Script
from dirac.Interfaces.Utilities.CommandTools import (
    UsageError,
    failedJobs,
    formatTable,
    parseJobIDs,
    progress,
    readJobIDFile,
    reportJobFailures,
    runCommand,
    worstExitCode,
)
from dirac.Interfaces.Utilities.JobSelection import ACTIVE_STATES, checkDate, statusList


def test_job_ids_come_from_words_and_comma_lists_in_order_without_repeats(tmp_path) -> None:  # noqa: ANN001
    assert parseJobIDs(["12,13", "14", " 13 ", 15]) == [12, 13, 14, 15]
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n2, 3\n\n4\n")
    assert readJobIDFile(str(ids)) == [1, 2, 3, 4]
    for bad in (["12a"], ["-3"], ["0"]):
        with pytest.raises(UsageError, match="is not a job ID"):
            parseJobIDs(bad)
    with pytest.raises(UsageError, match="cannot read job IDs"):
        readJobIDFile(str(tmp_path / "missing.txt"))


def test_tables_align_columns_write_csv_and_json() -> None:
    rows = [{"JobID": 1, "Status": "Done", "Site": None}, {"JobID": 12, "Status": "Running", "Site": "LCG.CERN.ch"}]
    assert formatTable(["JobID", "Status", "Site"], rows).splitlines() == [
        "JobID  Status   Site",
        "1      Done",
        "12     Running  LCG.CERN.ch"]
    assert formatTable(["A", "B"], [["x,y", 2]], "csv").splitlines() == ["A,B", '"x,y",2']
    assert json.loads(formatTable(["A", "B"], [["x", 2]], "json")) == [{"A": "x", "B": 2}]
    assert formatTable(["A"], []) == "A"


def test_a_bulk_failure_exits_with_its_most_serious_reason(capsys) -> None:  # noqa: ANN001
    script = Script("test")
    answer = {"OK": False, "Message": "3 job(s) not killed", "FailedJobIDs": [5], "InvalidJobIDs": [4],
              "NonauthorizedJobIDs": [3], "SuccessfulJobIDs": [2]}
    assert failedJobs(answer) == {"NonauthorizedJobIDs": [3], "InvalidJobIDs": [4], "FailedJobIDs": [5]}
    assert reportJobFailures(script, answer, "killed") == EXIT_AUTH
    assert capsys.readouterr().err.splitlines() == [
        "ERROR: job 3 not killed: you are not allowed to act on it",
        "ERROR: job 4 not killed: no such job",
        "ERROR: job 5 not killed: its status does not allow it"]
    assert reportJobFailures(script, {"OK": False, "Message": "x", "FailedJobIDs": [5]}, "killed") == EXIT_FAILED
    assert reportJobFailures(script, {"OK": False, "Message": "server down"}, "killed") == EXIT_FAILED
    assert capsys.readouterr().err.splitlines()[-1] == "ERROR: server down"
    assert worstExitCode([EXIT_OK, EXIT_FAILED, EXIT_NOT_FOUND]) == EXIT_NOT_FOUND
    assert worstExitCode([]) == EXIT_OK


def test_progress_is_drawn_on_a_terminal_only_for_several_items(monkeypatch) -> None:  # noqa: ANN001
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    script = Script("test")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(progress(script, iter(range(5)), 5, "Counting")) == [0, 1, 2, 3, 4]
    assert "Counting" in terminal.getvalue() and "/5 " in terminal.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert list(progress(script, [1], 1, "Counting")) == [1]
    assert quiet.getvalue() == ""
    notTerminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", notTerminal)
    assert list(progress(script, range(10), 10, "Counting")) == list(range(10))
    assert notTerminal.getvalue() == ""


def test_statuses_and_dates_are_checked_on_the_command_line() -> None:
    assert statusList("done, RUNNING") == ["Done", "Running"]
    assert "Done" not in ACTIVE_STATES and "Waiting" in ACTIVE_STATES
    with pytest.raises(argparse.ArgumentTypeError, match="not a job status"):
        statusList("Sleeping")
    assert checkDate("2024-05-01") == "2024-05-01"
    with pytest.raises(argparse.ArgumentTypeError, match="YYYY-MM-DD"):
        checkDate("yesterday")


def test_a_command_ends_with_one_error_line_and_its_exit_code(tmp_path, capsys) -> None:  # noqa: ANN001
    def unwritable(args: argparse.Namespace) -> int:
        open(tmp_path / "missing" / "ids.txt", "a")  # noqa: SIM115
        return EXIT_OK

    def badUsage(args: argparse.Namespace) -> int:
        raise UsageError("no job given")

    assert runCommand(Script("test"), unwritable, []) == EXIT_FAILED
    assert capsys.readouterr().err.strip() == f"ERROR: No such file or directory: {tmp_path / 'missing' / 'ids.txt'}"
    assert runCommand(Script("test"), badUsage, []) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "ERROR: no job given"
