"""DIRAC's OAuth2 authorization server in front of the identity providers (authlib's protocol code).

DIRAC is not an identity provider: a user signs in at one of the configured providers (authorization
code flow with PKCE, from the server's ``<issuer>/redirect``); the server then decides the DIRAC group
(the ``g:<group>`` scope, or the user's choice), checks that the provider grants it, and issues its
own tokens, signed with its key (``TokenSigning``): an RS256 JWT access token that every service
accepts like a provider's token, an opaque refresh token (rotated at each use; each refresh asks the
provider again with the sign-in's own provider refresh token) and, for ``openid``, an ID token.

Flows: the device code grant for command lines (``dirac-login``, DIRAC's own ``dirac-login
--use-diracas``), the authorization code grant with PKCE for the web portal, refresh, and revocation.
Settings: ``AuthSettings.fromCS`` (``/DIRAC/Security/Authorization`` and ``/Systems/Framework/APIs/Auth``).
State lives in AuthDB, so that a restart loses no pending login, code or refresh token.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse

import jwt
from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636 import CodeChallenge

from dirac.Core.Config import Registry, gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Security import IdProviders, TokenSigning
from dirac.Core.Security.Credentials import validateToken
from dirac.Core.Security.IdProviders import IDPROVIDERS, IdProvider, getIdProvider
from dirac.Core.Security.Keys import readEncryptionKeyFile
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Utilities.Exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    DiracError,
    NotFound,
)
from dirac.Core.Utilities.Logging import getLogger
from dirac.FrameworkSystem.DB.AuthDB import AuthDB
from dirac.FrameworkSystem.Logic import AuthPages
from dirac.FrameworkSystem.Logic.AuthClients import (
    DEVICE_CODE,
    PARAMETRIC_SCOPES,
    SCOPES,
    AuthUser,
    Client,
    getClient,
)
from dirac.FrameworkSystem.Logic.AuthGrants import (
    CodeGrant,
    DeviceEndpoint,
    DeviceGrant,
    OpenIDConnectCode,
    RefreshGrant,
    Revocation,
)
from dirac.FrameworkSystem.Logic.UserTokens import grantedGroups, refreshGranting

AUTH_API = "/Systems/Framework/APIs/Auth"
SESSION_COOKIE = "dirac_auth_session"
CLIENT_AUTH = ["none", "client_secret_basic", "client_secret_post"]


def safeText(text: str) -> str:
    """``text`` with only the characters OAuth2 allows in error descriptions."""
    return re.sub(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]', "'", text)[:500]


def scopeGroup(scope: str | None) -> str | None:
    """The DIRAC group of a ``g:<group>`` scope item."""
    return next((item[2:] for item in scope_to_list(scope or "") or [] if item.startswith("g:") and item[2:]), None)


def withGroup(scope: str, group: str) -> str:
    """``scope`` with ``g:<group>`` as its only group."""
    return " ".join([item for item in scope_to_list(scope or "") or [] if not item.startswith("g:")] + [f"g:{group}"])


@dataclass(frozen=True)
class AuthSettings:
    """The authorization server's options (defaults suit one box)."""

    issuer: str
    audience: str = IdProviders.DEFAULT_AUDIENCE
    idProviders: tuple[str, ...] = ()
    accessTokenLifetime: int = 1200
    refreshTokenLifetime: int = 14 * 86400
    idTokenLifetime: int = 3600
    deviceCodeLifetime: int = 600
    authorizationCodeLifetime: int = 120
    signInLifetime: int = 900
    pollInterval: int = 5

    @property
    def location(self) -> str:
        """The URL path the server lives at (``/auth``)."""
        return urlparse(self.issuer).path.rstrip("/") or "/"

    @classmethod
    def fromCS(cls) -> AuthSettings:
        issuer = IdProviders.authorizationServerIssuer()
        if not issuer.startswith("https://"):
            raise ConfigurationError(f"the authorization server needs {IdProviders.AUTHORIZATION}/issuer = "
                                     f"https://<host>:<port>/auth (got {issuer!r})")
        known = IdProviders.idProviderNames()
        chosen = tuple(toList(gConfig.getValue(f"{AUTH_API}/IdProviders", ""))) or tuple(known)
        unknown = [name for name in chosen if name not in known]
        if unknown:
            raise ConfigurationError(f"{AUTH_API}/IdProviders names {', '.join(unknown)}, not in {IDPROVIDERS}")
        numbers = {name: int(gConfig.getValue(f"{AUTH_API}/{name[0].upper()}{name[1:]}", default))
                   for name, default in (("accessTokenLifetime", 1200), ("refreshTokenLifetime", 14 * 86400),
                                         ("idTokenLifetime", 3600), ("deviceCodeLifetime", 600),
                                         ("authorizationCodeLifetime", 120), ("signInLifetime", 900),
                                         ("pollInterval", 5))}
        return cls(issuer=issuer, audience=IdProviders.authorizationServer(issuer).audience,  # type: ignore[union-attr]
                   idProviders=chosen, **numbers)


@dataclass
class HTTPCall:
    """An HTTP request as the authorization server needs it (built by the Tornado handlers)."""

    method: str
    uri: str
    headers: Any = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fromURI(cls, method: str, uri: str, **changes: str) -> HTTPCall:
        """A GET-like call of ``uri``, query arguments replaced by ``changes``."""
        parsed = urlparse(uri)
        query = parse_qs(parsed.query, keep_blank_values=True)
        query.update({name: [value] for name, value in changes.items()})
        return cls(method, parsed._replace(query=urlencode(query, doseq=True)).geturl(), {}, query, {})


class _Payload(OAuth2Payload):
    def __init__(self, call: HTTPCall):
        merged = {**call.query, **call.form}
        if "scope" in merged:  # DIRAC's clients join scopes with "+"
            merged["scope"] = [value.replace("+", " ") for value in merged["scope"]]
        self._datalist = merged
        self._data = {name: values[-1] for name, values in merged.items() if values}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, call: HTTPCall):
        super().__init__(call.method, call.uri, headers=call.headers)
        self.call = call
        self.payload = _Payload(call)

    @property
    def args(self) -> dict[str, str]:
        return {name: values[-1] for name, values in self.call.query.items() if values}

    @property
    def form(self) -> dict[str, str]:
        return {name: values[-1] for name, values in self.call.form.items() if values}


@dataclass
class Response:
    """What the Tornado handler sends: status, a JSON dict or a text body, headers, the sign-in cookie."""

    status: int
    body: dict | str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    setCookie: str | None = None
    clearCookie: bool = False


def htmlPage(status: int, title: str, message: str, identifier: str = "", clearCookie: bool = False) -> Response:
    return Response(status, AuthPages.page(title, message, identifier=identifier),
                    [("Content-Type", "text/html; charset=utf-8")], clearCookie=clearCookie)


class AuthServer(AuthorizationServer):
    """The authorization server: authlib's grants and endpoints, DIRAC's sign-in at identity providers."""

    def __init__(self, db: AuthDB):
        super().__init__()
        self.db = db
        self.log = getLogger("Framework/Auth")
        self.register_token_generator("default", self.generateToken)
        self.register_grant(DeviceGrant)
        self.register_grant(CodeGrant, [CodeChallenge(required=True), OpenIDConnectCode(self)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(DeviceEndpoint)
        self.register_endpoint(Revocation)

    @property
    def settings(self) -> AuthSettings:
        """The options as the configuration has them now (providers and lifetimes may change while running)."""
        return AuthSettings.fromCS()

    @property
    def redirectURI(self) -> str:
        return f"{self.settings.issuer}/redirect"

    # -- authlib's framework hooks ------------------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        return getClient(client_id)

    def save_token(self, token: dict, request: Any) -> None:
        """Nothing to do: refresh tokens are stored when they are made (``generateToken``)."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def create_json_request(self, request: Any) -> OAuth2Request:
        return self.create_oauth2_request(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return Response(status, body, list(headers or []))

    def validate_requested_scope(self, scope: str | None) -> None:
        """Scopes the server does not grant are left out (``supportedScope``); a group must exist, and only one."""
        items = scope_to_list(scope or "") or []
        for item in items:
            if item.startswith("lifetime:") and not item[9:].isdigit():
                raise InvalidScopeError(description=safeText(f"{item}: the lifetime is a number of seconds"))
        groups = [item[2:] for item in items if item.startswith("g:") and item[2:]]
        if len(groups) > 1:
            raise InvalidScopeError(description="ask for one DIRAC group (g:<group>) at most")
        if groups and groups[0] not in Registry.getAllGroups():
            raise InvalidScopeError(description=safeText(f"there is no DIRAC group {groups[0]}"))

    # -- tokens ------------------------------------------------------------------------------------
    def generateToken(self, grant_type: str, client: Client, user: AuthUser | None = None, scope: str | None = None,
                      expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        """The token response for ``user`` in their group: a signed access token and a refresh token."""
        if user is None or not user.group:
            raise InvalidGrantError(description="tokens are issued to signed-in users in a DIRAC group only")
        scope = withGroup(scope or "", user.group)
        if "proxy" in (scope_to_list(scope) or []):
            return self.proxyResponse(user, scope)
        now = int(time.time())
        lifetime = self.settings.accessTokenLifetime
        key = TokenSigning.signingKey()
        claims = {"iss": self.settings.issuer, "sub": user.userID, "aud": self.settings.audience, "iat": now,
                  "nbf": now, "exp": now + lifetime, "jti": generate_token(24), "client_id": client.get_client_id(),
                  "scope": scope, "sid": user.sessionID, "idp": user.provider, "preferred_username": user.username}
        token = {"token_type": "Bearer", "scope": scope, "expires_in": lifetime,
                 "access_token": jwt.encode(claims, key.privateKey, algorithm=TokenSigning.ALGORITHM,
                                            headers={"kid": key.kid, "typ": "at+jwt"})}
        if include_refresh_token and self.db.hasUpstreamToken(user.sessionID):
            token["refresh_token"] = generate_token(48)
            self.db.addRefreshToken(token["refresh_token"], client.get_client_id(), scope, user.asDict(),
                                    self.settings.refreshTokenLifetime)
            self.db.extendUpstreamToken(user.sessionID, self.settings.refreshTokenLifetime)
        self.log.info("tokens (%s) issued to %s@%s for client %s, session %s", grant_type, user.username, user.group,
                      client.get_client_id(), user.sessionID[:8])
        return token

    def proxyResponse(self, user: AuthUser, scope: str) -> dict[str, Any]:
        """DIRAC's ``proxy`` scope: a proxy of the user in the group from the ProxyManager instead of tokens."""
        from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient

        lifetime = next((int(item[9:]) for item in scope_to_list(scope) or []
                         if item.startswith("lifetime:") and item[9:].isdigit()), 12 * 3600)
        dns = Registry.getDNsForUsername(user.username)
        if not dns:
            raise InvalidRequestError(safeText(f"{user.username} has no certificate DN, so no proxy: ask for "
                                               "tokens instead (no proxy scope)"))
        result = ProxyManagerClient(useCertificates=True).downloadProxy(dns[0], user.group, requiredTimeLeft=lifetime)
        if not result["OK"]:
            raise InvalidRequestError(safeText(f"no proxy of {user.username}@{user.group}: {result['Message']}"))
        self.log.info("proxy of %s@%s (%d s) issued through the authorization server", user.username, user.group,
                      lifetime)
        return {"proxy": result["Value"].toPEM().decode()}

    def ownAccessTokenClaims(self, token: str) -> dict[str, Any] | None:
        """The claims of an access token this server signed (expired ones too), or None."""
        try:
            header = jwt.get_unverified_header(token)
            return jwt.decode(token, TokenSigning.verificationKey(header.get("kid")),
                              algorithms=[TokenSigning.ALGORITHM], audience=self.settings.audience,
                              issuer=self.settings.issuer, options={"verify_exp": False})
        except (jwt.PyJWTError, DiracError):
            return None

    def userInfo(self, user: AuthUser) -> dict[str, Any]:
        """OpenID Connect claims of a user in a group."""
        info: dict[str, Any] = {"sub": user.userID, "preferred_username": user.username, "group": user.group,
                                "properties": Registry.getPropertiesForGroup(user.group) if user.group else []}
        email = Registry.getUserOption(user.username, "Email")
        if email:
            info["email"] = email
        return info

    def metadata(self) -> dict[str, Any]:
        """The discovery document (RFC 8414 / OpenID Connect Discovery)."""
        issuer = self.settings.issuer
        servers = toList(gConfig.getValue("/DIRAC/Configuration/Servers", ""))
        return {
            "issuer": issuer, "authorization_endpoint": f"{issuer}/authorization",
            "device_authorization_endpoint": f"{issuer}/device", "token_endpoint": f"{issuer}/token",
            "revocation_endpoint": f"{issuer}/revoke", "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwk", "redirect_uri": self.redirectURI,
            "scopes_supported": [*SCOPES, *PARAMETRIC_SCOPES], "response_types_supported": ["code", "device"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_CODE],
            "code_challenge_methods_supported": ["S256"], "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported": CLIENT_AUTH,
            "revocation_endpoint_auth_methods_supported": CLIENT_AUTH,
            "id_token_signing_alg_values_supported": [TokenSigning.ALGORITHM],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "preferred_username", "email", "group",
                                 "properties", "scope", "sid", "idp"],
            "configuration_server": servers[0] if servers else "",
        }

    # -- the identity providers --------------------------------------------------------------------
    def idpClient(self, provider: IdProvider) -> OAuth2Client:
        """This server's OAuth2 client at ``provider``: ``AuthServer_client_id`` (default ``client_id``) with
        ``AuthServer_client_secret_file`` or ``AuthServer_client_secret`` (local configuration only)."""
        section = f"{IDPROVIDERS}/{provider.name}"
        secret = gConfig.getValue(f"{section}/AuthServer_client_secret", "")
        secretFile = gConfig.getValue(f"{section}/AuthServer_client_secret_file", "")
        if secretFile:
            secret = readEncryptionKeyFile(secretFile, f"{section}/AuthServer_client_secret_file").decode()
        return OAuth2Client(provider, gConfig.getValue(f"{section}/AuthServer_client_id", "") or None, secret)

    def recheckUser(self, user: AuthUser) -> AuthUser:
        """``user`` after the provider renewed the sign-in's token and still grants the group (refresh)."""
        try:
            with self.db.lockedUpstreamToken(user.sessionID) as (providerName, refreshToken, replace):
                refreshGranting(self.idpClient(getIdProvider(providerName)), refreshToken, replace, user.username,
                                user.group)
        except NotFound:
            raise InvalidGrantError(description="the sign-in session ended: sign in again") from None
        except DiracError as exc:
            self.log.warning("refresh of %s@%s refused: %s", user.username, user.group, exc.message)
            raise InvalidGrantError(description=safeText(exc.message)) from exc
        return user

    def endSession(self, sessionID: str) -> int:
        """Revoke a sign-in session's refresh tokens and its provider token; the number of tokens revoked."""
        count = self.db.revokeSession(sessionID)
        upstream = self.db.removeUpstreamToken(sessionID)
        if upstream:
            provider, refreshToken = upstream
            try:
                self.idpClient(getIdProvider(provider)).revoke(refreshToken)
            except DiracError as exc:
                self.log.warning("revocation of session %s's token at %s failed: %s", sessionID[:8], provider, exc)
        return count

    # -- the browser: sign-in at a provider, back at <issuer>/redirect --------------------------------
    def verifyUserCode(self, userCode: str, provider: str | None) -> Response:
        """GET <issuer>/device?user_code=...: start the sign-in of a pending device login."""
        found = self.db.getPendingDeviceCode(userCode)
        if found is None:
            return htmlPage(400, "Unknown code", f"The code {userCode} is unknown or expired: run the login "
                            "command again.", "error")
        request = {"kind": "device", "userCode": found["userCode"], "scope": found["scope"]}
        return self._startSignIn(request, provider, f"{self.settings.issuer}/device?user_code={quote(userCode)}")

    def startAuthorization(self, call: HTTPCall, provider: str | None) -> Response:
        """GET <issuer>/authorization: check the client's request, then start the sign-in."""
        try:
            self.get_consent_grant(call)
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        return self._startSignIn({"kind": "code", "uri": call.uri}, provider, call.uri)

    def _startSignIn(self, request: dict[str, Any], provider: str | None, here: str) -> Response:
        choices = self.settings.idProviders
        if not choices:
            return htmlPage(503, "No identity provider", "This DIRAC server has no identity provider to sign in "
                            f"with ({IDPROVIDERS}).", "error")
        if provider and provider not in choices:
            return htmlPage(400, "Unknown identity provider", f"{provider} is not one of {', '.join(choices)}.",
                            "error")
        if not provider and len(choices) > 1:
            links = [(name, f"{here}{'&' if '?' in here else '?'}provider={quote(name)}") for name in choices]
            return Response(200, AuthPages.choices("Identity provider", "DIRAC itself is not an identity "
                                                   "provider: choose where to sign in.", links, "providers"),
                            [("Content-Type", "text/html; charset=utf-8")])
        idp = getIdProvider(provider or choices[0])
        state, verifier, cookie = generate_token(32), generate_token(64), generate_token(32)
        self.db.addSession(state, cookie, idp.name, verifier, json.dumps(request), self.settings.signInLifetime)
        scope = gConfig.getValue(f"{IDPROVIDERS}/{idp.name}/AuthServer_scope", "") or idp.scope or \
            "openid offline_access"
        url = self.idpClient(idp).authorizationURL(self.redirectURI, scope, state, verifier, generate_token(16))
        self.log.info("sign-in %s sent to %s", state[:8], idp.name)
        return Response(302, "", [("Location", url)], setCookie=cookie)

    def finishSignIn(self, params: dict[str, str], cookie: str) -> Response:
        """GET <issuer>/redirect: the provider's answer (or the user's group choice), then the grant."""
        state = params.get("state", "")
        session = self.db.getSession(state, cookie) if state else None
        if session is None:
            return htmlPage(400, "Sign-in expired", "This sign-in is unknown or expired, or was started in another "
                            "browser: start it again.", "error", clearCookie=True)
        request = json.loads(session["request"])
        if params.get("error"):
            return self._refuse(state, request, f"{session['provider']} refused the sign-in: {params['error']} "
                                f"{params.get('error_description', '')}".strip())
        if session["authed"]:
            authed = json.loads(session["authed"])
        elif not params.get("code"):
            return htmlPage(400, "Sign-in failed", "The identity provider sent no authorization code.", "error")
        else:
            try:
                authed = self._signedIn(getIdProvider(session["provider"]), params["code"], session["codeVerifier"])
            except DiracError as exc:
                self.log.warning("sign-in %s at %s failed: %s", state[:8], session["provider"], exc.message)
                return self._refuse(state, request, exc.message)
            self.db.setSessionUser(state, json.dumps(authed))
        requested = scopeGroup(params.get("chooseScope", "").replace("+", " ")) or scopeGroup(self._scopeOf(request))
        granted = authed["groups"]
        who = f"user {authed['username']}"
        if requested and requested not in granted:
            return self._refuse(state, request, f"identity provider {authed['provider']} does not grant group "
                                f"{requested} to {who}")
        if not requested and not granted:
            return self._refuse(state, request, f"identity provider {authed['provider']} grants {who} no DIRAC group")
        if not requested and len(granted) > 1:
            links = [(group, f"{self.redirectURI}?state={quote(state)}&chooseScope=g:{quote(group)}")
                     for group in granted]
            return Response(200, AuthPages.choices("DIRAC group", f"Signed in as {authed['username']}: choose the "
                                                   "DIRAC group to act in.", links, "groups"),
                            [("Content-Type", "text/html; charset=utf-8")])
        user = AuthUser(authed["username"], authed["userID"], authed["provider"], requested or granted[0],
                        authed["sessionID"])
        self.db.removeSession(state)
        return self._grant(request, user)

    @staticmethod
    def _scopeOf(request: dict[str, Any]) -> str:
        if request["kind"] == "device":
            return request["scope"]
        return HTTPCall.fromURI("GET", request["uri"]).query.get("scope", [""])[-1].replace("+", " ")

    def _signedIn(self, provider: IdProvider, code: str, verifier: str) -> dict[str, Any]:
        """Who signed in at ``provider`` and the DIRAC groups it grants; keeps the provider's refresh token."""
        from dirac.ConfigurationSystem.Client.UserRegistry import registeredUsername, registerUser

        tokens = self.idpClient(provider).fetchTokenByCode(code, self.redirectURI, verifier)
        claims = validateToken(tokens["access_token"])
        if str(claims["iss"]).rstrip("/") != provider.issuer:
            raise AuthenticationError(f"the token from {provider.name} was issued by {claims['iss']}")
        subject = str(claims["sub"])
        username = Registry.getUsernameForID(subject)
        if username is None and provider.registerUsers and provider.mapsGroups:
            username = registeredUsername(claims) or registerUser(provider, claims)
        if username is None:
            raise AuthorizationError(f"subject {subject} of {provider.name} is not registered in DIRAC")
        sessionID = generate_token(32)
        if tokens.get("refresh_token"):
            self.db.storeUpstreamToken(sessionID, provider.name, tokens["refresh_token"], self.settings.signInLifetime)
        self.log.info("%s signed in at %s (sign-in session %s)", username, provider.name, sessionID[:8])
        return {"username": username, "userID": subject, "provider": provider.name, "sessionID": sessionID,
                "groups": grantedGroups(provider, username, claims)}

    def _grant(self, request: dict[str, Any], user: AuthUser) -> Response:
        if request["kind"] == "device":
            scope = withGroup(request["scope"], user.group)
            if not self.db.grantDeviceCode(request["userCode"], user.asDict(), scope):
                return htmlPage(400, "Login expired", "The device login expired meanwhile: run the login command "
                                "again.", "error", clearCookie=True)
            self.log.info("device login granted to %s@%s via %s", user.username, user.group, user.provider)
            return htmlPage(200, "Signed in", f"Signed in as {user.username} in group {user.group}: you may close "
                            "this page and go back to your terminal.", "success", clearCookie=True)
        original = HTTPCall.fromURI("GET", request["uri"])
        scope = withGroup(original.query.get("scope", [""])[-1].replace("+", " "), user.group)
        call = HTTPCall.fromURI("GET", request["uri"], scope=scope)
        grant = self.get_consent_grant(call)
        response = self.create_authorization_response(call, grant_user=user, grant=grant)
        response.clearCookie = True
        self.log.info("authorization code for client %s issued to %s@%s", grant.request.client.get_client_id(),
                      user.username, user.group)
        return response

    def _refuse(self, state: str, request: dict[str, Any], reason: str) -> Response:
        """End a sign-in that cannot give the user what was asked: the device login is denied with the reason,
        the client of an authorization request gets access_denied."""
        self.db.removeSession(state)
        self.log.info("sign-in %s refused: %s", state[:8], reason)
        if request["kind"] == "device":
            self.db.denyDeviceCode(request["userCode"], safeText(reason))
            return htmlPage(403, "Sign-in refused", reason, "error", clearCookie=True)
        call = HTTPCall.fromURI("GET", request["uri"])
        try:
            grant = self.get_consent_grant(call)
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        response = self.create_authorization_response(call, grant_user=None, grant=grant)
        response.clearCookie = True
        return response
