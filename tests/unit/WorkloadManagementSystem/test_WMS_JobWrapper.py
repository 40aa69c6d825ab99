"""The JobWrapper's steps with real payload processes in a real working directory.

The services it talks to are stood for by ``RecordingJobStateClient`` (statuses, parameters,
heartbeats, with a ``Kill`` to answer or an outage to simulate), ``RecordingSandboxClient``
(input sandboxes from a dict, output sandboxes recorded) and ``RecordingJobManager`` (reschedule
requests): the real round trip through the services is in tests/integration/test_WMS_JobWrapper.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import JobArguments, PayloadDescription
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_KILLED,
    EXIT_REPORTS_UNDELIVERED,
    PENDING_REPORTS_FILE,
    JobWrapper,
    rescheduleAfterStop,
    resolveOutputSandbox,
)
from dirac.WorkloadManagementSystem.JobWrapper.Settings import JobWrapperSettings
from dirac.WorkloadManagementSystem.JobWrapper.Watchdog import JOB_EXCEEDED_CPU_LIMIT

pytestmark = pytest.mark.timeout(120)

FAST = JobWrapperSettings(PollingTime=0.1, HeartBeatInterval=0.3, KillGracePeriod=2.0, MinDiskSpace=0,
                          CPUSampleTime=0, ReportRetryTime=0.5, ReportRetryDelay=0.05)
JOB_ID = 1234
SCRIPT = """#!/bin/sh
echo "args: $# [$1] [$2]"
echo "env: $JOBID $MYVAR"
echo result > result.txt
echo "to stderr" >&2
exit ${EXIT_WITH:-0}
"""


class RecordingJobStateClient:
    """Stands for JobStateUpdate: keeps every record it receives; ``down`` makes it unreachable."""

    def __init__(self, commands: dict[str, str] | None = None):
        self.records: list[dict] = []
        self.parameters: dict[str, str] = {}
        self.heartBeats: list[tuple[dict, dict]] = []
        self.commands = commands or {}
        self.down = False
        self.calls: list[tuple[str, list[str]]] = []  # (method, the minor statuses or parameter names it carried)

    def _unreachable(self) -> dict:
        return S_ERROR(DErrno.EDISET, "cannot reach WorkloadManagement/JobStateUpdate: connection refused")

    def setJobStatusBulk(self, jobID: int, statusDict: dict, force: bool = False) -> dict:
        assert jobID == JOB_ID
        if self.down:
            return self._unreachable()
        self.records += [statusDict[stamp] for stamp in sorted(statusDict)]
        self.calls.append(("setJobStatusBulk", [statusDict[stamp].get("MinorStatus", "") for stamp in sorted(statusDict)]))
        return S_OK({})

    def setJobParameters(self, jobID: int, parameters: list) -> dict:
        if self.down:
            return self._unreachable()
        self.parameters.update(dict(parameters))
        self.calls.append(("setJobParameters", [name for name, _ in parameters]))
        return S_OK()

    def sendHeartBeat(self, jobID: int, dynamicData: dict, staticData: dict) -> dict:
        if self.down:
            return self._unreachable()
        self.heartBeats.append((dynamicData, staticData))
        self.calls.append(("sendHeartBeat", []))
        commands, self.commands = self.commands, {}
        return S_OK(commands)

    def trail(self) -> list[tuple[str, str]]:
        """(Status, MinorStatus) of the records that set one of them, in order."""
        return [(r.get("Status", ""), r.get("MinorStatus", "")) for r in self.records
                if r.get("Status") or r.get("MinorStatus")]


class RecordingSandboxClient:
    """Stands for SandboxStore: input sandboxes from ``sandboxes`` {ref: {name: text}}, uploads recorded."""

    def __init__(self, sandboxes: dict[str, dict[str, str]] | None = None, failUpload: bool = False,
                 awayFor: int = 0):
        self.sandboxes = sandboxes or {}
        self.uploaded: dict[str, str] = {}
        self.assigned: list[tuple[int, list[str], str]] = []
        self.failUpload = failUpload
        self.awayFor = awayFor  # the next calls find no server (a restart)
        self.unanswered = 0

    def _away(self) -> bool:
        if self.awayFor > 0:
            self.awayFor -= 1
            self.unanswered += 1
            return True
        return False

    def downloadSandbox(self, reference: str, destination: Path) -> dict:
        if self._away():
            return S_ERROR(DErrno.EDISET, "cannot reach WorkloadManagement/SandboxStore: connection refused")
        if reference not in self.sandboxes:
            return S_ERROR(f"sandbox {reference} not found")
        for name, text in self.sandboxes[reference].items():
            (Path(destination) / name).write_text(text)
        return S_OK(list(self.sandboxes[reference]))

    def uploadFilesAsSandbox(self, files: list[Path], sizeLimit: int = 0, assignTo: dict | None = None) -> dict:
        if self._away():
            return S_ERROR(DErrno.EDISET, "cannot reach WorkloadManagement/SandboxStore: connection refused")
        if self.failUpload:
            return S_ERROR("the sandbox is 11000000 bytes, over the limit of 10485760 bytes")
        for path in files:
            self.uploaded[Path(path).name] = Path(path).read_text() if Path(path).is_file() else "<dir>"
        reference = "SB:SandboxSE|/output/1234.tar.bz2"
        for entity, sbType in (assignTo or {}).items():
            self.assigned.append((int(entity.removeprefix("Job:")), [reference], sbType))
        return S_OK(reference)

    def assignSandboxesToJob(self, jobID: int, references: list[str], sbType: str = "Input") -> dict:
        self.assigned.append((jobID, references, sbType))
        return S_OK()


class RecordingJobManager:
    """Stands for JobManager: records reschedule requests; ``answer`` is what it replies."""

    def __init__(self, answer: dict | None = None):
        self.rescheduled: list[int] = []
        self.answer = answer or S_OK([JOB_ID])

    def rescheduleJob(self, jobID: int) -> dict:
        self.rescheduled.append(jobID)
        return self.answer


def jdl(**attributes: object) -> str:
    parts = []
    for name, value in attributes.items():
        if isinstance(value, list):
            parts.append(f"{name} = {{{', '.join(json.dumps(v) for v in value)}}}")
        elif isinstance(value, int):
            parts.append(f"{name} = {value}")
        else:
            parts.append(f'{name} = "{value}"')
    return "[" + "; ".join(parts) + "]"


def runWrapper(tmp_path: Path, jdlText: str, jobState: RecordingJobStateClient | None = None,
               sandbox: RecordingSandboxClient | None = None, settings: JobWrapperSettings = FAST,
               **arguments: object) -> tuple[int, RecordingJobStateClient, RecordingSandboxClient, JobWrapper]:
    jobState = jobState or RecordingJobStateClient()
    sandbox = sandbox or RecordingSandboxClient({"SB:SandboxSE|/in/1.tar.bz2": {"run.sh": SCRIPT}})
    args = JobArguments(JobID=JOB_ID, JDL=jdlText, PilotReference="inprocess://node/abc", Site="DIRAC.Test.local",
                        **arguments)  # type: ignore[arg-type]
    wrapper = JobWrapper(args, tmp_path, settings, jobState, sandbox)
    return wrapper.run(), jobState, sandbox, wrapper


STANDARD = {"Executable": "run.sh", "Arguments": "first 'two words'", "InputSandbox": ["SB:SandboxSE|/in/1.tar.bz2"],
            "OutputSandbox": ["std.out", "std.err", "*.txt"], "StdOutput": "std.out", "StdError": "std.err",
            "ExecutionEnvironment": ["MYVAR=from jdl"], "CPUTime": 1000}


def test_successful_job_runs_its_sandbox_script_and_ends_done_with_the_dirac_trail(tmp_path: Path) -> None:
    code, jobState, sandbox, _ = runWrapper(tmp_path, jdl(**STANDARD))
    assert code == EXIT_DONE
    assert jobState.trail() == [
        ("Running", JobMinorStatus.JOB_INITIALIZATION),
        ("", JobMinorStatus.DOWNLOADING_INPUT_SANDBOX),
        ("", JobMinorStatus.APPLICATION),
        ("Completing", JobMinorStatus.APP_SUCCESS),
        ("Completing", JobMinorStatus.RESOLVING_OUTPUT_SANDBOX),
        ("", JobMinorStatus.UPLOADING_OUTPUT_SANDBOX),
        ("", JobMinorStatus.OUTPUT_SANDBOX_UPLOADED),
        ("Done", JobMinorStatus.EXEC_COMPLETE),
    ]
    assert all(record["Source"] == "JobWrapper" for record in jobState.records)
    assert (tmp_path / "std.out").read_text() == "args: 2 [first] [two words]\nenv: 1234 from jdl\n"
    assert (tmp_path / "std.err").read_text() == "to stderr\n"
    assert os.access(tmp_path / "run.sh", os.X_OK)
    assert sandbox.uploaded == {"std.out": (tmp_path / "std.out").read_text(), "std.err": "to stderr\n",
                                "result.txt": "result\n"}
    assert sandbox.assigned == [(JOB_ID, ["SB:SandboxSE|/output/1234.tar.bz2"], "Output")]
    parameters = jobState.parameters
    assert parameters["ApplicationExitCode"] == "0"
    assert parameters["Pilot_Reference"] == "inprocess://node/abc"
    assert parameters["WorkingDirectory"] == str(tmp_path)
    assert {"HostName", "JobWrapperPID", "PayloadPID", "TotalCPUTime(s)", "CPUNormalizationFactor"} <= set(parameters)
    assert jobState.heartBeats, "the final heartbeat at least"
    assert "OutputSandboxMissingFiles" not in parameters
    assert not (tmp_path / PENDING_REPORTS_FILE).exists()


def test_statuses_are_sent_when_a_long_step_starts_and_parameters_with_the_last_report(tmp_path: Path) -> None:
    payloadSaw = tmp_path / "saw"  # what the server had been told when the payload ran
    jobState = RecordingJobStateClient()
    original = jobState.setJobStatusBulk

    def setJobStatusBulk(jobID: int, statusDict: dict, force: bool = False) -> dict:
        result = original(jobID, statusDict, force)
        (tmp_path / "sent").write_text(json.dumps([record.get("MinorStatus", "") for record in jobState.records]))
        return result

    jobState.setJobStatusBulk = setJobStatusBulk  # type: ignore[method-assign]
    description = jdl(Executable="/bin/sh", Arguments=f"-c 'cat {tmp_path / 'sent'} > {payloadSaw}'",
                      StdOutput="std.out", StdError="std.err", OutputSandbox=["std.out"])
    code, _, sandbox, _ = runWrapper(tmp_path, description, jobState)
    assert code == EXIT_DONE
    assert json.loads(payloadSaw.read_text())[-1] == JobMinorStatus.APPLICATION, "Application was sent before it ran"
    reports = [(method, carried if method == "setJobStatusBulk" else None) for method, carried in jobState.calls
               if method != "sendHeartBeat"]  # the Watchdog's, and the final one
    assert reports == [  # a small output sandbox: its upload is not announced on its own
        ("setJobStatusBulk", [JobMinorStatus.JOB_INITIALIZATION, JobMinorStatus.APPLICATION]),
        ("setJobStatusBulk", [JobMinorStatus.APP_SUCCESS, JobMinorStatus.RESOLVING_OUTPUT_SANDBOX,
                              JobMinorStatus.UPLOADING_OUTPUT_SANDBOX, JobMinorStatus.OUTPUT_SANDBOX_UPLOADED,
                              JobMinorStatus.EXEC_COMPLETE]),
        ("setJobParameters", None),
    ]
    assert {"HostName", "ApplicationExitCode", "OutputSandbox"} <= set(jobState.calls[-1][1])
    assert jobState.heartBeats, "the final heartbeat at least"
    assert sandbox.assigned == [(JOB_ID, ["SB:SandboxSE|/output/1234.tar.bz2"], "Output")], "assigned with the upload"


def test_the_upload_of_a_large_output_sandbox_is_announced_before_it_starts(tmp_path: Path) -> None:
    description = jdl(Executable="/bin/sh", Arguments="-c 'head -c 1100000 /dev/zero > big.dat'",
                      StdOutput="std.out", StdError="std.err", OutputSandbox=["std.out", "big.dat"])
    code, jobState, _, _ = runWrapper(tmp_path, description)
    assert code == EXIT_DONE
    bulks = [carried for method, carried in jobState.calls if method == "setJobStatusBulk"]
    assert bulks == [[JobMinorStatus.JOB_INITIALIZATION, JobMinorStatus.APPLICATION],
                     [JobMinorStatus.APP_SUCCESS, JobMinorStatus.RESOLVING_OUTPUT_SANDBOX,
                      JobMinorStatus.UPLOADING_OUTPUT_SANDBOX],
                     [JobMinorStatus.OUTPUT_SANDBOX_UPLOADED, JobMinorStatus.EXEC_COMPLETE]]


def test_payload_exiting_3_ends_failed_with_application_errors_and_its_exit_code(tmp_path: Path) -> None:
    code, jobState, sandbox, _ = runWrapper(tmp_path, jdl(**{**STANDARD, "ExecutionEnvironment": ["EXIT_WITH=3"]}))
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.APP_ERRORS)
    assert ("Completing", JobMinorStatus.APP_ERRORS) in jobState.trail()
    assert jobState.parameters["ApplicationExitCode"] == "3"
    assert "std.out" in sandbox.uploaded, "the output of a failed job still comes back"


def test_missing_output_sandbox_files_are_reported_but_the_job_is_done(tmp_path: Path) -> None:
    code, jobState, sandbox, _ = runWrapper(tmp_path, jdl(**{**STANDARD, "OutputSandbox": ["nothere.dat", "*.root"]}))
    assert code == EXIT_DONE
    assert jobState.parameters["OutputSandboxMissingFiles"] == "nothere.dat"
    assert set(sandbox.uploaded) == {"std.out", "std.err"}


def test_output_sandbox_upload_failure_fails_the_job_with_uploading_outputs(tmp_path: Path) -> None:
    sandbox = RecordingSandboxClient({"SB:SandboxSE|/in/1.tar.bz2": {"run.sh": SCRIPT}}, failUpload=True)
    code, jobState, _, _ = runWrapper(tmp_path, jdl(**STANDARD), sandbox=sandbox)
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.UPLOADING_JOB_OUTPUTS)
    assert "over the limit" in jobState.parameters["Error Message"]


def test_sandbox_transfers_wait_for_a_restarting_server(tmp_path: Path) -> None:
    sandbox = RecordingSandboxClient({"SB:SandboxSE|/in/1.tar.bz2": {"run.sh": SCRIPT}}, awayFor=3)
    code, jobState, _, _ = runWrapper(tmp_path, jdl(**STANDARD), sandbox=sandbox)
    assert code == EXIT_DONE and sandbox.unanswered == 3  # the input sandbox waited for the server
    sandbox = RecordingSandboxClient({"SB:SandboxSE|/in/1.tar.bz2": {"run.sh": SCRIPT}})
    (tmp_path / "out").mkdir()
    wrapper = JobWrapper(JobArguments(JobID=JOB_ID, JDL=jdl(**STANDARD), Site="DIRAC.Test.local"), tmp_path / "out",
                         FAST, RecordingJobStateClient(), sandbox)
    wrapper.initialize()
    wrapper.transferInputSandbox()
    wrapper.execute()
    sandbox.awayFor = 3  # the server restarts while the payload ends
    wrapper.processOutputs()
    assert sandbox.unanswered == 3 and "std.out" in sandbox.uploaded


def test_a_server_away_longer_than_report_retry_time_fails_the_upload(tmp_path: Path) -> None:
    sandbox = RecordingSandboxClient({"SB:SandboxSE|/in/1.tar.bz2": {"run.sh": SCRIPT}}, awayFor=10**6)
    code, jobState, _, _ = runWrapper(tmp_path, jdl(**STANDARD), sandbox=sandbox)
    assert code == EXIT_FAILED and 2 <= sandbox.unanswered <= 20
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX)


def test_input_sandbox_download_failure_fails_the_job_before_running_anything(tmp_path: Path) -> None:
    code, jobState, _, _ = runWrapper(tmp_path, jdl(**{**STANDARD, "InputSandbox": ["SB:SandboxSE|/in/gone.tar.bz2"]}))
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX)
    assert "gone.tar.bz2" in jobState.parameters["Error Message"]
    assert not (tmp_path / "std.out").exists()


def test_missing_executable_fails_with_application_not_found(tmp_path: Path) -> None:
    code, jobState, _, _ = runWrapper(tmp_path, jdl(Executable="does-not-exist.sh"))
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.APP_NOT_FOUND)


def test_standard_output_outside_the_working_directory_is_an_illegal_jdl(tmp_path: Path) -> None:
    code, jobState, _, _ = runWrapper(tmp_path, jdl(Executable="/bin/true", StdOutput="../escape.out"))
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.ILLEGAL_JOB_JDL)
    assert not (tmp_path.parent / "escape.out").exists()


def test_payload_over_its_cpu_time_ends_failed_with_the_watchdog_reason(tmp_path: Path) -> None:
    settings = replace(FAST, JobCPULimitMargin=0)
    burn = f"{sys.executable} -c 'while True: pass'"
    code, jobState, sandbox, wrapper = runWrapper(
        tmp_path, jdl(Executable="/bin/sh", Arguments=f"-c \"{burn}\"", CPUTime=2), settings=settings,
        CPUNormalizationFactor=2.0)
    assert wrapper.watchdogLimits().cpuTime == pytest.approx(1.0)
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JOB_EXCEEDED_CPU_LIMIT)
    assert jobState.parameters["ApplicationError"] == JOB_EXCEEDED_CPU_LIMIT
    assert float(jobState.parameters["TotalCPUTime(s)"]) >= 1.0
    assert float(jobState.parameters["NormCPUTime(s)"]) >= 2.0
    assert "std.out" in sandbox.uploaded


def test_killed_job_gets_no_status_from_the_wrapper_after_the_kill(tmp_path: Path) -> None:
    jobState = RecordingJobStateClient(commands={"Kill": ""})
    code, jobState, sandbox, _ = runWrapper(tmp_path, jdl(Executable="/bin/sleep", Arguments="60"), jobState)
    assert code == EXIT_KILLED
    assert jobState.trail() == [("Running", JobMinorStatus.JOB_INITIALIZATION), ("", JobMinorStatus.APPLICATION)]
    assert not any(record.get("Status") in ("Done", "Failed", "Completing") for record in jobState.records)
    assert jobState.parameters["ApplicationExitCode"] == str(128 + signal.SIGTERM)


def stoppedWrapper(tmp_path: Path, jobState: RecordingJobStateClient, jobManager: RecordingJobManager,
                   executable: str = "/bin/sleep", arguments: str = "60", settings: JobWrapperSettings = FAST,
                   when: Callable[[JobWrapper], bool] = lambda wrapper: wrapper.payloadStarted
                   ) -> tuple[int, JobWrapper]:
    """Run a job whose wrapper gets SIGTERM, as from the batch system, once ``when(wrapper)``; (exit code, wrapper)."""
    args = JobArguments(JobID=JOB_ID, JDL=jdl(Executable=executable, Arguments=arguments))
    wrapper = JobWrapper(args, tmp_path, settings, jobState, RecordingSandboxClient(), jobManager=jobManager)

    def stopWhenDue() -> None:
        while not when(wrapper):
            time.sleep(0.05)
        time.sleep(0.3)
        wrapper.interrupt(signal.SIGTERM)

    threading.Thread(target=stopWhenDue, daemon=True).start()
    return wrapper.run(), wrapper


def test_wrapper_stopped_from_outside_kills_the_payload_fails_the_job_with_the_reason_and_reschedules_it(
        tmp_path: Path) -> None:
    jobState, jobManager = RecordingJobStateClient(), RecordingJobManager()
    code, _ = stoppedWrapper(tmp_path, jobState, jobManager)
    assert code == 128 + signal.SIGTERM
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.RECEIVED_KILL_SIGNAL)
    assert ("Completing", JobMinorStatus.RECEIVED_KILL_SIGNAL) not in jobState.trail()
    assert "Stopped by SIGTERM from outside DIRAC" in jobState.records[-1]["ApplicationStatus"]
    assert jobManager.rescheduled == [JOB_ID]
    assert not (tmp_path / PENDING_REPORTS_FILE).exists()


STUBBORN = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n"


def test_wrapper_stopped_after_a_watchdog_limit_fails_the_job_without_rescheduling_it(tmp_path: Path) -> None:
    jobState, jobManager = RecordingJobStateClient(), RecordingJobManager()
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    # the CPU limit stops a payload that ignores SIGTERM (KillGracePeriod 2 s); the wrapper's own stop comes meanwhile
    settings = replace(FAST, JobCPULimitMargin=0, DefaultCPUTime=1)
    code, wrapper = stoppedWrapper(tmp_path, jobState, jobManager, sys.executable, "stubborn.py", settings,
                                   when=lambda wrapper: bool(wrapper.watchdog and wrapper.watchdog.failureReason))
    assert wrapper.failureBeforeStop == JOB_EXCEEDED_CPU_LIMIT
    assert code == 128 + signal.SIGTERM
    assert jobState.trail()[-1] == ("Failed", JOB_EXCEEDED_CPU_LIMIT)
    assert jobManager.rescheduled == []


def test_wrapper_killed_by_the_server_then_stopped_neither_reports_nor_reschedules(tmp_path: Path) -> None:
    jobState, jobManager = RecordingJobStateClient(commands={"Kill": ""}), RecordingJobManager()
    (tmp_path / "stubborn.py").write_text(STUBBORN)  # the Kill takes KillGracePeriod (2 s): the stop comes meanwhile
    code, wrapper = stoppedWrapper(tmp_path, jobState, jobManager, sys.executable, "stubborn.py",
                                   when=lambda wrapper: bool(wrapper.watchdog and wrapper.watchdog.killedByCommand))
    assert code == EXIT_KILLED
    assert wrapper.signalled == signal.SIGTERM and wrapper.sandboxClient.uploaded == {}, "stopped during the run"
    assert not any(record.get("Status") in ("Failed", "Completing") for record in jobState.records)
    assert jobManager.rescheduled == []


def test_a_reschedule_the_jobmanager_cannot_be_asked_for_is_left_in_the_pending_reports(tmp_path: Path) -> None:
    jobState = RecordingJobStateClient()
    jobManager = RecordingJobManager(S_ERROR(DErrno.EDISET, "cannot reach WorkloadManagement/JobManager"))
    code, _ = stoppedWrapper(tmp_path, jobState, jobManager)
    assert code == 128 + signal.SIGTERM and jobManager.rescheduled == [JOB_ID]
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.RECEIVED_KILL_SIGNAL)
    pending = json.loads((tmp_path / PENDING_REPORTS_FILE).read_text())
    assert pending["Reschedule"].startswith("Stopped by SIGTERM from outside DIRAC")
    assert pending["StatusBulk"] == {} and pending["Parameters"] == []


def test_a_refused_reschedule_leaves_the_job_failed(tmp_path: Path) -> None:
    jobState = RecordingJobStateClient()
    jobManager = RecordingJobManager(S_ERROR("Job 1234: Maximum of reschedulings reached (3), the job is now Failed"))
    code, _ = stoppedWrapper(tmp_path, jobState, jobManager)
    assert code == 128 + signal.SIGTERM and jobManager.rescheduled == [JOB_ID]
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.RECEIVED_KILL_SIGNAL)
    assert not (tmp_path / PENDING_REPORTS_FILE).exists()


@pytest.mark.parametrize(("signalled", "killed", "failure", "exitCode", "expected"), [
    (signal.SIGTERM, False, None, None, True),                              # stopped before or while running
    (signal.SIGINT, False, None, 0, True),
    (None, False, None, 143, False),                                       # not stopped: the payload's own exit
    (signal.SIGTERM, True, None, 143, False),                              # killed by the server: Killed stays
    (signal.SIGTERM, False, JobMinorStatus.JOB_EXCEEDED_MEMORY, 137, False),  # a limit of its own came first
    (signal.SIGTERM, False, JobMinorStatus.APP_ERRORS, 3, False),         # the payload had failed on its own
    (signal.SIGTERM, False, JobMinorStatus.APP_ERRORS, 143, True),        # ended by the same stop a moment before
    (signal.SIGTERM, False, JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX, None, False),
])
def test_a_job_is_rescheduled_only_when_its_wrapper_was_stopped_from_outside_dirac(
        signalled: int | None, killed: bool, failure: str | None, exitCode: int | None, expected: bool) -> None:
    assert rescheduleAfterStop(signalled, killed, failure, exitCode) is expected


def test_reports_held_back_by_an_outage_during_the_run_are_delivered_in_order(tmp_path: Path) -> None:
    jobState = RecordingJobStateClient()
    jobState.down = True
    threading.Timer(1.0, setattr, [jobState, "down", False]).start()
    code, jobState, _, _ = runWrapper(tmp_path, jdl(Executable="/bin/sleep", Arguments="2"), jobState)
    assert code == EXIT_DONE
    assert jobState.trail()[0] == ("Running", JobMinorStatus.JOB_INITIALIZATION)
    assert jobState.trail()[-1] == ("Done", JobMinorStatus.EXEC_COMPLETE)
    assert jobState.trail().index(("", JobMinorStatus.APPLICATION)) == 1


def test_unreachable_server_at_the_end_leaves_the_reports_in_a_file_and_exit_code_6(tmp_path: Path) -> None:
    jobState = RecordingJobStateClient()
    jobState.down = True
    code, _, _, _ = runWrapper(tmp_path, jdl(Executable="/bin/true"), jobState)
    assert code == EXIT_REPORTS_UNDELIVERED
    pending = json.loads((tmp_path / PENDING_REPORTS_FILE).read_text())
    assert pending["JobID"] == JOB_ID
    records = [pending["StatusBulk"][stamp] for stamp in sorted(pending["StatusBulk"])]
    assert records[0]["Status"] == "Running" and records[-1] == {
        "Status": "Done", "MinorStatus": JobMinorStatus.EXEC_COMPLETE, "Source": "JobWrapper"}
    assert ["ApplicationExitCode", "0"] in pending["Parameters"]


def test_private_files_never_leave_in_the_output_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "job.json").write_text("{}")
    (tmp_path / ".proxy").write_text("-----BEGIN CERTIFICATE-----")
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / ".proxy"))
    code, _, sandbox, _ = runWrapper(tmp_path, jdl(Executable="/bin/true", OutputSandbox=["*", ".*", "../*"]))
    assert code == EXIT_DONE
    assert not {"job.json", ".proxy"} & set(sandbox.uploaded)
    assert {"std.out", "std.err"} <= set(sandbox.uploaded)


def test_output_sandbox_patterns_match_files_and_directories_inside_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.txt").write_text("b")
    files, missing = resolveOutputSandbox(["*.txt", "out", "out/*.txt", "absent.log", "*.none", "/etc/passwd"],
                                          tmp_path, set())
    assert [path.relative_to(tmp_path).as_posix() for path in files] == ["a.txt", "out", "out/b.txt"]
    assert missing == ["absent.log", "/etc/passwd"]


def test_job_json_is_checked_and_a_bad_one_exits_2_without_running_anything(tmp_path: Path) -> None:
    good = {"JobID": 5, "JDL": "[Executable = \"/bin/true\"]", "Owner": "alice", "OwnerGroup": "dirac_user",
            "VO": "dirac", "PilotReference": "p", "Site": "S", "GridCE": "ce", "CPUNormalizationFactor": 12.5,
            "WallClockLimit": 3600, "MaxRAM": 2048, "Future": "ignored"}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(good))
    arguments = JobArguments.fromFile(path)
    assert (arguments.JobID, arguments.CPUNormalizationFactor, arguments.WallClockLimit, arguments.MaxRAM) == (
        5, 12.5, 3600.0, 2048)
    path.write_text(json.dumps({**good, "JobID": "x"}))
    env = {**os.environ, "DIRACSYSCONFIG": ""}
    result = subprocess.run([sys.executable, "-m", "dirac.WorkloadManagementSystem.scripts.dirac_jobwrapper",
                             "--job", str(path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "JobID must be an integer" in result.stderr
    assert not (tmp_path / "std.out").exists()


def test_jdl_attributes_are_read_with_dirac_names_and_defaults() -> None:
    description = PayloadDescription.fromJDL(jdl(Executable="x.sh", Arguments='-c "print(1)"', CPUTime=500,
                                                 MaxRAM=2048, NumberOfProcessors=4, InputData=["/dirac/f"],
                                                 ExecutionEnvironment=["A=1", "B=x=y"]))
    assert description.arguments == '-c "print(1)"'
    assert (description.cpuTime, description.maxRAM, description.numberOfProcessors) == (500, 2048, 4)
    assert (description.stdOutput, description.stdError) == ("std.out", "std.err")
    assert description.executionEnvironment == {"A": "1", "B": "x=y"}
    assert description.inputData == ["/dirac/f"] and description.outputData == []


def test_limits_take_the_smallest_of_the_jdl_the_slot_and_the_configuration(tmp_path: Path) -> None:
    args = JobArguments(JobID=JOB_ID, JDL=jdl(Executable="/bin/true", CPUTime=1000, MaxRAM=4000,
                                              NumberOfProcessors=2),
                        CPUNormalizationFactor=10.0, WallClockLimit=7200, MaxRAM=2000)
    wrapper = JobWrapper(args, tmp_path, replace(FAST, MaxWallClockTime=3600, JobCPULimitMargin=20),
                         RecordingJobStateClient(), RecordingSandboxClient())
    wrapper.description = PayloadDescription.fromJDL(args.JDL)
    limits = wrapper.watchdogLimits()
    assert limits.cpuTime == pytest.approx(1000 / 10 * 2 * 1.2)
    assert limits.wallClockTime == 3600 and limits.maxRAM == 2000

