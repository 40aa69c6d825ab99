"""Signing in and out: OpenID Connect (authorization code with PKCE) or the browser's X509 certificate;
the DIRAC group chosen among those the identity may have; who am I."""

from __future__ import annotations

import datetime
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from dirac.Core.Config import Registry
from dirac.Core.Security.IdProviders import idProviderForIssuer
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import DiracError, SecurityError
from dirac.WebApp.Handlers.Base import PortalHandler, log, unwrap
from dirac.WebApp.Portal import COOKIE

WHOAMI_SERVICE = "Configuration/Server"


def identityGroups(accessToken: str, username: str) -> list[str]:
    """The DIRAC groups a token's identity may act in: the provider's mapping of its claims, else the Registry's."""
    from dirac.Core.Security.Credentials import validateToken

    claims = validateToken(accessToken)
    provider = idProviderForIssuer(claims["iss"])
    if provider is not None and provider.mapsGroups:
        return provider.groupsFromClaims(claims)
    return Registry.getGroupsForUser(username)


def whoami(options: dict[str, Any]) -> dict[str, Any]:
    """What the services see of the caller with these client options (raises ServiceRefusal)."""
    return unwrap(RPCClient(WHOAMI_SERVICE, **options).whoami())


class LoginMixin(PortalHandler):
    """Helpers shared by the sign-in pages."""

    def safeNext(self, value: str | None) -> str:
        """A place in the portal to go to after signing in (never another site)."""
        root = self.portal.config.rootURL
        if value and value.startswith(root + "/") and not value.startswith("//") and "\\" not in value:
            return value
        return self.portal.url("jobs")

    def peerChain(self) -> Any:
        """The verified certificate chain the browser presented in the TLS handshake, or None."""
        from dirac.Core.Security.X509 import peerChainFromSSLObject

        try:
            return peerChainFromSSLObject(self.request.connection.stream.socket)  # type: ignore[union-attr]
        except (SecurityError, AttributeError):
            return None

    async def signIn(self, user: dict[str, Any], token: dict[str, Any] | None, lifetime: int, nextURL: str) -> None:
        """Replace the current (anonymous) session by a signed-in one (a new id: no session fixation)."""
        if self.sessionID:
            await self.blocking(self.portal.sessionDB.deleteSession, self.sessionID)
        self.session = {"user": user, "loginAt": time.time()}
        if token:
            self.session["token"] = token
        self.sessionID = await self.blocking(self.portal.newSession, self.session, lifetime, user["username"])
        self.setSessionCookie(self.sessionID)
        log.info("%s signed in to the portal with %s as %s (group %s) from %s", user["username"], user["authMethod"],
                 user.get("DN") or user.get("ID"), user["group"], self.request.remote_ip)
        if len(user["groups"]) > 1 and not user.get("groupChosen"):
            self.redirect(self.portal.url("group") + "?" + urlencode({"next": nextURL}))
        else:
            self.redirect(nextURL)

    def loginFailed(self, message: str) -> None:
        log.info("portal sign-in refused from %s: %s", self.request.remote_ip, message)
        self.redirect(self.portal.url("login") + "?" + urlencode({"message": message}))


class LoginPageHandler(LoginMixin):
    """The only page an unauthenticated visitor sees."""

    public = True

    async def get(self) -> None:
        if self.user:
            self.redirect(self.safeNext(self.get_query_argument("next", None)))
            return
        await self.ensureSession()
        chain = self.peerChain()
        await self.show("login.html", providers=self.portal.config.logins,
                        certificateDN=chain.identityDN if chain is not None else None,
                        message=self.get_query_argument("message", ""),
                        nextURL=self.safeNext(self.get_query_argument("next", None)))


class OIDCStartHandler(LoginMixin):
    """Send the browser to the authorization server (also to change the group of a token sign-in)."""

    public = True

    async def get(self, name: str) -> None:
        from dirac.Core.Security.OAuth2 import OAuth2Client

        provider = self.portal.config.login(name)
        if provider is None:
            self.set_status(404)
            await self.show("error.html", title="Unknown sign-in", message=f"No sign-in provider called {name}.")
            return
        await self.ensureSession()
        group = self.get_query_argument("group", "")
        pending = {"state": secrets.token_urlsafe(24), "verifier": secrets.token_urlsafe(64),
                   "nonce": secrets.token_urlsafe(16), "login": name, "group": group,
                   "next": self.safeNext(self.get_query_argument("next", None))}
        self.session["oauth"] = pending
        await self.saveSession()
        idProvider = provider.idProvider()
        scope = idProvider.scopeWithGroup(provider.scope, group)
        try:
            url = await self.blocking(lambda: OAuth2Client(idProvider).authorizationURL(
                self.redirectURI(), scope, pending["state"], pending["verifier"], pending["nonce"]))
        except DiracError as exc:
            self.loginFailed(f"{name} cannot be reached: {exc}")
            return
        self.redirect(url)

    def redirectURI(self) -> str:
        return f"{self.request.protocol}://{self.request.host}{self.portal.url('login/callback')}"


class OIDCCallbackHandler(LoginMixin):
    """The authorization server sends the browser back here with a code."""

    public = True

    async def get(self) -> None:
        from dirac.Core.Security.OAuth2 import OAuth2Client

        pending = self.session.get("oauth") or {}
        state = self.get_query_argument("state", "")
        if not pending or not state or not secrets.compare_digest(state, pending.get("state", "")):
            self.loginFailed("The sign-in could not be matched to this browser (state mismatch): start again.")
            return
        self.session.pop("oauth")
        await self.saveSession()  # the state is used once
        if self.get_query_argument("error", ""):
            self.loginFailed(f"The sign-in was refused: {self.get_query_argument('error')} "
                             f"{self.get_query_argument('error_description', '')}".strip())
            return
        provider = self.portal.config.login(pending["login"])
        if provider is None:
            self.loginFailed(f"No sign-in provider called {pending['login']} any more.")
            return
        redirectURI = f"{self.request.protocol}://{self.request.host}{self.portal.url('login/callback')}"
        try:
            tokens = await self.blocking(lambda: OAuth2Client(provider.idProvider()).fetchTokenByCode(
                self.get_query_argument("code", ""), redirectURI, pending["verifier"]))
            who = await self.blocking(whoami, {"token": tokens["access_token"], "useCertificates": False})
            groups = await self.blocking(identityGroups, tokens["access_token"], who["username"])
        except DiracError as exc:
            self.loginFailed(f"Sign-in with {provider.name} failed: {exc}")
            return
        token = {"access_token": tokens["access_token"], "refresh_token": tokens.get("refresh_token"),
                 "expires_at": tokens.get("expires_at") or time.time() + float(tokens.get("expires_in") or 0),
                 "login": provider.name}
        user = {"username": who["username"], "DN": who.get("DN"), "ID": who.get("ID"), "group": who["group"],
                "properties": who.get("properties", []), "groups": groups or [who["group"]], "authMethod": "JWT",
                "issuer": provider.issuer, "login": provider.name, "groupChosen": bool(pending.get("group"))}
        await self.signIn(user, token, self.portal.config.sessionLifetime, pending["next"])


class CertificateLoginHandler(LoginMixin):
    """Sign in with the certificate the browser presented in the TLS handshake."""

    public = True

    async def post(self) -> None:
        from dirac.Core.Security.Credentials import credentialsFromChain

        nextURL = self.safeNext(self.get_body_argument("next", None))
        chain = self.peerChain()
        if chain is None:
            self.loginFailed("Your browser presented no certificate to this server.")
            return
        try:
            creds = await self.blocking(credentialsFromChain, chain)
            if creds.get("hostname"):
                raise SecurityError(f"{creds['DN']} is a host certificate, not a user's")
            who = await self.blocking(whoami, {"useCertificates": True,
                                               "extraCredentials": (creds["DN"], creds["group"])})
            groups = await self.blocking(Registry.getGroupsForUser, creds["username"])
        except DiracError as exc:
            self.loginFailed(f"Sign-in with your certificate failed: {exc}")
            return
        left = (chain.notAfter - datetime.datetime.now(datetime.UTC)).total_seconds()
        user = {"username": who["username"], "DN": creds["DN"], "group": who["group"],
                "properties": who.get("properties", []), "groups": groups, "authMethod": "X509",
                "certificateExpires": chain.notAfter.timestamp()}
        await self.signIn(user, None, int(min(self.portal.config.sessionLifetime, left)), nextURL)


class LogoutHandler(LoginMixin):
    """End the session here (and give the refresh token back to the provider)."""

    public = True

    async def post(self) -> None:
        from dirac.Core.Security.OAuth2 import OAuth2Client

        token, user = self.session.get("token") or {}, self.user or {}
        if self.sessionID:
            await self.blocking(self.portal.sessionDB.deleteSession, self.sessionID)
        self.clear_cookie(COOKIE, path=self.portal.config.rootURL)
        provider = self.portal.config.login(token.get("login", ""))
        if provider is not None and token.get("refresh_token"):
            try:
                await self.blocking(OAuth2Client(provider.idProvider()).revoke, token["refresh_token"])
            except DiracError as exc:
                log.warning("refresh token of %s not revoked at %s: %s", user.get("username"), provider.name, exc)
        log.info("%s signed out of the portal", user.get("username"))
        self.redirect(self.portal.url("login") + "?" + urlencode({"message": "You have signed out."}))


class GroupHandler(LoginMixin):
    """Choose the DIRAC group to act in, among those of the identity."""

    async def get(self) -> None:
        await self.show("group.html", nextURL=self.safeNext(self.get_query_argument("next", None)))

    async def post(self) -> None:
        group = self.get_body_argument("group", "")
        nextURL = self.safeNext(self.get_body_argument("next", None))
        user = self.user or {}
        if group not in user.get("groups", []):
            self.flash(f"You may not act in group {group!r}.", "error")
            await self.saveSession()
            self.redirect(self.portal.url("group"))
            return
        if user["authMethod"] == "JWT" and group != user["group"]:
            # a token carries its group (its group scope): ask the provider for one in the new group
            self.redirect(self.portal.url(f"login/oidc/{user['login']}") + "?" + urlencode({"group": group,
                                                                                           "next": nextURL}))
            return
        if group != user["group"]:
            who = await self.blocking(whoami, {"useCertificates": True, "extraCredentials": (user["DN"], group)})
            user.update(group=who["group"], properties=who.get("properties", []))
        user["groupChosen"] = True
        self.flash(f"You act in group {group}.")
        await self.saveSession()
        self.redirect(nextURL)


class WhoAmIHandler(PortalHandler):
    """Identity, group, properties, what is left of the token, the session and the stored proxies."""

    async def get(self) -> None:
        from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient

        who = await self.act(whoami)
        proxies = await self.act(lambda options: ProxyManagerClient(**options).getUserProxiesInfo())
        token = self.session.get("token") or {}
        now = time.time()
        await self.show("whoami.html", who=who,
                        tokenLeft=float(token["expires_at"]) - now if token.get("expires_at") else None,
                        sessionLeft=(self.sessionExpires.timestamp() - now) if self.sessionExpires else None,
                        proxies=proxies["Value"] if proxies["OK"] else {},
                        proxiesError="" if proxies["OK"] else proxies["Message"])
