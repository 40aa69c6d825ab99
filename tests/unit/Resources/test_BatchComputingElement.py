"""BatchComputingElement on this host with the Host batch system: real detached processes, no sshd needed.

The SSH CEs run the same code with an SSH command runner (tests/system/test_ce_ssh.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.BatchComputingElement import LocalBatchComputingElement
from dirac.Resources.Computing.ComputingElement import getComputingElement
from dirac.Resources.Computing.LocalComputingElement import LocalComputingElement
from dirac.Resources.Computing.SSHComputingElement import SSHBatchComputingElement, SSHComputingElement

PROXY = "-----BEGIN CERTIFICATE-----\nproxy\n-----END CERTIFICATE-----\n"


@pytest.fixture
def executable(tmp_path: Path) -> Path:
    path = tmp_path / "pilot.sh"
    path.write_text('#!/bin/sh\necho "stamp=$DIRAC_PILOT_STAMP ref=$DIRAC_PILOT_REFERENCE"\n'
                    'echo "proxy=$(cat "$X509_USER_PROXY" | head -2 | tail -1) dir=$(pwd)"\n'
                    'echo oops >&2\nsleep "${SLEEP:-0}"\nexit "${RC:-0}"\n')
    return path


def hostCE(tmp_path: Path, **parameters: str) -> LocalBatchComputingElement:
    return LocalBatchComputingElement("ce.example.org", {"BatchSystem": "Host", "SharedArea": str(tmp_path / "shared"),
                                                         "MaxTotalJobs": "3", "MaxWaitingJobs": "3",
                                                         "KillGracePeriod": "1", **parameters})


def waitFinal(ce: LocalBatchComputingElement, references: list[str], timeout: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        result = ce.getJobStatus(references)
        assert result["OK"], result
        if all(status in ("Done", "Failed", "Aborted") for status in result["Value"].values()):
            return result["Value"]
        assert time.monotonic() < deadline, result
        time.sleep(0.2)


def test_pilots_run_with_their_stamp_reference_proxy_and_working_directory(tmp_path: Path, executable: Path) -> None:
    ce = hostCE(tmp_path)
    result = ce.submitJob(str(executable), PROXY, numberOfJobs=2)
    assert result["OK"], result
    references = result["Value"]
    assert all(ref.startswith("localhost://ce.example.org/") for ref in references)
    assert result["PilotStampDict"] == {ref: ref.rsplit("/", 1)[1] for ref in references}
    assert set(waitFinal(ce, references).values()) == {"Done"}
    assert ce.statusReason(references[0]) == "exit code 0"
    stdout, stderr = ce.getJobOutput(references[0])["Value"]
    stamp = result["PilotStampDict"][references[0]]
    assert f"stamp={stamp} ref={references[0]}" in stdout
    assert f"proxy=proxy dir={tmp_path}/shared/work/{stamp}" in stdout
    assert stderr == "oops\n"
    # the credential is removed once the pilot ended
    assert not (tmp_path / "shared" / "data" / f"{stamp}.proxy").exists()


def test_the_proxy_file_is_private_while_the_pilot_runs(tmp_path: Path, executable: Path) -> None:
    ce = hostCE(tmp_path)
    [reference] = ce.submitJob(str(executable), PROXY, environment={"SLEEP": "5"})["Value"]
    stamp = reference.rsplit("/", 1)[1]
    proxy = tmp_path / "shared" / "data" / f"{stamp}.proxy"
    assert proxy.read_text() == PROXY and (proxy.stat().st_mode & 0o777) == 0o600
    assert ce.killJob([reference])["OK"]


def test_exit_codes_make_done_and_failed(tmp_path: Path, executable: Path) -> None:
    ce = hostCE(tmp_path)
    [failing] = ce.submitJob(str(executable), None, environment={"RC": "3"})["Value"]
    assert waitFinal(ce, [failing]) == {failing: "Failed"}
    assert ce.statusReason(failing) == "exit code 3"


def test_killed_and_vanished_pilots_are_aborted_with_the_reason(tmp_path: Path, executable: Path) -> None:
    ce = hostCE(tmp_path)
    killed, vanished = ce.submitJob(str(executable), None, numberOfJobs=2, environment={"SLEEP": "60"})["Value"]
    time.sleep(0.5)
    assert ce.getJobStatus([killed, vanished])["Value"] == {killed: "Running", vanished: "Running"}
    assert ce.getCEStatus()["Value"]["RunningJobs"] == 2
    assert ce.killJob([killed])["OK"]
    # someone else kills the other pilot's whole session: no exit code is ever written
    pid = int((tmp_path / "shared" / "data" / f"{vanished.rsplit('/', 1)[1]}.pid").read_text().split()[0])
    os.killpg(pid, 9)
    statuses = waitFinal(ce, [killed, vanished])
    assert statuses == {killed: "Aborted", vanished: "Aborted"}
    assert ce.statusReason(killed) == "killed through the CE"
    assert ce.statusReason(vanished) == "the pilot process vanished without an exit code"
    assert ce.getCEStatus()["Value"]["RunningJobs"] == 0


def test_no_more_pilots_than_free_slots_are_submitted(tmp_path: Path, executable: Path) -> None:
    ce = hostCE(tmp_path, MaxTotalJobs="2", MaxWaitingJobs="2")
    references = ce.submitJob(str(executable), None, numberOfJobs=2, environment={"SLEEP": "30"})["Value"]
    refused = ce.submitJob(str(executable), None)
    assert not refused["OK"] and "0 slot(s) free" in refused["Message"]
    assert ce.available()["Value"] == 0
    ce.killJob(references)


def test_references_of_other_ces_and_malformed_ids_are_unknown(tmp_path: Path) -> None:
    ce = hostCE(tmp_path)
    statuses = ce.getJobStatus(["localhost://other.ce/abc", "localhost://ce.example.org/$(rm -rf x)",
                                "localhost://ce.example.org/0123456789abcdef"])["Value"]
    assert statuses == {"localhost://other.ce/abc": "Unknown", "localhost://ce.example.org/$(rm -rf x)": "Unknown",
                        "localhost://ce.example.org/0123456789abcdef": "Unknown"}
    assert not ce.killJob(["localhost://other.ce/abc"])["OK"]


def test_local_ce_type_with_a_batch_system_becomes_a_batch_ce(tmp_path: Path) -> None:
    slurm = getComputingElement("Local", "ce", {"BatchSystem": "SLURM", "WorkingDirectory": str(tmp_path)})
    assert isinstance(slurm, LocalBatchComputingElement) and slurm.referencePrefix == "localslurm://ce/"
    plain = getComputingElement("Local", "ce", {"BatchSystem": "Host", "WorkingDirectory": str(tmp_path)})
    assert type(plain) is LocalComputingElement


def test_ssh_ce_references_follow_dirac(tmp_path: Path) -> None:
    ssh = getComputingElement("SSH", "ce.example.org", {"SSHHost": "ce.example.org", "BatchSystem": "Slurm"})
    assert isinstance(ssh, SSHComputingElement) and ssh.makeReference("12") == "sshslurm://ce.example.org/12"
    several = getComputingElement("SSHBatch", "farm", {"SSHHost": "a.example.org/4, b.example.org:2222/8"})
    assert isinstance(several, SSHBatchComputingElement)
    assert several.makeReference("12", "b.example.org:2222") == "sshbatchhost://farm/b.example.org:2222/12"
    assert {name: host.maxJobs for name, host in several._hosts().items()} == {"a.example.org": 4,
                                                                                "b.example.org:2222": 8}


@pytest.mark.parametrize(("ceType", "parameters", "message"), [
    ("SSH", {}, "SSHHost is not set"),
    ("SSH", {"SSHHost": "a, b"}, "use CEType = SSHBatch"),
    ("SSH", {"SSHHost": "a", "BatchSystem": "PBS"}, "no batch system 'PBS'"),
    ("SSHBatch", {"SSHHost": "a/many"}, "invalid SSHHost entry"),
])
def test_misconfigured_ssh_ces_say_what_is_wrong(ceType: str, parameters: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ce = getComputingElement(ceType, "ce", parameters)
        ce._hosts()
