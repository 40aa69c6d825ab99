"""The base of every portal page: session cookie, CSRF check, sign-in requirement, the user's clients."""

from __future__ import annotations

import asyncio
import datetime
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import tornado.web

from dirac.Core.Utilities.Exceptions import AuthenticationError, DiracError
from dirac.Core.Utilities.Logging import getLogger
from dirac.WebApp.Portal import COOKIE, HERE, PENDING_LIFETIME, Portal

log = getLogger("WebApp")
#: refresh an access token this many seconds before it expires
TOKEN_MARGIN = 60


class SessionExpired(DiracError):
    """The user's sign-in is over (session or token expired and not renewable)."""


class PortalHandler(tornado.web.RequestHandler):
    """A page. ``public`` pages are shown without a sign-in; every POST must carry the session's CSRF token."""

    public = False
    portal: Portal

    def initialize(self, portal: Portal) -> None:
        self.portal = portal
        self.sessionID: str | None = None
        self.session: dict[str, Any] = {}
        self.sessionExpires: datetime.datetime | None = None
        self.hadCookie = False

    def get_template_path(self) -> str:
        return str(HERE / "templates")

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                                   "frame-ancestors 'none'; form-action 'self' https:")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Server", "dirac-seed")

    # -- session -----------------------------------------------------------------------------------------
    @property
    def user(self) -> dict[str, Any] | None:
        return self.session.get("user")

    async def blocking(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (client calls, databases) in the portal's thread pool, never on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.portal.executor, func, *args)

    async def prepare(self) -> None:
        raw = self.get_signed_cookie(COOKIE, max_age_days=31)
        self.hadCookie = bool(self.get_cookie(COOKIE))
        sessionID = raw.decode() if raw else None
        loaded = await self.blocking(self.portal.loadSession, sessionID)
        if loaded is not None:
            self.sessionID, (self.session, self.sessionExpires) = sessionID, loaded
        if self.request.method == "POST" and not self._csrfValid():
            log.warning("CSRF check failed for %s %s from %s", self.request.method, self.request.path,
                        self.request.remote_ip)
            self.set_status(403)
            self.render("error.html", title="Request refused",
                        message="The form was not sent from this portal's page in your session (CSRF check "
                                "failed). Reload the page and try again.")
            return
        if not self.public and not self.user:
            self.redirectToLogin("Your session has expired: sign in again." if self.hadCookie else "")

    def _csrfValid(self) -> bool:
        sent = self.get_body_argument("_csrf", "") or self.request.headers.get("X-CSRF-Token", "")
        expected = self.session.get("csrf", "")
        return bool(sent and expected) and hmac.compare_digest(sent, expected)

    def redirectToLogin(self, message: str = "") -> None:
        query = {"next": self.request.uri} if self.request.method == "GET" else {}
        if message:
            query["message"] = message
        self.clear_cookie(COOKIE, path=self.portal.config.rootURL)
        self.redirect(self.portal.url("login") + ("?" + urlencode(query) if query else ""))

    def get_signed_cookie(self, name: str, value: str | None = None, max_age_days: float = 31,
                          min_version: int | None = None) -> bytes | None:
        return tornado.web.decode_signed_value(self.portal.config.cookieSecret, name,
                                               value if value is not None else self.get_cookie(name),
                                               max_age_days=max_age_days, min_version=min_version)

    def setSessionCookie(self, sessionID: str) -> None:
        value = tornado.web.create_signed_value(self.portal.config.cookieSecret, COOKIE, sessionID)
        self.set_cookie(COOKIE, value.decode(), path=self.portal.config.rootURL, secure=True, httponly=True,
                        samesite="Lax")

    async def ensureSession(self) -> None:
        """An anonymous session for a sign-in under way (CSRF token, OAuth2 state)."""
        if self.sessionID is None:
            self.session = {}
            self.sessionID = await self.blocking(self.portal.newSession, self.session, PENDING_LIFETIME)
            self.setSessionCookie(self.sessionID)

    async def saveSession(self) -> None:
        if self.sessionID:
            await self.blocking(self.portal.sessionDB.updateSession, self.sessionID, self.session)

    def flash(self, message: str, kind: str = "info") -> None:
        """A message shown on the next page (after a POST's redirect)."""
        self.session.setdefault("flash", []).append([kind, message])

    # -- acting for the user ------------------------------------------------------------------------------
    def _accessToken(self) -> str:
        from dirac.Core.Security.OAuth2 import OAuth2Client

        token = self.session["token"]
        if float(token.get("expires_at") or 0) - TOKEN_MARGIN > time.time():
            return token["access_token"]
        provider = self.portal.config.login(token.get("login", ""))
        if provider is None or not token.get("refresh_token"):
            raise SessionExpired("the access token expired and cannot be renewed")
        try:
            fresh = OAuth2Client(provider.idProvider()).refresh(token["refresh_token"])
        except AuthenticationError as exc:
            raise SessionExpired(f"the access token expired and its renewal failed: {exc}") from exc
        fresh.setdefault("refresh_token", token["refresh_token"])
        fresh["login"] = token.get("login")
        self.session["token"] = {k: fresh.get(k) for k in ("access_token", "refresh_token", "expires_at", "login")}
        self.portal.sessionDB.updateSession(self.sessionID or "", self.session)
        return fresh["access_token"]

    def clientOptions(self) -> dict[str, Any]:
        """Options for the clients (RPCClient, Dirac, DataManager, ...) that make them act as the user.

        Blocking (may renew the access token): call it in the thread pool.
        """
        user = self.user or {}
        if user.get("authMethod") == "JWT":
            return {"token": self._accessToken(), "useCertificates": False}
        return {"useCertificates": True, "extraCredentials": (user["DN"], user["group"])}

    async def act(self, func: Callable[[dict[str, Any]], Any]) -> Any:
        """``func(clientOptions)`` in the thread pool: the user's credentials go with every call it makes."""
        return await self.blocking(lambda: func(self.clientOptions()))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, SessionExpired):
            log.info("session of %s ended: %s", (self.user or {}).get("username"), exc)
            self.clear_cookie(COOKIE, path=self.portal.config.rootURL)
            self.redirect(self.portal.url("login") + "?" + urlencode({"message": "Your session has expired: "
                                                                                 "sign in again."}))
            return
        if isinstance(exc, ServiceRefusal):  # a service's S_ERROR: the user may read why
            self.set_status(403 if "may not" in exc.message or "not allowed" in exc.message.lower() else 400)
            self.render("error.html", title="Refused", message=exc.message)
            return
        message = self._reason if status_code != 500 else "internal error; the server log has the details"
        self.render("error.html", title=f"Error {status_code}", message=message)

    # -- rendering ------------------------------------------------------------------------------------------
    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(user=self.user, csrf=self.session.get("csrf", ""), root=self.portal.config.rootURL,
                         flashes=self.session.pop("flash", []), handlerName=type(self).__name__)
        return namespace

    async def show(self, template: str, **values: Any) -> None:
        """Render a page (saving the session when it showed flash messages)."""
        flashed = bool(self.session.get("flash"))
        self.render(template, **values)
        if flashed:
            await self.saveSession()


def unwrap(result: dict[str, Any]) -> Any:
    """The value of an S_OK; a ServiceRefusal carrying the message of an S_ERROR."""
    if not result["OK"]:
        raise ServiceRefusal(result["Message"])
    return result["Value"]


class ServiceRefusal(DiracError):
    """A service answered S_ERROR: shown to the user as it is."""
