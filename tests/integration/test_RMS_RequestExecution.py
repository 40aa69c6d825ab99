"""The RequestExecutingAgent as a real process (``dirac-agent ... --once`` with the host certificate) against the
real services over HTTPS: the one-box Storage Elements, the File Catalog, the ProxyManager (the agent acts with
the owner's proxy), the WMS. A replication to an SE that is down is retried and done once it is back; a request
of a user without any credential fails with the reason; ForwardDISET replays a call as its owner, and a call
the owner may not make is refused; an owner who only signed in with a token is acted for with an access token
from the TokenManager."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from dirac.Core.Utilities import DEncode
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.RequestManagementSystem.Client.File import File
from dirac.RequestManagementSystem.Client.Operation import Operation
from dirac.RequestManagementSystem.Client.ReqClient import ReqClient
from dirac.RequestManagementSystem.Client.Request import Request
from dirac.WorkloadManagementSystem.Client.WMSClients import JobMonitoringClient

from .conftest import freePort
from .test_TokenManager import manager  # noqa: F401 (alice's refresh token stored in the TokenManager)

pytestmark = pytest.mark.timeout(300)
AGENT = "RequestManagement/RequestExecutingAgent"
SECTION = "/Systems/RequestManagement/Agents/RequestExecutingAgent"
BOB_DN = "/O=DIRAC-Seed/OU=dirac/CN=bob"
HOME = "/dirac/user/b/bob"


def ok(result: dict):  # noqa: ANN201
    assert result["OK"], result.get("Message")
    return result["Value"]


def dipSE(name: str, port: int, token: str = "Disk") -> dict[str, str]:
    """CS options of an SE of the StorageElement service on ``port`` (nothing listens: the SE is down)."""
    section = f"/Resources/StorageElements/{name}"
    return {f"{section}/DIP/Protocol": "https", f"{section}/DIP/Host": "127.0.0.1", f"{section}/DIP/Port": str(port),
            f"{section}/DIP/Path": "/DataManagement/StorageElement", f"{section}/DIP/SpaceToken": token}


def runAgent(grid, tmp_path: Path, options: dict[str, str] | None = None) -> str:  # noqa: ANN001
    """One cycle of the agent in its own process, as on a server host; its log."""
    overrides = {f"{SECTION}/RetryDelay": "0.1", **(options or {})}
    command = [sys.executable, "-m", "dirac.FrameworkSystem.scripts.dirac_agent", AGENT, "--once",
               "--cfg", str(grid.instance.clientCFG), "--cfg", str(grid.instance.serverCFG),
               *[arg for path, value in overrides.items() for arg in ("-o", f"{path}={value}")]]
    env = {**os.environ, "DIRACSYSCONFIG": "", "X509_CERT_DIR": str(grid.instance.certificatesDir)}
    env.pop("X509_USER_PROXY", None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    return log


@pytest.fixture(scope="module")
def bobUploaded(sqliteGrid, tmp_path_factory) -> None:  # noqa: ANN001
    """bob's proxy in the ProxyManager: the agent acts with it."""
    sqliteGrid.uploadProxy(BOB_DN, "dirac_user", tmp_path_factory.mktemp("bob-rms"))


@pytest.fixture
def bob(grid, bobUploaded) -> dict:  # noqa: ANN001
    return {"proxyLocation": str(grid.proxies["bob"]), "useCertificates": False}


def storedFile(grid, bob: dict, tmp_path: Path, se: str) -> str:  # noqa: ANN001
    lfn = f"{HOME}/rms-{secrets.token_hex(4)}/data.txt"
    (tmp_path / "data.txt").write_text("moved by a request\n")
    assert lfn in ok(DataManager(**bob).putAndRegister(lfn, tmp_path / "data.txt", se))["Successful"]
    return lfn


def moveRequest(lfn: str, target: str, source: str) -> Request:
    """DIRAC's failover pair: ReplicateAndRegister to ``target``, then RemoveReplica on ``source``."""
    request = Request(RequestName=f"move-{lfn.split('/')[-2]}")
    replicate = Operation(Type="ReplicateAndRegister", TargetSE=target, SourceSE=source)
    replicate.addFile(File(LFN=lfn))
    remove = Operation(Type="RemoveReplica", TargetSE=source)
    remove.addFile(File(LFN=lfn))
    request.addOperation(replicate)
    request.addOperation(remove)
    return request


def test_a_file_is_replicated_to_its_target_and_its_source_replica_removed(grid, bob, tmp_path) -> None:  # noqa: ANN001
    lfn = storedFile(grid, bob, tmp_path, "OneBox-Failover")
    requests = ReqClient(**bob)
    requestID = ok(requests.putRequest(moveRequest(lfn, "OneBox-SE", "OneBox-Failover")))
    log = runAgent(grid, tmp_path)
    assert f"request {requestID}: Done" in log and "limited proxy of bob@dirac_user obtained" in log
    done = ok(requests.peekRequest(requestID))
    assert [f.Status for op in done for f in op] == ["Done", "Done"]
    assert set(ok(DataManager(**bob).getReplicas(lfn))["Successful"][lfn]) == {"OneBox-SE"}
    storage = grid.instance.root / "storage"
    assert (storage / "Disk" / lfn.lstrip("/")).read_text() == "moved by a request\n"
    assert not (storage / "Failover" / lfn.lstrip("/")).exists()


def test_a_target_se_down_is_retried_and_the_file_replicated_once_it_is_back(grid, bob, tmp_path) -> None:  # noqa: ANN001
    lfn = storedFile(grid, bob, tmp_path, "OneBox-Failover")
    requests = ReqClient(**bob)
    requestID = ok(requests.putRequest(moveRequest(lfn, "Flaky-SE", "OneBox-Failover")))
    log = runAgent(grid, tmp_path, dipSE("Flaky-SE", freePort()))  # the SE's server is down
    assert f"request {requestID}: Waiting, next attempt" in log
    waiting = ok(requests.peekRequest(requestID))
    assert ok(requests.getRequestStatus(requestID)) == "Waiting"
    assert (waiting[0][0].Status, waiting[0][0].Attempt) == ("Waiting", 1)
    assert "Flaky-SE is not available" in waiting[0][0].Error and waiting.Error.startswith(lfn)
    assert set(ok(DataManager(**bob).getReplicas(lfn))["Successful"][lfn]) == {"OneBox-Failover"}, "nothing lost"

    log = runAgent(grid, tmp_path, dipSE("Flaky-SE", grid.port))  # back: the service's Disk area
    assert f"request {requestID}: Done" in log
    done = ok(requests.peekRequest(requestID))
    assert done[0][0].Attempt == 2 and done.Status == "Done"
    assert set(ok(DataManager(**bob).getReplicas(lfn))["Successful"][lfn]) == {"Flaky-SE"}


def test_a_request_of_a_user_without_proxy_or_token_fails_with_the_reason(grid, tmp_path) -> None:  # noqa: ANN001
    admin = ReqClient(proxyLocation=str(grid.proxies["admin"]), useCertificates=False)
    request = Request(RequestName="no-credential", Owner="pilot", OwnerGroup="dirac_pilot")  # FullDelegation
    remove = Operation(Type="RemoveFile")
    remove.addFile(File(LFN="/dirac/user/p/pilot/nothing"))
    request.addOperation(remove)
    requestID = ok(admin.putRequest(request))
    log = runAgent(grid, tmp_path)
    assert f"request {requestID}: Failed" in log
    failed = ok(admin.peekRequest(requestID))
    assert failed[0][0].Status == "Failed"
    assert failed[0][0].Error.startswith("no credential of pilot@dirac_pilot: proxy: ")
    assert "has no proxy uploaded" in failed[0][0].Error and "token: " in failed[0][0].Error


def forwardRequest(name: str, stub: tuple) -> Request:
    request = Request(RequestName=name)
    request.addOperation(Operation(Type="ForwardDISET", Arguments=DEncode.encode(stub)))
    return request


def test_forward_diset_replays_a_call_as_its_owner_and_a_call_the_owner_may_not_make_fails(grid, bob,  # noqa: ANN001
                                                                                          tmp_path) -> None:
    from dirac.Interfaces.API.Dirac import Dirac
    from dirac.Interfaces.API.Job import Job

    job = Job()
    job.setExecutable("/bin/true")
    bobsJob = ok(Dirac(**bob).submitJob(job))
    adminsJob = ok(Dirac(proxyLocation=str(grid.proxies["user"]), useCertificates=False).submitJob(job))
    requests = ReqClient(**bob)
    call = (("WorkloadManagement/JobStateUpdate", {}), "setJobParameter")
    replayed = ok(requests.putRequest(forwardRequest("replay", (*call, [bobsJob, "RMSReplay", "as bob"]))))
    refused = ok(requests.putRequest(forwardRequest("refused", (*call, [adminsJob, "RMSReplay", "as bob"]))))
    log = runAgent(grid, tmp_path)
    assert f"request {replayed}: Done" in log and f"request {refused}: Failed" in log
    monitoring = JobMonitoringClient(proxyLocation=str(grid.proxies["admin"]), useCertificates=False)
    assert ok(monitoring.getJobParameters([bobsJob]))[str(bobsJob)]["RMSReplay"] == "as bob"
    assert "RMSReplay" not in ok(monitoring.getJobParameters([adminsJob])).get(str(adminsJob), {})
    error = ok(requests.peekRequest(refused))[0].Error
    assert error.startswith("WorkloadManagement/JobStateUpdate.setJobParameter refused: ") and "bob" in error


def test_an_owner_without_proxy_is_acted_for_with_an_access_token_from_the_token_manager(grid, manager,  # noqa: F811
                                                                                        tmp_path) -> None:
    """alice signed in with dirac-login only (her refresh token in the TokenManager, no proxy uploaded)."""
    admin = ReqClient(proxyLocation=str(grid.proxies["admin"]), useCertificates=False)
    request = Request(RequestName="alice-by-token", Owner="alice", OwnerGroup="dirac_admin")
    remove = Operation(Type="RemoveFile")
    remove.addFile(File(LFN="/dirac/user/a/alice/never-stored.dat"))  # absent: removed at once, as in DIRAC
    request.addOperation(remove)
    requestID = ok(admin.putRequest(request))
    log = runAgent(grid, tmp_path)
    assert "access token of alice@dirac_admin obtained" in log and f"request {requestID}: Done" in log
    assert ok(admin.peekRequest(requestID))[0][0].Status == "Done"
