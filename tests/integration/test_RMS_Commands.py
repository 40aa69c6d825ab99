"""dirac-rms-request and dirac-rms-reqdb-summary against the real ReqManager over HTTPS: requests shown by ID, name
and job (text and --json), canceled and reset by their owner, other users' refused with exit code 3, unknown ones
4; the summary counts each user's own requests."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.ReqClient import ReqClient
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.DB.RequestDB import RequestDB
from dirac.RequestManagementSystem.scripts import dirac_rms_reqdb_summary, dirac_rms_request

from .test_WMS_Commands import BIN, cli  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def bobsRequest(grid, jobID: int = 0) -> tuple[int, str]:  # noqa: ANN001
    name = f"cmd-{secrets.token_hex(4)}"
    request = Request(RequestName=name, JobID=jobID)
    operation = Operation(Type="ReplicateAndRegister", TargetSE="OneBox-SE")
    for index in range(2):
        operation.addFile(File(LFN=f"/dirac/user/b/bob/{name}/f{index}"))
    request.addOperation(operation)
    result = ReqClient(proxyLocation=str(grid.proxies["bob"]), useCertificates=False).putRequest(request)
    assert result["OK"], result
    return result["Value"], name


def test_commands_have_help_and_the_common_switches() -> None:
    for command in ("dirac-rms-request", "dirac-rms-reqdb-summary"):
        done = subprocess.run([str(BIN / command), "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "--json" in done.stdout and "--cfg" in done.stdout


def test_a_request_is_shown_by_id_name_and_job_in_text_and_json(cli) -> None:  # noqa: ANN001, F811
    requestID, name = bobsRequest(cli.grid, jobID=515151)
    ran = cli(dirac_rms_request, requestID, proxy="bob")
    assert ran.code == EXIT_OK, ran.err
    lines = ran.out.splitlines()
    assert lines[0] == f"Request {requestID} '{name}' Waiting" and lines[1] == "  Owner: bob@dirac_user, JobID 515151"
    assert "  [0] ReplicateAndRegister Waiting (to OneBox-SE)" in lines and "      Files: 2 Waiting" in lines
    full = cli(dirac_rms_request, name, "--Full", proxy="bob")
    assert f"      /dirac/user/b/bob/{name}/f1 Waiting, attempt 0" in full.out.splitlines()
    shown = cli(dirac_rms_request, "--Job", "515151,1", "--json", proxy="bob")
    assert shown.code == EXIT_NOT_FOUND and "no request for job(s) 1" in shown.err
    data = shown.json()
    assert [(item["RequestID"], item["DBStatus"], item["Operations"][0]["Type"]) for item in data] == [
        (requestID, "Waiting", "ReplicateAndRegister")]
    terse = cli(dirac_rms_request, "--Status", "Waiting", "--Terse", proxy="bob")
    assert f"Request {requestID} '{name}' Waiting JobID=515151" in terse.out.splitlines()


def test_other_users_requests_are_refused_and_unknown_ones_not_found(cli) -> None:  # noqa: ANN001, F811
    requestID, _ = bobsRequest(cli.grid)
    refused = cli(dirac_rms_request, requestID, proxy="user")
    assert refused.code == EXIT_AUTH and "may not read request" in refused.err
    assert cli(dirac_rms_request, requestID, "--Cancel", proxy="user").code == EXIT_AUTH
    assert cli(dirac_rms_request, 99999999, proxy="bob").code == EXIT_NOT_FOUND
    assert cli(dirac_rms_request, "no-such-name", proxy="bob").code == EXIT_NOT_FOUND
    assert cli(dirac_rms_request, proxy="bob").code == EXIT_USAGE
    assert cli(dirac_rms_request, "--Status", "Lost", proxy="bob").code == EXIT_USAGE
    assert cli(dirac_rms_request, requestID, proxy="admin").code == EXIT_OK  # an operator


def test_an_owner_resets_a_failed_request_and_cancels_one(cli) -> None:  # noqa: ANN001, F811
    requestID, _ = bobsRequest(cli.grid)
    db = RequestDB()  # as the agent leaves a request whose file failed for good
    stored = db.peekRequest(requestID)
    stored[0][0].fail("OneBox-SE: WriteAccess is InActive")
    stored[0][1].Status = "Done"
    assert db.updateRequest(stored, {"Waiting"})
    ran = cli(dirac_rms_request, requestID, "--Reset", proxy="bob")
    assert ran.code == EXIT_OK and ran.out.startswith(f"Request {requestID} reset\n\nRequest {requestID} ")
    assert "      Files: 1 Done, 1 Waiting" in ran.out.splitlines()
    ran = cli(dirac_rms_request, requestID, "--Cancel", "--json", proxy="bob")
    assert ran.code == EXIT_OK and ran.json()[0]["DBStatus"] == "Canceled"
    assert ran.json()[0]["Action"] == f"Request {requestID} canceled"
    again = cli(dirac_rms_request, requestID, "--Cancel", proxy="bob")
    assert again.code == EXIT_OK, "canceling a canceled request is no error"


def test_the_summary_counts_the_callers_requests(cli) -> None:  # noqa: ANN001, F811
    bobsRequest(cli.grid)
    mine = cli(dirac_rms_reqdb_summary, "--json", proxy="bob").json()
    everyone = cli(dirac_rms_reqdb_summary, "--json", proxy="admin").json()
    assert mine["Operation"]["ReplicateAndRegister"]["Waiting"] >= 1
    assert sum(everyone["Request"].values()) >= sum(mine["Request"].values()) > 0
    text = cli(dirac_rms_reqdb_summary, proxy="bob").out.splitlines()
    assert text[0] == "Requests:" and "Operations:" in text and "  ReplicateAndRegister" in text
    assert not cli(dirac_rms_reqdb_summary, "--json", proxy="user").json()["Request"], "admin in dirac_user: none"
