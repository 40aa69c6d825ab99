"""The test OpenID Connect provider itself: discovery, the scripted device login, client credentials."""

from __future__ import annotations

import jwt
import pytest
import requests

from .idp import DEVICE_GRANT, completeDeviceLogin, metadata


def claimsOf(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_device_login_completed_by_the_scripted_browser_gives_jwt_access_and_refresh_tokens(oidcProvider):
    meta = metadata(oidcProvider)
    assert meta["issuer"] == oidcProvider.issuer
    device = requests.post(meta["device_authorization_endpoint"], verify=oidcProvider.caFile, timeout=10,
                           data={"client_id": "dirac-cli", "scope": "openid offline_access wlcg.groups"}).json()
    pending = requests.post(meta["token_endpoint"], verify=oidcProvider.caFile, timeout=10, data={
        "client_id": "dirac-cli", "grant_type": DEVICE_GRANT, "device_code": device["device_code"]}).json()
    assert pending["error"] == "authorization_pending"
    completeDeviceLogin(device["verification_uri_complete"], "bob", "bob-password", oidcProvider.caFile)
    tokens = requests.post(meta["token_endpoint"], verify=oidcProvider.caFile, timeout=10, data={
        "client_id": "dirac-cli", "grant_type": DEVICE_GRANT, "device_code": device["device_code"]}).json()
    claims = claimsOf(tokens["access_token"])
    assert claims["sub"] == "e5f6a7b8-bob" and claims["aud"] == "dirac" and claims["iss"] == oidcProvider.issuer
    assert claims["wlcg.groups"] == ["/dirac", "/dirac/user"]
    assert tokens["refresh_token"]


def test_wrong_password_does_not_complete_the_device_login(oidcProvider):
    meta = metadata(oidcProvider)
    device = requests.post(meta["device_authorization_endpoint"], verify=oidcProvider.caFile, timeout=10,
                           data={"client_id": "dirac-cli", "scope": "openid"}).json()
    with pytest.raises(requests.HTTPError):
        completeDeviceLogin(device["verification_uri_complete"], "bob", "wrong", oidcProvider.caFile)


def test_pilot_client_credentials_give_a_token_with_the_pilot_group(oidcProvider):
    meta = metadata(oidcProvider)
    tokens = requests.post(meta["token_endpoint"], verify=oidcProvider.caFile, timeout=10,
                           data={"grant_type": "client_credentials", "scope": "wlcg.groups"},
                           auth=("dirac-pilot", oidcProvider.secret("dirac-pilot"))).json()
    claims = claimsOf(tokens["access_token"])
    assert claims["sub"] == "dirac-pilot" and claims["wlcg.groups"] == ["/dirac/pilot"]
    refused = requests.post(meta["token_endpoint"], verify=oidcProvider.caFile, timeout=10,
                            data={"grant_type": "client_credentials"}, auth=("dirac-pilot", "not-the-secret"))
    assert refused.status_code == 401
