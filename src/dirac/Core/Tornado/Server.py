"""The HTTPS server hosting services: one Tornado application, one route per service.

TLS is set up for grid credentials: the client may present an X509 proxy chain (RFC 3820
proxies are accepted), verified against the CA directory (``X509_CERT_DIR``); a client
without a certificate may authenticate with ``Authorization: Bearer <token>``; a request
with neither is refused. Blocking service code runs in one thread pool.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.httpserver
import tornado.web
from tornado.httputil import HTTPServerRequest

from dirac.Core.Config import gConfig
from dirac.Core.Security import Locations
from dirac.Core.Tornado.Endpoint import PilotFileEndpoint, RPCEndpoint
from dirac.Core.Tornado.RequestHandler import RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import AuthenticationError, ConfigurationError, SecurityError
from dirac.Core.Utilities.Logging import getLogger

log = getLogger("Tornado.Server")

DEFAULT_PORT = 8443
CREDENTIALS_TTL = 60  # seconds a connection's credentials are reused before a Registry re-read


def makeServerSSLContext(certFile: str, keyFile: str, caDir: str) -> ssl.SSLContext:
    """TLS context for a DIRAC server: host cert, optional client certs, proxies allowed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certFile, keyFile)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
    context.load_verify_locations(capath=caDir)
    return context


class TornadoServer:
    """Hosts a set of services on one port: ``TornadoServer({"System/Name": Handler, ...})``."""

    def __init__(self, services: dict[str, type[RequestHandler]], port: int | None = None,
                 host: str | None = None, certFile: str | None = None, keyFile: str | None = None,
                 caDir: str | None = None, webApps: dict[str, Callable[[TornadoServer], list]] | None = None):
        self.services = services
        self.webApps = webApps or {}
        self.port = port if port is not None else gConfig.getValue("/DIRAC/Server/Port", DEFAULT_PORT)
        self.host = host or gConfig.getValue("/DIRAC/Server/Host", "")
        if not (certFile and keyFile):
            location = Locations.getHostCertificateAndKeyLocation()
            if not location:
                raise ConfigurationError("no host certificate: set /DIRAC/Security/CertFile and KeyFile")
            certFile, keyFile = location
        self.certFile, self.keyFile = certFile, keyFile
        self.caDir = caDir or Locations.getCAsLocation()
        self.maxUploadSize = gConfig.getValue("/DIRAC/Server/MaxUploadSize", 10 << 30)
        self.spoolDir = gConfig.getValue("/DIRAC/Server/SpoolDir", tempfile.gettempdir())
        self.executor = ThreadPoolExecutor(max_workers=gConfig.getValue("/DIRAC/Server/MaxThreads", 32),
                                           thread_name_prefix="rpc")
        self._httpServer: tornado.httpserver.HTTPServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopEvent: asyncio.Event | None = None

    # -- set-up --------------------------------------------------------------------------------
    def url(self, name: str) -> str:
        return f"https://{self.host or '127.0.0.1'}:{self.port}/{name}"

    def makeApplication(self) -> tornado.web.Application:
        routes = []
        for name, handlerClass in sorted(self.services.items()):
            handlerClass.setUp(ServiceInfo(name=name, url=self.url(name)))
            routes.append((f"/{name}", RPCEndpoint, {"serviceClass": handlerClass, "server": self}))
            log.info("Service %s ready with %d methods", name, len(handlerClass.exportedMethods))
        routes.append((r"/pilot/([^/]+)", PilotFileEndpoint,
                       {"directory": gConfig.getValue("/DIRAC/Server/PilotFilesDirectory", ""), "server": self}))
        for name, makeRoutes in sorted(self.webApps.items()):  # after the services: theirs are exact paths
            webRoutes = makeRoutes(self)
            routes.extend(webRoutes)
            log.info("Web application %s ready with %d routes", name, len(webRoutes))
        return tornado.web.Application(routes)

    async def listen(self) -> None:
        """Bind the port and start serving on the running event loop."""
        context = makeServerSSLContext(self.certFile, self.keyFile, self.caDir)
        self._httpServer = tornado.httpserver.HTTPServer(
            self.makeApplication(), ssl_options=context, max_body_size=self.maxUploadSize,
            idle_connection_timeout=gConfig.getValue("/DIRAC/Server/KeepAliveTimeout", 300),
        )
        self._httpServer.listen(self.port, address=self.host)
        if self.port == 0:  # tests: learn the port the system chose
            sockets = list(self._httpServer._sockets.values())  # noqa: SLF001
            self.port = sockets[0].getsockname()[1]
        log.info("Listening on https://%s:%d with %d services", self.host or "*", self.port, len(self.services))

    # -- running ---------------------------------------------------------------------------------
    async def serve(self, stopEvent: asyncio.Event) -> None:
        """Serve until ``stopEvent`` is set, then close connections and the thread pool."""
        await self.listen()
        await stopEvent.wait()
        await self.close()

    async def close(self) -> None:
        if self._httpServer:
            self._httpServer.stop()
            await self._httpServer.close_all_connections()
        self.executor.shutdown(wait=False, cancel_futures=True)
        log.info("Server on port %d stopped", self.port)

    def startInThread(self) -> None:
        """Run the server on its own event loop in a daemon thread (tests, embedding)."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def runner() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._stopEvent = asyncio.Event()
            try:
                self._loop.run_until_complete(self.listen())
            except BaseException as exc:  # report bind errors to the caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_until_complete(self._stopEvent.wait())  # type: ignore[union-attr]
            self._loop.run_until_complete(self.close())
            self._loop.close()

        self._thread = threading.Thread(target=runner, name="TornadoServer", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]

    def stopThread(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._stopEvent.set)  # type: ignore[union-attr]
            self._thread.join(10)

    # -- authentication -------------------------------------------------------------------------
    async def authenticateCall(self, request: HTTPServerRequest) -> dict[str, Any]:
        """``authenticate``; a token subject to be added to the Registry first is added in the thread pool
        (it commits to the Configuration Server, maybe this very server: never on the event loop)."""
        from dirac.ConfigurationSystem.Client.UserRegistry import UnregisteredSubject

        try:
            return self.authenticate(request)
        except UnregisteredSubject as pending:
            await asyncio.get_running_loop().run_in_executor(self.executor, pending.register)
        return self.authenticate(request)

    def authenticate(self, request: HTTPServerRequest) -> dict[str, Any]:
        """The caller's credentials from its bearer token or TLS certificate chain."""
        from dirac.Core.Security.Credentials import credentialsFromChain, credentialsFromToken
        from dirac.Core.Security.X509 import peerChainFromSSLObject

        authorization = request.headers.get("Authorization", "")
        if authorization[:7].lower() == "bearer ":
            return credentialsFromToken(authorization[7:].strip())
        stream = request.connection.stream  # type: ignore[union-attr]
        cached = getattr(stream, "diracCredentials", None)
        now = datetime.datetime.now(datetime.UTC)
        if cached and (now - cached[1]).total_seconds() < CREDENTIALS_TTL:
            chain, credDict = cached[0], cached[2]
        else:
            try:
                chain = peerChainFromSSLObject(stream.socket)
            except SecurityError:
                raise AuthenticationError("no client certificate or bearer token: the call is refused") from None
            credDict = credentialsFromChain(chain)
            stream.diracCredentials = (chain, now, credDict)
        if chain.notAfter <= now:
            raise AuthenticationError(f"the client certificate of {credDict.get('DN')} expired at "
                                      f"{chain.notAfter:%Y-%m-%d %H:%M:%S} UTC")
        return credDict
