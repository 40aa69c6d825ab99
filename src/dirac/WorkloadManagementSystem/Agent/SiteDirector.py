"""SiteDirector: the pilot factory. Submits pilots to the queues that have jobs waiting for them.

Every cycle, for each configured queue (``/Resources/Sites/<Grid>/<Site>/CEs/<CE>/Queues/<Queue>``,
optionally limited by the ``Site``, ``CEs`` and ``CETypes`` options):

1. the waiting jobs this queue could run are counted in TaskQueueDB (the queue described as
   a pilot would describe it, restricted to the director's VO);
2. pilots are submitted for them, within the queue's ``MaxWaitingJobs`` (pilots not yet
   running) and ``MaxTotalJobs`` (all live pilots), ``MaxPilotsToSubmit`` per cycle and what
   the CE says is free; each is registered in PilotAgentsDB with its reference and stamp;
3. a queue whose CE fails (refuses a submission, cannot be reached, rejects our key) is left
   alone for ``FailedQueueBackoff`` seconds, doubling while it keeps failing, and used again as
   soon as a submission succeeds.

Then the statuses of the live pilots are read from their CEs into PilotAgentsDB, with the
CE's reason (e.g. ``cancelled in Slurm``), and the output of the pilots that ended is stored
there. A CE whose statuses cannot be read backs its queue off the same way.

Pilots carry a proxy made by the director from ``PilotCertificate``/``PilotKey`` for
``PilotGroup`` (a group with ``GenericPilot``), renewed when less than half its lifetime is
left; with ``PilotTokens`` they carry an access token of the pilots' OAuth2 client, which the
director gets from the TokenManager (client credentials) and the CE also uses for itself where it
accepts tokens (HTCondorCE, ARC). Without a ``PilotCertificate`` the token is their only credential. They find the client with ``PilotClientPython`` (a shared installation on the node), or
install ``PilotInstall`` with pip; on a one-box grid the server's own Python is used.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Config.PathFinder import getServiceURLs
from dirac.Core.Security import Locations
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError
from dirac.Resources.Computing.ComputingElement import (
    PILOT_FINAL_STATES,
    PILOT_TRANSIENT_STATES,
    RUNNING,
    SUBMITTED,
    WAITING,
    ComputingElement,
)
from dirac.WorkloadManagementSystem.Agent.QueueAgent import QueueAgent
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.Matcher import normaliseResource
from dirac.WorkloadManagementSystem.Logic.PilotWrapper import caFiles, pilotWrapper

AGENT_NAME = "WorkloadManagement/SiteDirector"
DEFAULT_QUEUE_CPU_TIME = 86400


class SiteDirector(QueueAgent):
    """Submits pilots where jobs wait, and follows them."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **QueueAgent.DEFAULTS,
        "MaxPilotsToSubmit": 10,       # per queue and cycle
        "PilotClientPython": "",       # python of a client installation on the nodes (shared area)
        "PilotInstall": "",            # else: what the pilot pip-installs (a wheel URL or a requirement)
        "PilotBenchmark": "db12",      # db12 or builtin
        "PilotMaxJobs": 100,           # jobs one pilot runs before it stops
        "ShipCACertificates": True,    # send the CA directory with every pilot
        "UpdatePilotStatus": True,
        "GetPilotOutput": True,
    }

    def __init__(self, agentName: str = AGENT_NAME, taskQueueDB: TaskQueueDB | None = None,
                 pilotAgentsDB: PilotAgentsDB | None = None):
        super().__init__(agentName)
        self.taskQueueDB = taskQueueDB
        self.pilotAgentsDB = pilotAgentsDB

    def initialize(self) -> None:
        self.taskQueueDB = self.taskQueueDB or TaskQueueDB()
        self.pilotAgentsDB = self.pilotAgentsDB or PilotAgentsDB()
        super().initialize()

    # -- one cycle ---------------------------------------------------------------------------------------
    def execute(self) -> str:
        queues = self.configuredQueues()
        if not queues:
            return "no queue configured for this SiteDirector"
        submitted, skipped = 0, 0
        for name, parameters in queues.items():
            if self.stopRequested:
                break
            if self._backingOff(name):
                skipped += 1
                continue
            try:
                submitted += self.submitPilots(name, parameters)
            except DiracError as exc:
                self._failed(name, exc.message)
            except OSError as exc:  # e.g. a CE whose working directory cannot be made
                self._failed(name, f"{type(exc).__name__}: {exc}")
        updated = self.updatePilotStatus() if self.am_getOption("UpdatePilotStatus") else 0
        return (f"{submitted} pilot(s) submitted to {len(queues) - skipped} queue(s) ({skipped} backing off), "
                f"{updated} pilot status change(s)")

    # -- submission -------------------------------------------------------------------------------------
    def waitingJobs(self, ce: ComputingElement) -> int:
        """How many waiting jobs the queue behind ``ce`` could run."""
        description = ce.getDescription()
        if not description["OK"]:
            raise DiracError(f"CE {ce.ceName}: no description: {description['Message']}")
        resource = {**description["Value"], "VO": [self.vo] if self.vo else []}
        resource.setdefault("CPUTime", DEFAULT_QUEUE_CPU_TIME)
        tqIDs = [tq["TQId"] for tq in self.taskQueueDB.matchingTaskQueues(normaliseResource(resource))]
        if not tqIDs:
            return 0
        return sum(tq["Jobs"] for tq in self.taskQueueDB.retrieveTaskQueues(tqIDs).values())

    def submitPilots(self, name: str, parameters: dict[str, Any]) -> int:
        """Submit the pilots queue ``name`` needs now; how many were submitted."""
        ce = self._ce(name, parameters)
        jobs = self.waitingJobs(ce)
        if not jobs:
            return 0
        credentials = self.pilotCredentials(ce)  # before the CE is asked anything: it may authenticate with them
        where = {"DestinationSite": parameters["GridCE"], "Queue": parameters["Queue"]}
        waiting = self.pilotAgentsDB.countPilots({**where, "Status": [SUBMITTED, WAITING]})
        running = self.pilotAgentsDB.countPilots({**where, "Status": [RUNNING]})
        available = ce.available()
        if not available["OK"]:
            raise DiracError(f"cannot tell its free slots: {available['Message']}")  # _failed names the queue
        toSubmit = min(jobs - waiting, ce.maxWaitingJobs - waiting if ce.maxWaitingJobs else jobs,
                       ce.maxTotalJobs - waiting - running, int(self.am_getOption("MaxPilotsToSubmit")),
                       available["Value"])
        if toSubmit <= 0:
            self.log.debug("queue %s: %d job(s) wait, %d pilot(s) waiting, %d running: nothing to submit", name, jobs,
                           waiting, running)
            return 0
        executable = self._writePilotWrapper(name, parameters, ce)
        result = ce.submitJob(str(executable), credentials, numberOfJobs=toSubmit)
        if not result["OK"]:
            self._failed(name, result["Message"])
            return 0
        self._recovered(name, "the CE takes pilots")
        self.pilotAgentsDB.addPilotReferences(result["Value"], self.vo, gridType=parameters.get("CEType", ""),
                                              pilotStampDict=result.get("PilotStampDict", {}),
                                              destinationSite=parameters["GridCE"], queue=parameters["Queue"],
                                              gridSite=parameters["Site"])
        self.log.info("queue %s: %d pilot(s) submitted for %d waiting job(s)", name, len(result["Value"]), jobs)
        return len(result["Value"])

    def pilotArguments(self, parameters: dict[str, Any], ce: ComputingElement) -> list[str]:
        """The pilot's command line for a queue."""
        arguments = ["--cs", gConfig.getValue("/DIRAC/Configuration/Servers", ""), "--site", parameters["Site"],
                     "--ce", parameters["GridCE"], "--queue", parameters["Queue"], "--vo", self.vo,
                     "--cpu-time", str(ce.cpuTime() or DEFAULT_QUEUE_CPU_TIME),
                     "--processors", str(ce.numberOfProcessors), "--max-jobs", str(self.am_getOption("PilotMaxJobs")),
                     "--benchmark", self.am_getOption("PilotBenchmark")]
        try:
            arguments += ["--logging-url", getServiceURLs("WorkloadManagement/PilotLogging")[0]]
        except ConfigurationError:
            self.log.debug("no PilotLogging service: pilots log only locally")
        tags = ",".join(toList(ce.getParameter("Tag")))
        if tags:
            arguments += ["--tags", tags]
        if int(ce.getParameter("MaxRAM")):
            arguments += ["--max-ram", str(ce.getParameter("MaxRAM"))]
        python, install = self.am_getOption("PilotClientPython"), self.am_getOption("PilotInstall")
        if install and not python:
            arguments += ["--install", install]
        else:
            arguments += ["--client-python", python or sys.executable]
        return arguments

    def _writePilotWrapper(self, name: str, parameters: dict[str, Any], ce: ComputingElement) -> Path:
        extra = {}
        if self.am_getOption("ShipCACertificates"):
            extra = caFiles(Locations.getCAsLocation())
        path = self.workDirectory / f"pilot-{name.replace('/', '_')}.py"
        path.write_text(pilotWrapper(self.pilotArguments(parameters, ce), extra))
        path.chmod(0o755)
        return path

    # -- following pilots ------------------------------------------------------------------------------------
    def updatePilotStatus(self) -> int:
        """Read the statuses of the live pilots of our CEs; how many changed."""
        changed = 0
        for name, (parameters, ce) in list(self.computingElements.items()):
            if self._backingOff(name):
                continue  # its CE failed: statuses are read again once it answers
            refs = self.pilotAgentsDB.selectPilots({"DestinationSite": parameters["GridCE"],
                                                    "Queue": parameters["Queue"],
                                                    "Status": list(PILOT_TRANSIENT_STATES)})
            if not refs:
                continue
            known = self.pilotAgentsDB.getPilotInfo(refs, ["Status"])
            try:
                self.pilotCredentials(ce)  # e.g. after a restart: the CE has had no credential yet
            except DiracError as exc:
                self._failed(name, f"no pilot credential to read pilot statuses with: {exc.message}")
                continue
            statuses = ce.getJobStatus(refs)
            if not statuses["OK"]:
                self._failed(name, f"cannot read pilot statuses: {statuses['Message']}")
                continue
            self._recovered(name, "its CE answers")
            for ref, status in statuses["Value"].items():
                if status == known[ref]["Status"] or status == "Unknown":
                    continue
                reason = ce.statusReason(ref)
                self.pilotAgentsDB.setPilotStatus(ref, status, statusReason=f"{ce.ceName} says {status}"
                                                  + (f": {reason}" if reason else ""))
                changed += 1
                if status in PILOT_FINAL_STATES and self.am_getOption("GetPilotOutput"):
                    output = ce.getJobOutput(ref)
                    if output["OK"]:
                        self.pilotAgentsDB.storePilotOutput(ref, *output["Value"])
        return changed
