"""PilotAgentsDB on SQLite and MariaDB: registration, statuses, jobs, output, streamed logs, cleaning."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import MAX_LINE_CHARS, PilotAgentsDB, PilotNotFound, toUTC


@pytest.fixture
def db(db_url: str) -> PilotAgentsDB:
    return PilotAgentsDB(db_url)


def register(db: PilotAgentsDB, *stamps: str, ce: str = "ce1.example.org", queue: str = "long",
             site: str = "DIRAC.Site.org", vo: str = "dirac") -> list[str]:
    refs = [f"local://{ce}/{stamp}" for stamp in stamps]
    db.addPilotReferences(refs, vo, "Local", {ref: stamp for ref, stamp in zip(refs, stamps, strict=True)},
                          ce, queue, site)
    return refs


def age(db: PilotAgentsDB, ref: str, days: float, column: str = "SubmissionTime") -> None:
    with db.transaction() as conn:
        conn.execute(update(db.pilotAgents).where(db.pilotAgents.c.PilotJobReference == ref)
                     .values({column: utcnow() - timedelta(days=days)}))


# -- registration and status -----------------------------------------------------------------------

def test_addPilotReferences_registersSubmittedPilotsWithStampCEQueueAndSite(db) -> None:
    refs = register(db, "a" * 16, "b" * 16)
    info = db.getPilotInfo(refs)
    assert set(info) == set(refs)
    pilot = info[refs[0]]
    assert pilot["Status"] == "Submitted" and pilot["PilotStamp"] == "a" * 16
    assert (pilot["DestinationSite"], pilot["Queue"], pilot["GridSite"]) == ("ce1.example.org", "long", "DIRAC.Site.org")
    assert pilot["VO"] == "dirac" and pilot["GridType"] == "Local" and pilot["Jobs"] == []
    assert pilot["SubmissionTime"].tzinfo is not None and pilot["AccountingSent"] is False


def test_addPilotReferences_refusesAReferenceAlreadyRegisteredAndAddsNothing(db) -> None:
    ref = register(db, "a" * 16)[0]
    with pytest.raises(InvalidArgument, match="already registered"):
        db.addPilotReferences(["local://ce1.example.org/new", ref], "dirac")
    assert db.selectPilots() == [ref]


def test_setPilotStatus_changesStatusReasonAndPlace(db) -> None:
    ref = register(db, "a" * 16)[0]
    db.setPilotStatus(ref, "Running", destination="ce2.example.org", statusReason="started", queue="short")
    pilot = db.getPilotInfo(ref)[ref]
    assert (pilot["Status"], pilot["StatusReason"], pilot["DestinationSite"], pilot["Queue"]) == (
        "Running", "started", "ce2.example.org", "short")
    assert pilot["GridSite"] == "DIRAC.Site.org"


def test_setPilotStatus_refusesUnknownStatusAndUnknownPilot(db) -> None:
    ref = register(db, "a" * 16)[0]
    with pytest.raises(InvalidArgument, match="not a pilot status"):
        db.setPilotStatus(ref, "Happy")
    with pytest.raises(PilotNotFound):
        db.setPilotStatus("local://nowhere/x", "Done")


def test_getPilotInfo_unknownReferenceIsPilotNotFoundWithDiracErrno(db) -> None:
    with pytest.raises(PilotNotFound) as caught:
        db.getPilotInfo(["local://nowhere/x"])
    assert caught.value.toSError()["Errno"] == PilotNotFound.errno
    assert isinstance(caught.value, NotFound)


def test_setPilotBenchmarkAndAccountingFlag_areStored(db) -> None:
    ref = register(db, "a" * 16)[0]
    db.setPilotBenchmark("a" * 16, 17.5)  # a pilot knows its stamp
    db.setAccountingFlag(ref, "True")
    pilot = db.getPilotInfo(ref)[ref]
    assert pilot["BenchMark"] == 17.5 and pilot["AccountingSent"] is True


# -- selections and counters --------------------------------------------------------------------------

def test_selectPilots_byConditionsTimeWindowOrderAndLimit(db) -> None:
    refs = register(db, "a" * 16, "b" * 16, "c" * 16)
    db.setPilotStatus(refs[1], "Running")
    age(db, refs[2], 3)
    assert db.selectPilots({"Status": "Submitted"}) == [refs[0], refs[2]]
    assert db.selectPilots({"Status": ["Submitted", "Running"]}, newer=utcnow() - timedelta(days=1)) == refs[:2]
    assert db.selectPilots({}, older=utcnow() - timedelta(days=1)) == [refs[2]]
    assert db.selectPilots(orderAttribute="SubmissionTime:DESC", limit=1) in ([refs[0]], [refs[1]])
    with pytest.raises(InvalidArgument, match="unknown pilot attribute"):
        db.selectPilots({"OwnerDN": "x"})


def test_countPilots_countsWaitingPilotsPerCEAndQueue(db) -> None:
    register(db, "a" * 16, "b" * 16, queue="long")
    register(db, "c" * 16, queue="short")
    register(db, "d" * 16, ce="ce2.example.org")
    assert db.countPilots({"DestinationSite": "ce1.example.org", "Queue": "long",
                           "Status": ["Submitted", "Waiting"]}) == 2
    assert db.countPilots({"DestinationSite": "ce1.example.org"}) == 3
    assert db.countPilots({"Status": "Running"}) == 0


def test_getCounters_groupsBySiteCEAndStatus(db) -> None:
    refs = register(db, "a" * 16, "b" * 16)
    register(db, "c" * 16, ce="ce2.example.org", site="DIRAC.Other.org")
    db.setPilotStatus(refs[0], "Done")
    counters = db.getCounters(["GridSite", "DestinationSite", "Status"])
    assert counters == [
        ({"GridSite": "DIRAC.Other.org", "DestinationSite": "ce2.example.org", "Status": "Submitted"}, 1),
        ({"GridSite": "DIRAC.Site.org", "DestinationSite": "ce1.example.org", "Status": "Done"}, 1),
        ({"GridSite": "DIRAC.Site.org", "DestinationSite": "ce1.example.org", "Status": "Submitted"}, 1)]


def test_getPilotSummary_countsByCEAndStatusWithTotalsAndRecentAborted(db) -> None:
    refs = register(db, "a" * 16, "b" * 16, "c" * 16)
    other = register(db, "d" * 16, ce="ce2.example.org")
    db.setPilotStatus(refs[0], "Aborted")
    db.setPilotStatus(refs[1], "Running")
    summary = db.getPilotSummary()
    assert summary["ce1.example.org"] == {"Aborted": 1, "Running": 1, "Submitted": 1, "Aborted_Hour": 1,
                                          "Aborted_Day": 1}
    assert summary["ce2.example.org"]["Submitted"] == 1
    assert summary["Total"]["Submitted"] == 2 and summary["Total"]["Done"] == 0
    age(db, other[0], 5)
    assert "ce2.example.org" not in db.getPilotSummary(startdate=utcnow() - timedelta(days=1))
    assert set(db.getPilotSummary(enddate=(utcnow() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"))) == {
        "Total", "ce2.example.org"}


def test_getCurrentPilotCounters_countsFinalPilotsOfTheLastDayOnly(db) -> None:
    refs = register(db, "a" * 16, "b" * 16, "c" * 16)
    db.setPilotStatus(refs[0], "Done")
    db.setPilotStatus(refs[1], "Done")
    age(db, refs[1], 2, "LastUpdateTime")
    assert db.getCurrentPilotCounters({"DestinationSite": "ce1.example.org"}) == {"Done": 1, "Submitted": 1}


# -- jobs ---------------------------------------------------------------------------------------------------

def test_setJobForPilot_mapsJobsByReferenceOrStampAndMarksThePilotRunning(db) -> None:
    refs = register(db, "a" * 16, "b" * 16)
    db.setJobForPilot(10, refs[0], site="DIRAC.Site.org")
    db.setJobForPilot(11, "a" * 16)
    db.setJobForPilot(11, "a" * 16)  # a retried report is harmless
    db.setJobForPilot(11, refs[1])  # rescheduled job, second pilot
    pilot = db.getPilotInfo(refs[0])[refs[0]]
    assert pilot["Jobs"] == [10, 11] and pilot["Status"] == "Running" and pilot["StatusReason"] == "Report from job 11"
    assert db.getPilotsForJobID(11) == [db.getPilotInfo(refs[0])[refs[0]]["PilotID"],
                                        db.getPilotInfo(refs[1])[refs[1]]["PilotID"]]
    assert db.getJobsForPilot(pilot["PilotID"]) == {pilot["PilotID"]: [10, 11]}
    with pytest.raises(PilotNotFound):
        db.setJobForPilot(12, "local://nowhere/x")


def test_setJobForPilot_neverRevivesAPilotInAFinalStatus(db) -> None:
    ref = register(db, "a" * 16)[0]
    db.setPilotStatus(ref, "Done")
    db.setJobForPilot(10, ref)
    pilot = db.getPilotInfo(ref)[ref]
    assert pilot["Status"] == "Done" and pilot["Jobs"] == [10]


def test_findPilot_byReferenceOrStamp(db) -> None:
    ref = register(db, "a" * 16)[0]
    assert db.findPilot(ref)["PilotStamp"] == "a" * 16
    assert db.findPilot("a" * 16)["PilotJobReference"] == ref
    assert db.findPilot("f" * 16) is None and db.findPilot("") is None


# -- output ---------------------------------------------------------------------------------------------------

def test_storePilotOutput_isReplacedAndReadBackWithDiracKeys(db) -> None:
    ref = register(db, "a" * 16)[0]
    with pytest.raises(NotFound, match="no output stored"):
        db.getPilotOutput(ref)
    db.storePilotOutput(ref, "first out", "")
    db.storePilotOutput(ref, "out é\n" * 3, "err")
    assert db.getPilotOutput(ref) == {"StdOut": "out é\n" * 3, "StdErr": "err"}
    with pytest.raises(PilotNotFound):
        db.storePilotOutput("local://nowhere/x", "", "")


def test_storePilotOutput_keepsTheTailOfAnOversizedOutput(db) -> None:
    ref = register(db, "a" * 16)[0]
    db.storePilotOutput(ref, "x" * 100 + "THE END", "", maxChars=20)
    stdout = db.getPilotOutput(ref)["StdOut"]
    assert stdout.endswith("THE END") and "truncated" in stdout and len(stdout) < 60


# -- streamed logs ------------------------------------------------------------------------------------------------

def test_pilotLogs_batchesComeBackInOrderAndCanBeFollowedFromASequence(db) -> None:
    stamp = "a" * 16
    assert db.addPilotLogs(stamp, ["one", "two"], "dirac") == 2
    assert db.addPilotLogs(stamp, ["three"]) == 3
    assert db.addPilotLogs(stamp, ["four", "five"]) == 5
    lines = db.getPilotLogs(stamp)
    assert [(row["Sequence"], row["Line"]) for row in lines] == list(enumerate(["one", "two", "three", "four",
                                                                               "five"], start=1))
    assert lines[0]["Time"].tzinfo is not None
    assert [row["Line"] for row in db.getPilotLogs(stamp, sinceSequence=3)] == ["four", "five"]
    assert [row["Line"] for row in db.getPilotLogs(stamp, sinceSequence=1, limit=2)] == ["two", "three"]
    assert db.getPilotLogs(stamp, sinceSequence=5) == []
    assert db.getPilotLogStream(stamp)["LastSequence"] == 5


def test_pilotLogs_ofAnUnregisteredStampAreKeptAndJoinedWhenThePilotIsRegistered(db) -> None:
    stamp = "b" * 16
    db.addPilotLogs(stamp, ["early line"], "dirac")
    assert db.findPilot(stamp) is None
    ref = register(db, stamp)[0]
    assert db.findPilot(stamp)["PilotJobReference"] == ref
    assert [row["Line"] for row in db.getPilotLogs(db.findPilot(ref)["PilotStamp"])] == ["early line"]


def test_pilotLogs_concurrentBatchesGetDistinctGaplessSequences(db) -> None:
    stamp = "c" * 16
    errors = []

    def send(n: int) -> None:
        try:
            for i in range(5):
                db.addPilotLogs(stamp, [f"{n}-{i}-a", f"{n}-{i}-b"])
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    lines = db.getPilotLogs(stamp)
    assert [row["Sequence"] for row in lines] == list(range(1, 41))
    for row in lines[::2]:  # a batch's lines stay together, in order
        assert row["Line"].endswith("-a") and lines[row["Sequence"]]["Line"] == row["Line"][:-1] + "b"


def test_pilotLogs_overlongLinesAreTruncated(db) -> None:
    db.addPilotLogs("d" * 16, ["y" * (MAX_LINE_CHARS + 10)])
    line = db.getPilotLogs("d" * 16)[0]["Line"]
    assert line.startswith("y" * 100) and line.endswith("truncated...]") and len(line) < MAX_LINE_CHARS + 30


def test_finalisePilotLogs_marksTheStreamEvenBeforeAnyLine(db) -> None:
    db.finalisePilotLogs("e" * 16, "dirac")
    assert db.getPilotLogStream("e" * 16)["Finalised"] is True
    db.addPilotLogs("f" * 16, ["x"])
    db.finalisePilotLogs("f" * 16)
    stream = db.getPilotLogStream("f" * 16)
    assert stream["Finalised"] is True and stream["LastSequence"] == 1
    assert db.getPilotLogStream("0" * 16) is None


# -- cleaning -----------------------------------------------------------------------------------------------------

def test_deletePilots_removesMappingOutputAndLogs(db) -> None:
    refs = register(db, "a" * 16, "b" * 16)
    db.setJobForPilot(10, refs[0])
    db.storePilotOutput(refs[0], "out", "err")
    db.addPilotLogs("a" * 16, ["line"])
    db.addPilotLogs("b" * 16, ["line"])
    pilotIDs = [db.getPilotInfo(ref)[ref]["PilotID"] for ref in refs]
    assert db.deletePilots([pilotIDs[0], 4242]) == [pilotIDs[0]]
    assert db.selectPilots() == [refs[1]]
    assert db.getPilotsForJobID(10) == [] and db.getPilotLogs("a" * 16) == []
    assert db.getPilotLogStream("a" * 16) is None and db.getPilotLogs("b" * 16) != []
    assert db.deletePilot(refs[1]) == [pilotIDs[1]]
    assert db.selectPilots() == []


def test_pilotIDsAreNeverGivenTwice_evenAfterTheNewestPilotIsDeleted(db) -> None:
    [ref] = register(db, "a" * 16)
    first = db.getPilotInfo(ref)[ref]["PilotID"]
    assert db.deletePilot(ref) == [first]
    [ref] = register(db, "b" * 16)
    assert db.getPilotInfo(ref)[ref]["PilotID"] > first


def test_clearPilots_deletesOldPilotsOldAbortedPilotsAndStaleOrphanLogs(db) -> None:
    refs = register(db, "a" * 16, "b" * 16, "c" * 16, "d" * 16)
    age(db, refs[0], 40)
    db.setPilotStatus(refs[1], "Aborted")
    age(db, refs[1], 10)
    age(db, refs[2], 10)  # not aborted: kept 30 days
    db.addPilotLogs("9" * 16, ["orphan"])
    db.addPilotLogs("8" * 16, ["recent orphan"])
    with db.transaction() as conn:
        conn.execute(update(db.pilotLogStreams).where(db.pilotLogStreams.c.PilotStamp == "9" * 16)
                     .values(LastUpdateTime=utcnow() - timedelta(days=40)))
    deleted = db.clearPilots(interval=30, aborted_interval=7)
    assert len(deleted) == 2
    assert db.selectPilots() == refs[2:]
    assert db.getPilotLogStream("9" * 16) is None and db.getPilotLogStream("8" * 16) is not None


def test_toUTC_readsDatesStringsAndNaiveDatetimesAsUTC() -> None:
    assert toUTC("") is None and toUTC(None) is None
    assert toUTC("2024-05-01").isoformat() == "2024-05-01T00:00:00+00:00"
    assert toUTC("2024-05-01 10:20:30").hour == 10
    with pytest.raises(InvalidArgument, match="not a date"):
        toUTC("yesterday")
