"""RequestDB on SQLite and MariaDB: requests stored and read back whole, updated in place, claimed by one caller
only (also when several claim at once), canceled requests not overwritten, owners' selections and DIRAC's
summaries."""

from __future__ import annotations

import datetime
import threading
from collections import Counter

import pytest

from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.DB.RequestDB import RequestDB
from tests.concurrency import runAtOnce

LFN = "/dirac/user/b/bob/out"


def makeRequest(name: str = "job_7", owner: str = "bob", jobID: int = 7, files: int = 2,
                notBefore: datetime.datetime | None = None) -> Request:
    request = Request(RequestName=name, Owner=owner, OwnerGroup="dirac_user", JobID=jobID, SourceComponent=f"Job_{jobID}")
    if notBefore:
        request.NotBefore = notBefore
    replicate = Operation(Type="ReplicateAndRegister", TargetSE="SE-B", SourceSE="SE-A")
    remove = Operation(Type="RemoveReplica", TargetSE="SE-A")
    for index in range(files):
        replicate.addFile(File(LFN=f"{LFN}{index}", Checksum="0a0b0c0d", ChecksumType="ADLER32", Size=index))
        remove.addFile(File(LFN=f"{LFN}{index}"))
    request.addOperation(replicate)
    request.addOperation(remove)
    return request


@pytest.fixture
def db(db_url: str) -> RequestDB:
    return RequestDB(db_url)


def test_a_request_is_stored_and_read_back_whole(db: RequestDB) -> None:
    request = makeRequest()
    requestID = db.putRequest(request)
    assert request.RequestID == requestID and all(op.OperationID and op.RequestID == requestID for op in request)
    read = db.peekRequest(requestID)
    assert read.toDict() == {**request.toDict(), "LastUpdate": read.toDict()["LastUpdate"]}
    assert [op.Status for op in read] == ["Waiting", "Queued"] and read[0][1].Size == 1
    assert db.getRequestStatus(requestID) == "Waiting"
    info = db.getRequestInfo(requestID)
    assert info[:7] == [requestID, "Waiting", "job_7", 7, "bob", "dirac_user", "Job_7"]
    with pytest.raises(NotFound):
        db.peekRequest(requestID + 1000)


def test_an_update_changes_statuses_adds_and_removes_files_and_operations(db: RequestDB) -> None:
    requestID = db.putRequest(makeRequest())
    request = db.getRequests(1)[0]
    assert db.getRequestStatus(requestID) == "Assigned"
    request[0][0].Status = "Done"
    request[0][1].fail("SE-B is not available")
    request[0][1].Attempt = 3
    request[1].addFile(File(LFN="/dirac/user/b/bob/extra"))
    assert db.updateRequest(request, {"Assigned"})
    read = db.peekRequest(requestID)
    assert [f.Status for f in read[0]] == ["Done", "Failed"] and read[0][1].Error == "SE-B is not available"
    assert read[0][1].Attempt == 3 and len(read[1]) == 3
    assert read.Status == "Failed" and db.getRequestStatus(requestID) == "Failed"
    del read._operations[1]  # an operation removed from the request goes from the DB too
    assert db.updateRequest(read, {"Failed"})
    assert len(db.peekRequest(requestID)) == 1
    assert db.getDBSummary()["File"] == {"Done": 1, "Failed": 1}


def test_only_waiting_requests_due_now_are_claimed_and_only_once(db: RequestDB) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    due = [db.putRequest(makeRequest(f"r{index}")) for index in range(3)]
    db.putRequest(makeRequest("later", notBefore=later))
    claimed = db.getRequests(10)
    assert sorted(r.RequestID for r in claimed) == due
    assert db.getRequests(10) == []
    peeked = db.getRequests(10, assigned=False)
    assert peeked == [], "a peek sees no Waiting request due now"


def test_a_given_request_is_assigned_only_when_waiting(db: RequestDB) -> None:
    requestID = db.putRequest(makeRequest())
    assert db.getRequest(requestID).RequestID == requestID
    with pytest.raises(InvalidArgument, match="is Assigned: only a Waiting request"):
        db.getRequest(requestID)


def test_a_canceled_request_is_not_written_back_by_its_agent(db: RequestDB) -> None:
    requestID = db.putRequest(makeRequest())
    claimed = db.getRequests(1)[0]
    assert db.setRequestStatus(requestID, "Canceled", {"Waiting", "Assigned", "Scheduled"})
    claimed[0][0].Status = "Done"
    assert not db.updateRequest(claimed, {"Assigned"})
    assert db.getRequestStatus(requestID) == "Canceled"
    assert db.peekRequest(requestID).Status == "Canceled"
    assert not db.setRequestStatus(requestID, "Canceled", {"Waiting"})


def test_stuck_assigned_requests_are_kicked_back_to_waiting(db: RequestDB) -> None:
    requestID = db.putRequest(makeRequest())
    db.getRequests(1)
    assert db.kickStuckRequests(datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)) == []
    assert db.kickStuckRequests(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)) == [requestID]
    assert db.getRequestStatus(requestID) == "Waiting"


@pytest.mark.parametrize("claimers", [2, 4])
def test_several_claimers_at_once_each_get_different_requests(db_url: str, claimers: int) -> None:
    ids = [RequestDB(db_url).putRequest(makeRequest(f"r{index}", files=1)) for index in range(60)]
    got: Counter[int] = Counter()
    lock = threading.Lock()

    def claim(own: RequestDB) -> None:
        while batch := own.getRequests(3):
            with lock:
                got.update(request.RequestID for request in batch)

    runAtOnce(lambda own=RequestDB(db_url): claim(own) for _ in range(claimers))
    assert sorted(got) == ids and set(got.values()) == {1}, "a request was claimed twice or never"


def test_owners_see_their_own_in_selections_and_jobs_map_to_their_latest_request(db: RequestDB) -> None:
    first = db.putRequest(makeRequest("job_7"))
    second = db.putRequest(makeRequest("job_7_again"))
    alice = db.putRequest(makeRequest("alice's", owner="alice", jobID=8))
    assert db.getRequestIDsForJobs([7, 8, 9]) == {"Successful": {7: second, 8: alice}, "Failed": {9: "Request not found"}}
    assert db.getRequestIDsForJobs([7, 8], owner="alice")["Successful"] == {8: alice}
    read = db.readRequestsForJobs([8], owner="bob")
    assert read == {"Successful": {}, "Failed": {8: "Request not found"}}
    assert db.getBulkRequestStatus([first, alice], owner="bob") == {first: "Waiting"}
    assert db.getRequestIDForName("alice's") == alice
    with pytest.raises(NotFound):
        db.getRequestIDForName("alice's", owner="bob")
    assert [row[0] for row in db.getRequestIDsList(["Waiting"], getJobID=True)] == [first, second, alice]
    assert db.getDBSummary(owner="alice") == {"Request": {"Waiting": 1},
                                              "Operation": {"ReplicateAndRegister": {"Waiting": 1},
                                                            "RemoveReplica": {"Queued": 1}},
                                              "File": {"Waiting": 4}}
    assert db.getRequestFileStatus(first, [f"{LFN}0", "/nope"]) == {f"{LFN}0": "Waiting", "/nope": "UNKNOWN"}
    assert db.deleteRequest(first) and not db.deleteRequest(first)
    assert db.getDBSummary()["Request"] == {"Waiting": 2}
