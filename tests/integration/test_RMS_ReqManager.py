"""RequestManagement/ReqManager over HTTPS with ReqClient: requests stored with their owner, shown to their owner
and to operators only, canceled, reset and deleted by whom may; claims only for hosts and operators; bad
requests refused with the reason."""

from __future__ import annotations

import errno
import json

import pytest

from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.ReqClient import ReqClient
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.DB.RequestDB import RequestDB

pytestmark = pytest.mark.timeout(120)
LFN = "/dirac/user/b/bob/rms/out.dat"


def client(grid, proxy: str) -> ReqClient:  # noqa: ANN001
    return ReqClient(proxyLocation=str(grid.proxies[proxy]), useCertificates=False)


def ok(result: dict):  # noqa: ANN201
    assert result["OK"], result.get("Message")
    return result["Value"]


def failoverRequest(name: str, jobID: int = 0) -> Request:
    request = Request(RequestName=name, JobID=jobID)
    replicate = Operation(Type="ReplicateAndRegister", TargetSE="OneBox-SE", SourceSE="OneBox-Failover")
    replicate.addFile(File(LFN=LFN, Checksum="0a1b2c3d", ChecksumType="ADLER32"))
    remove = Operation(Type="RemoveReplica", TargetSE="OneBox-Failover")
    remove.addFile(File(LFN=LFN))
    request.addOperation(replicate)
    request.addOperation(remove)
    return request


@pytest.fixture
def rms(grid):  # noqa: ANN001, ANN201
    if "pilot" not in grid.proxies:
        grid.makeProxy("pilot", "/O=DIRAC-Seed/OU=dirac/CN=admin", "dirac_pilot")
    return grid


def test_a_user_s_request_is_stored_as_theirs_and_read_back(rms) -> None:  # noqa: ANN001
    bob = client(rms, "bob")
    request = failoverRequest("rms-read", jobID=424242)
    requestID = ok(bob.putRequest(request))
    assert request.RequestID == requestID
    read = ok(bob.peekRequest(requestID))
    assert (read.Owner, read.OwnerGroup, read.Status, read.JobID) == ("bob", "dirac_user", "Waiting", 424242)
    assert [op.Type for op in read] == ["ReplicateAndRegister", "RemoveReplica"] and read[0][0].LFN == LFN
    assert ok(bob.getRequestStatus(requestID)) == "Waiting"
    info = ok(bob.getRequestInfo(requestID))
    assert info[:6] == [requestID, "Waiting", "rms-read", 424242, "bob", "dirac_user"]
    assert ok(bob.getDigest(requestID)).startswith("Name:rms-read\nReplicateAndRegister:ReplicateAndRegister:Waiting")
    assert ok(bob.getRequestIDsForJobs([424242, 1])) == {"Successful": {424242: requestID},
                                                         "Failed": {1: "Request not found"}}
    assert ok(bob.readRequestsForJobs([424242]))["Successful"][424242].RequestName == "rms-read"
    assert ok(bob.getRequestIDForName("rms-read")) == requestID
    assert ok(bob.getRequestFileStatus(requestID, [LFN])) == {LFN: "Waiting"}
    assert ok(bob.getBulkRequestStatus([requestID])) == {requestID: "Waiting"}
    assert requestID in [row[0] for row in ok(bob.getRequestIDsList(["Waiting"]))]
    assert ok(bob.getDBSummary())["Request"].get("Waiting", 0) >= 1


def test_other_users_requests_are_refused_operators_see_them(rms) -> None:  # noqa: ANN001
    requestID = ok(client(rms, "bob").putRequest(failoverRequest("rms-private", jobID=434343)))
    other = client(rms, "user")  # admin, but in dirac_user: no Operator property
    for call in (lambda: other.peekRequest(requestID), lambda: other.cancelRequest(requestID),
                 lambda: other.getRequestStatus(requestID), lambda: other.deleteRequest(requestID)):
        refused = call()
        assert not refused["OK"] and refused["Errno"] == errno.EACCES, refused
        assert "may not" in refused["Message"] and "request" in refused["Message"]
    assert ok(other.getRequestIDsForJobs([434343]))["Successful"] == {}
    assert requestID not in ok(other.getBulkRequestStatus([requestID]))
    operator = client(rms, "admin")  # dirac_admin: Operator
    assert ok(operator.peekRequest(requestID)).Owner == "bob"
    assert ok(operator.getRequestIDsForJobs([434343]))["Successful"] == {434343: requestID}


def test_only_hosts_and_operators_claim_requests(rms) -> None:  # noqa: ANN001
    refused = client(rms, "bob").getRequest()
    assert not refused["OK"] and "may not call getRequest" in refused["Message"]
    assert not client(rms, "bob").getBulkRequests(5)["OK"]


def test_putting_a_request_for_someone_else_needs_delegation_rights(rms) -> None:  # noqa: ANN001
    forAdmin = failoverRequest("rms-impersonation")
    forAdmin.Owner, forAdmin.OwnerGroup = "admin", "dirac_admin"
    refused = client(rms, "bob").putRequest(forAdmin)
    assert not refused["OK"] and "may not put requests for admin@dirac_admin" in refused["Message"]
    forBob = failoverRequest("rms-by-pilot")
    forBob.Owner, forBob.OwnerGroup = "bob", "dirac_user"
    requestID = ok(client(rms, "pilot").putRequest(forBob))  # a pilot (LimitedDelegation) for its job's owner
    assert ok(client(rms, "bob").peekRequest(requestID)).Owner == "bob"
    for owner, group, message in (("bob", "dirac_nowhere", "no group dirac_nowhere"), ("nobody", "dirac_user",
                                                                                         "no user nobody")):
        unknown = failoverRequest("rms-unknown")
        unknown.Owner, unknown.OwnerGroup = owner, group
        refused = client(rms, "pilot").putRequest(unknown)
        assert not refused["OK"] and f"{message} in the Registry" in refused["Message"]


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "a request's JSON cannot be read"),
    (json.dumps({"RequestName": "x", "Operations": [{"Type": "Teleport", "Files": [{"LFN": "/a"}]}]}),
     "Operation #0 of type 'Teleport': no handler for this type"),
    (json.dumps({"RequestName": "x", "Operations": [{"Type": "RemoveReplica", "Files": [{"LFN": "/a"}]}]}),
     "is missing TargetSE attribute"),
    (json.dumps({"RequestName": "x", "Operations": [{"Type": "RemoveFile", "Files": [{"LFN": "relative"}]}]}),
     "LFN should be an absolute path"),
])
def test_bad_requests_are_refused_with_the_reason(rms, text: str, message: str) -> None:  # noqa: ANN001
    refused = rms.client("RequestManagement/ReqManager", "bob").putRequest(text)
    assert not refused["OK"] and message in refused["Message"], refused


def test_an_owner_cancels_resets_and_deletes_a_request(rms) -> None:  # noqa: ANN001
    bob = client(rms, "bob")
    requestID = ok(bob.putRequest(failoverRequest("rms-lifecycle")))
    refused = bob.deleteRequest(requestID)
    assert not refused["OK"] and "is Waiting: cancel it first" in refused["Message"]
    ok(bob.cancelRequest(requestID))
    assert ok(bob.getRequestStatus(requestID)) == "Canceled"
    refused = bob.putRequest(ok(bob.peekRequest(requestID)))
    assert not refused["OK"] and "is Canceled: not changed" in refused["Message"]
    ok(bob.deleteRequest(requestID))
    assert bob.peekRequest(requestID)["Errno"] == errno.ENOENT

    # a Failed request reset by its owner: the failed file Waiting again, Attempt 1, due now
    requestID = ok(bob.putRequest(failoverRequest("rms-reset")))
    db = RequestDB()  # as the agent would leave it after the SE refused the file for good
    stored = db.peekRequest(requestID)
    stored[0][0].Attempt = 7
    stored[0][0].fail("OneBox-SE: WriteAccess is InActive")
    assert db.updateRequest(stored, {"Waiting"})
    assert ok(bob.getRequestStatus(requestID)) == "Failed"
    ok(bob.resetFailedRequest(requestID))
    reset = ok(bob.peekRequest(requestID))
    assert (reset.Status, reset[0][0].Status, reset[0][0].Attempt, reset[0][0].Error) == ("Waiting", "Waiting", 1, "")
