"""JobDB, JobLoggingDB and SandboxMetadataDB on SQLite and MariaDB."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB


def test_insertNewJobIntoDB_storesAttributesJDLAndInputData(wms, makeJDL) -> None:
    jobID = wms.jobDB.insertNewJobIntoDB({"Owner": "alice", "OwnerGroup": "dirac_user", "JobName": "one"},
                                         makeJDL(JobName="one"), inputData=["/dirac/a", "/dirac/b"])
    attrs = wms.jobDB.getJobAttributes(jobID)
    assert attrs["Owner"] == "alice" and attrs["Status"] == "Received" and attrs["SubmissionTime"] is not None
    assert f"JobID = {jobID};" in wms.jobDB.getJobJDL(jobID)
    assert wms.jobDB.getJobJDL(jobID, original=True) == makeJDL(JobName="one")
    assert wms.jobDB.getInputData(jobID) == ["/dirac/a", "/dirac/b"]


def test_submitJob_bulkParametricGoesInOneCallWithConsecutiveIDs(wms, makeJDL) -> None:
    jobIDs = wms.submit(makeJDL(Arguments="%s", Parameters=["x", "y", "z"], JobGroup="grp"))
    assert len(jobIDs) == 3 and jobIDs == sorted(jobIDs)
    assert [wms.jobDB.getJobAttribute(i, "JobGroup") for i in jobIDs] == ["grp"] * 3
    assert 'Arguments = "y"' in wms.jobDB.getJobJDL(jobIDs[1])
    assert [r["Status"] for r in wms.loggingDB.getJobLoggingInfo(jobIDs[2])] == ["Received"]


def test_getJobAttributes_unknownJobOrAttributeIsAClearError(wms, makeJDL) -> None:
    with pytest.raises(NotFound, match="Job 4242 not found"):
        wms.jobDB.getJobAttributes(4242)
    jobID = wms.submit(makeJDL())[0]
    with pytest.raises(InvalidArgument, match="unknown job attribute"):
        wms.jobDB.getJobAttributes(jobID, ["Colour"])


def test_setJobAttributes_refusesStatusWhichGoesThroughTheStateMachine(wms, makeJDL) -> None:
    jobID = wms.submit(makeJDL())[0]
    assert wms.jobDB.setJobAttributes(jobID, {"Site": "LCG.CERN.ch", "ApplicationStatus": "step 1"}) == 1
    assert wms.jobDB.getJobAttributes(jobID, ["Site", "ApplicationStatus"]) == {
        "Site": "LCG.CERN.ch", "ApplicationStatus": "step 1"}
    with pytest.raises(InvalidArgument, match="state machine"):
        wms.jobDB.setJobAttributes(jobID, {"Status": "Done"})


def test_setJobJDL_replacesTheProcessedJDLOnly(wms, makeJDL) -> None:
    jobID = wms.submit(makeJDL())[0]
    wms.jobDB.setJobJDL(jobID, "[Executable = \"/bin/false\"]")
    assert wms.jobDB.getJobJDL(jobID) == "[Executable = \"/bin/false\"]"
    assert wms.jobDB.getJobJDL(jobID, original=True) == makeJDL()
    with pytest.raises(NotFound, match="Job 999"):
        wms.jobDB.setJobJDL(999, "[]")


def test_jobParameters_areUpsertedAndSelectable(wms, makeJDL) -> None:
    first, second = wms.submit(makeJDL(Parameters=2))
    wms.jobDB.setJobParameters(first, {"CPUNormalizationFactor": 10, "HostName": "wn1"})
    wms.jobDB.setJobParameters(first, [("HostName", "wn2")])
    wms.jobDB.setJobParameter(second, "HostName", "wn3")
    assert wms.jobDB.getJobParameters(first) == {first: {"CPUNormalizationFactor": "10", "HostName": "wn2"}}
    assert wms.jobDB.getJobParameters([first, second], ["HostName"]) == {first: {"HostName": "wn2"},
                                                                         second: {"HostName": "wn3"}}
    with pytest.raises(NotFound, match="Job 777"):
        wms.jobDB.setJobParameters(777, {"a": 1})


def test_heartbeats_areRecordedWithTheirTimeAndSetHeartBeatTime(wms, makeJDL) -> None:
    jobID = wms.submit(makeJDL())[0]
    wms.jobDB.setHeartBeatData(jobID, {"CPUConsumed": 12.5, "MemoryUsed": 300})
    wms.jobDB.setHeartBeatData(jobID, {"CPUConsumed": 20})
    data = wms.jobDB.getHeartBeatData(jobID)
    assert [(name, value) for name, value, _ in data] == [("CPUConsumed", "12.5"), ("MemoryUsed", "300"),
                                                          ("CPUConsumed", "20")]
    assert wms.jobDB.getJobAttribute(jobID, "HeartBeatTime") == data[-1][2]
    with pytest.raises(NotFound, match="Job 31337"):
        wms.jobDB.setHeartBeatData(31337, {"CPUConsumed": 1})


def test_selectJobs_filtersOrdersAndPages(wms, makeJDL) -> None:
    alice = wms.submit(makeJDL(Parameters=5), owner="alice")
    bob = wms.submit(makeJDL(Parameters=3, Priority=5), owner="bob")
    assert wms.jobDB.selectJobs({"Owner": "bob"}) == bob
    assert wms.jobDB.selectJobs({"Owner": ["alice", "bob"]}, orderAttribute="JobID:DESC", limit=3) == \
        sorted(alice + bob, reverse=True)[:3]
    pages = [wms.jobDB.selectJobs({"Owner": "alice"}, orderAttribute="JobID", limit=2, offset=o) for o in (0, 2, 4)]
    assert pages == [alice[:2], alice[2:4], alice[4:]]
    assert wms.jobDB.countJobs({"Owner": "alice"}) == 5
    assert wms.jobDB.selectJobs({"UserPriority": 5}, orderAttribute="Owner") == bob
    later = utcnow() + timedelta(minutes=1)
    assert wms.jobDB.selectJobs(older=later) == sorted(alice + bob)
    assert wms.jobDB.selectJobs(newer=later) == []
    with pytest.raises(InvalidArgument, match="Colour"):
        wms.jobDB.selectJobs({"Colour": "red"})
    with pytest.raises(InvalidArgument, match="neither ASC nor DESC"):
        wms.jobDB.selectJobs(orderAttribute="JobID:UP")


def test_getCounters_summarisesByAttributes(wms, makeJDL) -> None:
    wms.submit(makeJDL(Parameters=2), owner="alice")
    wms.submit(makeJDL(Parameters=3), owner="bob")
    wms.submit(makeJDL(), owner="bob", group="dirac_prod")
    assert wms.jobDB.getCounters(["Owner", "OwnerGroup"]) == [
        ({"Owner": "alice", "OwnerGroup": "dirac_user"}, 2), ({"Owner": "bob", "OwnerGroup": "dirac_prod"}, 1),
        ({"Owner": "bob", "OwnerGroup": "dirac_user"}, 3)]
    assert wms.jobDB.getCounters(["Status"], {"Owner": "bob"}) == [({"Status": "Received"}, 4)]
    assert wms.jobDB.getDistinctJobAttributes("Owner") == ["alice", "bob"]


def test_removeJobFromDB_leavesNothingOfTheJob(wms, makeJDL) -> None:
    keep, drop = wms.submit(makeJDL(Parameters=2, InputData=["/dirac/f"]))
    wms.jobDB.setJobParameters(drop, {"a": 1})
    wms.jobDB.setHeartBeatData(drop, {"CPUConsumed": 1})
    assert wms.jobDB.removeJobFromDB(drop) == 1
    assert wms.loggingDB.deleteJob(drop) == 1
    assert wms.jobDB.jobsExist([keep, drop]) == {keep}
    counts = wms.tableCounts()
    assert counts["Jobs"] == counts["JobJDLs"] == counts["InputData"] == counts["LoggingInfo"] == 1
    assert counts["JobParameters"] == counts["HeartBeatLoggingInfo"] == 0


def test_jobIDsAreNeverGivenTwice_evenAfterTheNewestJobIsRemoved(wms, makeJDL) -> None:
    _, newest = wms.submit(makeJDL(Parameters=2))
    assert wms.jobDB.removeJobFromDB(newest) == 1
    [next_] = wms.submit(makeJDL())
    assert next_ > newest


def test_loggingInfo_keepsOrderSourceAndTimeStamps(wms) -> None:
    start = utcnow()
    wms.loggingDB.addLoggingRecord(7, "Received", "Job accepted", source="JobManager", date=start)
    wms.loggingDB.addLoggingRecord(7, "Waiting", "Pilot Agent Submission", source="JobScheduling")
    wms.loggingDB.addLoggingRecord([7, 8], "Waiting", "", "app", source="X")
    info = wms.loggingDB.getJobLoggingInfo(7)
    assert [(r["Status"], r["Source"]) for r in info] == [("Received", "JobManager"), ("Waiting", "JobScheduling"),
                                                          ("Waiting", "X")]
    assert info[0]["StatusTime"] == start and info[2]["ApplicationStatus"] == "app"
    assert wms.loggingDB.getWMSTimeStamps(7)["Received"] == start


def test_sandboxMetadata_registersAssignsAndFindsUnused(db_url: str) -> None:
    db = SandboxMetadataDB(db_url)
    sbID, new = db.registerAndGetSandbox("alice", "dirac_user", "dirac", "SandboxSE", "/sb/a.tar.bz2", 100)
    assert new and db.registerAndGetSandbox("alice", "dirac_user", "dirac", "SandboxSE", "/sb/a.tar.bz2") == (
        sbID, False)
    assert db.getSandboxOwner("SandboxSE", "/sb/a.tar.bz2") == {"Owner": "alice", "OwnerGroup": "dirac_user",
                                                                "VO": "dirac"}
    assert db.assignSandboxesToEntities({"Job:1": [(sbID, "Input")], "Job:2": [(sbID, "Input")]}) == 2
    assert [s["SEPFN"] for s in db.getSandboxesAssignedToEntity("Job:1", "Input")] == ["/sb/a.tar.bz2"]
    future = utcnow() + timedelta(days=1)
    assert db.getUnusedSandboxes(future) == []
    db.unassignEntities(["Job:1"])
    assert db.getUnusedSandboxes(future) == []
    db.unassignEntities(["Job:2"])
    assert [s["SBId"] for s in db.getUnusedSandboxes(future)] == [sbID]
    assert db.deleteSandboxes([sbID]) == 1
    with pytest.raises(NotFound):
        db.getSandboxId("SandboxSE", "/sb/a.tar.bz2")
    with pytest.raises(InvalidArgument, match="sandbox type"):
        db.assignSandboxesToEntities({"Job:3": [(sbID, "Sideways")]})
