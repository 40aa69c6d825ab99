"""Pilot tokens from the TokenManager: the client_credentials grant of the pilots' client at the real local
provider, handed to hosts (the SiteDirector) for any pilot group and to pilots for their own group only;
a token pilot's JobAgent renews its token in place once half its lifetime is gone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Security import Tokens
from dirac.Core.Tornado.Client import RPCClient
from dirac.WorkloadManagementSystem.Agent.JobAgent import JobAgent

from .conftest import environmentOf
from .test_idp_tokens import configureIdP, forged

TOKEN_MANAGER = "/Systems/Framework/Services/TokenManager"
PILOT_GROUPS = ["/dirac", "/dirac/pilot"]


@pytest.fixture(scope="module")
def pilotTokens(sqliteGrid, oidcProvider):
    """The pilots' client configured in the TokenManager, its secret in a 0600 file; a host credential."""
    configureIdP(sqliteGrid, oidcProvider)
    secretFile = sqliteGrid.instance.root / "pilot-client.secret"
    secretFile.write_text(oidcProvider.secret("dirac-pilot") + "\n")
    secretFile.chmod(0o600)
    with environmentOf(sqliteGrid.instance):
        api = CSAPI(proxyLocation=str(sqliteGrid.proxies["admin"]), useCertificates=False)
        assert api.initialize()["OK"]
        for option, value in {"IdProvider": "TestIdP", "client_id": "dirac-pilot",
                              "client_secret_file": str(secretFile)}.items():
            api.setOption(f"{TOKEN_MANAGER}/PilotTokens/{option}", value)
        assert api.commit()["OK"]
    host = sqliteGrid.instance.root / "user" / "host.pem"
    host.write_bytes(sqliteGrid.instance.hostCert.read_bytes() + sqliteGrid.instance.hostKey.read_bytes())
    host.chmod(0o600)
    sqliteGrid.proxies["host"] = host
    return oidcProvider


def whoami(token: str) -> dict:
    who = RPCClient("Test/Dummy", token=token).whoami()
    assert who["OK"], who
    return who["Value"]


def test_a_host_gets_a_pilot_token_that_acts_as_a_pilot(grid, pilotTokens):
    handed = grid.client("Framework/TokenManager", proxy="host").getPilotToken("dirac_pilot")
    assert handed["OK"], handed
    token = handed["Value"]
    assert token["group"] == "dirac_pilot" and token["provider"] == "TestIdP"
    assert token["expires_at"] > time.time() + 60
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "dirac-pilot" and claims["iss"] == pilotTokens.issuer
    who = whoami(token["access_token"])
    assert who["username"] == "pilot" and who["group"] == "dirac_pilot" and "GenericPilot" in who["properties"]
    again = grid.client("Framework/TokenManager", proxy="host").getPilotToken("dirac_pilot")
    assert again["Value"]["access_token"] == token["access_token"], "reused while in the first half of its life"


def test_a_pilot_renews_only_its_own_groups_token_and_users_get_none(grid, pilotTokens):
    pilot = grid.client("Framework/TokenManager", proxy="host").getPilotToken("dirac_pilot")["Value"]["access_token"]
    renewed = RPCClient("Framework/TokenManager", token=pilot).getPilotToken("")
    assert renewed["OK"] and renewed["Value"]["group"] == "dirac_pilot", renewed
    refused = RPCClient("Framework/TokenManager", token=pilot).getPilotToken("dirac_admin")
    assert not refused["OK"] and "may only renew the token of its own group" in refused["Message"]
    refused = grid.client("Framework/TokenManager", proxy="host").getPilotToken("dirac_user")
    assert not refused["OK"] and "dirac_user is not a pilot group" in refused["Message"]
    refused = grid.client("Framework/TokenManager", proxy="bob").getPilotToken("dirac_pilot")
    assert not refused["OK"] and "may not call getPilotToken" in refused["Message"]
    log = (grid.instance.root.parent / "server.log").read_text()
    assert "pilot token for dirac_pilot handed to" in log and pilot not in log
    assert pilotTokens.secret("dirac-pilot") not in log


def test_a_token_pilots_jobagent_renews_its_token_at_half_life(grid, pilotTokens, tmp_path, monkeypatch):
    now = int(time.time())
    old = forged(pilotTokens, sub="dirac-pilot", client_id="dirac-pilot", iat=now - 200, exp=now + 100,
                 **{"wlcg.groups": PILOT_GROUPS})
    assert whoami(old)["username"] == "pilot"
    tokenFile = tmp_path / "pilot.token"
    tokenFile.write_text(old)  # as a CE writes it: the bare JWT
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(tokenFile))
    monkeypatch.setenv("DIRAC_USE_ACCESS_TOKEN", "yes")
    agent = JobAgent()
    assert agent.tokenFile == str(tokenFile)
    assert 0 < agent.tokenTimeLeft() <= 100
    agent._renewPilotToken()
    renewed = json.loads(tokenFile.read_text())
    assert renewed["access_token"] != old and renewed["expires_at"] > now + 100
    assert Path(tokenFile).stat().st_mode & 0o777 == 0o600
    assert agent.tokenTimeLeft() > 100
    assert whoami(Tokens.currentAccessToken())["group"] == "dirac_pilot"
    agent._renewPilotToken()  # in the first half of its life: kept
    assert json.loads(tokenFile.read_text())["access_token"] == renewed["access_token"]
