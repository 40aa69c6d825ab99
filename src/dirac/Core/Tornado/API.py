"""Plain HTTP endpoints served next to the RPC services (e.g. the OAuth2 authorization server at ``/auth``).

Such a component is a ``dirac.webapps`` entry point: a function ``routes(server)`` returning Tornado
routes, which the server mounts with the services (see ``Core/Base/Components``). Its handlers
derive from ``APIRequestHandler`` and declare who may call them, as exported RPC methods do:

* ``access = PUBLIC``: the endpoint authenticates its callers itself (OAuth2 clients by their
  credentials, browsers by a sign-in at an identity provider, or it serves public documents);
* ``access = AUTHENTICATED``: a bearer token or certificate the server accepts, checked before the
  handler runs (the credentials are then in ``self.credDict``); refused with 401/403 otherwise.

``mountRoutes(location, routes, server, **shared)`` refuses a handler without ``access``, so an
endpoint cannot be published without a rule. Handlers run blocking work (databases, identity
providers) with ``await self.inThreadPool(function, *args)``, never on the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import tornado.web

from dirac.Core.Utilities.Exceptions import AuthorizationError, DiracError

PUBLIC = "public"
AUTHENTICATED = "authenticated"
Route = tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]


class APIRequestHandler(tornado.web.RequestHandler):
    """Base of the handlers of plain HTTP endpoints; ``server`` (the TornadoServer) and ``shared`` are given
    by ``mountRoutes``."""

    access: ClassVar[str]
    server: Any
    shared: dict[str, Any]
    credDict: dict[str, Any]

    def initialize(self, server: Any, **shared: Any) -> None:
        self.server = server
        self.shared = shared
        self.credDict = {}

    def set_default_headers(self) -> None:
        self.set_header("Server", "dirac-seed")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        if self.access != AUTHENTICATED:
            return
        try:
            self.credDict = await self.server.authenticateCall(self.request)
        except DiracError as exc:
            forbidden = isinstance(exc, AuthorizationError)
            self.set_status(403 if forbidden else 401)
            if not forbidden:
                self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.finish({"error": "insufficient_scope" if forbidden else "invalid_token",
                         "error_description": exc.message})

    async def inThreadPool(self, function: Any, *args: Any) -> Any:
        """Run blocking work in the server's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.server.executor, function, *args)


def mountRoutes(location: str, routes: list[Route], server: Any, **shared: Any) -> list[Route]:
    """``routes`` (patterns relative to ``location``) as Tornado routes, each handler checked to declare its
    ``access``; every handler is initialised with ``server`` and ``shared``."""
    mounted = []
    for pattern, handler, extra in routes:
        if getattr(handler, "access", None) not in (PUBLIC, AUTHENTICATED):
            raise TypeError(f"{handler.__name__} ({location}{pattern}) declares no access rule "
                            f"(access = PUBLIC or AUTHENTICATED)")
        mounted.append((f"{location.rstrip('/')}{pattern}", handler, {"server": server, **shared, **extra}))
    return mounted
