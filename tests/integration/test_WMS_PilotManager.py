"""PilotManager and PilotLogging over real HTTPS (SQLite and MariaDB grids), and the pilot commands.

Proxies: ``admin`` (dirac_admin: Operator, JobAdministrator, SiteManager), ``user`` (admin in
dirac_user: NormalUser only), ``bob`` (dirac_user) and ``pilot`` (admin in dirac_pilot:
GenericPilot). Jobs are inserted into the grid's own JobDB: here they only need an owner.
"""

from __future__ import annotations

import errno
import json
import secrets
import ssl
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.scripts import (
    dirac_admin_get_pilot_output,
    dirac_wms_pilot_info,
    dirac_wms_pilot_logging,
    dirac_wms_pilot_summary,
)
from dirac.WorkloadManagementSystem.Service.PilotLoggingHandler import PilotLoggingHandler, messageLines

VO = "dirac"


@pytest.fixture
def pilots(anyGrid):  # noqa: ANN001, ANN201
    """The grid, with a pilot proxy."""
    if "pilot" not in anyGrid.proxies:
        anyGrid.makeProxy("pilot", "/O=DIRAC-Seed/OU=dirac/CN=admin", "dirac_pilot")
    return anyGrid


def manager(grid, proxy: str = "admin"):  # noqa: ANN001, ANN201
    return grid.client("WorkloadManagement/PilotManager", proxy)


def logging(grid, proxy: str = "admin"):  # noqa: ANN001, ANN201
    return grid.client("WorkloadManagement/PilotLogging", proxy)


def ok(result: dict):  # noqa: ANN201
    assert result["OK"], result.get("Message")
    return result["Value"]


def refused(result: dict) -> str:
    assert not result["OK"] and result["Errno"] == errno.EACCES, result
    return result["Message"]


def newPilots(grid, count: int = 1, ce: str = "ce.test.local", site: str = "DIRAC.Test.local",  # noqa: ANN001
              queue: str = "default") -> list[tuple[str, str]]:
    """Register ``count`` pilots as the operator; [(reference, stamp)]."""
    stamps = [secrets.token_hex(8) for _ in range(count)]
    refs = [f"local://{ce}/{stamp}" for stamp in stamps]
    ok(manager(grid).addPilotReferences(refs, VO, "Local", dict(zip(refs, stamps, strict=True)), ce, queue, site))
    return list(zip(refs, stamps, strict=True))


def newJob(owner: str = "bob", group: str = "dirac_user") -> int:
    return JobDB().insertNewJobIntoDB({"Owner": owner, "OwnerGroup": group, "VO": VO, "JobName": "pilot test"},
                                      '[Executable = "/bin/true"]')


def stdlibCall(grid, proxy: str, service: str, method: str, args: list) -> dict:  # noqa: ANN001
    """A call as the stdlib-only pilot makes it: urllib, form fields, args as plain json.dumps."""
    context = ssl.create_default_context(capath=str(grid.instance.certificatesDir))
    context.load_cert_chain(str(grid.proxies[proxy]))
    body = urllib.parse.urlencode({"method": method, "args": json.dumps(args)}).encode()
    request = urllib.request.Request(grid.url(service), data=body)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


# -- PilotManager --------------------------------------------------------------------------------------

def test_operatorRegistersPilotsAndSetsStatus_anyUserReadsTheirInfo(pilots) -> None:
    (ref, stamp), (other, _) = newPilots(pilots, 2)
    ok(manager(pilots).setPilotStatus(ref, "Running", None, "started on wn1"))
    info = ok(manager(pilots, "bob").getPilotInfo([ref, other]))
    assert info[ref]["Status"] == "Running" and info[ref]["StatusReason"] == "started on wn1"
    assert info[ref]["PilotStamp"] == stamp and info[ref]["DestinationSite"] == "ce.test.local"
    assert info[other]["Status"] == "Submitted" and info[other]["Jobs"] == []
    assert isinstance(info[ref]["SubmissionTime"], datetime)
    assert ok(manager(pilots, "bob").getPilotInfo(ref)).keys() == {ref}


def test_unknownPilotIsDiracsNoPilotError(pilots) -> None:
    result = manager(pilots, "bob").getPilotInfo(["local://nowhere/0000000000000000"])
    assert not result["OK"] and result["Errno"] == DErrno.EWMSNOPILOT
    assert manager(pilots).setPilotStatus("local://nowhere/0000000000000000", "Done")["Errno"] == DErrno.EWMSNOPILOT


def test_normalUserCannotRegisterPilotsSetTheirStatusOrDeleteThem(pilots) -> None:
    (ref, _), = newPilots(pilots)
    message = refused(manager(pilots, "bob").addPilotReferences(["local://ce.test.local/x"], VO))
    assert "addPilotReferences" in message and "TrustedHost" in message
    refused(manager(pilots, "bob").setPilotStatus(ref, "Done"))
    refused(manager(pilots, "bob").storePilotOutput(ref, "out", "err"))
    refused(manager(pilots, "bob").deletePilots(ref))
    refused(manager(pilots, "pilot").addPilotReferences(["local://ce.test.local/y"], VO))
    assert ok(manager(pilots).getPilotInfo(ref))[ref]["Status"] == "Submitted"


def test_pilotReportsItsJobAndBenchmark_aUserCannot(pilots) -> None:
    (ref, stamp), = newPilots(pilots)
    jobID = newJob()
    refused(manager(pilots, "bob").setJobForPilot(jobID, ref))
    ok(manager(pilots, "pilot").setJobForPilot(jobID, stamp))  # the JobAgent may know only the stamp
    ok(manager(pilots, "pilot").setPilotBenchmark(ref, 12.5))
    pilot = ok(manager(pilots, "bob").getPilotInfo(ref))[ref]
    assert pilot["Jobs"] == [jobID] and pilot["Status"] == "Running" and pilot["BenchMark"] == 12.5
    assert list(ok(manager(pilots, "bob").getPilots(str(jobID)))) == [ref]
    assert manager(pilots, "bob").getPilots(newJob())["Errno"] == DErrno.EWMSNOPILOT


def test_pilotOutputIsReadByOperatorAndJobOwner_refusedToOtherUsers(pilots) -> None:
    (ref, _), (lonely, _) = newPilots(pilots, 2)
    ok(manager(pilots, "pilot").setJobForPilot(newJob("bob"), ref))
    ok(manager(pilots).storePilotOutput(ref, "pilot stdout\n", "pilot stderr\n"))
    ok(manager(pilots).storePilotOutput(lonely, "lonely", ""))
    output = ok(manager(pilots, "bob").getPilotOutput(ref))
    assert (output["StdOut"], output["StdErr"], output["FileList"]) == ("pilot stdout\n", "pilot stderr\n", [])
    assert ok(manager(pilots).getPilotOutput(lonely))["StdOut"] == "lonely"
    assert "may not read the output" in refused(manager(pilots, "user").getPilotOutput(ref))
    refused(manager(pilots, "bob").getPilotOutput(lonely))
    refused(manager(pilots, "pilot").getPilotOutput(ref))  # a pilot does not read other pilots' output


def test_selectionsCountersAndSummaryThroughRPC(pilots) -> None:
    ce = f"ce-{secrets.token_hex(3)}.test.local"
    (first, _), (second, _), (third, _) = newPilots(pilots, 3, ce=ce, site="DIRAC.Summary.local")
    ok(manager(pilots).setPilotStatus(first, "Done"))
    ok(manager(pilots).setPilotStatus(second, "Aborted", None, "CE said no"))
    reader = manager(pilots, "bob")
    assert ok(reader.selectPilots({"DestinationSite": ce, "Status": ["Done", "Aborted"]})) == [first, second]
    anHourAgo = datetime.now(UTC) - timedelta(hours=1)  # travels as a naive JEncoded datetime
    assert ok(reader.selectPilots({"DestinationSite": ce}, None, anHourAgo)) == [first, second, third]
    assert ok(reader.countPilots({"DestinationSite": ce, "Queue": "default", "Status": "Submitted"})) == 1
    counters = ok(reader.getCounters("PilotAgents", ["GridSite", "Status"], {"DestinationSite": ce}))
    assert counters == [[{"GridSite": "DIRAC.Summary.local", "Status": status}, 1]
                        for status in ("Aborted", "Done", "Submitted")]
    summary = ok(reader.getPilotSummary((datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")))
    assert summary[ce] == {"Done": 1, "Aborted": 1, "Submitted": 1, "Aborted_Hour": 1, "Aborted_Day": 1}
    assert ok(reader.getCurrentPilotCounters({"DestinationSite": ce})) == {"Done": 1, "Aborted": 1, "Submitted": 1}
    assert not reader.getCounters("Jobs", ["Status"], {})["OK"]


# -- PilotLogging --------------------------------------------------------------------------------------------

def test_pilotSendsLogLinesWithPlainStdlibJSON_andTheyComeBackInOrder(pilots) -> None:
    (ref, stamp), = newPilots(pilots)
    first = stdlibCall(pilots, "pilot", "WorkloadManagement/PilotLogging", "sendMessage",
                       [["2024-05-01 10:00:00 UTC pilot: one", "two"], stamp, VO])
    assert first == {"OK": True, "Value": 2}
    # DIRAC's pilot sends the lines as a JSON text
    second = stdlibCall(pilots, "pilot", "WorkloadManagement/PilotLogging", "sendMessage",
                        [json.dumps(["three", "four"]), stamp, VO])
    assert second["Value"] == 4
    assert ok(logging(pilots, "pilot").sendMessage("five", stamp, VO)) == 5
    answer = ok(logging(pilots).getPilotLogs(ref))
    assert [line["Line"] for line in answer["Lines"]] == ["2024-05-01 10:00:00 UTC pilot: one", "two", "three",
                                                          "four", "five"]
    assert [line["Sequence"] for line in answer["Lines"]] == [1, 2, 3, 4, 5]
    assert (answer["PilotStamp"], answer["PilotJobReference"], answer["LastSequence"]) == (stamp, ref, 5)
    assert answer["Final"] is False and answer["More"] is False
    later = ok(logging(pilots).getPilotLogs(stamp, 3))
    assert [line["Line"] for line in later["Lines"]] == ["four", "five"] and later["LastSequence"] == 5
    assert ok(logging(pilots).getPilotLogs(stamp, 5))["Lines"] == []
    assert ok(manager(pilots).getPilotLoggingInfo(ref)).splitlines()[-1] == "five"


def test_normalUserCannotSendLogLines_andBadStampsAreRefused(pilots) -> None:
    (_, stamp), = newPilots(pilots)
    refused(logging(pilots, "bob").sendMessage(["forged"], stamp, VO))
    answer = stdlibCall(pilots, "pilot", "WorkloadManagement/PilotLogging", "sendMessage", [["x"], "../../etc", VO])
    assert answer["OK"] is False and "stamp" in answer["Message"]


def test_linesOfAnUnregisteredStampAreKeptAndJoinedWhenThePilotIsRegistered(pilots) -> None:
    stamp = secrets.token_hex(8)
    ok(logging(pilots, "pilot").sendMessage(["before registration"], stamp, VO))
    unregistered = ok(logging(pilots).getPilotLogs(stamp))
    assert unregistered["PilotJobReference"] == "" and unregistered["Status"] == ""
    ref = f"local://ce.test.local/{stamp}"
    ok(manager(pilots).addPilotReferences([ref], VO, "Local", {ref: stamp}))
    answer = ok(logging(pilots).getPilotLogs(ref))
    assert [line["Line"] for line in answer["Lines"]] == ["before registration"] and answer["Status"] == "Submitted"
    assert logging(pilots).getPilotLogs(secrets.token_hex(8))["Errno"] == DErrno.EWMSNOPILOT


def test_pilotLogsAreReadByJobOwnerAndOperatorOnly(pilots) -> None:
    (ref, stamp), = newPilots(pilots)
    ok(logging(pilots, "pilot").sendMessage(["secret-ish line"], stamp, VO))
    refused(logging(pilots, "bob").getPilotLogs(ref))  # bob owns no job of this pilot yet
    ok(manager(pilots, "pilot").setJobForPilot(newJob("bob"), ref))
    assert ok(logging(pilots, "bob").getPilotLogs(ref))["Lines"][0]["Line"] == "secret-ish line"
    refused(logging(pilots, "user").getPilotLogs(ref))
    refused(logging(pilots, "pilot").getPilotLogs(stamp))
    refused(manager(pilots, "user").getPilotLoggingInfo(ref))


def test_jobPilotLogs_listEveryPilotThatRanTheJob(pilots) -> None:
    (firstRef, firstStamp), (secondRef, secondStamp) = newPilots(pilots, 2)
    jobID = newJob("bob")
    ok(logging(pilots, "pilot").sendMessage(["first pilot"], firstStamp, VO))
    ok(logging(pilots, "pilot").sendMessage(["second pilot"], secondStamp, VO))
    ok(manager(pilots, "pilot").setJobForPilot(jobID, firstRef))
    ok(manager(pilots).setPilotStatus(firstRef, "Done"))
    ok(manager(pilots, "pilot").setJobForPilot(jobID, secondRef))  # the job was rescheduled
    answers = ok(logging(pilots, "bob").getJobPilotLogs(jobID))
    assert [a["PilotJobReference"] for a in answers] == [firstRef, secondRef]
    assert [a["Lines"][0]["Line"] for a in answers] == ["first pilot", "second pilot"]
    assert [a["Final"] for a in answers] == [True, False]
    assert ok(logging(pilots).getJobPilotLogs(str(jobID)))[1]["Status"] == "Running"
    refused(logging(pilots, "user").getJobPilotLogs(jobID))
    assert logging(pilots, "bob").getJobPilotLogs(newJob("bob"))["Errno"] == DErrno.EWMSNOPILOT


def test_finaliseLogsMarksAnUnregisteredPilotsLogFinal(pilots) -> None:
    stamp = secrets.token_hex(8)
    ok(logging(pilots, "pilot").sendMessage(["last words"], stamp, VO))
    ok(logging(pilots, "pilot").finaliseLogs({}, stamp, VO))
    assert ok(logging(pilots).getPilotLogs(stamp))["Final"] is True


# -- commands ---------------------------------------------------------------------------------------------------

@pytest.fixture
def asUser(pilots, monkeypatch):  # noqa: ANN001, ANN201
    """Run commands in-process with the proxy of one of the grid's users."""

    def use(proxy: str) -> None:
        monkeypatch.setenv("X509_USER_PROXY", str(pilots.proxies[proxy]))

    return use


def test_pilotSummaryCommand_tableAndJSON(pilots, asUser, capsys) -> None:
    site = f"DIRAC.Cmd{secrets.token_hex(3)}.local"
    (ref, _), _ = newPilots(pilots, 2, ce="ce.cmd.local", site=site)
    ok(manager(pilots).setPilotStatus(ref, "Running"))
    asUser("bob")
    assert dirac_wms_pilot_summary.main(["--site", site]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Site", "CE", "Submitted", "Running", "Total"]
    assert lines[2].split() == [site, "ce.cmd.local", "1", "1", "2"] and lines[-1].split() == ["Total", "1", "1", "2"]
    assert dirac_wms_pilot_summary.main(["--site", site, "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == [{"Site": site, "CE": "ce.cmd.local", "Submitted": 1,
                                                   "Running": 1, "Total": 2}]
    assert dirac_wms_pilot_summary.main(["--site", "DIRAC.None.local"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == "No pilots found"
    assert dirac_wms_pilot_summary.main(["--since", "yesterday"]) != EXIT_OK
    assert "not a date" in capsys.readouterr().err


def test_pilotInfoCommand_byReferenceOrJob_textAndJSON(pilots, asUser, capsys) -> None:
    (ref, stamp), = newPilots(pilots)
    jobID = newJob("bob")
    ok(manager(pilots, "pilot").setJobForPilot(jobID, ref))
    asUser("bob")
    assert dirac_wms_pilot_info.main([ref]) == EXIT_OK
    text = capsys.readouterr().out
    assert text.startswith(ref) and f"Stamp:       {stamp}" in text and f"Jobs:        {jobID}" in text
    assert "Status:      Running" in text
    assert dirac_wms_pilot_info.main(["--job", str(jobID), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)[ref]["Jobs"] == [jobID]
    assert dirac_wms_pilot_info.main(["local://nowhere/0000000000000000"]) == EXIT_NOT_FOUND
    assert "No pilots found" in capsys.readouterr().err
    assert dirac_wms_pilot_info.main([]) == EXIT_USAGE


def test_pilotLoggingCommand_printsLinesByPilotOrJob_andJSON(pilots, asUser, capsys) -> None:
    (ref, stamp), = newPilots(pilots)
    jobID = newJob("bob")
    ok(manager(pilots, "pilot").setJobForPilot(jobID, ref))
    ok(logging(pilots, "pilot").sendMessage(["line 1", "line 2", "line 3"], stamp, VO))
    asUser("bob")
    assert dirac_wms_pilot_logging.main([ref]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == ["line 1", "line 2", "line 3"]
    assert dirac_wms_pilot_logging.main([stamp, "--since", "2"]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == ["line 3"]
    assert dirac_wms_pilot_logging.main(["--job", str(jobID)]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == [f"== pilot {ref} [Running] ==", "line 1", "line 2", "line 3"]
    assert dirac_wms_pilot_logging.main([ref, "--json"]) == EXIT_OK
    answer = json.loads(capsys.readouterr().out)
    assert answer["LastSequence"] == 3 and [line["Line"] for line in answer["Lines"]] == ["line 1", "line 2",
                                                                                          "line 3"]
    asUser("user")
    assert dirac_wms_pilot_logging.main([ref]) == EXIT_AUTH
    assert dirac_wms_pilot_logging.main([ref, "--follow", "--json"]) == EXIT_USAGE


def test_pilotLoggingCommand_followsARunningPilotUntilItEnds(pilots, asUser, capsys) -> None:
    (ref, stamp), = newPilots(pilots)
    ok(logging(pilots, "pilot").sendMessage(["starting"], stamp, VO))
    pilotLog, operator = logging(pilots, "pilot"), manager(pilots)

    def runningPilot() -> None:
        time.sleep(0.5)
        for batch in (["installing", "configuring"], ["running the JobAgent"], ["done"]):
            assert pilotLog.sendMessage(batch, stamp, VO)["OK"]
            time.sleep(0.3)
        assert operator.setPilotStatus(ref, "Done", None, "pilot ended")["OK"]

    thread = threading.Thread(target=runningPilot)
    thread.start()
    asUser("admin")
    started = time.monotonic()
    code = dirac_wms_pilot_logging.main([ref, "--follow", "--interval", "0.2"])
    thread.join()
    assert code == EXIT_OK and time.monotonic() - started < 30
    assert capsys.readouterr().out.splitlines() == ["starting", "installing", "configuring", "running the JobAgent",
                                                    "done"]


def test_getPilotOutputCommand_writesFilesPrintsOrJSON_andRefusesOthers(pilots, asUser, capsys, tmp_path) -> None:
    (ref, stamp), = newPilots(pilots)
    ok(manager(pilots, "pilot").setJobForPilot(newJob("bob"), ref))
    ok(manager(pilots).storePilotOutput(ref, "the stdout\n", "the stderr\n"))
    asUser("bob")
    assert dirac_admin_get_pilot_output.main([ref, "--dir", str(tmp_path)]) == EXIT_OK
    assert (tmp_path / f"pilot_{stamp}" / "std.out").read_text() == "the stdout\n"
    assert (tmp_path / f"pilot_{stamp}" / "std.err").read_text() == "the stderr\n"
    capsys.readouterr()
    assert dirac_admin_get_pilot_output.main([ref, "--dir", str(tmp_path)]) != EXIT_OK  # no silent overwrite
    assert "exists" in capsys.readouterr().err
    assert dirac_admin_get_pilot_output.main([ref, "--print"]) == EXIT_OK
    assert "the stdout" in capsys.readouterr().out
    assert dirac_admin_get_pilot_output.main([ref, "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {ref: {"StdOut": "the stdout\n", "StdErr": "the stderr\n"}}
    asUser("user")
    assert dirac_admin_get_pilot_output.main([ref, "--print"]) == EXIT_AUTH
    assert dirac_admin_get_pilot_output.main(["local://nowhere/0000000000000000", "--print"]) == EXIT_NOT_FOUND


# -- PilotLogging rules, checked on the handler without the server ------------------------------------------------

def test_messageLines_acceptsLineListsDiracsJSONTextAndPlainText() -> None:
    assert messageLines(["a", "b\nc"]) == ["a", "b", "c"]
    assert messageLines(json.dumps(["x", "y"])) == ["x", "y"]
    assert messageLines("one line\r\n") == ["one line"]
    assert messageLines("42") == ["42"] and messageLines("{not json") == ["{not json"]


def test_sendMessage_cutsOverlongLinesAndReplacesExcessLinesByANote(sqlite_url, monkeypatch) -> None:
    db = PilotAgentsDB(sqlite_url)
    monkeypatch.setattr(PilotLoggingHandler, "pilotAgentsDB", db, raising=False)
    monkeypatch.setattr(PilotLoggingHandler, "limits", {"MaxLinesPerMessage": 3, "MaxLineLength": 10,
                                                        "MaxLinesPerAnswer": 2})
    handler = PilotLoggingHandler({"username": "admin", "group": "dirac_pilot", "VO": "dirac",
                                   "properties": ["GenericPilot"]})
    assert handler.export_sendMessage(["a", "b" * 25, "c", "d", "e"], "f" * 16, "othervo") == 4
    lines = [row["Line"] for row in db.getPilotLogs("f" * 16)]
    assert lines[:3] == ["a", "b" * 10 + "[...truncated...]", "c"]
    assert "2 more lines dropped" in lines[3]
    assert db.getPilotLogStream("f" * 16)["VO"] == "dirac"  # the proxy's VO, not the one the pilot claims
    page = handler._answer(None, "f" * 16, 0)
    assert page["More"] is True and page["LastSequence"] == 2
