"""The RequestExecutingAgent on SQLite and MariaDB with handlers plugged in through the CS: operations in order,
retries with back-off, MaxAttempts, permanent failures, a request canceled while it runs, handlers that cannot
run, stuck requests kicked back, and several agents at once executing every request exactly once."""

from __future__ import annotations

import datetime
from collections import Counter

import pytest

from dirac.Core.Config import gConfig
from dirac.RequestManagementSystem.Agent.RequestExecutingAgent import RequestExecutingAgent
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.RequestManagementSystem.DB.RequestDB import RequestDB
from tests.concurrency import runAtOnce

from . import RMSTestHandlers
from .RMSTestHandlers import RUNS

SECTION = "/Systems/RequestManagement/Agents/RequestExecutingAgent"
HANDLERS = {name: f"tests.unit.RequestManagementSystem.RMSTestHandlers:{name}"
            for name in ("Recording", "Flaky", "Broken", "CanceledMeanwhile", "Raising")}


@pytest.fixture(autouse=True)
def handlers() -> None:
    options = {f"{SECTION}/OperationHandlers/{name}/Location": location for name, location in HANDLERS.items()}
    options.update({f"{SECTION}/OperationHandlers/Flaky/MaxAttempts": "5", f"{SECTION}/RetryDelay": "10",
                    f"{SECTION}/MaxRetryDelay": "15"})
    gConfig.initialize(cfgFiles=[], options=options, fetchRemote=False)
    RUNS.clear()


def request(*types: str, files: int = 1, name: str = "r") -> Request:
    made = Request(RequestName=name, Owner="bob", OwnerGroup="dirac_user")
    for order, opType in enumerate(types):
        operation = Operation(Type=opType, Arguments="n" if not files else "")
        for index in range(files):
            operation.addFile(File(LFN=f"/dirac/user/b/bob/{name}/{order}-{opType}{index}"))
        made.addOperation(operation)
    return made


def agentOn(url: str) -> RequestExecutingAgent:
    agent = RequestExecutingAgent(requestDB=RequestDB(url), credentials=object())
    agent.initialize()
    return agent


def makeDue(db: RequestDB, requestID: int) -> None:
    """Skip the back-off: the request is due now."""
    stored = db.peekRequest(requestID)
    stored.NotBefore = stored.NotBefore - datetime.timedelta(hours=1)
    assert db.updateRequest(stored, {"Waiting"})


def test_operations_run_in_order_and_the_request_is_done(db_url: str) -> None:
    db = RequestDB(db_url)
    requestID = db.putRequest(request("Recording", "Recording", files=2))
    summary = agentOn(db_url).execute()
    assert summary.startswith("requests: 1 Done")
    assert [lfn for _, _, lfn in RUNS] == [f"/dirac/user/b/bob/r/{o}-Recording{i}" for o, i in ((0, 0), (0, 1), (1, 0), (1, 1))]
    done = db.peekRequest(requestID)
    assert db.getRequestStatus(requestID) == "Done" and done.Status == "Done" and done.Error == ""
    assert [f.Attempt for op in done for f in op] == [1, 1, 1, 1]


def test_a_passing_failure_is_retried_after_a_growing_delay_until_it_succeeds(db_url: str) -> None:
    db = RequestDB(db_url)
    requestID = db.putRequest(request("Flaky", "Recording"))
    agent = agentOn(db_url)
    for attempt, delay in ((1, 10), (2, 15)):  # RetryDelay 10 s, doubling, at most MaxRetryDelay 15 s
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        assert agent.execute().startswith("requests: 1 Waiting")
        stored = db.peekRequest(requestID)
        assert (db.getRequestStatus(requestID), stored[0][0].Attempt) == ("Waiting", attempt)
        assert stored.Error == "/dirac/user/b/bob/r/0-Flaky0: SE-X is not available (connection refused)"
        assert delay <= (stored.NotBefore - before).total_seconds() <= delay + 2
        assert agent.execute() == "requests: none due; 0 kicked; 0 job(s) finalized", "not due before its delay"
        makeDue(db, requestID)
    assert agent.execute().startswith("requests: 1 Done")
    assert [opType for _, opType, _ in RUNS] == ["Recording"], "the next operation ran once the first was Done"


def test_a_file_still_failing_after_max_attempts_fails_the_request(db_url: str) -> None:
    gConfig.initialize(options={f"{SECTION}/OperationHandlers/Flaky/MaxAttempts": "2"})
    db = RequestDB(db_url)
    requestID = db.putRequest(request("Flaky", "Recording"))
    agent = agentOn(db_url)
    agent.execute()
    makeDue(db, requestID)
    agent.execute()
    failed = db.peekRequest(requestID)
    assert db.getRequestStatus(requestID) == "Failed" and failed[0][0].Status == "Failed"
    assert failed[0][0].Error == "SE-X is not available (connection refused) (Failed after 2 attempts)"
    assert failed[1].Status == "Queued" and RUNS == [], "nothing runs after a failed operation"


def test_a_permanent_failure_fails_at_once(db_url: str) -> None:
    db = RequestDB(db_url)
    requestID = db.putRequest(request("Broken", "Recording", files=2))
    assert agentOn(db_url).execute().startswith("requests: 1 Failed")
    failed = db.peekRequest(requestID)
    assert [f.Status for f in failed[0]] == ["Failed", "Failed"] and [f.Attempt for f in failed[0]] == [1, 1]
    assert failed.Error == "/dirac/user/b/bob/r/0-Broken0: No such file or directory"


def test_a_request_canceled_while_it_runs_stays_canceled(db_url: str) -> None:
    db = RequestDB(db_url)
    RMSTestHandlers.CanceledMeanwhile.db = db
    requestID = db.putRequest(request("CanceledMeanwhile"))
    assert agentOn(db_url).execute().startswith("requests: 1 Canceled")
    assert db.getRequestStatus(requestID) == "Canceled"
    assert db.peekRequest(requestID)[0][0].Status == "Waiting", "the agent's outcome was not written"


@pytest.mark.parametrize(("opType", "error"), [
    ("Raising", "NotFound: a bug in the handler"),
    ("Unknown", "no handler for operation type Unknown"),
])
def test_a_handler_that_cannot_run_leaves_the_request_waiting_with_the_reason(db_url: str, opType: str,
                                                                              error: str) -> None:
    db = RequestDB(db_url)
    requestID = db.putRequest(request(opType))
    assert agentOn(db_url).execute().startswith("requests: 1 Waiting")
    stored = db.peekRequest(requestID)
    assert db.getRequestStatus(requestID) == "Waiting" and stored.Error.startswith(error)
    assert stored.NotBefore > datetime.datetime.now(datetime.UTC)


def test_a_request_its_agent_left_assigned_is_kicked_back_and_executed(db_url: str) -> None:
    gConfig.initialize(options={f"{SECTION}/KickGraceTime": "0"})
    db = RequestDB(db_url)
    requestID = db.putRequest(request("Recording"))
    assert db.getRequests(1)[0].RequestID == requestID  # an agent claimed it and died
    summary = agentOn(db_url).execute()
    assert "1 kicked" in summary and summary.startswith("requests: 1 Done")


@pytest.mark.parametrize("agents", [2, 3])
def test_several_agents_at_once_execute_every_request_exactly_once(db_url: str, agents: int) -> None:
    db = RequestDB(db_url)
    ids = [db.putRequest(request("Recording", "Recording", name=f"r{index}")) for index in range(30)]
    runAtOnce(agentOn(db_url).execute for _ in range(agents))
    runs = Counter((requestID, lfn) for requestID, _, lfn in RUNS)
    assert len(runs) == 60 and set(runs.values()) == {1}, "an operation ran twice or never"
    assert {requestID for requestID, _ in runs} == set(ids)
    assert db.getDBSummary()["Request"] == {"Done": 30}
