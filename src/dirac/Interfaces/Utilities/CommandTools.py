"""What the job commands share: job IDs from arguments and files, tables, progress, per-job failures.

Every ``dirac-wms-job-*`` command and its COMDIRAC short form (``dstat``, ``dkill``, ...) reads
job IDs, prints tables and reports bulk answers through these functions, so they say things
the same way and exit with the same codes.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, Script, exitCodeFor
from dirac.Core.Utilities.JEncode import DATETIME_FORMAT

T = TypeVar("T")

LOGGING_COLUMNS = ["Status", "MinorStatus", "ApplicationStatus", "DateTime", "Source"]
TABLE_FORMATS = ("pretty", "csv", "json")
#: DIRAC's keys for the jobs a bulk request did not process, most serious first, with what they mean
FAILURE_KEYS = (("NonauthorizedJobIDs", "you are not allowed to act on it", EXIT_AUTH),
                ("InvalidJobIDs", "no such job", EXIT_NOT_FOUND),
                ("FailedJobIDs", "its status does not allow it", EXIT_FAILED))
#: below this many items no progress bar is drawn
PROGRESS_THRESHOLD = 3


class UsageError(Exception):
    """A command line that cannot be acted on (the command exits with code 2)."""


# -- job IDs ------------------------------------------------------------------------------------------
def parseJobIDs(values: Iterable[str | int]) -> list[int]:
    """Job IDs from arguments such as '12', '12,13' or '12 13', in order, without repeats."""
    jobIDs: list[int] = []
    for value in values:
        for word in str(value).replace(",", " ").split():
            try:
                jobID = int(word)
            except ValueError:
                raise UsageError(f"{word!r} is not a job ID") from None
            if jobID <= 0:
                raise UsageError(f"{word!r} is not a job ID")
            if jobID not in jobIDs:
                jobIDs.append(jobID)
    return jobIDs


def readJobIDFile(path: str) -> list[int]:
    """Job IDs from a file: separated by blanks, commas or new lines."""
    try:
        with open(path) as text:
            return parseJobIDs(text.read().split())
    except OSError as exc:
        raise UsageError(f"cannot read job IDs from {path}: {exc.strerror}") from None


def addJobArguments(parser: argparse.ArgumentParser, fileSwitches: Sequence[str] = ("-f", "--File"),
                    groupSwitches: Sequence[str] = ("-g", "--JobGroup"), required: bool = True) -> None:
    """The positional job IDs, and switches naming a file of IDs and a job group."""
    parser.add_argument("jobIDs", nargs="*", metavar="JobID", help="DIRAC job IDs (also '12,13')")
    if fileSwitches:
        parser.add_argument(*fileSwitches, dest="jobFile", metavar="FILE", help="also the job IDs listed in FILE")
    if groupSwitches:
        parser.add_argument(*groupSwitches, dest="jobGroup", metavar="GROUP",
                            help="also the jobs of this job group (updated in the last 30 days)")
    parser.set_defaults(jobIDsRequired=required)


def jobIDsFromArguments(args: argparse.Namespace, dirac: Any, groupStatuses: Sequence[str] | None = None,
                        days: int = 30) -> list[int]:
    """The job IDs a command was given: positional ones, those in --File and those of --JobGroup."""
    jobIDs = parseJobIDs(args.jobIDs)
    if getattr(args, "jobFile", None):
        jobIDs += [jobID for jobID in readJobIDFile(args.jobFile) if jobID not in jobIDs]
    if getattr(args, "jobGroup", None):
        since = (datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=days)).isoformat()
        result = dirac.selectJobs(jobGroup=args.jobGroup, status=list(groupStatuses) if groupStatuses else None,
                                  date=since, printErrors=False)
        if not result["OK"]:
            raise CommandFailed(result["Message"], exitCodeFor(result))
        jobIDs += [jobID for jobID in parseJobIDs(result["Value"]) if jobID not in jobIDs]
    if not jobIDs and getattr(args, "jobIDsRequired", True):
        raise UsageError("no job given: name job IDs, a file of job IDs or a job group")
    return jobIDs


class CommandFailed(Exception):
    """A failed call that ends the command, with the exit code to use."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def runCommand(script: Script, body: Any, argv: list[str] | None) -> int:
    """Parse the command line and run ``body(args)``: usage errors exit 2, failed calls with their code,
    local file errors (unwritable directory, full disk) with 1, each as one line."""
    try:
        return script.run(body, argv)
    except UsageError as exc:
        script.parser.print_usage(sys.stderr)
        return script.fail(str(exc), 2)
    except CommandFailed as exc:
        return script.fail(str(exc), exc.code)
    except OSError as exc:
        return script.fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", EXIT_FAILED)


# -- output -------------------------------------------------------------------------------------------
def plain(data: Any) -> Any:
    """``data`` with datetimes as 'YYYY-MM-DD HH:MM:SS' text and tuples as lists, ready for JSON."""
    if isinstance(data, datetime.datetime):
        return data.strftime(DATETIME_FORMAT)
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain(value) for value in data]
    return data


def formatTable(columns: Sequence[str], rows: Iterable[Sequence[Any] | dict[str, Any]], fmt: str = "pretty") -> str:
    """Rows (sequences or dicts) under column names: aligned text, CSV or a JSON list of objects."""
    cells = [[plain(row.get(c, "")) for c in columns] if isinstance(row, dict) else [plain(v) for v in row]
             for row in rows]
    if fmt == "json":
        return json.dumps([dict(zip(columns, row, strict=False)) for row in cells], indent=2)
    text = [["" if value is None else str(value) for value in row] for row in cells]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(text)
        return out.getvalue().rstrip("\n")
    widths = [max([len(name)] + [len(row[i]) for row in text if i < len(row)]) for i, name in enumerate(columns)]
    lines = [list(columns)] + text
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
                     for line in lines)


def jobList(jobIDs: Iterable[int | str]) -> str:
    return ",".join(str(jobID) for jobID in jobIDs)


# -- progress -----------------------------------------------------------------------------------------
def progressBar(script: Script, total: int, what: str, unit: str = "job", minimum: int = PROGRESS_THRESHOLD) -> Any:
    """A tqdm bar on stderr, drawn only on a terminal, for ``minimum`` items or more, without --json."""
    from tqdm import tqdm  # imported here: commands that show no progress start faster

    hide = script.wantsJSON or total < minimum or not sys.stderr.isatty()
    return tqdm(total=total, desc=what, unit=unit, file=sys.stderr, disable=hide, leave=False, dynamic_ncols=True)


def progress(script: Script, items: Iterable[T], total: int, what: str, unit: str = "job") -> Iterator[T]:
    """Iterate over ``items`` while a progress bar (see ``progressBar``) counts them."""
    with progressBar(script, total, what, unit) as bar:
        for item in items:
            yield item
            bar.update(1)


def say(text: str, error: bool = False) -> None:
    """Print a line without breaking a progress bar that is being drawn."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr if error else sys.stdout)


# -- bulk answers -------------------------------------------------------------------------------------
def failedJobs(result: dict[str, Any]) -> dict[str, list[int]]:
    """The jobs a bulk S_ERROR lists as not processed, by DIRAC's key (empty for other errors)."""
    return {key: [int(jobID) for jobID in result.get(key) or []] for key, _, _ in FAILURE_KEYS if result.get(key)}


def reportJobFailures(script: Script, result: dict[str, Any], verb: str) -> int:
    """Report a failed bulk call job by job ('ERROR: job 12 not killed: ...'); the most serious exit code."""
    failed = failedJobs(result)
    if not failed:
        return script.fail(result["Message"], exitCodeFor(result))
    if script.wantsJSON:
        script.output({"OK": False, "Message": result["Message"], "Successful": result.get("SuccessfulJobIDs", []),
                       **failed})
    code = EXIT_OK
    for key, reason, keyCode in FAILURE_KEYS:
        for jobID in failed.get(key, []):
            if not script.wantsJSON:
                print(f"ERROR: job {jobID} not {verb}: {reason}", file=sys.stderr)
            code = code or keyCode
    return code


def worstExitCode(codes: Iterable[int]) -> int:
    """The exit code summing up several failures: authorization first, then not found, then any other."""
    found = set(codes) - {EXIT_OK}
    for code in (EXIT_AUTH, EXIT_NOT_FOUND):
        if code in found:
            return code
    return min(found) if found else EXIT_OK
