"""The WMS user commands (dirac-wms-job-*, dirac-wms-select-jobs, dsub, dstat, dkill, doutput, dlogging)
against a real server over HTTPS.

Commands run in this process through ``main(argv)`` with their stdout and stderr captured, as
the proxy of ``user`` (admin in dirac_user), ``bob`` (dirac_user) or ``admin`` (dirac_admin,
JobAdministrator); a few run as real console scripts to prove the entry points and exit codes.
Job states a pilot would reach are forced by the administrator; output sandboxes are made as a
job wrapper makes them (uploaded with the pilot proxy, then assigned to the job).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from dirac.Interfaces.scripts import (
    dirac_wms_job_attributes,
    dirac_wms_job_delete,
    dirac_wms_job_get_jdl,
    dirac_wms_job_get_output,
    dirac_wms_job_kill,
    dirac_wms_job_logging_info,
    dirac_wms_job_parameters,
    dirac_wms_job_reschedule,
    dirac_wms_job_status,
    dirac_wms_job_submit,
    dirac_wms_select_jobs,
    dkill,
    dlogging,
    doutput,
    dstat,
    dsub,
)
from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient

COMMANDS = [dirac_wms_job_submit, dirac_wms_job_status, dirac_wms_job_get_output, dirac_wms_job_kill,
            dirac_wms_job_delete, dirac_wms_job_reschedule, dirac_wms_job_logging_info, dirac_wms_job_parameters,
            dirac_wms_job_attributes, dirac_wms_job_get_jdl, dirac_wms_select_jobs, dsub, dstat, dkill, doutput,
            dlogging]
BIN = Path(sys.executable).parent
JDL = '[Executable = "/bin/echo"; Arguments = "hello"; CPUTime = 1000; JobName = "cmd"; JobGroup = "{group}"]'


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self):  # noqa: ANN201
        return json.loads(self.out)


@pytest.fixture
def cli(grid, monkeypatch, capsys):  # noqa: ANN001, ANN201
    """run(command module, *argv, proxy=...) -> Ran(exit code, stdout, stderr)."""
    if "pilot" not in grid.proxies:
        grid.makeProxy("pilot", "/O=DIRAC-Seed/OU=dirac/CN=admin", "dirac_pilot")

    def run(command, *argv: object, proxy: str = "user") -> Ran:  # noqa: ANN001
        monkeypatch.setenv("X509_USER_PROXY", str(grid.proxies[proxy]))
        capsys.readouterr()
        try:
            code = command.main([str(arg) for arg in argv])
        except SystemExit as exit_:  # argparse refusing the command line
            code = exit_.code
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    run.grid = grid
    return run


def group() -> str:
    return f"g{secrets.token_hex(4)}"


def submit(cli, jobGroup: str, proxy: str = "user", count: int = 1) -> list[int]:  # noqa: ANN001
    ran = cli(dsub, "--JobGroup", jobGroup, "-N", "cmd", "-P" if count > 1 else "--CPUTime",
              f"1:{count + 1}" if count > 1 else 1000, "/bin/echo", "hello", proxy=proxy)
    assert ran.code == EXIT_OK, ran.err
    return [int(jobID) for jobID in ran.out.strip().split(",")]


def force(cli, jobID: int, status: str, minor: str = "") -> None:  # noqa: ANN001
    result = cli.grid.client("WorkloadManagement/JobStateUpdate", "admin").setJobStatus(
        jobID, status, minor, "test", None, True)
    assert result["OK"], result["Message"]


def status(cli, jobID: int) -> str:  # noqa: ANN001
    ran = cli(dirac_wms_job_status, jobID, "--json", proxy="admin")
    return ran.json()[str(jobID)]["Status"]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda module: module.__name__.rpartition(".")[2])
def test_every_command_has_help_and_the_common_switches(command, capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as exit_:
        command.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert all(switch in out for switch in ("-o /Path=value", "--cfg FILE", "--debug", "--json"))


def test_submit_prints_dirac_job_ids_and_reports_each_bad_jdl(cli, tmp_path: Path) -> None:  # noqa: ANN001
    jobGroup = group()
    single, parametric, bad = tmp_path / "single.jdl", tmp_path / "param.jdl", tmp_path / "bad.jdl"
    single.write_text(JDL.format(group=jobGroup))
    parametric.write_text('[Executable = "/bin/echo"; Arguments = "%s"; Parameters = {"a", "b"}; '
                          f'JobGroup = "{jobGroup}"]')
    bad.write_text('[Executable = "/bin/true"; CPUTime = "lots"]')
    idFile = tmp_path / "ids.txt"
    ran = cli(dirac_wms_job_submit, single, parametric, bad, "-f", idFile)
    assert ran.code == EXIT_FAILED
    lines = ran.out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("JobID = ") and lines[1].startswith("JobID = [")
    assert f"ERROR: {bad}:" in ran.err and "CPUTime" in ran.err and "Traceback" not in ran.err
    ids = [int(word) for word in idFile.read_text().split()]
    assert len(ids) == 3 and ids[0] == int(lines[0].split(" = ")[1])

    answer = cli(dirac_wms_job_submit, single, "--json").json()
    assert answer["Failed"] == {} and isinstance(answer["Submitted"][str(single)], int)
    missing = cli(dirac_wms_job_submit, tmp_path / "nothere.jdl")
    assert missing.code != EXIT_OK and "nothere.jdl" in missing.err


def test_dsub_builds_jobs_from_a_command_line(cli, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    ran = cli(dsub, "-N", "hello", "--CPUTime", 2000, "--Site", "DIRAC.OneBox.local", "--Tag", "GPU",
              "/bin/echo", "-n", "hello world")
    assert ran.code == EXIT_OK, ran.err
    jobID = int(ran.out)
    jdl = cli(dirac_wms_job_get_jdl, jobID, "--original")
    assert jdl.code == EXIT_OK
    for text in ('Executable = "/bin/echo"', "-n 'hello world'", 'JobName = "hello"', "CPUTime = 2000", '"GPU"',
                 '"DIRAC.OneBox.local"'):
        assert text in jdl.out, text

    assert len(cli(dsub, "-P", "a,b,c", "/bin/echo", "%s").out.split(",")) == 3
    looped = cli(dsub, "--json", "-P", "1:10:3", "/bin/echo", "%s").json()
    assert len(looped["JobIDs"]) == 3 and looped["Failed"] == {}
    assert "Arguments = \"4\"" in cli(dirac_wms_job_get_jdl, looped["JobIDs"][1]).out

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho shipped\n")
    shipped = cli(dsub, "./run.sh", "x")
    assert shipped.code == EXIT_OK, shipped.err
    jdl = cli(dirac_wms_job_get_jdl, int(shipped.out)).out
    assert 'Executable = "./run.sh"' in jdl and "SB:" in jdl

    base = tmp_path / "base.jdl"
    base.write_text('[Executable = "/bin/hostname"; JobName = "fromjdl"; CPUTime = 500]')
    fromJDL = cli(dsub, "--jdl", base, "--CPUTime", 700)
    assert fromJDL.code == EXIT_OK, fromJDL.err
    jdl = cli(dirac_wms_job_get_jdl, int(fromJDL.out), "-O").out
    assert "/bin/hostname" in jdl and "CPUTime = 700" in jdl and "fromjdl" in jdl

    notFound = cli(dsub, "./missing.sh")
    assert notFound.code == EXIT_USAGE and "missing.sh not found" in notFound.err and not notFound.out
    assert cli(dsub).code == EXIT_USAGE
    assert cli(dsub, "-P", "1:1:0", "/bin/echo").code == EXIT_USAGE


def test_status_select_and_dstat_show_the_jobs_with_filters(cli) -> None:  # noqa: ANN001
    jobGroup = group()
    first, second = submit(cli, jobGroup, count=2)
    bobs = submit(cli, jobGroup, proxy="bob")[0]
    force(cli, second, JobStatus.KILLED)

    ran = cli(dirac_wms_job_status, first, f"{second}")
    assert ran.code == EXIT_OK
    assert ran.out.splitlines() == [
        f"JobID={first} Status=Received; MinorStatus=Job accepted; ApplicationStatus=Unknown; Site=ANY;",
        f"JobID={second} Status=Killed; MinorStatus=Job accepted; ApplicationStatus=Unknown; Site=ANY;"]
    assert set(cli(dirac_wms_job_status, "-g", jobGroup, "--json").json()) == {str(first), str(second)}
    unknown = cli(dirac_wms_job_status, first, 10**8)
    assert unknown.code == EXIT_NOT_FOUND and f"job {10**8}: no such job" in unknown.err
    refused = cli(dirac_wms_job_status, first, proxy="bob")
    assert refused.code == EXIT_AUTH and refused.err.startswith("ERROR:")
    assert cli(dirac_wms_job_status, "twelve").code == EXIT_USAGE

    selected = cli(dirac_wms_select_jobs, "--JobGroup", jobGroup, "--Status", "Killed")
    assert selected.code == EXIT_OK and selected.out.splitlines()[-1] == str(second)
    assert "Status = Killed" in selected.out and "JobGroup = " + jobGroup in selected.out
    limited = cli(dirac_wms_select_jobs, "--JobGroup", jobGroup, "--Maximum", 1, "--Owner", "admin")
    assert "==> Selected 2 jobs (first 1 shown)" in limited.out and limited.out.splitlines()[-1] == str(first)
    assert cli(dirac_wms_select_jobs, "--JobGroup", jobGroup, "--json", proxy="admin").json()["Total"] == 3
    assert "No jobs were selected" in cli(dirac_wms_select_jobs, "--JobGroup", jobGroup, "--Site", "Nowhere").out
    assert cli(dirac_wms_select_jobs, "--Date", "yesterday").code == EXIT_USAGE

    table = cli(dstat, "-g", jobGroup)
    assert table.code == EXIT_OK
    header, *rows = table.out.splitlines()
    assert header.split()[:3] == ["JobID", "Owner", "JobName"] and [row.split()[0] for row in rows] == [str(first)]
    assert [row["JobID"] for row in cli(dstat, "-g", jobGroup, "-a", "--json").json()] == [first, second]
    assert [row["JobID"] for row in cli(dstat, "-g", jobGroup, "-S", "killed", "--json").json()] == [second]
    assert [row["JobID"] for row in cli(dstat, "-g", jobGroup, "--json", proxy="bob").json()] == [bobs]
    everybody = cli(dstat, "-g", jobGroup, "--all", "-a", "-F", "Owner,Status", "-f", "csv", proxy="admin")
    assert everybody.out.splitlines() == ["JobID,Owner,Status", f"{first},admin,Received", f"{second},admin,Killed",
                                          f"{bobs},bob,Received"]
    assert cli(dstat, first, "-F", "Colour").code == EXIT_USAGE
    assert cli(dstat, "-S", "Sleeping").code == EXIT_USAGE


def test_kill_delete_reschedule_report_each_job_not_processed(cli) -> None:  # noqa: ANN001
    jobGroup = group()
    mine, done, running = submit(cli, jobGroup, count=3)
    bobs = submit(cli, jobGroup, proxy="bob")[0]
    force(cli, done, JobStatus.DONE)
    force(cli, running, JobStatus.RUNNING)

    ran = cli(dirac_wms_job_kill, mine, bobs, proxy="bob")
    assert ran.code == EXIT_AUTH
    assert ran.out.strip() == f"Killed jobs {bobs}"
    assert ran.err.strip() == f"ERROR: job {mine} not killed: you are not allowed to act on it"
    assert status(cli, mine) == JobStatus.RECEIVED and status(cli, bobs) == JobStatus.KILLED

    asJSON = cli(dirac_wms_job_kill, mine, 10**8, "--json", proxy="bob")
    assert asJSON.code == EXIT_AUTH
    assert asJSON.json()["NonauthorizedJobIDs"] == [mine] and asJSON.json()["InvalidJobIDs"] == [10**8]
    unknown = cli(dirac_wms_job_kill, 10**8)
    assert unknown.code == EXIT_NOT_FOUND and "no such job" in unknown.err
    finished = cli(dirac_wms_job_kill, done)
    assert finished.code == EXIT_FAILED and "status does not allow it" in finished.err

    rescheduled = cli(dirac_wms_job_reschedule, running)
    assert rescheduled.code == EXIT_OK and rescheduled.out.strip() == f"Rescheduled jobs {running}"
    assert status(cli, running) == JobStatus.RECEIVED
    deleted = cli(dirac_wms_job_delete, "-g", jobGroup, proxy="admin")
    assert deleted.code == EXIT_OK and deleted.out.startswith("Deleted jobs ")
    assert status(cli, mine) == JobStatus.DELETED

    other = submit(cli, group(), proxy="bob", count=2)
    assert cli(dkill, "-a", proxy="bob").out.strip().startswith("Killed jobs ")
    assert {status(cli, jobID) for jobID in other} == {JobStatus.KILLED}
    assert cli(dkill, "-D", other[0], "--json", proxy="bob").json() == {"OK": True, "Successful": [other[0]]}
    assert status(cli, other[0]) == JobStatus.DELETED
    assert cli(dkill).code == EXIT_USAGE


def test_logging_info_parameters_attributes_and_jdl(cli) -> None:  # noqa: ANN001
    jobID = submit(cli, group())[0]
    force(cli, jobID, JobStatus.RUNNING, "Application")
    result = cli.grid.client("WorkloadManagement/JobStateUpdate", "pilot").setJobParameters(
        jobID, [["HostName", "wn1.example.org"], ["CPUNormalizationFactor", "12.5"]])
    assert result["OK"], result["Message"]

    history = cli(dirac_wms_job_logging_info, jobID)
    assert history.code == EXIT_OK
    lines = history.out.splitlines()
    assert lines[0].split() == ["Status", "MinorStatus", "ApplicationStatus", "DateTime", "Source"]
    assert lines[1].startswith("Received") and lines[-1].startswith("Running") and lines[-1].rstrip().endswith("test")
    rows = cli(dlogging, jobID, "--json").json()[str(jobID)]
    assert [row["Status"] for row in rows] == [JobStatus.RECEIVED, JobStatus.RUNNING] and rows[0]["DateTime"]
    csvRows = cli(dlogging, jobID, "-f", "csv").out.splitlines()
    assert csvRows[0] == "Status,MinorStatus,ApplicationStatus,DateTime,Source" and len(csvRows) == 3
    refused = cli(dlogging, jobID, proxy="bob")
    assert refused.code == EXIT_AUTH and f"ERROR: job {jobID}:" in refused.err

    parameters = cli(dirac_wms_job_parameters, jobID)
    assert parameters.code == EXIT_OK and "'HostName': 'wn1.example.org'" in parameters.out
    assert cli(dirac_wms_job_parameters, jobID, "--json").json()[str(jobID)]["CPUNormalizationFactor"] == "12.5"
    missing = cli(dirac_wms_job_parameters, 10**8)
    assert missing.code == EXIT_NOT_FOUND and f"ERROR: job {10**8}:" in missing.err
    attributes = cli(dirac_wms_job_attributes, jobID, "--json").json()[str(jobID)]
    assert attributes["Status"] == JobStatus.RUNNING and attributes["Owner"] == "admin"
    assert isinstance(attributes["SubmissionTime"], str)

    both = cli(dirac_wms_job_get_jdl, jobID, "--original", "--json").json()
    assert 'Executable = "/bin/echo"' in both[str(jobID)]
    processed = cli(dirac_wms_job_get_jdl, jobID).out
    assert "/bin/echo" in processed and "OwnerGroup" in processed


def test_waiting_for_jobs_ends_when_they_finish_or_at_the_timeout(cli) -> None:  # noqa: ANN001
    waiting, finished = submit(cli, group(), count=2)
    force(cli, finished, JobStatus.FAILED)
    assert cli(dirac_wms_job_status, finished, "--wait", "--interval", 0.1).code == EXIT_OK
    late = cli(dirac_wms_job_status, waiting, finished, "--wait", "--timeout", 0.5, "--interval", 0.1)
    assert late.code == EXIT_FAILED and f"jobs not finished after 0.5s: {waiting}" in late.err
    assert f"JobID={finished} Status=Failed;" in late.out


def outputSandbox(cli, jobID: int, tmp_path: Path) -> None:  # noqa: ANN001
    """What a job wrapper does at the end of a job: upload its output files and assign them to the job."""
    work = tmp_path / f"wn{jobID}"
    work.mkdir()
    (work / "std.out").write_text(f"hello from {jobID}\n")
    (work / "result.txt").write_text("42\n")
    store = SandboxStoreClient(proxyLocation=str(cli.grid.proxies["pilot"]), useCertificates=False)
    reference = store.uploadFilesAsSandbox([work / "std.out", work / "result.txt"])
    assert reference["OK"], reference["Message"]
    assigned = store.assignSandboxesToJob(jobID, [reference["Value"]], "Output")
    assert assigned["OK"], assigned["Message"]
    force(cli, jobID, JobStatus.DONE, "Execution Complete")


def test_get_output_and_doutput_download_output_sandboxes(cli, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    jobGroup = group()
    first, second, third = submit(cli, jobGroup, count=3)
    for jobID in (first, second):
        outputSandbox(cli, jobID, tmp_path)

    ran = cli(dirac_wms_job_get_output, first, "-D", tmp_path / "out")
    assert ran.code == EXIT_OK, ran.err
    assert (tmp_path / "out" / str(first) / "std.out").read_text() == f"hello from {first}\n"
    assert ran.out.splitlines()[0] == f"Job output sandbox retrieved in {tmp_path / 'out' / str(first)}/"
    assert f"{tmp_path / 'out' / str(first) / 'result.txt'}" in ran.out
    again = cli(dirac_wms_job_get_output, first, "-D", tmp_path / "out")
    assert again.code == EXIT_OK and "already retrieved" in again.err

    noSandbox = cli(dirac_wms_job_get_output, second, third, "-D", tmp_path / "out")
    assert noSandbox.code == EXIT_NOT_FOUND and f"ERROR: job {third}:" in noSandbox.err
    assert (tmp_path / "out" / str(second) / "result.txt").exists() and not (tmp_path / "out" / str(third)).exists()
    refused = cli(dirac_wms_job_get_output, first, "-D", tmp_path / "bob", proxy="bob")
    assert refused.code == EXIT_AUTH and not (tmp_path / "bob" / str(first)).exists()

    grouped = cli(dirac_wms_job_get_output, "-g", jobGroup, "-D", tmp_path / "byGroup", "--json").json()
    assert set(grouped["Retrieved"]) == {str(first), str(second)}
    assert (tmp_path / "byGroup" / jobGroup / str(second) / "std.out").exists()

    monkeypatch.chdir(tmp_path)
    flat = cli(doutput, f"{first},{second}", "-n", "-D", "flat")
    assert flat.code == EXIT_OK and (tmp_path / "flat" / "result.txt").exists()
    assert cli(doutput, first).code == EXIT_OK and (tmp_path / str(first) / "std.out").exists()


def test_console_scripts_run_with_their_exit_codes(cli, tmp_path: Path) -> None:  # noqa: ANN001
    jobID = submit(cli, group())[0]
    environment = {**os.environ, "X509_USER_PROXY": str(cli.grid.proxies["bob"])}
    refused = subprocess.run([BIN / "dirac-wms-job-kill", str(jobID)], env=environment, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == EXIT_AUTH
    assert refused.stderr.strip() == f"ERROR: job {jobID} not killed: you are not allowed to act on it"
    environment["X509_USER_PROXY"] = str(cli.grid.proxies["user"])
    submitted = subprocess.run([BIN / "dsub", "--json", "/bin/echo", "from", "a", "shell"], env=environment,
                               capture_output=True, text=True, timeout=60)
    assert submitted.returncode == EXIT_OK, submitted.stderr
    newID = json.loads(submitted.stdout)["JobIDs"][0]
    shown = subprocess.run([BIN / "dstat", str(newID)], env=environment, capture_output=True, text=True, timeout=60)
    assert shown.returncode == EXIT_OK and shown.stdout.splitlines()[1].split()[:2] == [str(newID), "admin"]
    environment["X509_USER_PROXY"] = str(tmp_path / "no-proxy.pem")
    noProxy = subprocess.run([BIN / "dirac-wms-job-status", str(newID)], env=environment, capture_output=True,
                             text=True, timeout=60)
    assert noProxy.returncode != EXIT_OK and "dirac-proxy-init" in noProxy.stderr
    assert "Traceback" not in noProxy.stderr and noProxy.stderr.strip().splitlines()[-1].startswith("ERROR: ")


def test_dirac_api_selects_like_dirac_and_keeps_existing_output(cli, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from dirac.Interfaces.API.Dirac import Dirac

    jobGroup = group()
    jobID = submit(cli, jobGroup)[0]
    dirac = Dirac(proxyLocation=str(cli.grid.proxies["user"]))
    assert dirac.selectJobs(jobGroup=jobGroup)["Value"] == [str(jobID)], "the default date is today"
    assert dirac.selectJobs(jobGroup=jobGroup, date="2999-01-01", printErrors=False)["Value"] == []
    nothing = dirac.selectJobs(jobGroup=jobGroup, status="Done")
    assert not nothing["OK"] and "No jobs selected" in nothing["Message"]
    outputSandbox(cli, jobID, tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / str(jobID)).mkdir()
    kept = dirac.getOutputSandbox(jobID)
    assert not kept["OK"] and "already exists" in kept["Message"]
    assert sorted(dirac.getOutputSandbox(jobID, outputDir="elsewhere")["Value"]) == ["result.txt", "std.out"]
