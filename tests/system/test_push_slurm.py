"""PushJobAgent: jobs matched by the agent on the server and pushed to Slurm over SSH; the node never calls back.

One grid with the one-node cluster of tests/servers/slurm.sh reached over SSH (tests/servers/sshd.sh,
user ``diracpilot``): the CEs ``push.slurm`` (one-core slots) and ``push.node`` (two-core slots: whole-node
bundles) are served by the PushJobAgent only (the SiteDirector serves no queue here). The batch jobs run
the bundle with the node's own ``/usr/bin/python3``: no client, no proxy, no configuration on the node.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gridtools import WMS, ceOptions, jdl, knownHosts, runningServer, serverScript, sshOptions, startedGrid, waitFor

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.FrameworkSystem.Logic.Instance import Instance
from dirac.Interfaces.API.Dirac import Dirac
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient

pytestmark = pytest.mark.slow
SITE = "DIRAC.Push.local"
CE = "push.slurm"
NODE_SITE = "DIRAC.PushNode.local"
NODE_CE = "push.node"
NODE_QUEUE = f"/Resources/Sites/DIRAC/{NODE_SITE}/CEs/{NODE_CE}/Queues/default"


@dataclass
class PushSite:
    instance: Instance
    area: Path  # the CE's shared area on the "remote" side
    slurmConf: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushSite]:
    root = tmp_path_factory.mktemp("pushsite")
    with runningServer("slurm") as slurm, runningServer("sshd") as sshd:
        areaName = f"dirac-push-{secrets.token_hex(4)}"
        ssh = sshOptions(sshd, knownHosts(root / "known_hosts", sshd), areaName, BatchSystem="Slurm",
                         Preamble=f"export SLURM_CONF={slurm['SLURM_CONF']}")
        options = {
            f"{WMS}/Agents/SiteDirector/CEs": "no.such.ce",
            f"{WMS}/Agents/Optimizers/PollingTime": "1",
            f"{WMS}/Agents/PushJobAgent/CEs": f"{CE}, {NODE_CE}",
            f"{WMS}/Agents/PushJobAgent/PollingTime": "1",
            **ceOptions(SITE, CE, **ssh),
            **ceOptions(NODE_SITE, NODE_CE, **ssh, NumberOfProcessors="2"),
            f"{NODE_QUEUE}/MaxTotalJobs": "0",  # closed until a test has its jobs waiting
        }
        try:
            with startedGrid(root, options) as instance:
                yield PushSite(instance, Path(sshd["SSHD_HOME"]) / areaName, slurm["SLURM_CONF"])
        finally:
            subprocess.run(["scancel", "--quiet", "--name=dirac-pilot"], env={"SLURM_CONF": slurm["SLURM_CONF"],
                           "PATH": "/usr/bin:/bin"}, capture_output=True, timeout=60)
            shutil.rmtree(Path(sshd["SSHD_HOME"]) / areaName, ignore_errors=True)
            serverScript("sshd", "revoke")


def submitWithSandbox(tmp_path: Path, script: str, arguments: str = "", site: str = SITE) -> int:
    path = tmp_path / "payload.sh"
    path.write_text(script)
    description = jdl("payload.sh", arguments, Site=f'"{site}"', InputSandbox=f'{{"{path}"}}',
                      OutputSandbox='{"std.out", "std.err", "result.txt"}')
    result = Dirac().submitJob(description)
    assert result["OK"], result
    return int(result["Value"])


def test_pushed_jobs_run_on_slurm_to_done_with_their_output_sandbox_and_no_credential_on_the_node(
        site: PushSite, tmp_path: Path) -> None:
    script = ("#!/bin/sh\necho \"pushed $1 as $(id -un) in $SLURM_JOB_ID\" > result.txt\n"
              "env | grep -E '^(X509_|BEARER_TOKEN|DIRACSYSCONFIG)' || echo no-credentials\n")
    jobIDs = [submitWithSandbox(tmp_path, script, f"job{i}") for i in range(2)]
    final = waitFor(jobIDs, timeout=240)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
    for number, jobID in enumerate(jobIDs):
        assert Dirac().getOutputSandbox(jobID, str(tmp_path))["OK"]
        assert (tmp_path / str(jobID) / "std.out").read_text() == "no-credentials\n"
        assert (tmp_path / str(jobID) / "result.txt").read_text().startswith(f"pushed job{number} as diracpilot in ")
        parameters = Dirac().getJobParameters(jobID)["Value"]
        assert parameters["ApplicationExitCode"] == "0" and "TotalCPUTime(s)" in parameters, parameters
        assert parameters["Pilot_Reference"].startswith(f"sshslurm://{CE}/"), parameters
    # no pilot: nothing registered, and what reached the node holds no credential and no server address
    assert PilotManagerClient().countPilots({"DestinationSite": CE})["Value"] == 0
    shipped = sorted((site.area / "data").iterdir())
    assert not [path for path in shipped if path.suffix in (".proxy", ".token")], shipped
    bundles = [path.read_text() for path in shipped if path.suffix == ".py"]
    scripts = [path.read_text() for path in shipped if path.suffix == ".sh"]
    assert len(bundles) >= 2 and len(scripts) >= 2
    client = Path(site.instance.clientCFG).read_text()
    url = next(line.split("=", 1)[1].strip() for line in client.splitlines() if "Configuration/Server" in line)
    address = url.split("//")[1].split("/")[0]  # host:port of the server
    for text in bundles + scripts:
        assert "BEGIN CERTIFICATE" not in text and "PRIVATE KEY" not in text and address not in text
    for text in scripts:
        assert "X509_USER_PROXY" not in text and "BEARER_TOKEN_FILE" not in text, text


def test_a_failing_pushed_payload_ends_failed_with_its_exit_code(site: PushSite, tmp_path: Path) -> None:
    jobID = submitWithSandbox(tmp_path, "#!/bin/sh\necho about to fail >&2\nexit 3\n")
    final = waitFor([jobID], timeout=240)[jobID]
    assert final["Status"] == "Failed" and final["MinorStatus"] == "Application Finished With Errors", final
    assert Dirac().getJobParameters(jobID)["Value"]["ApplicationExitCode"] == "3"
    assert Dirac().getOutputSandbox(jobID, str(tmp_path))["OK"]
    assert (tmp_path / str(jobID) / "std.err").read_text() == "about to fail\n"


def test_a_pushed_job_whose_batch_job_is_cancelled_outside_is_rescheduled_and_runs_again_to_done(
        site: PushSite, tmp_path: Path) -> None:
    marker = site.area / f"first-run-{secrets.token_hex(4)}"
    # the first run sleeps until its batch job is cancelled; the rescheduled one ends at once
    jobID = submitWithSandbox(tmp_path, f"#!/bin/sh\ntest -e {marker} && echo second run > result.txt && exit 0\n"
                                        f"touch {marker}\nsleep 300\n")
    waitFor([jobID], done=("Running",), timeout=180)  # pushed: the batch job may still be pending
    deadline = time.monotonic() + 120
    while not marker.exists():  # the payload runs
        assert time.monotonic() < deadline, "the pushed payload did not start within 120 s"
        time.sleep(0.5)
    reference = Dirac().getJobParameters(jobID)["Value"]["Pilot_Reference"]
    cancelled = subprocess.run(["scancel", reference.rsplit("/", 1)[1]], env={"SLURM_CONF": site.slurmConf,
                               "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert cancelled.returncode == 0, cancelled.stderr
    try:
        final = waitFor([jobID], timeout=240)[jobID]
    finally:
        marker.unlink(missing_ok=True)
    assert final["Status"] == "Done" and int(final["RescheduleCounter"]) == 1, final
    history = [row[0] for row in Dirac().getJobLoggingInfo(jobID)["Value"]]
    assert history.index("Failed") < history.index("Rescheduled") < history.index("Received", 1), history
    assert Dirac().getOutputSandbox(jobID, str(tmp_path))["OK"]
    assert (tmp_path / str(jobID) / "result.txt").read_text() == "second run\n"


def setNodeSlots(slots: int) -> None:
    api = CSAPI()
    assert api.initialize()["OK"]
    api.setOption(f"{NODE_QUEUE}/MaxTotalJobs", str(slots))
    assert api.commit()["OK"]


def test_single_core_jobs_share_one_whole_node_batch_job_and_run_side_by_side(site: PushSite, tmp_path: Path) -> None:
    # each payload marks its start next to its own directory and waits (at most 30 s) for the other's mark:
    # both end well only if they run at the same time in the same allocation
    script = ("#!/bin/sh\ntouch ../started-$DIRACJOBID\ni=0\n"
              "while [ \"$(ls .. | grep -c '^started-')\" -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"
              "[ $i -lt 300 ] || exit 9\necho \"side by side in $SLURM_JOB_ID\" > result.txt\n")
    jobIDs = [submitWithSandbox(tmp_path, script, site=NODE_SITE) for _ in range(2)]
    waitFor(jobIDs, done=("Waiting",), timeout=60)
    setNodeSlots(1)
    try:
        final = waitFor(jobIDs, timeout=240)
    finally:
        setNodeSlots(0)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
    references, outputs = set(), set()
    for jobID in jobIDs:
        references.add(Dirac().getJobParameters(jobID)["Value"]["Pilot_Reference"])
        assert Dirac().getOutputSandbox(jobID, str(tmp_path))["OK"]
        outputs.add((tmp_path / str(jobID) / "result.txt").read_text())
    assert len(references) == 1 and references.pop().startswith(f"sshslurm://{NODE_CE}/"), references
    assert len(outputs) == 1 and outputs.pop().startswith("side by side in "), outputs
