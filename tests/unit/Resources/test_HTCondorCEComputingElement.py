"""HTCondorCEComputingElement against the HTCondor STAND-IN (tests/servers/htcondor_standin.py), not HTCondor.

The stand-in records the exact command lines and credential environment and answers in the real
tools' formats. To run the same checks against a real HTCondor-CE, see docs/computing-elements.md
("HTCondorCE").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dirac.Resources.Computing.ComputingElement import getComputingElement

SERVERS = Path(__file__).resolve().parents[2] / "servers"
sys.path.insert(0, str(SERVERS))
import htcondor_standin  # noqa: E402

CE = "ce.example.org"


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "standin"
    directory.mkdir()
    htcondor_standin.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("HTCONDOR_STANDIN_DIR", str(directory))
    return directory


def calls(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "calls.jsonl").read_text().splitlines()]


def makeCE(tmp_path: Path, **options: str):
    return getComputingElement("HTCondorCE", CE, {"WorkingDirectory": str(tmp_path / "work"), "Queue": "condor",
                                                  "MaxTotalJobs": "10", "MaxWaitingJobs": "10", **options})


def test_pilots_are_submitted_to_the_remote_schedd_with_the_proxy_and_followed_to_done(standin: Path,
                                                                                      tmp_path: Path) -> None:
    executable = tmp_path / "pilot.py"
    executable.write_text("print('pilot')\n")
    ce = makeCE(tmp_path, NumberOfProcessors="4")
    ce.setProxy(b"-----BEGIN CERTIFICATE-----\nce proxy\n")
    result = ce.submitJob(str(executable), b"-----BEGIN CERTIFICATE-----\npilot proxy\n", numberOfJobs=2)
    assert result["OK"], result
    assert result["Value"] == [f"htcondorce://{CE}/100.0", f"htcondorce://{CE}/100.1"]
    submit = calls(standin)[0]
    assert submit["tool"] == "condor_submit"
    assert submit["arguments"][:6] == ["-terse", "-pool", f"{CE}:9619", "-remote", CE, submit["arguments"][5]]
    assert submit["environment"]["_condor_SEC_CLIENT_AUTHENTICATION_METHODS"] == "SSL"
    assert submit["files"]["_condor_AUTH_SSL_CLIENT_CERTFILE"].startswith("-----BEGIN CERTIFICATE-----\nce proxy")
    text = Path(submit["arguments"][-1]).read_text()
    stamps = list(result["PilotStampDict"].values())
    assert f"queue stamp in ({stamps[0]}, {stamps[1]})" in text and "request_cpus = 4" in text
    assert f"executable = {executable}" in text and "use_x509userproxy = true" in text
    proxyFile = text.split("x509userproxy = ", 2)[2].splitlines()[0]
    assert Path(proxyFile).read_bytes() == b"-----BEGIN CERTIFICATE-----\npilot proxy\n" and Path(proxyFile).stat().st_mode & 0o077 == 0
    assert not list((tmp_path / "work" / CE).glob("htcondorce-*")), "the CE's own credential file is left behind"

    references = result["Value"]
    assert ce.getJobStatus(references)["Value"] == dict.fromkeys(references, "Waiting")
    assert [c["tool"] for c in calls(standin)] == ["condor_submit", "condor_q"]  # history only for the rest
    assert calls(standin)[1]["arguments"] == ["-pool", f"{CE}:9619", "-name", CE, "100.0", "100.1", "-attributes",
                                              "ClusterId,ProcId,JobStatus,HoldReasonCode,HoldReasonSubCode,"
                                              "HoldReason,ExitCode", "-json"]
    htcondor_standin.setJob(standin, "100.0", JobStatus=4, ExitCode=0, Out="pilot output\n", Err="")
    htcondor_standin.setJob(standin, "100.1", JobStatus=2)
    statuses = ce.getJobStatus(references)["Value"]
    assert statuses == {references[0]: "Done", references[1]: "Running"}
    assert ce.statusReason(references[0]) == "HTCondor job Completed"
    assert ce.getJobOutput(references[0])["Value"] == ("pilot output\n", "")
    assert calls(standin)[-1]["arguments"] == ["-pool", f"{CE}:9619", "-name", CE, "100.0"]
    assert ce.getCEStatus()["Value"]["RunningJobs"] == 1


def test_held_pilots_are_failed_or_aborted_with_the_reason_and_kill_runs_condor_rm(standin: Path,
                                                                                   tmp_path: Path) -> None:
    executable = tmp_path / "pilot.py"
    executable.write_text("")
    ce = makeCE(tmp_path)
    ce.setToken({"access_token": "eyJ.token.sig"})
    references = ce.submitJob(str(executable), None, numberOfJobs=3)["Value"]
    submit = calls(standin)[0]
    assert submit["environment"]["_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS"] == "SCITOKENS"
    assert submit["files"]["_CONDOR_SCITOKENS_FILE"] == "eyJ.token.sig"
    assert "use_scitokens = true" in Path(submit["arguments"][-1]).read_text()
    htcondor_standin.setJob(standin, "100.0", JobStatus=5, HoldReasonCode=3, HoldReasonSubCode=55,
                            HoldReason="the pilot exited with code 2")
    htcondor_standin.setJob(standin, "100.1", JobStatus=5, HoldReasonCode=13, HoldReasonSubCode=0,
                            HoldReason="Transfer input files failure")
    statuses = ce.getJobStatus(references)["Value"]
    assert statuses == {references[0]: "Failed", references[1]: "Aborted", references[2]: "Waiting"}
    assert ce.statusReason(references[1]) == "HTCondor job held: Transfer input files failure"
    assert ce.killJob([references[2]])["OK"]
    assert calls(standin)[-1]["tool"] == "condor_rm" and calls(standin)[-1]["arguments"][-1] == "100.2"
    assert ce.getJobStatus([references[2]])["Value"] == {references[2]: "Aborted"}


def test_a_refusing_or_unreachable_ce_is_an_error_with_the_tools_message(standin: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    executable = tmp_path / "pilot.py"
    executable.write_text("")
    ce = makeCE(tmp_path)
    monkeypatch.setenv("HTCONDOR_STANDIN_FAIL", "condor_submit:ERROR: Failed to connect to queue manager "
                       f"{CE}\nAUTHENTICATE:1003:Failed to authenticate with any method")
    result = ce.submitJob(str(executable), None)
    assert not result["OK"] and "Failed to authenticate" in result["Message"], result
    monkeypatch.setenv("HTCONDOR_STANDIN_FAIL", f"condor_q:-- Failed to fetch ads from: <1.2.3.4:9619> : {CE}")
    result = ce.getJobStatus([f"htcondorce://{CE}/7.0"])
    assert not result["OK"] and "Failed to fetch ads" in result["Message"], result
    assert ce.getJobStatus(["htcondorce://other.ce/7.0"])["Value"] == {"htcondorce://other.ce/7.0": "Unknown"}
