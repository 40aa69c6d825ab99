"""The Request/Operation/File model: DIRAC's statuses, the request's status derived from its operations in
order, DIRAC's JSON both ways, the digest, and the validator's refusals."""

from __future__ import annotations

import json

import pytest

from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.Client.RequestValidator import validateRequest

LFN = "/dirac/user/b/bob/0/12/out.dat"
GUID = "6B2E4B5A-3C1D-4E5F-8A9B-0C1D2E3F4A5B"


def failoverRequest(files: int = 1) -> Request:
    """DIRAC's failover pair: ReplicateAndRegister to the OutputSE, then RemoveReplica from the failover SE."""
    request = Request(RequestName="job_12", JobID=12, Owner="bob", OwnerGroup="dirac_user")
    replicate = Operation(Type="ReplicateAndRegister", TargetSE="OneBox-SE", SourceSE="OneBox-Failover")
    remove = Operation(Type="RemoveReplica", TargetSE="OneBox-Failover")
    for index in range(files):
        replicate.addFile(File(LFN=f"{LFN}{index}", Checksum="0a1b2c3d", ChecksumType="Adler32", Size=5, GUID=GUID))
        remove.addFile(File(LFN=f"{LFN}{index}"))
    request.addOperation(replicate)
    request.addOperation(remove)
    return request


def test_a_new_request_waits_on_its_first_operation_the_others_queued() -> None:
    request = failoverRequest()
    assert request.Status == "Waiting"
    assert request.subStatusList() == ["Waiting", "Queued"]
    assert request.currentOperation() is request[0] and [op.Order for op in request] == [0, 1]


def test_done_operations_hand_over_to_the_next_and_all_done_is_done() -> None:
    request = failoverRequest()
    request[0][0].Status = "Done"
    assert (request.Status, request.subStatusList()) == ("Waiting", ["Done", "Waiting"])
    request[1][0].Status = "Done"
    assert (request.Status, request.subStatusList()) == ("Done", ["Done", "Done"])
    assert request.currentOperation() is None


def test_an_operation_fails_once_no_file_is_left_to_do_and_the_request_stops_there() -> None:
    request = failoverRequest(files=2)
    request[0][0].fail("OneBox-SE: WriteAccess is InActive")
    assert request.Status == "Waiting" and request[0].Status == "Waiting", "one file still to do"
    request[0][1].Status = "Done"
    assert request[0].Status == "Failed" and request.Status == "Failed"
    assert request[1].Status == "Queued", "a later operation never runs after a failed one"
    assert request[0][0].Error == "OneBox-SE: WriteAccess is InActive"


def test_an_operation_without_files_has_the_status_its_handler_gives_and_canceled_sticks() -> None:
    request = Request(RequestName="r", Owner="bob", OwnerGroup="dirac_user")
    forward = Operation(Type="ForwardDISET", Arguments=b"tts3:a/bdes1:mle")
    request.addOperation(forward)
    assert request.Status == "Waiting" and forward.Status == "Waiting"
    forward.Status = "Done"
    assert request.Status == "Done"
    request.Status = "Canceled"
    assert request.Status == "Canceled"
    with pytest.raises(InvalidArgument, match="unknown Operation status"):
        forward.Status = "Lost"


def test_dirac_json_goes_both_ways_with_dirac_s_names_and_times() -> None:
    request = failoverRequest()
    text = request.toJSON()["Value"]
    data = json.loads(text)
    assert list(data)[:12] == ["RequestID", "RequestName", "Owner", "OwnerGroup", "Status", "Error",
                               "SourceComponent", "JobID", "CreationTime", "SubmitTime", "LastUpdate", "NotBefore"]
    assert data["Operations"][0]["Files"][0]["ChecksumType"] == "ADLER32"
    assert len(data["NotBefore"]) == 19 and data["Operations"][1]["Status"] == "Queued"
    again = Request(text)
    assert again.toDict() == request.toDict()
    assert again[0][0].GUID == GUID and again.NotBefore == request.NotBefore


def test_a_dirac_v8_request_naming_its_owner_by_dn_is_read() -> None:
    v8 = {"RequestName": "old", "OwnerDN": "/O=DIRAC-Seed/OU=dirac/CN=bob", "OwnerGroup": "dirac_user",
          "DIRACSetup": "Production", "SourceComponent": "Job_3", "JobID": "3", "CreationTime": "2026-01-02 03:04:05.123",
          "Operations": [{"Type": "RemoveFile", "Files": [{"LFN": LFN, "Attempt": 2}]}]}
    request = Request(v8)
    assert request.OwnerDN.endswith("CN=bob") and request.JobID == 3 and request[0][0].Attempt == 2
    assert request.CreationTime.isoformat() == "2026-01-02T03:04:05+00:00"


def test_the_digest_is_dirac_s() -> None:
    digest = failoverRequest(files=3).getDigest()["Value"]
    assert digest.splitlines() == [
        "Name:job_12",
        f"ReplicateAndRegister:ReplicateAndRegister:Waiting:0:OneBox-SE:{LFN}0...+<2 files>",
        f"RemoveReplica:RemoveReplica:Queued:1:OneBox-Failover:{LFN}0...+<2 files>"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: setattr(r, "RequestName", ""), "RequestName not set"),
    (lambda r: setattr(r, "OwnerGroup", ""), "missing its Owner or OwnerGroup"),
    (lambda r: setattr(r[0], "TargetSE", ""), "Operation #0 of type 'ReplicateAndRegister' is missing TargetSE"),
    (lambda r: setattr(r[1], "Type", ""), "Operation #1 in request 'job_12' hasn't got Type set"),
    (lambda r: setattr(r[0][0], "Checksum", ""), "missing Checksum"),
    (lambda r: r.addOperation(Operation(Type="RemoveFile")), "Operation #2 of type 'RemoveFile' hasn't got files"),
    (lambda r: r.addOperation(Operation(Type="ForwardDISET", Arguments="n", Files=[{"LFN": LFN}])),
     "has got files to process"),
])
def test_incomplete_requests_are_refused_naming_what_is_missing(change, message: str) -> None:  # noqa: ANN001
    request = failoverRequest()
    change(request)
    with pytest.raises(InvalidArgument, match=message):
        validateRequest(request)


def test_unknown_operation_types_are_refused_when_the_handlers_are_known() -> None:
    request = failoverRequest()
    validateRequest(request, knownTypes=["ReplicateAndRegister", "RemoveReplica"])
    with pytest.raises(InvalidArgument, match="no handler for this type"):
        validateRequest(request, knownTypes=["RemoveReplica"])


@pytest.mark.parametrize(("attribute", "value"), [("LFN", "relative/path"), ("GUID", "not-a-guid"),
                                                   ("ChecksumType", "CRC32"), ("Status", "Lost")])
def test_file_attributes_are_checked(attribute: str, value: str) -> None:
    with pytest.raises(InvalidArgument):
        File(**{attribute: value})


def test_a_file_belongs_to_one_operation() -> None:
    shared = File(LFN=LFN)
    Operation(Type="RemoveFile").addFile(shared)
    with pytest.raises(InvalidArgument, match="already belongs"):
        Operation(Type="RemoveFile").addFile(shared)
