"""DIRAC's OAuth2 authorization server (/auth) end to end: the real server on loopback HTTPS signs users in at
the real test OpenID Connect provider (browser steps scripted) and issues its own tokens, which the services
accept; device and authorization code flows, group choice and refusal, refresh, revocation, restart."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from html import unescape
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from dirac.Core.Config import gConfig
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Tornado.Client import RPCClient
from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient

from .authserver import (
    TEST_CLIENT,
    TEST_REDIRECT,
    Browser,
    configureAuthServer,
    deviceLogin,
    forgedToken,
    pkcePair,
    setOptions,
)
from .conftest import environmentOf, runningGrid

JDL = '[Executable = "/bin/echo"; Arguments = "auth"; CPUTime = 1000; JobName = "auth-server-job"]'


@pytest.fixture
def server(anyGrid, oidcProvider):
    """The authorization server of the SQLite grid, then of the MariaDB grid."""
    return configureAuthServer(anyGrid, oidcProvider)


@pytest.fixture
def sqliteServer(grid, oidcProvider):
    return configureAuthServer(grid, oidcProvider)


@pytest.fixture(scope="module")
def aliceAdmin(sqliteGrid, oidcProvider):
    """alice signed in through the server's device flow as dirac_admin (token response)."""
    with environmentOf(sqliteGrid.instance):
        return deviceLogin(configureAuthServer(sqliteGrid, oidcProvider), "alice", "g:dirac_admin")


def test_discovery_document_and_key_set_describe_the_server(sqliteServer):
    meta = requests.get(f"{sqliteServer.issuer}/.well-known/openid-configuration", verify=sqliteServer.caBundle,
                        timeout=10).json()
    assert meta["issuer"] == sqliteServer.issuer
    for name, path in [("device_authorization_endpoint", "device"), ("token_endpoint", "token"),
                       ("authorization_endpoint", "authorization"), ("revocation_endpoint", "revoke"),
                       ("jwks_uri", "jwk"), ("userinfo_endpoint", "userinfo")]:
        assert meta[name] == f"{sqliteServer.issuer}/{path}"
    assert meta["code_challenge_methods_supported"] == ["S256"] and "g:" in meta["scopes_supported"]
    keys = requests.get(meta["jwks_uri"], verify=sqliteServer.caBundle, timeout=10).json()["keys"]
    assert [key["alg"] for key in keys] == ["RS256"] and "d" not in keys[0]


def test_device_login_through_the_server_gives_a_token_every_service_accepts(server):
    tokens = deviceLogin(server, "alice", "g:dirac_admin")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["iss"] == server.issuer and claims["aud"] == "dirac" and claims["sub"] == "a1b2c3d4-alice"
    assert claims["scope"] == "g:dirac_admin" and claims["idp"] == "TestIdP" and claims["client_id"] == "DIRAC_CLI"
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "RS256" and tokens["refresh_token"]
    who = RPCClient("Test/Dummy", token=tokens["access_token"]).whoami()
    assert who["OK"], who
    assert (who["Value"]["username"], who["Value"]["group"]) == ("alice", "dirac_admin")
    assert who["Value"]["issuer"] == server.issuer and "JobAdministrator" in who["Value"]["properties"]
    jobID = RPCClient("WorkloadManagement/JobManager", token=tokens["access_token"]).submitJob(JDL)
    assert jobID["OK"], jobID
    attributes = RPCClient("WorkloadManagement/JobMonitoring", token=tokens["access_token"]).getJobAttributes(
        jobID["Value"])
    assert attributes["OK"], attributes
    assert (attributes["Value"]["Owner"], attributes["Value"]["OwnerGroup"]) == ("alice", "dirac_admin")


def test_the_device_code_is_pending_until_the_sign_in_and_gives_tokens_once(sqliteServer):
    device = sqliteServer.startDevice("g:dirac_user")
    assert sqliteServer.deviceToken(device).json()["error"] == "authorization_pending"
    assert sqliteServer.deviceToken(device).json()["error"] == "slow_down"  # polled faster than the interval
    assert 'id="success"' in Browser(sqliteServer).signIn(device["verification_uri_complete"], "bob").text
    first = sqliteServer.deviceToken(device)
    assert first.status_code == 200, first.text
    again = sqliteServer.deviceToken(device)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_group_the_provider_does_not_grant_is_refused_in_the_browser_and_to_the_client(sqliteServer):
    device = sqliteServer.startDevice("g:dirac_admin")
    page = Browser(sqliteServer).signIn(device["verification_uri_complete"], "bob")
    assert page.status_code == 403 and "does not grant group dirac_admin to user robert" in page.text
    refused = sqliteServer.deviceToken(device)
    assert refused.json()["error"] == "access_denied"
    assert "does not grant group dirac_admin" in refused.json()["error_description"]
    unknown = sqliteServer.post("device", client_id="DIRAC_CLI", scope="g:no_such_group")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_scope"


def test_without_a_group_the_user_chooses_among_the_granted_ones(sqliteServer):
    device = sqliteServer.startDevice()
    browser = Browser(sqliteServer)
    choice = browser.get(device["verification_uri_complete"], timeout=30)  # follows to the provider's login page
    assert choice.url.startswith(sqliteServer.provider.issuer)
    page = browser.signIn(device["verification_uri_complete"], "alice", choose="dirac_user")
    assert "in group dirac_user" in page.text
    tokens = sqliteServer.deviceToken(device).json()
    who = RPCClient("Test/Dummy", token=tokens["access_token"]).whoami()
    assert who["OK"] and who["Value"]["group"] == "dirac_user", who


def test_refresh_rotates_the_refresh_token_and_reuse_revokes_the_session(sqliteServer):
    tokens = deviceLogin(sqliteServer, "alice", "g:dirac_user")
    renewed = sqliteServer.refresh(tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    renewed = renewed.json()
    assert renewed["access_token"] != tokens["access_token"] and renewed["refresh_token"] != tokens["refresh_token"]
    assert renewed["scope"] == "g:dirac_user"
    who = RPCClient("Test/Dummy", token=renewed["access_token"]).whoami()
    assert who["OK"] and who["Value"]["group"] == "dirac_user", who
    reused = sqliteServer.refresh(tokens["refresh_token"])  # the old one again: stolen?
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert sqliteServer.refresh(renewed["refresh_token"]).json()["error"] == "invalid_grant"  # session revoked


def test_revoking_the_refresh_token_ends_the_session_and_access_tokens_revoke_it_too(sqliteServer):
    tokens = deviceLogin(sqliteServer, "bob", "g:dirac_user")
    revoked = sqliteServer.post("revoke", client_id="DIRAC_CLI", token=tokens["refresh_token"],
                                token_type_hint="refresh_token")
    assert revoked.status_code == 200
    assert sqliteServer.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    other = deviceLogin(sqliteServer, "bob", "g:dirac_user")
    assert sqliteServer.post("revoke", client_id="DIRAC_CLI", token=other["access_token"],
                             token_type_hint="access_token").status_code == 200
    assert sqliteServer.refresh(other["refresh_token"]).json()["error"] == "invalid_grant"
    assert sqliteServer.post("revoke", client_id="DIRAC_CLI", token="not-a-token").status_code == 200  # RFC 7009


@pytest.mark.parametrize("claims, reason", [
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "token expired"),
    ({"aud": "someone-else"}, "audience"),
    ({"iss": "https://127.0.0.1:1/auth"}, "not trusted"),
    ({"sub": "unknown-subject"}, "not registered"),
    ({"scope": "g:dirac_nosuchgroup", "idp": None}, "not a member of group dirac_nosuchgroup"),
])
def test_server_signed_tokens_with_bad_claims_are_refused(sqliteServer, aliceAdmin, claims, reason):
    assert RPCClient("Test/Dummy", token=forgedToken(sqliteServer)).whoami()["OK"]  # the forgery itself is sound
    result = RPCClient("Test/Dummy", token=forgedToken(sqliteServer, **claims)).whoami()
    assert not result["OK"] and reason in result["Message"], result


def test_unsigned_resigned_and_foreign_key_tokens_of_the_server_are_refused(sqliteServer, aliceAdmin):
    claims = jwt.decode(aliceAdmin["access_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    result = RPCClient("Test/Dummy", token=unsigned).whoami()
    assert not result["OK"] and "not accepted" in result["Message"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    result = RPCClient("Test/Dummy", token=forgedToken(sqliteServer, key=other)).whoami()
    assert not result["OK"] and "signature" in result["Message"]
    result = RPCClient("Test/Dummy", token=forgedToken(sqliteServer, key=other, header={"kid": "other"})).whoami()
    assert not result["OK"] and "not the authorization server's key" in result["Message"]


def test_userinfo_says_who_the_bearer_is(sqliteServer, aliceAdmin):
    info = requests.get(f"{sqliteServer.issuer}/userinfo", verify=sqliteServer.caBundle, timeout=10,
                        headers={"Authorization": f"Bearer {aliceAdmin['access_token']}"})
    assert info.status_code == 200, info.text
    assert info.json()["preferred_username"] == "alice" and info.json()["group"] == "dirac_admin"
    assert requests.get(f"{sqliteServer.issuer}/userinfo", verify=sqliteServer.caBundle, timeout=10).status_code == 401


def _authorize(server, verifier_challenge, scope="openid profile wlcg.groups g:dirac_user", login="alice", **extra):
    verifier, challenge = verifier_challenge
    query = {"response_type": "code", "client_id": TEST_CLIENT, "redirect_uri": TEST_REDIRECT, "scope": scope,
             "state": "st-1", "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    answer = Browser(server).signIn(f"{server.issuer}/authorization?{urlencode(query)}", login, stopAt=TEST_REDIRECT)
    assert isinstance(answer, str), answer.text
    return {name: values[-1] for name, values in parse_qs(urlparse(answer).query).items()}


def test_authorization_code_flow_with_pkce_gives_the_portal_tokens_and_an_id_token(sqliteServer):
    verifier, challenge = pkcePair()
    answer = _authorize(sqliteServer, (verifier, challenge))
    assert answer["state"] == "st-1" and answer["code"]
    exchange = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": TEST_REDIRECT}
    auth = (TEST_CLIENT, sqliteServer.clientSecret)
    wrong = requests.post(f"{sqliteServer.issuer}/token", data={**exchange, "code_verifier": pkcePair()[0]},
                          auth=auth, verify=sqliteServer.caBundle, timeout=30)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"  # and the code is now used up
    replayed = _authorize(sqliteServer, (verifier, challenge))  # the same OpenID Connect nonce again
    assert replayed["error"] == "invalid_request" and "code" not in replayed
    answer = _authorize(sqliteServer, (verifier, challenge), nonce="n-2")
    exchange["code"] = answer["code"]
    tokens = requests.post(f"{sqliteServer.issuer}/token", data={**exchange, "code_verifier": verifier}, auth=auth,
                           verify=sqliteServer.caBundle, timeout=30)
    assert tokens.status_code == 200, tokens.text
    tokens = tokens.json()
    assert tokens["scope"] == "openid profile g:dirac_user"  # wlcg.groups is the provider's business, left out
    keys = jwt.PyJWKSet.from_dict(requests.get(f"{sqliteServer.issuer}/jwk", verify=sqliteServer.caBundle,
                                               timeout=10).json())
    idToken = jwt.decode(tokens["id_token"], keys.keys[0].key, algorithms=["RS256"], audience=TEST_CLIENT,
                         issuer=sqliteServer.issuer)
    assert idToken["nonce"] == "n-2" and idToken["preferred_username"] == "alice" and idToken["group"] == "dirac_user"
    who = RPCClient("Test/Dummy", token=tokens["access_token"]).whoami()
    assert who["OK"] and (who["Value"]["username"], who["Value"]["group"]) == ("alice", "dirac_user"), who
    again = requests.post(f"{sqliteServer.issuer}/token", data={**exchange, "code_verifier": verifier}, auth=auth,
                          verify=sqliteServer.caBundle, timeout=30)
    assert again.json()["error"] == "invalid_grant"  # a code is used once


def test_authorization_requests_without_pkce_or_with_a_refused_group_are_sent_back_with_an_error(sqliteServer):
    query = {"response_type": "code", "client_id": TEST_CLIENT, "redirect_uri": TEST_REDIRECT, "state": "st-2"}
    answer = Browser(sqliteServer).signIn(f"{sqliteServer.issuer}/authorization?{urlencode(query)}", "alice",
                                          stopAt=TEST_REDIRECT)
    assert "error=invalid_request" in answer and "PKCE" in answer.replace("+", " ")
    answer = _authorize(sqliteServer, pkcePair(), scope="g:dirac_admin", login="bob")
    assert answer["error"] == "access_denied" and answer["state"] == "st-1"
    page = Browser(sqliteServer).signIn(f"{sqliteServer.issuer}/authorization?client_id=nobody&response_type=code",
                                        "alice")
    assert page.status_code == 400 and page.json()["error"] == "invalid_client"


@pytest.fixture(scope="module")
def restartableServer(tmp_path_factory, oidcProvider):
    with runningGrid(tmp_path_factory.mktemp("authgrid")) as started, environmentOf(started.instance):
        yield configureAuthServer(started, oidcProvider)


def test_a_restart_loses_no_pending_device_login_and_no_refresh_token(restartableServer):
    server = restartableServer
    with environmentOf(server.grid.instance):
        earlier = deviceLogin(server, "alice", "g:dirac_user")
        device = server.startDevice("g:dirac_admin")
        server.grid.restart()
        assert 'id="success"' in Browser(server).signIn(device["verification_uri_complete"], "alice").text
        tokens = server.deviceToken(device)
        assert tokens.status_code == 200, tokens.text
        renewed = server.refresh(earlier["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        who = RPCClient("Test/Dummy", token=renewed.json()["access_token"]).whoami()
        assert who["OK"] and who["Value"]["group"] == "dirac_user", who


def test_the_server_log_names_the_events_but_never_a_token_or_the_key(sqliteServer, aliceAdmin):
    log = (sqliteServer.grid.instance.root.parent / "server.log").read_text()
    assert "device login granted to alice@dirac_admin via TestIdP" in log
    assert f"tokens ({'urn:ietf:params:oauth:grant-type:device_code'}) issued to alice@dirac_admin" in log
    key = sqliteServer.signingKey.read_text().splitlines()[1]
    for secret in (aliceAdmin["access_token"], aliceAdmin["refresh_token"], key):
        assert secret not in log


def _command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"dirac.FrameworkSystem.scripts.{name}", *args]


def test_dirac_login_through_the_server_then_refresh_by_the_client_and_dirac_logout(sqliteServer, tmp_path):
    tokenFile = tmp_path / "bt_server"
    env = {**os.environ, "BEARER_TOKEN_FILE": str(tokenFile)}
    process = subprocess.Popen(_command("dirac_login", "dirac_admin", "--use-diracas"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    lines = [process.stdout.readline(), process.stdout.readline()]
    if lines[0].strip() != "Use the following link to continue":
        process.kill()
        raise AssertionError(f"dirac-login printed {lines}: {process.communicate()}")
    assert lines[1].startswith(f"{sqliteServer.issuer}/device?user_code=")
    assert 'id="success"' in Browser(sqliteServer).signIn(lines[1].strip(), "alice").text
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, (out, err)
    assert "Authorization pending.. (use CNTL + C to stop)" in err
    assert f"New token is saved to {tokenFile}." in out
    assert "username     : alice" in out and "DIRAC group  : dirac_admin" in out
    assert f"issuer       : {sqliteServer.issuer}" in out
    assert stat.S_IMODE(tokenFile.stat().st_mode) == 0o600
    token = json.loads(tokenFile.read_text())
    assert token["access_token"] not in out + err and token["refresh_token"] not in out + err
    token["expires_at"] = 1  # the client refreshes it at the server before the call
    tokenFile.write_text(json.dumps(token))
    os.environ["BEARER_TOKEN_FILE"] = str(tokenFile)
    try:
        who = RPCClient("Test/Dummy", useAccessToken=True).whoami()
    finally:
        del os.environ["BEARER_TOKEN_FILE"]
    assert who["OK"] and who["Value"]["group"] == "dirac_admin", who
    renewed = json.loads(tokenFile.read_text())
    assert renewed["refresh_token"] != token["refresh_token"] and renewed["expires_at"] > time.time()
    out = subprocess.run(_command("dirac_logout"), env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "refresh token revoked" in out.stdout, out
    assert not tokenFile.exists()
    assert sqliteServer.refresh(renewed["refresh_token"]).json()["error"] == "invalid_grant"


def test_dirac_proxy_scope_gives_a_proxy_of_the_user_from_the_proxy_manager(restartableServer, tmp_path):
    server, dn = restartableServer, "/O=DIRAC-Seed/OU=dirac/CN=robert"
    cert, key = server.grid.ca.issueUserCertificate(dn)
    setOptions(server.grid, {"/Registry/Users/robert/DN": dn, "/Registry/Groups/dirac_user/Users": "admin, bob, robert"})
    certificate = X509Chain.fromPEM(cert + key)
    certificate.generateProxy(3600).dumpToFile(str(tmp_path / "robert.pem"))
    with environmentOf(server.grid.instance):
        uploaded = ProxyManagerClient(proxyLocation=str(tmp_path / "robert.pem"), useCertificates=False).uploadProxy(
            certificate)
        assert uploaded["OK"], uploaded
        answer = deviceLogin(server, "bob", "g:dirac_user+proxy+lifetime:7200")  # as DIRAC's dirac-login joins them
    assert set(answer) == {"proxy"}
    proxy = X509Chain.fromPEM(answer["proxy"])
    assert proxy.identityDN == dn and proxy.diracGroup == "dirac_user" and proxy.hasKey
    assert proxy.remainingSeconds >= 7000  # lifetime: is the time the proxy must have left at least
    with environmentOf(server.grid.instance):
        device = server.startDevice("g:dirac_user proxy")
        assert 'id="success"' in Browser(server).signIn(device["verification_uri_complete"], "alice").text
        refused = server.deviceToken(device)
    assert refused.status_code == 400 and "alice has no certificate DN" in refused.json()["error_description"]


def test_a_host_without_the_signing_key_checks_the_servers_tokens_with_its_key_set(sqliteServer, aliceAdmin):
    from dirac.Core.Config import gConfig
    from dirac.Core.Security import IdProviders
    from dirac.Core.Security.Credentials import validateToken
    from dirac.Core.Utilities.Exceptions import AuthenticationError

    assert not gConfig.getValue("/DIRAC/Security/Authorization/SigningKeyFile", "")  # this test process: a client
    IdProviders.forgetCachedKeys()
    claims = validateToken(aliceAdmin["access_token"])  # the key from <issuer>/jwk, TLS checked with the CA dir
    assert claims["sub"] == "a1b2c3d4-alice" and claims["scope"] == "g:dirac_admin"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthenticationError, match="not in the key set"):
        validateToken(forgedToken(sqliteServer, key=other, header={"kid": "other"}))


def test_a_provider_with_register_users_signs_in_a_user_unknown_to_the_registry(restartableServer):
    server = restartableServer
    setOptions(server.grid, {"/Resources/IdProviders/TestIdP/RegisterUsers": "yes"})
    with environmentOf(server.grid.instance):
        tokens = deviceLogin(server, "carol", "g:dirac_user")
        who = RPCClient("Test/Dummy", token=tokens["access_token"]).whoami()
    assert who["OK"] and (who["Value"]["username"], who["Value"]["group"]) == ("carol", "dirac_user"), who
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["preferred_username"] == "carol"


@pytest.fixture
def aliceInTwoGroups(sqliteServer):
    """alice a member of dirac_user and dirac_admin in the Registry (the groups the portal offers her)."""
    with environmentOf(sqliteServer.grid.instance):
        before = {group: gConfig.getValue(f"/Registry/Groups/{group}/Users", "") for group in ("dirac_user",
                                                                                                "dirac_admin")}
    setOptions(sqliteServer.grid, {f"/Registry/Groups/{group}/Users": f"{users}, alice"
                                   for group, users in before.items()})
    yield sqliteServer
    setOptions(sqliteServer.grid, {f"/Registry/Groups/{group}/Users": users for group, users in before.items()})


def test_the_portal_signs_users_in_through_the_server_and_changes_group_with_a_g_scope(aliceInTwoGroups):
    # dirac-server init points the portal's "DIRAC" sign-in at /auth with the DIRAC_Web client
    sqliteServer = aliceInTwoGroups
    root = f"https://127.0.0.1:{sqliteServer.grid.port}/DIRAC"
    with Browser(sqliteServer) as browser:
        assert 'id="login-DIRAC"' in browser.get(root + "/login", timeout=30).text
        callback = browser.signIn(f"{root}/login/oidc/DIRAC?next=/DIRAC/whoami", "alice", choose="dirac_user",
                                  stopAt=root)
        assert callback.startswith(f"{root}/login/callback?code="), callback
        page = browser.get(callback, timeout=30)
        if "/group" in page.url:  # alice may act in several groups: the portal asks once
            page = _choosePortalGroup(browser, root, page, "dirac_user")
        who = browser.get(root + "/whoami", timeout=30).text
        assert re.search(r'id="who-username">alice<', who) and re.search(r'id="who-group">dirac_user<', who), who
        assert "OpenID Connect (DIRAC)" in who
        # another group: the portal asks the server again, with DIRAC's g:<group> scope
        answer = browser.post(root + "/group", data={"_csrf": _csrf(page), "group": "dirac_admin",
                                                     "next": root + "/whoami"}, allow_redirects=False, timeout=30)
        assert answer.status_code == 302 and "/login/oidc/DIRAC" in answer.headers["Location"]
        authorize = browser.get(urljoin(root, answer.headers["Location"]), allow_redirects=False, timeout=30)
        assert authorize.headers["Location"].startswith(f"{sqliteServer.issuer}/authorization")
        assert "g%3Adirac_admin" in authorize.headers["Location"]
        callback = browser.signIn(authorize.headers["Location"], "alice", stopAt=root)
        browser.get(callback, timeout=30)
        who = browser.get(root + "/whoami", timeout=30).text
        assert re.search(r'id="who-group">dirac_admin<', who), who


def _csrf(page: requests.Response) -> str:
    found = re.search(r'name="_csrf" value="([^"]+)"', page.text) or re.search(r'data-csrf="([^"]+)"', page.text)
    assert found, page.text[:500]
    return unescape(found.group(1))


def _choosePortalGroup(browser: Browser, root: str, page: requests.Response, group: str) -> requests.Response:
    return browser.post(root + "/group", data={"_csrf": _csrf(page), "group": group, "next": root + "/whoami"},
                        timeout=30)
