"""DIRAC's failover through the Request Management System, with the real services over HTTPS.

Bob's job (through the real optimizers, run by ``dirac-jobwrapper`` with bob's proxy) cannot store its output on
its OutputSE (the SE's server is down for the worker node): the file lands on OneBox-Failover and the wrapper
registers request ``job_<id>`` (ReplicateAndRegister to the OutputSE, RemoveReplica from the failover SE); the job
ends Completed / Pending Requests. The RequestExecutingAgent (``dirac-agent --once``, host certificate, bob's
proxy from the ProxyManager) later finds the SE back: the file moves there, the failover copy goes, the request is
Done and the job Done / Requests done. And a wrapper that cannot reach the JobStateUpdate at the end leaves its
reports in a ForwardDISET request, which the agent replays.
"""

from __future__ import annotations

import json

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Config import gConfig
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.RequestManagementSystem.Client.ReqClient import ReqClient
from dirac.WorkloadManagementSystem.Agent.JobAgent import JobAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import (
    EXIT_DONE,
    EXIT_REPORTS_UNDELIVERED,
    PENDING_REPORTS_FILE,
)

from .conftest import freePort
from .test_RMS_RequestExecution import BOB_DN, dipSE, runAgent
from .test_WMS_JobWrapper import ok, wms  # noqa: F401
from .test_WMS_JobWrapperData import (  # noqa: F401
    BOB_HOME,
    area,
    asBob,
    parameters,
    runAsBob,
    state,
    submitOptimizeAndMatch,
    trail,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def bobUploaded(sqliteGrid, tmp_path_factory) -> None:  # noqa: ANN001
    sqliteGrid.uploadProxy(BOB_DN, "dirac_user", tmp_path_factory.mktemp("bob-failover"))


def test_output_on_the_failover_se_is_moved_to_its_output_se_later_and_the_job_finishes(
        wms, area, bobUploaded, tmp_path) -> None:  # noqa: ANN001, F811
    match = submitOptimizeAndMatch(wms, tmp_path, area, lfns=["result.dat"], outputSE="Later-SE")
    jobID = match["JobID"]
    assert runAsBob(wms, match, tmp_path, dipSE("Later-SE", freePort())) == EXIT_DONE  # down for the node
    assert state(wms, jobID) == (JobStatus.COMPLETED, JobMinorStatus.PENDING_REQUESTS)
    lfn = f"{BOB_HOME}/{jobID // 1000}/{jobID}/result.dat"
    dm = DataManager(**asBob(wms))
    assert set(ok(dm.getReplicas(lfn))["Successful"][lfn]) == {"OneBox-Failover"}
    requests = ReqClient(**asBob(wms))
    requestID = ok(requests.getRequestIDsForJobs([jobID]))["Successful"][jobID]
    request = ok(requests.peekRequest(requestID))
    assert request.RequestName == f"job_{jobID}" and (request.Owner, request.OwnerGroup) == ("bob", "dirac_user")
    assert [(op.Type, op.TargetSE, op.SourceSE) for op in request] == [
        ("ReplicateAndRegister", "Later-SE", "OneBox-Failover"), ("RemoveReplica", "OneBox-Failover", "")]
    assert parameters(wms, jobID)["PendingRequest"] == request.getDigest()["Value"]

    log = runAgent(wms, tmp_path, dipSE("Later-SE", wms.port))  # the SE is back (the service's Disk area)
    assert f"request {requestID}: Done" in log
    assert ok(requests.getRequestStatus(requestID)) == "Done"
    assert set(ok(dm.getReplicas(lfn))["Successful"][lfn]) == {"Later-SE"}
    storage = wms.instance.root / "storage"
    assert (storage / "Disk" / lfn.lstrip("/")).read_text() == "SOME INPUT\n"
    assert not (storage / "Failover" / lfn.lstrip("/")).exists()
    assert state(wms, jobID) == (JobStatus.DONE, JobMinorStatus.REQUESTS_DONE)
    assert trail(wms, jobID)[-2:] == [(JobStatus.COMPLETED, JobMinorStatus.PENDING_REQUESTS),
                                      (JobStatus.DONE, JobMinorStatus.REQUESTS_DONE)]
    assert parameters(wms, jobID)["PendingRequest"].splitlines()[1].startswith(
        "ReplicateAndRegister:ReplicateAndRegister:Done")


def test_reports_the_jobstateupdate_cannot_take_are_replayed_by_the_agent(
        wms, area, bobUploaded, tmp_path) -> None:  # noqa: ANN001, F811
    match = submitOptimizeAndMatch(wms, tmp_path, area, lfns=["result.dat"], outputSE="OneBox-SE")
    jobID = match["JobID"]
    closed = f"https://127.0.0.1:{freePort()}/WorkloadManagement/JobStateUpdate"
    code = runAsBob(wms, match, tmp_path, {"/Systems/WorkloadManagement/URLs/JobStateUpdate": closed,
                                           "/Systems/WorkloadManagement/JobWrapper/ReportRetryTime": "1"})
    assert code == EXIT_DONE and not (tmp_path / "node" / PENDING_REPORTS_FILE).exists()
    assert state(wms, jobID)[0] == JobStatus.MATCHED, "nothing reached the JobStateUpdate"
    requests = ReqClient(**asBob(wms))
    requestID = ok(requests.getRequestIDsForJobs([jobID]))["Successful"][jobID]
    assert [op.Type for op in ok(requests.peekRequest(requestID))] == ["ForwardDISET", "ForwardDISET"]

    log = runAgent(wms, tmp_path)
    assert f"request {requestID}: Done" in log
    assert state(wms, jobID) == (JobStatus.DONE, JobMinorStatus.EXEC_COMPLETE)
    assert (JobStatus.RUNNING, JobMinorStatus.APPLICATION) in trail(wms, jobID)
    assert parameters(wms, jobID)["OutputDataSEs"] == f"{BOB_HOME}/{jobID // 1000}/{jobID}/result.dat: OneBox-SE"


def test_a_request_the_wrapper_could_not_store_is_stored_by_the_job_agent(
        wms, area, bobUploaded, tmp_path) -> None:  # noqa: ANN001, F811
    match = submitOptimizeAndMatch(wms, tmp_path, area, lfns=["result.dat"], outputSE="Later-SE")
    jobID = match["JobID"]
    closed = f"https://127.0.0.1:{freePort()}/RequestManagement/ReqManager"
    options = {**dipSE("Later-SE", freePort()), "/Systems/RequestManagement/URLs/ReqManager": closed,
               "/Systems/WorkloadManagement/JobWrapper/ReportRetryTime": "1"}
    assert runAsBob(wms, match, tmp_path, options) == EXIT_REPORTS_UNDELIVERED
    assert state(wms, jobID) == (JobStatus.COMPLETED, JobMinorStatus.PENDING_REQUESTS)
    workDir = tmp_path / "node"
    assert json.loads(json.loads((workDir / PENDING_REPORTS_FILE).read_text())["Request"])["RequestName"] == \
        f"job_{jobID}"
    agent = JobAgent(jobReport=wms.client("WorkloadManagement/JobStateUpdate", "pilot"),
                     jobMonitoring=wms.client("WorkloadManagement/JobMonitoring", "pilot"),
                     requestClient=ReqClient(proxyLocation=str(wms.proxies["pilot"]), useCertificates=False))
    slot = tmp_path / "slot"  # where the JobAgent keeps its jobs' working directories
    (slot / str(jobID)).mkdir(parents=True)
    (workDir / PENDING_REPORTS_FILE).rename(slot / str(jobID) / PENDING_REPORTS_FILE)
    gConfig.data.setLocalOption("/LocalSite/WorkingDirectory", str(slot))
    try:
        agent.running["inprocess://node/rms"] = jobID
        agent._afterWrapper("inprocess://node/rms", EXIT_REPORTS_UNDELIVERED)  # as when a wrapper ends so
    finally:
        gConfig.data.setLocalOption("/LocalSite/WorkingDirectory", "")
    stored = ok(ReqClient(**asBob(wms)).readRequestsForJobs([jobID]))["Successful"][jobID]
    assert (stored.Owner, [op.Type for op in stored]) == ("bob", ["ReplicateAndRegister", "RemoveReplica"])
    assert state(wms, jobID) == (JobStatus.COMPLETED, JobMinorStatus.PENDING_REQUESTS)
