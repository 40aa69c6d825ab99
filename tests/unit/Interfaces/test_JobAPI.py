"""The Job API produces JDL that DIRACCommon's ClassAd parser reads back."""

from __future__ import annotations

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.WorkloadManagementSystem.Utilities.ParametricJob import generateParametricJobs

from dirac.Interfaces.API.Job import Job


def parse(job: Job) -> ClassAd:
    classAd = ClassAd(job._toJDL())
    assert classAd.isOK()
    return classAd


def test_the_seed_example_describes_an_echo_job():
    j = Job()
    j.setCPUTime(500)
    j.setExecutable("/bin/echo hello")
    j.setName("API")
    jdl = parse(j)
    assert jdl.getAttributeString("Executable") == "/bin/echo"
    assert jdl.getAttributeString("Arguments") == "hello"
    assert jdl.getAttributeInt("CPUTime") == 500
    assert jdl.getAttributeString("JobName") == "API"
    assert jdl.getListFromExpression("OutputSandbox") == ["std.out", "std.err"]


def test_requirements_and_data_attributes():
    j = Job()
    j.setExecutable("run.sh", arguments="-n 3")
    j.setDestination(["LCG.CERN.ch", "LCG.IN2P3.fr"])
    j.setBannedSites("LCG.Bad.org")
    j.setPlatform("x86_64-el9")
    j.setTag(["GPU"])
    j.setNumberOfProcessors(4)
    j.setInputSandbox(["run.sh", "LFN:/dirac/user/a/input.tar"])
    j.setOutputSandbox(["result.txt"])
    j.setInputData(["LFN:/dirac/data/f1"])
    j.setOutputData(["out.root"], outputSE="DISK-SE")
    jdl = parse(j)
    assert jdl.getListFromExpression("Site") == ["LCG.CERN.ch", "LCG.IN2P3.fr"]
    assert jdl.getListFromExpression("BannedSites") == ["LCG.Bad.org"]
    assert jdl.getListFromExpression("Tags") == ["GPU", "MultiProcessor"]
    assert jdl.getAttributeInt("NumberOfProcessors") == 4
    assert jdl.getListFromExpression("OutputSandbox") == ["std.out", "std.err", "result.txt"]
    assert jdl.getListFromExpression("InputData") == ["/dirac/data/f1"]
    assert jdl.getListFromExpression("OutputSE") == ["DISK-SE"]


def test_several_steps_run_in_sequence_in_one_shell():
    j = Job()
    j.setExecutable("echo one")
    j.setExecutable("/bin/echo", arguments="two")
    jdl = parse(j)
    assert jdl.getAttributeString("Executable") == "/bin/sh"
    assert "echo one" in jdl.getAttributeString("Arguments")


def test_parameter_sequence_expands_into_one_job_per_value():
    j = Job()
    j.setExecutable("/bin/echo", arguments="value %(x)s")
    j.setParameterSequence("x", ["a", "b", "c"])
    jobs = generateParametricJobs(parse(j))
    assert jobs["OK"], jobs
    assert [ClassAd(jdl).getAttributeString("Arguments") for jdl in jobs["Value"]] == [
        "value a", "value b", "value c"]


def test_invalid_values_are_refused_and_remembered():
    j = Job()
    assert not j.setCPUTime("lots")["OK"]
    assert not j.setLogLevel("chatty")["OK"]
    assert not j.setExecutable("  ")["OK"]
    assert not j.setNumberOfProcessors(0)["OK"]
    assert len(j.errors) == 4


def test_input_data_policy_is_diracs_module_and_a_fallback_is_a_list_of_them():
    from dirac.Core.Config import gConfig

    gConfig.initialize(cfgFiles=[], fetchRemote=False, options={})
    j = Job()
    assert j.setInputDataPolicy("protocol")["OK"]
    assert parse(j).getAttributeString("InputDataPolicy") == "DIRAC.WorkloadManagementSystem.Client.InputDataByProtocol"
    assert j.setInputDataPolicy(["Protocol", "Download"])["OK"]
    assert parse(j).getAttributeString("InputDataPolicy") == (
        "DIRAC.WorkloadManagementSystem.Client.InputDataByProtocol, "
        "DIRAC.WorkloadManagementSystem.Client.DownloadInputData")
    assert j.setInputDataPolicy("Download", dataScheduling=False)["OK"]
    assert parse(j).getAttributeString("DisableDataScheduling") == "True"
    assert j.errors == []
    assert "may only be disabled with the Download policy" in j.setInputDataPolicy("Protocol", False)["Message"]
    assert "'Stream' is not one of Download, Protocol" in j.setInputDataPolicy("Stream")["Message"]
    assert len(j.errors) == 2


def test_input_data_policy_short_names_stand_for_the_operations_options_when_set():
    from dirac.Core.Config import gConfig

    gConfig.initialize(cfgFiles=[], fetchRemote=False, options={
        "/Operations/Defaults/InputDataPolicy/Protocol": "InputDataByProtocol, DownloadInputData"})
    j = Job()
    assert j.setInputDataPolicy("Protocol")["OK"]
    assert parse(j).getAttributeString("InputDataPolicy") == "InputDataByProtocol, DownloadInputData"
