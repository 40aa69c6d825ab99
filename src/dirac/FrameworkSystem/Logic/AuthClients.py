"""The OAuth2 clients of DIRAC's authorization server, and the users it signs in.

Clients are described in ``/DIRAC/Security/Authorization/Clients/<Name>`` with DIRAC's (RFC 7591)
option names; ``DIRAC_CLI`` (the command line: device code and refresh token, public) is always
there, as in DIRAC::

    Clients
    {
      DIRACWeb                                  # the web portal
      {
        client_id = DIRAC_Web
        client_secret_file = /opt/dirac/etc/webapp-client.secret   # on the server only (0600); or
        # client_secret = ...                   # only in the server's local dirac.cfg, never in the CS
        redirect_uri = https://dirac.example.org/DIRAC/login       # comma-separated; exact match
        grant_types = authorization_code, refresh_token
        response_types = code
      }
    }

A client with a secret is confidential (``client_secret_basic`` or ``client_secret_post``); one
without is public (``none``: it sends only its ``client_id``) and must use PKCE.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict, dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Security.IdProviders import AUTHORIZATION, DIRAC_CLI_CLIENT_ID
from dirac.Core.Security.Keys import readEncryptionKeyFile

CLIENTS = f"{AUTHORIZATION}/Clients"
#: the scopes the server grants; others a client asks for (e.g. a provider's "wlcg.groups") are left out
SCOPES = ("openid", "profile", "email", "offline_access", "proxy")
#: DIRAC's parametric scopes: g:<group>, lifetime:<seconds> (of a proxy)
PARAMETRIC_SCOPES = ("g:", "lifetime:")
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post")


def supportedScope(scope: str | None) -> str:
    """``scope`` without the items this server does not grant (DIRAC's clients join items with "+")."""
    items = (scope or "").replace("+", " ").split()
    return " ".join(item for item in items
                    if item in SCOPES or any(item.startswith(p) and len(item) > len(p) for p in PARAMETRIC_SCOPES))


@dataclass(frozen=True)
class Client(ClientMixin):
    """One registered client."""

    name: str
    clientID: str
    secret: str = field(default="", repr=False)
    redirectURIs: tuple[str, ...] = ()
    grantTypes: tuple[str, ...] = ()
    responseTypes: tuple[str, ...] = ()

    @property
    def isPublic(self) -> bool:
        return not self.secret

    def get_client_id(self) -> str:
        return self.clientID

    def get_default_redirect_uri(self) -> str | None:
        return self.redirectURIs[0] if self.redirectURIs else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return supportedScope(scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirectURIs

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.secret) and hmac.compare_digest(self.secret.encode(), (client_secret or "").encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.isPublic else method in CONFIDENTIAL_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.responseTypes

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grantTypes


DEFAULT_CLIENTS = {
    "DIRACCLI": Client("DIRACCLI", DIRAC_CLI_CLIENT_ID, grantTypes=(DEVICE_CODE, "refresh_token"),
                       responseTypes=("device",)),
}


def _fromSection(name: str, options: dict[str, str], base: Client | None) -> Client:
    secret = options.get("client_secret", "")
    if options.get("client_secret_file"):
        secret = readEncryptionKeyFile(options["client_secret_file"], f"{CLIENTS}/{name}/client_secret_file").decode()
    redirect = options.get("redirect_uris", options.get("redirect_uri", ""))
    known = asdict(base) if base else {}
    return Client(name=name, clientID=options.get("client_id") or known.get("clientID", name),
                  secret=secret or known.get("secret", ""),
                  redirectURIs=tuple(toList(redirect)) or known.get("redirectURIs", ()),
                  grantTypes=tuple(toList(options.get("grant_types", ""))) or known.get("grantTypes", ()),
                  responseTypes=tuple(toList(options.get("response_types", ""))) or known.get("responseTypes", ()))


def registeredClients() -> dict[str, Client]:
    """Every client by name: the defaults, completed or overridden by the CS."""
    clients = dict(DEFAULT_CLIENTS)
    names = gConfig.getSections(CLIENTS)
    for name in names["Value"] if names["OK"] else []:
        options = gConfig.getOptionsDict(f"{CLIENTS}/{name}")
        clients[name] = _fromSection(name, options["Value"] if options["OK"] else {}, clients.get(name))
    return clients


def getClient(clientID: str) -> Client | None:
    """The client whose ``client_id`` is ``clientID``, or None."""
    return next((client for client in registeredClients().values() if client.clientID == clientID), None)


@dataclass
class AuthUser:
    """A user the authorization server signed in: who, through which provider, in which group, in which
    sign-in session (refresh tokens and the provider's token belong to it)."""

    username: str
    userID: str
    provider: str
    group: str = ""
    sessionID: str = ""

    def get_user_id(self) -> str:
        return self.userID

    def asDict(self) -> dict[str, str]:
        return {"username": self.username, "userID": self.userID, "provider": self.provider, "group": self.group,
                "sessionID": self.sessionID}

    @classmethod
    def fromDict(cls, data: dict[str, Any]) -> AuthUser:
        return cls(**{key: str(data.get(key) or "") for key in ("username", "userID", "provider", "group",
                                                                  "sessionID")})
