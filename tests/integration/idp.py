"""The local OpenID Connect provider of tests/servers/oidc, and a scripted browser for its pages.

``runningProvider(stateDir)`` starts it with ``oidc.sh`` (npm packages cached) and stops it;
when it cannot start the tests fail with CI=true and are skipped otherwise.
``completeDeviceLogin(url, login, password, caFile)`` does what a user does in a browser
after ``dirac-login`` printed the verification URL: enter the code, confirm, sign in, allow.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

SCRIPT = Path(__file__).parents[1] / "servers" / "oidc" / "oidc.sh"
USERS = {"alice": ("alice-password", "a1b2c3d4-alice"), "bob": ("bob-password", "e5f6a7b8-bob"),
         "carol": ("carol-password", "c9d0e1f2-carol")}  # carol: not in the Registry


@dataclass
class Provider:
    """A running provider: its issuer URL, TLS CA file, client secrets, signing key and log."""

    issuer: str
    state: Path
    accessTokenAlgorithm: str = "ES256"

    @property
    def caFile(self) -> str:
        return str(self.state / "ca.pem")

    @property
    def log(self) -> Path:
        return self.state / "server.log"

    def secret(self, client: str) -> str:
        return json.loads((self.state / "clients.json").read_text())[client]

    @property
    def signingKey(self) -> dict:
        """The private key (JWK) of the provider's access tokens, to forge tokens it would have signed."""
        name = "signing-key-rs256.jwk.json" if self.accessTokenAlgorithm == "RS256" else "signing-key.jwk.json"
        return json.loads((self.state / name).read_text())


@contextlib.contextmanager
def runningProvider(state: Path, accessTokenTTL: int = 300, accessTokenAlgorithm: str = "ES256"
                    ) -> Iterator[Provider]:
    """The OIDC provider started in ``state`` (access tokens signed with ``accessTokenAlgorithm``, ES256 or
    RS256); fails (CI=true) or skips when it cannot start."""
    env = {**os.environ, "OIDC_ACCESS_TOKEN_TTL": str(accessTokenTTL), "OIDC_ACCESS_TOKEN_ALG": accessTokenAlgorithm}
    try:
        started = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True, text=True,
                                 env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        started = subprocess.CompletedProcess([], 1, "", str(exc))
    if started.returncode != 0:
        message = f"the test OpenID Connect provider did not start: {started.stderr[-2000:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield Provider(started.stdout.strip(), state, accessTokenAlgorithm)
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], capture_output=True, timeout=60)


class _Forms(HTMLParser):
    """The forms of a page: action, method and the values of their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append({"action": values.get("action") or "", "method": (values.get("method") or "get").lower(),
                               "id": values.get("id"), "fields": {}})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value") or ""


def _form(response: requests.Response) -> dict:
    parser = _Forms()
    parser.feed(response.text)
    if not parser.forms:
        raise AssertionError(f"no form on {response.url}: {response.text[:500]}")
    return parser.forms[0]


def _submit(session: requests.Session, page: requests.Response, caFile: str, **values: str) -> requests.Response:
    form = _form(page)
    url = urljoin(page.url, form["action"])
    response = session.post(url, data={**form["fields"], **values}, timeout=30, verify=caFile)
    response.raise_for_status()
    return response


def completeDeviceLogin(verificationURL: str, login: str, password: str, caFile: str,
                        userCode: str | None = None) -> requests.Response:
    """The browser step of the device flow: code (unless in the URL), confirm, sign in, consent."""
    with requests.Session() as session:
        page = session.get(verificationURL, timeout=30, verify=caFile)
        page.raise_for_status()
        for _ in range(8):
            if 'id="success"' in page.text:
                return page
            form = _form(page)
            if form["id"] == "op.deviceInputForm":
                code = form["fields"].get("user_code") or userCode
                if not code:
                    raise AssertionError("the verification page asks for the user code")
                page = _submit(session, page, caFile, user_code=code)
            elif form["action"].endswith("/login"):
                page = _submit(session, page, caFile, login=login, password=password)
            else:  # the device confirmation and the consent page
                page = _submit(session, page, caFile)
        raise AssertionError(f"the device login did not succeed: {page.url} {page.text[:500]}")


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def metadata(provider: Provider) -> dict:
    """The provider's discovery document."""
    return requests.get(f"{provider.issuer}/.well-known/openid-configuration", verify=provider.caFile,
                        timeout=10).json()


def deviceLoginTokens(provider: Provider, login: str, scope: str = "openid offline_access wlcg.groups") -> dict:
    """The token response of a device login of ``login`` by the dirac-cli client, browser step scripted."""
    meta = metadata(provider)
    device = requests.post(meta["device_authorization_endpoint"], verify=provider.caFile, timeout=10,
                           data={"client_id": "dirac-cli", "scope": scope}).json()
    completeDeviceLogin(device["verification_uri_complete"], login, USERS[login][0], provider.caFile)
    return requests.post(meta["token_endpoint"], verify=provider.caFile, timeout=10, data={
        "client_id": "dirac-cli", "grant_type": DEVICE_GRANT, "device_code": device["device_code"]}).json()


def csOptions(provider: Provider, name: str = "TestIdP") -> dict[str, str]:
    """CS options declaring ``provider`` as the identity provider ``name``: the dirac-cli client, the group
    mapping of its wlcg.groups, and alice, robert (its bob) and the pilots' client known by subject."""
    section = f"/Resources/IdProviders/{name}"
    options = {
        "issuer": provider.issuer, "client_id": "dirac-cli", "CAFile": provider.caFile,
        "scope": "openid offline_access wlcg.groups", "GroupClaims": "wlcg.groups, eduperson_entitlement",
        "Groups/dirac_user": "/dirac/user", "Groups/dirac_admin": "/dirac/admin", "Groups/dirac_pilot": "/dirac/pilot",
    }
    return {**{f"{section}/{option}": value for option, value in options.items()},
            "/Registry/Users/alice/ID": USERS["alice"][1], "/Registry/Users/robert/ID": USERS["bob"][1],
            "/Registry/Users/pilot/ID": "dirac-pilot", "/Registry/DefaultGroup": "dirac_user"}


def clientCredentialsToken(provider: Provider, client: str = "dirac-pilot") -> str:
    """An access token of ``client`` by the client_credentials grant."""
    return requests.post(metadata(provider)["token_endpoint"], verify=provider.caFile, timeout=10,
                         data={"grant_type": "client_credentials", "scope": "wlcg.groups"},
                         auth=(client, provider.secret(client))).json()["access_token"]
