"""The web portal's settings, read from the ``/WebApp`` section of the CS once at start.

    WebApp
    {
      RootURL = /DIRAC                       # where the portal lives on the HTTPS port
      SessionLifetime = 43200                # seconds a sign-in lasts (default 12 h)
      CookieSecretFile = /opt/dirac/etc/webapp.secret   # signs the session cookie (made, 0600, if missing)
      Login
      {
        CheckIn                              # the name shown on the sign-in button
        {
          Issuer = https://aai.example.org/oidc      # discovery: <Issuer>/.well-known/openid-configuration
          ClientID = dirac-web
          ClientSecret =                     # confidential clients: in the portal host's local dirac.cfg
          ClientSecretFile =                 # ... or a 0600 file holding it
          Scope = openid profile offline_access wlcg.groups
          CAFile =                           # CAs of the issuer's TLS certificate (default: the IdProvider's)
        }
      }
    }
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from pathlib import Path

from dirac.Core.Config import gConfig
from dirac.Core.Security.IdProviders import (
    IdProvider,
    authorizationServer,
    authorizationServerIssuer,
    idProviderForIssuer,
)
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Utilities.Exceptions import ConfigurationError

SECTION = "/WebApp"
DEFAULT_SCOPE = "openid profile offline_access wlcg.groups"
DEFAULT_LIFETIME = 12 * 3600


@dataclass(frozen=True)
class LoginProvider:
    """One OpenID Connect authorization server users may sign in with."""

    name: str
    issuer: str
    clientID: str
    clientSecret: str = dataclasses.field(default="", repr=False)
    scope: str = DEFAULT_SCOPE
    caFile: str = ""

    def idProvider(self) -> IdProvider:
        """The provider as the OAuth2 client sees it: the configured IdProvider of this issuer with the portal's
        client, or one made from the issuer alone."""
        known = idProviderForIssuer(self.issuer)
        if known is None and self.issuer == authorizationServerIssuer():  # DIRAC's own /auth
            known = authorizationServer(self.issuer)
        if known is not None:
            return dataclasses.replace(known, clientID=self.clientID, clientSecret=self.clientSecret,
                                       scope=self.scope, caFile=self.caFile or known.caFile)
        return IdProvider(name=self.name, issuer=self.issuer, clientID=self.clientID,
                          clientSecret=self.clientSecret, scope=self.scope, caFile=self.caFile)


@dataclass(frozen=True)
class PortalConfig:
    """What the portal reads from the CS at start; the sign-in providers are read at each use (no restart
    needed to add one)."""

    rootURL: str
    sessionLifetime: int
    cookieSecret: bytes = dataclasses.field(repr=False)

    @property
    def logins(self) -> tuple[LoginProvider, ...]:
        names = gConfig.getSections(f"{SECTION}/Login")
        return tuple(_loginProvider(name) for name in (names["Value"] if names["OK"] else []))

    def login(self, name: str) -> LoginProvider | None:
        names = gConfig.getSections(f"{SECTION}/Login")
        return _loginProvider(name) if names["OK"] and name in names["Value"] else None


def _cookieSecret() -> bytes:
    default = Path(gConfig.getValue("/LocalInstallation/InstancePath", "") or Path.home() / ".dirac") / "etc" / \
        "webapp.secret"
    path = Path(gConfig.getValue(f"{SECTION}/CookieSecretFile", "") or default)
    if not path.exists():
        writePrivateFile(path, secrets.token_urlsafe(48).encode() + b"\n")
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        raise ConfigurationError(f"{SECTION}/CookieSecretFile {path} holds fewer than 32 bytes")
    return secret


def _loginProvider(name: str) -> LoginProvider:
    section = f"{SECTION}/Login/{name}"
    result = gConfig.getOptionsDict(section)
    options = result["Value"] if result["OK"] else {}
    for required in ("Issuer", "ClientID"):
        if not options.get(required):
            raise ConfigurationError(f"web portal login {name}: missing option {section}/{required}")
    secret = options.get("ClientSecret", "")
    if not secret and options.get("ClientSecretFile"):
        try:
            secret = Path(options["ClientSecretFile"]).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{section}/ClientSecretFile: cannot read {options['ClientSecretFile']}: "
                                     f"{exc.strerror}") from exc
    return LoginProvider(name=name, issuer=options["Issuer"].rstrip("/"), clientID=options["ClientID"],
                         clientSecret=secret, scope=options.get("Scope") or DEFAULT_SCOPE,
                         caFile=options.get("CAFile", ""))


def loadPortalConfig() -> PortalConfig:
    """The portal's settings; ConfigurationError naming the missing or bad option."""
    root = "/" + gConfig.getValue(f"{SECTION}/RootURL", "/DIRAC").strip("/")
    if root == "/":
        raise ConfigurationError(f"{SECTION}/RootURL must not be / (the services' routes live there)")
    try:
        lifetime = int(gConfig.getValue(f"{SECTION}/SessionLifetime", "") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{SECTION}/SessionLifetime must be a number of seconds") from None
    config = PortalConfig(rootURL=root, sessionLifetime=lifetime, cookieSecret=_cookieSecret())
    config.logins  # noqa: B018 - check the sign-in providers' sections at start: a bad one fails here
    return config
