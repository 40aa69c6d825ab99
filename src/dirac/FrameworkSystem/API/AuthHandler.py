"""Framework/Auth: the HTTP endpoints of the OAuth2 authorization server, at ``<issuer>`` (``/auth``).

=========================================================  ======================================================
``GET  /auth/.well-known/openid-configuration``            discovery (also ``oauth-authorization-server``)
``GET  /auth/jwk``                                         the public key set of the server's tokens
``POST /auth/device``                                      device authorization (RFC 8628): device and user code
``GET  /auth/device[?user_code=..][&provider=..]``         the user's page: code form, then the identity provider
``GET  /auth/authorization``                               authorization code request (PKCE S256 required)
``GET  /auth/redirect``                                    the identity provider's answer; ``chooseScope=g:<group>``
``POST /auth/token``                                       device_code, authorization_code, refresh_token grants
``POST /auth/revoke``                                      revocation (RFC 7009) of a refresh or access token
``GET  /auth/userinfo``                                    who the bearer of an access token is (authenticated)
=========================================================  ======================================================

DIRAC's ``/auth/device/<provider>`` and ``/auth/authorization/<provider>`` (the provider in the path)
are accepted too. ``authRoutes(server)`` is the ``dirac.webapps`` entry point ``Framework/Auth``; with
no ``/DIRAC/Security/Authorization/issuer`` in the configuration it publishes nothing.
"""

from __future__ import annotations

from typing import Any

from dirac.Core.Security import TokenSigning
from dirac.Core.Security.IdProviders import authorizationServerIssuer
from dirac.Core.Tornado.API import AUTHENTICATED, PUBLIC, APIRequestHandler, Route, mountRoutes
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.Logging import getLogger
from dirac.FrameworkSystem.DB.AuthDB import AuthDB
from dirac.FrameworkSystem.Logic.AuthClients import AuthUser
from dirac.FrameworkSystem.Logic.AuthServer import SESSION_COOKIE, AuthServer, AuthSettings, HTTPCall, Response

log = getLogger("Framework/Auth")
#: what the upstream refresh tokens of the sign-in sessions are encrypted for (the key derived from it)
UPSTREAM_TOKENS = "dirac-auth-upstream-tokens"


class AuthRequestHandler(APIRequestHandler):
    """Common part of the endpoints: the request for authlib, the response back."""

    @property
    def authServer(self) -> AuthServer:
        return self.shared["authServer"]

    def call(self) -> HTTPCall:
        request = self.request
        form = {name: [v.decode("utf-8", "replace") for v in values] for name, values in request.body_arguments.items()}
        query = {name: [v.decode("utf-8", "replace") for v in values]
                 for name, values in request.query_arguments.items()}
        return HTTPCall(request.method or "GET", request.full_url(), request.headers, query, form)

    def reply(self, response: Response) -> None:
        self.set_status(response.status)
        for name, value in response.headers:
            self.set_header(name, value)
        path = self.authServer.settings.location
        if response.setCookie:
            self.set_cookie(SESSION_COOKIE, response.setCookie, path=path, secure=True, httponly=True,
                            samesite="Lax", expires_days=None)
        elif response.clearCookie:
            self.clear_cookie(SESSION_COOKIE, path=path)
        if isinstance(response.body, dict):
            self.set_header("Content-Type", "application/json")
        self.finish(response.body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, DiracError):  # e.g. a configuration error: say which option
            log.error("%s %s: %s", self.request.method, self.request.path, error.message)
            self.finish({"error": "server_error", "error_description": error.message})
            return
        self.finish({"error": "server_error", "error_description": "internal error; the server log has the details"})


class MetadataHandler(AuthRequestHandler):
    access = PUBLIC

    def get(self) -> None:
        self.reply(Response(200, self.authServer.metadata()))


class JWKSHandler(AuthRequestHandler):
    access = PUBLIC

    def get(self) -> None:
        self.reply(Response(200, {"keys": [TokenSigning.signingKey().publicJWK]}))


class DeviceHandler(AuthRequestHandler):
    access = PUBLIC

    async def post(self, provider: str | None = None) -> None:
        call = self.call()
        self.reply(await self.inThreadPool(self.authServer.create_endpoint_response, "device_authorization", call))

    async def get(self, provider: str | None = None) -> None:
        from dirac.FrameworkSystem.Logic import AuthPages

        userCode = self.get_query_argument("user_code", "").strip()
        if not userCode:
            page = AuthPages.userCodeForm(f"{self.authServer.settings.issuer}/device")
            self.reply(Response(200, page, [("Content-Type", "text/html; charset=utf-8")]))
            return
        provider = provider or self.get_query_argument("provider", None)
        self.reply(await self.inThreadPool(self.authServer.verifyUserCode, userCode, provider))


class AuthorizationHandler(AuthRequestHandler):
    access = PUBLIC

    async def get(self, provider: str | None = None) -> None:
        provider = provider or self.get_query_argument("provider", None)
        self.reply(await self.inThreadPool(self.authServer.startAuthorization, self.call(), provider))


class RedirectHandler(AuthRequestHandler):
    access = PUBLIC

    async def get(self) -> None:
        params = {name: values[-1] for name, values in self.call().query.items() if values}
        cookie = self.get_cookie(SESSION_COOKIE, "") or ""
        self.reply(await self.inThreadPool(self.authServer.finishSignIn, params, cookie))


class TokenHandler(AuthRequestHandler):
    access = PUBLIC

    async def post(self) -> None:
        self.reply(await self.inThreadPool(self.authServer.create_token_response, self.call()))


class RevokeHandler(AuthRequestHandler):
    access = PUBLIC

    async def post(self) -> None:
        self.reply(await self.inThreadPool(self.authServer.create_endpoint_response, "revocation", self.call()))


class UserInfoHandler(AuthRequestHandler):
    access = AUTHENTICATED

    def get(self) -> None:
        creds = self.credDict
        user = AuthUser(creds.get("username") or "", creds.get("ID") or "", creds.get("IdProvider") or "",
                        creds.get("group") or "")
        self.reply(Response(200, {**self.authServer.userInfo(user), "username": user.username,
                                  "VO": creds.get("VO", "")}))

    post = get


def authRoutes(server: Any) -> list[Route]:
    """The routes of the authorization server under its issuer's path (none when no issuer is configured)."""
    if not authorizationServerIssuer():
        log.warning("no /DIRAC/Security/Authorization/issuer: the authorization server is not published")
        return []
    settings = AuthSettings.fromCS()
    db = AuthDB(encryptionKey=TokenSigning.derivedSecret(UPSTREAM_TOKENS))
    purged = db.purgeExpired()
    authServer = AuthServer(db)
    log.info("authorization server %s ready (identity providers: %s; %d expired entries purged)", settings.issuer,
             ", ".join(settings.idProviders) or "none", purged)
    provider = r"(?:/([A-Za-z0-9_.-]+))?"
    return mountRoutes(settings.location, [
        (r"/\.well-known/(?:openid-configuration|oauth-authorization-server)", MetadataHandler, {}),
        (r"/jwk", JWKSHandler, {}),
        (rf"/device{provider}", DeviceHandler, {}),
        (rf"/authorization{provider}", AuthorizationHandler, {}),
        (r"/redirect", RedirectHandler, {}),
        (r"/token", TokenHandler, {}),
        (r"/revoke", RevokeHandler, {}),
        (r"/userinfo", UserInfoHandler, {}),
    ], server, authServer=authServer)
