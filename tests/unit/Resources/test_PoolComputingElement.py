"""PoolComputingElement with real payloads: concurrency, processor accounting, refusal, collection of exit codes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Utilities.ForkServer import ForkServer
from dirac.Resources.Computing.ComputingElement import getComputingElement
from dirac.Resources.Computing.PoolComputingElement import PoolComputingElement


def writeScript(directory: Path, name: str, body: str) -> str:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def waitForFile(path: Path) -> str:
    return f'i=0; while [ ! -e "{path}" ]; do sleep 0.05; i=$((i+1)); if [ $i -gt 400 ]; then exit 99; fi; done\n'


def waitUntil(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def makeCE(tmp_path: Path, processors: int = 4) -> PoolComputingElement:
    ce = getComputingElement("Pool", "pool.test", {"NumberOfProcessors": str(processors), "KillGracePeriod": "1",
                                                   "WorkingDirectory": str(tmp_path / "work"), "Tag": "GPU"})
    assert isinstance(ce, PoolComputingElement)
    return ce


def collectAll(ce: PoolComputingElement, count: int) -> dict[str, int]:
    """Exit codes of ``count`` payloads, collected as they end."""
    finished: dict[str, int] = {}
    deadline = time.monotonic() + 20
    while len(finished) < count and time.monotonic() < deadline:
        finished.update(ce.collectFinishedJobs(timeout=1)["Value"])
    return finished


def test_payloads_run_at_the_same_time(tmp_path: Path) -> None:
    """Each payload waits for the other to have started: they can only both succeed if they overlap."""
    ce = makeCE(tmp_path)
    a, b = tmp_path / "a.started", tmp_path / "b.started"
    first = ce.submitJob(writeScript(tmp_path, "a.sh", f'touch "{a}"\n' + waitForFile(b)), numberOfProcessors=2)
    second = ce.submitJob(writeScript(tmp_path, "b.sh", f'touch "{b}"\n' + waitForFile(a)), numberOfProcessors=2)
    assert first["OK"] and second["OK"]
    refs = first["Value"] + second["Value"]
    assert all(ref.startswith("pool://") for ref in refs)
    assert collectAll(ce, 2) == dict.fromkeys(refs, 0)
    assert ce.getJobStatus(refs)["Value"] == dict.fromkeys(refs, "Done")


def test_processors_are_reserved_refused_when_exhausted_and_freed_after_completion(tmp_path: Path) -> None:
    go = tmp_path / "go"
    ce = makeCE(tmp_path)
    wait = writeScript(tmp_path, "wait.sh", waitForFile(go))
    three = ce.submitJob(wait, numberOfProcessors=3)["Value"]
    description = ce.getDescription()["Value"]
    assert description["NumberOfProcessors"] == 1 and description["TotalProcessors"] == 4
    assert description["Tag"] == ["GPU"]
    refused = ce.submitJob(wait, numberOfProcessors=2)
    assert not refused["OK"] and refused["Errno"] == DErrno.ERESUNA and "1 of 4 are free" in refused["Message"]
    one = ce.submitJob(writeScript(tmp_path, "fail.sh", waitForFile(go) + "exit 3\n"))["Value"]
    status = ce.getCEStatus()["Value"]
    assert status["RunningJobs"] == 2 and status["AvailableProcessors"] == 0 and status["SubmittedJobs"] == 2
    assert ce.available()["Value"] == 0
    assert not ce.submitJob(wait)["OK"]
    go.touch()
    assert collectAll(ce, 2) == {three[0]: 0, one[0]: 3}
    assert ce.getCEStatus()["Value"]["AvailableProcessors"] == 4
    description = ce.getDescription()["Value"]
    assert description["NumberOfProcessors"] == 4 and "MultiProcessor" in description["Tag"]
    assert ce.submitJob(wait, numberOfProcessors=4)["OK"]
    assert ce.shutdown(timeout=20)["OK"]


def test_killed_payload_frees_its_processors(tmp_path: Path) -> None:
    ce = makeCE(tmp_path, processors=2)
    refs = ce.submitJob(writeScript(tmp_path, "long.sh", "sleep 60\n"), numberOfProcessors=2)["Value"]
    assert ce.getCEStatus()["Value"]["AvailableProcessors"] == 0
    assert ce.killJob(refs)["OK"]
    assert ce.getJobStatus(refs)["Value"] == {refs[0]: "Aborted"}
    assert ce.getCEStatus()["Value"]["AvailableProcessors"] == 2
    assert ce.collectFinishedJobs()["Value"][refs[0]] < 0


def test_collect_returns_at_once_when_nothing_runs(tmp_path: Path) -> None:
    assert makeCE(tmp_path).collectFinishedJobs(timeout=None)["Value"] == {}


def test_forked_payloads_run_at_the_same_time_and_one_is_killed_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1] / "Core" / "Utilities"))  # forkserver_targets
    server = ForkServer(["forkserver_targets"])
    ce = makeCE(tmp_path, processors=2)
    ce.setForkServer(server)
    try:
        sleeper = writeScript(tmp_path, "s.sh", "sleep 60\n")
        first, second = (ce.submitJob(sleeper, entryPoint="forkserver_targets:sleep", arguments=[seconds])["Value"][0]
                         for seconds in ("60", "0.5"))
        assert ce.getCEStatus()["Value"]["RunningJobs"] == 2
        assert collectAll(ce, 1) == {second: 0}
        assert ce.killJob([first])["OK"]
        assert collectAll(ce, 1) == {first: -15}
    finally:
        server.close(10)
