"""The one base of every agent: a loop of cycles owned by the framework, steered by the CS.

An agent implements ``execute()`` (one cycle; raises on failure; may return a short summary
for the log) and optionally ``initialize()`` and ``finalize()``. Its DBs and clients are
constructor arguments, so tests can pass fakes and ``initialize()`` creates the real ones::

    class JobCleaningAgent(AgentModule):
        def __init__(self, agentName: str = "WorkloadManagement/JobCleaningAgent", jobDB: JobDB | None = None):
            super().__init__(agentName)
            self.jobDB = jobDB

        def initialize(self) -> None:
            self.jobDB = self.jobDB or JobDB()

        def execute(self) -> str:
            return f"{self.jobDB.deleteOldJobs()} jobs deleted"

Options in ``/Systems/<System>/Agents/<Agent>`` (defaults in ``AgentModule.DEFAULTS``):
``PollingTime`` seconds from the start of a cycle to the start of the next, ``MaxCycles``
(0: no limit) and ``Enabled`` (a disabled agent idles). They are re-read every cycle, so a CS
change applies without a restart.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from dirac.Core.Config import gConfig
from dirac.Core.Config.PathFinder import getAgentSection
from dirac.Core.Utilities.Logging import getLogger


class AgentModule:
    """Base of every agent: subclasses implement execute() and optionally initialize() and finalize()."""

    DEFAULTS: ClassVar[dict[str, Any]] = {"PollingTime": 120.0, "MaxCycles": 0, "Enabled": True}

    def __init__(self, agentName: str):
        self.agentName = agentName
        self.section = getAgentSection(agentName)
        self.log = getLogger(agentName)
        self.cycles = 0
        self.failedCycles = 0
        self._stopEvent = threading.Event()
        self._thread: threading.Thread | None = None

    # -- to implement ------------------------------------------------------------------------
    def initialize(self) -> None:
        """Prepare the agent once before the first cycle (raise to refuse to start)."""

    def execute(self) -> str | None:
        """Run one cycle; raise on failure; the returned summary, if any, is logged."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def finalize(self) -> None:
        """Clean up once after the last cycle."""

    # -- configuration -----------------------------------------------------------------------
    def am_getOption(self, name: str, default: Any = None) -> Any:
        """The option ``name`` of this agent's CS section, cast to the type of the default."""
        if default is None:
            default = self.DEFAULTS.get(name)
        return gConfig.getValue(f"{self.section}/{name}", default)

    # -- the loop ----------------------------------------------------------------------------
    @property
    def stopRequested(self) -> bool:
        """True once stop() was called (a long execute() may check it to end its cycle early)."""
        return self._stopEvent.is_set()

    def run(self, once: bool = False) -> None:
        """Initialize, run cycles until stop(), MaxCycles or (once=True) one pass, then finalize."""
        self.log.info("starting (options in %s)", self.section)
        try:
            self.initialize()
        except Exception as exc:
            self.log.error("initialize failed, not starting: %s: %s", type(exc).__name__, exc, exc_info=True)
            raise
        try:
            self._loop(once)
        except Exception as exc:
            self.log.error("stopped by an error outside execute(): %s: %s", type(exc).__name__, exc, exc_info=True)
            raise
        finally:
            try:
                self.finalize()
            except Exception as exc:
                self.log.error("finalize failed: %s: %s", type(exc).__name__, exc, exc_info=True)
            self.log.info("stopped after %d cycles (%d failed)", self.cycles, self.failedCycles)

    def _loop(self, once: bool) -> None:
        idling = False
        while not self._stopEvent.is_set():
            started = time.monotonic()
            if not self.am_getOption("Enabled"):
                if not idling:
                    self.log.info("disabled by %s/Enabled, idling", self.section)
                idling = True
            else:
                if idling:
                    self.log.info("enabled again")
                idling = False
                self._cycle()
                maxCycles = self.am_getOption("MaxCycles")
                if maxCycles and self.cycles >= maxCycles:
                    self.log.info("reached MaxCycles=%d", maxCycles)
                    return
            if once:
                return
            pollingTime = self.am_getOption("PollingTime")
            self._stopEvent.wait(max(0.0, pollingTime - (time.monotonic() - started)))

    def _cycle(self) -> None:
        self.cycles += 1
        started = time.monotonic()
        try:
            summary = self.execute()
        except Exception as exc:
            self.failedCycles += 1
            self.log.error("cycle %d failed after %.2f s: %s: %s", self.cycles, time.monotonic() - started,
                           type(exc).__name__, exc)
            self.log.debug("traceback of cycle %d", self.cycles, exc_info=True)
        else:
            self.log.info("cycle %d done in %.2f s%s", self.cycles, time.monotonic() - started,
                          f": {summary}" if summary else "")

    # -- running in a thread -----------------------------------------------------------------
    def start(self) -> None:
        """Run the agent in a daemon thread (several agents can share one process)."""
        if self._thread is not None:
            raise RuntimeError(f"agent {self.agentName} was already started")
        self._thread = threading.Thread(target=self._runInThread, name=self.agentName, daemon=True)
        self._thread.start()

    def _runInThread(self) -> None:
        with contextlib.suppress(Exception):  # run() has logged it; the thread just ends
            self.run()

    def stop(self) -> None:
        """Ask the loop to end: a cycle in progress finishes, a PollingTime wait ends at once."""
        if not self._stopEvent.is_set():
            self.log.info("stop requested")
        self._stopEvent.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the agent's thread to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def isAlive(self) -> bool:
        """True while the agent's thread runs."""
        return self._thread is not None and self._thread.is_alive()


def runAgents(agents: Iterable[AgentModule], stopSignals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
              stopTimeout: float = 60.0) -> None:
    """Run agents in threads of this process until a stop signal arrives or they all end (main thread only)."""
    agents = list(agents)
    stopEvent = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopEvent.set()) for sig in stopSignals}
    try:
        for agent in agents:
            agent.start()
        while not stopEvent.wait(0.5) and any(agent.isAlive for agent in agents):
            pass
    finally:
        for agent in agents:
            agent.stop()
        deadline = time.monotonic() + stopTimeout
        for agent in agents:
            if not agent.join(max(0.0, deadline - time.monotonic())):
                agent.log.warning("still in a cycle %.0f s after the stop signal, leaving it", stopTimeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
