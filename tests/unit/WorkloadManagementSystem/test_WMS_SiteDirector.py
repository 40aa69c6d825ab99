"""The SiteDirector with real databases (SQLite and MariaDB) and a real Local CE starting real pilot processes.

The pilots point at a Configuration Server that does not exist, so they start, fail to reach
it and end: enough to see what the director submits, registers and reads back.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.Keys import writePrivateFile
from dirac.WorkloadManagementSystem.Agent.QueueAgent import QUEUE_STATE_FILE
from dirac.WorkloadManagementSystem.Agent.SiteDirector import SiteDirector
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.Logic.PilotWrapper import pilotWrapper

SITE = "DIRAC.Test.local"
CE = f"/Resources/Sites/DIRAC/{SITE}/CEs/ce.test"
AGENT = "/Systems/WorkloadManagement/Agents/SiteDirector"


@pytest.fixture
def director(wms, tmp_path: Path):  # noqa: ANN001, ANN201
    """A SiteDirector over the `wms` databases, a pilot credential from a throw-away CA and one queue."""
    ca = CertificateAuthority(tmp_path / "ca")
    ca.create()
    ca.installInCertificatesDir(tmp_path / "certificates")
    cert, key = ca.issueUserCertificate("/O=DIRAC-Seed/CN=pilot")
    (tmp_path / "pilotcert.pem").write_bytes(cert)
    writePrivateFile(tmp_path / "pilotkey.pem", key)
    pilotDB = PilotAgentsDB(wms.jobDB.url)

    def make(**options: str) -> SiteDirector:
        settings = {
            "/DIRAC/VirtualOrganization": "dirac",
            "/DIRAC/Configuration/Servers": "https://127.0.0.1:1/Configuration/Server",
            "/DIRAC/Security/CALocation": str(tmp_path / "certificates"),
            "/LocalInstallation/InstancePath": str(tmp_path / "instance"),
            f"{CE}/CEType": "Local", f"{CE}/WorkingDirectory": str(tmp_path / "pilots"),
            f"{CE}/Queues/q1/CPUTime": "86400", f"{CE}/Queues/q1/MaxTotalJobs": "3",
            f"{CE}/Queues/q1/MaxWaitingJobs": "2",
            f"{AGENT}/PilotCertificate": str(tmp_path / "pilotcert.pem"),
            f"{AGENT}/PilotKey": str(tmp_path / "pilotkey.pem"), f"{AGENT}/PilotBenchmark": "builtin",
            **options,
        }
        gConfig.initialize(options=settings, fetchRemote=False)
        agent = SiteDirector(taskQueueDB=wms.tqDB, pilotAgentsDB=pilotDB)
        agent.initialize()
        return agent

    make.pilotDB = pilotDB  # type: ignore[attr-defined]
    return make


def pilotsOf(pilotDB: PilotAgentsDB) -> dict:
    refs = pilotDB.selectPilots({})
    return pilotDB.getPilotInfo(refs) if refs else {}


def test_no_waiting_job_means_no_pilot(director) -> None:  # noqa: ANN001
    agent = director()
    assert agent.execute().startswith("0 pilot(s) submitted")
    assert pilotsOf(director.pilotDB) == {}


def test_pilots_are_submitted_within_max_waiting_and_registered_with_their_stamps(director, wms, makeJDL) -> None:  # noqa: ANN001
    wms.submitWaiting(makeJDL(Parameters=5, Arguments="%s"))
    agent = director()
    agent.execute()
    pilots = pilotsOf(director.pilotDB)
    assert len(pilots) == 2, "MaxWaitingJobs = 2 bounds the pilots not yet running"
    for ref, info in pilots.items():
        assert ref.startswith("local://") and info["PilotStamp"] == ref.rsplit("/", 1)[-1]
        assert (info["DestinationSite"], info["Queue"], info["GridSite"], info["VO"]) == ("ce.test", "q1", SITE,
                                                                                           "dirac")
        assert info["GridType"] == "Local"


def test_max_total_jobs_counts_running_pilots_too(director, wms, makeJDL) -> None:  # noqa: ANN001
    wms.submitWaiting(makeJDL(Parameters=5, Arguments="%s"))
    agent = director(**{f"{AGENT}/UpdatePilotStatus": "no"})
    agent.execute()
    for ref in director.pilotDB.selectPilots({}):
        director.pilotDB.setPilotStatus(ref, "Running")
    agent.execute()
    assert len(pilotsOf(director.pilotDB)) == 3, "MaxTotalJobs = 3 bounds waiting plus running pilots"
    agent.execute()
    assert len(pilotsOf(director.pilotDB)) == 3


def test_jobs_of_another_vo_get_no_pilot(director, wms, makeJDL) -> None:  # noqa: ANN001
    wms.submitWaiting(makeJDL(), vo="othervo")
    director().execute()
    assert pilotsOf(director.pilotDB) == {}


def test_pilot_statuses_and_output_are_read_back_from_the_ce(director, wms, makeJDL) -> None:  # noqa: ANN001
    wms.submitWaiting(makeJDL())
    agent = director()
    agent.execute()
    [ref] = director.pilotDB.selectPilots({})
    deadline = time.monotonic() + 60
    while director.pilotDB.getPilotInfo(ref)[ref]["Status"] in ("Submitted", "Running") and \
            time.monotonic() < deadline:
        time.sleep(0.5)
        agent.updatePilotStatus()
    info = director.pilotDB.getPilotInfo(ref)[ref]
    assert info["Status"] == "Failed", "the pilot cannot reach the (absent) CS and exits non-zero"
    output = director.pilotDB.getPilotOutput(ref)
    assert "pilot version" in output["StdOut"] and "DIRAC.Test.local" in output["StdOut"]


def test_a_failing_queue_is_left_alone_longer_and_longer_with_its_reason_then_used_again(  # noqa: ANN001
        director, wms, makeJDL, tmp_path: Path) -> None:
    wms.submitWaiting(makeJDL())
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the pilots' directory should be")
    agent = director(**{f"{CE}/WorkingDirectory": str(blocked), f"{AGENT}/FailedQueueBackoff": "0.5"})
    stateFile = tmp_path / "instance" / "run" / "SiteDirector" / QUEUE_STATE_FILE
    assert json.loads(stateFile.read_text()) == {}
    agent.execute()
    assert pilotsOf(director.pilotDB) == {} and agent._backingOff("ce.test/q1")
    state = json.loads(stateFile.read_text())["ce.test/q1"]
    assert state["failures"] == 1 and state["delay"] == 0.5 and str(blocked) in state["reason"], state
    assert "1 backing off" in agent.execute()
    time.sleep(0.6)
    agent.execute()  # fails again: twice as long
    state = json.loads(stateFile.read_text())["ce.test/q1"]
    assert state["failures"] == 2 and state["delay"] == 1.0 and state["since"] <= state["lastFailure"], state
    blocked.unlink()
    time.sleep(1.1)
    agent.execute()
    assert len(pilotsOf(director.pilotDB)) == 1 and not agent._backingOff("ce.test/q1")
    assert json.loads(stateFile.read_text()) == {}
    shutil.rmtree(blocked)  # made by the CE meanwhile
    blocked.write_text("blocked again")
    wms.submitWaiting(makeJDL())
    agent.execute()  # a new row of failures starts from FailedQueueBackoff again
    assert json.loads(stateFile.read_text())["ce.test/q1"]["delay"] == 0.5


def test_pilot_wrapper_is_self_contained(tmp_path: Path) -> None:
    script = pilotWrapper(["--check-only", "--cs", "x", "--site", "S", "--ce", "C", "--benchmark", "builtin"],
                          {"certificates/abcd.0": b"not really a certificate"})
    (tmp_path / "wrapper.py").write_text(script)
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "wrapper.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "dirac_pilot.py").exists() and (tmp_path / "certificates" / "abcd.0").exists()
    assert '"NumberOfProcessors"' in run.stdout and '"CPUBenchmark": "builtin"' in run.stdout
