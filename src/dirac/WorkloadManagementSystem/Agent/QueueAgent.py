"""The base of the agents that serve the queues of Computing Elements: the SiteDirector and the PushJobAgent.

What they share: the queues chosen by ``Site``, ``CEs`` and ``CETypes``; one CE object per queue,
rebuilt when the queue's configuration changes; a doubling back-off for queues that fail
(``FailedQueueBackoff``, at most an hour), reset by the queue's first success, with each failing
queue's reason, failures and next attempt in ``<working directory>/queues.json``
(``QUEUE_STATE_FILE``); the pilot credentials: a proxy made from
``PilotCertificate`` and ``PilotKey`` in ``PilotGroup`` (default ``<VO>_pilot``), and/or, with
``PilotTokens``, an access token of the pilots' OAuth2 client from the TokenManager (client
credentials), each renewed at half its lifetime; and a working directory under the instance.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Config.Resources import getQueues
from dirac.Core.Security.Tokens import inFirstHalfOfLife
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError
from dirac.Resources.Computing.ComputingElement import ComputingElement, getComputingElement

MAX_BACKOFF = 3600.0
#: the failing queues of an agent, in its working directory
QUEUE_STATE_FILE = "queues.json"


@dataclass
class QueueFailure:
    """Why and since when a queue is left alone."""

    reason: str          #: the CE's answer to the last attempt
    failures: int        #: attempts failed in a row
    delay: float         #: seconds the queue is left alone after the last failure
    since: str           #: UTC time of the first failure of the row
    lastFailure: str     #: UTC time of the last one
    retryAfter: str      #: UTC time of the next attempt


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class QueueAgent(AgentModule):
    """An agent serving CE queues with a pilot credential."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **AgentModule.DEFAULTS,
        "PollingTime": 30.0,
        "Site": [],                    # sites whose queues are served (all when empty)
        "CEs": [],                     # CEs whose queues are served (all when empty)
        "CETypes": [],                 # CE types served (all when empty)
        "VO": "",                      # VO whose jobs are served (default /DIRAC/VirtualOrganization)
        "PilotGroup": "",              # group of the pilot proxy (default <VO>_pilot)
        "PilotCertificate": "",        # certificate and key the pilot proxies are made from
        "PilotKey": "",
        "PilotProxyLifetime": 86400,
        "PilotTokens": False,          # pilots (also) get an access token from the TokenManager
        "FailedQueueBackoff": 60.0,    # seconds a failing queue is left alone (doubling, up to 1 hour)
    }
    #: the working directory's name under <instance>/run (default: the agent's name)
    WORK_DIRECTORY_NAME: ClassVar[str] = ""

    def __init__(self, agentName: str):
        super().__init__(agentName)
        self.computingElements: dict[str, tuple[dict[str, Any], ComputingElement]] = {}
        self.backoff: dict[str, tuple[float, float]] = {}  # queue -> (retry after, current delay)
        self.queueFailures: dict[str, QueueFailure] = {}   # queue -> why it is left alone (QUEUE_STATE_FILE)
        self._proxy: X509Chain | None = None
        self._token: dict[str, Any] | None = None

    def initialize(self) -> None:
        """The working directory, and no failing queue yet (a state left by an earlier run is cleared)."""
        self.workDirectory.mkdir(parents=True, exist_ok=True)
        self._writeQueueState()

    def finalize(self) -> None:
        for _, ce in self.computingElements.values():
            ce.close()

    # -- options -----------------------------------------------------------------------------------------
    @property
    def vo(self) -> str:
        return self.am_getOption("VO") or gConfig.getValue("/DIRAC/VirtualOrganization", "")

    @property
    def workDirectory(self) -> Path:
        instance = gConfig.getValue("/LocalInstallation/InstancePath", "") or str(Path.home() / ".dirac")
        name = self.WORK_DIRECTORY_NAME or self.section.rstrip("/").rsplit("/", 1)[-1]
        return Path(self.am_getOption("WorkDirectory", f"{instance}/run/{name}"))

    def _listOption(self, name: str) -> list[str]:
        return toList(self.am_getOption(name))

    def configuredQueues(self) -> dict[str, dict[str, Any]]:
        """The queues chosen by Site, CEs and CETypes."""
        return getQueues(self._listOption("Site"), self._listOption("CEs"), self._listOption("CETypes"))

    # -- CEs and failing queues --------------------------------------------------------------------------------
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

    def _backingOff(self, name: str) -> bool:
        retryAfter, _ = self.backoff.get(name, (0.0, 0.0))
        return time.monotonic() < retryAfter

    def _failed(self, name: str, reason: str) -> None:
        """The queue's CE failed: leave the queue alone, twice as long as after its previous failure in a row."""
        _, delay = self.backoff.get(name, (0.0, 0.0))
        delay = min(MAX_BACKOFF, delay * 2 if delay else float(self.am_getOption("FailedQueueBackoff")))
        self.backoff[name] = (time.monotonic() + delay, delay)
        now = datetime.now(UTC)
        previous = self.queueFailures.get(name)
        failures = previous.failures + 1 if previous else 1
        self.queueFailures[name] = QueueFailure(reason, failures, delay, previous.since if previous else _utc(now),
                                                _utc(now), _utc(now + timedelta(seconds=delay)))
        self.log.error("queue %s: %s; leaving it alone for %g s (failure %d in a row)", name, reason, delay,
                       failures)
        self._writeQueueState()

    def _recovered(self, name: str, what: str) -> None:
        """The queue's CE answered again (``what`` it did): the back-off is reset."""
        self.backoff.pop(name, None)
        failure = self.queueFailures.pop(name, None)
        if failure is not None:
            self.log.info("queue %s: %s again after %d failure(s) since %s; back-off reset", name, what,
                          failure.failures, failure.since)
            self._writeQueueState()

    def _writeQueueState(self) -> None:
        """The failing queues, {queue: QueueFailure fields}, in QUEUE_STATE_FILE (replaced at once)."""
        path = self.workDirectory / QUEUE_STATE_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            temporary.write_text(json.dumps({name: asdict(failure) for name, failure in
                                             sorted(self.queueFailures.items())}, indent=2))
            temporary.replace(path)
        except OSError as exc:
            self.log.error("cannot write the queue states to %s: %s", path, exc)

    # -- the pilot credentials ------------------------------------------------------------------------------
    @property
    def pilotGroup(self) -> str:
        return self.am_getOption("PilotGroup") or f"{self.vo}_pilot"

    def pilotCredential(self) -> tuple[str, str]:
        """(certificate file, key file) the pilot proxies are made from."""
        return self.am_getOption("PilotCertificate"), self.am_getOption("PilotKey")

    def pilotProxy(self) -> X509Chain:
        """The pilot proxy: made from the pilot credential, renewed at half its lifetime."""
        lifetime = int(self.am_getOption("PilotProxyLifetime"))
        if self._proxy is not None and self._proxy.remainingSeconds > lifetime / 2:
            return self._proxy
        certificate, key = self.pilotCredential()
        if not (certificate and key):
            raise ConfigurationError(f"{self.section}: set PilotCertificate and PilotKey (the credential pilot "
                                     "proxies are made from) or PilotTokens")
        self._proxy = X509Chain.fromCertAndKeyFiles(certificate, key).generateProxy(lifetime, group=self.pilotGroup)
        self.log.info("new pilot proxy for %s, group %s, valid %d s", self._proxy.identityDN, self.pilotGroup,
                      lifetime)
        return self._proxy

    def pilotToken(self) -> str:
        """The pilots' access token from the TokenManager, renewed at half its lifetime."""
        now = time.time()
        if self._token is not None and inFirstHalfOfLife(self._token["received"], self._token["expires_at"]):
            return self._token["access_token"]
        result = RPCClient("Framework/TokenManager").getPilotToken(self.pilotGroup)
        if not result["OK"]:
            raise DiracError(f"no pilot token for {self.pilotGroup}: {result['Message']}")
        self._token = {**result["Value"], "received": now}
        self.log.info("new pilot token for group %s from %s, valid %d s", self.pilotGroup, result["Value"]["provider"],
                      result["Value"]["expires_at"] - now)
        return self._token["access_token"]

    def pilotCredentials(self, ce: ComputingElement) -> bytes | None:
        """Give ``ce`` the pilot credentials it authenticates with (the token with ``PilotTokens``, the pilot
        proxy when there is a pilot certificate); the proxy's PEM for the pilots, or None without one."""
        if self.am_getOption("PilotTokens"):
            ce.setToken(self.pilotToken())
            if not all(self.pilotCredential()):
                return None
        pem = self.pilotProxy().toPEM()
        ce.setProxy(pem)
        return pem
