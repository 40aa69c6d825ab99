"""Pilots as Slurm jobs: through the SSH CE (sbatch on the host over SSH) and through a local Slurm CE.

One grid for the module and the one-node cluster of tests/servers/slurm.sh: ``slurm.ssh`` (SSH CE,
``BatchSystem = Slurm``, as the pilot user ``diracpilot`` of tests/servers/sshd.sh) and
``slurm.local`` (``CEType = Local`` with ``BatchSystem = Slurm``, sbatch run by the SiteDirector
itself). Slurm commands find the cluster through the CEs' ``Preamble``.
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
    ceOptions,
    grantClient,
    jdl,
    knownHosts,
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

pytestmark = pytest.mark.slow
SITES = {"slurm.ssh": "DIRAC.SlurmSSH.local", "slurm.local": "DIRAC.Slurm.local"}


@dataclass
class SlurmSite:
    instance: Instance
    slurmConf: str
    sshd: dict[str, str]


def scancel(slurmConf: str, batchID: str) -> None:
    """Cancel a job from outside DIRAC, as a site admin would."""
    done = subprocess.run(["scancel", batchID], env={**os.environ, "SLURM_CONF": slurmConf}, capture_output=True,
                          text=True, timeout=60)
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
        options = {
            **tuning("slurm.ssh, slurm.local"),
            **ceOptions(SITES["slurm.ssh"], "slurm.ssh", **sshOptions(sshd, knownHosts(root / "known_hosts", sshd),
                                                                      areaName, BatchSystem="Slurm",
                                                                      Preamble=preamble)),
            **ceOptions(SITES["slurm.local"], "slurm.local", CEType="Local", BatchSystem="Slurm", Preamble=preamble,
                        SharedArea=str(localArea)),
        }
        try:
            with startedGrid(root, options) as instance:
                yield SlurmSite(instance, slurm["SLURM_CONF"], sshd)
        finally:
            subprocess.run(["scancel", "--quiet", "--name=dirac-pilot"], env={**os.environ,
                           "SLURM_CONF": slurm["SLURM_CONF"]}, capture_output=True, timeout=60)
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


def test_a_pilot_cancelled_in_slurm_is_aborted_with_the_reason_and_its_job_ends_failed_not_lost(site: SlurmSite
                                                                                                ) -> None:
    [jobID] = submit(jdl("/bin/sleep", "300", Site=f'"{SITES["slurm.ssh"]}"'))
    waitFor([jobID], done=("Running",), timeout=180)
    [reference] = pilotsOf(jobID)
    scancel(site.slurmConf, reference.rsplit("/", 1)[1])
    info = waitForPilot(reference, timeout=60)
    assert info["Status"] == "Aborted", info
    assert "cancelled in Slurm (CANCELLED" in info["StatusReason"], info
    # Slurm sends SIGTERM first: the job wrapper reports the kill before the pilot goes
    final = waitFor([jobID], timeout=60)[jobID]
    assert final["Status"] == "Failed" and final["MinorStatus"] == "Received Kill signal", final
    history = [row[0] for row in Dirac().getJobLoggingInfo(jobID)["Value"]]
    assert history[-1] == "Failed", history
