"""PushJobAgent bookkeeping with whole-node bundles on a Local CE of the one-box grid (no SSH, no Slurm): a Kill of
one job of a node leaves the other running to Done, and jobs pushed before a server restart are followed after it.

The payloads wait for a release file that the test writes into their batch job's directory, so each test decides
when they end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gridtools import WMS, ceOptions, jdl, run, serverEnvironment, startedGrid, statuses, waitFor

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.FrameworkSystem.Logic.Instance import Instance
from dirac.Interfaces.API.Dirac import Dirac

pytestmark = pytest.mark.slow
SITE = "DIRAC.PushLocal.local"
CE = "push.local"
QUEUE = f"/Resources/Sites/DIRAC/{SITE}/CEs/{CE}/Queues/default"
# both jobs mark their start, then wait (at most 120 s) for ../release; the test reads the marks and releases
PAYLOAD = ("#!/bin/sh\ntouch ../started-$DIRACJOBID\ni=0\n"
           "while [ ! -e ../release ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\n"
           "[ $i -lt 1200 ] || exit 9\necho released > result.txt\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Path]]:
    root = tmp_path_factory.mktemp("pushlocal")
    area = root / "push-ce"
    options = {
        f"{WMS}/Agents/SiteDirector/CEs": "no.such.ce",
        f"{WMS}/Agents/Optimizers/PollingTime": "1",
        f"{WMS}/Agents/PushJobAgent/CEs": CE,
        f"{WMS}/Agents/PushJobAgent/PollingTime": "1",
        **ceOptions(SITE, CE, CEType="Local", WorkingDirectory=str(area), NumberOfProcessors="2"),
        f"{QUEUE}/MaxTotalJobs": "0",  # closed until a test has its jobs waiting
    }
    with startedGrid(root, options) as instance:
        yield instance, area


def setSlots(slots: int) -> None:
    api = CSAPI()
    assert api.initialize()["OK"]
    api.setOption(f"{QUEUE}/MaxTotalJobs", str(slots))
    assert api.commit()["OK"]


def pushedNode(tmp_path: Path, area: Path) -> tuple[list[int], Path]:
    """Two jobs pushed as one node bundle and running: their IDs and the batch job's directory."""
    script = tmp_path / "payload.sh"
    script.write_text(PAYLOAD)
    description = jdl("payload.sh", Site=f'"{SITE}"', InputSandbox=f'{{"{script}"}}',
                      OutputSandbox='{"std.out", "std.err", "result.txt"}')
    jobIDs = [int(Dirac().submitJob(description)["Value"]) for _ in range(2)]
    waitFor(jobIDs, done=("Waiting",), timeout=60)
    setSlots(1)
    try:
        deadline = time.monotonic() + 60
        while len(marks := sorted(path for jobID in jobIDs for path in area.glob(f"*/started-{jobID}"))) < 2:
            assert time.monotonic() < deadline, f"the payloads did not start: {marks}"
            time.sleep(0.5)
    finally:
        setSlots(0)
    assert marks[0].parent == marks[1].parent, marks  # one batch job
    return jobIDs, marks[0].parent


def test_killing_one_job_of_a_node_leaves_the_other_running_to_done(site, tmp_path: Path) -> None:
    instance, area = site
    (killed, kept), batchDir = pushedNode(tmp_path, area)
    assert Dirac().killJob(killed)["OK"]
    deadline = time.monotonic() + 30
    while f"Job {killed}: Kill command: left to end in" not in instance.logFile.read_text():
        assert time.monotonic() < deadline, "the agent did not see the Kill command"
        time.sleep(0.5)
    assert statuses([kept])[kept]["Status"] == "Running"
    (batchDir / "release").touch()
    final = waitFor([kept], timeout=120)
    assert final[kept]["Status"] == "Done", final
    assert Dirac().getOutputSandbox(kept, str(tmp_path))["OK"]
    assert (tmp_path / str(kept) / "result.txt").read_text() == "released\n"
    time.sleep(3)  # the node's result came back with the kept job's: the killed job's is ignored
    assert statuses([killed])[killed]["Status"] == "Killed"


def test_jobs_pushed_before_a_server_restart_are_followed_after_it(site, tmp_path: Path) -> None:
    instance, area = site
    jobIDs, batchDir = pushedNode(tmp_path, area)
    env = {**serverEnvironment(), "HOME": str(instance.root.parent)}
    run("dirac-server", "stop", "--dir", str(instance.root), env=env)
    (batchDir / "release").touch()  # the node ends while no agent follows it
    time.sleep(2)
    run("dirac-server", "start", "--detach", "--dir", str(instance.root), env=env)
    final = waitFor(jobIDs, timeout=120)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
    assert "following 2 job(s) pushed before a restart" in instance.logFile.read_text()
