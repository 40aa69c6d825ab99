"""The matcher: one test per matching rule, fair share, priorities, and exactly-once under concurrency."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.WorkloadManagementSystem.Logic.Exceptions import NoMatchFound
from dirac.WorkloadManagementSystem.Logic.JobState import setJobStatus
from dirac.WorkloadManagementSystem.Logic.Matcher import Matcher

RESOURCE = {"Site": "LCG.CERN.ch", "GridCE": "ce1.cern.ch", "CPUTime": 86400, "NumberOfProcessors": 1,
            "Platform": "x86_64-el9", "Tag": []}


def _matcher(wms, seed: int = 1) -> Matcher:
    return Matcher(wms.jobDB, wms.loggingDB, wms.tqDB, rng=random.Random(seed))


def _matches(wms, resource: dict, **changes: object) -> bool:
    """Whether a request from ``resource`` updated by ``changes`` gets a job."""
    try:
        _matcher(wms).requestJob({**resource, **changes})
    except NoMatchFound:
        return False
    return True


def test_matchedJobIsClaimedOnceLoggedAndItsQueueCleaned(wms, makeJDL) -> None:
    [jobID] = wms.submitWaiting(makeJDL(JobName="one"))
    match = _matcher(wms).requestJob(RESOURCE)
    assert match["JobID"] == jobID and match["Owner"] == "alice" and "JobName = \"one\"" in match["JDL"]
    assert wms.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus", "Site"]) == {
        "Status": "Matched", "MinorStatus": "Assigned", "Site": "LCG.CERN.ch"}
    assert wms.loggingDB.getJobLoggingInfo(jobID)[-1]["Source"] == "Matcher"
    assert wms.tqDB.retrieveTaskQueues() == {}
    with pytest.raises(NoMatchFound, match="No match found for the resource at LCG.CERN.ch"):
        _matcher(wms).requestJob(RESOURCE)


def test_siteRestrictsWhereTheJobRuns(wms, makeJDL) -> None:
    wms.submitWaiting(makeJDL(Site=["LCG.PIC.es", "LCG.RAL.uk"]))
    assert not _matches(wms, RESOURCE)
    assert _matches(wms, RESOURCE, Site="LCG.RAL.uk")


def test_bannedSiteIsNeverMatched(wms, makeJDL) -> None:
    wms.submitWaiting(makeJDL(BannedSites=["LCG.CERN.ch"]))
    assert not _matches(wms, RESOURCE)
    assert _matches(wms, RESOURCE, Site="LCG.PIC.es")


def test_platformMustBeOfferedByTheResource(wms, makeJDL) -> None:
    wms.submitWaiting(makeJDL(Platform="x86_64-el9"))
    assert not _matches(wms, RESOURCE, Platform="x86_64-el8")
    assert not _matches(wms, {key: value for key, value in RESOURCE.items() if key != "Platform"})
    assert _matches(wms, RESOURCE, Platform=["x86_64-el8", "x86_64-el9"])


def test_jobTagsMustAllBeOfferedByTheResource(wms, makeJDL) -> None:
    wms.submitWaiting(makeJDL(Tags=["GPU", "Fast"]))
    assert not _matches(wms, RESOURCE, Tag=["GPU"])
    assert _matches(wms, RESOURCE, Tag=["Fast", "GPU", "Other"])


def test_requiredTagsOfTheResourceMustBeAskedByTheJob(wms, makeJDL) -> None:
    [plain] = wms.submitWaiting(makeJDL())
    [gpu] = wms.submitWaiting(makeJDL(Tags=["GPU"]))
    gpuOnly = {**RESOURCE, "Tag": ["GPU"], "RequiredTag": ["GPU"]}
    assert _matcher(wms).requestJob(gpuOnly)["JobID"] == gpu
    assert not _matches(wms, gpuOnly)
    assert _matcher(wms).requestJob(RESOURCE)["JobID"] == plain


def test_cpuTimeOfTheQueueMustFitTheResource(wms, makeJDL) -> None:
    wms.submitWaiting(makeJDL(CPUTime=3000))  # queued in the 3600 s bucket
    assert not _matches(wms, RESOURCE, CPUTime=3000)
    assert _matches(wms, RESOURCE, CPUTime=3600)


def test_processorsOfTheJobMustFitTheResource(wms, makeJDL) -> None:
    [single] = wms.submitWaiting(makeJDL())
    [multi] = wms.submitWaiting(makeJDL(NumberOfProcessors=4))
    got = {_matcher(wms).requestJob({**RESOURCE, "NumberOfProcessors": 2})["JobID"]}
    assert got == {single}
    assert _matcher(wms).requestJob({**RESOURCE, "NumberOfProcessors": 8})["JobID"] == multi


def test_ownerGroupAndVOLimitsOfTheResource(wms, makeJDL) -> None:
    [user] = wms.submitWaiting(makeJDL())
    [prod] = wms.submitWaiting(makeJDL(), owner="prodbot", group="dirac_prod")
    assert _matcher(wms).requestJob({**RESOURCE, "OwnerGroup": "dirac_prod"})["JobID"] == prod
    assert not _matches(wms, RESOURCE, OwnerGroup="dirac_prod")
    assert not _matches(wms, RESOURCE, VO="lhcb")
    assert _matcher(wms).requestJob({**RESOURCE, "VO": ["dirac"], "Owner": "alice"})["JobID"] == user


def test_gridCEOfTheJobMustBeTheResources(wms, makeJDL) -> None:
    wms.submitWaiting(makeJDL(GridCE="ce2.cern.ch"))
    assert not _matches(wms, RESOURCE)
    assert _matches(wms, RESOURCE, GridCE="ce2.cern.ch")


def test_priorityOrdersJobsWithinATaskQueue(wms, makeJDL) -> None:
    low = wms.submitWaiting(makeJDL(Priority=1))
    high = wms.submitWaiting(makeJDL(Priority=5))
    middle = wms.submitWaiting(makeJDL(Priority=3))
    assert len(wms.tqDB.retrieveTaskQueues()) == 1
    assert [_matcher(wms).requestJob(RESOURCE)["JobID"] for _ in range(3)] == high + middle + low


def test_fairShareBetweenGroupsFollowsJobShare(wms, makeJDL) -> None:
    gConfig.initialize(options={"/Registry/Groups/dirac_user/JobShare": "3",
                                "/Registry/Groups/dirac_prod/JobShare": "1"}, fetchRemote=False)
    wms.submitWaiting(makeJDL(Parameters=150))
    wms.submitWaiting(makeJDL(Parameters=150), owner="prodbot", group="dirac_prod")
    matcher = _matcher(wms, seed=7)
    groups = Counter(matcher.requestJob(RESOURCE)["OwnerGroup"] for _ in range(160))
    assert groups["dirac_user"] / 160 == pytest.approx(0.75, abs=0.08), groups


def test_fairShareBetweenUsersOfAGroupFollowsTheirJobShare(wms, makeJDL) -> None:
    gConfig.initialize(options={"/Registry/Users/bob/JobShare": "4"}, fetchRemote=False)
    wms.submitWaiting(makeJDL(Parameters=150), owner="alice")
    wms.submitWaiting(makeJDL(Parameters=150, CPUTime=600), owner="bob")
    wms.submitWaiting(makeJDL(Parameters=150, CPUTime=60000), owner="bob")  # bob's share spans two queues
    matcher = _matcher(wms, seed=3)
    owners = Counter(matcher.requestJob(RESOURCE)["Owner"] for _ in range(160))
    assert owners["bob"] / 160 == pytest.approx(0.8, abs=0.08), owners


def test_jobNoLongerWaitingIsSkipped(wms, makeJDL) -> None:
    killed, waiting = wms.submitWaiting(makeJDL(Parameters=2, Priority=2))
    setJobStatus(wms.jobDB, wms.loggingDB, killed, "Killed", source="Test")
    assert _matcher(wms).requestJob(RESOURCE)["JobID"] == waiting
    assert wms.jobDB.getJobAttribute(killed, "Status") == "Killed"
    assert not _matches(wms, RESOURCE)


def test_badResourceDescriptionIsAClearError(wms) -> None:
    with pytest.raises(InvalidArgument, match="lacks Site"):
        _matcher(wms).requestJob({"CPUTime": 100})
    with pytest.raises(InvalidArgument, match="must be integers"):
        _matcher(wms).requestJob({"Site": "A", "CPUTime": "lots"})


def test_concurrentRequestsMatchEveryJobExactlyOnce(wms, makeJDL, request) -> None:
    perQueue = 50 if wms.jobDB.isMySQL else 10
    jobIDs = []
    for n, (owner, group) in enumerate([("alice", "dirac_user"), ("bob", "dirac_user"), ("carol", "dirac_user"),
                                        ("prodbot", "dirac_prod")]):
        for cpu in (300, 1000, 3000, 10000, 20000, 40000, 80000, 150000, 250000, 400000):
            jobIDs += wms.submit(makeJDL(Parameters=perQueue, CPUTime=cpu, Priority=n), owner, group)
    from dirac.WorkloadManagementSystem.Logic.JobSubmission import scheduleJobs
    scheduleJobs(wms.jobDB, wms.loggingDB, wms.tqDB, jobIDs)
    assert len(wms.tqDB.retrieveTaskQueues()) == 40
    matched: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def pilot(seed: int) -> None:
        matcher = _matcher(wms, seed)
        try:
            while True:
                jobID = matcher.requestJob({**RESOURCE, "CPUTime": 500000})["JobID"]
                with lock:
                    matched.append(jobID)
        except NoMatchFound:
            return
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    start = time.monotonic()
    threads = [threading.Thread(target=pilot, args=(seed,)) for seed in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert len(matched) == len(set(matched)) == len(jobIDs), (len(matched), len(set(matched)), len(jobIDs))
    assert sorted(matched) == sorted(jobIDs)
    assert wms.jobDB.getCounters(["Status"]) == [({"Status": "Matched"}, len(jobIDs))]
    assert wms.tqDB.retrieveTaskQueues() == {}
    assert all([r["Status"] for r in wms.loggingDB.getJobLoggingInfo(j)].count("Matched") == 1 for j in jobIDs[::97])
    request.node.user_properties.append(("matches_per_second", len(jobIDs) / (time.monotonic() - start)))


# -- the candidates cache ---------------------------------------------------------------------------------------------
class CountingTaskQueueDB:
    """The real TaskQueueDB, counting the eligibility queries made through it."""

    def __init__(self, tqDB) -> None:
        self.tqDB = tqDB
        self.lookups = 0

    def matchingTaskQueues(self, resource):
        self.lookups += 1
        return self.tqDB.matchingTaskQueues(resource)

    def __getattr__(self, name):
        return getattr(self.tqDB, name)


def test_cachedCandidates_spareTheEligibilityQuery_untilAQueueIsCreated(wms, makeJDL) -> None:
    counting = CountingTaskQueueDB(wms.tqDB)
    matcher = Matcher(wms.jobDB, wms.loggingDB, counting, rng=random.Random(1), candidatesCacheTime=60)
    first = wms.submitWaiting(makeJDL(Parameters=3, ParameterStart=0, ParameterStep=1, Arguments="%s"))
    assert [matcher.requestJob(RESOURCE)["JobID"] for _ in range(2)] and counting.lookups == 1
    [bob] = wms.submitWaiting(makeJDL(), owner="bob")  # a new task queue: seen at once
    matched = {matcher.requestJob(RESOURCE)["JobID"] for _ in range(2)}
    assert counting.lookups == 2 and bob in matched and matched - {bob} <= set(first)
    with pytest.raises(NoMatchFound):  # the cached queues are empty: looked up afresh, nothing left
        matcher.requestJob(RESOURCE)
    assert counting.lookups == 3


def test_cachedCandidates_neverHandATaggedJobToAnUntaggedResource_whenAnEmptiedQueueIdIsReused(wms, makeJDL) -> None:
    # the untagged queue is the newest; emptied by a pilot of another shape, it stays in RESOURCE's cache,
    # so its TQId must never come back for another queue
    matcher = Matcher(wms.jobDB, wms.loggingDB, wms.tqDB, rng=random.Random(1), candidatesCacheTime=60)
    plain = wms.submitWaiting(makeJDL(Parameters=2))
    assert matcher.requestJob(RESOURCE)["JobID"] in plain  # the candidates of RESOURCE are cached
    assert matcher.requestJob({**RESOURCE, "GridCE": "ce2.cern.ch"})["JobID"] in plain
    assert wms.tqDB.retrieveTaskQueues() == {}
    tagged = wms.submitWaiting(makeJDL(Tags=["MultiCoreTest"], Parameters=2))
    with pytest.raises(NoMatchFound):
        matcher.requestJob(RESOURCE)
    assert {wms.jobDB.getJobAttributes(jobID, ["Status"])["Status"] for jobID in tagged} == {"Waiting"}
    assert matcher.requestJob({**RESOURCE, "Tag": ["MultiCoreTest"]})["JobID"] in tagged


def test_withoutCache_everyRequestLooksUpItsQueues(wms, makeJDL) -> None:
    counting = CountingTaskQueueDB(wms.tqDB)
    matcher = Matcher(wms.jobDB, wms.loggingDB, counting)
    wms.submitWaiting(makeJDL(Parameters=2, ParameterStart=0, ParameterStep=1, Arguments="%s"))
    matcher.requestJob(RESOURCE)
    matcher.requestJob(RESOURCE)
    assert counting.lookups == 2


# -- the hot path: one claim transaction, one status transaction ---------------------------------------------------
def test_claimFirstJob_takesFromTheFirstQueueWithAJob_andRemovesTheEmptiedOnes(wms, makeJDL) -> None:
    [single] = wms.submitWaiting(makeJDL(), owner="alice")
    pair = wms.submitWaiting(makeJDL(Parameters=2), owner="bob")
    tqOf = {jobID: wms.tqDB.getTaskQueueForJob(jobID) for jobID in [single, *pair]}
    claim = wms.tqDB.claimFirstJob([tqOf[single], tqOf[pair[0]]])
    assert (claim.jobID, claim.priority, claim.tqID, claim.newest) == (single, 1, tqOf[single], None)
    assert claim.emptied == [tqOf[single]]
    assert set(wms.tqDB.retrieveTaskQueues()) == {tqOf[pair[0]]}
    claim = wms.tqDB.claimFirstJob([tqOf[single], tqOf[pair[0]]], then=lambda conn, jobID: f"then {jobID}")
    assert (claim.jobID, claim.tqID, claim.outcome) == (pair[0], tqOf[pair[0]], f"then {pair[0]}")
    assert claim.emptied == [tqOf[single]]  # the first gone, the second left


def test_claimFirstJob_claimsNothingWhenATaskQueueWasCreatedSince(wms, makeJDL) -> None:
    [first] = wms.submitWaiting(makeJDL())
    newest = wms.tqDB.newestTaskQueueID()
    wms.submitWaiting(makeJDL(), owner="bob")
    tq = wms.tqDB.getTaskQueueForJob(first)
    claim = wms.tqDB.claimFirstJob([tq], newest=newest, then=lambda conn, jobID: pytest.fail("nothing to claim"))
    assert (claim.jobID, claim.newest, claim.emptied) == (None, wms.tqDB.newestTaskQueueID(), [])
    assert wms.tqDB.getTaskQueueForJob(first) == tq


def test_setJobMatched_dropsOldCommandsLogsOnce_andRefusesAJobNoLongerWaiting(wms, makeJDL) -> None:
    from dirac.WorkloadManagementSystem.Logic.Exceptions import StatusConflict
    from dirac.WorkloadManagementSystem.Logic.JobState import setJobMatched

    jobID, killed = wms.submitWaiting(makeJDL(Parameters=2))
    wms.jobDB.setJobCommand(jobID, "Kill")
    jdl = setJobMatched(wms.jobDB, wms.loggingDB, jobID, "LCG.CERN.ch", source="Matcher/test")
    assert "/bin/true" in jdl and wms.jobDB.popJobCommands(jobID) == {}
    attributes = wms.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus", "Site"])
    assert attributes == {"Status": "Matched", "MinorStatus": "Assigned", "Site": "LCG.CERN.ch"}
    last = wms.loggingDB.getJobLoggingInfo(jobID)[-1]
    assert (last["Status"], last["MinorStatus"], last["Source"]) == ("Matched", "Assigned", "Matcher/test")
    setJobStatus(wms.jobDB, wms.loggingDB, killed, "Killed", source="Test")
    with pytest.raises(StatusConflict, match="no longer Waiting"):
        setJobMatched(wms.jobDB, wms.loggingDB, killed, "LCG.CERN.ch")
    assert wms.jobDB.getJobAttribute(killed, "Status") == "Killed"


@pytest.fixture
def separateWMS(db_url: str):  # noqa: ANN201
    """The three databases apart, as an installation has them: SQLite files, or databases of one MariaDB server."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from dirac.Core.Base.DB import disposeEngines
    from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
    from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
    from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
    from tests.unit.WorkloadManagementSystem.conftest import WMS

    base = make_url(db_url)
    urls = [base.set(database=f"{base.database}{suffix}").render_as_string(hide_password=False)
            if base.get_backend_name() == "mysql" else db_url.replace(".sqlite", f"{suffix}.sqlite")
            for suffix in ("_jobs", "_logging")]
    yield WMS(JobDB(urls[0]), JobLoggingDB(urls[1]), TaskQueueDB(db_url))
    for url in urls:
        disposeEngines(url)
        if base.get_backend_name() == "mysql":
            server = create_engine(base.set(database=""), poolclass=NullPool)
            with server.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{make_url(url).database}`")
            server.dispose()


def test_databasesApart_oneTransactionOnOneMariaDBServer_threeOnSQLiteFiles(separateWMS, makeJDL) -> None:
    wms = separateWMS
    jobIDs = wms.submitWaiting(makeJDL(Parameters=3))
    wms.jobDB.setJobCommand(jobIDs[0], "Kill")
    matcher = _matcher(wms)
    assert matcher.oneTransaction is wms.jobDB.isMySQL
    matched = sorted(matcher.requestJob(RESOURCE, source="Matcher/apart")["JobID"] for _ in jobIDs)
    assert matched == sorted(jobIDs) and wms.tqDB.retrieveTaskQueues() == {}
    assert wms.jobDB.getCounters(["Status", "MinorStatus"]) == [({"Status": "Matched", "MinorStatus": "Assigned"}, 3)]
    assert wms.jobDB.popJobCommands(jobIDs[0]) == {}
    assert all(wms.loggingDB.getJobLoggingInfo(j)[-1]["Source"] == "Matcher/apart" for j in jobIDs)
