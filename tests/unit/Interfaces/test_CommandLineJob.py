"""dsub's job descriptions: switches to JDL attributes, executables, parametric values and loops."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.WorkloadManagementSystem.Utilities.ParametricJob import generateParametricJobs

from dirac.Interfaces.Utilities.CommandLineJob import addSwitches, buildJDLs, loopLength
from dirac.Interfaces.Utilities.CommandTools import UsageError


def jdls(*argv: str) -> list[ClassAd]:
    parser = argparse.ArgumentParser()
    addSwitches(parser)
    return [ClassAd(jdl) for jdl in buildJDLs(parser.parse_args(list(argv)))]


def arguments(classAd: ClassAd) -> list[str]:
    expanded = generateParametricJobs(classAd)
    assert expanded["OK"], expanded
    return [ClassAd(jdl).getAttributeString("Arguments") for jdl in expanded["Value"]]


def test_switches_become_attributes_and_the_command_its_executable() -> None:
    (job,) = jdls("-N", "ana", "--CPUTime", "3600", "--Site", "A.b.c,D.e.f", "--BannedSite", "X.y.z",
                  "--Tag", "GPU", "--OutputSandbox", "std.out,std.err,out.txt", "--JobGroup", "grp",
                  "/bin/echo", "-n", "hello world")
    assert job.getAttributeString("Executable") == "/bin/echo"
    assert job.getAttributeString("Arguments") == "-n 'hello world'"
    assert job.getAttributeString("JobName") == "ana" and job.getAttributeInt("CPUTime") == 3600
    assert job.getListFromExpression("Site") == ["A.b.c", "D.e.f"]
    assert job.getListFromExpression("BannedSites") == ["X.y.z"]
    assert job.getListFromExpression("Tags") == ["GPU"]
    assert job.getListFromExpression("OutputSandbox") == ["std.out", "std.err", "out.txt"]
    assert job.getAttributeString("JobGroup") == "grp"


def test_local_files_are_shipped_bare_names_run_from_the_worker_path(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "run.sh").write_text("echo hi\n")
    (shipped,) = jdls("--InputSandbox", "data.txt", "bin/run.sh")
    assert shipped.getAttributeString("Executable") == "./run.sh"
    assert shipped.getListFromExpression("InputSandbox") == ["data.txt", "bin/run.sh"]
    assert shipped.getAttributeString("JobName") == "run.sh"
    (onPath,) = jdls("hostname")
    assert onPath.getAttributeString("Executable") == "hostname" and not onPath.lookupAttribute("InputSandbox")
    (forced,) = jdls("--ForceExecUpload", str(tmp_path / "bin" / "run.sh"))
    assert forced.getAttributeString("Executable") == "./run.sh"
    with pytest.raises(UsageError, match="not found"):
        jdls("bin/missing.sh")
    with pytest.raises(UsageError, match="no command given"):
        jdls()


def test_a_jdl_is_the_base_and_switches_override_it(tmp_path: Path) -> None:
    base = tmp_path / "job.jdl"
    base.write_text('[Executable = "/bin/hostname"; CPUTime = 100; JobName = "base"]')
    (job,) = jdls("--JDL", str(base), "--CPUTime", "200")
    assert job.getAttributeString("Executable") == "/bin/hostname"
    assert job.getAttributeInt("CPUTime") == 200 and job.getAttributeString("JobName") == "base"
    (inline,) = jdls("-J", 'Executable = "/bin/date";')
    assert inline.getAttributeString("Executable") == "/bin/date"
    with pytest.raises(UsageError, match="cannot be parsed"):
        jdls("-J", "[Executable = ")


def test_parametric_values_make_one_job_and_each_loop_another() -> None:
    values, loop, scaled = jdls("-P", "a,b", "-P", "1:10:4", "-P", "1:100:0:10", "/bin/echo", "%s")
    assert arguments(values) == ["a", "b"]
    assert arguments(loop) == ["1", "5", "9"]
    assert arguments(scaled) == ["1", "10"]
    assert loopLength(10, 1, -3, 1) == 3
    for start, stop, step, factor in ((1, 10, 0, 1), (1, 10, -1, 1), (1, 1, 1, 1)):
        with pytest.raises(UsageError):
            loopLength(start, stop, step, factor)
