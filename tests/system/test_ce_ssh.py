"""Pilots started over SSH by the SiteDirector: real jobs to Done, and the faults of an SSH site.

One grid for the module, with three sites served by the local sshd (tests/servers/sshd.sh) as
the dedicated user ``diracpilot``: ``ssh.host`` (SSH CE, Host batch system), ``ssh.batch``
(SSHBatch CE over two host names, one slot each) and ``ssh.badkey`` (an SSH key the server does
not accept, until the test repairs it). Jobs choose their site with ``Site``.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from gridtools import (
    assertQueueBacksOff,
    assertQueueRecovers,
    ceOptions,
    grantClient,
    jdl,
    knownHosts,
    logOffset,
    pilotsOf,
    runningServer,
    serverScript,
    sshOptions,
    startedGrid,
    submit,
    tuning,
    waitFor,
    waitForLog,
    waitForPilot,
)

from dirac.FrameworkSystem.Logic.Instance import ONE_BOX_CE, Instance
from dirac.Interfaces.API.Dirac import Dirac
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient

pytestmark = pytest.mark.slow
SITES = {"ssh.host": "DIRAC.SSH.local", "ssh.batch": "DIRAC.SSHBatch.local", "ssh.badkey": "DIRAC.SSHBadKey.local"}


@dataclass
class SSHSite:
    instance: Instance
    sshd: dict[str, str]
    sharedArea: Path          # on the "remote" host: the pilots' areas
    badKey: Path              # the key of ssh.badkey


def killPilotProcesses(sharedArea: Path, stamp: str = "") -> int:
    """Kill (SIGKILL, by pid) the processes running in the work area of a pilot (all pilots without ``stamp``)."""
    killed = 0
    where = str(sharedArea / "work" / stamp)
    for process in psutil.process_iter(["cwd"]):
        if (process.info.get("cwd") or "").startswith(where):
            try:
                process.kill()
                killed += 1
            except psutil.NoSuchProcess:
                pass
    return killed


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHSite]:
    root = tmp_path_factory.mktemp("sshsite")
    with runningServer("sshd") as sshd:
        grantClient()
        known = knownHosts(root / "known_hosts", sshd)
        areaName = f"dirac-pilots-{secrets.token_hex(4)}"
        sharedArea = Path(sshd["SSHD_HOME"]) / areaName
        badKey = root / "bad_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(badKey)], check=True)
        options = {
            **tuning("ssh.host, ssh.batch, ssh.badkey"),
            **ceOptions(SITES["ssh.host"], "ssh.host", **sshOptions(sshd, known, areaName)),
            **ceOptions(SITES["ssh.batch"], "ssh.batch", **sshOptions(sshd, known, areaName, CEType="SSHBatch",
                                                  SSHHost="127.0.0.1/1, localhost/1")),
            **ceOptions(SITES["ssh.badkey"], "ssh.badkey", **sshOptions(sshd, known, areaName, SSHKey=str(badKey))),
        }
        try:
            with startedGrid(root, options) as instance:
                yield SSHSite(instance, sshd, sharedArea, badKey)
                killPilotProcesses(sharedArea)
        finally:
            serverScript("sshd", "start")  # a failed test may have left it stopped
            killPilotProcesses(sharedArea)
            shutil.rmtree(sharedArea, ignore_errors=True)
            serverScript("sshd", "revoke")


def test_the_one_box_ce_is_not_served_here(site: SSHSite) -> None:
    assert PilotManagerClient().countPilots({"DestinationSite": ONE_BOX_CE})["Value"] == 0


def test_jobs_run_to_done_in_pilots_started_over_ssh_as_the_site_user(site: SSHSite, tmp_path: Path) -> None:
    jobIDs = submit(jdl("/usr/bin/id", "-un", Site=f'"{SITES["ssh.host"]}"', Parameters="3"))
    final = waitFor(jobIDs, timeout=240)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
    assert Dirac().getOutputSandbox(jobIDs[0], str(tmp_path))["OK"]
    assert (tmp_path / str(jobIDs[0]) / "std.out").read_text().strip() == site.sshd["SSHD_USER"]
    references = {ref for jobID in jobIDs for ref in pilotsOf(jobID)}
    assert references and all(ref.startswith("sshhost://ssh.host/") for ref in references), references
    reference = sorted(references)[0]
    info = waitForPilot(reference)
    assert info["Status"] == "Done" and info["StatusReason"] == "ssh.host says Done: exit code 0", info
    output = PilotManagerClient().getPilotOutput(reference)
    assert output["OK"] and "JobAgent" in output["Value"]["StdOut"] + output["Value"]["StdErr"], output
    stamp = reference.rsplit("/", 1)[1]
    assert not (site.sharedArea / "data" / f"{stamp}.proxy").exists(), "the pilot proxy outlived its pilot"


def test_an_ssh_batch_ce_spreads_pilots_over_its_hosts(site: SSHSite) -> None:
    jobIDs = submit(jdl("/bin/sleep", "8", Site=f'"{SITES["ssh.batch"]}"', Parameters="2"))
    final = waitFor(jobIDs, timeout=240)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
    references = {ref for jobID in jobIDs for ref in pilotsOf(jobID)}
    hosts = {ref.split("/")[3] for ref in references}
    assert hosts == {"127.0.0.1", "localhost"}, references
    assert all(ref.startswith("sshbatchhost://ssh.batch/") for ref in references)


def test_a_rejected_key_backs_the_queue_off_with_the_reason_until_the_key_is_repaired(site: SSHSite) -> None:
    since = len(site.instance.logFile.read_text(errors="replace"))
    [jobID] = submit(jdl("/bin/echo", "after the key repair", Site=f'"{SITES["ssh.badkey"]}"'))
    log = waitForLog(site.instance, "queue ssh.badkey/default", since=since)
    waitForLog(site.instance, "leaving it alone for 6 s", since=since)  # the delay doubles while it fails
    log = site.instance.logFile.read_text(errors="replace")[since:]
    failure = next(line for line in log.splitlines() if "queue ssh.badkey/default" in line)
    assert "authentication refused" in failure and f"{site.sshd['SSHD_USER']}@127.0.0.1" in failure, failure
    assert PilotManagerClient().countPilots({"DestinationSite": "ssh.badkey"})["Value"] == 0
    assert waitFor([jobID], done=("Waiting",), timeout=5)[jobID]["Status"] == "Waiting"
    shutil.copyfile(site.sshd["SSHD_KEY"], site.badKey)  # the site admin installs our key
    final = waitFor([jobID], timeout=180)[jobID]
    assert final["Status"] == "Done", final
    assert all(ref.startswith("sshhost://ssh.badkey/") for ref in pilotsOf(jobID))


def test_a_host_unreachable_at_submission_backs_the_queue_off_with_the_reason_until_it_is_back(site: SSHSite
                                                                                               ) -> None:
    queue = "ssh.host/default"
    since = logOffset(site.instance)
    before = PilotManagerClient().countPilots({"DestinationSite": "ssh.host"})["Value"]
    assert serverScript("sshd", "stop").returncode == 0
    try:
        [jobID] = submit(jdl("/bin/echo", "after the outage", Site=f'"{SITES["ssh.host"]}"'))
        assertQueueBacksOff(site.instance, queue, "connection refused", since)
        assert PilotManagerClient().countPilots({"DestinationSite": "ssh.host"})["Value"] == before
        assert waitFor([jobID], done=("Waiting",), timeout=5)[jobID]["Status"] == "Waiting"
    finally:
        assert serverScript("sshd", "start").returncode == 0
    assertQueueRecovers(site.instance, queue, jobID, "sshhost", since)


def test_a_host_going_down_mid_job_aborts_its_pilot_and_the_job_is_rescheduled_when_it_is_back(site: SSHSite
                                                                                                 ) -> None:
    marker = Path(site.sshd["SSHD_HOME"]) / f"first-run-{secrets.token_hex(4)}"
    # the first run sleeps until the host dies; the rescheduled one ends at once
    [jobID] = submit(jdl("/bin/sh", f"-c 'test -e {marker} && echo second run || (touch {marker} && sleep 300)'",
                         Site=f'"{SITES["ssh.host"]}"'))
    waitFor([jobID], done=("Running",), timeout=180)
    [reference] = pilotsOf(jobID)
    since = len(site.instance.logFile.read_text(errors="replace"))
    assert serverScript("sshd", "stop").returncode == 0
    assert killPilotProcesses(site.sharedArea, reference.rsplit("/", 1)[1]) > 0  # the host went down
    log = waitForLog(site.instance, "cannot read pilot statuses", since=since)
    assert "connection refused" in log, log[-2000:]
    assert PilotManagerClient().getPilotInfo(reference)["Value"][reference]["Status"] == "Running"
    time.sleep(3)
    assert serverScript("sshd", "start").returncode == 0
    info = waitForPilot(reference, timeout=120)
    assert info["Status"] == "Aborted", info
    assert "vanished without an exit code" in info["StatusReason"], info
    final = waitFor([jobID], timeout=180)[jobID]
    marker.unlink(missing_ok=True)
    assert final["Status"] == "Done" and int(final["RescheduleCounter"]) >= 1, final
    assert len(pilotsOf(jobID)) == 2
    history = [row[0] for row in Dirac().getJobLoggingInfo(jobID)["Value"]]
    assert "Stalled" in history and "Rescheduled" in history, history
