"""Helpers of the system tests: a started one-box grid, job submission and waiting, the test servers.

Imported by the system test modules (``tests/system/conftest.py`` puts this directory on the path).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from diraccfg import CFG

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationData import setOption
from dirac.FrameworkSystem.Logic.Instance import Instance
from dirac.WorkloadManagementSystem.Agent.QueueAgent import QUEUE_STATE_FILE
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotLoggingClient, PilotManagerClient
from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient, JobMonitoringClient

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "servers"
WMS = "/Systems/WorkloadManagement"
FINAL = ("Done", "Failed", "Killed", "Deleted")
PILOT_FINAL = ("Done", "Failed", "Aborted", "Deleted")


def run(*command: str, env: dict[str, str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one of the project's commands (from the venv's bin directory)."""
    result = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def freePort() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serverEnvironment() -> dict[str, str]:
    """This process's environment without the client settings of a grid."""
    return {k: v for k, v in os.environ.items() if k not in ("DIRACSYSCONFIG", "X509_USER_PROXY", "X509_CERT_DIR")}


@contextmanager
def startedGrid(root: Path, options: Mapping[str, str],
                serverOptions: Mapping[str, str] | None = None) -> Iterator[Instance]:
    """A one-box grid (dirac-server init, ``options`` written into its CS and ``serverOptions`` into the
    server's local configuration, start); this process is its client."""
    env = serverEnvironment()
    env["HOME"] = str(root)
    instance = Instance(root / "instance")
    run("dirac-server", "init", "--dir", str(instance.root), "--port", str(freePort()), env=env)
    for cfgFile, values in ((instance.masterCFG, options), (instance.serverCFG, serverOptions or {})):
        cfg = CFG().loadFromFile(str(cfgFile))
        for path, value in values.items():
            setOption(cfg, path, value)
        cfg.writeToFile(str(cfgFile))
    run("dirac-server", "start", "--detach", "--dir", str(instance.root), env=env)
    saved = {k: os.environ.get(k) for k in instance.environment()}
    os.environ.update(instance.environment())
    gConfig.reset()
    try:
        yield instance
    finally:
        run("dirac-server", "stop", "--dir", str(instance.root), env=env, check=False)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        gConfig.reset()
        log = instance.logFile.read_text()
        assert "Traceback" not in log, log[log.index("Traceback") - 2000:][:6000]


def submit(jdl: str) -> list[int]:
    result = JobManagerClient().submitJob(jdl)
    assert result["OK"], result["Message"]
    return result["Value"] if isinstance(result["Value"], list) else [result["Value"]]


def statuses(jobIDs: list[int]) -> dict[int, dict]:
    result = JobMonitoringClient().getJobsAttributes(jobIDs, ["Status", "MinorStatus", "ApplicationStatus",
                                                              "StartExecTime", "EndExecTime", "RescheduleCounter"])
    assert result["OK"], result["Message"]
    return {int(jobID): attrs for jobID, attrs in result["Value"].items()}


def waitFor(jobIDs: list[int], done: tuple[str, ...] = FINAL, timeout: float = 300) -> dict[int, dict]:
    deadline = time.monotonic() + timeout
    while True:
        current = statuses(jobIDs)
        if all(attrs["Status"] in done for attrs in current.values()):
            return current
        if time.monotonic() > deadline:
            late = {jobID: attrs["Status"] for jobID, attrs in current.items() if attrs["Status"] not in done}
            raise AssertionError(f"{len(late)} job(s) not {'/'.join(done)} after {timeout} s: {late}")
        time.sleep(1)


def jdl(executable: str, arguments: str = "", **extra: str) -> str:
    lines = [f'Executable = "{executable}"', f'Arguments = "{arguments}"', "CPUTime = 1000",
             'OutputSandbox = {"std.out", "std.err"}', 'StdOutput = "std.out"', 'StdError = "std.err"']
    lines += [f"{name} = {value}" for name, value in extra.items()]
    return "[" + "; ".join(lines) + "]"


def pilotsOf(jobID: int) -> dict[str, dict]:
    """{reference: pilot info} of the pilots that ran ``jobID``."""
    result = PilotManagerClient().getPilots(jobID)
    assert result["OK"], result
    return result["Value"]


def waitForPilot(reference: str, done: tuple[str, ...] = PILOT_FINAL, timeout: float = 120) -> dict:
    """The info of pilot ``reference`` once its status is one of ``done``."""
    deadline = time.monotonic() + timeout
    while True:
        result = PilotManagerClient().getPilotInfo(reference)
        assert result["OK"], result
        info = result["Value"][reference]
        if info["Status"] in done:
            return info
        assert time.monotonic() < deadline, f"pilot {reference} still {info['Status']} after {timeout} s"
        time.sleep(1)


def pilotLogLines(jobID: int, wanted: str, timeout: float = 30) -> list[str]:
    """The log lines its pilot shipped for ``jobID``, once one contains ``wanted`` (they come in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = PilotLoggingClient().getJobPilotLogs(jobID)
        assert logs["OK"], logs
        lines = [entry["Line"] for log in logs["Value"] for entry in log["Lines"]]
        if any(wanted in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(1)


def waitForLog(instance: Instance, text: str, timeout: float = 60, since: int = 0) -> str:
    """The grid's log from offset ``since`` once ``text`` appears in it."""
    deadline = time.monotonic() + timeout
    while True:
        log = instance.logFile.read_text(errors="replace")[since:]
        if text in log:
            return log
        assert time.monotonic() < deadline, f"{text!r} not in the grid's log after {timeout} s:\n{log[-3000:]}"
        time.sleep(0.5)


def waitForLogLine(instance: Instance, *parts: str, timeout: float = 60, since: int = 0) -> str:
    """The first line of the grid's log after offset ``since`` that contains every one of ``parts``."""
    deadline = time.monotonic() + timeout
    while True:
        log = instance.logFile.read_text(errors="replace")[since:]
        line = next((line for line in log.splitlines() if all(part in line for part in parts)), None)
        if line is not None:
            return line
        assert time.monotonic() < deadline, f"no line with {parts} in the grid's log after {timeout} s:\n{log[-3000:]}"
        time.sleep(0.5)


def logOffset(instance: Instance) -> int:
    """Where the grid's log ends now (to look only at what comes after)."""
    return len(instance.logFile.read_text(errors="replace"))


def queueStates(instance: Instance) -> dict[str, dict]:
    """The SiteDirector's failing queues ({queue: {reason, failures, delay, since, ...}}) from its queues.json."""
    return json.loads((instance.root / "run" / "SiteDirector" / QUEUE_STATE_FILE).read_text())


def assertQueueBacksOff(instance: Instance, queue: str, reason: str, since: int) -> None:
    """The SiteDirector failed on ``queue`` twice in a row with ``reason``, leaving it alone 3 then 6 s
    (``FailedQueueBackoff`` 3 of ``tuning``), and its queues.json says so."""
    for failure, delay in ((1, 3), (2, 6)):
        line = waitForLogLine(instance, f"queue {queue}:", f"(failure {failure} in a row)", since=since)
        assert reason in line and f"leaving it alone for {delay} s" in line, line
    state = queueStates(instance)[queue]
    assert state["failures"] >= 2 and reason in state["reason"], state


def assertQueueRecovers(instance: Instance, queue: str, jobID: int, scheme: str, since: int) -> None:
    """Job ``jobID`` runs to Done in pilots of ``queue`` (references ``<scheme>://<CE>/...``), the recovery
    is logged and the queue has left queues.json."""
    final = waitFor([jobID], timeout=120)[jobID]
    assert final["Status"] == "Done", final
    prefix = f"{scheme}://{queue.split('/')[0]}/"
    assert pilotsOf(jobID) and all(ref.startswith(prefix) for ref in pilotsOf(jobID)), pilotsOf(jobID)
    line = waitForLogLine(instance, f"queue {queue}: the CE takes pilots again after", since=since)
    assert "back-off reset" in line, line
    assert queue not in queueStates(instance)


# -- computing elements of the CE test modules ---------------------------------------------------------
def ceOptions(siteName: str, ce: str, **options: str) -> dict[str, str]:
    """CS options of CE ``ce`` with one queue 'default' (two pilots at most) at site ``siteName``."""
    site = f"/Resources/Sites/DIRAC/{siteName}"
    queue = {"MaxTotalJobs": "2", "MaxWaitingJobs": "2", "CPUTime": "86400"}
    return {f"{site}/CE": ce, **{f"{site}/CEs/{ce}/{k}": v for k, v in options.items()},
            **{f"{site}/CEs/{ce}/Queues/default/{k}": v for k, v in queue.items()}}


def tuning(ces: str) -> dict[str, str]:
    """Short timings for the grid of a CE test module; the SiteDirector serves ``ces`` only."""
    return {
        f"{WMS}/Agents/SiteDirector/PollingTime": "1",
        f"{WMS}/Agents/SiteDirector/CEs": ces,
        f"{WMS}/Agents/SiteDirector/FailedQueueBackoff": "3",
        f"{WMS}/Agents/Optimizers/PollingTime": "1",
        f"{WMS}/Agents/JobAgent/PollingTime": "1",
        f"{WMS}/Agents/JobAgent/StopAfterFailedMatches": "3",
        f"{WMS}/JobWrapper/HeartBeatInterval": "2",
        f"{WMS}/JobWrapper/PollingTime": "1",
        f"{WMS}/Agents/PilotStatusAgent/PollingTime": "2",
        f"{WMS}/Agents/PilotStatusAgent/EndedPilotGraceTime": "3",
        f"{WMS}/Agents/StalledJobAgent/PollingTime": "2",
        f"{WMS}/Agents/StalledJobAgent/StalledTime": "30",
        f"{WMS}/Agents/StalledJobAgent/FailedTime": "40",
        f"{WMS}/Agents/StalledJobAgent/RescheduleStalled": "True",
    }


def knownHosts(path: Path, sshd: dict[str, str]) -> Path:
    """A known_hosts file with the test sshd's host key under both of its names."""
    keyType, keyData = Path(sshd["SSHD_HOST_KEY"]).read_text().split()[:2]
    path.write_text("".join(f"[{name}]:{sshd['SSHD_PORT']} {keyType} {keyData}\n" for name in ("127.0.0.1", "localhost")))
    return path


def grantClient(server: str = "sshd") -> None:
    """Let the pilot user of tests/servers/<server>.sh run this checkout's Python (the pilots' PilotClientPython)
    as a shared area would."""
    granted = serverScript(server, "grant", os.path.realpath(sys.executable), sys.base_prefix, sys.prefix,
                           str(ROOT / "src"))
    assert granted.returncode == 0, granted.stderr


def sshOptions(sshd: dict[str, str], known: Path, sharedArea: str, **extra: str) -> dict[str, str]:
    return {"CEType": "SSH", "SSHHost": "127.0.0.1", "SSHPort": sshd["SSHD_PORT"], "SSHUser": sshd["SSHD_USER"],
            "SSHKey": sshd["SSHD_KEY"], "SSHKnownHosts": str(known), "SharedArea": sharedArea, "KillGracePeriod": "2",
            **extra}



# -- the test servers (tests/servers/*.sh) ---------------------------------------------------------------
def serverScript(name: str, action: str, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SERVERS / f"{name}.sh"), action, *arguments], capture_output=True, text=True,
                          timeout=timeout)


def settings(output: str) -> dict[str, str]:
    """KEY=value lines -> dict."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


@contextmanager
def runningServer(name: str) -> Iterator[dict[str, str]]:
    """Start tests/servers/<name>.sh (stopped afterwards if it was not running before); its settings.

    When it cannot start the test is skipped, or failed when CI=true (CI must run these tests).
    """
    wasRunning = serverScript(name, "status").returncode == 0
    started = serverScript(name, "start")
    if started.returncode != 0:
        message = f"tests/servers/{name}.sh start failed:\n{started.stdout}\n{started.stderr}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield settings(started.stdout)
    finally:
        if not wasRunning:
            serverScript(name, "stop")
