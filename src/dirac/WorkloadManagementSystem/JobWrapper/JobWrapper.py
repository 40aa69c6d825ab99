"""The JobWrapper: runs one job on a worker node and reports every step of it to the server.

Steps, each logged with the JobID and reported through ``JobReport`` (WorkloadManagement/JobStateUpdate):

1. initialisation: Running / "Job Initialization", job parameters about the node;
2. inputs: the ``SB:`` references of the JDL's InputSandbox unpacked in the working directory;
   its ``LFN:`` entries downloaded there, the InputData too or read in place through transport URLs, by the
   job's input data policy (``JobData``);
3. execution: ``Executable`` + ``Arguments`` run by ``/bin/sh`` in the working directory, stdout
   and stderr in ``StdOutput`` and ``StdError``, watched by the ``Watchdog``;
4. outputs: the OutputSandbox patterns (plus StdOutput and StdError) packed, uploaded and
   assigned to the job; OutputData stored on OutputSE (else a failover SE) and registered;
5. final status: Done / "Execution Complete", or Failed with the minor status of the first
   failure; Completed / "Pending Requests" when OutputData landed on a failover SE: the job's
   request (``FailoverRequest``) moves them later and the RequestExecutingAgent then sets it Done.
   Reports the JobStateUpdate does not take at the end go into that request (ForwardDISET) when the
   ReqManager takes it, else into the pending-reports file (with the request, for the JobAgent).
   A job stopped by the server (a ``Kill`` command) gets no status from the wrapper.
   A wrapper stopped from outside DIRAC (SIGTERM/SIGINT from the batch system, or from the pilot
   being stopped) reports its job Failed / "Received Kill signal" with the reason, then reschedules it
   (``rescheduleAfterStop``): the job did nothing wrong (Failed past MaxRescheduling).

``run()`` returns the wrapper's exit code (see ``EXIT_*`` and docs/jobwrapper.md).
"""

from __future__ import annotations

import glob
import os
import resource
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Config import gConfig
from dirac.Core.Tornado.Client import isTransient, isUnreachable
from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.JobWrapper.FailoverRequest import (
    JOB_STATE_UPDATE,
    LEFT,
    STORED,
    jobRequest,
    prependReports,
    putJobRequest,
    transferRequest,
    withoutReports,
)
from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import JobArguments, PayloadDescription
from dirac.WorkloadManagementSystem.JobWrapper.JobData import FailedOverFile, JobData, JobDataError
from dirac.WorkloadManagementSystem.JobWrapper.JobReport import JobReport
from dirac.WorkloadManagementSystem.JobWrapper.Settings import JobWrapperSettings
from dirac.WorkloadManagementSystem.JobWrapper.Watchdog import Watchdog, WatchdogLimits, cpuLimit, tail

EXIT_DONE = 0  #: the payload succeeded and everything was reported: the job is Done
EXIT_FAILED = 1  #: the job is Failed (application error, a limit, a failed step) and that was reported
EXIT_USAGE = 2  #: bad command line or job.json: nothing was run or reported
EXIT_KILLED = 5  #: the server stopped the job (Kill command): its status is the server's
EXIT_REPORTS_UNDELIVERED = 6  #: some reports could not be delivered: they are in PENDING_REPORTS_FILE
PENDING_REPORTS_FILE = "JobWrapperPendingReports.json"
SOURCE = "JobWrapper"
#: an output sandbox up to this size uploads in a moment: its Uploading status is not sent on its own
QUICK_UPLOAD_BYTES = 1024 * 1024
#: seconds an RPC call to JobStateUpdate may take
REPORT_TIMEOUT = 60
#: when the wrapper itself is told to stop (the inner CE sends SIGKILL some seconds later): seconds between
#: SIGTERM and SIGKILL to the payload, then seconds left to deliver the reports
SIGNALLED_KILL_GRACE = 3.0
SIGNALLED_REPORT_TIME = 5.0
#: exit codes of a payload ended by the stop signals a batch system sends to every process of a slot
STOPPED_PAYLOAD_EXIT_CODES = frozenset({128 + signal.SIGTERM, 128 + signal.SIGINT})

log = getLogger("WorkloadManagement/JobWrapper")


class JobWrapperError(JobDataError):
    """A step of the job failed: ``minorStatus`` is what the job's minor status says."""


def _insideDirectory(workDir: Path, name: str, what: str) -> Path:
    """``workDir/name``, refused (Illegal Job JDL) when it points outside the working directory."""
    path = (workDir / name).resolve()
    if not path.is_relative_to(workDir.resolve()):
        raise JobWrapperError(JobMinorStatus.ILLEGAL_JOB_JDL, f"{what} {name!r} is outside the working directory")
    return path


def resolveOutputSandbox(patterns: list[str], workDir: Path, exclude: set[Path]) -> tuple[list[Path], list[str]]:
    """(files and directories matching the patterns inside workDir, names without a match that have no wildcard)."""
    root = workDir.resolve()
    found: dict[Path, None] = {}
    missing = []
    for pattern in patterns:
        matches = [(workDir / match).resolve() for match in sorted(glob.glob(pattern, root_dir=workDir))]
        matches = [m for m in matches if m.is_relative_to(root) and m != root and m not in exclude and m.exists()]
        if not matches and not glob.has_magic(pattern):
            missing.append(pattern)
        for match in matches:
            found[match] = None
    return list(found), missing


def rescheduleAfterStop(signalled: int | None, killedByServer: bool, failureBeforeStop: str | None,
                        applicationExitCode: int | None) -> bool:
    """Whether the job of a wrapper that was stopped is to be rescheduled: it was stopped from outside DIRAC.

    A stop signal (``signalled``) reaches the wrapper only from outside DIRAC's control of the job: the
    batch system (cancelled, pre-empted, the slot's end) or the pilot being stopped. DIRAC stops jobs
    otherwise: a ``Kill`` command (``killedByServer``: the server's status stays) or the Watchdog for the
    job's own limits. The job is rescheduled unless it had failed on its own before the signal
    (``failureBeforeStop``: a limit, an application error, a failed step), where a payload that ended
    by the same stop signal a moment before its wrapper got it (``applicationExitCode`` 128+SIGTERM or
    128+SIGINT) was stopped from outside too.
    """
    if signalled is None or killedByServer:
        return False
    if failureBeforeStop is None:
        return True
    return failureBeforeStop == JobMinorStatus.APP_ERRORS and applicationExitCode in STOPPED_PAYLOAD_EXIT_CODES


def _exitCode(returncode: int) -> int:
    """The shell's convention: 128 + N for a process ended by signal N."""
    return 128 - returncode if returncode < 0 else returncode


class JobWrapper:
    """Runs the job described by a job.json in ``workDir``; clients are injected or made from the CS."""

    def __init__(self, arguments: JobArguments, workDir: str | Path = ".", settings: JobWrapperSettings | None = None,
                 jobStateClient: Any = None, sandboxClient: Any = None, dataManager: Any = None,
                 jobManager: Any = None, requestClient: Any = None):
        if jobStateClient is None:
            from dirac.WorkloadManagementSystem.Client.WMSClients import JobStateUpdateClient

            # a short timeout: the Watchdog must not hang on a heartbeat to a server that does not answer
            jobStateClient = JobStateUpdateClient(timeout=REPORT_TIMEOUT)
        if sandboxClient is None:
            from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient

            sandboxClient = SandboxStoreClient()
        self.arguments = arguments
        self.jobID = arguments.JobID
        self.workDir = Path(workDir).absolute()
        self.settings = settings or JobWrapperSettings.fromCS()
        self.jobStateClient = jobStateClient
        self.sandboxClient = sandboxClient
        #: the DataManager of the data steps, made when a job first needs one (with the wrapper's credentials)
        self.dataManager = dataManager
        #: JobManager, to reschedule a job stopped from outside (made when needed)
        self.jobManager = jobManager
        #: ReqClient, for the job's failover request (made when needed)
        self.requestClient = requestClient
        #: OutputData files stored on a failover SE, to be moved by the job's request
        self.failedOver: list[FailedOverFile] = []
        self.report = JobReport(self.jobID, jobStateClient, SOURCE, self.settings.ReportRetryDelay)
        self.description: PayloadDescription | None = None
        self.cpuNormalizationFactor = arguments.CPUNormalizationFactor or gConfig.getValue(
            "/LocalSite/CPUNormalizationFactor", 0.0)
        #: minor status of the first failure (the job ends Failed with it), None while all is well
        self.failure: str | None = None
        #: True when the server told the wrapper to stop the job: no status may be set after that
        self.killed = False
        self.payloadStarted = False
        self.outputSandboxTried = False
        self.applicationExitCode: int | None = None
        self.signalled: int | None = None
        #: the first failure (or Watchdog stop) decided before the wrapper was told to stop
        self.failureBeforeStop: str | None = None
        self.watchdog: Watchdog | None = None
        self.stdOutput: Path | None = None
        self.stdError: Path | None = None
        #: variables naming the files that list the InputData for the payload (set by resolveInputData)
        self.inputDataEnvironment: dict[str, str] = {}
        self._interruptible = False

    # -- reporting helpers ----------------------------------------------------------------------------
    def _status(self, status: str = "", minorStatus: str = "", applicationStatus: str = "", send: bool = False) -> None:
        """Record a status change, unless the job was killed (the server's Killed must stay).

        Records wait for the next sending: ``send`` when a step that may take a while starts (a
        transfer, the payload), so that the job shows it meanwhile; the payload's polling loop and the
        end of the job send whatever waits. Parameters wait for those two."""
        if not self.killed:
            self.report.setJobStatus(status, minorStatus, applicationStatus, sendFlag=False)
        if send:
            self.report.flush(withParameters=False)

    def _fail(self, minorStatus: str, message: str) -> None:
        """Remember the first failure and say why, as a job parameter too."""
        log.error("Job %d: %s: %s", self.jobID, minorStatus, message)
        if self.failure is None:
            self.failure = minorStatus
        self.report.setJobParameter("Error Message", message, sendFlag=False)

    def _whileServerAway(self, what: str, call: Callable[[], dict]) -> dict:
        """``call()`` again and again while no server answers it (a restart), for up to ReportRetryTime seconds."""
        deadline = time.monotonic() + self.settings.ReportRetryTime
        while True:
            result = call()
            if not isUnreachable(result) or time.monotonic() + self.settings.ReportRetryDelay > deadline:
                return result
            log.warning("Job %d: %s: no server answers, trying again in %.1f s: %s", self.jobID, what,
                        self.settings.ReportRetryDelay, result["Message"])
            time.sleep(self.settings.ReportRetryDelay)

    # -- the whole job -------------------------------------------------------------------------------
    def run(self) -> int:
        """Run every step and report the outcome; the exit code for the JobAgent."""
        try:
            self._interruptible = True
            self.initialize()
            self.transferInputSandbox()
            self.resolveInputData()
            self._interruptible = False
            self.execute()
            self.processOutputs()
        except JobDataError as exc:  # JobWrapperError too
            self._fail(exc.minorStatus, exc.message)
            if self.payloadStarted and not self.outputSandboxTried and self.signalled is None:
                self._processOutputsAfterFailure()
        except WrapperInterrupted:
            self._fail(JobMinorStatus.RECEIVED_KILL_SIGNAL,
                       f"the JobWrapper received {signal.Signals(self.signalled or signal.SIGTERM).name}")
        except Exception as exc:
            log.exception("Job %d: the JobWrapper failed", self.jobID)
            self._fail(JobMinorStatus.EXCEPTION_DURING_EXEC, f"{type(exc).__name__}: {exc}")
        finally:
            self._interruptible = False
        return self.finalize()

    def interrupt(self, signum: int) -> None:
        """The wrapper was asked to stop (SIGTERM/SIGINT): stop the payload, fail the job, report quickly."""
        if self.signalled is not None:
            return
        self.signalled = signum
        self.failureBeforeStop = self.failure or (self.watchdog.failureReason if self.watchdog is not None else None)
        log.warning("Job %d: the JobWrapper received %s", self.jobID, signal.Signals(signum).name)
        if self.watchdog is not None and self.watchdog.is_alive():
            self.watchdog.requestKill(JobMinorStatus.RECEIVED_KILL_SIGNAL, grace=SIGNALLED_KILL_GRACE)
        elif self._interruptible:
            raise WrapperInterrupted()

    # -- 1. initialisation ---------------------------------------------------------------------------
    def initialize(self) -> None:
        """Running / Job Initialization; read the JDL; job parameters about the node."""
        log.info("Job %d: initialization in %s", self.jobID, self.workDir)
        self._status(JobStatus.RUNNING, JobMinorStatus.JOB_INITIALIZATION)
        try:
            self.description = PayloadDescription.fromJDL(self.arguments.JDL)
        except InvalidArgument as exc:
            raise JobWrapperError(JobMinorStatus.ILLEGAL_JOB_JDL, exc.message) from exc
        try:
            agent = f"dirac-seed {version('dirac-seed')}"
        except PackageNotFoundError:
            agent = "dirac-seed"
        self.report.setJobParameters([
            ("HostName", socket.gethostname()),
            ("LocalAccount", _localAccount()),
            ("Pilot_Reference", self.arguments.PilotReference or "Unknown"),
            ("PilotAgent", agent),
            ("Site", self.arguments.Site),
            ("GridCE", self.arguments.GridCE),
            ("CPUNormalizationFactor", self.cpuNormalizationFactor),
            ("NumberOfProcessors", self.description.numberOfProcessors),
            ("WorkingDirectory", str(self.workDir)),
            ("JobWrapperPID", os.getpid()),
        ], sendFlag=False)

    # -- 2. inputs ------------------------------------------------------------------------------------
    def transferInputSandbox(self) -> None:
        """Download and unpack the input sandboxes (SB: references) into the working directory."""
        assert self.description is not None
        entries = self.description.inputSandbox
        references = [entry for entry in entries if entry.startswith("SB:")]
        lfns = [entry for entry in entries if entry.startswith("LFN:")]
        if not entries:
            log.info("Job %d: no input sandbox", self.jobID)
            return
        log.info("Job %d: downloading the input sandbox: %d sandbox(es), %d LFN(s)", self.jobID, len(references),
                 len(lfns))
        self._status(minorStatus=JobMinorStatus.DOWNLOADING_INPUT_SANDBOX, send=True)
        for reference in references:
            result = self._whileServerAway("input sandbox download",
                                           lambda ref=reference: self.sandboxClient.downloadSandbox(ref, self.workDir))
            if not result["OK"]:
                raise JobWrapperError(JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX,
                                      f"cannot download the input sandbox {reference}: {result['Message']}")
            log.info("Job %d: input sandbox %s: %d file(s)", self.jobID, reference, len(result["Value"]))
        if lfns:
            self._status(minorStatus=JobMinorStatus.DOWNLOADING_INPUT_SANDBOX_LFN, send=True)
            self.downloadInputSandboxLFNs([lfn.removeprefix("LFN:") for lfn in lfns])
        others = [entry for entry in entries if not entry.startswith(("SB:", "LFN:"))]
        for name in others:
            if not (self.workDir / os.path.basename(name)).exists():
                log.warning("Job %d: input sandbox file %s is not in the working directory", self.jobID, name)

    def jobData(self) -> JobData:
        """The data steps of this job, with the wrapper's credentials."""
        if self.dataManager is None:
            from dirac.DataManagementSystem.Client.DataManager import DataManager

            self.dataManager = DataManager()
        arguments = self.arguments
        return JobData(self.jobID, self.workDir, arguments.Site, arguments.Owner, arguments.OwnerGroup, arguments.VO,
                       self.dataManager, self.report)

    def downloadInputSandboxLFNs(self, lfns: list[str]) -> None:
        """Bring the input sandbox files given as LFNs to the working directory."""
        self.jobData().downloadInputSandboxLFNs(lfns)

    def resolveInputData(self) -> None:
        """Make the job's InputData available to the payload, by its input data policy (download, or read in place
        through transport URLs); the payload's environment names the files listing them."""
        assert self.description is not None
        if not self.description.inputData:
            return
        log.info("Job %d: resolving %d input data file(s)", self.jobID, len(self.description.inputData))
        self._status(minorStatus=JobMinorStatus.INPUT_DATA_RESOLUTION, send=True)
        self.inputDataEnvironment = self.jobData().resolveInputData(self.description.inputData,
                                                                    self.description.inputDataPolicy)

    # -- 3. execution ---------------------------------------------------------------------------------
    def prepareCommand(self) -> str:
        """The shell command of the payload; the executable made executable when shipped in the sandbox."""
        assert self.description is not None
        executable = os.path.expandvars(self.description.executable.strip())
        if not executable:
            raise JobWrapperError(JobMinorStatus.APP_NOT_FOUND, "the JDL has no Executable")
        if "/" not in executable:
            executable = shutil.which(executable) or executable
        path = self.workDir / executable
        if not path.is_file():
            raise JobWrapperError(JobMinorStatus.APP_NOT_FOUND, f"executable {executable} not found")
        if not os.access(path, os.X_OK):
            try:
                path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            except OSError as exc:
                log.warning("Job %d: cannot make %s executable: %s", self.jobID, path, exc)
        command = shlex.quote(str(path))
        return f"{command} {self.description.arguments}" if self.description.arguments else command

    def prepareEnvironment(self) -> dict[str, str]:
        """The payload's environment: the wrapper's, the job's identity, and the JDL's ExecutionEnvironment."""
        assert self.description is not None
        environment = dict(os.environ)
        environment.update({
            "JOBID": str(self.jobID),
            "DIRACJOBID": str(self.jobID),
            "DIRACSITE": self.arguments.Site,
            "DIRAC_PROCESSORS": str(self.description.numberOfProcessors),
            **self.inputDataEnvironment,
        })
        environment.update(self.description.executionEnvironment)
        return environment

    def watchdogLimits(self) -> WatchdogLimits:
        """The payload's limits from the JDL, the slot and the CS (see docs/jobwrapper.md)."""
        assert self.description is not None
        description, settings = self.description, self.settings
        checkCPU = not description.disableCPUCheck and description.jobType != "Test"
        cpuTime = description.cpuTime if description.cpuTime is not None else settings.DefaultCPUTime
        return WatchdogLimits(
            cpuTime=cpuLimit(cpuTime, self.cpuNormalizationFactor, description.numberOfProcessors,
                             settings.JobCPULimitMargin) if checkCPU else 0.0,
            wallClockTime=min([v for v in (self.arguments.WallClockLimit, settings.MaxWallClockTime) if v > 0],
                              default=0.0),
            maxRAM=min([v for v in (description.maxRAM, self.arguments.MaxRAM) if v > 0], default=0),
        )

    def execute(self) -> None:
        """Run the payload under the Watchdog until it ends; record how it ended."""
        assert self.description is not None
        command = self.prepareCommand()
        environment = self.prepareEnvironment()
        self.stdOutput = _insideDirectory(self.workDir, self.description.stdOutput, "StdOutput")
        self.stdError = _insideDirectory(self.workDir, self.description.stdError, "StdError")
        limits = self.watchdogLimits()
        log.info("Job %d: executing %s", self.jobID, command)
        self._status(minorStatus=JobMinorStatus.APPLICATION,
                     applicationStatus=f"Executing {os.path.basename(self.description.executable)}", send=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(self.stdOutput, "ab") as out:
            err = out if self.stdError == self.stdOutput else open(self.stdError, "ab")
            try:
                process = subprocess.Popen(command, shell=True, cwd=self.workDir, env=environment,
                                           stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
            except OSError as exc:
                raise JobWrapperError(JobMinorStatus.APP_NOT_FOUND, f"cannot start {command}: {exc}") from exc
            finally:
                if err is not out:
                    err.close()
        self.payloadStarted = True
        self.report.setJobParameter("PayloadPID", process.pid, sendFlag=False)
        self.watchdog = Watchdog(self.jobID, process, self.jobStateClient, limits, self.settings, self.workDir,
                                 self.stdOutput, log)
        self.watchdog.start()
        if self.signalled is not None:
            self.watchdog.requestKill(JobMinorStatus.RECEIVED_KILL_SIGNAL, grace=SIGNALLED_KILL_GRACE)
        try:
            while True:
                try:
                    returncode = process.wait(timeout=self.settings.PollingTime)
                    break
                except subprocess.TimeoutExpired:
                    if self.report.pending:  # a backlog from a moment when the server could not be reached
                        self.report.flush()
        finally:
            if process.poll() is None:  # the wrapper failed while waiting: never leave the payload behind
                self.watchdog.requestKill(JobMinorStatus.EXCEPTION_DURING_EXEC)
                process.wait()
            self.watchdog.stop()
            self.watchdog.join()
        left = self.watchdog.tree.terminate(self.settings.KillGracePeriod, log, f"Job {self.jobID}")
        if left:
            log.warning("Job %d: stopped %d process(es) the payload left running", self.jobID, left)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = max(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, self.watchdog.lastSample.cpu)
        self._recordExecution(_exitCode(returncode), cpu)

    def _recordExecution(self, exitCode: int, cpu: float) -> None:
        """Parameters of the execution, the final heartbeat, and what the outcome means for the job."""
        assert self.watchdog is not None
        watchdog = self.watchdog
        self.applicationExitCode = exitCode
        normalised = cpu * self.cpuNormalizationFactor if self.cpuNormalizationFactor else cpu
        log.info("Job %d: payload ended with exit code %d after %.1f s (CPU %.1f s, max memory %.1f MB)", self.jobID,
                 exitCode, watchdog.wallClock, cpu, watchdog.maxRSS)
        self.report.setJobParameters([
            ("ApplicationExitCode", exitCode),
            ("TotalCPUTime(s)", round(cpu, 2)),
            ("NormCPUTime(s)", round(normalised, 2)),
            ("WallClockTime(s)", round(watchdog.wallClock, 1)),
            ("MaxMemoryUsed(MB)", round(watchdog.maxRSS, 1)),
        ], sendFlag=False)
        if watchdog.killedByCommand:
            self.killed = True
        elif not watchdog.failureReason:
            self._finalHeartBeat(cpu)
        if self.killed:
            log.warning("Job %d: the job was killed: its status stays as the server set it", self.jobID)
            return
        if watchdog.failureReason:
            self.report.setJobParameter("ApplicationError", watchdog.failureReason, sendFlag=False)
            self._fail(watchdog.failureReason, f"the Watchdog stopped the payload: {watchdog.failureReason}")
            if self.signalled is None:  # a stopped wrapper goes from Running to Failed (then rescheduled)
                self._status(JobStatus.COMPLETING, watchdog.failureReason, f"Stopped: {watchdog.failureReason}")
        elif exitCode != 0:
            self.report.setJobParameter("ApplicationError", str(exitCode), sendFlag=False)
            self._fail(JobMinorStatus.APP_ERRORS, f"the payload exited with code {exitCode}")
            self._status(JobStatus.COMPLETING, JobMinorStatus.APP_ERRORS, f"Exited with code {exitCode}")
        else:
            self._status(JobStatus.COMPLETING, JobMinorStatus.APP_SUCCESS, "Exited with code 0")

    def _finalHeartBeat(self, cpu: float) -> None:
        """Last numbers and output lines; its answer tells whether the job was killed meanwhile."""
        assert self.watchdog is not None
        dynamic, _ = self.watchdog.heartBeatData(self.watchdog.lastSample)
        dynamic["CPUConsumed"] = round(cpu, 2)
        output = tail(self.stdOutput, self.settings.MaxJobPeekLines)
        result = self.jobStateClient.sendHeartBeat(self.jobID, dynamic, {"StandardOutput": output} if output else {})
        if not result["OK"]:
            log.warning("Job %d: final heartbeat not sent: %s", self.jobID, result["Message"])
        elif isinstance(result["Value"], dict) and "Kill" in result["Value"]:
            log.warning("Job %d: Kill command received with the final heartbeat", self.jobID)
            self.killed = True

    # -- 4. outputs -----------------------------------------------------------------------------------
    def processOutputs(self) -> None:
        """Upload the output sandbox, then the output data (not when the wrapper is being stopped)."""
        assert self.description is not None
        if self.signalled is not None:
            log.warning("Job %d: the JobWrapper is being stopped: outputs are not uploaded", self.jobID)
            return
        self.uploadOutputSandbox()
        if self.description.outputData and self.failure is None:  # as in DIRAC: not the data of a failed job
            self.uploadOutputData(self.description.outputData, self.description.outputSE)
        elif self.description.outputData:
            log.warning("Job %d: the job failed: its OutputData are not uploaded", self.jobID)

    def _processOutputsAfterFailure(self) -> None:
        """The payload ran but a later step failed: still try to bring its output back."""
        try:
            self.uploadOutputSandbox()
        except JobWrapperError as exc:
            self._fail(exc.minorStatus, exc.message)

    def _privateFiles(self) -> set[Path]:
        """Files of the wrapper and the pilot that must never leave the node in a sandbox."""
        private = {self.workDir / "job.json", self.workDir / PENDING_REPORTS_FILE}
        for variable in ("X509_USER_PROXY", "BEARER_TOKEN_FILE"):
            if os.environ.get(variable):
                private.add(Path(os.environ[variable]))
        return {path.resolve() for path in private}

    def uploadOutputSandbox(self) -> None:
        """Pack the files matching OutputSandbox (and StdOutput/StdError), upload them and assign them to the job."""
        assert self.description is not None
        self.outputSandboxTried = True
        patterns = list(dict.fromkeys(self.description.outputSandbox + [self.description.stdOutput,
                                                                        self.description.stdError]))
        self._status(JobStatus.COMPLETING if self.failure is None else "", JobMinorStatus.RESOLVING_OUTPUT_SANDBOX)
        files, missing = resolveOutputSandbox(patterns, self.workDir, self._privateFiles())
        if missing:
            log.warning("Job %d: output sandbox files not found: %s", self.jobID, ", ".join(missing))
            self.report.setJobParameter("OutputSandboxMissingFiles", ", ".join(missing), sendFlag=False)
        if not files:
            log.info("Job %d: no output sandbox file to upload", self.jobID)
            return
        size = _totalSize(files)
        log.info("Job %d: uploading the output sandbox: %d file(s), %d bytes", self.jobID, len(files), size)
        # a small sandbox is uploaded at once: its status goes with the next report
        self._status(minorStatus=JobMinorStatus.UPLOADING_OUTPUT_SANDBOX, send=size > QUICK_UPLOAD_BYTES)
        result = self._whileServerAway("output sandbox upload", lambda: self.sandboxClient.uploadFilesAsSandbox(
            files, self.settings.OutputSandboxLimit, assignTo={f"Job:{self.jobID}": "Output"}))
        if not result["OK"]:
            raise JobWrapperError(JobMinorStatus.UPLOADING_JOB_OUTPUTS,
                                  f"cannot upload the output sandbox: {result['Message']}")
        reference = result["Value"]
        log.info("Job %d: output sandbox uploaded and assigned as %s", self.jobID, reference)
        self.report.setJobParameter("OutputSandbox", reference, sendFlag=False)
        self._status(minorStatus=JobMinorStatus.OUTPUT_SANDBOX_UPLOADED)

    def uploadOutputData(self, lfns: list[str], outputSEs: list[str]) -> None:
        """Store the OutputData files on OutputSE (else a failover SE) and register them."""
        assert self.description is not None
        self._status(minorStatus=JobMinorStatus.UPLOADING_OUTPUT_DATA, send=True)
        data = self.jobData()
        data.upload(lfns, outputSEs, self.description.outputPath)
        self.failedOver = data.failedOver
        self._status(JobStatus.COMPLETING, JobMinorStatus.OUTPUT_DATA_UPLOADED)

    # -- 5. the end -----------------------------------------------------------------------------------
    def _reschedule(self) -> bool:
        """Send the job back for a new attempt (JobManager.rescheduleJob); False when the server was not reached."""
        if self.jobManager is None:
            from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient

            self.jobManager = JobManagerClient(timeout=REPORT_TIMEOUT)
        result = self.jobManager.rescheduleJob(self.jobID)
        if result["OK"]:
            log.info("Job %d: rescheduled", self.jobID)
        elif isTransient(result):
            log.error("Job %d: cannot reach the JobManager to reschedule it: %s", self.jobID, result["Message"])
            return False
        else:  # e.g. Maximum of reschedulings reached: the server has set it Failed
            log.error("Job %d: not rescheduled: %s", self.jobID, result["Message"])
        return True

    def finalize(self) -> int:
        """Report the final status, deliver every report (or write them to a file); the exit code."""
        reschedule = rescheduleAfterStop(self.signalled, self.killed, self.failureBeforeStop, self.applicationExitCode)
        reason = ""
        request = None if self.killed or self.signalled is not None or self.failure is not None else \
            transferRequest(self.jobID, self.arguments.Owner, self.arguments.OwnerGroup, self.failedOver)
        if self.killed:
            log.info("Job %d: finished, killed", self.jobID)
        elif reschedule:
            reason = (f"Stopped by {signal.Signals(self.signalled or signal.SIGTERM).name} from outside DIRAC "
                      "(batch system or pilot), not by a fault of the job: rescheduling it")
            log.warning("Job %d: %s", self.jobID, reason)
            # DIRAC's state machine reschedules a running or completing job from Failed: the record says why
            self._status(JobStatus.FAILED, JobMinorStatus.RECEIVED_KILL_SIGNAL, reason)
        elif self.failure is not None:
            log.info("Job %d: finished: %s / %s", self.jobID, JobStatus.FAILED, self.failure)
            self._status(JobStatus.FAILED, self.failure)
        elif request is not None:
            log.info("Job %d: finished: %s / %s: %d output file(s) on failover SEs to move", self.jobID,
                     JobStatus.COMPLETED, JobMinorStatus.PENDING_REQUESTS, len(self.failedOver))
            self.report.setJobParameter("PendingRequest", request.getDigest()["Value"], sendFlag=False)
            self._status(JobStatus.COMPLETED, JobMinorStatus.PENDING_REQUESTS)
        else:
            log.info("Job %d: finished: %s / %s", self.jobID, JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
            self._status(JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
        # a wrapper being stopped has only the few seconds before SIGKILL to report
        timeout = min(self.settings.ReportRetryTime, SIGNALLED_REPORT_TIME) if self.signalled \
            else self.settings.ReportRetryTime
        delivered = self.report.commit(timeout)
        if not delivered and self.signalled is None and not self.killed:  # DIRAC's ForwardDISET of the reports
            request = request or jobRequest(self.jobID, self.arguments.Owner, self.arguments.OwnerGroup)
            prependReports(request, self.report.pendingCalls(), getattr(self.jobStateClient, "service", JOB_STATE_UPDATE))
        leftRequest = ""  # the request's JSON when the ReqManager could not take it: the JobAgent puts it
        if request is not None:
            delivered, leftRequest = self._sendRequest(request, delivered)
        later = ""  # a reschedule the server could not be asked for now
        if reschedule and not self.report.rejected and not (delivered and self._reschedule()):
            later = reason
        if not delivered or self.report.rejected or later or leftRequest:
            # "Reschedule": whoever delivers these reports (the JobAgent) reschedules the job after them;
            # "Request": and puts the job's request
            self.report.dump(self.workDir / PENDING_REPORTS_FILE, **({"Reschedule": later} if later else {}),
                             **({"Request": leftRequest} if leftRequest else {}))
        if self.killed:
            return EXIT_KILLED
        if self.signalled is not None:
            return 128 + self.signalled
        if not delivered or self.report.rejected or leftRequest:
            return EXIT_REPORTS_UNDELIVERED
        return EXIT_FAILED if self.failure is not None else EXIT_DONE

    def _sendRequest(self, request: Any, delivered: bool) -> tuple[bool, str]:
        """Put the job's request: (whether every report is now delivered, the request's JSON when it is left for
        the JobAgent). Stored, a request holding the undelivered reports (ForwardDISET) delivers them; refused,
        it fails the job (Failed sending requests), as in DIRAC."""
        if self.requestClient is None:
            from dirac.RequestManagementSystem.Client.ReqClient import ReqClient

            self.requestClient = ReqClient(timeout=REPORT_TIMEOUT)
        outcome, detail = putJobRequest(self.requestClient, request, self._whileServerAway)
        if outcome == STORED:
            if any(operation.Type == "ForwardDISET" for operation in request):
                self.report.handedOver()
                return True, ""
            return delivered, ""
        if outcome == LEFT:  # the reports stay in the pending-reports file: the JobAgent delivers them
            return delivered, withoutReports(request)
        self.failure = JobMinorStatus.FAILED_SENDING_REQUESTS
        self.report.setJobParameter("Error Message", f"the failover request was refused: {detail}", sendFlag=False)
        self._status(JobStatus.FAILED, JobMinorStatus.FAILED_SENDING_REQUESTS)
        return self.report.commit(min(self.settings.ReportRetryTime, SIGNALLED_REPORT_TIME)), ""


def _totalSize(paths: list[Path]) -> int:
    """Bytes of the files, those inside directories included."""
    total = 0
    for path in paths:
        files = [path] if not path.is_dir() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            try:
                total += file.stat().st_size
            except OSError:
                continue
    return total


class WrapperInterrupted(Exception):
    """The wrapper was asked to stop before the payload started."""


def _localAccount() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())
