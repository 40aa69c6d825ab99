"""The web portal: server-side rendered pages on the same HTTPS server as the services.

``portalRoutes(server)`` is the ``dirac.webapps`` entry point ``WebApp/Portal``: ``dirac-server
start`` serves it with every service, ``dirac-service WebApp/Portal`` alone. The pages act for
the signed-in user through the ordinary clients (RPC), with the user's own credentials: the
access token of an OpenID Connect sign-in, or, for a certificate sign-in, the host certificate
with DIRAC's ``extraCredentials`` = (DN, group), which only a ``TrustedHost`` may send. The
services' own rules decide what the user may see and do.
"""

from __future__ import annotations

import datetime
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tornado.web

from dirac.Core.Base.DB import utcnow
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Logging import getLogger
from dirac.WebApp.Config import PortalConfig, loadPortalConfig
from dirac.WebApp.DB.SessionDB import SessionDB

log = getLogger("WebApp")
HERE = Path(__file__).parent
COOKIE = "dirac_session"
#: an anonymous session (a sign-in under way) lasts this long
PENDING_LIFETIME = 900


class Portal:
    """What every page handler shares: settings, sessions and the thread pool for client calls."""

    def __init__(self, config: PortalConfig, sessionDB: SessionDB, maxThreads: int = 8):
        self.config = config
        self.sessionDB = sessionDB
        self.executor = ThreadPoolExecutor(max_workers=maxThreads, thread_name_prefix="webapp")

    def url(self, path: str = "") -> str:
        return f"{self.config.rootURL}/{path.lstrip('/')}"

    # -- sessions: a signed cookie holding a random id, the state in SessionDB ---------------------------
    def newSession(self, state: dict[str, Any], lifetime: int, username: str | None = None) -> str:
        sessionID = secrets.token_urlsafe(32)
        state.setdefault("csrf", secrets.token_urlsafe(32))
        expires = utcnow() + datetime.timedelta(seconds=lifetime)
        self.sessionDB.createSession(sessionID, state, expires, username)
        return sessionID

    def loadSession(self, sessionID: str | None) -> tuple[dict[str, Any], datetime.datetime] | None:
        return self.sessionDB.getSession(sessionID) if sessionID else None


def portalRoutes(server: Any) -> list[tuple]:
    """The portal's Tornado routes under ``/WebApp/RootURL`` (default /DIRAC)."""
    from dirac.WebApp.Handlers import Configuration, Files, Jobs, Login, Pilots

    config = loadPortalConfig()
    portal = Portal(config, SessionDB(), gConfig.getValue("/WebApp/MaxThreads", 8))
    removed = portal.sessionDB.purgeExpired()
    log.info("Web portal at %s (%d sign-in providers%s; %d expired sessions removed)", config.rootURL,
             len(config.logins), ": " + ", ".join(p.name for p in config.logins) if config.logins else "",
             removed)
    root = config.rootURL
    kwargs = {"portal": portal}
    pages = [
        (r"/?", Jobs.HomeHandler),
        (r"/login", Login.LoginPageHandler),
        (r"/login/oidc/([A-Za-z0-9_.-]+)", Login.OIDCStartHandler),
        (r"/login/callback", Login.OIDCCallbackHandler),
        (r"/login/certificate", Login.CertificateLoginHandler),
        (r"/logout", Login.LogoutHandler),
        (r"/group", Login.GroupHandler),
        (r"/whoami", Login.WhoAmIHandler),
        (r"/jobs", Jobs.JobMonitorHandler),
        (r"/jobs/action", Jobs.JobActionHandler),
        (r"/jobs/plot\.(png|svg)", Jobs.JobPlotHandler),
        (r"/jobs/([0-9]+)", Jobs.JobDetailHandler),
        (r"/jobs/([0-9]+)/sandbox/(Output|Input)", Jobs.SandboxDownloadHandler),
        (r"/pilots", Pilots.PilotMonitorHandler),
        (r"/pilots/show", Pilots.PilotDetailHandler),
        (r"/files", Files.FileCatalogHandler),
        (r"/files/download", Files.FileDownloadHandler),
        (r"/config", Configuration.ConfigurationHandler),
    ]
    routes: list[tuple] = [(r"/", tornado.web.RedirectHandler, {"url": f"{root}/"})]
    routes += [(root + pattern, handler, kwargs) for pattern, handler in pages]
    routes.append((root + r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(HERE / "static")}))
    return routes
