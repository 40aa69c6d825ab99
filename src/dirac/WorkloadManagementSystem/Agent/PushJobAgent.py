"""PushJobAgent: runs jobs on sites whose worker nodes cannot reach the server (HPC without outbound access).

The agent runs on the edge, next to the server. For each queue it serves (``CEs``, required,
narrowed by ``Site`` and ``CETypes``; the queue's CE options as for the SiteDirector), every cycle:

1. it asks the Matcher for jobs itself, with a pilot proxy made from ``PilotCertificate`` and
   ``PilotKey`` for ``PilotGroup`` (by default the SiteDirector's), as many as the CE has free
   slots (at most ``MaxJobsToSubmit``);
2. it downloads each job's input sandbox and submits a self-contained bundle
   (``Logic/PushBundle.py``: the job description, the input files and a standard-library runner)
   to the CE, with no proxy and no token: the node never calls the server;
3. it follows the batch jobs, sends a heartbeat for each running job (a ``Kill`` command from the
   server cancels its batch job), and when one ends reads its result from the batch job's
   output: exit code, CPU time, standard output and error and the output sandbox files, which it
   uploads and assigns to the job before setting it Done or Failed.

A queue whose slots have several processors (``NumberOfProcessors``: a whole node) gets whole-node
bundles: the agent asks the Matcher again while processors are left (single-core jobs take one,
multi-core jobs their ``NumberOfProcessors``) and submits the jobs as one batch job that runs them
side by side (``PushBundle.buildNodeBundle``); each job's result is read from its own part of the
batch job's output. A Kill of one job of a node leaves the others running; the batch job is
cancelled when none of its jobs is left.

A job whose bundle the CE refuses is rescheduled. What the agent pushed is remembered in
``<WorkDirectory>/<JobID>/push.json``, so a restarted agent follows its jobs on.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Config import gConfig
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument
from dirac.Resources.Computing.ComputingElement import (
    ABORTED,
    PILOT_FINAL_STATES,
    RUNNING,
    ComputingElement,
)
from dirac.WorkloadManagementSystem.Agent.QueueAgent import QueueAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient, JobStateUpdateClient, MatcherClient
from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import PayloadDescription
from dirac.WorkloadManagementSystem.JobWrapper.Settings import JobWrapperSettings
from dirac.WorkloadManagementSystem.Logic.PushBundle import (
    BundleError,
    buildBundle,
    buildNodeBundle,
    jobOutput,
    parseResult,
    payloadDescription,
    unpackOutputs,
)

AGENT_NAME = "WorkloadManagement/PushJobAgent"
SOURCE = "PushJobAgent"
NO_MATCH = "No match found"
STATE_FILE = "push.json"
SUBMITTED_TO_CE = "Submitted to the CE"
DEFAULT_QUEUE_CPU_TIME = 86400


class PushFailure(Exception):
    """A job cannot be pushed: ``minorStatus`` is the minor status it fails with."""

    def __init__(self, minorStatus: str, message: str):
        super().__init__(message)
        self.minorStatus = minorStatus
        self.message = message


@dataclass
class PushedJob:
    """A job the agent submitted: where, as which batch job, and the last status seen."""

    jobID: int
    queue: str
    reference: str
    ceStatus: str = "Submitted"
    node: str = ""  # the directory of the whole-node bundle it is part of ("" when alone)


class PushJobAgent(QueueAgent):
    """Matches jobs for remote queues and runs them there as self-contained bundles."""

    # CEs is required here (no CE, no work); PilotCertificate and PilotKey default to the SiteDirector's
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **QueueAgent.DEFAULTS,
        "MaxJobsToSubmit": 10,       # batch jobs per queue and cycle (a whole-node one holds several jobs)
        "MaxInputSandboxSize": 50 * 1024 * 1024,  # bytes of input files shipped in one bundle
        "CleanTask": True,           # remove the local copy of a job's bundle and outputs once reported
    }

    def __init__(self, agentName: str = AGENT_NAME, matcher: Any = None, jobReport: Any = None,
                 sandboxClient: Any = None, jobManager: Any = None):
        super().__init__(agentName)
        self.matcher = matcher
        self.jobReport = jobReport
        self.sandboxClient = sandboxClient
        self.jobManager = jobManager
        self.pushed: dict[int, PushedJob] = {}
        self._ownClients = False  # clients made here, with the matching proxy (not injected)

    # -- set-up ------------------------------------------------------------------------------------------
    def initialize(self) -> None:
        super().initialize()
        if any(client is None for client in (self.matcher, self.jobReport, self.sandboxClient, self.jobManager)):
            self._makeClients()
        for state in sorted(self.workDirectory.glob(f"*/{STATE_FILE}")):
            try:
                job = PushedJob(**json.loads(state.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                self.log.error("cannot read %s: %s", state, exc)
                continue
            self.pushed[job.jobID] = job
        if self.pushed:
            self.log.info("following %d job(s) pushed before a restart", len(self.pushed))

    @property
    def proxyFile(self) -> Path:
        return self.workDirectory / "matching.proxy"

    def _makeClients(self) -> None:
        if not self.queues():
            return  # nothing to serve: no credential needed
        self._refreshProxy()
        self._ownClients = True
        proxyFile = str(self.proxyFile)
        self.matcher = self.matcher or MatcherClient(proxyLocation=proxyFile)
        self.jobReport = self.jobReport or JobStateUpdateClient(proxyLocation=proxyFile)
        self.sandboxClient = self.sandboxClient or SandboxStoreClient(proxyLocation=proxyFile)
        self.jobManager = self.jobManager or JobManagerClient(proxyLocation=proxyFile)

    def queues(self) -> dict[str, dict[str, Any]]:
        """The queues served: those of the CEs named in ``CEs`` (none when it is empty)."""
        return self.configuredQueues() if self._listOption("CEs") else {}

    def _refreshProxy(self) -> None:
        """Write the matching proxy where the clients read it, when it is new."""
        current = self._proxy
        proxy = self.pilotProxy()
        if proxy is not current or not self.proxyFile.exists():
            writePrivateFile(self.proxyFile, proxy.toPEM())

    def pilotCredential(self) -> tuple[str, str]:
        """The agent's PilotCertificate and PilotKey, else the SiteDirector's."""
        director = "/Systems/WorkloadManagement/Agents/SiteDirector"
        return (self.am_getOption("PilotCertificate") or gConfig.getValue(f"{director}/PilotCertificate", ""),
                self.am_getOption("PilotKey") or gConfig.getValue(f"{director}/PilotKey", ""))

    # -- one cycle ---------------------------------------------------------------------------------------------
    def execute(self) -> str:
        queues = self.queues()
        if not queues:
            return "no queue to serve (set CEs)"
        if self.matcher is None:
            self._makeClients()
        elif self._ownClients:
            self._refreshProxy()
        finished = self.followJobs()
        submitted = 0
        for name, parameters in queues.items():
            if self.stopRequested:
                break
            if self._backingOff(name):
                continue
            try:
                submitted += self.pushJobs(name, parameters)
            except (ConfigurationError, OSError) as exc:
                self._failed(name, f"{type(exc).__name__}: {exc}")
        return f"{submitted} job(s) pushed, {finished} finished, {len(self.pushed)} followed"

    # -- matching and pushing ----------------------------------------------------------------------------------
    def resourceDescription(self, ce: ComputingElement) -> dict[str, Any]:
        """The queue as the Matcher sees it (what a pilot in it would say)."""
        description = ce.getDescription()
        if not description["OK"]:
            raise ConfigurationError(f"CE {ce.ceName}: no description: {description['Message']}")
        resource = dict(description["Value"])
        resource.update({"CPUTime": ce.cpuTime() or DEFAULT_QUEUE_CPU_TIME, "CEQueue": resource.get("Queue", "")})
        return {key: value for key, value in resource.items() if value not in ("", None, [])}

    def pushJobs(self, name: str, parameters: dict[str, Any]) -> int:
        """Match and push as many jobs as queue ``name`` takes now; how many were pushed."""
        ce = self._ce(name, parameters)
        available = ce.available()
        if not available["OK"]:
            self._failed(name, f"cannot tell its free slots: {available['Message']}")
            return 0
        pushed = 0
        for _ in range(min(int(available["Value"]), int(self.am_getOption("MaxJobsToSubmit")))):
            matches = self.matchJobs(name, ce)
            if not matches:
                break
            if not self.pushAllocation(name, ce, matches):
                break  # the CE refused: leave the queue alone for a while
            pushed += len(matches)
        return pushed

    def matchJobs(self, name: str, ce: ComputingElement) -> list[dict[str, Any]]:
        """The jobs for one batch job of ``ce``: one, or as many as fill the processors of a whole node."""
        matches: list[dict[str, Any]] = []
        free = max(1, ce.numberOfProcessors)
        while free > 0:
            match = self.matcher.requestJob({**self.resourceDescription(ce), "NumberOfProcessors": free})
            if not match["OK"]:
                if NO_MATCH not in match["Message"]:
                    self.log.warning("queue %s: the Matcher refused: %s", name, match["Message"])
                break
            matches.append(match["Value"])
            free -= max(1, int(match["Value"].get("NumberOfProcessors") or 1))
        return matches

    def pushAllocation(self, name: str, ce: ComputingElement, matches: list[dict[str, Any]]) -> bool:
        """Bundle the matched jobs and submit them to ``ce`` as one batch job; False when the CE refused it."""
        prepared: list[tuple[int, dict[str, Any], Path]] = []
        for match in matches:
            jobID = int(match["JobID"])
            jobDir = self.workDirectory / str(jobID)
            shutil.rmtree(jobDir, ignore_errors=True)
            jobDir.mkdir(parents=True)
            self.log.info("Job %d matched for queue %s (owner %s/%s)", jobID, name, match.get("Owner", ""),
                          match.get("OwnerGroup", ""))
            try:
                prepared.append((jobID, *self._preparePayload(jobID, match, ce, jobDir)))
            except PushFailure as exc:
                self._finish(jobID, JobStatus.FAILED, exc.minorStatus, exc.message)
        if not prepared:
            return True
        jobIDs = [jobID for jobID, _, _ in prepared]
        if len(prepared) == 1:
            node = ""
            bundle = self.workDirectory / str(jobIDs[0]) / f"job-{jobIDs[0]}.py"
            bundle.write_text(buildBundle(prepared[0][1], prepared[0][2]))
        else:
            node = f"node-{jobIDs[0]}"
            (self.workDirectory / node).mkdir(exist_ok=True)
            bundle = self.workDirectory / node / f"{node}.py"
            bundle.write_text(buildNodeBundle([(payload, inputs) for _, payload, inputs in prepared]))
        result = ce.submitJob(str(bundle), None, numberOfJobs=1)
        if not result["OK"]:
            self._failed(name, f"Job(s) {', '.join(map(str, jobIDs))}: the CE refused the bundle: {result['Message']}")
            for jobID in jobIDs:
                self._reschedule(jobID)  # if not, it stays Matched: the StalledJobAgent reschedules it after MatchedTime
                shutil.rmtree(self.workDirectory / str(jobID), ignore_errors=True)
            if node:
                shutil.rmtree(self.workDirectory / node, ignore_errors=True)
            return False
        self._recovered(name, "the CE takes jobs")
        reference = result["Value"][0]
        for jobID in jobIDs:
            job = PushedJob(jobID, name, reference, node=node)
            self.pushed[jobID] = job
            (self.workDirectory / str(jobID) / STATE_FILE).write_text(json.dumps(asdict(job)))
            self._report(jobID, JobStatus.RUNNING, SUBMITTED_TO_CE, f"Queued in {ce.ceName}")
            self._parameters(jobID, [("Pilot_Reference", reference), ("GridCE", ce.ceName),
                                     ("Site", str(ce.getParameter("Site"))), ("PilotAgent", SOURCE)])
        self.log.info("Job(s) %s: bundle submitted to %s as %s", ", ".join(map(str, jobIDs)), ce.ceName, reference)
        return True

    def _preparePayload(self, jobID: int, match: dict[str, Any], ce: ComputingElement, jobDir: Path
                        ) -> tuple[dict[str, Any], Path]:
        """(payload description, directory of its input files) of a matched job."""
        try:
            description = PayloadDescription.fromJDL(match["JDL"])
        except InvalidArgument as exc:
            raise PushFailure(JobMinorStatus.ILLEGAL_JOB_JDL, exc.message) from exc
        if not description.executable.strip():
            raise PushFailure(JobMinorStatus.APP_NOT_FOUND, "the JDL has no Executable")
        if description.inputData or description.outputData:
            raise PushFailure(JobMinorStatus.INPUT_DATA_RESOLUTION, "InputData and OutputData are not supported for "
                              "jobs pushed to a site without outbound connectivity")
        inputs = jobDir / "inputs"
        inputs.mkdir()
        references = [entry for entry in description.inputSandbox if entry.startswith("SB:")]
        if any(entry.startswith("LFN:") for entry in description.inputSandbox):
            raise PushFailure(JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX_LFN,
                              "input sandbox LFNs are not supported for pushed jobs")
        if references:
            self._report(jobID, minorStatus=JobMinorStatus.DOWNLOADING_INPUT_SANDBOX)
        for reference in references:
            result = self.sandboxClient.downloadSandbox(reference, inputs)
            if not result["OK"]:
                raise PushFailure(JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX,
                                  f"cannot download the input sandbox {reference}: {result['Message']}")
        size = sum(path.stat().st_size for path in inputs.rglob("*") if path.is_file())
        if size > int(self.am_getOption("MaxInputSandboxSize")):
            raise PushFailure(JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX,
                              f"the input sandbox ({size} bytes) is over MaxInputSandboxSize for pushed jobs")
        settings = JobWrapperSettings.fromCS()
        payload = payloadDescription(jobID, description, str(ce.getParameter("Site")),
                                     settings.MaxWallClockTime, settings.OutputSandboxLimit)
        return payload, inputs

    # -- following -----------------------------------------------------------------------------------------------
    def followJobs(self) -> int:
        """Read the batch states of the pushed jobs, heartbeat the live ones, report the ended ones; how many ended."""
        byQueue: dict[str, dict[str, list[PushedJob]]] = {}
        for job in self.pushed.values():
            byQueue.setdefault(job.queue, {}).setdefault(job.reference, []).append(job)
        queues = self.queues()
        ended = 0
        for name, batchJobs in byQueue.items():
            if name not in queues:
                self.log.warning("queue %s is no longer configured: %d pushed job(s) not followed", name,
                                 sum(map(len, batchJobs.values())))
                continue
            ce = self._ce(name, queues[name])
            statuses = ce.getJobStatus(list(batchJobs))
            if not statuses["OK"]:
                self.log.warning("queue %s: cannot read the states of %d batch job(s): %s", name, len(batchJobs),
                                 statuses["Message"])
                continue
            for reference, jobs in batchJobs.items():
                status = statuses["Value"].get(reference, "Unknown")
                if status in PILOT_FINAL_STATES:
                    self.collectBatchJob(jobs, ce, status)
                    ended += len(jobs)
                    continue
                for job in jobs:
                    if status == RUNNING and job.ceStatus != RUNNING:
                        self._report(job.jobID, JobStatus.RUNNING, JobMinorStatus.APPLICATION,
                                     f"Running in {ce.ceName}")
                    job.ceStatus = status
                    self._heartBeat(job, ce)
        return ended

    def _heartBeat(self, job: PushedJob, ce: ComputingElement) -> None:
        result = self.jobReport.sendHeartBeat(job.jobID, {}, {})
        if not result["OK"]:
            self.log.warning("Job %d: heartbeat not sent: %s", job.jobID, result["Message"])
        elif isinstance(result["Value"], dict) and "Kill" in result["Value"]:
            others = [other.jobID for other in self.pushed.values()
                      if other.reference == job.reference and other.jobID != job.jobID]
            if others:  # its node runs other jobs: they go on, its result will be ignored
                self.log.info("Job %d: Kill command: left to end in %s with job(s) %s, its result ignored", job.jobID,
                              job.reference, ", ".join(map(str, others)))
            else:
                self.log.info("Job %d: Kill command: cancelling %s", job.jobID, job.reference)
                killed = ce.killJob(job.reference)
                if not killed["OK"]:
                    self.log.error("Job %d: cannot cancel %s: %s", job.jobID, job.reference, killed["Message"])
                    return
            self._forget(job.jobID)

    def collectBatchJob(self, jobs: list[PushedJob], ce: ComputingElement, ceStatus: str) -> None:
        """Report the jobs of an ended batch job, each from its part of the batch job's output."""
        reference = jobs[0].reference
        reason = ce.statusReason(reference)
        output = ce.getJobOutput(reference)
        for job in jobs:
            self.collectJob(job, ce, ceStatus, reason, jobOutput(output["Value"][0], job.jobID) if output["OK"]
                            else None, "" if output["OK"] else output["Message"])

    def collectJob(self, job: PushedJob, ce: ComputingElement, ceStatus: str, reason: str, stdout: str | None,
                   outputError: str = "") -> None:
        """Report an ended job: its outputs and parameters, then Done or Failed."""
        jobID = job.jobID
        try:
            if stdout is None:
                raise BundleError(f"cannot read the batch job's output: {outputError}")
            result = parseResult(stdout)
        except BundleError as exc:
            minor = JobMinorStatus.RECEIVED_KILL_SIGNAL if ceStatus == ABORTED else JobMinorStatus.JOB_WRAPPER_EXECUTION
            self._finish(jobID, JobStatus.FAILED, minor, f"{ce.ceName} says {ceStatus}"
                         + (f" ({reason})" if reason else "") + f": {exc}")
            if ceStatus == ABORTED:  # ended from outside DIRAC (cancelled, pre-empted): as JobWrapper.rescheduleAfterStop
                self._reschedule(jobID)
            self._forget(jobID)
            return
        exitCode = result.get("ExitCode")
        parameters = [("HostName", result.get("HostName", "")), ("TotalCPUTime(s)", round(float(result["CPUTime"]), 2)),
                      ("WallClockTime(s)", round(float(result["WallClockTime"]), 1))]
        if exitCode is not None:
            parameters.append(("ApplicationExitCode", exitCode))
        if result.get("MissingFiles"):
            parameters.append(("OutputSandboxMissingFiles", ", ".join(result["MissingFiles"])))
        self._parameters(jobID, parameters)
        self.jobReport.sendHeartBeat(jobID, {"CPUConsumed": round(float(result["CPUTime"]), 2)}, {})
        failure = ""
        if result.get("Error") and exitCode is None:
            failure = JobMinorStatus.APP_NOT_FOUND if "not found" in result["Error"] else \
                JobMinorStatus.JOB_WRAPPER_EXECUTION
        elif exitCode:
            failure = JobMinorStatus.APP_ERRORS
        self._report(jobID, JobStatus.COMPLETING, failure or JobMinorStatus.APP_SUCCESS,
                     f"Exited with code {exitCode}" if exitCode is not None else result.get("Error", "")[:128])
        uploadError = self._uploadOutputs(jobID, result)
        if result.get("Error"):
            self.log.warning("Job %d: the runner says: %s", jobID, result["Error"])
        if failure or uploadError:
            self._finish(jobID, JobStatus.FAILED, failure or JobMinorStatus.UPLOADING_JOB_OUTPUTS,
                         result.get("Error") or uploadError or f"the payload exited with code {exitCode}")
        else:
            self._finish(jobID, JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE, f"exit code {exitCode}")
        self._forget(jobID)

    def _uploadOutputs(self, jobID: int, result: dict[str, Any]) -> str:
        """Upload and assign the output sandbox of a result; '' or why it failed."""
        try:
            files = unpackOutputs(result, self.workDirectory / str(jobID) / "outputs")
        except BundleError as exc:
            return str(exc)
        if not files:
            return ""
        self._report(jobID, minorStatus=JobMinorStatus.UPLOADING_OUTPUT_SANDBOX)
        upload = self.sandboxClient.uploadFilesAsSandbox([str(path) for path in files])
        if upload["OK"]:
            reference = upload["Value"]
            upload = self.sandboxClient.assignSandboxesToJob(jobID, [reference], "Output")
        if not upload["OK"]:
            return f"cannot upload the output sandbox: {upload['Message']}"
        self._parameters(jobID, [("OutputSandbox", reference)])
        self._report(jobID, minorStatus=JobMinorStatus.OUTPUT_SANDBOX_UPLOADED)
        self.log.info("Job %d: output sandbox of %d file(s) uploaded as %s", jobID, len(files), reference)
        return ""

    # -- reports ------------------------------------------------------------------------------------------------
    def _report(self, jobID: int, status: str = "", minorStatus: str = "", applicationStatus: str = "") -> None:
        if status or minorStatus:
            result = self.jobReport.setJobStatus(jobID, status, minorStatus[:128], SOURCE)
            if not result["OK"]:
                self.log.error("Job %d: cannot set status %s/%s: %s", jobID, status, minorStatus, result["Message"])
        if applicationStatus:
            result = self.jobReport.setJobApplicationStatus(jobID, applicationStatus[:255], SOURCE)
            if not result["OK"]:
                self.log.error("Job %d: cannot set its application status: %s", jobID, result["Message"])

    def _parameters(self, jobID: int, parameters: list[tuple[str, Any]]) -> None:
        result = self.jobReport.setJobParameters(jobID, [[name, str(value)] for name, value in parameters])
        if not result["OK"]:
            self.log.error("Job %d: cannot set its parameters: %s", jobID, result["Message"])

    def _finish(self, jobID: int, status: str, minorStatus: str, detail: str) -> None:
        log = self.log.info if status == JobStatus.DONE else self.log.error
        log("Job %d: %s / %s: %s", jobID, status, minorStatus, detail)
        self._report(jobID, status, minorStatus)

    def _reschedule(self, jobID: int) -> None:
        """Send the job back for a new attempt (the JobManager sets it Failed past MaxRescheduling)."""
        rescheduled = self.jobManager.rescheduleJob(jobID)
        if rescheduled["OK"]:
            self.log.info("Job %d: rescheduled", jobID)
        else:
            self.log.error("Job %d: not rescheduled: %s", jobID, rescheduled["Message"])

    def _forget(self, jobID: int) -> None:
        job = self.pushed.pop(jobID, None)
        jobDir = self.workDirectory / str(jobID)
        if self.am_getOption("CleanTask"):
            shutil.rmtree(jobDir, ignore_errors=True)
            if job is not None and job.node and not any(other.node == job.node for other in self.pushed.values()):
                shutil.rmtree(self.workDirectory / job.node, ignore_errors=True)
        else:
            (jobDir / STATE_FILE).unlink(missing_ok=True)

