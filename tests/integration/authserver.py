"""DIRAC's authorization server (``/auth``) under test, signing users in at the test OpenID Connect provider.

``configureAuthServer(grid, provider)`` declares in the grid's CS the provider (``idp.csOptions``), the
server's own client there (``dirac-web``, its secret in a 0600 file named by
``AuthServer_client_secret_file``) and a confidential test client of the server (``test-portal``,
redirect URI ``https://127.0.0.1:1/callback``, never contacted: the browser stops there).
``Browser`` is a scripted browser for both servers' pages: the server's own (provider and group
choices, the final page) and the provider's login and consent forms.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import jwt
import requests
from cryptography.hazmat.primitives import serialization

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI

from .conftest import Grid, environmentOf
from .idp import USERS, Provider, _form, csOptions

TEST_CLIENT = "test-portal"
TEST_REDIRECT = "https://127.0.0.1:1/callback"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class AuthServerUnderTest:
    grid: Grid
    provider: Provider
    caBundle: str  # the grid's CA and the provider's, for a browser that visits both
    clientSecret: str  # of the test-portal client

    @property
    def issuer(self) -> str:
        return f"https://127.0.0.1:{self.grid.port}/auth"

    def post(self, endpoint: str, **data: str) -> requests.Response:
        return requests.post(f"{self.issuer}/{endpoint}", data=data, verify=self.caBundle, timeout=30)

    def startDevice(self, scope: str = "", clientID: str = "DIRAC_CLI") -> dict:
        response = self.post("device", client_id=clientID, scope=scope)
        assert response.status_code == 200, response.text
        return response.json()

    def deviceToken(self, device: dict, clientID: str = "DIRAC_CLI") -> requests.Response:
        return self.post("token", client_id=clientID, grant_type=DEVICE_GRANT, device_code=device["device_code"])

    def refresh(self, refreshToken: str) -> requests.Response:
        return self.post("token", client_id="DIRAC_CLI", grant_type="refresh_token", refresh_token=refreshToken)

    @property
    def signingKey(self) -> Path:
        return self.grid.instance.root / "etc" / "auth-signing-key.pem"


_configured: dict[int, AuthServerUnderTest] = {}


def configureAuthServer(grid: Grid, provider: Provider) -> AuthServerUnderTest:
    """The grid's authorization server with the provider as its identity provider (once per grid)."""
    if grid.port in _configured:
        return _configured[grid.port]
    root = grid.instance.root.parent
    secretFile = root / "dirac-web.secret"
    secretFile.write_text(provider.secret("dirac-web"))
    secretFile.chmod(0o600)
    clientSecret = secrets.token_urlsafe(24)
    client = "/DIRAC/Security/Authorization/Clients/TestPortal"
    options = {**csOptions(provider),
               "/Resources/IdProviders/TestIdP/AuthServer_client_id": "dirac-web",
               "/Resources/IdProviders/TestIdP/AuthServer_client_secret_file": str(secretFile),
               f"{client}/client_id": TEST_CLIENT, f"{client}/client_secret": clientSecret,
               f"{client}/redirect_uri": TEST_REDIRECT, f"{client}/grant_types": "authorization_code, refresh_token",
               f"{client}/response_types": "code"}
    setOptions(grid, options)
    bundle = root / "auth-ca-bundle.pem"
    bundle.write_text(grid.ca.certPath.read_text() + Path(provider.caFile).read_text())
    _configured[grid.port] = AuthServerUnderTest(grid, provider, str(bundle), clientSecret)
    return _configured[grid.port]


def setOptions(grid: Grid, options: dict[str, str]) -> None:
    """Commit ``options`` to the grid's central configuration as its administrator."""
    with environmentOf(grid.instance):
        api = CSAPI(proxyLocation=str(grid.proxies["admin"]), useCertificates=False)
        assert api.initialize()["OK"]
        for path, value in options.items():
            api.setOption(path, value)
        assert api.commit()["OK"]


def pkcePair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


_LINK = re.compile(r'<a class="choice" href="([^"]+)">([^<]+)</a>')


class Browser(requests.Session):
    """A browser stand-in: cookies, both servers' certificates, redirects followed by hand."""

    def __init__(self, server: AuthServerUnderTest):
        super().__init__()
        self.verify = server.caBundle
        self.trust_env = False

    def signIn(self, url: str, login: str, choose: str | None = None, stopAt: str | None = None
               ) -> requests.Response | str:
        """Open ``url`` and go on as a user would: sign in at the provider as ``login``, allow, pick ``choose``
        (an identity provider or group) on the server's choice pages. The server's final page, or the URL of
        the redirect to ``stopAt`` (a client's redirect URI)."""
        method, data = "GET", None
        for _ in range(30):
            response = self.request(method, url, data=data, allow_redirects=False, timeout=30)
            if response.is_redirect:
                url, method, data = urljoin(url, response.headers["Location"]), "GET", None
                if stopAt and url.startswith(stopAt):
                    return url
                continue
            text = response.text
            if 'id="success"' in text or 'id="error"' in text or response.headers.get("Content-Type", "").startswith(
                    "application/json"):
                return response
            links = [(unescape(label), unescape(href)) for href, label in _LINK.findall(text)]
            if links:
                url = next((href for label, href in links if label == choose), links[0][1])
                continue
            form = _form(response)
            values = {"login": login, "password": USERS[login][0]} if form["action"].endswith("/login") else {}
            url, method, data = urljoin(response.url, form["action"]), form["method"].upper(), \
                {**form["fields"], **values}
        raise AssertionError(f"the sign-in did not end: {url}")


def deviceLogin(server: AuthServerUnderTest, login: str, scope: str = "", choose: str | None = None) -> dict:
    """A whole device login through the server (the browser step scripted): the token response."""
    device = server.startDevice(scope)
    page = Browser(server).signIn(device["verification_uri_complete"], login, choose)
    assert 'id="success"' in page.text, page.text
    response = server.deviceToken(device)
    assert response.status_code == 200, response.text
    return response.json()


def forgedToken(server: AuthServerUnderTest, key: object = None, header: dict | None = None, **claims: object) -> str:
    """A token signed with the server's own key (unless ``key``): valid except for what ``claims`` change."""
    from dirac.Core.Security.TokenSigning import thumbprint

    private = serialization.load_pem_private_key(server.signingKey.read_bytes(), None)
    kid = thumbprint(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True))
    now = int(time.time())
    payload = {"iss": server.issuer, "sub": USERS["alice"][1], "aud": "dirac", "iat": now, "exp": now + 300,
               "scope": "g:dirac_user", "idp": "TestIdP", "client_id": "DIRAC_CLI", "sid": "forged"}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key or private, algorithm="RS256",
                      headers={"kid": kid, **(header or {})})
