"""The work of the WMS job commands, shared by ``dirac-wms-job-*`` and the COMDIRAC short forms.

Each function takes the command's ``Script`` (for --json and messages), a ``Dirac`` API object
and job IDs, prints what the user asked for and returns the exit code. Per-job failures are
printed one line each on stderr (``ERROR: job 12 ...``); in --json mode stdout holds exactly
one JSON document.
"""

from __future__ import annotations

import pprint
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, Script, exitCodeFor
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.Utilities.CommandTools import (
    LOGGING_COLUMNS,
    addJobArguments,
    formatTable,
    jobIDsFromArguments,
    jobList,
    plain,
    progress,
    progressBar,
    reportJobFailures,
    runCommand,
    say,
    worstExitCode,
)

STATUS_ATTRIBUTES = ("Status", "MinorStatus", "ApplicationStatus", "Site")
#: (Dirac method, past participle for messages, what a success line starts with), as DIRAC's commands say it
ACTIONS = {"kill": ("killJob", "killed", "Killed jobs"),
           "delete": ("deleteJob", "deleted", "Deleted jobs"),
           "reschedule": ("rescheduleJob", "rescheduled", "Rescheduled jobs")}


def _perJobError(jobID: int | str, message: str) -> None:
    say(f"ERROR: job {jobID}: {message}", error=True)


# -- submission ---------------------------------------------------------------------------------------
def submitDescriptions(script: Script, dirac: Dirac, descriptions: Sequence[tuple[str, str]]
                       ) -> tuple[dict[str, int | list[int]], dict[str, str], int]:
    """Submit (label, JDL text or file) pairs: ({label: jobID or [jobIDs]}, {label: error}, exit code)."""
    submitted: dict[str, int | list[int]] = {}
    failed: dict[str, str] = {}
    codes = []
    for label, description in progress(script, descriptions, len(descriptions), "Submitting", unit="JDL"):
        result = dirac.submitJob(description)
        if result["OK"]:
            submitted[label] = result["Value"]
        else:
            failed[label] = result["Message"]
            codes.append(exitCodeFor(result))
            say(f"ERROR: {label}: {result['Message']}", error=True)
    return submitted, failed, worstExitCode(codes)


def allJobIDs(submitted: dict[str, int | list[int]]) -> list[int]:
    """Every job ID of a submission, parametric ones expanded."""
    return [jobID for value in submitted.values() for jobID in (value if isinstance(value, list) else [value])]


# -- control ------------------------------------------------------------------------------------------
def controlJobs(script: Script, dirac: Dirac, action: str, jobIDs: list[int]) -> int:
    """Kill, delete or reschedule jobs; the ones that were not are reported one by one."""
    method, verb, doneText = ACTIONS[action]
    result = getattr(dirac, method)(jobIDs)
    if result["OK"]:
        script.output({"OK": True, "Successful": result["Value"]}, f"{doneText} {jobList(result['Value'])}")
        return EXIT_OK
    successful = result.get("SuccessfulJobIDs") or []
    if successful and not script.wantsJSON:
        print(f"{doneText} {jobList(successful)}")
    return reportJobFailures(script, result, verb)


# -- status -------------------------------------------------------------------------------------------
def statusLine(jobID: int, status: dict[str, Any]) -> str:
    """DIRAC's 'JobID=12 Status=Done; MinorStatus=Execution Complete; ...; Site=LCG.CERN.ch;'."""
    return " ".join([f"JobID={jobID}"] + [f"{name}={status.get(name, '')};" for name in STATUS_ATTRIBUTES])


def showStatus(script: Script, dirac: Dirac, jobIDs: list[int], statuses: dict[int, dict] | None = None) -> int:
    """Print each job's status; jobs unknown (or not yours) are reported."""
    if statuses is None:
        result = dirac.getJobStatus(jobIDs)
        if not result["OK"]:
            return script.fail(result["Message"], exitCodeFor(result))
        statuses = result["Value"]
    found = {jobID: {name: statuses[jobID].get(name) for name in STATUS_ATTRIBUTES}
             for jobID in jobIDs if jobID in statuses}
    script.output({str(jobID): status for jobID, status in found.items()},
                  lambda _: "\n".join(statusLine(jobID, status) for jobID, status in found.items()))
    missing = [jobID for jobID in jobIDs if jobID not in statuses]
    for jobID in missing:
        _perJobError(jobID, "no such job")
    return EXIT_NOT_FOUND if missing else EXIT_OK


def waitForJobs(script: Script, dirac: Dirac, jobIDs: list[int], timeout: float, interval: float = 10
                ) -> tuple[dict[int, dict] | None, int]:
    """Poll until every job is in a final status: (statuses, exit code); a progress bar counts the finished."""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    with progressBar(script, len(jobIDs), "Waiting for jobs", minimum=1) as bar:
        while True:
            result = dirac.getJobStatus(jobIDs)
            if not result["OK"]:
                script.fail(result["Message"], exitCodeFor(result))
                return None, exitCodeFor(result)
            statuses = result["Value"]
            final = [jobID for jobID, status in statuses.items() if status["Status"] in JobStatus.JOB_FINAL_STATES]
            bar.update(len(final) - bar.n)
            if len(final) == len(statuses):
                return statuses, EXIT_OK
            if deadline is not None and time.monotonic() >= deadline:
                pending = sorted(set(statuses) - set(final))
                say(f"ERROR: jobs not finished after {timeout:g}s: {jobList(pending)}", error=True)
                return statuses, EXIT_FAILED
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())) if deadline else interval)


# -- output sandboxes ---------------------------------------------------------------------------------
def retrieveOutputs(script: Script, dirac: Dirac, jobIDs: list[int], outputDir: str | None,
                    noJobDir: bool = False) -> int:
    """Download output sandboxes into <outputDir>/<jobID>/, skipping jobs already retrieved."""
    base = Path(outputDir or ".")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return script.fail(f"cannot create {base}: {exc.strerror}", EXIT_FAILED)
    todo = []
    for jobID in jobIDs:
        if not noJobDir and (base / str(jobID)).is_dir():
            say(f"Output for job {jobID} already retrieved, remove the output directory to redownload", error=True)
        else:
            todo.append(jobID)
    retrieved: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    codes = []
    for jobID in progress(script, todo, len(todo), "Downloading output sandboxes"):
        jobDir = base if noJobDir else base / str(jobID)
        existed = jobDir.exists()
        result = dirac.getOutputSandbox(jobID, outputDir=str(base), noJobDir=noJobDir)
        if not result["OK"]:
            if not existed and jobDir.exists():
                shutil.rmtree(jobDir, ignore_errors=True)
            failed[str(jobID)] = result["Message"]
            codes.append(exitCodeFor(result))
            _perJobError(jobID, result["Message"])
            continue
        files = [str(jobDir / name) for name in result["Value"]]
        retrieved[str(jobID)] = files
        if not script.wantsJSON:
            say("\n".join([f"Job output sandbox retrieved in {jobDir}/"] + [f"  {name}" for name in files]))
    if script.wantsJSON:
        script.output({"Retrieved": retrieved, "Failed": failed})
    return worstExitCode(codes)


# -- per-job information ------------------------------------------------------------------------------
def showPerJob(script: Script, jobIDs: list[int], fetch: Callable[[int], dict[str, Any]],
               text: Callable[[Any], str]) -> int:
    """Fetch one thing per job and print it (with a 'JobID=N' line before each when there are several)."""
    found: dict[str, Any] = {}
    codes = []
    for jobID in progress(script, jobIDs, len(jobIDs), "Reading jobs"):
        result = fetch(jobID)
        if result["OK"]:
            found[str(jobID)] = plain(result["Value"])
        else:
            codes.append(exitCodeFor(result))
            _perJobError(jobID, result["Message"])
    if found or not codes:
        script.output(found, lambda data: "\n".join(
            (f"JobID={jobID}\n" if len(jobIDs) > 1 else "") + text(value) for jobID, value in data.items()))
    return worstExitCode(codes)


def formatDict(value: dict[str, Any]) -> str:
    """A dictionary as DIRAC's commands print it (pprint)."""
    return pprint.pformat(value)


def showLoggingInfo(script: Script, dirac: Dirac, jobIDs: list[int], fmt: str = "pretty") -> int:
    """The status history of jobs: one table (with a JobID column when there are several jobs)."""
    rows: list[list[Any]] = []
    history: dict[str, list[dict[str, Any]]] = {}
    codes = []
    for jobID in jobIDs:
        result = dirac.getJobLoggingInfo(jobID)
        if not result["OK"]:
            codes.append(exitCodeFor(result))
            _perJobError(jobID, result["Message"])
            continue
        history[str(jobID)] = [dict(zip(LOGGING_COLUMNS, plain(row), strict=False)) for row in result["Value"]]
        rows += [[jobID, *row] for row in result["Value"]]
    if script.wantsJSON:
        script.output(history)
    elif rows:
        columns = LOGGING_COLUMNS if len(jobIDs) == 1 else ["JobID", *LOGGING_COLUMNS]
        print(formatTable(columns, [row[1:] if len(jobIDs) == 1 else row for row in rows], fmt))
    return worstExitCode(codes)


def controlCommand(action: str, description: str, epilog: str) -> Callable[[list[str] | None], int]:
    """The main() of dirac-wms-job-kill, -delete and -reschedule: job IDs, --File, --JobGroup."""
    def main(argv: list[str] | None = None) -> int:
        script = Script(description, jsonOutput=True, epilog=epilog)
        addJobArguments(script.parser)

        def body(args: Any) -> int:
            dirac = Dirac()
            return controlJobs(script, dirac, action, jobIDsFromArguments(args, dirac))

        return runCommand(script, body, argv)

    return main


def perJobCommand(description: str, epilog: str, fetch: Callable[[Dirac, int, Any], dict[str, Any]],
                  text: Callable[[Any], str], options: Callable[[Any], None] | None = None
                  ) -> Callable[[list[str] | None], int]:
    """The main() of a command printing one thing per job (parameters, attributes, JDL)."""

    def main(argv: list[str] | None = None) -> int:
        script = Script(description, jsonOutput=True, epilog=epilog)
        addJobArguments(script.parser, fileSwitches=(), groupSwitches=())
        if options:
            options(script.parser)

        def body(args: Any) -> int:
            dirac = Dirac()
            return showPerJob(script, jobIDsFromArguments(args, dirac), lambda jobID: fetch(dirac, jobID, args), text)

        return runCommand(script, body, argv)

    return main
