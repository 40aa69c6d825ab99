"""The job optimizers: each check fails the jobs it must with its minor status; good jobs end Waiting in their queue."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from sqlalchemy import update

from dirac.Core.Base.DB import utcnow
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError
from dirac.WorkloadManagementSystem.Agent.OptimizerAgent import OptimizerAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.Executor.InputData import InputData
from dirac.WorkloadManagementSystem.Executor.JobSanity import JobSanity
from dirac.WorkloadManagementSystem.Executor.JobScheduling import JobScheduling
from dirac.WorkloadManagementSystem.Logic import Optimization
from dirac.WorkloadManagementSystem.Logic.Exceptions import InvalidJDL
from dirac.WorkloadManagementSystem.Logic.JobState import setJobStatus
from dirac.WorkloadManagementSystem.Logic.Optimization import (
    OptimizationTask,
    OptimizerEnvironment,
    claimJobsToOptimize,
    optimizeJobs,
    parseStoredJDL,
)

SE = "ProductionSandboxSE"
SITES = {"LCG.CERN.ch": "CERN-DISK", "LCG.PIC.es": "PIC-DISK", "LCG.RAL.uk": "RAL-DISK"}


class Catalog:
    """A file catalog in memory, behind the same resolver interface as the File Catalog client."""

    def __init__(self, replicas: Mapping[str, Sequence[str]] | None = None, error: str = ""):
        self.replicas = dict(replicas or {})
        self.error = error
        self.calls = 0

    def __call__(self, lfns: Sequence[str]) -> dict[str, list[str]]:
        self.calls += 1
        if self.error:
            raise DiracError(self.error)
        return {lfn: list(self.replicas[lfn]) for lfn in lfns if lfn in self.replicas}


@pytest.fixture
def sandboxDB(db_url: str) -> SandboxMetadataDB:
    return SandboxMetadataDB(db_url)


def _configureSites(**extra: str) -> None:
    options = {f"/Resources/Sites/LCG/{site}/SE": se for site, se in SITES.items()}
    gConfig.initialize(options={**options, **extra}, fetchRemote=False)


def _agent(wms, sandboxDB, catalog=None) -> OptimizerAgent:
    return OptimizerAgent(jobDB=wms.jobDB, loggingDB=wms.loggingDB, taskQueueDB=wms.tqDB, sandboxDB=sandboxDB,
                          replicaResolver=catalog)


def _runOnce(wms, sandboxDB, catalog=None) -> OptimizerAgent:
    agent = _agent(wms, sandboxDB, catalog)
    agent.run(once=True)
    assert agent.failedCycles == 0
    return agent


def _state(wms, jobID: int) -> tuple[str, str]:
    attributes = wms.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus"])
    return attributes["Status"], attributes["MinorStatus"]


def _trail(wms, jobID: int) -> list[str]:
    return [record["Status"] for record in wms.loggingDB.getJobLoggingInfo(jobID)]


def _assertFailed(wms, jobID: int, minorStatus: str, detail: str = "") -> None:
    attributes = wms.jobDB.getJobAttributes(jobID, ["Status", "MinorStatus", "ApplicationStatus"])
    assert (attributes["Status"], attributes["MinorStatus"]) == (JobStatus.FAILED, minorStatus)
    assert detail in attributes["ApplicationStatus"]
    assert _trail(wms, jobID) == [JobStatus.RECEIVED, JobStatus.CHECKING, JobStatus.FAILED]
    assert wms.tqDB.getTaskQueueForJob(jobID) is None


def _sandbox(sandboxDB, owner: str = "alice", group: str = "dirac_user", name: str = "sb1") -> str:
    sandboxDB.registerAndGetSandbox(owner, group, "dirac", SE, f"/{owner}/{name}.tar.bz2", 100)
    return f"SB:{SE}|/{owner}/{name}.tar.bz2"


# -- the whole chain ------------------------------------------------------------------------------------------------
def test_goodJob_endsWaitingInTheTaskQueueOfItsRequirements_loggedReceivedCheckingWaiting(wms, sandboxDB,
                                                                                          makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(CPUTime=3000, Site=["LCG.CERN.ch", "LCG.PIC.es"]))
    _runOnce(wms, sandboxDB)
    assert _state(wms, jobID) == (JobStatus.WAITING, JobMinorStatus.PILOT_AGENT_SUBMISSION)
    history = wms.loggingDB.getJobLoggingInfo(jobID)
    assert [(r["Status"], r["MinorStatus"], r["Source"]) for r in history] == [
        (JobStatus.RECEIVED, "Job accepted", "JobManager"), (JobStatus.CHECKING, "JobSanity", "Optimizers"),
        (JobStatus.WAITING, JobMinorStatus.PILOT_AGENT_SUBMISSION, "JobScheduling")]
    tqID = wms.tqDB.getTaskQueueForJob(jobID)
    queue = wms.tqDB.retrieveTaskQueues([tqID])[tqID]
    assert (queue["Owner"], queue["OwnerGroup"], queue["CPUTime"], queue["Sites"], queue["Jobs"]) == (
        "alice", "dirac_user", 3600, ["LCG.CERN.ch", "LCG.PIC.es"], 1)
    assert wms.jobDB.getJobAttribute(jobID, "Site") == "Multiple"


def test_jobsOfTheSameRequirementsShareATaskQueue_andAnySiteJobIsSiteANY(wms, sandboxDB, makeJDL) -> None:
    jobIDs = wms.submit(makeJDL(Parameters=5))
    [other] = wms.submit(makeJDL(CPUTime=100))
    _runOnce(wms, sandboxDB)
    assert len({wms.tqDB.getTaskQueueForJob(jobID) for jobID in jobIDs}) == 1
    assert wms.tqDB.getTaskQueueForJob(other) not in {wms.tqDB.getTaskQueueForJob(jobIDs[0]), None}
    assert {wms.jobDB.getJobAttribute(jobID, "Site") for jobID in [*jobIDs, other]} == {"ANY"}


def test_agentRunOnce_withNothingToDo_isAQuietSuccessfulCycle(wms, sandboxDB) -> None:
    agent = _runOnce(wms, sandboxDB)
    assert agent.cycles == 1 and agent.execute() == "no job to check"


def test_batchSize_limitsAClaimButACycleChecksEveryJob(wms, sandboxDB, makeJDL) -> None:
    gConfig.initialize(options={"/Systems/WorkloadManagement/Agents/Optimizers/BatchSize": "3"}, fetchRemote=False)
    jobIDs = wms.submit(makeJDL(Parameters=7))
    _runOnce(wms, sandboxDB)
    assert {_state(wms, jobID)[0] for jobID in jobIDs} == {JobStatus.WAITING}
    claims = {record["StatusTime"] for jobID in jobIDs for record in wms.loggingDB.getJobLoggingInfo(jobID)
              if record["Status"] == JobStatus.CHECKING}
    assert len(claims) == 3  # batches of 3, 3 and 1 jobs


# -- JobSanity ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stored", ["this is not a JDL", "[ Executable = ", "[]",
                                    '[ Executable = "/bin/echo"; Arguments = "x[1]"; ]',
                                    '[ Executable = "/bin/true"; JobRequirements = [ Owner = "alice" ] ]'])
def test_unparseableStoredJDL_failsTheJobAsIllegalJobJDL(wms, sandboxDB, makeJDL, stored: str) -> None:
    [jobID] = wms.submit(makeJDL())
    wms.jobDB.setJobJDL(jobID, stored)
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, JobMinorStatus.ILLEGAL_JOB_JDL, "malformed JDL")


def test_undecodableStoredJDL_failsOnlyThatJob(wms, sandboxDB, makeJDL) -> None:
    bad, good = wms.submit(makeJDL(Parameters=2))
    wms.jobDB.setJobJDL(bad, "bm90IHpsaWI=")  # base64 of text that is not zlib data
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, bad, JobMinorStatus.ILLEGAL_JOB_JDL, "cannot be decoded")
    assert _state(wms, good)[0] == JobStatus.WAITING


def test_jobWithoutExecutable_fails(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL())
    wms.jobDB.setJobJDL(jobID, wms.jobDB.getJobJDL(jobID).replace('Executable = "/bin/true";', ""))
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, Optimization.NO_EXECUTABLE)


def test_inputSandboxes_areAssignedToTheJobAsInput_andLFNsAreLeftToTheWrapper(wms, sandboxDB, makeJDL) -> None:
    first, second = _sandbox(sandboxDB, name="a"), _sandbox(sandboxDB, name="b")
    jobIDs = wms.submit(makeJDL(Parameters=2, InputSandbox=[first, second, "LFN:/dirac/user/a/alice/x.tar"]))
    _runOnce(wms, sandboxDB)
    for jobID in jobIDs:
        assert _state(wms, jobID)[0] == JobStatus.WAITING
        assigned = sandboxDB.getSandboxesAssignedToEntity(f"Job:{jobID}")
        assert [(sb["SEName"], sb["SEPFN"], sb["Type"]) for sb in assigned] == [
            (SE, "/alice/a.tar.bz2", "Input"), (SE, "/alice/b.tar.bz2", "Input")]


def test_unregisteredInputSandbox_failsTheJobAndNothingIsAssigned(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(InputSandbox=[_sandbox(sandboxDB), f"SB:{SE}|/alice/never-uploaded.tar.bz2"]))
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, Optimization.INPUT_SANDBOX_NOT_REGISTERED, "never-uploaded.tar.bz2")
    assert sandboxDB.getSandboxesAssignedToEntity(f"Job:{jobID}") == []


def test_inputSandboxOfAnotherOwner_failsTheJob(wms, sandboxDB, makeJDL) -> None:
    [byBob] = wms.submit(makeJDL(InputSandbox=[_sandbox(sandboxDB, owner="bob")]))
    [otherGroup] = wms.submit(makeJDL(InputSandbox=[_sandbox(sandboxDB, group="dirac_prod", name="p")]))
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, byBob, Optimization.INPUT_SANDBOX_NOT_OWNED, "belongs to bob@dirac_user")
    _assertFailed(wms, otherGroup, Optimization.INPUT_SANDBOX_NOT_OWNED, "belongs to alice@dirac_prod")
    assert sandboxDB.getSandboxesAssignedToEntity(f"Job:{byBob}") == []


def test_jobSanityAlone_checksTasksWithoutADatabaseForJobs(sandboxDB) -> None:
    tasks = [OptimizationTask(1, {"Owner": "alice", "OwnerGroup": "dirac_user"}, "", jdlError="malformed JDL: x"),
             OptimizationTask(2, {"Owner": "alice", "OwnerGroup": "dirac_user"}, "",
                              classAd=parseStoredJDL('[ Executable = "/bin/true"; JobRequirements = [ A = 1; ]; ]'))]
    JobSanity(sandboxDB).optimize(tasks)
    assert tasks[0].failure.minorStatus == JobMinorStatus.ILLEGAL_JOB_JDL and tasks[1].active


# -- InputData ------------------------------------------------------------------------------------------------------
def test_inputDataWithoutAFileCatalog_failsSayingSo(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(InputData=["/dirac/data/f1"]))
    [plain] = wms.submit(makeJDL())
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, Optimization.NO_FILE_CATALOG, "/Systems/DataManagement/URLs/FileCatalog")
    assert _state(wms, plain)[0] == JobStatus.WAITING


def test_inputData_narrowsTheSitesOfTheJobAndItsTaskQueueToThoseHoldingAllFiles(wms, sandboxDB, makeJDL) -> None:
    _configureSites()
    catalog = Catalog({"/dirac/data/f1": ["CERN-DISK", "PIC-DISK"], "/dirac/data/f2": ["PIC-DISK", "RAL-DISK"]})
    [jobID] = wms.submit(makeJDL(InputData=["/dirac/data/f1", "LFN:/dirac/data/f2"]))
    _runOnce(wms, sandboxDB, catalog)
    assert _state(wms, jobID)[0] == JobStatus.WAITING
    tqID = wms.tqDB.getTaskQueueForJob(jobID)
    assert wms.tqDB.retrieveTaskQueues([tqID])[tqID]["Sites"] == ["LCG.PIC.es"]
    assert 'Sites = \n                {\n                    "LCG.PIC.es"' in wms.jobDB.getJobJDL(jobID)
    assert wms.jobDB.getJobAttribute(jobID, "Site") == "LCG.PIC.es"
    assert catalog.calls == 1


def test_inputDataOfManyJobs_isResolvedInOneCatalogCall(wms, sandboxDB, makeJDL) -> None:
    _configureSites()
    catalog = Catalog({f"/dirac/data/f{i}": ["CERN-DISK"] for i in range(20)})
    jobIDs = wms.submit(makeJDL(Parameters=[f"/dirac/data/f{i}" for i in range(20)], InputData="%s"))
    _runOnce(wms, sandboxDB, catalog)
    assert {_state(wms, jobID)[0] for jobID in jobIDs} == {JobStatus.WAITING} and catalog.calls == 1


def test_inputDataWithoutReplica_failsAsInputDataNotAvailable(wms, sandboxDB, makeJDL) -> None:
    _configureSites()
    [jobID] = wms.submit(makeJDL(InputData=["/dirac/data/f1", "/dirac/data/lost"]))
    _runOnce(wms, sandboxDB, Catalog({"/dirac/data/f1": ["CERN-DISK"]}))
    _assertFailed(wms, jobID, JobMinorStatus.INPUT_NOT_AVAILABLE, "/dirac/data/lost")


def test_catalogThatDoesNotAnswer_leavesTheJobCheckingForALaterPass(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(InputData=["/dirac/data/f1"]))
    [plain] = wms.submit(makeJDL())
    _runOnce(wms, sandboxDB, Catalog(error="catalog down"))
    assert _state(wms, jobID) == (JobStatus.CHECKING, "JobSanity")
    assert _state(wms, plain)[0] == JobStatus.WAITING


def test_inputDataWithDataSchedulingDisabled_mayRunAnywhereButItsFilesMustExist(wms, sandboxDB, makeJDL) -> None:
    _configureSites()
    [anywhere, lost] = [wms.submit(makeJDL(InputData=[lfn], DisableDataScheduling="True"))[0]
                        for lfn in ("/dirac/data/f1", "/dirac/data/lost")]
    _runOnce(wms, sandboxDB, Catalog({"/dirac/data/f1": ["CERN-DISK"]}))
    assert _state(wms, anywhere)[0] == JobStatus.WAITING
    tqID = wms.tqDB.getTaskQueueForJob(anywhere)
    assert wms.tqDB.retrieveTaskQueues([tqID])[tqID]["Sites"] == []
    assert wms.jobDB.getJobAttribute(anywhere, "Site") == "ANY"
    _assertFailed(wms, lost, JobMinorStatus.INPUT_NOT_AVAILABLE, "/dirac/data/lost")


def test_inputDataAlone_recordsTheSitesHoldingTheData() -> None:
    _configureSites()
    task = OptimizationTask(1, {}, "", inputData=["/dirac/f"])
    InputData(Catalog({"/dirac/f": ["RAL-DISK", "UNKNOWN-SE"]})).optimize([task])
    assert task.active and task.siteCandidates == {"LCG.RAL.uk"}


# -- JobScheduling --------------------------------------------------------------------------------------------------
def test_everyRequestedSiteBanned_failsWithNoCandidateSites(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(Site=["LCG.CERN.ch"], BannedSites=["LCG.CERN.ch"]))
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, JobMinorStatus.NO_CANDIDATE_SITE_FOUND, "every requested site is banned")


def test_everyConfiguredSiteBanned_failsWithNoCandidateSites(wms, sandboxDB, makeJDL) -> None:
    _configureSites()
    [jobID] = wms.submit(makeJDL(BannedSites=list(SITES)))
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, JobMinorStatus.NO_CANDIDATE_SITE_FOUND, "every configured site is banned")


def test_inputDataOnlyAtBannedSites_failsWithNoCandidateSites(wms, sandboxDB, makeJDL) -> None:
    _configureSites()
    [jobID] = wms.submit(makeJDL(InputData=["/dirac/data/f1"], BannedSites=["LCG.CERN.ch"]))
    _runOnce(wms, sandboxDB, Catalog({"/dirac/data/f1": ["CERN-DISK"]}))
    _assertFailed(wms, jobID, JobMinorStatus.NO_CANDIDATE_SITE_FOUND, "held at: LCG.CERN.ch")


def test_bannedSitesNarrowTheRequestedOnes(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(Site=["LCG.CERN.ch", "LCG.PIC.es"], BannedSites=["LCG.CERN.ch"]))
    _runOnce(wms, sandboxDB)
    tqID = wms.tqDB.getTaskQueueForJob(jobID)
    assert wms.tqDB.retrieveTaskQueues([tqID])[tqID]["Sites"] == ["LCG.PIC.es"]


def test_siteNotConfigured_failsWhenTheCSListsSites(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(Site=["LCG.Nowhere.xx"]))  # accepted: no site list at submission time
    _configureSites()
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, Optimization.UNKNOWN_SITE, "LCG.Nowhere.xx")


def test_anySite_isAcceptedWhenTheCSListsNoSites(wms, sandboxDB, makeJDL) -> None:
    [jobID] = wms.submit(makeJDL(Site=["LCG.Anywhere.xx"]))
    _runOnce(wms, sandboxDB)
    assert _state(wms, jobID)[0] == JobStatus.WAITING and wms.jobDB.getJobAttribute(jobID, "Site") == "LCG.Anywhere.xx"


def test_jobSchedulingAlone_failsATaskWhoseSitesAreAllBanned() -> None:
    task = OptimizationTask(1, {}, "", classAd=parseStoredJDL('[ Site = "A"; BannedSites = { "A", "B" }; ]'))
    JobScheduling().optimize([task])
    assert task.failure.minorStatus == JobMinorStatus.NO_CANDIDATE_SITE_FOUND and task.failure.source == "JobScheduling"


# -- claims ---------------------------------------------------------------------------------------------------------
def _ageLastUpdate(wms, jobID: int, seconds: float) -> None:
    with wms.jobDB.transaction() as conn:
        conn.execute(update(wms.jobDB.jobs).where(wms.jobDB.jobs.c.JobID == jobID)
                     .values(LastUpdateTime=utcnow() - timedelta(seconds=seconds)))


def test_staleCheckingJob_isClaimedAgain_butAFreshClaimIsLeftToItsAgent(wms, sandboxDB, makeJDL) -> None:
    stale, fresh = wms.submit(makeJDL(Parameters=2))
    assert claimJobsToOptimize(wms.jobDB, wms.loggingDB, 10, 300, "JobSanity") == [stale, fresh]  # an agent dies
    _ageLastUpdate(wms, stale, 301)
    _runOnce(wms, sandboxDB)
    assert _state(wms, stale)[0] == JobStatus.WAITING
    assert _trail(wms, stale) == [JobStatus.RECEIVED, JobStatus.CHECKING, JobStatus.CHECKING, JobStatus.WAITING]
    assert _state(wms, fresh) == (JobStatus.CHECKING, "JobSanity")


def test_jobKilledWhileChecked_isLeftKilledAndNotQueued(wms, sandboxDB, makeJDL) -> None:
    killed, good = wms.submit(makeJDL(Parameters=2))
    environment = OptimizerEnvironment(wms.jobDB, wms.loggingDB, wms.tqDB, sandboxDB)
    claimed = claimJobsToOptimize(wms.jobDB, wms.loggingDB, 10, 300, "JobSanity")
    setJobStatus(wms.jobDB, wms.loggingDB, killed, JobStatus.KILLED, "Marked for termination", source="JobManager")
    chain = [JobSanity(sandboxDB), InputData(), JobScheduling()]
    result = optimizeJobs(environment, chain, claimed)
    assert (result.waiting, result.leftAlone) == (1, 1)
    assert _state(wms, killed)[0] == JobStatus.KILLED and wms.tqDB.getTaskQueueForJob(killed) is None
    assert _state(wms, good)[0] == JobStatus.WAITING


# -- configuration --------------------------------------------------------------------------------------------------
def test_theChainComesFromTheCS(wms, sandboxDB, makeJDL) -> None:
    gConfig.initialize(options={"/Systems/WorkloadManagement/Agents/Optimizers/Optimizers": "JobSanity, JobScheduling"},
                       fetchRemote=False)
    [jobID] = wms.submit(makeJDL(InputData=["/dirac/data/f1"]))  # no InputData link: no catalog needed
    agent = _runOnce(wms, sandboxDB)
    assert [optimizer.name for optimizer in agent.chain()] == ["JobSanity", "JobScheduling"]
    assert _state(wms, jobID)[0] == JobStatus.WAITING


def test_unknownOptimizer_refusesToStartNamingIt(wms, sandboxDB) -> None:
    gConfig.initialize(options={"/Systems/WorkloadManagement/Agents/Optimizers/Optimizers": "JobSanity, JobPath"},
                       fetchRemote=False)
    with pytest.raises(ConfigurationError, match="unknown optimizer 'JobPath'"):
        _agent(wms, sandboxDB).run(once=True)


def test_withoutJobSanity_anUnreadableJDLStillFailsTheJob(wms, sandboxDB, makeJDL) -> None:
    gConfig.initialize(options={"/Systems/WorkloadManagement/Agents/Optimizers/Optimizers": "JobScheduling"},
                       fetchRemote=False)
    [jobID] = wms.submit(makeJDL())
    wms.jobDB.setJobJDL(jobID, "[ broken")
    _runOnce(wms, sandboxDB)
    _assertFailed(wms, jobID, JobMinorStatus.ILLEGAL_JOB_JDL)


# -- reading stored JDLs --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "problem"), [
    ('[ A = "x[1]"; ]', "not followed by ';'"),
    ('[ A = [ B = 1; ] ; ]', "not followed by ';'"),
    ('[ A = "x[1"; ]', "unbalanced '['"),
    ("[ A = 1; ] ]", "unbalanced ']'"),
    ("[ " + "A = [ " * 6 + "B = 1;" + " ];" * 6 + " ]", "nested deeper"),
    ("A = 1;", "not enclosed in [ ]"),
])
def test_parseStoredJDL_refusesWhatDIRACCommonsParserWouldLoopForeverOn(text: str, problem: str) -> None:
    with pytest.raises(InvalidJDL, match=re.escape(problem)):
        parseStoredJDL(text)


def test_parseStoredJDL_readsNestedRequirements() -> None:
    classAd = parseStoredJDL('[ Executable = "x"; JobRequirements = [ Sites = { "A", "B" }; ]; ]')
    assert classAd.getAttributeString("Executable") == "x"
