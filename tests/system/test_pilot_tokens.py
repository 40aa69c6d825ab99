"""Token pilots on the one-box site: the SiteDirector has no pilot certificate, only the pilots' OAuth2 client
at the real local identity provider (through the TokenManager, client credentials); its pilots carry that
access token and nothing else, and run to Done a job that alice submitted with the token of her device login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gridtools import WMS, jdl, pilotLogLines, pilotsOf, startedGrid, waitFor
from idp import Provider, csOptions, deviceLoginTokens, runningProvider

from dirac.FrameworkSystem.Logic.Instance import Instance
from dirac.Interfaces.API.Dirac import Dirac
from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient

pytestmark = pytest.mark.slow
DIRECTOR = f"{WMS}/Agents/SiteDirector"
TOKEN_MANAGER = "/Systems/Framework/Services/TokenManager"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with runningProvider(tmp_path_factory.mktemp("oidc")) as started:
        yield started


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> Iterator[Instance]:
    root = tmp_path_factory.mktemp("pilottokens")
    secret = root / "pilot-client.secret"
    secret.write_text(provider.secret("dirac-pilot"))
    secret.chmod(0o600)
    options = {
        **csOptions(provider),
        "/Registry/Groups/dirac_user/Users": "admin, alice",
        f"{DIRECTOR}/PollingTime": "1",
        f"{DIRECTOR}/PilotTokens": "yes",
        f"{WMS}/Agents/Optimizers/PollingTime": "1",
        f"{WMS}/Agents/JobAgent/PollingTime": "1",
        f"{WMS}/Agents/JobAgent/StopAfterFailedMatches": "3",
        # alice signed in with a token only: she has no proxy for her jobs, which run with the pilot's token
        f"{WMS}/Agents/JobAgent/UsePayloadProxy": "no",
        f"{WMS}/JobWrapper/PollingTime": "1",
        f"{TOKEN_MANAGER}/PilotTokens/IdProvider": "TestIdP",
        f"{TOKEN_MANAGER}/PilotTokens/client_id": "dirac-pilot",
        f"{TOKEN_MANAGER}/PilotTokens/client_secret_file": str(secret),
    }
    # no pilot certificate: the token is the pilots' only credential
    noCertificate = {f"{DIRECTOR}/PilotCertificate": "", f"{DIRECTOR}/PilotKey": ""}
    with startedGrid(root, options, serverOptions=noCertificate) as instance:
        yield instance


def test_a_token_pilot_runs_the_job_alice_submitted_with_her_token(site: Instance, provider: Provider,
                                                                   tmp_path: Path) -> None:
    alice = deviceLoginTokens(provider, "alice")["access_token"]
    submitted = JobManagerClient(token=alice).submitJob(jdl("/bin/sh", "-c 'echo payload ran && env'"))
    assert submitted["OK"], submitted
    jobID = int(submitted["Value"])
    final = waitFor([jobID], timeout=240)
    assert final[jobID]["Status"] == "Done", final

    fetched = Dirac(token=alice).getOutputSandbox(jobID, str(tmp_path))
    assert fetched["OK"], fetched
    output = (tmp_path / str(jobID) / "std.out").read_text()
    assert "payload ran" in output
    assert "BEARER_TOKEN_FILE=" in output and "X509_USER_PROXY" not in output, output

    assert len(pilotsOf(jobID)) == 1
    lines = pilotLogLines(jobID, "credential: ")
    assert any("credential: access token in" in line for line in lines), lines
    serverLog = site.logFile.read_text()
    assert "new pilot token for group dirac_pilot from TestIdP" in serverLog
    assert "pilot token for dirac_pilot handed to" in serverLog
    assert "new pilot proxy" not in serverLog
    for secret in (alice, provider.secret("dirac-pilot")):
        assert secret not in serverLog
