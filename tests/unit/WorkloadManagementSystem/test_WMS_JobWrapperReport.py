"""JobReport: buffered status records and parameters, delivered in order, retried, never silently lost.

``RecordingJobStateClient`` stands for WorkloadManagement/JobStateUpdate: it records what
arrives and can be made unreachable (the RPC client's "cannot reach" error) or refusing.
"""

from __future__ import annotations

import datetime
import errno
import json
import time
from pathlib import Path

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK
from dirac.WorkloadManagementSystem.JobWrapper.JobReport import TIME_FORMAT, JobReport, isTransient


class RecordingJobStateClient:
    """Records setJobStatusBulk/setJobParameters calls; unreachable for ``downCalls`` calls, or refusing."""

    def __init__(self, downCalls: int = 0, refuse: bool = False):
        self.bulks: list[dict] = []
        self.parameters: list[list] = []
        self.downCalls = downCalls
        self.refuse = refuse
        self.calls = 0

    def _answer(self) -> dict | None:
        self.calls += 1
        if self.downCalls:
            self.downCalls -= 1
            return S_ERROR(DErrno.EDISET, "cannot reach WorkloadManagement/JobStateUpdate: connection refused")
        if self.refuse:
            return S_ERROR(errno.EINVAL, "Job 7: illegal status transition Killed -> Done")
        return None

    def setJobStatusBulk(self, jobID: int, statusDict: dict, force: bool = False) -> dict:
        assert jobID == 7 and force is False
        failed = self._answer()
        if failed:
            return failed
        self.bulks.append(statusDict)
        return S_OK({"Status": "Running"})

    def setJobParameters(self, jobID: int, parameters: list) -> dict:
        failed = self._answer()
        if failed:
            return failed
        self.parameters += parameters
        return S_OK()


def test_records_go_in_one_bulk_in_order_with_strictly_increasing_time_stamps() -> None:
    client = RecordingJobStateClient()
    report = JobReport(7, client)
    report.setJobStatus("Running", "Job Initialization", sendFlag=False)
    report.setJobStatus(minorStatus="Application", applicationStatus="Executing run.sh", sendFlag=False)
    report.setApplicationStatus("step 2", sendFlag=False)
    report.setJobParameters([("HostName", "node1"), ("JobWrapperPID", 123)], sendFlag=False)
    assert report.pending
    assert report.flush() and not report.pending
    [bulk] = client.bulks
    stamps = list(bulk)
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert all(datetime.datetime.strptime(stamp, TIME_FORMAT) for stamp in stamps)
    assert list(bulk.values()) == [
        {"Status": "Running", "MinorStatus": "Job Initialization", "Source": "JobWrapper"},
        {"MinorStatus": "Application", "ApplicationStatus": "Executing run.sh", "Source": "JobWrapper"},
        {"ApplicationStatus": "step 2", "Source": "JobWrapper"},
    ]
    assert client.parameters == [["HostName", "node1"], ["JobWrapperPID", "123"]]


def test_reports_kept_while_the_server_is_unreachable_are_delivered_in_order_with_growing_delays() -> None:
    client = RecordingJobStateClient(downCalls=4)
    sleeps: list[float] = []
    report = JobReport(7, client, retryDelay=1.0, sleep=sleeps.append)
    assert not report.setJobStatus("Running", "Job Initialization")  # tried at once, server down
    assert not report.setJobStatus(minorStatus="Application")  # not tried: the server was down a moment ago
    assert client.calls == 1
    report.setJobStatus("Completing", "Application Finished Successfully", sendFlag=False)
    assert report.commit(timeout=60)
    assert sleeps == [1.0, 2.0, 4.0] and client.calls == 5
    [bulk] = client.bulks
    assert [record.get("MinorStatus") for record in bulk.values()] == [
        "Job Initialization", "Application", "Application Finished Successfully"]


def test_retry_delays_double_up_to_a_minute_and_commit_gives_up_at_its_timeout(tmp_path: Path) -> None:
    client = RecordingJobStateClient(downCalls=1000)
    report = JobReport(7, client, retryDelay=0.05)
    report.setJobStatus("Done", "Execution Complete", sendFlag=False)
    report.setJobParameter("ApplicationExitCode", 0, sendFlag=False)
    start = time.monotonic()
    assert not report.commit(timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 5
    assert 3 <= client.calls < 10
    path = report.dump(tmp_path / "pending.json")
    pending = json.loads(path.read_text())
    assert pending["JobID"] == 7
    assert list(pending["StatusBulk"].values()) == [
        {"Status": "Done", "MinorStatus": "Execution Complete", "Source": "JobWrapper"}]
    assert pending["Parameters"] == [["ApplicationExitCode", "0"]]
    delays = []
    report2 = JobReport(7, RecordingJobStateClient(downCalls=9), retryDelay=5.0, sleep=delays.append)
    report2.setJobStatus("Done", sendFlag=False)
    assert report2.commit(timeout=10_000)
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0, 60.0]


def test_refused_reports_are_not_retried_and_are_kept_with_the_server_message(tmp_path: Path) -> None:
    client = RecordingJobStateClient(refuse=True)
    report = JobReport(7, client)
    report.setJobStatus("Done", "Execution Complete", sendFlag=False)
    assert report.commit(timeout=60)  # nothing left to send: the server answered
    assert client.calls == 1 and not report.pending
    [rejected] = report.rejected
    assert "Killed -> Done" in rejected["Message"]
    assert list(rejected["Report"]["StatusBulk"].values())[0]["Status"] == "Done"
    pending = json.loads(report.dump(tmp_path / "pending.json").read_text())
    assert pending["Rejected"] == report.rejected and pending["StatusBulk"] == {}


def test_only_errors_of_reaching_the_server_are_transient() -> None:
    assert isTransient(S_ERROR(DErrno.EDISET, "cannot reach"))
    assert isTransient(S_ERROR(errno.ECONNREFUSED, "refused"))
    assert not isTransient(S_ERROR(errno.ENOENT, "Job 7 not found"))
    assert not isTransient(S_OK())
