"""The agent base: once mode, MaxCycles, stop(), failing cycles, Enabled and live CS changes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Config import gConfig

SECTION = "/Systems/Test/Agents/CountingAgent"


class CountingAgent(AgentModule):
    """Records every call; each cycle runs ``action(cycle)`` when given."""

    def __init__(self, action: Callable[[int], str | None] | None = None):
        super().__init__("Test/CountingAgent")
        self.action = action
        self.calls: list[str] = []

    def initialize(self) -> None:
        self.calls.append("initialize")

    def execute(self) -> str | None:
        self.calls.append("execute")
        return self.action(self.cycles) if self.action else None

    def finalize(self) -> None:
        self.calls.append("finalize")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [record.getMessage() for record in self.records if record.levelno >= level]


@pytest.fixture
def agentLog() -> Iterator[_Records]:
    """Every record the agents log (attached to the 'dirac' logger, which may not propagate)."""
    handler, logger = _Records(), logging.getLogger("dirac")
    oldLevel = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(oldLevel)


def configure(**options: object) -> None:
    gConfig.initialize(options={f"{SECTION}/{name}": str(value) for name, value in options.items()},
                       fetchRemote=False)


def test_runOnce_runsInitializeOneCycleAndFinalize(agentLog: _Records) -> None:
    configure(PollingTime=0)
    agent = CountingAgent(lambda cycle: f"{cycle} jobs cleaned")
    agent.run(once=True)
    assert agent.calls == ["initialize", "execute", "finalize"]
    assert any(message.startswith("cycle 1 done in ") and message.endswith(" s: 1 jobs cleaned")
               for message in agentLog.messages(logging.INFO))


def test_run_stopsAfterMaxCycles() -> None:
    configure(PollingTime=0, MaxCycles=3)
    agent = CountingAgent()
    agent.run()
    assert agent.calls.count("execute") == 3 and agent.cycles == 3


def test_amGetOption_readsTheAgentSectionWithDefaultsInOnePlace() -> None:
    configure(PollingTime="7.5", Custom="value")
    agent = CountingAgent()
    assert agent.am_getOption("PollingTime") == 7.5
    assert agent.am_getOption("MaxCycles") == 0
    assert agent.am_getOption("Enabled") is True
    assert agent.am_getOption("Custom", "x") == "value"
    assert agent.am_getOption("Missing", 42) == 42


def test_stop_endsALongPollingTimeWaitPromptly() -> None:
    configure(PollingTime=3600)
    firstCycle = threading.Event()
    agent = CountingAgent(lambda cycle: firstCycle.set())
    agent.start()
    assert firstCycle.wait(5)
    time.sleep(0.05)  # now in the PollingTime wait
    started = time.monotonic()
    agent.stop()
    assert agent.join(5)
    assert time.monotonic() - started < 1.0
    assert agent.calls == ["initialize", "execute", "finalize"]


def test_stop_letsTheCycleInProgressFinishAndRunsNoOther(agentLog: _Records) -> None:
    configure(PollingTime=0)
    inCycle, release = threading.Event(), threading.Event()

    def slowCycle(cycle: int) -> str:
        inCycle.set()
        release.wait(5)
        return "finished"

    agent = CountingAgent(slowCycle)
    agent.start()
    assert inCycle.wait(5)
    agent.stop()
    assert agent.stopRequested and agent.isAlive
    release.set()
    assert agent.join(5)
    assert agent.calls == ["initialize", "execute", "finalize"]
    assert any(message.startswith("cycle 1 done") for message in agentLog.messages())


def test_failingCycle_isLoggedWithTracebackAtDebugAndTheLoopContinues(agentLog: _Records) -> None:
    configure(PollingTime=0, MaxCycles=3)

    def failFirst(cycle: int) -> str:
        if cycle == 1:
            raise ValueError("sandbox store unreachable")
        return "ok"

    agent = CountingAgent(failFirst)
    agent.run()
    assert agent.cycles == 3 and agent.failedCycles == 1
    errors = agentLog.messages(logging.ERROR)
    assert len(errors) == 1 and errors[0].startswith("cycle 1 failed after ")
    assert errors[0].endswith("ValueError: sandbox store unreachable")
    debug = [record for record in agentLog.records if record.levelno == logging.DEBUG and record.exc_info]
    assert len(debug) == 1 and debug[0].exc_info[0] is ValueError
    assert any(message.startswith("cycle 3 done") for message in agentLog.messages(logging.INFO))


def test_failingInitialize_isLoggedAndRaisedWithoutRunningCycles(agentLog: _Records) -> None:
    class BrokenAgent(CountingAgent):
        def initialize(self) -> None:
            raise RuntimeError("no JobDB")

    agent = BrokenAgent()
    with pytest.raises(RuntimeError, match="no JobDB"):
        agent.run(once=True)
    assert agent.calls == []
    assert any("initialize failed" in message for message in agentLog.messages(logging.ERROR))


def test_disabledAgent_idlesAndSaysSoOnce(agentLog: _Records) -> None:
    configure(PollingTime=0.01, Enabled="no")
    agent = CountingAgent()
    agent.start()
    time.sleep(0.3)
    agent.stop()
    assert agent.join(5)
    assert "execute" not in agent.calls
    assert sum("disabled" in message for message in agentLog.messages()) == 1


def test_enabledChangeInTheCS_startsCyclesWithoutRestart(agentLog: _Records) -> None:
    configure(PollingTime=0.01, Enabled="no", MaxCycles=2)
    agent = CountingAgent()
    agent.start()
    try:
        time.sleep(0.1)
        assert "execute" not in agent.calls
        gConfig.data.setLocalOption(f"{SECTION}/Enabled", "yes")
        assert agent.join(5), "the agent did not start cycling after Enabled=yes"
    finally:
        agent.stop()
    assert agent.cycles == 2
    assert "enabled again" in agentLog.messages(logging.INFO)


def test_pollingTimeChangeInTheCS_appliesFromTheNextWait() -> None:
    configure(PollingTime=3600, MaxCycles=3)

    def speedUp(cycle: int) -> None:
        gConfig.data.setLocalOption(f"{SECTION}/PollingTime", "0.01")

    agent = CountingAgent(speedUp)
    agent.start()
    try:
        assert agent.join(5), "the agent still waits the old PollingTime of 3600 s"
    finally:
        agent.stop()
    assert agent.cycles == 3
