"""Turn an authenticated peer (verified X509 chain or bearer token) into DIRAC's credential dict.

The dict every handler sees::

    {"DN": str | None, "username": str | None, "hostname": str (hosts only), "group": str | None,
     "properties": list[str], "VO": str, "isProxy": bool, "isLimitedProxy": bool,
     "issuer": str, "authMethod": "X509" | "JWT", "ID": str (tokens only)}

Users, groups, hosts and their properties come from the Registry in the CS.
"""

from __future__ import annotations

import datetime
import threading
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization

from dirac.Core.Config import Registry, gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Security import IdProviders
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Utilities.Exceptions import AuthenticationError, AuthorizationError, SecurityError

HOSTS_GROUP = "hosts"
TOKEN_ISSUERS = "/DIRAC/Security/TokenIssuers"
DEFAULT_AUDIENCE = "dirac"
#: asymmetric signatures only: never "none", never HMAC (whose key would be public)
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
#: clock skew tolerated on exp, nbf and iat (seconds)
LEEWAY = 30
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]

_jwksClients: dict[str, jwt.PyJWKClient] = {}
_keyFiles: dict[tuple[str, float], Any] = {}
_cacheLock = threading.Lock()


# -- users and groups ----------------------------------------------------------------------
def _userCredentials(username: str, requestedGroup: str | None) -> dict[str, Any]:
    """username, group (checked), properties and VO for a registered user."""
    if requestedGroup:
        if requestedGroup not in Registry.getGroupsForUser(username):
            raise AuthorizationError(f"user {username} is not a member of group {requestedGroup}")
        group = requestedGroup
    else:
        found = Registry.getDefaultGroupForUser(username)
        if found is None:
            raise AuthorizationError(f"user {username} is not a member of any group")
        group = found
    return {"username": username, "group": group, "properties": Registry.getPropertiesForGroup(group),
            "VO": Registry.getVOForGroup(group)}


def credentialsFromChain(chain: X509Chain) -> dict[str, Any]:
    """Credentials of a TLS peer whose chain (leaf first) the TLS layer already verified."""
    try:
        identity = chain.identityCertificate
    except SecurityError as exc:
        raise AuthenticationError(str(exc)) from exc
    dn = identity.subjectDN
    creds: dict[str, Any] = {"DN": dn, "issuer": identity.issuerDN, "isProxy": chain.isProxy,
                             "isLimitedProxy": chain.isLimitedProxy, "authMethod": "X509"}
    hostname = Registry.getHostnameForDN(dn)
    if hostname:
        creds.update(hostname=hostname, username=None, group=HOSTS_GROUP, VO="",
                     properties=Registry.getPropertiesForHost(hostname))
        return creds
    username = Registry.getUsernameForDN(dn)
    if username is None:
        raise AuthenticationError(f"DN {dn} is not registered")
    creds.update(_userCredentials(username, chain.diracGroup))
    return creds


def delegatedCredentials(caller: dict[str, Any], extraCredentials: Any) -> dict[str, Any]:
    """The credentials of the user a trusted host acts for: DIRAC's ``extraCredentials`` = [DN, group].

    Only a host with the ``TrustedHost`` property may act for a user (the web portal for users who
    signed in with a certificate); the user must be registered and a member of the group, and the
    services' own rules then apply to that user. ``"hosts"`` (a host acting as itself) changes nothing.
    """
    if extraCredentials in (None, "", "hosts"):
        return caller
    if not (isinstance(extraCredentials, (list, tuple)) and len(extraCredentials) == 2
            and all(isinstance(item, str) and item for item in extraCredentials)):
        raise AuthenticationError("extraCredentials must be [DN, group]")
    who = caller.get("hostname") or caller.get("username") or caller.get("DN")
    if not caller.get("hostname") or "TrustedHost" not in caller.get("properties", []):
        raise AuthorizationError(f"{who} may not act for another identity: only hosts with TrustedHost may")
    dn, group = extraCredentials
    username = Registry.getUsernameForDN(dn)
    if username is None:
        raise AuthenticationError(f"DN {dn} is not registered")
    creds: dict[str, Any] = {"DN": dn, "issuer": "", "isProxy": False, "isLimitedProxy": False,
                             "authMethod": "X509", "delegatedBy": caller["hostname"]}
    creds.update(_userCredentials(username, group))
    return creds


# -- tokens --------------------------------------------------------------------------------
def trustedIssuers() -> dict[str, dict[str, str]]:
    """The token issuers of ``/DIRAC/Security/TokenIssuers``, by their ``Issuer`` URL."""
    result = gConfig.getSections(TOKEN_ISSUERS)
    issuers: dict[str, dict[str, str]] = {}
    for name in result["Value"] if result["OK"] else []:
        options = gConfig.getOptionsDict(f"{TOKEN_ISSUERS}/{name}")
        opts = dict(options["Value"]) if options["OK"] else {}
        if opts.get("Issuer"):
            opts["Name"] = name
            issuers[opts["Issuer"]] = opts
    return issuers


def _keyFromFile(path: str) -> Any:
    """A public key from a PEM public key or certificate file (cached until the file changes)."""
    try:
        mtime = Path(path).stat().st_mtime
        with _cacheLock:
            if (path, mtime) in _keyFiles:
                return _keyFiles[(path, mtime)]
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AuthenticationError(f"cannot read the token issuer key {path}: {exc.strerror}") from exc
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = cx509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuthenticationError(f"{path} holds no PEM public key or certificate") from exc
    with _cacheLock:
        _keyFiles[(path, mtime)] = key
    return key


def _keyFromJWKS(url: str, token: str) -> Any:
    """The signing key of ``token`` from the issuer's JWKS (clients and keys cached)."""
    with _cacheLock:
        client = _jwksClients.get(url)
        if client is None:
            client = _jwksClients[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=10)
    try:
        return client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientError as exc:
        raise AuthenticationError(f"cannot get the token signing key from {url}: {exc}") from exc


def _when(timestamp: Any) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(float(timestamp), datetime.UTC)
    except (TypeError, ValueError, OverflowError):
        return str(timestamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def validateToken(token: str) -> dict[str, Any]:
    """The claims of a bearer token from a trusted issuer; raises AuthenticationError with the reason."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"malformed token: {exc}") from exc
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise AuthenticationError(f"token algorithm {algorithm!r} is not accepted: "
                                  f"only asymmetric signatures ({', '.join(ALLOWED_ALGORITHMS)})")
    issuer = unverified.get("iss")
    if not issuer:
        raise AuthenticationError("token has no issuer (iss claim)")
    ownIssuer = IdProviders.authorizationServerIssuer()
    conf = trustedIssuers().get(issuer) if issuer != ownIssuer else None
    provider = IdProviders.idProviderForIssuer(issuer) if conf is None and issuer != ownIssuer else None
    if issuer == ownIssuer:
        from dirac.Core.Security import TokenSigning

        key = TokenSigning.verificationKey(header.get("kid"))
        audience = IdProviders.authorizationServer(ownIssuer).audience  # type: ignore[union-attr]
    elif provider is not None:
        key = IdProviders.signingKey(provider, header.get("kid"))
        audience = provider.audience
    elif conf is None:
        raise AuthenticationError(f"token issuer {issuer} is not trusted")
    elif conf.get("PublicKeyFile"):
        key = _keyFromFile(conf["PublicKeyFile"])
    elif conf.get("JWKSURL"):
        key = _keyFromJWKS(conf["JWKSURL"], token)
    else:
        raise AuthenticationError(f"token issuer {conf['Name']} has neither PublicKeyFile nor JWKSURL in the CS")
    if provider is None and conf is not None:
        audience = conf.get("Audience") or DEFAULT_AUDIENCE
    try:
        return jwt.decode(token, key, algorithms=[algorithm], audience=audience, issuer=issuer, leeway=LEEWAY,
                          options={"require": REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError(f"token expired at {_when(unverified.get('exp'))}") from exc
    except jwt.ImmatureSignatureError as exc:
        start = unverified.get("nbf", unverified.get("iat"))
        raise AuthenticationError(f"token is not valid before {_when(start)}") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise AuthenticationError(f"token lacks the required claim {exc.claim!r}") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthenticationError(f"token audience {unverified.get('aud')!r} does not include {audience!r}") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthenticationError(f"token issuer {issuer} is not trusted") from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthenticationError(f"token signature is invalid (issuer {issuer})") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"invalid token: {exc}") from exc


def groupFromClaims(claims: dict[str, Any]) -> str | None:
    """The DIRAC group a token asks for: a ``group:<name>`` or ``g:<name>`` (DIRAC's form) scope, or the
    ``dirac_group`` claim."""
    scope = claims.get("scope") or ""
    for item in scope.split() if isinstance(scope, str) else []:
        prefix, _, name = item.partition(":")
        if prefix in ("group", "g") and name:
            return name
    group = claims.get("dirac_group")
    return group if isinstance(group, str) and group else None


def credentialsFromToken(token: str) -> dict[str, Any]:
    """Credentials of a caller presenting ``Authorization: Bearer <token>``."""
    claims = validateToken(token)
    subject = str(claims["sub"])
    username = Registry.getUsernameForID(subject)
    if claims["iss"] == IdProviders.authorizationServerIssuer():
        return _authorizationServerCredentials(username, claims)
    provider = IdProviders.idProviderForIssuer(claims["iss"])
    if username is None and provider is not None and provider.registerUsers and provider.mapsGroups:
        from dirac.ConfigurationSystem.Client.UserRegistry import UnregisteredSubject, registeredUsername

        username = registeredUsername(claims)
        if username is None:
            raise UnregisteredSubject(provider, claims)
    if username is None:
        raise AuthenticationError(f"token subject {subject} (issuer {claims['iss']}) is not registered")
    dns = Registry.getDNsForUsername(username)
    creds: dict[str, Any] = {"DN": dns[0] if dns else None, "ID": subject, "issuer": claims["iss"],
                             "isProxy": False, "isLimitedProxy": False, "authMethod": "JWT"}
    if provider is not None and provider.mapsGroups:
        creds.update(_providerCredentials(provider, username, claims))
    else:
        creds.update(_userCredentials(username, groupFromClaims(claims)))
    return creds


def _providerCredentials(provider: IdProviders.IdProvider, username: str, claims: dict[str, Any]) -> dict[str, Any]:
    """username, group, properties and VO when the identity provider's claims say which groups the user has."""
    granted = provider.groupsFromClaims(claims)
    requested = groupFromClaims(claims)
    if requested:
        if requested not in granted:
            raise AuthorizationError(f"identity provider {provider.name} does not grant group {requested} "
                                     f"to user {username}")
        group = requested
    else:
        if not granted:
            raise AuthorizationError(f"identity provider {provider.name} grants user {username} no DIRAC group")
        defaults = [g for g in toList(gConfig.getValue("/Registry/DefaultGroup", "")) if g in granted]
        group = defaults[0] if defaults else granted[0]
    return {"username": username, "group": group, "properties": Registry.getPropertiesForGroup(group),
            "VO": Registry.getVOForGroup(group), "IdProvider": provider.name}


def _authorizationServerCredentials(username: str | None, claims: dict[str, Any]) -> dict[str, Any]:
    """Credentials of a token of DIRAC's own authorization server. It signed the group in (``g:<group>``)
    after the identity provider named by the ``idp`` claim granted it, at the sign-in and at every refresh;
    for a provider without a group mapping the Registry decides, as for the provider's own tokens."""
    if username is None:
        raise AuthenticationError(f"token subject {claims['sub']} (issuer {claims['iss']}) is not registered")
    dns = Registry.getDNsForUsername(username)
    creds: dict[str, Any] = {"DN": dns[0] if dns else None, "ID": str(claims["sub"]), "issuer": claims["iss"],
                             "isProxy": False, "isLimitedProxy": False, "authMethod": "JWT"}
    group = groupFromClaims(claims)
    idp = claims.get("idp")
    provider = IdProviders.getIdProvider(idp) if isinstance(idp, str) and idp in IdProviders.idProviderNames() \
        else None
    if provider is not None and provider.mapsGroups:
        if not group:
            raise AuthorizationError(f"the token of {username} names no DIRAC group")
        creds.update(username=username, group=group, properties=Registry.getPropertiesForGroup(group),
                     VO=Registry.getVOForGroup(group), IdProvider=provider.name)
    else:
        creds.update(_userCredentials(username, group))
    return creds
