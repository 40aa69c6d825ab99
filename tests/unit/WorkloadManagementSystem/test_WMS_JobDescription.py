"""JDL checks and parametric expansion: bad input is a clear error and leaves no job behind."""

from __future__ import annotations

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.WorkloadManagementSystem.Logic.Exceptions import InvalidJDL
from dirac.WorkloadManagementSystem.Logic.JobDescription import parseJDL, prepareJob, prepareJobs

FULL_JDL = """[
    Executable = "/bin/echo"; Arguments = "hello"; StdOutput = "out.txt"; StdError = "err.txt";
    InputSandbox = {"a.sh", "LFN:/dirac/user/a/in.tar"}; OutputSandbox = {"out.txt", "err.txt"};
    InputData = {"/dirac/data/f1", "LFN:/dirac/data/f2"}; OutputData = {"result.root"}; OutputSE = "DIRAC-USER";
    CPUTime = 3600; Site = {"LCG.CERN.ch", "LCG.PIC.es"}; BannedSites = "LCG.RAL.uk"; Platform = "x86_64-el9";
    Tags = {"GPU"}; NumberOfProcessors = 2; JobType = "User"; JobGroup = "analysis"; JobName = "full";
    Priority = 3; LogLevel = "debug"
]"""


def _noRows(wms) -> None:
    counts = wms.tableCounts()
    assert counts["Jobs"] == counts["JobJDLs"] == counts["LoggingInfo"] == counts["InputData"] == 0, counts


def test_prepareJob_readsEveryDocumentedAttribute() -> None:
    job = prepareJob(FULL_JDL, "alice", "dirac_user", "dirac")
    assert job.attributes == {"UserPriority": 3, "JobName": "full", "JobType": "User", "JobGroup": "analysis",
                              "Site": "Multiple", "VerifiedFlag": True, "Status": "Received",
                              "MinorStatus": "Job accepted", "Owner": "alice", "OwnerGroup": "dirac_user",
                              "VO": "dirac"}
    assert job.requirements == {"Owner": "alice", "OwnerGroup": "dirac_user", "VO": "dirac", "JobType": "User",
                                "CPUTime": 3600, "Processors": 2, "Sites": ["LCG.CERN.ch", "LCG.PIC.es"],
                                "BannedSites": ["LCG.RAL.uk"], "Platforms": ["x86_64-el9"],
                                "Tags": ["2Processors", "GPU", "MultiProcessor"], "GridCEs": []}
    assert job.inputData == ["/dirac/data/f1", "/dirac/data/f2"]
    processed = parseJDL(job.jdl)
    assert processed.getAttributeString("Owner") == "alice"
    assert processed.getListFromExpression("OutputSandbox") == ["out.txt", "err.txt"]


def test_prepareJob_appliesCSDefaults() -> None:
    gConfig.initialize(options={"/Operations/Defaults/JobDescription/DefaultCPUTime": "1234"}, fetchRemote=False)
    job = prepareJob('[Executable = "/bin/true"]', "alice", "dirac_user", "dirac")
    assert job.requirements["CPUTime"] == 1234 and job.attributes["UserPriority"] == 1
    assert "Site" not in job.attributes  # JobDB's default, ANY, applies


@pytest.mark.parametrize(("jdl", "message"), [
    ("", "empty"),
    ('[Executable = "/bin/true"; CPUTime = 3600', "malformed JDL"),
    ('[Executable = "/bin/true" CPUTime = 3600]', "Executable must be a quoted string"),
    ('[Executable = "/bin/true"; garbage]', "malformed JDL"),
    ('[Executable = "/bin/true"; CPUTime = "one hour"]', 'CPUTime must be an integer, not "one hour"'),
    ('[Executable = "/bin/true"; Site = 42]', "Site must be a string or a list of strings"),
    ('[Executable = "/bin/true"; Colour = other.Site == 3]', "Colour has a value of unknown type"),
    ('[Executable = "/bin/true"; ParameterStart = "x"; Parameters = 3]', "ParameterStart must be a number"),
    ('[Arguments = "x"]', "executable"),
    ('[Executable = "/bin/true"; Priority = 99]', "priority out of bounds"),
    ('[Executable = "/bin/true"; CPUTime = 99999999]', "cpuTime out of bounds"),
    ('[Executable = "/bin/true"; JobType = "Root"]', "jobType 'Root' is not allowed"),
    ('[Executable = "/bin/true"; InputData = {"/other/f"}]', "must start with LFN:/dirac/"),
    ('[Executable = "/bin/true"; Parameters = {"a", "b"}; Parameters.x = {"c"}]', "invalid parametric job"),
    ('[Executable = "/bin/true"; InputDataPolicy = "Stream"]', "InputDataPolicy: input data policy 'Stream' is not"),
])
def test_badDescriptionIsAClearErrorAndCreatesNoJob(wms, jdl: str, message: str) -> None:
    with pytest.raises(InvalidJDL, match=message):
        wms.submit(jdl)
    _noRows(wms)


def test_parametricJob_expandsIntoManyJobsInOneCall(wms, makeJDL) -> None:
    jobIDs = wms.submit('[Executable = "/bin/echo"; Arguments = "%(n)s %n"; Parameters = 4; '
                        'ParameterStart.n = 1; ParameterStep.n = 1; ParameterFactor.n = 2; JobName = "p%n"]')
    assert len(jobIDs) == 4
    assert [wms.jobDB.getJobAttribute(i, "JobName") for i in jobIDs] == ["p0", "p1", "p2", "p3"]
    assert 'Arguments = "7 2"' in wms.jobDB.getJobJDL(jobIDs[2])  # 1, 3, 7, 15: x -> 2x + 1


def test_parametricJob_overTheConfiguredMaximumCreatesNothing(wms, makeJDL) -> None:
    gConfig.initialize(options={"/Systems/WorkloadManagement/Services/JobManager/MaxParametricJobs": "5"},
                       fetchRemote=False)
    with pytest.raises(InvalidJDL, match="parametric job of 6 jobs exceeds the maximum of 5"):
        wms.submit(makeJDL(Parameters=6))
    _noRows(wms)
    assert len(wms.submit(makeJDL(Parameters=5))) == 5


def test_parametricJob_withOneBadExpansionCreatesNothing(wms) -> None:
    with pytest.raises(InvalidJDL, match="parametric job 1: .*CPUTime must be an integer"):
        wms.submit('[Executable = "/bin/true"; Parameters = {"100", "x"}; CPUTime = %s]')
    _noRows(wms)


def test_failedBulkInsertIsRolledBackEntirely(wms, makeJDL) -> None:
    good = prepareJobs(makeJDL(Parameters=2), "alice", "dirac_user", "dirac")
    bad = {"attributes": {"Colour": "red"}, "jdl": makeJDL()}
    with pytest.raises(InvalidArgument, match="Colour"):
        wms.jobDB.insertNewJobs([job.asJobDBRecord() for job in good] + [bad])
    _noRows(wms)


def test_jobWithoutVO_usesTheModelDefaults(wms) -> None:
    [jobID] = wms.submit('[Executable = "/bin/true"; InputData = "/any/f"]', vo="")
    assert parseJDL(wms.jobDB.getJobJDL(jobID)).getAttributeInt("CPUTime") == 86400
    assert wms.jobDB.getJobAttributes(jobID, ["Site", "VO", "UserPriority"]) == {"Site": "ANY", "VO": "",
                                                                                 "UserPriority": 1}
