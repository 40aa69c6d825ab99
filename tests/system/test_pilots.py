"""The one-box grid running real jobs through real pilots: dirac-server start, then jobs submitted with the API.

One instance serves the whole module: every service and agent in one process on SQLite, the
SiteDirector starting pilots as local processes (Local CE), each pilot running the JobAgent and
a JobWrapper per job. Two queues: ``default`` (single-core slots) and ``multicore`` (a 4-processor
slot for jobs tagged ``MultiCoreTest`` only). Timings are shortened through the CS.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from gridtools import ROOT, WMS, jdl, run, startedGrid, statuses, submit, waitFor

from dirac.FrameworkSystem.Logic.Instance import ONE_BOX_CE, ONE_BOX_SITE, Instance
from dirac.Interfaces.API.Dirac import Dirac
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient

pytestmark = pytest.mark.slow
CE = f"/Resources/Sites/DIRAC/{ONE_BOX_SITE}/CEs/{ONE_BOX_CE}"

TUNING = {
    f"{WMS}/Agents/SiteDirector/PollingTime": "1",
    f"{WMS}/Agents/Optimizers/PollingTime": "1",
    f"{WMS}/Agents/JobAgent/PollingTime": "1",
    f"{WMS}/Agents/JobAgent/StopAfterFailedMatches": "3",
    f"{CE}/Queues/default/MaxTotalJobs": "4",
    f"{CE}/Queues/default/MaxWaitingJobs": "4",
    f"{CE}/Queues/multicore/NumberOfProcessors": "4",
    f"{CE}/Queues/multicore/MaxTotalJobs": "1",
    f"{CE}/Queues/multicore/MaxWaitingJobs": "1",
    f"{CE}/Queues/multicore/CPUTime": "86400",
    f"{CE}/Queues/multicore/Tag": "MultiCoreTest",
    f"{CE}/Queues/multicore/RequiredTag": "MultiCoreTest",
    f"{WMS}/JobWrapper/HeartBeatInterval": "2",
    f"{WMS}/JobWrapper/PollingTime": "1",
    f"{WMS}/Agents/PilotStatusAgent/PollingTime": "2",
    f"{WMS}/Agents/PilotStatusAgent/EndedPilotGraceTime": "5",
    f"{WMS}/Agents/StalledJobAgent/PollingTime": "2",
    f"{WMS}/Agents/StalledJobAgent/StalledTime": "30",
    f"{WMS}/Agents/StalledJobAgent/FailedTime": "40",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A started one-box grid; this process is its client."""
    with startedGrid(tmp_path_factory.mktemp("onebox"), TUNING) as instance:
        yield instance


def test_hello_world_example_runs_in_a_real_pilot_and_prints_its_output(site: Instance) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "hello_world.py"), "--timeout", "180"],
                            capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Done" in result.stdout and "hello world from a DIRAC pilot" in result.stdout
    jobID = int(result.stdout.split()[1])
    history = Dirac().getJobLoggingInfo(jobID)
    assert [row[0] for row in history["Value"] if row[0]][:1] == ["Received"]
    assert {"Checking", "Waiting", "Matched", "Running", "Completing", "Done"} <= {row[0] for row in history["Value"]}
    pilot = PilotManagerClient().getPilots(jobID)
    assert pilot["OK"] and next(iter(pilot["Value"])).startswith("local://"), pilot


def test_two_hundred_short_jobs_all_reach_done(site: Instance) -> None:
    jobIDs = submit('[Executable = "/bin/echo"; Arguments = "job %s"; Parameters = 200; CPUTime = 1000]')
    assert len(jobIDs) == 200
    final = waitFor(jobIDs, timeout=900)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}


def test_a_multicore_pilot_runs_several_jobs_at_once(site: Instance) -> None:
    jobIDs = submit(jdl("/bin/sleep", "6", Tags='{"MultiCoreTest"}', Parameters="4", ParameterStart="0",
                        ParameterStep="1"))
    final = waitFor(jobIDs, timeout=300)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}
    pilots = {jobID: PilotManagerClient().getPilots(jobID) for jobID in jobIDs}
    references = {next(iter(result["Value"])) for result in pilots.values() if result["OK"] and result["Value"]}
    assert len(references) == 1, f"the four jobs should share the multicore pilot: {pilots}"
    intervals = sorted((attrs["StartExecTime"], attrs["EndExecTime"]) for attrs in final.values())
    overlapping = sum(1 for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False) if start < end)
    assert overlapping >= 1, f"the jobs ran one after the other: {intervals}"


def test_a_payload_exiting_non_zero_is_failed_with_its_exit_code(site: Instance) -> None:
    # no ';' inside JDL strings: DIRAC's ClassAd parser ends an attribute at the first one
    [jobID] = submit(jdl("/bin/sh", "-c 'echo failing && exit 3'"))
    final = waitFor([jobID])[jobID]
    assert final["Status"] == "Failed" and final["MinorStatus"] == "Application Finished With Errors"
    parameters = Dirac().getJobParameters(jobID)
    assert parameters["OK"] and "3" in {str(value) for value in parameters["Value"].values()}, parameters


def test_a_payload_over_its_cpu_time_is_killed_by_the_watchdog(site: Instance) -> None:
    # CPUTime is normalised (DIRAC's HS06 seconds): 100 on a node of power ~20 allows a few real CPU seconds
    burn = jdl(sys.executable, "-c 'while True: pass'").replace("CPUTime = 1000", "CPUTime = 100")
    [jobID] = submit(burn)
    final = waitFor([jobID], timeout=300)[jobID]
    assert final["Status"] == "Failed", final
    assert final["MinorStatus"] == "Job has exceeded maximum CPU time limit", final


def test_pilot_logs_are_visible_from_the_cli_while_the_pilot_runs(site: Instance) -> None:
    [jobID] = submit(jdl("/bin/sleep", "15"))
    waitFor([jobID], done=("Running",), timeout=120)
    deadline = time.monotonic() + 12  # the pilot ships its log every few seconds
    while True:
        shown = run("dirac-wms-pilot-logging", "--job", str(jobID), env=dict(os.environ))
        if f"Job {jobID}" in shown.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "JobAgent" in shown.stdout and f"Job {jobID}" in shown.stdout, shown.stdout + shown.stderr
    assert statuses([jobID])[jobID]["Status"] == "Running", "the job (and its pilot) should still run"
    pilot = PilotManagerClient().getPilots(jobID)
    assert pilot["OK"] and next(iter(pilot["Value"].values()))["Status"] not in ("Done", "Failed", "Aborted")
    waitFor([jobID])


def test_a_server_restart_during_a_run_loses_no_job(site: Instance) -> None:
    jobIDs = submit(jdl("/bin/sleep", "8", Parameters="3", ParameterStart="0", ParameterStep="1"))
    waitFor(jobIDs, done=("Running",), timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("DIRACSYSCONFIG", "X509_USER_PROXY", "X509_CERT_DIR")}
    run("dirac-server", "stop", "--dir", str(site.root), env=env)
    time.sleep(3)
    run("dirac-server", "start", "--detach", "--dir", str(site.root), env=env)
    final = waitFor(jobIDs, timeout=300)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final


def _pilotProcesses(pilotDirectory: Path) -> list[psutil.Process]:
    processes = []
    for process in psutil.process_iter(["cwd"]):
        cwd = process.info.get("cwd") or ""
        if cwd.startswith(str(pilotDirectory)):
            processes.append(process)
    return processes


def test_a_pilot_killed_mid_job_leaves_its_job_stalled_then_failed(site: Instance) -> None:
    [jobID] = submit(jdl("/bin/sleep", "600"))
    waitFor([jobID], done=("Running",), timeout=120)
    pilot = PilotManagerClient().getPilots(jobID)
    assert pilot["OK"], pilot
    stamp = next(iter(pilot["Value"])).rstrip("/").rsplit("/", 1)[-1]
    victims = _pilotProcesses(site.pilotsDir / stamp)
    assert victims, "no process of the pilot found"
    for process in victims:  # the node dies: the pilot and everything it started
        process.send_signal(signal.SIGKILL)
    final = waitFor([jobID], done=("Failed",), timeout=300)[jobID]
    history = Dirac().getJobLoggingInfo(jobID)
    assert history["OK"] and "Stalled" in [row[0] for row in history["Value"]], history
    assert final["Status"] == "Failed"


@pytest.mark.timeout(600)
def test_pilots_can_pip_install_the_servers_own_client_wheel(site: Instance) -> None:
    """dirac-server publish-client --use: new pilots install the wheel the server serves, then run jobs."""
    import json

    import requests

    from dirac.ConfigurationSystem.Client.CSAPI import CSAPI

    published = json.loads(run("dirac-server", "--json", "publish-client", "--dir", str(site.root), "--use",
                               env=dict(os.environ), timeout=300).stdout)
    wheel = Path(published["wheel"])
    assert wheel.parent == site.pilotFilesDir and wheel.name.startswith("dirac_seed-") and published["used"]
    bundle = site.root / "ca-bundle.pem"
    bundle.write_text("".join(p.read_text() for p in site.certificatesDir.iterdir() if p.suffix == ".0"))
    assert requests.get(published["url"], verify=str(bundle), timeout=30).status_code == 401  # no certificate
    served = requests.get(published["url"], verify=str(bundle), cert=str(site.proxy), timeout=30)
    assert served.status_code == 200 and served.content == wheel.read_bytes()
    assert requests.get(published["url"].rsplit("/", 1)[0] + "/..%2Fetc%2Fdirac.cfg", verify=str(bundle),
                        cert=str(site.proxy), timeout=30).status_code == 404
    try:
        deadline = time.monotonic() + 60  # earlier pilots stop after a few failed matches
        while _pilotProcesses(site.pilotsDir) and time.monotonic() < deadline:
            time.sleep(1)
        [jobID] = submit(jdl("/bin/echo", "installed"))
        final = waitFor([jobID], timeout=400)
        assert final[jobID]["Status"] == "Done", final
        deadline = time.monotonic() + 30  # the pilot ships its log lines every few seconds
        while "client version" not in (shown := run("dirac-wms-pilot-logging", "--job", str(jobID),
                                                    env=dict(os.environ)).stdout) and time.monotonic() < deadline:
            time.sleep(1)
        assert f"from {published['url']}" in shown and "client version" in shown, shown
    finally:
        api = CSAPI()
        assert api.initialize()["OK"]
        api.setOption(f"{WMS}/Agents/SiteDirector/PilotInstall", "")
        assert api.commit()["OK"]
