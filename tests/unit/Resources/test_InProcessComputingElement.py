"""InProcessComputingElement with real payloads: exit codes, output, proxy file, one slot, timeout, kill; payloads
forked from a fork server."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Utilities.ForkServer import ForkServer
from dirac.Resources.Computing.ComputingElement import getComputingElement
from dirac.Resources.Computing.InProcessComputingElement import InProcessComputingElement

PROXY = "-----BEGIN CERTIFICATE-----\nMIIfake\n-----END CERTIFICATE-----\n"


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


def makeCE(tmp_path: Path, **parameters: str) -> InProcessComputingElement:
    ce = getComputingElement("InProcess", "inprocess.test",
                             {"WorkingDirectory": str(tmp_path / "work"), "KillGracePeriod": "1", **parameters})
    assert isinstance(ce, InProcessComputingElement)
    return ce


def test_successful_payload_returns_exit_code_zero_and_its_output(tmp_path: Path) -> None:
    ce = makeCE(tmp_path)
    result = ce.submitJob(writeScript(tmp_path, "ok.sh", "echo out; echo err >&2\n"))
    assert result["OK"] and result["ExitCode"] == 0 and "PayloadFailed" not in result
    ref = result["Value"][0]
    assert ref.startswith("inprocess://")
    assert ce.getJobStatus([ref])["Value"] == {ref: "Done"}
    assert ce.getJobOutput(ref)["Value"] == ("out\n", "err\n")
    assert ce.collectFinishedJobs()["Value"] == {ref: 0}
    assert ce.collectFinishedJobs()["Value"] == {}


def test_failing_payload_returns_its_exit_code_as_payload_failed(tmp_path: Path) -> None:
    ce = makeCE(tmp_path)
    result = ce.submitJob(writeScript(tmp_path, "fail.sh", "exit 5\n"))
    assert result["OK"] and result["ExitCode"] == 5 and result["PayloadFailed"] == 5
    assert ce.getJobStatus(result["Value"])["Value"] == {result["Value"][0]: "Failed"}


def test_payload_gets_a_private_proxy_file_removed_afterwards(tmp_path: Path) -> None:
    ce = makeCE(tmp_path)
    script = writeScript(tmp_path, "proxy.sh", 'echo "$X509_USER_PROXY"; stat -c %a "$X509_USER_PROXY"; cat "$X509_USER_PROXY"\n')
    result = ce.submitJob(script, PROXY, workingDirectory=str(tmp_path / "job"), environment={"A": "1"})
    stdout = ce.getJobOutput(result["Value"][0])["Value"][0]
    proxyPath, mode, content = stdout.split("\n", 2)
    assert Path(proxyPath).parent == tmp_path / "job" and mode == "600" and content == PROXY
    assert not Path(proxyPath).exists()


def test_one_payload_at_a_time(tmp_path: Path) -> None:
    go = tmp_path / "go"
    ce = makeCE(tmp_path)
    assert ce.getCEStatus()["Value"]["RunningJobs"] == 0 and ce.available()["Value"] == 1
    results: list[dict] = []
    runner = threading.Thread(target=lambda: results.append(ce.submitJob(writeScript(tmp_path, "w.sh", waitForFile(go)))))
    runner.start()
    try:
        waitUntil(lambda: ce.getCEStatus()["Value"]["RunningJobs"] == 1)
        assert ce.available()["Value"] == 0
        busy = ce.submitJob(writeScript(tmp_path, "other.sh", "true\n"))
        assert not busy["OK"] and busy["Errno"] == DErrno.ERESUNA and "busy" in busy["Message"]
    finally:
        go.touch()
        runner.join(20)
    assert results[0]["OK"] and results[0]["ExitCode"] == 0
    assert ce.getCEStatus()["Value"]["RunningJobs"] == 0


def test_payload_needing_more_processors_than_the_slot_is_refused(tmp_path: Path) -> None:
    result = makeCE(tmp_path, NumberOfProcessors="2").submitJob(writeScript(tmp_path, "mp.sh", "true\n"),
                                                                 numberOfProcessors=4)
    assert not result["OK"] and "needs 4 processors" in result["Message"]


def test_timeout_kills_the_payload(tmp_path: Path) -> None:
    ce = makeCE(tmp_path)
    result = ce.submitJob(writeScript(tmp_path, "long.sh", "sleep 60\n"), timeout=0.3)
    assert result["OK"] and result["ExitCode"] < 0 and result["PayloadFailed"] == result["ExitCode"]
    assert ce.getJobStatus(result["Value"])["Value"] == {result["Value"][0]: "Failed"}
    assert ce.runningReferences() == []


def test_kill_from_another_thread_aborts_the_running_payload(tmp_path: Path) -> None:
    ce = makeCE(tmp_path)
    results: list[dict] = []
    runner = threading.Thread(target=lambda: results.append(ce.submitJob(writeScript(tmp_path, "l.sh", "sleep 60\n"))))
    runner.start()
    waitUntil(lambda: ce.getCEStatus()["Value"]["RunningJobs"] == 1)
    [ref] = ce.runningReferences()
    assert ce.killJob([ref])["OK"]
    runner.join(20)
    assert results[0]["ExitCode"] < 0
    assert ce.getJobStatus([ref])["Value"] == {ref: "Aborted"}


# -- payloads forked from a pre-imported fork server -----------------------------------------------
TARGETS_DIR = Path(__file__).parents[1] / "Core" / "Utilities"  # forkserver_targets.py


@pytest.fixture
def forkServer(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForkServer]:
    monkeypatch.setenv("PYTHONPATH", str(TARGETS_DIR))
    server = ForkServer(["forkserver_targets"])
    yield server
    server.close(10)


def test_an_entry_point_payload_is_forked_with_the_same_directory_environment_and_proxy(tmp_path, forkServer):
    ce = makeCE(tmp_path)
    ce.setForkServer(forkServer)
    fresh = writeScript(tmp_path, "fresh.sh", "echo a new interpreter would have run\n")
    result = ce.submitJob(fresh, PROXY, workingDirectory=str(tmp_path / "job"), environment={"A": "1"},
                          entryPoint="forkserver_targets:describe", arguments=["3", "--job", "job.json"])
    assert result["OK"] and result["ExitCode"] == 3 and result["PayloadFailed"] == 3
    stdout, stderr = ce.getJobOutput(result["Value"][0])["Value"]
    seen = json.loads(stdout)
    assert seen["argv"] == ["3", "--job", "job.json"] and seen["cwd"] == str(tmp_path / "job")
    assert seen["env"]["A"] == "1" and seen["env"]["PYTHONPATH"] == str(TARGETS_DIR)
    proxy = Path(seen["env"]["X509_USER_PROXY"])
    assert proxy.parent == tmp_path / "job" and not proxy.exists()  # removed once the payload ended
    assert seen["sid"] == seen["pid"] and stderr == "to stderr\n"


def test_the_executable_runs_when_the_fork_server_cannot_start_the_payload(tmp_path):
    broken = ForkServer(["no_such_module_anywhere"])
    ce = makeCE(tmp_path)
    ce.setForkServer(broken)
    try:
        result = ce.submitJob(writeScript(tmp_path, "fresh.sh", "echo fresh\n"), entryPoint="forkserver_targets:describe")
    finally:
        broken.close(10)
    assert result["OK"] and result["ExitCode"] == 0
    assert ce.getJobOutput(result["Value"][0])["Value"][0] == "fresh\n"


def test_a_forked_payload_is_killed_and_timed_out_like_any_other(tmp_path, forkServer):
    ce = makeCE(tmp_path)
    ce.setForkServer(forkServer)
    sleeper = writeScript(tmp_path, "s.sh", "sleep 60\n")
    timedOut = ce.submitJob(sleeper, entryPoint="forkserver_targets:sleep", arguments=["60"], timeout=0.5)
    assert timedOut["OK"] and timedOut["ExitCode"] == -signal.SIGTERM
    assert ce.getJobStatus(timedOut["Value"])["Value"] == {timedOut["Value"][0]: "Failed"}
    results: list[dict] = []
    runner = threading.Thread(target=lambda: results.append(
        ce.submitJob(sleeper, entryPoint="forkserver_targets:sleep", arguments=["60"])))
    runner.start()
    waitUntil(lambda: ce.getCEStatus()["Value"]["RunningJobs"] == 1)
    [ref] = ce.runningReferences()
    assert ce.killJob([ref])["OK"]
    runner.join(20)
    assert results[0]["ExitCode"] == -signal.SIGTERM
    assert ce.getJobStatus([ref])["Value"] == {ref: "Aborted"}
