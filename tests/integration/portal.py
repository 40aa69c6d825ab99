"""The web portal under test: a grid whose portal signs users in at the test OpenID Connect provider.

``runningPortalGrid(root, provider)`` starts a grid (``conftest.runningGrid``) whose CS declares the
provider twice: as the identity provider whose tokens the services accept (``idp.csOptions``) and as
the portal's sign-in (``/WebApp/Login/TestIdP`` with the confidential ``dirac-web`` client).
``PortalSession`` is a scripted browser (requests) that signs in there through the provider's pages.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import requests

from .conftest import Grid, runningGrid
from .idp import USERS, Provider, _form, csOptions


def portalOptions(provider: Provider, secretFile: Path) -> dict[str, str]:
    section = "/WebApp/Login/TestIdP"
    return {**csOptions(provider), f"{section}/Issuer": provider.issuer, f"{section}/ClientID": "dirac-web",
            f"{section}/ClientSecretFile": str(secretFile), f"{section}/CAFile": provider.caFile}


@dataclass
class PortalGrid:
    grid: Grid
    provider: Provider
    caBundle: str  # the grid's CA and the provider's, for clients that visit both

    @property
    def root(self) -> str:
        return f"https://127.0.0.1:{self.grid.port}/DIRAC"


@contextlib.contextmanager
def runningPortalGrid(root: Path, provider: Provider) -> Iterator[PortalGrid]:
    secretFile = root / "dirac-web.secret"
    root.mkdir(parents=True, exist_ok=True)
    secretFile.write_text(provider.secret("dirac-web"))
    secretFile.chmod(0o600)
    with runningGrid(root, options=portalOptions(provider, secretFile)) as grid:
        bundle = root / "ca-bundle.pem"
        bundle.write_text("".join(p.read_text() for p in sorted(grid.instance.certificatesDir.glob("*.0")))
                          + Path(provider.caFile).read_text())
        yield PortalGrid(grid, provider, str(bundle))


class PortalSession(requests.Session):
    """A browser stand-in for HTTP-level tests: keeps cookies, verifies both servers' certificates."""

    def __init__(self, portal: PortalGrid, cert: str | None = None):
        super().__init__()
        self.portal = portal
        self.verify = portal.caBundle
        self.cert = cert
        self.trust_env = False

    def page(self, path: str, **kwargs) -> requests.Response:
        return self.get(self.portal.root + path, timeout=60, **kwargs)

    def csrf(self, response: requests.Response) -> str:
        found = re.search(r'name="_csrf" value="([^"]+)"', response.text) or \
            re.search(r'data-csrf="([^"]+)"', response.text)
        assert found, f"no CSRF field on {response.url}"
        return unescape(found.group(1))

    def post_form(self, path: str, data: dict, csrfFrom: requests.Response | None = None,
                  **kwargs) -> requests.Response:
        token = self.csrf(csrfFrom or self.page("/whoami"))
        return self.post(self.portal.root + path, data={"_csrf": token, **data}, timeout=60, **kwargs)

    def signIn(self, login: str, group: str | None = None) -> requests.Response:
        """Sign in at the provider's pages as ``login`` (then choose ``group`` when asked)."""
        page = self.page("/login")
        link = re.search(r'href="([^"]*/login/oidc/TestIdP[^"]*)"', page.text)
        assert link, page.text
        page = self.get(urljoin(page.url, unescape(link.group(1))), timeout=60)
        for _ in range(6):
            if page.url.startswith(self.portal.root):
                break
            form = _form(page)
            values = {"login": login, "password": USERS[login][0]} if form["action"].endswith("/login") else {}
            page = self.post(urljoin(page.url, form["action"]), data={**form["fields"], **values}, timeout=60)
        assert page.url.startswith(self.portal.root), f"not back at the portal: {page.url} {page.text[:300]}"
        if "/group" in page.url:
            page = self.post(self.portal.root + "/group", data={
                "_csrf": self.csrf(page), "group": group or "dirac_user",
                "next": self.portal.root + "/jobs"}, timeout=60)
            if not page.url.startswith(self.portal.root):  # a group other than the token's: back to the provider
                for _ in range(4):
                    if page.url.startswith(self.portal.root):
                        break
                    form = _form(page)
                    page = self.post(urljoin(page.url, form["action"]), data=form["fields"], timeout=60)
        page.raise_for_status()
        return page
