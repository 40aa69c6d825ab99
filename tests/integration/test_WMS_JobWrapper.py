"""dirac-jobwrapper as a real process against the real services over HTTPS.

A job is submitted with the Dirac API (its input sandbox uploaded to SandboxStore), put in its
task queue with the scheduling logic on the grid's databases (the Optimizers are tested on their
own; their input sandbox assignment is done here by the owner), matched by the Matcher for a pilot proxy (``pilot``: admin in dirac_pilot), and then run by
``dirac-jobwrapper --job job.json`` in a subprocess with the grid's configuration and the pilot's
proxy, as the JobAgent runs it. Everything is then checked through JobMonitoring and SandboxStore.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Config import gConfig
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.API.Job import Job
from dirac.Resources.Computing.ComputingElement import getComputingElement
from dirac.WorkloadManagementSystem.Agent.JobAgent import JobAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import PayloadDescription
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_KILLED,
    EXIT_REPORTS_UNDELIVERED,
    PENDING_REPORTS_FILE,
)
from dirac.WorkloadManagementSystem.JobWrapper.Watchdog import JOB_EXCEEDED_CPU_LIMIT
from dirac.WorkloadManagementSystem.Logic.JobState import RESCHEDULE_LIMIT_MINOR
from dirac.WorkloadManagementSystem.Logic.JobSubmission import scheduleJobs

from .conftest import freePort

pytestmark = pytest.mark.timeout(300)

SITE = "DIRAC.Test.local"
SECTION = "/Systems/WorkloadManagement/JobWrapper"
FAST_OPTIONS = {"PollingTime": "0.2", "HeartBeatInterval": "0.5", "KillGracePeriod": "2", "MinDiskSpace": "0",
                "ReportRetryTime": "5", "ReportRetryDelay": "0.2"}
SCRIPT = """#!/bin/sh
echo "hello from job $JOBID: $1"
echo "computed" > result.txt
python3 -c "
import time
end = time.process_time() + 1.5
while time.process_time() < end:
    pass
"
echo "a warning" >&2
exit ${2:-0}
"""


@pytest.fixture
def wms(grid):  # noqa: ANN001, ANN201
    """The grid with a pilot proxy."""
    if "pilot" not in grid.proxies:
        grid.makeProxy("pilot", "/O=DIRAC-Seed/OU=dirac/CN=admin", "dirac_pilot")
    return grid


def ok(result: dict):  # noqa: ANN201
    assert result["OK"], result.get("Message")
    return result["Value"]


def userAPI(grid) -> Dirac:  # noqa: ANN001
    return Dirac(proxyLocation=str(grid.proxies["user"]), useCertificates=False)


def monitoring(grid, method: str, *args):  # noqa: ANN001, ANN201
    return ok(getattr(grid.client("WorkloadManagement/JobMonitoring", "user"), method)(*args))


def sandboxJob(tmp_path: Path, arguments: str = "world") -> Job:
    """A job running run.sh shipped in its input sandbox, bringing result.txt back (its exit code is $2)."""
    script = tmp_path / "submit" / "run.sh"
    script.parent.mkdir(exist_ok=True)
    script.write_text(SCRIPT)
    job = Job()
    job.setName("wrapper-test")
    job.setExecutable("run.sh", arguments=arguments)
    job.setInputSandbox([str(script)])
    job.setOutputSandbox(["result.txt"])
    return job


def submitAndMatch(grid, job: Job) -> dict:  # noqa: ANN001
    """Submit as 'user', queue the job, and match it for the pilot: the Matcher's answer."""
    jobID = ok(userAPI(grid).submitJob(job))
    # what DIRAC's JobSanity optimizer does: the job's SB: input sandboxes become readable by its pilot
    jdl = PayloadDescription.fromJDL(monitoring(grid, "getJobJDL", jobID, False))
    references = [entry for entry in jdl.inputSandbox if entry.startswith("SB:")]
    if references:
        sandboxes = SandboxStoreClient(proxyLocation=str(grid.proxies["user"]), useCertificates=False)
        ok(sandboxes.assignSandboxesToJob(jobID, references, "Input"))
    scheduleJobs(JobDB(), JobLoggingDB(), TaskQueueDB(), [jobID])
    matcher = grid.client("WorkloadManagement/Matcher", "pilot")
    for _ in range(200):
        match = ok(matcher.requestJob({"Site": SITE, "CPUTime": 100000, "GridCE": "ce.test",
                                       "PilotReference": "inprocess://node/test"}))
        if match["JobID"] == jobID:
            return match
    raise AssertionError(f"job {jobID} was never matched")


def startWrapper(grid, match: dict, workDir: Path, options: dict[str, str] | None = None,  # noqa: ANN001
                 proxy: str = "pilot", **slot: object) -> subprocess.Popen:
    """Write job.json as the JobAgent does and start dirac-jobwrapper in workDir with the pilot's credentials
    (or those of ``proxy``)."""
    workDir.mkdir(parents=True)
    description = {"JobID": match["JobID"], "JDL": match["JDL"], "Owner": match["Owner"],
                   "OwnerGroup": match["OwnerGroup"], "VO": match["VO"], "PilotReference": "inprocess://node/test",
                   "Site": SITE, "GridCE": "ce.test", "CPUNormalizationFactor": 1.0, "WallClockLimit": 0,
                   "MaxRAM": 0, **slot}
    (workDir / "job.json").write_text(json.dumps(description))
    overrides = [arg for name, value in {**FAST_OPTIONS, **(options or {})}.items()
                 for arg in ("-o", f"{name if name.startswith('/') else SECTION + '/' + name}={value}")]
    env = {**os.environ, **grid.instance.environment(), "X509_USER_PROXY": str(grid.proxies[proxy])}
    with open(workDir / "wrapper.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "dirac.WorkloadManagementSystem.scripts.dirac_jobwrapper",
                                 "--job", str(workDir / "job.json"), *overrides],
                                cwd=workDir, env=env, stdout=log, stderr=subprocess.STDOUT)


def runWrapper(grid, match: dict, workDir: Path, options: dict[str, str] | None = None,  # noqa: ANN001
               proxy: str = "pilot", **slot: object) -> int:
    process = startWrapper(grid, match, workDir, options, proxy, **slot)
    try:
        code = process.wait(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    print((workDir / "wrapper.log").read_text())
    return code


def state(grid, jobID: int) -> tuple[str, str]:  # noqa: ANN001
    attributes = monitoring(grid, "getJobAttributes", jobID)
    return attributes["Status"], attributes["MinorStatus"]


def trail(grid, jobID: int) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(status, minor) for status, minor, _, _, _ in monitoring(grid, "getJobLoggingInfo", jobID)]


def parameters(grid, jobID: int) -> dict:  # noqa: ANN001
    return monitoring(grid, "getJobParameters", [jobID]).get(str(jobID), {})


def test_job_with_a_sandbox_script_runs_to_done_with_its_trail_heartbeats_and_output_sandbox(wms, tmp_path) -> None:
    match = submitAndMatch(wms, sandboxJob(tmp_path))
    jobID = match["JobID"]
    assert runWrapper(wms, match, tmp_path / "node") == EXIT_DONE

    assert state(wms, jobID) == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
    steps = trail(wms, jobID)
    expected = [(JobStatus.RUNNING, JobMinorStatus.JOB_INITIALIZATION),
                (JobStatus.RUNNING, JobMinorStatus.DOWNLOADING_INPUT_SANDBOX),
                (JobStatus.RUNNING, JobMinorStatus.APPLICATION),
                (JobStatus.COMPLETING, JobMinorStatus.APP_SUCCESS),
                (JobStatus.COMPLETING, JobMinorStatus.UPLOADING_OUTPUT_SANDBOX),
                (JobStatus.COMPLETING, JobMinorStatus.OUTPUT_SANDBOX_UPLOADED),
                (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)]
    assert [step for step in steps if step in expected] == expected
    assert steps[-1] == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)

    heartBeats = monitoring(wms, "getJobHeartBeatData", jobID)
    names = {name for name, _, _ in heartBeats}
    assert {"CPUConsumed", "WallClockTime", "MemoryUsed", "LoadAverage"} <= names
    assert max(float(value) for name, value, _ in heartBeats if name == "CPUConsumed") > 0.5
    assert all(float(value) > 0 for name, value, _ in heartBeats if name == "MemoryUsed")

    reported = parameters(wms, jobID)
    assert reported["ApplicationExitCode"] == "0"
    assert reported["Pilot_Reference"] == "inprocess://node/test"
    assert reported["HostName"] and float(reported["TotalCPUTime(s)"]) >= 1.5
    assert f"hello from job {jobID}: world" in reported["StandardOutput"]

    download = tmp_path / "download"
    ok(userAPI(wms).getOutputSandbox(jobID, outputDir=str(download)))
    files = {path.name: path.read_text() for path in download.rglob("*") if path.is_file()}
    assert files == {"std.out": f"hello from job {jobID}: world\n", "std.err": "a warning\n",
                     "result.txt": "computed\n"}


def test_payload_exiting_3_ends_failed_with_exit_code_3_recorded(wms, tmp_path) -> None:
    match = submitAndMatch(wms, sandboxJob(tmp_path, arguments="world 3"))
    jobID = match["JobID"]
    assert runWrapper(wms, match, tmp_path / "node") == EXIT_FAILED
    assert state(wms, jobID) == (JobStatus.FAILED, JobMinorStatus.APP_ERRORS)
    assert parameters(wms, jobID)["ApplicationExitCode"] == "3"
    assert (JobStatus.COMPLETING, JobMinorStatus.APP_ERRORS) in trail(wms, jobID)


def test_payload_over_its_cpu_time_ends_failed_with_the_watchdog_reason(wms, tmp_path) -> None:
    job = Job()
    job.setExecutable(f"{sys.executable} -c 'while True: pass'")
    job.setCPUTime(100)  # the smallest CPUTime a JDL may ask for
    match = submitAndMatch(wms, job)
    jobID = match["JobID"]
    start = time.monotonic()
    # 100 HS06 s on a node of power 100 is 1 s of local CPU, with no margin
    code = runWrapper(wms, match, tmp_path / "node", {"JobCPULimitMargin": "0"}, CPUNormalizationFactor=100.0)
    assert code == EXIT_FAILED
    assert time.monotonic() - start < 60
    assert state(wms, jobID) == (JobStatus.FAILED, JOB_EXCEEDED_CPU_LIMIT)
    reported = parameters(wms, jobID)
    assert reported["ApplicationError"] == JOB_EXCEEDED_CPU_LIMIT
    assert reported["ApplicationExitCode"] == str(128 + signal.SIGTERM)


def test_job_killed_by_its_owner_stops_and_stays_killed(wms, tmp_path) -> None:
    job = Job()
    job.setExecutable("/bin/sleep 120")
    match = submitAndMatch(wms, job)
    jobID = match["JobID"]
    process = startWrapper(wms, match, tmp_path / "node")
    try:
        deadline = time.monotonic() + 60
        while state(wms, jobID)[1] != JobMinorStatus.APPLICATION:
            assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "node/wrapper.log").read_text()
            time.sleep(0.2)
        ok(userAPI(wms).killJob(jobID))
        assert process.wait(timeout=60) == EXIT_KILLED
    finally:
        if process.poll() is None:
            process.kill()
    assert state(wms, jobID)[0] == JobStatus.KILLED
    steps = trail(wms, jobID)
    killedAt = [status for status, _ in steps].index(JobStatus.KILLED)
    assert all(status == JobStatus.KILLED for status, _ in steps[killedAt:])


def test_reports_that_cannot_reach_the_server_are_left_in_a_file_that_can_be_replayed(wms, tmp_path) -> None:
    job = Job()
    job.setExecutable("/bin/echo done")
    match = submitAndMatch(wms, job)
    jobID = match["JobID"]
    closed = "https://127.0.0.1:9/WorkloadManagement/JobStateUpdate"  # the discard port: nothing listens
    # the ReqManager out of reach too: else the reports become a ForwardDISET request (test_RMS_JobFailover.py)
    code = runWrapper(wms, match, tmp_path / "node", {"/Systems/WorkloadManagement/URLs/JobStateUpdate": closed,
                                                      "/Systems/RequestManagement/URLs/ReqManager": closed,
                                                      "ReportRetryTime": "1"})
    assert code == EXIT_REPORTS_UNDELIVERED
    assert state(wms, jobID)[0] == JobStatus.MATCHED
    pending = json.loads((tmp_path / "node" / PENDING_REPORTS_FILE).read_text())
    assert pending["JobID"] == jobID and not pending["Rejected"]

    jobState = wms.client("WorkloadManagement/JobStateUpdate", "pilot")
    ok(jobState.setJobStatusBulk(jobID, pending["StatusBulk"], False))
    ok(jobState.setJobParameters(jobID, pending["Parameters"]))
    assert state(wms, jobID) == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
    assert trail(wms, jobID)[-1] == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
    assert parameters(wms, jobID)["ApplicationExitCode"] == "0"


def sessionMembers(session: int) -> list[int]:
    """Live processes of a session (the payload's session is its leader's PID)."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session and \
                    "\nState:\tZ" not in (entry / "status").read_text():
                members.append(int(entry.name))
        except OSError:
            continue
    return members


def test_wrapper_stopped_by_sigterm_stops_its_payload_and_reschedules_the_job_saying_why(wms, tmp_path) -> None:
    job = Job()
    job.setExecutable("/bin/sleep 120")
    match = submitAndMatch(wms, job)
    jobID = match["JobID"]
    workDir = tmp_path / "node"
    process = startWrapper(wms, match, workDir)
    try:
        deadline = time.monotonic() + 60
        while "PayloadPID" not in parameters(wms, jobID):
            assert time.monotonic() < deadline and process.poll() is None, (workDir / "wrapper.log").read_text()
            time.sleep(0.2)
        session = int(parameters(wms, jobID)["PayloadPID"])
        assert sessionMembers(session)
        process.send_signal(signal.SIGTERM)  # what the inner CE sends when the pilot is told to stop
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    assert sessionMembers(session) == []
    # stopped from outside DIRAC, not by a fault of its own: Failed with the reason, then rescheduled
    assert state(wms, jobID) == (JobStatus.RECEIVED, JobMinorStatus.RESCHEDULED)
    assert monitoring(wms, "getJobAttributes", jobID)["RescheduleCounter"] in (1, "1")
    history = monitoring(wms, "getJobLoggingInfo", jobID)
    failed = next(row for row in history if row[0] == JobStatus.FAILED)
    assert failed[1] == JobMinorStatus.RECEIVED_KILL_SIGNAL and "Stopped by SIGTERM from outside DIRAC" in failed[2]
    assert [row[0] for row in history][-3:] == [JobStatus.FAILED, JobStatus.RESCHEDULED, JobStatus.RECEIVED]
    assert not (workDir / PENDING_REPORTS_FILE).exists()


def test_a_reschedule_the_wrapper_could_not_ask_for_is_done_by_the_jobagent_after_its_pending_reports(
        wms, tmp_path) -> None:
    job = Job()
    job.setExecutable("/bin/sleep 120")
    match = submitAndMatch(wms, job)
    jobID = match["JobID"]
    workDir = tmp_path / "slot" / str(jobID)
    # the JobManager cannot be reached from the node (JobStateUpdate can)
    nowhere = {"/Systems/WorkloadManagement/URLs/JobManager": f"https://127.0.0.1:{freePort()}/WorkloadManagement/"
                                                                "JobManager", "ReportRetryTime": "2"}
    process = startWrapper(wms, match, workDir, nowhere)
    try:
        deadline = time.monotonic() + 60
        while "PayloadPID" not in parameters(wms, jobID):
            assert time.monotonic() < deadline and process.poll() is None, (workDir / "wrapper.log").read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    assert state(wms, jobID) == (JobStatus.FAILED, JobMinorStatus.RECEIVED_KILL_SIGNAL)
    assert json.loads((workDir / PENDING_REPORTS_FILE).read_text())["Reschedule"].startswith("Stopped by SIGTERM")
    agent = JobAgent(jobReport=wms.client("WorkloadManagement/JobStateUpdate", "pilot"),
                     jobMonitoring=wms.client("WorkloadManagement/JobMonitoring", "pilot"),
                     jobManager=wms.client("WorkloadManagement/JobManager", "pilot"))
    gConfig.data.setLocalOption("/LocalSite/WorkingDirectory", str(workDir.parent))
    try:
        agent.running["inprocess://node/test"] = jobID
        agent._afterWrapper("inprocess://node/test", 128 + signal.SIGTERM)  # what it does when a wrapper ended badly
    finally:
        gConfig.data.setLocalOption("/LocalSite/WorkingDirectory", "")
    assert state(wms, jobID) == (JobStatus.RECEIVED, JobMinorStatus.RESCHEDULED)
    assert not (workDir / PENDING_REPORTS_FILE).exists()


# -- as the payload of the JobAgent's inner CEs -------------------------------------------------------------

def wrapperScript(grid, match: dict, workDir: Path) -> str:  # noqa: ANN001
    """job.json and the script an inner CE runs, as the JobAgent writes them."""
    workDir.mkdir(parents=True)
    (workDir / "job.json").write_text(json.dumps({
        "JobID": match["JobID"], "JDL": match["JDL"], "Owner": match["Owner"], "OwnerGroup": match["OwnerGroup"],
        "VO": match["VO"], "PilotReference": "pool://node/test", "Site": SITE, "GridCE": "ce.test",
        "CPUNormalizationFactor": 1.0, "WallClockLimit": 0, "MaxRAM": 0}))
    overrides = " ".join(f"-o {SECTION}/{name}={value}" for name, value in FAST_OPTIONS.items())
    script = workDir / "run-jobwrapper.sh"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dirac.WorkloadManagementSystem.scripts.dirac_jobwrapper'
                      f" --job job.json {overrides}\n")
    script.chmod(0o755)
    return str(script)


def test_wrapper_run_by_the_inprocess_ce_with_the_pilot_proxy_ends_done(wms, tmp_path) -> None:
    job = sandboxJob(tmp_path)
    job.setOutputSandbox(["result.txt", "*", ".*"])
    match = submitAndMatch(wms, job)
    jobID = match["JobID"]
    workDir = tmp_path / "slot" / str(jobID)
    ce = getComputingElement("InProcess", "inprocess.test", {"KillGracePeriod": "10"})
    result = ce.submitJob(wrapperScript(wms, match, workDir), str(wms.proxies["pilot"]),
                          workingDirectory=str(workDir),
                          environment={"DIRACSYSCONFIG": str(wms.instance.clientCFG)})
    assert ok(result) and result["ExitCode"] == EXIT_DONE, list(workDir.glob("payload-*"))
    assert state(wms, jobID) == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
    download = tmp_path / "download"
    sandboxes = SandboxStoreClient(proxyLocation=str(wms.proxies["user"]), useCertificates=False)
    names = ok(sandboxes.downloadSandboxForJob(jobID, "Output", download))
    assert {"std.out", "std.err", "result.txt", "run.sh"} <= set(names)
    assert not [name for name in names if name.startswith(".proxy") or name == "job.json"], names


def test_pool_ce_killing_the_wrapper_stops_a_payload_that_ignores_sigterm_and_fails_the_job_past_max_rescheduling(
        wms, tmp_path) -> None:
    script = tmp_path / "submit" / "stubborn.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\ntrap '' TERM\nsleep 120 &\nwait\nwait\n")
    job = Job()
    job.setExecutable("stubborn.sh")
    job.setInputSandbox([str(script)])
    match = submitAndMatch(wms, job)
    jobID = match["JobID"]
    workDir = tmp_path / "slot" / str(jobID)
    ce = getComputingElement("Pool", "pool.test", {"NumberOfProcessors": "2", "KillGracePeriod": "10"})
    [reference] = ok(ce.submitJob(wrapperScript(wms, match, workDir), str(wms.proxies["pilot"]),
                                  workingDirectory=str(workDir),
                                  environment={"DIRACSYSCONFIG": str(wms.instance.clientCFG)}))
    deadline = time.monotonic() + 60
    while "PayloadPID" not in parameters(wms, jobID):
        assert time.monotonic() < deadline, list(workDir.glob("payload-*"))
        time.sleep(0.2)
    session = int(parameters(wms, jobID)["PayloadPID"])
    jobDB = JobDB()
    jobDB.setJobAttributes(jobID, {"RescheduleCounter": jobDB.maxRescheduling})  # rescheduled as often as allowed
    start = time.monotonic()
    ok(ce.killJob(reference))  # SIGTERM to the wrapper's process group, SIGKILL 10 s later
    exitCodes = ok(ce.collectFinishedJobs(timeout=30))
    assert exitCodes == {reference: 128 + signal.SIGTERM}, (workDir / next(workDir.glob("payload-*.err")).name
                                                             ).read_text()
    assert time.monotonic() - start < 10, "the wrapper ended before the CE's SIGKILL"
    assert sessionMembers(session) == []
    assert state(wms, jobID) == (JobStatus.FAILED, RESCHEDULE_LIMIT_MINOR)
    assert (JobStatus.FAILED, JobMinorStatus.RECEIVED_KILL_SIGNAL) in trail(wms, jobID)
