"""Tokens of a real external OpenID Connect provider on the RPC framework: keys from its discovery
document, users by subject, DIRAC groups only where the provider's claims grant them."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Tornado.Client import RPCClient

from .conftest import environmentOf
from .idp import USERS, clientCredentialsToken, csOptions, deviceLoginTokens


def configureIdP(grid, provider) -> None:
    """The provider in the CS with its group mapping; alice and robert (the IdP's bob) known by subject."""
    with environmentOf(grid.instance):
        api = CSAPI(proxyLocation=str(grid.proxies["admin"]), useCertificates=False)
        assert api.initialize()["OK"]
        for path, value in csOptions(provider).items():
            api.setOption(path, value)
        assert api.commit()["OK"]


@pytest.fixture(scope="module")
def idp(sqliteGrid, oidcProvider):
    configureIdP(sqliteGrid, oidcProvider)
    return oidcProvider


@pytest.fixture(scope="module")
def aliceTokens(idp) -> dict:
    return deviceLoginTokens(idp, "alice", "openid offline_access wlcg.groups group:dirac_admin")


def whoami(token: str) -> dict:
    return RPCClient("Test/Dummy", token=token).whoami()


def forged(provider, key=None, header: dict | None = None, **claims) -> str:
    """A token signed with the provider's own key (unless ``key``): valid except for what ``claims`` change."""
    signing = jwt.PyJWK(provider.signingKey)
    now = int(time.time())
    payload = {"iss": provider.issuer, "sub": USERS["alice"][1], "aud": "dirac", "iat": now, "exp": now + 300,
               "scope": "wlcg.groups", "wlcg.groups": ["/dirac", "/dirac/user"], "client_id": "dirac-cli"}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key or signing.key, algorithm="ES256",
                      headers={"kid": signing.key_id, **(header or {})})


def test_device_login_token_gives_the_requested_group_the_provider_grants(grid, aliceTokens):
    who = whoami(aliceTokens["access_token"])
    assert who["OK"], who
    assert who["Value"]["username"] == "alice"
    assert who["Value"]["group"] == "dirac_admin"
    assert who["Value"]["IdProvider"] == "TestIdP"
    assert "JobAdministrator" in who["Value"]["properties"]


def test_without_a_group_scope_the_default_group_is_used_when_granted(grid, idp):
    who = whoami(forged(idp))
    assert who["OK"], who
    assert who["Value"]["group"] == "dirac_user"


def test_a_group_the_provider_did_not_grant_is_refused(grid, idp):
    tokens = deviceLoginTokens(idp, "bob", "openid wlcg.groups group:dirac_admin")
    result = whoami(tokens["access_token"])
    assert not result["OK"]
    assert "does not grant group dirac_admin to user robert" in result["Message"]
    result = whoami(forged(idp, **{"wlcg.groups": ["/other/vo"]}))
    assert not result["OK"] and "grants user alice no DIRAC group" in result["Message"]


def test_pilot_client_credentials_token_acts_in_the_pilot_group(grid, idp):
    who = whoami(clientCredentialsToken(idp, "dirac-pilot"))
    assert who["OK"], who
    assert who["Value"]["username"] == "pilot" and who["Value"]["group"] == "dirac_pilot"
    assert "GenericPilot" in who["Value"]["properties"]


@pytest.mark.parametrize("claims, reason", [
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "token expired"),
    ({"nbf": int(time.time()) + 3600}, "not valid before"),
    ({"aud": "someone-else"}, "audience"),
    ({"iss": "https://127.0.0.1:1"}, "not trusted"),
    ({"sub": "unknown-subject"}, "not registered"),
])
def test_provider_signed_tokens_with_bad_claims_are_refused(grid, idp, claims, reason):
    result = whoami(forged(idp, **claims))
    assert not result["OK"]
    assert reason in result["Message"]


def test_unsigned_resigned_and_unknown_key_tokens_are_refused(grid, idp, aliceTokens):
    header, payload, _ = aliceTokens["access_token"].split(".")
    claims = jwt.decode(aliceTokens["access_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    result = whoami(unsigned)
    assert not result["OK"] and "not accepted" in result["Message"]
    other = ec.generate_private_key(ec.SECP256R1())
    resigned = jwt.encode(claims, other, algorithm="ES256", headers={"kid": jwt.get_unverified_header(
        aliceTokens["access_token"])["kid"]})
    result = whoami(resigned)
    assert not result["OK"] and "signature" in result["Message"]
    result = whoami(forged(idp, key=other, header={"kid": "not-a-known-key"}))
    assert not result["OK"] and "not in the key set" in result["Message"]


def test_no_token_or_private_key_in_the_server_or_provider_logs(grid, idp, aliceTokens):
    whoami(aliceTokens["access_token"])
    serverLog = (grid.instance.root.parent / "server.log").read_text()
    assert "whoami by alice@dirac_admin" in serverLog
    logs = serverLog + idp.log.read_text()
    assert "grant urn:ietf:params:oauth:grant-type:device_code" in logs
    secrets = [aliceTokens["access_token"], aliceTokens["refresh_token"], idp.signingKey["d"],
               *json.loads((idp.state / "clients.json").read_text()).values()]
    for secret in secrets:
        assert secret not in logs
    assert "PRIVATE KEY" not in logs
