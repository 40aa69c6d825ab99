"""Data-aware jobs against the real services over HTTPS: the File Catalog, the one-box Storage Elements
(OneBox-SE, OneBox-Failover) and the WMS.

Bob stores an input file on OneBox-SE and submits a job naming it as InputData; the real optimizer chain
places the job at the one-box site (the site of OneBox-SE); the Matcher gives it to a pilot there; and
``dirac-jobwrapper`` runs it with bob's proxy (what the JobAgent will do once pilots fetch their jobs'
owners' proxies), downloading the input, running the payload and storing its OutputData. SEs that fail
are configured for the wrapper only: one on a port where nothing listens, one whose WriteAccess is InActive.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Config import gConfig
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.API.Job import Job
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import EXIT_DONE, EXIT_FAILED
from dirac.WorkloadManagementSystem.Logic.JobState import setJobsStatus
from dirac.WorkloadManagementSystem.Logic.Optimization import OptimizerEnvironment, buildChain, optimizeJobs

from .conftest import freePort
from .test_WMS_JobWrapper import ok, runWrapper, wms  # noqa: F401

pytestmark = pytest.mark.timeout(300)

ONE_BOX_SITE = "DIRAC.OneBox.local"
BOB_HOME = "/dirac/user/b/bob"
READER = """#!/bin/sh
echo "read: $(cat input.txt) + $(cat lib.txt)"
tr a-z A-Z < input.txt > result.dat
"""
#: reads each input file through the URL input_data.txt gives it, as a payload's own tools would: the proxy and
#: the CAs are those of its environment
PROTOCOL_READER = """#!/bin/sh
set -e
test -r "$X509_USER_PROXY" && test -d "$X509_CERT_DIR"
while read -r lfn url; do
  case "$url" in
    file://*) cat "${url#file://}" ;;
    root://*) xrdcp --nopbar "$url" - ;;
    https://*) curl -sSf --capath "$X509_CERT_DIR" --cert "$X509_USER_PROXY" "$url" ;;
    *) cat "$url" ;;
  esac | sed "s|^|$url: |"
done < "$DIRAC_INPUT_DATA_LIST"
"""


def asBob(grid) -> dict:  # noqa: ANN001
    return {"proxyLocation": str(grid.proxies["bob"]), "useCertificates": False}


def bobSees(grid, method: str, *args):  # noqa: ANN001, ANN201
    return ok(getattr(grid.client("WorkloadManagement/JobMonitoring", "bob"), method)(*args))


def state(grid, jobID: int) -> tuple[str, str]:  # noqa: ANN001
    attributes = bobSees(grid, "getJobAttributes", jobID)
    return attributes["Status"], attributes["MinorStatus"]


def trail(grid, jobID: int) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(status, minor) for status, minor, _, _, _ in bobSees(grid, "getJobLoggingInfo", jobID)]


def parameters(grid, jobID: int) -> dict:  # noqa: ANN001
    return bobSees(grid, "getJobParameters", [jobID]).get(str(jobID), {})


def failingSEs(port: int) -> dict[str, str]:
    """Wrapper options: Closed-SE (nothing listens on its port) and Inactive-SE (OneBox-SE's area, no writes)."""
    options = {}
    for se, sePort, extra in (("Closed-SE", freePort(), {}), ("Inactive-SE", port, {"WriteAccess": "InActive"})):
        section = f"/Resources/StorageElements/{se}"
        options.update({f"{section}/DIP/Protocol": "https", f"{section}/DIP/Host": "127.0.0.1",
                        f"{section}/DIP/Port": str(sePort), f"{section}/DIP/Path": "/DataManagement/StorageElement",
                        f"{section}/DIP/SpaceToken": "Disk", **{f"{section}/{k}": v for k, v in extra.items()}})
    return options


@pytest.fixture
def area(wms, tmp_path: Path) -> str:  # noqa: ANN001, F811
    """Bob's directory for one test, holding input.txt and lib.txt on OneBox-SE."""
    path = f"{BOB_HOME}/jobdata-{secrets.token_hex(4)}"
    dm = DataManager(**asBob(wms))
    for name, text in (("input.txt", "some input\n"), ("lib.txt", "a library\n")):
        local = tmp_path / name
        local.write_text(text)
        put = dm.putAndRegister(f"{path}/{name}", local, "OneBox-SE")
        assert f"{path}/{name}" in put["Value"]["Successful"], put
    return path


def submitOptimizeAndMatch(grid, tmp_path: Path, area: str, reader: str = READER,  # noqa: ANN001
                           inputData: list[str] | None = None, policy: str = "", **output: object) -> dict:
    """Bob's job reading input.txt (InputData) and lib.txt (an LFN: input sandbox entry), or ``inputData`` by
    ``policy`` with the script ``reader``, through the real optimizers (JobSanity, InputData with the File
    Catalog, JobScheduling), matched by a pilot of its site."""
    script = tmp_path / "submit" / "read.sh"
    script.parent.mkdir()
    script.write_text(reader)
    job = Job()
    job.setExecutable("read.sh")
    job.setInputSandbox([str(script)] + ([f"LFN:{area}/lib.txt"] if inputData is None else []))
    job.setInputData(inputData or [f"{area}/input.txt"])
    if policy:
        assert job.setInputDataPolicy(policy)["OK"]
    if output:
        job.setOutputData(**output)  # type: ignore[arg-type]
    jobID = ok(Dirac(**asBob(grid)).submitJob(job))
    env = OptimizerEnvironment(JobDB(), JobLoggingDB(), TaskQueueDB(), SandboxMetadataDB())
    setJobsStatus(env.jobDB, env.loggingDB, [jobID], JobStatus.CHECKING, "JobSanity", source="Optimizers",
                  expectedStatus=[JobStatus.RECEIVED])
    optimizeJobs(env, buildChain(["JobSanity", "InputData", "JobScheduling"], env), [jobID])
    attributes = bobSees(grid, "getJobAttributes", jobID)
    assert (attributes["Status"], attributes["Site"]) == (JobStatus.WAITING, ONE_BOX_SITE), attributes
    matcher = grid.client("WorkloadManagement/Matcher", "pilot")
    for _ in range(200):
        match = ok(matcher.requestJob({"Site": ONE_BOX_SITE, "CPUTime": 100000, "GridCE": "ce.onebox",
                                       "PilotReference": "inprocess://node/data"}))
        if match["JobID"] == jobID:
            return match
    raise AssertionError(f"job {jobID} was never matched at {ONE_BOX_SITE}")


def runAsBob(grid, match: dict, tmp_path: Path, options: dict[str, str] | None = None) -> int:  # noqa: ANN001
    return runWrapper(grid, match, tmp_path / "node", options, proxy="bob", Site=ONE_BOX_SITE)


def test_job_reads_its_input_data_at_the_site_holding_it_and_stores_its_output_data(wms, area, tmp_path) -> None:  # noqa: F811
    match = submitOptimizeAndMatch(wms, tmp_path, area, lfns=["result.dat"], outputSE="OneBox-SE",
                                   outputPath=area.removeprefix(BOB_HOME) + "/out")
    jobID = match["JobID"]
    assert runAsBob(wms, match, tmp_path) == EXIT_DONE
    assert state(wms, jobID) == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
    steps = trail(wms, jobID)
    expected = [(JobStatus.RUNNING, JobMinorStatus.DOWNLOADING_INPUT_SANDBOX_LFN),
                (JobStatus.RUNNING, JobMinorStatus.INPUT_DATA_RESOLUTION),
                (JobStatus.RUNNING, JobMinorStatus.APPLICATION),
                (JobStatus.COMPLETING, JobMinorStatus.UPLOADING_OUTPUT_DATA),
                (JobStatus.COMPLETING, JobMinorStatus.OUTPUT_DATA_UPLOADED),
                (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)]
    assert [step for step in steps if step in expected] == expected
    reported = parameters(wms, jobID)
    assert "read: some input + a library" in reported["StandardOutput"]
    assert "(1 with a replica at the site)" in reported["DownloadInputData"]

    lfn = f"{area}/out/result.dat"  # OutputPath below bob's home
    assert reported["UploadedOutputData"] == lfn and reported["OutputDataSEs"] == f"{lfn}: OneBox-SE"
    dm = DataManager(**asBob(wms))
    assert set(ok(dm.getReplicas(lfn))["Successful"][lfn]) == {"OneBox-SE"}
    (tmp_path / "check").mkdir()
    assert lfn in ok(dm.getFile(lfn, tmp_path / "check"))["Successful"]
    assert (tmp_path / "check" / "result.dat").read_text() == "SOME INPUT\n"


def test_output_se_failing_sends_the_output_to_the_failover_se_registered_there(wms, area, tmp_path) -> None:  # noqa: F811
    match = submitOptimizeAndMatch(wms, tmp_path, area, lfns=["result.dat"], outputSE=["Closed-SE", "Inactive-SE"])
    jobID = match["JobID"]
    assert runAsBob(wms, match, tmp_path, failingSEs(wms.port)) == EXIT_DONE
    # a request is to move the file to Closed-SE later (test_RMS_JobFailover.py): the job waits for it, as in DIRAC
    assert state(wms, jobID) == (JobStatus.COMPLETED, JobMinorStatus.PENDING_REQUESTS)
    lfn = f"{BOB_HOME}/{jobID // 1000}/{jobID}/result.dat"  # DIRAC's default LFN of a user job's output
    assert parameters(wms, jobID)["OutputDataSEs"] == f"{lfn}: OneBox-Failover (failover)"
    replicas = ok(DataManager(**asBob(wms)).getReplicas(lfn))["Successful"][lfn]
    assert set(replicas) == {"OneBox-Failover"}
    stored = wms.instance.root / "storage"
    assert (stored / "Failover" / lfn.lstrip("/")).read_text() == "SOME INPUT\n"
    assert not (stored / "Disk" / lfn.lstrip("/")).exists()
    log = (tmp_path / "node" / "wrapper.log").read_text()
    assert f"{lfn} not stored on Closed-SE: upload of {lfn}: Closed-SE is not available" in log
    assert f"{lfn} not stored on Inactive-SE: Host is down ( 112 : Inactive-SE: WriteAccess is InActive)" in log


def test_output_stored_nowhere_fails_the_job_and_leaves_nothing_registered(wms, area, tmp_path) -> None:  # noqa: F811
    other = "/lhcb/user/b/bob/result.dat"  # not under bob's VO root: refused by the catalog
    match = submitOptimizeAndMatch(wms, tmp_path, area, lfns=["result.dat", f"LFN:{other}"], outputSE="Closed-SE")
    jobID = match["JobID"]
    options = {**failingSEs(wms.port), "/Resources/StorageElementGroups/Tier1-Failover": "Inactive-SE"}
    assert runAsBob(wms, match, tmp_path, options) == EXIT_FAILED
    assert state(wms, jobID) == (JobStatus.FAILED, JobMinorStatus.UPLOADING_OUTPUT_DATA)
    reported = parameters(wms, jobID)
    lfn = f"{BOB_HOME}/{jobID // 1000}/{jobID}/result.dat"
    message = reported["Error Message"]
    assert message.startswith(f"Failed to upload OutputData: {lfn}: Closed-SE: upload of {lfn}: Closed-SE is not "
                              f"available")
    assert "Inactive-SE: WriteAccess is InActive" in message and "Invalid LFN: not under the VO root /dirac" in message
    assert reported["OutputData"] == f"MissingFiles: result.dat, LFN:{other}"
    exists = ok(FileCatalogClient(**asBob(wms)).exists([lfn, other]))
    assert exists["Successful"].get(lfn) is False and other not in exists["Successful"].get(other, "")
    assert not list((wms.instance.root / "storage").glob(f"*/{BOB_HOME.lstrip('/')}/{jobID // 1000}/{jobID}/*"))
    assert (tmp_path / "node" / "result.dat").exists(), "the output stays on the node"


def test_missing_input_data_fails_the_job_before_it_runs_with_the_missing_lfns(wms, area, tmp_path) -> None:  # noqa: F811
    match = submitOptimizeAndMatch(wms, tmp_path, area)
    jobID = match["JobID"]
    DataManager(**asBob(wms)).removeFile(f"{area}/input.txt")  # lost after the job was placed
    assert runAsBob(wms, match, tmp_path) == EXIT_FAILED
    assert state(wms, jobID) == (JobStatus.FAILED, JobMinorStatus.INPUT_NOT_AVAILABLE)
    reported = parameters(wms, jobID)
    assert reported["MissingLFNs"] == f"LFN:{area}/input.txt Problem: No such file or directory"
    assert (JobStatus.RUNNING, JobMinorStatus.APPLICATION) not in trail(wms, jobID)
    assert not (tmp_path / "node" / "std.out").exists()


def readByProtocol(grid, tmp_path: Path, area: str, se: str, seOptions: dict[str, str],  # noqa: ANN001
                   text: str) -> tuple[str, dict]:
    """Bob's job with the Protocol policy and one InputData file holding ``text`` on ``se``, which the one-box site
    lists here (``seOptions``: the SE's plug-in section for the wrapper), placed by the real optimizers and run by
    dirac-jobwrapper with bob's proxy, reading the file with PROTOCOL_READER: (its LFN, the job's parameters)."""
    site = {f"/Resources/Sites/DIRAC/{ONE_BOX_SITE}/SE": f"OneBox-SE, OneBox-Failover, {se}"}
    gConfig.initialize(options=site)  # the optimizers of this process place the job by it
    lfn = f"{area}/events.txt"
    (tmp_path / "events.txt").write_text(text)
    assert lfn in ok(DataManager(**asBob(grid)).putAndRegister(lfn, tmp_path / "events.txt", se))["Successful"]
    match = submitOptimizeAndMatch(grid, tmp_path, area, PROTOCOL_READER, [lfn], "Protocol")
    assert runAsBob(grid, match, tmp_path, {**site, **seOptions}) == EXIT_DONE
    reported = parameters(grid, match["JobID"])
    assert "DownloadInputData" not in reported and not (tmp_path / "node" / "events.txt").exists(), "downloaded"
    return lfn, reported


def localSE(tmp_path: Path) -> dict[str, str]:
    """Local-SE, a File SE in a directory of this test, at the one-box site with the one-box SEs: its options."""
    root = tmp_path / "local-se"
    root.mkdir()
    return {"/Resources/StorageElements/Local-SE/File/Path": str(root),
            f"/Resources/Sites/DIRAC/{ONE_BOX_SITE}/SE": "OneBox-SE, OneBox-Failover, Local-SE"}


@pytest.mark.parametrize("policy", ["Protocol, Download", "Protocol"])
def test_protocol_policy_reads_a_file_se_in_place_and_a_dip_file_is_downloaded_or_fails_the_job(
        wms, area, tmp_path, policy) -> None:  # noqa: F811
    """input.txt on the File SE of the site is read through its file:// TURL; lib.txt is on OneBox-SE only, whose
    DIP plug-in gives no URL a payload can read: downloaded after it ("Protocol, Download"), or the job fails."""
    options = localSE(tmp_path)
    gConfig.initialize(options=options)  # the optimizers of this process place the job by it
    (tmp_path / "input.txt").write_text("read in place\n")
    local = f"{area}/local/input.txt"
    assert local in ok(DataManager(**asBob(wms)).putAndRegister(local, tmp_path / "input.txt", "Local-SE"))[
        "Successful"]
    match = submitOptimizeAndMatch(wms, tmp_path, area, PROTOCOL_READER, [local, f"{area}/lib.txt"], policy)
    jobID = match["JobID"]
    node = tmp_path / "node"
    code = runAsBob(wms, match, tmp_path, options)
    reported = parameters(wms, jobID)
    turl = f"file://{tmp_path}/local-se{local}"
    assert reported["InputDataByProtocol"] == f"Resolved 1 LFN(s) by protocol:\n{local}: Local-SE (file)"
    reason = "OneBox-SE gives no transport URL in file, root, https (it is read with https (DIP))"
    assert reason in reported["ProblematicTURLs"]
    assert not (node / "input.txt").exists(), "read in place, not downloaded"
    if policy == "Protocol":
        assert code == EXIT_FAILED
        assert state(wms, jobID) == (JobStatus.FAILED, JobMinorStatus.INPUT_DATA_RESOLUTION)
        assert reason in reported["Error Message"] and f"{area}/lib.txt" in reported["Error Message"]
        assert not (node / "lib.txt").exists() and (JobStatus.RUNNING, JobMinorStatus.APPLICATION) not in \
            trail(wms, jobID)
        return
    assert code == EXIT_DONE
    assert state(wms, jobID) == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
    assert (node / "lib.txt").read_text() == "a library\n"
    assert "Successfully downloaded 1 LFN(s) (1 with a replica at the site)" in reported["DownloadInputData"]
    assert reported["StandardOutput"].splitlines() == [f"{turl}: read in place", f"{node}/lib.txt: a library"]
