"""Pilots as Slurm jobs: through the SSH CE (sbatch on the host over SSH) and through a local Slurm CE.

One grid for the module and the one-node cluster of tests/servers/slurm.sh: ``slurm.ssh`` (SSH CE,
``BatchSystem = Slurm``, as the pilot user ``diracpilot`` of tests/servers/sshd.sh),
``slurm.local`` (``CEType = Local`` with ``BatchSystem = Slurm``, sbatch run by the SiteDirector
itself) and ``slurm.faults`` (the same on a partition of its own, which the module creates and a
test drains). Slurm commands find the cluster through the CEs' ``Preamble``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    waitForPilot,
)

from dirac.FrameworkSystem.Logic.Instance import Instance
from dirac.Interfaces.API.Dirac import Dirac
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient

pytestmark = pytest.mark.slow
SITES = {"slurm.ssh": "DIRAC.SlurmSSH.local", "slurm.local": "DIRAC.Slurm.local",
         "slurm.faults": "DIRAC.SlurmFaults.local"}
#: what sbatch says for a drained partition
DRAINED = "Required partition not available (inactive or drain)"


@dataclass
class SlurmSite:
    instance: Instance
    slurmConf: str
    sshd: dict[str, str]
    partition: str            # the partition of slurm.faults


def slurmCommand(slurmConf: str, *command: str) -> subprocess.CompletedProcess:
    """A Slurm command run by a site admin, outside DIRAC."""
    return subprocess.run(command, env={**os.environ, "SLURM_CONF": slurmConf}, capture_output=True, text=True,
                          timeout=60)


def scancel(slurmConf: str, batchID: str) -> None:
    """Cancel a job from outside DIRAC, as a site admin would."""
    done = slurmCommand(slurmConf, "scancel", batchID)
    assert done.returncode == 0, done.stderr


def setPartitionState(site: SlurmSite, state: str) -> None:
    done = slurmCommand(site.slurmConf, "scontrol", "update", f"PartitionName={site.partition}", f"State={state}")
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmSite]:
    root = tmp_path_factory.mktemp("slurmsite")
    with runningServer("slurm") as slurm, runningServer("sshd") as sshd:
        grantClient()
        preamble = f"export SLURM_CONF={slurm['SLURM_CONF']}"
        areaName = f"dirac-pilots-{secrets.token_hex(4)}"
        localArea = root / "slurm-pilots"
        localArea.mkdir(mode=0o755)
        partition = f"faults{secrets.token_hex(3)}"
        created = slurmCommand(slurm["SLURM_CONF"], "scontrol", "create", f"PartitionName={partition}", "Nodes=ALL",
                               "State=UP")
        assert created.returncode == 0, created.stderr
        options = {
            **tuning("slurm.ssh, slurm.local, slurm.faults"),
            **ceOptions(SITES["slurm.ssh"], "slurm.ssh", **sshOptions(sshd, knownHosts(root / "known_hosts", sshd),
                                                                      areaName, BatchSystem="Slurm",
                                                                      Preamble=preamble)),
            **ceOptions(SITES["slurm.local"], "slurm.local", CEType="Local", BatchSystem="Slurm", Preamble=preamble,
                        SharedArea=str(localArea)),
            **ceOptions(SITES["slurm.faults"], "slurm.faults", CEType="Local", BatchSystem="Slurm",
                        Preamble=preamble, SharedArea=str(localArea), Partition=partition),
        }
        try:
            with startedGrid(root, options) as instance:
                yield SlurmSite(instance, slurm["SLURM_CONF"], sshd, partition)
        finally:
            slurmCommand(slurm["SLURM_CONF"], "scancel", "--quiet", "--name=dirac-pilot")
            slurmCommand(slurm["SLURM_CONF"], "scontrol", "delete", f"PartitionName={partition}")
            shutil.rmtree(Path(sshd["SSHD_HOME"]) / areaName, ignore_errors=True)
            serverScript("sshd", "revoke")


@pytest.mark.parametrize("ce", ["slurm.ssh", "slurm.local"])
def test_jobs_run_to_done_in_pilots_submitted_to_slurm(site: SlurmSite, ce: str) -> None:
    jobIDs = submit(jdl("/bin/echo", "slurm %s", Site=f'"{SITES[ce]}"', Parameters="2"))
    final = waitFor(jobIDs, timeout=240)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
    references = {ref for jobID in jobIDs for ref in pilotsOf(jobID)}
    scheme = "sshslurm" if ce == "slurm.ssh" else "localslurm"
    assert references and all(ref.startswith(f"{scheme}://{ce}/") for ref in references), references
    info = waitForPilot(sorted(references)[0])
    assert info["Status"] == "Done" and info["StatusReason"] == f"{ce} says Done: Slurm job COMPLETED", info


def test_a_pilot_cancelled_in_slurm_is_aborted_with_the_reason_and_its_job_rescheduled_runs_to_done(
        site: SlurmSite) -> None:
    marker = Path(site.sshd["SSHD_HOME"]) / f"first-run-{secrets.token_hex(4)}"
    # the first run sleeps until its pilot is cancelled; the rescheduled one ends at once
    [jobID] = submit(jdl("/bin/sh", f"-c 'test -e {marker} && echo second run || (touch {marker} && sleep 300)'",
                         Site=f'"{SITES["slurm.ssh"]}"'))
    waitFor([jobID], done=("Running",), timeout=180)
    [reference] = pilotsOf(jobID)
    scancel(site.slurmConf, reference.rsplit("/", 1)[1])
    info = waitForPilot(reference, timeout=60)
    assert info["Status"] == "Aborted", info
    assert "cancelled in Slurm (CANCELLED" in info["StatusReason"], info
    # Slurm sends SIGTERM first: the job wrapper reports why and reschedules the job, which runs again
    final = waitFor([jobID], timeout=180)[jobID]
    marker.unlink(missing_ok=True)
    assert final["Status"] == "Done" and int(final["RescheduleCounter"]) == 1, final
    assert len(pilotsOf(jobID)) == 2
    history = Dirac().getJobLoggingInfo(jobID)["Value"]
    failed = next(row for row in history if row[0] == "Failed")
    assert failed[1] == "Received Kill signal" and "Stopped by SIGTERM from outside DIRAC" in failed[2], history
    statuses = [row[0] for row in history]
    assert statuses.index("Failed") < statuses.index("Rescheduled") < statuses.index("Received", 1), statuses
    assert statuses[-1] == "Done", statuses


def test_a_drained_partition_refuses_pilots_and_its_queue_backs_off_with_slurms_reason_until_it_is_up(
        site: SlurmSite) -> None:
    queue = "slurm.faults/default"
    setPartitionState(site, "DRAIN")
    since = logOffset(site.instance)
    try:
        [jobID] = submit(jdl("/bin/echo", "after the drain", Site=f'"{SITES["slurm.faults"]}"'))
        assertQueueBacksOff(site.instance, queue, DRAINED, since)
        assert PilotManagerClient().countPilots({"DestinationSite": "slurm.faults"})["Value"] == 0
        assert waitFor([jobID], done=("Waiting",), timeout=5)[jobID]["Status"] == "Waiting"
    finally:
        setPartitionState(site, "UP")
    assertQueueRecovers(site.instance, queue, jobID, "localslurm", since)
