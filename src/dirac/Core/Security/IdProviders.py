"""External OpenID Connect identity providers: their CS section, signing keys and group claims.

CS layout (option names as DIRAC's where DIRAC has them)::

    Resources/IdProviders/<Name>
    {
      ProviderType = OAuth2
      issuer = https://idp.example.org/          # must equal the "iss" of its tokens
      client_id = dirac-cli                      # public client of dirac-login (device code)
      client_secret =                            # confidential clients only: keep it in the local dirac.cfg
      scope = openid offline_access wlcg.groups
      Audience = dirac                           # the "aud" DIRAC requires in access tokens (default dirac)
      CAFile = /etc/grid-security/idp-ca.pem     # CAs of the IdP's TLS certificate (default: the system's)
      GroupClaims = wlcg.groups, eduperson_entitlement
      RegisterUsers = no                         # yes: unknown subjects the provider grants a group join the
      UsernameClaim = preferred_username         #   Registry at their first call (ConfigurationSystem/Client/UserRegistry)
      Groups                                     # DIRAC group = claim values that grant it
      {
        dirac_user = /dirac/user
        dirac_admin = /dirac/admin
      }
    }

Keys come from the provider's discovery document (``<issuer>/.well-known/openid-configuration``,
its ``jwks_uri``), fetched with timeouts and cached; an unknown key id refetches the key set at
most once a minute (key rotation).

DIRAC's own authorization server (``/DIRAC/Security/Authorization/issuer``, the ``/auth`` of a
DIRAC server) is described by the same ``IdProvider`` (``authorizationServer()``), so that clients
use it with the same OAuth2 code: its public client is ``DIRAC_CLI``, its TLS certificate is checked
against the CA directory.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Utilities.Exceptions import AuthenticationError, ConfigurationError

IDPROVIDERS = "/Resources/IdProviders"
AUTHORIZATION = "/DIRAC/Security/Authorization"
#: the name DIRAC's own authorization server goes by where a provider name is shown
AUTH_SERVER_NAME = "DIRACAS"
#: the public client of DIRAC's command line at the authorization server (DIRAC's default client id)
DIRAC_CLI_CLIENT_ID = "DIRAC_CLI"
DEFAULT_AUDIENCE = "dirac"
HTTP_TIMEOUT = 10
METADATA_LIFETIME = 3600
KEYS_LIFETIME = 3600
KEYS_MIN_REFETCH = 60


@dataclass(frozen=True)
class IdProvider:
    """One ``/Resources/IdProviders/<Name>`` section."""

    name: str
    issuer: str
    clientID: str = ""
    clientSecret: str = field(default="", repr=False)
    scope: str = ""
    audience: str = DEFAULT_AUDIENCE
    caFile: str = ""
    groupClaims: tuple[str, ...] = ()
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    registerUsers: bool = False
    usernameClaim: str = "preferred_username"
    #: the scope that asks the provider for a token in a DIRAC group (``GroupScope``; DIRAC's server: ``g:{group}``)
    groupScope: str = "group:{group}"

    @property
    def verify(self) -> str | bool:
        """What ``requests`` verifies the provider's TLS certificate with."""
        return self.caFile or True

    def scopeWithGroup(self, scope: str, group: str | None) -> str:
        """``scope`` asking also for a token in ``group`` (when given) in the provider's form."""
        return " ".join(filter(None, [scope, self.groupScope.format(group=group) if group else ""]))

    @property
    def mapsGroups(self) -> bool:
        return bool(self.groups)

    def groupsFromClaims(self, claims: dict[str, Any]) -> list[str]:
        """The DIRAC groups the provider grants in ``claims``, in the order of the ``Groups`` section."""
        values: set[str] = set()
        for claim in self.groupClaims:
            found = claims.get(claim)
            if isinstance(found, str):
                values.update(found.split())
            elif isinstance(found, list):
                values.update(v for v in found if isinstance(v, str))
        return [group for group, granting in self.groups if values.intersection(granting)]


def _provider(name: str) -> IdProvider:
    result = gConfig.getOptionsDict(f"{IDPROVIDERS}/{name}")
    if not result["OK"]:
        raise ConfigurationError(f"identity provider {name}: no section {IDPROVIDERS}/{name}")
    opts = result["Value"]
    if not opts.get("issuer"):
        raise ConfigurationError(f"identity provider {name}: missing option {IDPROVIDERS}/{name}/issuer")
    mapping = gConfig.getOptionsDict(f"{IDPROVIDERS}/{name}/Groups")
    groups = tuple((group, tuple(toList(values))) for group, values in (mapping["Value"] if mapping["OK"] else {}).items())
    return IdProvider(name=name, issuer=opts["issuer"].rstrip("/"), clientID=opts.get("client_id", ""),
                      clientSecret=opts.get("client_secret", ""), scope=opts.get("scope", ""),
                      audience=opts.get("Audience") or DEFAULT_AUDIENCE, caFile=opts.get("CAFile", ""),
                      groupClaims=tuple(toList(opts.get("GroupClaims", "wlcg.groups"))), groups=groups,
                      registerUsers=opts.get("RegisterUsers", "no").lower() in ("y", "yes", "true"),
                      usernameClaim=opts.get("UsernameClaim") or "preferred_username",
                      groupScope=opts.get("GroupScope") or IdProvider.groupScope)


def getIdProvider(name: str) -> IdProvider:
    """The provider configured as ``name``; ConfigurationError when missing or incomplete."""
    return _provider(name)


def idProviderNames() -> list[str]:
    result = gConfig.getSections(IDPROVIDERS)
    return result["Value"] if result["OK"] else []


def idProviderForIssuer(issuer: str) -> IdProvider | None:
    """The configured provider whose ``issuer`` is ``issuer`` (trailing slash ignored)."""
    for name in idProviderNames():
        try:
            provider = _provider(name)
        except ConfigurationError:
            continue
        if provider.issuer == issuer.rstrip("/"):
            return provider
    return None


def authorizationServerIssuer() -> str:
    """The issuer URL of DIRAC's own authorization server ('' when none is configured)."""
    return str(gConfig.getValue(f"{AUTHORIZATION}/issuer", "") or "").rstrip("/")


def authorizationServer(issuer: str | None = None) -> IdProvider | None:
    """DIRAC's authorization server as a provider (its ``DIRAC_CLI`` client), or None when not configured."""
    from dirac.Core.Security.Locations import getCAsLocation

    issuer = (issuer or authorizationServerIssuer()).rstrip("/")
    if not issuer:
        return None
    return IdProvider(name=AUTH_SERVER_NAME, issuer=issuer, clientID=DIRAC_CLI_CLIENT_ID,
                      audience=gConfig.getValue(f"{AUTHORIZATION}/Audience", "") or DEFAULT_AUDIENCE,
                      caFile=getCAsLocation(), groupScope="g:{group}")


# -- discovery and keys --------------------------------------------------------------------------
@dataclass
class _Cached:
    value: Any
    fetched: float


_metadata: dict[str, _Cached] = {}
_keySets: dict[str, _Cached] = {}
_lock = threading.Lock()


def _getJSON(url: str, verify: str | bool, what: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT, verify=verify, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise AuthenticationError(f"cannot get the {what} from {url}: {exc}") from exc
    if not isinstance(data, dict):
        raise AuthenticationError(f"the {what} at {url} is not a JSON object")
    return data


def providerMetadata(provider: IdProvider) -> dict[str, Any]:
    """The provider's discovery document (cached for an hour); its issuer must be the configured one."""
    with _lock:
        cached = _metadata.get(provider.issuer)
    if cached and time.monotonic() - cached.fetched < METADATA_LIFETIME:
        return cached.value
    data = _getJSON(f"{provider.issuer}/.well-known/openid-configuration", provider.verify, "discovery document")
    if str(data.get("issuer", "")).rstrip("/") != provider.issuer:
        raise AuthenticationError(f"the discovery document of {provider.name} names the issuer "
                                  f"{data.get('issuer')!r}, not {provider.issuer!r}")
    with _lock:
        _metadata[provider.issuer] = _Cached(data, time.monotonic())
    return data


def _keySet(provider: IdProvider, refresh: bool = False) -> jwt.PyJWKSet:
    with _lock:
        cached = _keySets.get(provider.issuer)
    age = time.monotonic() - cached.fetched if cached else None
    if cached and (age < KEYS_LIFETIME if not refresh else age < KEYS_MIN_REFETCH):
        return cached.value
    uri = providerMetadata(provider).get("jwks_uri")
    if not uri:
        raise AuthenticationError(f"the discovery document of {provider.name} has no jwks_uri")
    try:
        keys = jwt.PyJWKSet.from_dict(_getJSON(uri, provider.verify, "key set"))
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"the key set of {provider.name} at {uri} is unusable: {exc}") from exc
    with _lock:
        _keySets[provider.issuer] = _Cached(keys, time.monotonic())
    return keys


def signingKey(provider: IdProvider, kid: str | None) -> Any:
    """The public key with id ``kid`` from the provider's key set (refetched once for an unknown id)."""
    for refresh in (False, True):
        keys = _keySet(provider, refresh)
        candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
        if len(candidates) == 1 or (candidates and kid is not None):
            return candidates[0].key
    raise AuthenticationError(f"token signing key {kid!r} is not in the key set of {provider.name}")


def forgetCachedKeys() -> None:
    """Drop cached discovery documents and key sets (tests, key rotation by hand)."""
    with _lock:
        _metadata.clear()
        _keySets.clear()
