"""The pushed payload bundle: built here, run by a bare python3 (-I: no site packages) as a node would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dirac.WorkloadManagementSystem.JobWrapper.JobArguments import PayloadDescription
from dirac.WorkloadManagementSystem.Logic.PushBundle import (
    BundleError,
    buildBundle,
    buildNodeBundle,
    jobOutput,
    parseResult,
    payloadDescription,
    unpackOutputs,
)


def runBundle(tmp_path: Path, jdl: str, inputs: dict[str, str] | None = None) -> tuple[int, str, Path]:
    inputDir = tmp_path / "inputs"
    inputDir.mkdir()
    for name, text in (inputs or {}).items():
        (inputDir / name).write_text(text)
    payload = payloadDescription(42, PayloadDescription.fromJDL(jdl), "DIRAC.HPC.org", 60, 1024 * 1024)
    bundle = tmp_path / "job-42.py"
    bundle.write_text(buildBundle(payload, inputDir))
    node = tmp_path / "node"
    node.mkdir()
    env = {"PATH": os.environ["PATH"], "X509_USER_PROXY": "/tmp/x509up_u0", "DIRACSYSCONFIG": "/etc/dirac.cfg",
           "BEARER_TOKEN_FILE": "/tmp/bt", "SITE_VARIABLE": "kept"}
    done = subprocess.run([sys.base_prefix + "/bin/python3", "-I", str(bundle)], cwd=node, env=env,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, node


def test_a_bundle_runs_its_payload_with_its_inputs_and_returns_outputs_exit_code_and_cpu(tmp_path: Path) -> None:
    jdl = ('[Executable = "script.sh"; Arguments = "hello"; StdOutput = "std.out"; StdError = "std.err"; '
           'OutputSandbox = {"result.txt", "absent.txt"}; ExecutionEnvironment = {"MYVAR=42"}]')
    script = ("#!/bin/sh\ncat data.txt > result.txt\necho \"$1 $DIRACJOBID $MYVAR $SITE_VARIABLE\"\n"
              "env | grep -E '^(X509|DIRACSYS|BEARER)' || echo no-credentials\necho oops >&2\n"
              "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done\n")
    code, stdout, node = runBundle(tmp_path, jdl, {"script.sh": script, "data.txt": "input data\n"})
    assert code == 0, stdout
    result = parseResult(stdout)
    assert result["ExitCode"] == 0 and result["CPUTime"] > 0 and not result["Error"], result
    assert result["MissingFiles"] == ["absent.txt"]
    files = unpackOutputs(result, tmp_path / "back")
    assert sorted(path.name for path in files) == ["result.txt", "std.err", "std.out"]
    assert (tmp_path / "back" / "std.out").read_text() == "hello 42 42 kept\nno-credentials\n"
    assert (tmp_path / "back" / "std.err").read_text() == "oops\n"
    assert (tmp_path / "back" / "result.txt").read_text() == "input data\n"


def test_a_failing_payload_gives_its_exit_code_and_a_missing_executable_an_error(tmp_path: Path) -> None:
    (tmp_path / "failing").mkdir()
    code, stdout, _ = runBundle(tmp_path / "failing", '[Executable = "/bin/sh"; Arguments = "-c \'exit 7\'"]')
    assert code == 7 and parseResult(stdout)["ExitCode"] == 7
    (tmp_path / "missing").mkdir()
    code, stdout, _ = runBundle(tmp_path / "missing", '[Executable = "no-such-program"]')
    result = parseResult(stdout)
    assert code == 2 and result["ExitCode"] is None and "not found" in result["Error"], result


def test_the_bundle_holds_no_credential_and_no_server_address(tmp_path: Path) -> None:
    payload = payloadDescription(7, PayloadDescription.fromJDL('[Executable = "/bin/true"]'), "S", 0, 0)
    text = buildBundle(payload)
    assert "BEGIN CERTIFICATE" not in text and "PRIVATE KEY" not in text and "https://" not in text
    assert "import urllib" not in text and "import http" not in text and "socket.create_connection" not in text


def test_output_without_a_result_block_is_an_error() -> None:
    with pytest.raises(BundleError, match="no result"):
        parseResult("slurmstepd: error: *** JOB 12 CANCELLED ***\n")
    with pytest.raises(BundleError, match="cannot be read"):
        parseResult("==== dirac-push-result begin ====\n{oops\n==== dirac-push-result end ====\n")


def test_a_whole_node_bundle_runs_its_jobs_side_by_side_each_with_its_own_result(tmp_path: Path) -> None:
    jobs = []
    for jobID, (code, text) in {7: (0, "seven"), 8: (5, "eight")}.items():
        inputs = tmp_path / f"inputs-{jobID}"
        inputs.mkdir()
        # each job waits (at most 20 s) for the other's start mark: they only end if they run side by side
        (inputs / "run.sh").write_text(f"#!/bin/sh\necho {text} > mine.txt\ntouch ../started-{jobID}\n"
                                       f"i=0; while [ ! -e ../started-{15 - jobID} ] && [ $i -lt 200 ]; do "
                                       f"sleep 0.1; i=$((i+1)); done\n[ $i -lt 200 ] || exit 9\nexit {code}\n")
        jdl = '[Executable = "run.sh"; StdOutput = "std.out"; StdError = "std.err"; OutputSandbox = {"mine.txt"}]'
        jobs.append((payloadDescription(jobID, PayloadDescription.fromJDL(jdl), "DIRAC.HPC.org", 60, 1 << 20), inputs))
    bundle = tmp_path / "node.py"
    bundle.write_text(buildNodeBundle(jobs))
    node = tmp_path / "node"
    node.mkdir()
    done = subprocess.run([sys.base_prefix + "/bin/python3", "-I", str(bundle)], cwd=node, capture_output=True,
                          text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stdout + done.stderr
    for jobID, code, text in ((7, 0, "seven"), (8, 5, "eight")):
        result = parseResult(jobOutput(done.stdout, jobID))
        assert result["ExitCode"] == code, (jobID, result)
        files = unpackOutputs(result, tmp_path / f"back-{jobID}")
        assert (tmp_path / f"back-{jobID}" / "mine.txt").read_text() == f"{text}\n", files
    assert jobOutput("no markers here", 7) == "no markers here"
