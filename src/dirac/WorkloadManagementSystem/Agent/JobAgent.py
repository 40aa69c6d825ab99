"""JobAgent: inside a pilot, ask the Matcher for jobs that fit the slot and run each through a JobWrapper.

The slot is described by the pilot's ``/LocalSite`` section (Site, GridCE, CEQueue,
PilotReference, PilotStamp, CPUTimeLeft, NumberOfProcessors, MaxRAM, Platform, Tag,
RequiredTag, CPUNormalizationFactor, WorkingDirectory). A one-processor slot runs jobs one
after the other (InProcess inner CE); a multi-processor slot fills its processors with several
jobs at once (Pool inner CE). Every cycle starts as many jobs as fit; the agent stops when its
time left is too short for any job, after MaxJobs jobs, or after several cycles without a match
(then waiting for the jobs it started).

Each job runs in ``<WorkingDirectory>/<JobID>/``: the agent writes ``job.json`` (the JobWrapper's
contract) and starts ``dirac-jobwrapper --job job.json`` as the payload, as a fork of a fork server
that imported the wrapper once (``JobWrapperForkServer``, default yes; else a new interpreter per
job), with the job owner's
limited proxy, fetched from the ProxyManager with the pilot's proxy and kept for the owner's next jobs
while it lives long enough (``UsePayloadProxy``, default yes; the inner CE writes it 0600 into the
job's directory as ``X509_USER_PROXY``). When the owner's
proxy cannot be had the job is rescheduled, as in DIRAC (Failed once past MaxRescheduling).
Without ``UsePayloadProxy`` jobs run with the pilot's own credential.

A pilot may hold an access token instead of a proxy (``$BEARER_TOKEN_FILE`` with
``$DIRAC_USE_ACCESS_TOKEN``): the agent then renews the token in place from the TokenManager
(``getPilotToken``) once half its lifetime is gone, and stops asking for jobs when it cannot keep
one valid for ``MinimumTokenTimeLeft`` seconds. A payload
given its owner's proxy does not see the pilot's token.
A wrapper that dies without reporting leaves its job Failed with the wrapper's exit code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Config import Registry, gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Security import Locations, Tokens
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Tornado.Client import RPCClient, useAccessTokens
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.ForkServer import ForkServer
from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient
from dirac.Resources.Computing.ComputingElement import ComputingElement, getComputingElement
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient
from dirac.WorkloadManagementSystem.Client.WMSClients import (
    JobManagerClient,
    JobMonitoringClient,
    JobStateUpdateClient,
    MatcherClient,
)
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import PENDING_REPORTS_FILE

AGENT_NAME = "WorkloadManagement/JobAgent"
LOCAL_SITE = "/LocalSite"
NO_MATCH = "No match found"
#: statuses in which a job still waits for its wrapper's final report
UNFINISHED = (JobStatus.MATCHED, JobStatus.RUNNING, JobStatus.COMPLETING)
JOBWRAPPER_SCRIPT = "dirac.WorkloadManagementSystem.scripts.dirac_jobwrapper"
#: what every JobWrapper imports (and a data job's DataManager): loaded once by the fork server
JOBWRAPPER_MODULES = [JOBWRAPPER_SCRIPT, "dirac.WorkloadManagementSystem.JobWrapper.JobWrapper",
                      "dirac.WorkloadManagementSystem.JobWrapper.Settings",
                      "dirac.WorkloadManagementSystem.Client.WMSClients",
                      "dirac.WorkloadManagementSystem.Client.SandboxStoreClient",
                      "dirac.DataManagementSystem.Client.DataManager", "dirac.Core.Config.Refresher",
                      "dirac.Core.Security.X509Chain", "dirac.Core.Security.X509", "_strptime"]
#: the configuration is fetched once by the fork server, and each wrapper refreshes it on its own from then on
JOBWRAPPER_FORKSERVER_INIT = "dirac.Core.Config:gConfig.loadForForking"


def localSite(option: str, default: Any) -> Any:
    """An option of the pilot's /LocalSite section."""
    return gConfig.getValue(f"{LOCAL_SITE}/{option}", default)


class JobAgent(AgentModule):
    """Matches and runs jobs in the slot the pilot holds."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **AgentModule.DEFAULTS,
        "PollingTime": 2.0,
        "MaxJobs": 100,                  # jobs a pilot runs before it stops
        "StopAfterFailedMatches": 5,     # consecutive cycles without a match before stopping
        "MinimumTimeLeft": 300,          # seconds: below this no job is asked for
        "UsePayloadProxy": True,         # run jobs with their owner's proxy from the ProxyManager
        "MinimumTokenTimeLeft": 120,     # seconds: a token pilot whose token has less starts no job
        "JobWrapperForkServer": True,    # start each JobWrapper as a fork of a pre-imported process
    }

    def __init__(self, agentName: str = AGENT_NAME, innerCE: ComputingElement | None = None,
                 matcher: Any = None, jobReport: Any = None, jobMonitoring: Any = None, proxyManager: Any = None,
                 jobManager: Any = None, requestClient: Any = None):
        super().__init__(agentName)
        self.innerCE = innerCE
        self.matcher = matcher
        self.jobReport = jobReport
        self.jobMonitoring = jobMonitoring
        self.proxyManager = proxyManager
        self.jobManager = jobManager
        #: ReqClient, for the requests wrappers could not store (made when needed)
        self.requestClient = requestClient
        self.started = time.monotonic()
        self.jobsRun = 0
        self.failedMatches = 0
        self.matchErrors = 0  # requests the Matcher did not answer with a job or "no match"
        self.running: dict[str, int] = {}  # inner CE reference -> JobID
        #: (owner, group) -> the limited proxy last fetched for a job of theirs, reused while it lives long enough
        self.payloadProxies: dict[tuple[str, str], X509Chain] = {}
        self.forkServer: ForkServer | None = None
        #: the token file of a pilot without a proxy, renewed in place
        self.tokenFile = os.environ.get(Tokens.BEARER_TOKEN_FILE_ENV, "") if useAccessTokens() else ""

    # -- set-up ----------------------------------------------------------------------------------------
    def initialize(self) -> None:
        processors = int(localSite("NumberOfProcessors", 1))
        if self.innerCE is None:
            parameters = {"NumberOfProcessors": processors, "WorkingDirectory": str(self.workingDirectory),
                          "Site": localSite("Site", ""), "Queue": localSite("CEQueue", ""),
                          "Tag": localSite("Tag", []), "RequiredTag": localSite("RequiredTag", []),
                          "Platform": localSite("Platform", ""), "MaxRAM": localSite("MaxRAM", 0)}
            self.innerCE = getComputingElement("Pool" if processors > 1 else "InProcess",
                                               localSite("GridCE", "") or "inner", parameters)
        self.matcher = self.matcher or MatcherClient()
        self.jobReport = self.jobReport or JobStateUpdateClient()
        self.jobMonitoring = self.jobMonitoring or JobMonitoringClient()
        self.proxyManager = self.proxyManager or ProxyManagerClient()
        self.jobManager = self.jobManager or JobManagerClient()
        if self.am_getOption("JobWrapperForkServer") and hasattr(self.innerCE, "setForkServer"):
            self.forkServer = ForkServer(JOBWRAPPER_MODULES, JOBWRAPPER_FORKSERVER_INIT)
            self.forkServer.start()  # it imports while the first job is asked for
            self.innerCE.setForkServer(self.forkServer)
        self.workingDirectory.mkdir(parents=True, exist_ok=True)
        self._reportBenchmark()
        self.log.info("slot at %s/%s: %d processor(s), %d s of CPU time, pilot %s", localSite("Site", "?"),
                      localSite("GridCE", "?"), processors, self.cpuTimeLeft, self.pilotReference or "unknown")

    def _reportBenchmark(self) -> None:
        """Record the node's CPU power with the pilot (it normalises the CPU time of the jobs run here)."""
        power = float(localSite("CPUNormalizationFactor", 0.0) or 0.0)
        if power and self.pilotReference:
            result = PilotManagerClient().setPilotBenchmark(self.pilotReference, power)
            if not result["OK"]:
                self.log.info("pilot benchmark not recorded: %s", result["Message"])

    @property
    def workingDirectory(self) -> Path:
        return Path(localSite("WorkingDirectory", "") or os.getcwd()).resolve()

    @property
    def pilotReference(self) -> str:
        return localSite("PilotReference", "") or os.environ.get("DIRAC_PILOT_REFERENCE", "")

    @property
    def cpuTimeLeft(self) -> int:
        """Seconds of CPU time the slot still offers (CPUTimeLeft counted down by the wall clock)."""
        return int(localSite("CPUTimeLeft", 86400) - (time.monotonic() - self.started))

    def resourceDescription(self) -> dict[str, Any]:
        """What the Matcher needs to know about the free part of the slot."""
        description = self.innerCE.getDescription()["Value"]  # type: ignore[union-attr]
        description.update({"CPUTime": self.cpuTimeLeft, "CEQueue": localSite("CEQueue", ""),
                            "PilotReference": self.pilotReference,
                            "PilotStamp": localSite("PilotStamp", "") or os.environ.get("DIRAC_PILOT_STAMP", "")})
        platform = localSite("Platform", "")
        if platform:
            description["Platform"] = platform
        description["Tag"] = sorted(set(description.get("Tag", [])) | set(toList(localSite("Tag", ""))))
        return {key: value for key, value in description.items() if value not in ("", None, [])}

    # -- one cycle -------------------------------------------------------------------------------------
    def execute(self) -> str:
        finished = self._collectFinished()
        if self.tokenFile:
            self._renewPilotToken()
        started = 0
        while self._mayStartJob():
            match = self.matcher.requestJob(self.resourceDescription())
            if not match["OK"]:
                if NO_MATCH not in match["Message"]:
                    self.matchErrors += 1
                    self.log.warning("the Matcher refused: %s", match["Message"])
                self.failedMatches += 1
                break
            self.failedMatches = 0
            self._startJob(match["Value"])
            started += 1
        if self._finished():
            self._waitForRunningJobs()
            self.stop()
        return (f"{started} job(s) started, {len(finished)} finished, {len(self.running)} running, "
                f"{self.jobsRun} run in all, {self.cpuTimeLeft} s left")

    def _mayStartJob(self) -> bool:
        if self.jobsRun >= self.am_getOption("MaxJobs") or self.cpuTimeLeft < self.am_getOption("MinimumTimeLeft"):
            return False
        if self.tokenFile and self.tokenTimeLeft() < self.am_getOption("MinimumTokenTimeLeft"):
            return False
        if self.failedMatches and not self.running and self.failedMatches >= self.am_getOption(
                "StopAfterFailedMatches"):
            return False
        available = self.innerCE.available()  # type: ignore[union-attr]
        return bool(available["OK"] and available["Value"] > 0)

    def _finished(self) -> bool:
        """Whether this pilot should stop asking for jobs."""
        if self.jobsRun >= self.am_getOption("MaxJobs"):
            self.log.info("ran MaxJobs=%d jobs, stopping", self.jobsRun)
            return True
        if self.cpuTimeLeft < self.am_getOption("MinimumTimeLeft"):
            self.log.info("%d s of CPU time left, too short for another job, stopping", self.cpuTimeLeft)
            return True
        if self.failedMatches >= self.am_getOption("StopAfterFailedMatches") and not self.running:
            self.log.info("no job matched in %d cycles, stopping", self.failedMatches)
            return True
        if self.tokenFile and self.tokenTimeLeft() < self.am_getOption("MinimumTokenTimeLeft"):
            self.log.info("the pilot's token has %d s left and could not be renewed, stopping", self.tokenTimeLeft())
            return True
        return False

    # -- the pilot's token -------------------------------------------------------------------------------
    def tokenTimeLeft(self) -> float:
        """Seconds the pilot's access token is still valid (0 when unreadable)."""
        try:
            expiry = Tokens.expiresAt(Tokens.readTokenFile(self.tokenFile))
        except DiracError:
            return 0.0
        return expiry - time.time() if expiry is not None else float("inf")

    def _renewPilotToken(self) -> None:
        """Replace the pilot's token with a fresh one from the TokenManager once half its lifetime is gone."""
        try:
            token = Tokens.readTokenFile(self.tokenFile)
        except DiracError as exc:
            self.log.error("the pilot's token cannot be read: %s", exc.message)
            return
        claims = Tokens.accessTokenClaims(token)
        expiry, issued = Tokens.expiresAt(token), float(claims.get("iat") or 0)
        if expiry is None or not issued or Tokens.inFirstHalfOfLife(issued, expiry):
            return
        result = RPCClient("Framework/TokenManager").getPilotToken("")
        if not result["OK"]:
            self.log.warning("the pilot's token (%d s left) was not renewed: %s", expiry - time.time(),
                             result["Message"])
            return
        fresh = result["Value"]
        Tokens.writeTokenFile({"access_token": fresh["access_token"], "expires_at": fresh["expires_at"]},
                              self.tokenFile)
        self.log.info("the pilot's token renewed: %d s left", fresh["expires_at"] - time.time())

    # -- running jobs ----------------------------------------------------------------------------------
    def _startJob(self, match: dict[str, Any]) -> None:
        jobID = int(match["JobID"])
        jobDir = self.workingDirectory / str(jobID)
        jobDir.mkdir(parents=True, exist_ok=True)
        description = {
            "JobID": jobID, "JDL": match["JDL"], "Owner": match.get("Owner", ""),
            "OwnerGroup": match.get("OwnerGroup", ""), "VO": match.get("VO", ""),
            "PilotReference": self.pilotReference, "Site": localSite("Site", ""), "GridCE": localSite("GridCE", ""),
            "CPUNormalizationFactor": float(localSite("CPUNormalizationFactor", 1.0) or 1.0),
            "WallClockLimit": max(0, self.cpuTimeLeft), "MaxRAM": int(localSite("MaxRAM", 0) or 0),
        }
        (jobDir / "job.json").write_text(json.dumps(description, indent=2))
        executable = jobDir / "run-jobwrapper.sh"
        executable.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {JOBWRAPPER_SCRIPT} "$@"\n')
        executable.chmod(0o755)
        processors = int(match.get("NumberOfProcessors") or 1)
        environment = {"DIRAC_JOB_ID": str(jobID)}
        if os.environ.get("DIRACSYSCONFIG"):
            environment["DIRACSYSCONFIG"] = os.environ["DIRACSYSCONFIG"]
        self.jobsRun += 1
        self.log.info("Job %d matched (owner %s/%s), starting its wrapper in %s", jobID, description["Owner"],
                      description["OwnerGroup"], jobDir)
        credentials = self._payloadCredentials(jobID, description["Owner"], description["OwnerGroup"])
        if credentials is None:
            return
        proxy, extra = credentials
        environment.update(extra)
        result = self.innerCE.submitJob(str(executable), proxy,  # type: ignore[union-attr]
                                        workingDirectory=str(jobDir), numberOfProcessors=processors,
                                        environment=environment, arguments=["--job", "job.json"],
                                        entryPoint=f"{JOBWRAPPER_SCRIPT}:main")
        if not result["OK"]:
            self._failJob(jobID, f"{JobMinorStatus.JOB_WRAPPER_EXECUTION}: cannot start the wrapper: "
                                 f"{result['Message']}")
            return
        reference = result["Value"][0]
        self.running[reference] = jobID
        if "ExitCode" in result:  # the InProcess CE returns once the wrapper has ended
            self._afterWrapper(reference, result["ExitCode"])

    def _payloadCredentials(self, jobID: int, owner: str, ownerGroup: str
                            ) -> tuple[bytes | str | None, dict[str, str]] | None:
        """(proxy, environment) the job runs with; None when the job was rescheduled.

        The owner's proxy (PEM), with the pilot's token hidden; else the pilot's own credential: its
        proxy (path), or its token (the inherited ``$BEARER_TOKEN_FILE``, no proxy)."""
        if not self.am_getOption("UsePayloadProxy"):
            return (None if self.tokenFile else Locations.getProxyLocation()), {}
        proxy = self._payloadProxy(jobID, owner, ownerGroup)
        if proxy is None:
            return None
        hidden = {"DIRAC_USE_ACCESS_TOKEN": "no", Tokens.BEARER_TOKEN_FILE_ENV: ""} if self.tokenFile else {}
        return proxy, hidden

    def _payloadProxy(self, jobID: int, owner: str, ownerGroup: str) -> bytes | None:
        """The owner's limited proxy (PEM); None when it cannot be had and the job was rescheduled.

        A proxy fetched for an earlier job of the same owner and group is used again while it still
        has the lifetime this job needs (DIRAC's proxy cache): no new key pair, no ProxyManager call."""
        lifetime = min(int(gConfig.getValue("/Registry/DefaultProxyLifeTime", 432000)), max(self.cpuTimeLeft, 3600))
        cached = self.payloadProxies.get((owner, ownerGroup))
        if cached is not None and cached.remainingSeconds >= lifetime:
            self.log.info("Job %d: payload proxy of %s@%s reused (%d s left)", jobID, owner, ownerGroup,
                          cached.remainingSeconds)
            return cached.toPEM()
        dns = Registry.getDNsForUsername(owner) if owner else []
        if not dns:
            result = {"OK": False, "Message": f"no DN registered for the job owner {owner or '(none)'}"}
        else:
            result = self.proxyManager.getPayloadProxyFromDIRACGroup(dns[0], ownerGroup, lifetime)
        if not result["OK"]:
            self._rescheduleJob(jobID, f"Failed to setup proxy: {result['Message']}")
            return None
        chain = result["Value"]
        self.log.info("Job %d: payload proxy of %s@%s obtained (%d s left)", jobID, owner, ownerGroup,
                      chain.remainingSeconds)
        self.payloadProxies[(owner, ownerGroup)] = chain
        return chain.toPEM()

    def _rescheduleJob(self, jobID: int, reason: str) -> None:
        """As DIRAC's JobAgent: the reason as application status, then the job sent back (rescheduleJob)."""
        self.log.error("Job %d: %s, rescheduling it", jobID, reason)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        report = self.jobReport.setJobStatusBulk(jobID, {now: {
            "MinorStatus": JobMinorStatus.GOING_RESCHEDULE, "ApplicationStatus": reason[:255], "Source": "JobAgent"}})
        if not report["OK"]:
            self.log.error("Job %d: cannot report the reason: %s", jobID, report["Message"])
        result = self.jobManager.rescheduleJob(jobID)
        if not result["OK"]:
            self.log.error("Job %d: cannot reschedule it: %s", jobID, result["Message"])
            self._failJob(jobID, reason)

    def _collectFinished(self, timeout: float | None = 0) -> list[int]:
        """JobIDs of the jobs whose wrapper ended since the last look (waiting up to ``timeout`` s for one)."""
        collected = self.innerCE.collectFinishedJobs(timeout)  # type: ignore[union-attr]
        finished = []
        for reference, exitCode in (collected["Value"] if collected["OK"] else {}).items():
            if reference in self.running:  # the InProcess CE's jobs were handled when submitJob returned
                finished.append(self.running[reference])
                self._afterWrapper(reference, exitCode)
        return finished

    def _afterWrapper(self, reference: str, exitCode: int) -> None:
        """Make sure the job did not stay unfinished because its wrapper died."""
        jobID = self.running.pop(reference)
        self.log.info("Job %d: wrapper ended with exit code %d", jobID, exitCode)
        if exitCode == 0:
            return
        self._sendPendingReports(jobID)
        status = self.jobMonitoring.getJobsStatus([jobID])
        if not status["OK"]:
            self.log.warning("Job %d: cannot check its status after the wrapper failed: %s", jobID, status["Message"])
            return
        current = status["Value"].get(str(jobID), status["Value"].get(jobID, {})).get("Status")
        if current in UNFINISHED:
            self._failJob(jobID, f"{JobMinorStatus.JOB_WRAPPER_EXECUTION} failed with exit code {exitCode}")

    def _sendPendingReports(self, jobID: int) -> None:
        """Deliver what the wrapper could not send before it ended (its pending-reports file)."""
        path = self.workingDirectory / str(jobID) / PENDING_REPORTS_FILE
        if not path.exists():
            return
        try:
            pending = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            self.log.error("Job %d: cannot read %s: %s", jobID, path, exc)
            return
        results = [self.jobReport.setJobStatusBulk(jobID, pending["StatusBulk"])] if pending.get("StatusBulk") else []
        if pending.get("Parameters"):
            results.append(self.jobReport.setJobParameters(jobID, pending["Parameters"]))
        failed = [result["Message"] for result in results if not result["OK"]]
        if failed:
            self.log.error("Job %d: the wrapper's pending reports are still not delivered: %s", jobID, "; ".join(failed))
            return
        path.rename(path.with_suffix(".delivered"))
        self.log.info("Job %d: the wrapper's pending reports delivered", jobID)
        if pending.get("Request"):  # the job's failover request the ReqManager did not take from the wrapper
            self._putJobRequest(jobID, pending["Request"])
        if pending.get("Reschedule"):  # the wrapper's decision (stopped from outside DIRAC), carried out now
            result = self.jobManager.rescheduleJob(jobID)
            self.log.info("Job %d: %s: %s", jobID, pending["Reschedule"],
                          "rescheduled" if result["OK"] else f"not rescheduled: {result['Message']}")

    def _putJobRequest(self, jobID: int, requestJSON: str) -> None:
        """Put the request a wrapper left (its output on failover SEs to move); the job fails when it cannot be."""
        from dirac.RequestManagementSystem.Client.ReqClient import ReqClient
        from dirac.RequestManagementSystem.Client.Request import Request

        self.requestClient = self.requestClient or ReqClient()
        try:
            result = self.requestClient.putRequest(Request(requestJSON))
        except DiracError as exc:
            result = exc.toSError()
        if result["OK"]:
            self.log.info("Job %d: the wrapper's request stored as request %s", jobID, result["Value"])
            return
        self.log.error("Job %d: the wrapper's request cannot be stored: %s", jobID, result["Message"])
        self._failJob(jobID, JobMinorStatus.FAILED_SENDING_REQUESTS)

    def _failJob(self, jobID: int, reason: str) -> None:
        self.log.error("Job %d: %s", jobID, reason)
        result = self.jobReport.setJobStatus(jobID, JobStatus.FAILED, reason[:128], "JobAgent")
        if not result["OK"]:
            self.log.error("Job %d: cannot set it Failed: %s", jobID, result["Message"])

    def _waitForRunningJobs(self) -> None:
        while self.running:
            self._collectFinished(None)

    def finalize(self) -> None:
        """On a stop request (SIGTERM to the pilot), stop the payloads still running; stop the fork server."""
        if self.running and self.innerCE is not None:
            self.log.warning("stopping with %d job(s) running: killing them", len(self.running))
            self.innerCE.killJob(list(self.running))
            self._collectFinished()
        if self.forkServer is not None:
            self.forkServer.close()
