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
left. They find the client with ``PilotClientPython`` (a shared installation on the node), or
install ``PilotInstall`` with pip; on a one-box grid the server's own Python is used.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Config.PathFinder import getServiceURLs
from dirac.Core.Config.Resources import getQueues
from dirac.Core.Security import Locations
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError
from dirac.Resources.Computing.ComputingElement import (
    PILOT_FINAL_STATES,
    PILOT_TRANSIENT_STATES,
    RUNNING,
    SUBMITTED,
    WAITING,
    ComputingElement,
    getComputingElement,
)
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.Matcher import normaliseResource
from dirac.WorkloadManagementSystem.Logic.PilotWrapper import caFiles, pilotWrapper

AGENT_NAME = "WorkloadManagement/SiteDirector"
DEFAULT_QUEUE_CPU_TIME = 86400


class SiteDirector(AgentModule):
    """Submits pilots where jobs wait, and follows them."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **AgentModule.DEFAULTS,
        "PollingTime": 30.0,
        "Site": [],                    # sites to serve (all when empty)
        "CEs": [],                     # CEs to serve (all when empty)
        "CETypes": [],                 # CE types to serve (all when empty)
        "VO": "",                      # VO whose jobs the pilots run (default /DIRAC/VirtualOrganization)
        "PilotGroup": "",              # group of the pilot proxy (default <VO>_pilot)
        "PilotCertificate": "",        # certificate and key the pilot proxies are made from
        "PilotKey": "",
        "PilotProxyLifetime": 86400,
        "MaxPilotsToSubmit": 10,       # per queue and cycle
        "PilotClientPython": "",       # python of a client installation on the nodes (shared area)
        "PilotInstall": "",            # else: what the pilot pip-installs (a wheel URL or a requirement)
        "PilotBenchmark": "db12",      # db12 or builtin
        "PilotMaxJobs": 100,           # jobs one pilot runs before it stops
        "ShipCACertificates": True,    # send the CA directory with every pilot
        "FailedQueueBackoff": 60.0,    # seconds a failing queue is left alone (doubling, up to 1 hour)
        "UpdatePilotStatus": True,
        "GetPilotOutput": True,
    }

    def __init__(self, agentName: str = AGENT_NAME, taskQueueDB: TaskQueueDB | None = None,
                 pilotAgentsDB: PilotAgentsDB | None = None):
        super().__init__(agentName)
        self.taskQueueDB = taskQueueDB
        self.pilotAgentsDB = pilotAgentsDB
        self.computingElements: dict[str, tuple[dict[str, Any], ComputingElement]] = {}
        self.backoff: dict[str, tuple[float, float]] = {}  # queue -> (retry after, current delay)
        self._proxy: X509Chain | None = None

    def initialize(self) -> None:
        self.taskQueueDB = self.taskQueueDB or TaskQueueDB()
        self.pilotAgentsDB = self.pilotAgentsDB or PilotAgentsDB()
        self.workDirectory.mkdir(parents=True, exist_ok=True)

    def finalize(self) -> None:
        for _, ce in self.computingElements.values():
            ce.close()

    # -- options ---------------------------------------------------------------------------------------
    @property
    def vo(self) -> str:
        return self.am_getOption("VO") or gConfig.getValue("/DIRAC/VirtualOrganization", "")

    @property
    def workDirectory(self) -> Path:
        instance = gConfig.getValue("/LocalInstallation/InstancePath", "") or str(Path.home() / ".dirac")
        return Path(self.am_getOption("WorkDirectory", f"{instance}/run/SiteDirector"))

    def _listOption(self, name: str) -> list[str]:
        return toList(self.am_getOption(name))

    # -- one cycle ---------------------------------------------------------------------------------------
    def execute(self) -> str:
        queues = getQueues(self._listOption("Site"), self._listOption("CEs"), self._listOption("CETypes"))
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

    def _ce(self, name: str, parameters: dict[str, Any]) -> ComputingElement:
        """The CE object of a queue, rebuilt when its configuration changed."""
        cached = self.computingElements.get(name)
        if cached is None or cached[0] != parameters:
            ceType = parameters.get("CEType") or ""
            if not ceType:
                raise ConfigurationError(f"queue {name}: its CE has no CEType")
            if cached is not None:
                cached[1].close()
            self.computingElements[name] = (dict(parameters), getComputingElement(ceType, parameters["GridCE"],
                                                                                  parameters))
        return self.computingElements[name][1]

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
        where = {"DestinationSite": parameters["GridCE"], "Queue": parameters["Queue"]}
        waiting = self.pilotAgentsDB.countPilots({**where, "Status": [SUBMITTED, WAITING]})
        running = self.pilotAgentsDB.countPilots({**where, "Status": [RUNNING]})
        available = ce.available()
        if not available["OK"]:
            raise DiracError(f"queue {name}: cannot tell its free slots: {available['Message']}")
        toSubmit = min(jobs - waiting, ce.maxWaitingJobs - waiting if ce.maxWaitingJobs else jobs,
                       ce.maxTotalJobs - waiting - running, int(self.am_getOption("MaxPilotsToSubmit")),
                       available["Value"])
        if toSubmit <= 0:
            self.log.debug("queue %s: %d job(s) wait, %d pilot(s) waiting, %d running: nothing to submit", name, jobs,
                           waiting, running)
            return 0
        executable = self._writePilotWrapper(name, parameters, ce)
        result = ce.submitJob(str(executable), self.pilotProxy().toPEM(), numberOfJobs=toSubmit)
        if not result["OK"]:
            self._failed(name, result["Message"])
            return 0
        self.backoff.pop(name, None)
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

    def pilotProxy(self) -> X509Chain:
        """The proxy given to pilots: made from the pilot certificate, renewed at half its lifetime."""
        lifetime = int(self.am_getOption("PilotProxyLifetime"))
        if self._proxy is not None and self._proxy.remainingSeconds > lifetime / 2:
            return self._proxy
        certificate, key = self.am_getOption("PilotCertificate"), self.am_getOption("PilotKey")
        if not (certificate and key):
            raise ConfigurationError(f"{self.section}: set PilotCertificate and PilotKey (the credential pilots "
                                     "get a proxy of)")
        group = self.am_getOption("PilotGroup") or f"{self.vo}_pilot"
        self._proxy = X509Chain.fromCertAndKeyFiles(certificate, key).generateProxy(lifetime, group=group)
        self.log.info("new pilot proxy for %s, group %s, valid %d s", self._proxy.identityDN, group, lifetime)
        return self._proxy

    # -- failures ------------------------------------------------------------------------------------------
    def _backingOff(self, name: str) -> bool:
        retryAfter, _ = self.backoff.get(name, (0.0, 0.0))
        return time.monotonic() < retryAfter

    def _failed(self, name: str, reason: str) -> None:
        _, delay = self.backoff.get(name, (0.0, 0.0))
        delay = min(3600.0, delay * 2 if delay else float(self.am_getOption("FailedQueueBackoff")))
        self.backoff[name] = (time.monotonic() + delay, delay)
        self.log.error("queue %s: %s; leaving it alone for %.0f s", name, reason, delay)

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
            statuses = ce.getJobStatus(refs)
            if not statuses["OK"]:
                self._failed(name, f"cannot read pilot statuses: {statuses['Message']}")
                continue
            if self.backoff.pop(name, None):
                self.log.info("queue %s: its CE answers again", name)
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
