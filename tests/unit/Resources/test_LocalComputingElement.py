"""LocalComputingElement with real pilot processes: submission, statuses, output, kill, restart, limits."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.ComputingElement import getComputingElement
from dirac.Resources.Computing.LocalComputingElement import LocalComputingElement

PROXY = "-----BEGIN CERTIFICATE-----\nMIIfake\n-----END CERTIFICATE-----\n"


def writeScript(directory: Path, name: str, body: str) -> str:
    """An executable shell script in ``directory``."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def waitForFile(path: Path) -> str:
    """Shell lines that wait (at most 20 s) until ``path`` exists."""
    return f'i=0; while [ ! -e "{path}" ]; do sleep 0.05; i=$((i+1)); if [ $i -gt 400 ]; then exit 99; fi; done\n'


def waitUntil(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def liveGroupMembers(pgid: int) -> list[int]:
    """Pids of the non-zombie processes of process group ``pgid`` (read from /proc independently of the CE)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


@pytest.fixture
def workDir(tmp_path: Path) -> Iterator[Path]:
    """The CE working directory; every pilot still running at the end is killed."""
    directory = tmp_path / "pilots"
    yield directory
    for state in directory.glob("*/pilot.json"):
        try:
            os.killpg(json.loads(state.read_text())["PID"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def makeCE(workDir: Path, **parameters: str) -> LocalComputingElement:
    return LocalComputingElement("local.test", {"WorkingDirectory": str(workDir), "KillGracePeriod": "1", **parameters})


def statuses(ce: LocalComputingElement, refs: list[str]) -> set[str]:
    result = ce.getJobStatus(refs)
    assert result["OK"], result
    return set(result["Value"].values())


def test_submitted_pilots_run_then_finish_done_with_their_output_and_proxy(tmp_path: Path, workDir: Path) -> None:
    go = tmp_path / "go"
    script = writeScript(tmp_path, "pilot.sh", waitForFile(go) + 'echo "ran in $PWD as $DIRAC_PILOT_REFERENCE"\n'
                         'stat -c %a "$X509_USER_PROXY"; cat "$X509_USER_PROXY"; echo oops >&2\n')
    ce = makeCE(workDir, MaxTotalJobs="5")
    result = ce.submitJob(script, PROXY, numberOfJobs=3)
    assert result["OK"], result
    refs = result["Value"]
    assert len(set(refs)) == 3 and all(ref.startswith("local://") for ref in refs)
    assert set(result["PilotStampDict"]) == set(refs)
    assert statuses(ce, refs) == {"Running"}
    assert ce.getCEStatus()["Value"]["RunningJobs"] == 3
    go.touch()
    waitUntil(lambda: statuses(ce, refs) == {"Done"})
    stdout, stderr = ce.getJobOutput(refs[0])["Value"]
    pilotDir = workDir / result["PilotStampDict"][refs[0]]
    assert f"ran in {pilotDir} as {refs[0]}" in stdout
    assert "600\n" + PROXY in stdout
    assert stderr == "oops\n"
    assert stat.S_IMODE((pilotDir / "proxy.pem").stat().st_mode) == 0o600
    assert ce.getCEStatus()["Value"]["RunningJobs"] == 0


def test_failing_pilot_is_failed(tmp_path: Path, workDir: Path) -> None:
    ce = makeCE(workDir)
    refs = ce.submitJob(writeScript(tmp_path, "fail.sh", "echo broken >&2; exit 3\n"))["Value"]
    waitUntil(lambda: statuses(ce, refs) == {"Failed"})
    assert ce.getJobOutput(refs[0])["Value"] == ("", "broken\n")


def test_proxy_given_as_a_file_path_is_copied_private(tmp_path: Path, workDir: Path) -> None:
    proxyFile = tmp_path / "x509up"
    proxyFile.write_text(PROXY)
    ce = makeCE(workDir)
    refs = ce.submitJob(writeScript(tmp_path, "p.sh", 'cat "$X509_USER_PROXY"\n'), str(proxyFile))["Value"]
    waitUntil(lambda: statuses(ce, refs) == {"Done"})
    assert ce.getJobOutput(refs[0])["Value"][0] == PROXY


def test_bad_proxy_is_refused(tmp_path: Path, workDir: Path) -> None:
    result = makeCE(workDir).submitJob(writeScript(tmp_path, "p.sh", "true\n"), str(tmp_path / "missing"))
    assert not result["OK"] and "neither PEM text nor the path" in result["Message"]
    assert not any(workDir.iterdir())


def test_kill_ends_the_whole_process_group_and_aborts_the_pilot(tmp_path: Path, workDir: Path) -> None:
    ce = makeCE(workDir)
    # the pilot ignores SIGTERM (so does its child): the kill must escalate to SIGKILL
    script = writeScript(tmp_path, "stubborn.sh", "trap '' TERM; sleep 60 & sleep 60; wait\n")
    result = ce.submitJob(script)
    ref = result["Value"][0]
    pgid = json.loads((workDir / result["PilotStampDict"][ref] / "pilot.json").read_text())["PID"]
    waitUntil(lambda: len(liveGroupMembers(pgid)) >= 3)
    killed = ce.killJob([ref])
    assert killed["OK"], killed
    assert liveGroupMembers(pgid) == []
    assert statuses(ce, [ref]) == {"Aborted"}


def test_statuses_survive_a_restart_of_the_submitter(tmp_path: Path, workDir: Path) -> None:
    go = tmp_path / "go"
    first = makeCE(workDir, MaxTotalJobs="3")
    quick = first.submitJob(writeScript(tmp_path, "quick.sh", "echo quick\n"))["Value"][0]
    slow = first.submitJob(writeScript(tmp_path, "slow.sh", waitForFile(go)))["Value"][0]
    doomed = first.submitJob(writeScript(tmp_path, "doomed.sh", "sleep 60\n"))["Value"][0]
    waitUntil(lambda: first.getJobStatus([quick])["Value"][quick] == "Done")

    restarted = makeCE(workDir, MaxTotalJobs="3")
    assert restarted.getJobStatus([quick, slow, doomed])["Value"] == {quick: "Done", slow: "Running", doomed: "Running"}
    assert restarted.getCEStatus()["Value"]["RunningJobs"] == 2
    assert restarted.available()["Value"] == 1
    assert restarted.getJobOutput(quick)["Value"] == ("quick\n", "")
    assert restarted.killJob(doomed)["OK"]
    go.touch()
    waitUntil(lambda: restarted.getJobStatus([slow])["Value"][slow] == "Done")
    assert restarted.getJobStatus([doomed])["Value"][doomed] == "Aborted"


def test_reused_pid_is_not_taken_for_the_pilot(tmp_path: Path, workDir: Path) -> None:
    ce = makeCE(workDir)
    result = ce.submitJob(writeScript(tmp_path, "long.sh", "sleep 60\n"))
    ref = result["Value"][0]
    stateFile = workDir / result["PilotStampDict"][ref] / "pilot.json"
    state = json.loads(stateFile.read_text())
    state["StartTime"] -= 1  # same pid, another start time: a different process now owns that pid
    stateFile.write_text(json.dumps(state))
    assert makeCE(workDir).getJobStatus([ref])["Value"][ref] == "Aborted"


def test_submission_beyond_max_total_jobs_is_refused(tmp_path: Path, workDir: Path) -> None:
    go = tmp_path / "go"
    script = writeScript(tmp_path, "wait.sh", waitForFile(go))
    ce = makeCE(workDir, MaxTotalJobs="2")
    assert ce.available()["Value"] == 2
    refs = ce.submitJob(script, numberOfJobs=2)["Value"]
    assert ce.available()["Value"] == 0
    refused = ce.submitJob(script)
    assert not refused["OK"]
    assert refused["Errno"] == DErrno.ERESUNA and "MaxTotalJobs=2" in refused["Message"]
    assert not ce.submitJob(script, numberOfJobs=3)["OK"]
    go.touch()
    waitUntil(lambda: statuses(ce, refs) == {"Done"})
    assert ce.available()["Value"] == 2
    assert ce.submitJob(script)["OK"]


def test_unknown_references(workDir: Path) -> None:
    ce = makeCE(workDir)
    refs = ["local://host/0123456789abcdef", "local://host/../../etc/passwd"]
    assert ce.getJobStatus(refs)["Value"] == dict.fromkeys(refs, "Unknown")
    output = ce.getJobOutput(refs[0])
    assert not output["OK"] and output["Errno"] == DErrno.ERESUNK
    assert not ce.killJob(refs[1])["OK"]


def test_working_directory_is_required() -> None:
    with pytest.raises(ConfigurationError, match="WorkingDirectory"):
        LocalComputingElement("local.test", {})


def test_factory_builds_a_local_ce(workDir: Path) -> None:
    ce = getComputingElement("Local", "local.test", {"WorkingDirectory": str(workDir), "Queue": "default"})
    assert isinstance(ce, LocalComputingElement)
    assert ce.getDescription()["Value"]["Queue"] == "default"
    assert workDir.is_dir()
