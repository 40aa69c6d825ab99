"""The job services over real HTTPS, on SQLite and on MariaDB: JobManager, JobMonitoring, JobStateUpdate, Matcher.

Jobs are scheduled into their task queues by calling the scheduling logic on the grid's own
databases (the optimizers are tested on their own); everything else goes through RPC with
real proxies: ``admin`` (group dirac_admin: JobAdministrator), ``user`` (admin in dirac_user),
``bob`` (dirac_user) and ``pilot`` (admin in dirac_pilot: GenericPilot).
"""

from __future__ import annotations

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.API.Job import Job
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.JobSubmission import scheduleJobs

JDL = '[Executable = "/bin/echo"; Arguments = "hello"; CPUTime = 1000; JobName = "lifecycle"]'
SITE = "DIRAC.Test.local"


@pytest.fixture
def wms(anyGrid):  # noqa: ANN001, ANN201
    """The grid, with a pilot proxy and helpers for the tests below."""
    if "pilot" not in anyGrid.proxies:
        anyGrid.makeProxy("pilot", "/O=DIRAC-Seed/OU=dirac/CN=admin", "dirac_pilot")
    return anyGrid


def call(grid, service: str, proxy: str, method: str, *args):  # noqa: ANN001, ANN201
    return getattr(grid.client(f"WorkloadManagement/{service}", proxy), method)(*args)


def ok(result: dict):  # noqa: ANN201
    assert result["OK"], result.get("Message")
    return result["Value"]


def submit(grid, proxy: str = "user", jdl: str = JDL) -> int | list[int]:  # noqa: ANN001
    return ok(call(grid, "JobManager", proxy, "submitJob", jdl))


def schedule(jobIDs: list[int]) -> None:
    scheduleJobs(JobDB(), JobLoggingDB(), TaskQueueDB(), jobIDs)


def status(grid, jobID: int, proxy: str = "admin") -> str:  # noqa: ANN001
    return ok(call(grid, "JobMonitoring", proxy, "getJobsStatus", [jobID]))[str(jobID)]["Status"]


def match(grid, jobID: int) -> dict:  # noqa: ANN001
    """Ask the Matcher, as a pilot, until it hands out ``jobID`` (other tests' jobs may wait too)."""
    for _ in range(200):
        result = call(grid, "Matcher", "pilot", "requestJob", {"Site": SITE, "CPUTime": 100000, "GridCE": "ce.test"})
        assert result["OK"], result["Message"]
        if result["Value"]["JobID"] == jobID:
            return result["Value"]
    raise AssertionError(f"job {jobID} was never matched")


def running(grid, proxy: str = "user") -> int:  # noqa: ANN001
    jobID = submit(grid, proxy)
    schedule([jobID])
    match(grid, jobID)
    ok(call(grid, "JobStateUpdate", "pilot", "setJobStatus", jobID, JobStatus.RUNNING, "Application", "JobWrapper"))
    return jobID


def test_single_bulk_and_parametric_submission_answer_dirac_shapes(wms) -> None:  # noqa: ANN001
    single = call(wms, "JobManager", "user", "submitJob", JDL)
    assert single["OK"] and isinstance(single["Value"], int) and single["JobID"] == single["Value"]
    parametric = ok(call(wms, "JobManager", "user", "submitJob",
                         '[Executable = "/bin/echo"; Arguments = "%s"; Parameters = {"a", "b", "c"}]'))
    assert isinstance(parametric, list) and len(parametric) == 3 and parametric == sorted(parametric)
    statuses = ok(call(wms, "JobMonitoring", "user", "getJobsStatus", [single["Value"], *parametric]))
    assert {value["Status"] for value in statuses.values()} == {JobStatus.RECEIVED}
    assert ok(call(wms, "JobMonitoring", "user", "getJobAttributes", parametric[1]))["Owner"] == "admin"


def test_the_seed_example_submits_through_the_public_api(wms) -> None:  # noqa: ANN001
    dirac = Dirac(proxyLocation=str(wms.proxies["user"]))
    j = Job()
    j.setCPUTime(500)
    j.setExecutable("/bin/echo hello")
    j.setName("API")
    result = dirac.submitJob(j)
    assert result["OK"], result["Message"]
    jobID = result["Value"]
    assert ok(dirac.getJobStatus(jobID))[jobID]["Status"] == JobStatus.RECEIVED
    assert ok(dirac.getJobAttributes(jobID))["JobName"] == "API"
    jdl = ok(dirac.getJobJDL(jobID, original=True))
    assert 'Executable = "/bin/echo"' in jdl and 'Arguments = "hello"' in jdl


def test_bad_descriptions_are_refused_and_create_nothing(wms) -> None:  # noqa: ANN001
    before = JobDB().countJobs()
    for jdl, words in [("[Executable = \"/bin/true\"; CPUTime = \"lots\"]", "CPUTime"),
                       ("[Executable = \"/bin/true\" Arguments = \"x\"]", "malformed"),
                       ("[Executable = /bin/true]", "quoted string"),
                       ('[Executable = "/bin/echo"; Arguments = "%s"; Parameters = 5000]', "maximum")]:
        result = call(wms, "JobManager", "user", "submitJob", jdl)
        assert not result["OK"] and words in result["Message"], result
    assert JobDB().countJobs() == before
    assert not call(wms, "JobManager", "user", "submitJob", 42)["OK"]


def test_every_status_of_a_normal_run_is_applied_and_logged(wms) -> None:  # noqa: ANN001
    jobID = submit(wms)
    schedule([jobID])
    assert status(wms, jobID) == JobStatus.WAITING
    matched = match(wms, jobID)
    assert matched["Owner"] == "admin" and matched["OwnerGroup"] == "dirac_user" and "/bin/echo" in matched["JDL"]
    assert status(wms, jobID) == JobStatus.MATCHED
    for new, minor in [(JobStatus.RUNNING, "Application"), (JobStatus.COMPLETING, "Uploading Output Sandbox"),
                       (JobStatus.DONE, "Execution Complete")]:
        assert ok(call(wms, "JobStateUpdate", "pilot", "setJobStatus", jobID, new, minor, "JobWrapper")) == new
    history = ok(call(wms, "JobMonitoring", "user", "getJobLoggingInfo", jobID))
    assert [row[0] for row in history] == [JobStatus.RECEIVED, JobStatus.WAITING, JobStatus.MATCHED,
                                           JobStatus.RUNNING, JobStatus.COMPLETING, JobStatus.DONE]
    assert history[-1][4] == "JobWrapper" and len(history[-1][3]) == 19
    attributes = ok(call(wms, "JobMonitoring", "user", "getJobAttributes", jobID))
    assert attributes["Site"] == SITE and attributes["StartExecTime"] and attributes["EndExecTime"]


def test_illegal_transitions_are_refused_naming_from_and_to(wms) -> None:  # noqa: ANN001
    jobID = submit(wms)
    result = call(wms, "JobStateUpdate", "pilot", "setJobStatus", jobID, JobStatus.DONE, "", "test")
    assert not result["OK"] and f"{JobStatus.RECEIVED} -> {JobStatus.DONE}" in result["Message"]
    assert status(wms, jobID) == JobStatus.RECEIVED
    forced = call(wms, "JobStateUpdate", "pilot", "setJobStatus", jobID, JobStatus.DONE, "", "test", None, True)
    assert not forced["OK"], "force is for JobAdministrators only"
    assert ok(call(wms, "JobStateUpdate", "admin", "setJobStatus", jobID, JobStatus.DONE, "", "test", None, True))


def test_status_backlog_is_applied_in_time_order(wms) -> None:  # noqa: ANN001
    jobID = running(wms)
    backlog = {"2030-01-01 10:00:02": {"Status": JobStatus.COMPLETING, "MinorStatus": "Uploading", "Source": "JW"},
               "2030-01-01 10:00:01": {"ApplicationStatus": "step 2 done", "Source": "JW"},
               "2030-01-01 10:00:03": {"Status": JobStatus.DONE, "MinorStatus": "Execution Complete", "Source": "JW"}}
    assert ok(call(wms, "JobStateUpdate", "pilot", "setJobStatusBulk", jobID, backlog))["Status"] == JobStatus.DONE
    history = ok(call(wms, "JobMonitoring", "user", "getJobLoggingInfo", jobID))[-3:]
    assert [(row[0], row[2], row[3]) for row in history] == [
        (JobStatus.RUNNING, "step 2 done", "2030-01-01 10:00:01"),
        (JobStatus.COMPLETING, "step 2 done", "2030-01-01 10:00:02"),
        (JobStatus.DONE, "step 2 done", "2030-01-01 10:00:03")]


def test_heartbeats_parameters_and_kill_reaching_the_wrapper(wms) -> None:  # noqa: ANN001
    jobID = running(wms)
    ok(call(wms, "JobStateUpdate", "pilot", "setJobParameters", jobID, [["HostName", "wn1"], ["CPUNormalizationFactor", "12.5"]]))
    assert ok(call(wms, "JobStateUpdate", "pilot", "sendHeartBeat", jobID, {"CPUConsumed": 1.5, "MemoryUsed": 20}, {})) == {}
    assert ok(call(wms, "JobMonitoring", "user", "getJobParameters", jobID))[str(jobID)]["HostName"] == "wn1"
    beats = ok(call(wms, "JobMonitoring", "user", "getJobHeartBeatData", jobID))
    assert {(name, value) for name, value, _ in beats} == {("CPUConsumed", "1.5"), ("MemoryUsed", "20")}
    assert ok(call(wms, "JobManager", "user", "killJob", jobID)) == [jobID]
    assert status(wms, jobID) == JobStatus.KILLED
    assert ok(call(wms, "JobStateUpdate", "pilot", "sendHeartBeat", jobID, {}, {})) == {"Kill": ""}
    final = call(wms, "JobStateUpdate", "pilot", "setJobStatus", jobID, JobStatus.DONE, "Execution Complete", "JW")
    assert not final["OK"] and status(wms, jobID) == JobStatus.KILLED


def test_kill_delete_and_reschedule_of_waiting_and_running_jobs(wms) -> None:  # noqa: ANN001
    waiting = submit(wms)
    schedule([waiting])
    assert TaskQueueDB().getTaskQueueForJob(waiting) is not None
    assert ok(call(wms, "JobManager", "user", "deleteJob", [waiting])) == [waiting]
    assert status(wms, waiting) == JobStatus.DELETED and TaskQueueDB().getTaskQueueForJob(waiting) is None

    active = running(wms)
    assert ok(call(wms, "JobManager", "user", "rescheduleJob", active)) == [active]
    assert status(wms, active) == JobStatus.RECEIVED
    assert ok(call(wms, "JobMonitoring", "user", "getJobAttribute", active, "RescheduleCounter")) == 1
    assert ok(call(wms, "JobStateUpdate", "pilot", "sendHeartBeat", active, {}, {})) == {"Kill": ""}

    done = running(wms)
    ok(call(wms, "JobStateUpdate", "pilot", "setJobStatus", done, JobStatus.DONE, "Execution Complete", "JW"))
    refused = call(wms, "JobManager", "user", "killJob", [done])
    assert not refused["OK"] and refused["FailedJobIDs"] == [done] and status(wms, done) == JobStatus.DONE


def test_owners_see_and_control_only_their_jobs_unless_job_administrator(wms) -> None:  # noqa: ANN001
    mine, bobs = submit(wms, "user"), submit(wms, "bob")
    assert not call(wms, "JobMonitoring", "bob", "getJobsStatus", [mine])["OK"]
    assert not call(wms, "JobMonitoring", "bob", "getJobJDL", mine, False)["OK"]
    bobSees = {int(jobID) for jobID in ok(call(wms, "JobMonitoring", "bob", "getJobs", {}))}
    assert bobs in bobSees and mine not in bobSees
    assert ok(call(wms, "JobMonitoring", "bob", "getJobs", {"Owner": "admin"})) == []
    refused = call(wms, "JobManager", "bob", "killJob", [mine, bobs])
    assert not refused["OK"] and refused["NonauthorizedJobIDs"] == [mine] and refused["SuccessfulJobIDs"] == [bobs]
    assert status(wms, mine) == JobStatus.RECEIVED and status(wms, bobs) == JobStatus.KILLED
    assert not call(wms, "JobStateUpdate", "bob", "setJobParameter", mine, "x", "y")["OK"]
    allSeen = {int(jobID) for jobID in ok(call(wms, "JobMonitoring", "admin", "getJobs", {}))}
    assert {mine, bobs} <= allSeen
    assert ok(call(wms, "JobManager", "admin", "killJob", mine)) == [mine]
    unknown = call(wms, "JobManager", "user", "killJob", [10**8])
    assert not unknown["OK"] and unknown["InvalidJobIDs"] == [10**8]


def test_only_pilots_request_jobs_and_only_of_their_vo(wms) -> None:  # noqa: ANN001
    refused = call(wms, "Matcher", "user", "requestJob", {"Site": SITE, "CPUTime": 1000})
    assert not refused["OK"] and "GenericPilot" in refused["Message"]
    jobID = submit(wms)
    schedule([jobID])
    queues = ok(call(wms, "Matcher", "pilot", "getMatchingTaskQueues", {"Site": SITE, "CPUTime": 100000}))
    assert any(queue["Jobs"] >= 1 for queue in queues.values())
    elsewhere = ok(call(wms, "Matcher", "pilot", "getMatchingTaskQueues",
                        {"Site": SITE, "CPUTime": 100000, "VO": "another"}))
    assert elsewhere == queues, "a pilot's own VO replaces the one it claims"
    described = call(wms, "Matcher", "pilot", "requestJob", f'[Site = "{SITE}"; CPUTime = 100000]')
    assert described["OK"], described["Message"]
    bad = call(wms, "Matcher", "pilot", "requestJob", {"CPUTime": 100})
    assert not bad["OK"] and "Site" in bad["Message"]


def test_page_summary_filters_sorts_and_pages(wms) -> None:  # noqa: ANN001
    jobIDs = ok(call(wms, "JobManager", "bob", "submitJob",
                     '[Executable = "/bin/echo"; Arguments = "%s"; Parameters = 7; JobGroup = "paging"]'))
    page = ok(call(wms, "JobMonitoring", "bob", "getJobPageSummaryWeb", {"JobGroup": "paging"},
                   [["JobID", "DESC"]], 2, 3))
    assert page["TotalRecords"] == 7 and page["Extras"] == {JobStatus.RECEIVED: 7}
    names = page["ParameterNames"]
    assert [dict(zip(names, record, strict=True))["JobID"] for record in page["Records"]] == sorted(jobIDs,
                                                                                                 reverse=True)[2:5]
    assert ok(call(wms, "JobMonitoring", "user", "getJobPageSummaryWeb", {"JobGroup": "paging"}, [], 0, 10))[
        "TotalRecords"] == 0
    counters = ok(call(wms, "JobMonitoring", "bob", "getCounters", ["Status"], {"JobGroup": "paging"}))
    assert counters == [[{"Status": JobStatus.RECEIVED}, 7]]


def test_remove_job_is_for_administrators_and_leaves_nothing(wms) -> None:  # noqa: ANN001
    jobID = running(wms)
    assert not call(wms, "JobManager", "user", "removeJob", [jobID])["OK"]
    assert ok(call(wms, "JobManager", "admin", "removeJob", [jobID])) == [jobID]
    assert JobDB().jobsExist([jobID]) == set() and JobLoggingDB().getJobLoggingInfo(jobID) == []
    assert ok(call(wms, "JobMonitoring", "admin", "getJobsStatus", [jobID])) == {}
