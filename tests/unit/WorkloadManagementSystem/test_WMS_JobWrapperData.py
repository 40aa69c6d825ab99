"""The JobWrapper's data steps with a real DataManager: File Storage Elements in temporary directories and
a real File Catalog (logic and SQLite database, in process, as alice). The JobStateUpdate and SandboxStore
services are stood for by the recording clients of test_WMS_JobWrapper; the round trip through the real
services is in tests/integration/test_WMS_JobWrapperData.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities import DEncode
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.Core.Utilities.ReturnValues import S_OK
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
from dirac.DataManagementSystem.Logic.FileCatalog import FileCatalog
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.Client.RequestValidator import validateRequest
from dirac.RequestManagementSystem.DB.RequestDB import RequestDB
from dirac.RequestManagementSystem.Logic.OperationHandlers import knownTypes
from dirac.Resources.Storage.StorageElement import StorageElement
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import JobArguments
from dirac.WorkloadManagementSystem.JobWrapper.JobData import JobData, JobDataError
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_REPORTS_UNDELIVERED,
    PENDING_REPORTS_FILE,
    JobWrapper,
)
from tests.unit.DataManagementSystem.test_DMS_DataManager import ALICE, InProcessCatalog

from .test_WMS_JobWrapper import FAST, JOB_ID, RecordingJobStateClient, RecordingSandboxClient, jdl

pytestmark = pytest.mark.timeout(120)

HOME = "/dirac/user/a/alice"
SITE = "DIRAC.Test.local"
READER = """#!/bin/sh
cat in.dat lib.txt > out.dat
echo "extra" > extra.dat
exit ${EXIT_WITH:-0}
"""


@dataclass
class DataGrid:
    """A catalog, SE-A and SE-B (SE-B at the job's site), SE-C (WriteAccess InActive), and the SE reads made."""

    fc: FileCatalog
    dm: DataManager
    roots: dict[str, Path]
    reads: list[str]

    def put(self, lfn: str, content: bytes, tmp: Path, *ses: str) -> None:
        local = tmp / "upload.tmp"
        local.write_bytes(content)
        assert lfn in self.dm.putAndRegister(lfn, local, ses[0])["Value"]["Successful"]
        for se in ses[1:]:
            assert lfn in self.dm.replicateAndRegister(lfn, se)["Value"]["Successful"]

    def replicas(self, lfn: str) -> dict[str, Any]:
        return self.fc.getReplicas(ALICE, [lfn])["Successful"].get(lfn, {})

    def stored(self, se: str, lfn: str) -> Path:
        return self.roots[se] / lfn.lstrip("/")


@pytest.fixture
def data(tmp_path: Path, sqlite_url: str, fileSEs: dict[str, Path], addFileSE: Callable[..., None]) -> DataGrid:
    roots = {**fileSEs, "SE-C": tmp_path / "se-c"}
    roots["SE-C"].mkdir()
    addFileSE("SE-C", roots["SE-C"], WriteAccess="InActive")
    gConfig.initialize(cfgFiles=[], fetchRemote=False, options={
        f"/Resources/Sites/DIRAC/{SITE}/SE": "SE-B",
        "/Resources/StorageElementGroups/SE-USER": "SE-A",
        "/Resources/StorageElementGroups/Tier1-Failover": "SE-B"})
    fc = FileCatalog(FileCatalogDB(sqlite_url), voOwner=lambda vo: ("admin", "dirac_admin"),
                     userGroups=lambda user: ["dirac_user"])
    fc.ensureVORoot("dirac")
    reads: list[str] = []

    class ReadRecordingSE(StorageElement):
        def getFile(self, *args: Any, **kwargs: Any) -> dict:
            reads.append(self.name)
            return super().getFile(*args, **kwargs)

    return DataGrid(fc, DataManager(InProcessCatalog(fc, ALICE), storageElement=ReadRecordingSE), roots, reads)


class InProcessRequests:
    """Stands for the ReqManager (its checks, then a real RequestDB on SQLite in the test's directory)."""

    def __init__(self, url: str):
        self.db = RequestDB(url)

    def putRequest(self, request: Request) -> dict:
        validateRequest(request, knownTypes())
        return S_OK(self.db.putRequest(request))


def runJob(tmp_path: Path, data: DataGrid, script: str = READER, requests: InProcessRequests | None = None,
           jobStateDown: bool = False, **attributes: object) -> tuple[int, RecordingJobStateClient]:
    work = tmp_path / "node"
    work.mkdir()
    jobState = RecordingJobStateClient()
    jobState.down = jobStateDown
    sandbox = RecordingSandboxClient({"SB:SandboxSE|/in/1.tar.bz2": {"run.sh": script}})
    description = {"Executable": "run.sh", "InputSandbox": ["SB:SandboxSE|/in/1.tar.bz2"], **attributes}
    arguments = JobArguments(JobID=JOB_ID, JDL=jdl(**description), Owner="alice", OwnerGroup="dirac_user",
                             VO="dirac", Site=SITE)
    return JobWrapper(arguments, work, FAST, jobState, sandbox, data.dm, requestClient=requests).run(), jobState


def test_input_data_and_sandbox_lfns_are_downloaded_from_the_site_se_and_read_by_the_payload(tmp_path, data) -> None:
    data.put(f"{HOME}/in/in.dat", b"input data\n", tmp_path, "SE-A", "SE-B")
    data.put(f"{HOME}/lib/lib.txt", b"library\n", tmp_path, "SE-A")
    data.reads.clear()
    code, jobState = runJob(tmp_path, data, InputData=[f"{HOME}/in/in.dat"],
                            InputSandbox=["SB:SandboxSE|/in/1.tar.bz2", f"LFN:{HOME}/lib/lib.txt"])
    assert code == EXIT_DONE, jobState.parameters.get("Error Message")
    assert (tmp_path / "node" / "out.dat").read_text() == "input data\nlibrary\n"
    assert data.reads == ["SE-A", "SE-B"], "the sandbox LFN from its only SE, the input data from the site's SE"
    trail = jobState.trail()
    assert trail.index(("", JobMinorStatus.DOWNLOADING_INPUT_SANDBOX_LFN)) < \
        trail.index(("", JobMinorStatus.INPUT_DATA_RESOLUTION)) < trail.index(("", JobMinorStatus.APPLICATION))
    assert "Successfully downloaded 1 LFN(s) (1 with a replica at the site)" in \
        jobState.parameters["DownloadInputData"]


@pytest.mark.parametrize(("lfn", "reason"), [
    (f"{HOME}/never-stored.dat", "No such file"),
    ("relative/other.dat", "Invalid LFN: not an absolute path"),
    (f"{HOME}/../b/bob/other.dat", "Invalid LFN: '..' component"),
])
def test_input_data_that_cannot_be_found_fails_the_job_before_the_payload_runs(tmp_path, data, lfn, reason) -> None:
    data.put(f"{HOME}/in/in.dat", b"input data\n", tmp_path, "SE-A")
    code, jobState = runJob(tmp_path, data, InputData=[f"{HOME}/in/in.dat", lfn])
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.INPUT_NOT_AVAILABLE)
    assert f"LFN:{lfn} Problem: {reason}" in jobState.parameters["MissingLFNs"]
    assert reason in jobState.parameters["Error Message"]
    assert not (tmp_path / "node" / "std.out").exists() and not (tmp_path / "node" / "in.dat").exists()


def test_a_corrupted_replica_is_refused_and_the_next_one_is_read(tmp_path, data) -> None:
    lfn = f"{HOME}/in/in.dat"
    data.put(lfn, b"input data\n", tmp_path, "SE-A", "SE-B")
    data.stored("SE-B", lfn).write_bytes(b"rotten bits\n")
    data.put(f"{HOME}/lib/lib.txt", b"library\n", tmp_path, "SE-A")
    code, jobState = runJob(tmp_path, data, InputData=[lfn], InputSandbox=["SB:SandboxSE|/in/1.tar.bz2",
                                                                            f"LFN:{HOME}/lib/lib.txt"])
    assert code == EXIT_DONE
    assert (tmp_path / "node" / "out.dat").read_text() == "input data\nlibrary\n"


def outputJob(tmp_path: Path, data: DataGrid, requests: InProcessRequests | None = None, jobStateDown: bool = False,
              **attributes: object) -> tuple[int, RecordingJobStateClient]:
    data.put(f"{HOME}/in/in.dat", b"in\n", tmp_path, "SE-A")
    data.put(f"{HOME}/lib/lib.txt", b"lib\n", tmp_path, "SE-A")
    return runJob(tmp_path, data, requests=requests, jobStateDown=jobStateDown, InputData=[f"{HOME}/in/in.dat"],
                  InputSandbox=["SB:SandboxSE|/in/1.tar.bz2", f"LFN:{HOME}/lib/lib.txt"], **attributes)


def test_output_data_goes_to_the_default_lfn_on_the_first_output_se_and_is_registered(tmp_path, data) -> None:
    code, jobState = outputJob(tmp_path, data, OutputData=["out.dat", f"LFN:{HOME}/extras/extra.dat"],
                               OutputSE=["SE-A", "SE-B"])
    assert code == EXIT_DONE, jobState.parameters.get("Error Message")
    lfn = f"{HOME}/1/{JOB_ID}/out.dat"  # DIRAC's default: <home>/<JobID // 1000>/<JobID>/<file>
    assert set(data.replicas(lfn)) == {"SE-A"} and data.stored("SE-A", lfn).read_text() == "in\nlib\n"
    assert set(data.replicas(f"{HOME}/extras/extra.dat")) == {"SE-A"}
    assert jobState.parameters["UploadedOutputData"] == f"{lfn}, {HOME}/extras/extra.dat"
    assert jobState.parameters["OutputDataSEs"] == f"{lfn}: SE-A\n{HOME}/extras/extra.dat: SE-A"
    assert jobState.trail()[-3:] == [("", JobMinorStatus.UPLOADING_OUTPUT_DATA),
                                     ("Completing", JobMinorStatus.OUTPUT_DATA_UPLOADED),
                                     ("Done", JobMinorStatus.EXEC_COMPLETE)]


def test_a_failed_payload_keeps_its_output_data_on_the_node_as_in_dirac(tmp_path, data) -> None:
    code, jobState = outputJob(tmp_path, data, OutputData=["out.dat"], ExecutionEnvironment=["EXIT_WITH=3"])
    assert code == EXIT_FAILED and jobState.trail()[-1] == ("Failed", JobMinorStatus.APP_ERRORS)
    assert (tmp_path / "node" / "out.dat").exists() and not data.replicas(f"{HOME}/1/{JOB_ID}/out.dat")
    assert "UploadedOutputData" not in jobState.parameters


def test_output_se_refusing_writes_sends_the_file_to_the_failover_se_and_a_request_to_move_it(tmp_path, data,
                                                                                              sqlite_url) -> None:
    requests = InProcessRequests(sqlite_url)
    code, jobState = outputJob(tmp_path, data, requests, OutputData=["out.dat"], OutputSE="SE-C",
                               OutputPath="/results")
    assert code == EXIT_DONE, jobState.parameters.get("Error Message")
    lfn = f"{HOME}/results/out.dat"
    assert set(data.replicas(lfn)) == {"SE-B"} and data.stored("SE-B", lfn).read_text() == "in\nlib\n"
    assert jobState.parameters["OutputDataSEs"] == f"{lfn}: SE-B (failover)"
    # DIRAC's failover request: replicate to the OutputSE from the failover SE, then remove the failover replica
    request = requests.db.peekRequest(requests.db.getRequestIDForName(f"job_{JOB_ID}"))
    assert (request.JobID, request.Owner, request.OwnerGroup, request.SourceComponent) == (
        JOB_ID, "alice", "dirac_user", f"Job_{JOB_ID}")
    assert [(op.Type, op.TargetSE, op.SourceSE, [f.LFN for f in op]) for op in request] == [
        ("ReplicateAndRegister", "SE-C", "SE-B", [lfn]), ("RemoveReplica", "SE-B", "", [lfn])]
    assert (request[0][0].Checksum, request[0][0].ChecksumType, request[0][0].Size) == (
        fileAdler32(tmp_path / "node" / "out.dat"), "ADLER32", len("in\nlib\n"))
    assert jobState.trail()[-1] == ("Completed", JobMinorStatus.PENDING_REQUESTS)
    assert jobState.parameters["PendingRequest"] == request.getDigest()["Value"]


def test_reports_the_jobstateupdate_does_not_take_go_first_in_the_request_as_forward_diset(tmp_path, data,
                                                                                           sqlite_url) -> None:
    requests = InProcessRequests(sqlite_url)
    code, jobState = outputJob(tmp_path, data, requests, jobStateDown=True, OutputData=["out.dat"], OutputSE="SE-C")
    assert code == EXIT_DONE and not (tmp_path / "node" / PENDING_REPORTS_FILE).exists()
    assert jobState.records == [], "the JobStateUpdate never answered"
    request = requests.db.peekRequest(requests.db.getRequestIDForName(f"job_{JOB_ID}"))
    assert [op.Type for op in request] == ["ForwardDISET", "ForwardDISET", "ReplicateAndRegister", "RemoveReplica"]
    (service, _), method, (jobID, bulk, force) = DEncode.decode(request[0].Arguments)[0]
    assert (service, method, jobID, force) == ("WorkloadManagement/JobStateUpdate", "setJobStatusBulk", JOB_ID, False)
    records = [bulk[stamp] for stamp in sorted(bulk)]
    assert records[0]["Status"] == "Running" and records[-1]["Status"] == "Completed"
    assert records[-1]["MinorStatus"] == JobMinorStatus.PENDING_REQUESTS
    (_, _), method, (_, parameters) = DEncode.decode(request[1].Arguments)[0]
    assert method == "setJobParameters" and ["OutputDataSEs", f"{HOME}/1/{JOB_ID}/out.dat: SE-B (failover)"] in \
        parameters


def test_without_a_reqmanager_the_failover_request_is_left_for_the_job_agent(tmp_path, data) -> None:
    code, jobState = outputJob(tmp_path, data, OutputData=["out.dat"], OutputSE="SE-C")  # no ReqManager configured
    assert code == EXIT_REPORTS_UNDELIVERED
    assert jobState.trail()[-1] == ("Completed", JobMinorStatus.PENDING_REQUESTS)
    left = json.loads((tmp_path / "node" / PENDING_REPORTS_FILE).read_text())
    assert [op["Type"] for op in json.loads(left["Request"])["Operations"]] == ["ReplicateAndRegister", "RemoveReplica"]
    (tmp_path / "2").mkdir()
    code, jobState = runJob(tmp_path / "2", data, jobStateDown=True)  # reports alone: in the file only, as before
    left = json.loads((tmp_path / "2" / "node" / PENDING_REPORTS_FILE).read_text())
    assert code == EXIT_REPORTS_UNDELIVERED and "Request" not in left and left["StatusBulk"]


def test_output_stored_nowhere_fails_the_job_and_leaves_no_catalog_entry(tmp_path, data) -> None:
    gConfig.initialize(cfgFiles=[], fetchRemote=False, options={"/Resources/StorageElementGroups/Tier1-Failover": ""})
    code, jobState = outputJob(tmp_path, data, OutputData=["out.dat", "not-produced.dat"], OutputSE=["SE-C", "NO-SE"])
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.UPLOADING_OUTPUT_DATA)
    message = jobState.parameters["Error Message"]
    assert message.startswith("Failed to upload OutputData: not-produced.dat: no such file")
    assert "SE-C: " in message and "WriteAccess is InActive" in message and "NO-SE: " in message
    assert jobState.parameters["OutputData"] == "MissingFiles: not-produced.dat, out.dat"
    assert data.fc.exists(ALICE, [f"{HOME}/1/{JOB_ID}/out.dat"])["Successful"] == {f"{HOME}/1/{JOB_ID}/out.dat": False}


@pytest.mark.parametrize(("entry", "problem"), [
    ("LFN:relative/out.dat", "is not an absolute path"),
    (f"LFN:{HOME}/../../x/out.dat", "has an empty, '.' or '..' component"),
    ("../outside.dat", "is outside the working directory"),
])
def test_bad_output_lfns_fail_clearly_before_anything_is_stored(tmp_path, data, entry, problem) -> None:
    (tmp_path / "outside.dat").write_text("x")
    code, jobState = outputJob(tmp_path, data, OutputData=["out.dat", entry], OutputSE="SE-A")
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.UPLOADING_OUTPUT_DATA)
    assert problem in jobState.parameters["Error Message"]
    assert not data.replicas(f"{HOME}/1/{JOB_ID}/out.dat"), "nothing stored when one entry is bad"


def test_output_lfns_follow_dirac_rules_for_output_path_lfn_entries_and_globs(tmp_path) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    for name in ("a.root", "b.root", "log.txt", "sub/c.root"):
        (work / name).write_text(name)
    job = JobData(12345, work, SITE, "alice", "dirac_user", "dirac", dataManager=None, report=None)

    def lfns(entries: list[str], outputPath: str = "") -> list[str]:
        files, missing = job.outputFiles(entries, outputPath)
        return [f.lfn for f in files] + [f"missing:{m}" for m in missing]

    assert lfns(["*.root"]) == [f"{HOME}/12/12345/a.root", f"{HOME}/12/12345/b.root"]
    assert lfns(["log.txt"], "run7/logs") == [f"{HOME}/run7/logs/log.txt"]
    assert lfns(["log.txt"], "/run7/") == [f"{HOME}/run7/log.txt"]
    assert lfns(["log.txt"], "LFN:/dirac/prod/run7") == ["/dirac/prod/run7/log.txt"]
    assert lfns(["sub/c.root", "LFN:/dirac/data/x/log.txt", "lfn:/dirac/data/*.root"]) == [
        f"{HOME}/12/12345/c.root", "/dirac/data/x/log.txt", "/dirac/data/a.root", "/dirac/data/b.root"]
    assert lfns(["gone.txt", "*.none"]) == ["missing:gone.txt"]
    with pytest.raises(JobDataError, match="owner or VO is unknown"):
        JobData(1, work, SITE, "", "", "", None, None).outputFiles(["log.txt"], "")
