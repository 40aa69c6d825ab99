"""The job state machine in one place: legal moves logged, illegal ones refused, rescheduling limits."""

from __future__ import annotations

import datetime

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from DIRACCommon.WorkloadManagementSystem.Client.JobStatus import JobsStateMachine

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.WorkloadManagementSystem.Logic.Exceptions import IllegalTransition, RescheduleLimitReached, StatusConflict
from dirac.WorkloadManagementSystem.Logic.JobState import (
    StatusRecord,
    isLegalTransition,
    rescheduleJob,
    rescheduleJobs,
    setJobsStatus,
    setJobStatus,
    setJobStatusRecords,
)

STATES = JobsStateMachine(None).states
STORED = [s for s in STATES if s != JobStatus.RESCHEDULED]  # Rescheduled is virtual: never stored
LEGAL = [(a, b) for a in STORED for b in STATES[a].stateMap if b != JobStatus.RESCHEDULED]
ILLEGAL = [(a, b) for a in STORED for b in STORED if a != b and b not in STATES[a].stateMap]


def _jobsIn(wms, makeJDL, statuses: list[str]) -> list[int]:
    jobIDs = wms.submit(makeJDL(Parameters=len(statuses)))
    for jobID, status in zip(jobIDs, statuses, strict=True):
        setJobStatus(wms.jobDB, wms.loggingDB, jobID, status, "set up", source="Test", force=True)
    return jobIDs


def test_everyLegalTransitionIsAppliedAndLogged(wms, makeJDL) -> None:
    jobIDs = _jobsIn(wms, makeJDL, [a for a, _ in LEGAL])
    for jobID, (_, target) in zip(jobIDs, LEGAL, strict=True):
        assert setJobStatus(wms.jobDB, wms.loggingDB, jobID, target, "moved", source="Test") == target
    attributes = wms.jobDB.getJobsAttributes(jobIDs, ["Status", "MinorStatus"])
    for jobID, (origin, target) in zip(jobIDs, LEGAL, strict=True):
        assert attributes[jobID] == {"Status": target, "MinorStatus": "moved"}, (origin, target)
        history = [(r["Status"], r["MinorStatus"], r["Source"]) for r in wms.loggingDB.getJobLoggingInfo(jobID)]
        assert history[-2:] == [(origin, "set up", "Test"), (target, "moved", "Test")]


def test_everyIllegalTransitionIsRefusedNamingFromAndTo(wms, makeJDL) -> None:
    origins = sorted({a for a, _ in ILLEGAL})
    jobIDs = dict(zip(origins, _jobsIn(wms, makeJDL, origins), strict=True))
    for origin, target in ILLEGAL:
        with pytest.raises(IllegalTransition, match=f"Job {jobIDs[origin]}: illegal status transition "
                                                    f"{origin} -> {target}"):
            setJobStatus(wms.jobDB, wms.loggingDB, jobIDs[origin], target, source="Test")
    for origin, jobID in jobIDs.items():
        assert wms.jobDB.getJobAttribute(jobID, "Status") == origin
        assert wms.loggingDB.getJobLoggingInfo(jobID)[-1]["Status"] == origin  # nothing logged for refusals


def test_isLegalTransition_followsDIRACsStateMachine() -> None:
    assert isLegalTransition("Waiting", "Matched") and isLegalTransition("Running", "Running")
    assert not isLegalTransition("Done", "Running") and not isLegalTransition("Deleted", "Received")
    with pytest.raises(InvalidArgument, match="'Sleeping' is not a job status"):
        isLegalTransition("Waiting", "Sleeping")


def test_bulkChangeIsAllOrNothing(wms, makeJDL) -> None:
    running, done = _jobsIn(wms, makeJDL, ["Running", "Done"])
    with pytest.raises(IllegalTransition, match=f"Job {done}: illegal status transition Done -> Completing"):
        setJobsStatus(wms.jobDB, wms.loggingDB, [running, done], "Completing", source="Test")
    assert wms.jobDB.getJobAttribute(running, "Status") == "Running"


def test_a_wrappers_records_are_applied_in_order_in_one_go_with_their_own_times(wms, makeJDL) -> None:
    jobID = _jobsIn(wms, makeJDL, ["Matched"])[0]
    times = [datetime.datetime(2030, 1, 1, 10, 0, second, tzinfo=datetime.UTC) for second in range(4)]
    records = [StatusRecord(times[0], "Running", "Job Initialization", source="JobWrapper"),
               StatusRecord(times[1], None, "Application", "Executing run.sh", source="JobWrapper"),
               StatusRecord(times[2], "Completing", "Application Finished Successfully", source="JobWrapper"),
               StatusRecord(times[3], "Done", "Execution Complete", source="JobWrapper")]
    assert setJobStatusRecords(wms.jobDB, wms.loggingDB, jobID, records) == "Done"
    history = [(r["Status"], r["MinorStatus"], r["ApplicationStatus"], r["StatusTime"].replace(tzinfo=datetime.UTC))
               for r in wms.loggingDB.getJobLoggingInfo(jobID)][-4:]
    assert history == [("Running", "Job Initialization", "Unknown", times[0]),
                       ("Running", "Application", "Executing run.sh", times[1]),
                       ("Completing", "Application Finished Successfully", "Executing run.sh", times[2]),
                       ("Done", "Execution Complete", "Executing run.sh", times[3])]
    attributes = wms.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus", "StartExecTime", "EndExecTime"])
    assert attributes["Status"] == "Done" and attributes["MinorStatus"] == "Execution Complete"
    assert attributes["StartExecTime"] and attributes["EndExecTime"]


def test_a_refused_record_stops_the_bulk_after_the_records_before_it(wms, makeJDL) -> None:
    jobID = _jobsIn(wms, makeJDL, ["Matched"])[0]
    now = datetime.datetime.now(datetime.UTC)
    records = [StatusRecord(now, "Running", "Job Initialization"), StatusRecord(now, "Waiting", "back"),
               StatusRecord(now, "Done", "never applied")]
    with pytest.raises(IllegalTransition, match=f"Job {jobID}: illegal status transition Running -> Waiting"):
        setJobStatusRecords(wms.jobDB, wms.loggingDB, jobID, records)
    assert wms.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus"]) == {"Status": "Running",
                                                                          "MinorStatus": "Job Initialization"}
    assert [r["Status"] for r in wms.loggingDB.getJobLoggingInfo(jobID)][-2:] == ["Matched", "Running"]
    with pytest.raises(InvalidArgument, match="rescheduleJob"):
        setJobStatusRecords(wms.jobDB, wms.loggingDB, jobID, [StatusRecord(now, "Rescheduled")])
    with pytest.raises(NotFound, match="9999 not found"):
        setJobStatusRecords(wms.jobDB, wms.loggingDB, 9999, [StatusRecord(now, "Running")])


def test_minorAndApplicationStatusChangeWithoutStatusAndAreLogged(wms, makeJDL) -> None:
    jobID = _jobsIn(wms, makeJDL, ["Running"])[0]
    setJobStatus(wms.jobDB, wms.loggingDB, jobID, applicationStatus="Event 10", source="JobWrapper")
    assert wms.jobDB.getJobAttributes(jobID, ["Status", "ApplicationStatus"]) == {"Status": "Running",
                                                                                "ApplicationStatus": "Event 10"}
    assert wms.loggingDB.getJobLoggingInfo(jobID)[-1]["ApplicationStatus"] == "Event 10"


def test_runningAndFinalStatesSetExecutionTimes(wms, makeJDL) -> None:
    jobID = _jobsIn(wms, makeJDL, ["Matched"])[0]
    setJobStatus(wms.jobDB, wms.loggingDB, jobID, "Running", source="JobWrapper")
    setJobStatus(wms.jobDB, wms.loggingDB, jobID, "Done", "Execution Complete", source="JobWrapper")
    times = wms.jobDB.getJobAttributes(jobID, ["StartExecTime", "EndExecTime"])
    assert times["StartExecTime"] <= times["EndExecTime"]


def test_expectedStatusAndUnknownJobsAreClearErrors(wms, makeJDL) -> None:
    jobID = _jobsIn(wms, makeJDL, ["Running"])[0]
    with pytest.raises(StatusConflict, match=f"Job {jobID}: status is Running, expected Waiting"):
        setJobStatus(wms.jobDB, wms.loggingDB, jobID, "Matched", expectedStatus="Waiting")
    with pytest.raises(NotFound, match="Job.* 9999 not found"):
        setJobStatus(wms.jobDB, wms.loggingDB, 9999, "Killed")
    with pytest.raises(InvalidArgument, match="rescheduleJob"):
        setJobStatus(wms.jobDB, wms.loggingDB, jobID, "Rescheduled")


def test_rescheduleJob_archivesParametersAndStopsAtMaxRescheduling(wms, makeJDL) -> None:
    gConfig.initialize(options={f"{wms.jobDB.section}/MaxRescheduling": "2"}, fetchRemote=False)
    jobID = _jobsIn(wms, makeJDL, ["Running"])[0]
    for cycle in (0, 1):
        wms.jobDB.setJobParameters(jobID, {"HostName": f"wn{cycle}"})
        assert rescheduleJob(wms.jobDB, wms.loggingDB, jobID, source="Test") == "Received"
        attrs = wms.jobDB.getJobAttributes(jobID, ["Status", "RescheduleCounter", "StartExecTime"])
        assert attrs == {"Status": "Received", "RescheduleCounter": cycle + 1, "StartExecTime": None}
        setJobStatus(wms.jobDB, wms.loggingDB, jobID, "Failed", source="Test", force=True)
    assert wms.jobDB.getJobParameters(jobID) == {}
    assert wms.jobDB.getAtticJobParameters(jobID) == {0: {"HostName": "wn0"}, 1: {"HostName": "wn1"}}
    with pytest.raises(RescheduleLimitReached, match=f"Job {jobID}: Maximum of reschedulings reached"):
        rescheduleJob(wms.jobDB, wms.loggingDB, jobID, source="Test")
    assert wms.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus"]) == {
        "Status": "Failed", "MinorStatus": "Maximum of reschedulings reached"}
    statuses = [r["Status"] for r in wms.loggingDB.getJobLoggingInfo(jobID)]
    assert statuses.count("Rescheduled") == 2 and statuses[-1] == "Failed"


def test_rescheduleJobs_defaultLimitIsThreeAndWaitingJobsLeaveTheirTaskQueue(wms, makeJDL) -> None:
    jobID = wms.submitWaiting(makeJDL())[0]
    assert wms.tqDB.getTaskQueueForJob(jobID) is not None
    assert rescheduleJobs(wms.jobDB, wms.loggingDB, [jobID], taskQueueDB=wms.tqDB) == {jobID: "Received"}
    assert wms.tqDB.getTaskQueueForJob(jobID) is None
    for _ in range(2):
        setJobStatus(wms.jobDB, wms.loggingDB, jobID, "Failed", source="Test")
        rescheduleJob(wms.jobDB, wms.loggingDB, jobID)
    setJobStatus(wms.jobDB, wms.loggingDB, jobID, "Failed", source="Test")
    with pytest.raises(RescheduleLimitReached):
        rescheduleJob(wms.jobDB, wms.loggingDB, jobID)
    assert wms.jobDB.getJobAttribute(jobID, "RescheduleCounter") == 3


def test_rescheduleJob_refusedFromStatesThatCannotBeRescheduled(wms, makeJDL) -> None:
    jobID = _jobsIn(wms, makeJDL, ["Done"])[0]
    with pytest.raises(IllegalTransition, match=f"Job {jobID}: illegal status transition Done -> Rescheduled"):
        rescheduleJob(wms.jobDB, wms.loggingDB, jobID)
