"""The web portal's sign-in, sessions and CSRF protection, over HTTP against a real server and a real
OpenID Connect provider (tests/servers/oidc)."""

from __future__ import annotations

import re

import pytest
import requests

from dirac.Core.Base.DB import disposeEngines
from dirac.WebApp.DB.SessionDB import SessionDB

from .conftest import environmentOf
from .portal import PortalSession, runningPortalGrid


@pytest.fixture(scope="module")
def portal(tmp_path_factory, oidcProvider):
    with runningPortalGrid(tmp_path_factory.mktemp("portal"), oidcProvider) as started:
        yield started


@pytest.fixture
def alice(portal) -> PortalSession:
    with PortalSession(portal) as session:
        session.signIn("alice", "dirac_user")
        yield session


def test_unauthenticated_visitor_is_sent_to_the_login_page(portal):
    with PortalSession(portal) as session:
        for path in ("/jobs", "/jobs/1", "/pilots", "/files", "/config", "/whoami", "/jobs/plot.png"):
            response = session.page(path, allow_redirects=False)
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/DIRAC/login"), path
        page = session.page("/jobs")
        assert page.url.startswith(portal.root + "/login")
        assert "Sign in with TestIdP" in page.text
        assert "Job Monitor" not in page.text  # no navigation before signing in


def test_oidc_sign_in_with_pkce_gives_a_secure_session_cookie_and_the_chosen_group(portal):
    with PortalSession(portal) as session:
        start = session.page("/login")
        redirect = session.get(portal.root + "/login/oidc/TestIdP", allow_redirects=False, timeout=30)
        assert redirect.status_code == 302
        location = redirect.headers["Location"]
        assert location.startswith(portal.provider.issuer)
        assert "code_challenge_method=S256" in location and "code_challenge=" in location
        assert "client_id=dirac-web" in location
        cookie = start.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        page = session.signIn("alice", "dirac_user")
        assert page.url.startswith(portal.root + "/jobs")
        who = session.page("/whoami")
        assert re.search(r'id="who-username">alice<', who.text)
        assert re.search(r'id="who-group">dirac_user<', who.text)
        assert "NormalUser" in who.text
        assert "OpenID Connect (TestIdP)" in who.text


def test_choosing_another_group_fetches_a_token_for_it(portal):
    with PortalSession(portal) as session:
        session.signIn("alice", "dirac_admin")
        who = session.page("/whoami")
        assert re.search(r'id="who-group">dirac_admin<', who.text), who.text
        assert "JobAdministrator" in who.text


def test_a_group_the_identity_lacks_is_refused(portal):
    with PortalSession(portal) as session:
        session.signIn("bob")  # the provider grants bob /dirac/user only
        page = session.post_form("/group", {"group": "dirac_admin"})
        assert "You may not act in group" in page.text
        assert re.search(r'id="who-group">dirac_user<', session.page("/whoami").text)


def test_post_without_or_with_a_wrong_csrf_token_is_refused(alice):
    for data in ({"action": "kill", "JobID": "1"}, {"action": "kill", "JobID": "1", "_csrf": "forged"}):
        response = alice.post(alice.portal.root + "/jobs/action", data=data, timeout=30, allow_redirects=False)
        assert response.status_code == 403
        assert "CSRF check failed" in response.text
    logout = alice.post(alice.portal.root + "/logout", data={}, timeout=30, allow_redirects=False)
    assert logout.status_code == 403  # a third-party page cannot sign the user out either
    assert alice.page("/whoami").url.endswith("/whoami")


def test_logout_ends_the_session_on_the_server(alice):
    cookie = alice.cookies.get("dirac_session")
    page = alice.post_form("/logout", {})
    assert "You have signed out" in page.text
    with PortalSession(alice.portal) as stolen:  # the old cookie is worth nothing now
        stolen.cookies.set("dirac_session", cookie, domain="127.0.0.1", path="/DIRAC")
        assert stolen.page("/whoami").url.startswith(alice.portal.root + "/login")


def sessionIDOf(session: PortalSession, portal) -> str:
    """The session id inside the browser's signed cookie."""
    from tornado.web import decode_signed_value

    secret = (portal.grid.instance.root / "etc" / "webapp.secret").read_bytes().strip()
    return decode_signed_value(secret, "dirac_session", session.cookies.get("dirac_session").strip('"')).decode()


def test_an_expired_session_sends_the_user_to_sign_in_again(alice, portal):
    assert alice.page("/whoami").url.endswith("/whoami")
    with environmentOf(portal.grid.instance):  # the session lives in SessionDB: expire it there
        db = SessionDB()
        try:
            assert db.countSessions("alice") >= 1
            db.expireSession(sessionIDOf(alice, portal))
        finally:
            disposeEngines(db.url)
    page = alice.page("/jobs")
    assert page.url.startswith(alice.portal.root + "/login")
    assert "Your session has expired" in page.text


def test_a_tampered_cookie_is_ignored(portal):
    with PortalSession(portal) as session:
        session.cookies.set("dirac_session", "2|1:0|10:1700000000|14:dirac_session|8:Zm9v|" + "0" * 64,
                            domain="127.0.0.1", path="/DIRAC")
        assert session.page("/jobs").url.startswith(portal.root + "/login")


def test_certificate_sign_in_acts_as_the_certificate_user(portal, tmp_path):
    cert, key = portal.grid.ca.issueUserCertificate("/O=DIRAC-Seed/OU=dirac/CN=bob")
    pem = tmp_path / "bob.pem"
    pem.write_bytes(cert + key)
    with PortalSession(portal, cert=str(pem)) as session:
        login = session.page("/login")
        assert "Sign in with your certificate" in login.text
        assert "CN=bob" in login.text
        page = session.post(portal.root + "/login/certificate", data={"_csrf": session.csrf(login)}, timeout=60)
        assert page.url.startswith(portal.root + "/jobs"), page.text[:500]
        who = session.page("/whoami")
        assert re.search(r'id="who-username">bob<', who.text)
        assert "X509 certificate" in who.text


def test_certificate_sign_in_without_a_certificate_is_refused(portal):
    with PortalSession(portal) as session:
        login = session.page("/login")
        assert "Sign in with your certificate" not in login.text
        page = session.post(portal.root + "/login/certificate", data={"_csrf": session.csrf(login)}, timeout=60)
        assert "presented no certificate" in page.text


def test_open_redirects_are_not_followed(portal):
    with PortalSession(portal) as session:
        page = session.page("/login", params={"next": "https://evil.example/"})
        assert "evil.example" not in page.text


def test_a_post_without_a_session_is_refused(portal):
    response = requests.post(portal.root + "/jobs/action", data={"action": "kill", "JobID": "1"},
                             verify=portal.caBundle, timeout=30, allow_redirects=False)
    assert response.status_code == 403
