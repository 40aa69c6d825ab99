"""The HTTP side of a service: ``POST /<System>/<Service>`` in DIRAC's HTTPS RPC format.

The body is form-encoded with ``method`` (the exported name), ``args`` (a JEncoded list) and
optionally ``clientVO``, ``extraCredentials`` (a JEncoded [DN, group]: a ``TrustedHost`` acting
for that user, see ``Credentials.delegatedCredentials``) and ``rawContent``. The answer is the JEncoded
S_OK/S_ERROR dict. HTTP status codes mark what is not a method's own result: 400 malformed
request, 401 no or invalid credentials, 403 not allowed, 501 unknown method, 413 too large.

File transfers use the same route: ``streamToClient`` answers with the raw bytes (chunked)
and ``streamFromClient`` takes the file as an ``application/octet-stream`` body, with
``method`` and ``args`` in the query string; the body is spooled to a temporary file as it
arrives, never held whole in memory.

``GET /pilot/<file>`` serves the files of ``/DIRAC/Server/PilotFilesDirectory`` (the client
wheel pilots install, see ``dirac-server publish-client``) to any registered identity.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import tornado.web
from tornado.httputil import parse_body_arguments

from dirac.Core.Tornado.RequestHandler import RequestHandler
from dirac.Core.Utilities import JEncode
from dirac.Core.Utilities.Exceptions import (
    AuthenticationError,
    AuthorizationError,
    DiracError,
    UnknownMethod,
)
from dirac.Core.Utilities.Logging import getLogger
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, isReturnStructure

log = getLogger("Tornado")

CHUNK_SIZE = 1 << 20
MAX_FORM_BODY = 64 << 20  # an RPC call; files go through streamFromClient


class BadRequest(DiracError):
    """The HTTP request is not a well-formed RPC call."""


def _statusFor(exc: DiracError) -> int:
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, AuthorizationError):
        return 403
    if isinstance(exc, UnknownMethod):
        return 501
    if isinstance(exc, BadRequest):
        return 400
    return 200


def _delegated(credDict: dict, encoded: str) -> dict:
    """The credentials of the user a trusted host acts for (the ``extraCredentials`` field)."""
    from dirac.Core.Security.Credentials import delegatedCredentials

    try:
        extra = JEncode.decode(encoded)[0]
    except ValueError as exc:
        raise BadRequest(f"'extraCredentials' is not valid JEncoded JSON: {exc}") from None
    return delegatedCredentials(credDict, extra)


@tornado.web.stream_request_body
class RPCEndpoint(tornado.web.RequestHandler):
    """Tornado handler serving one service class; the server passes it as ``serviceClass``."""

    serviceClass: type[RequestHandler]
    server: Any  # the TornadoServer: credentials and thread pool

    def initialize(self, serviceClass: type[RequestHandler], server: Any) -> None:
        self.serviceClass = serviceClass
        self.server = server
        self._chunks: list[bytes] = []
        self._received = 0
        self._upload: Any = None
        self._tooLarge = False

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Server", "dirac-seed")

    # -- body --------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.request.connection.set_max_body_size(self.server.maxUploadSize)  # type: ignore[union-attr]
        if self.request.headers.get("Content-Type", "").startswith("application/octet-stream"):
            self._upload = tempfile.NamedTemporaryFile(prefix="dirac-upload-", dir=self.server.spoolDir,
                                                       delete=False)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._upload is not None:
            self._upload.write(chunk)
        elif self._received > MAX_FORM_BODY:
            self._tooLarge = True
        else:
            self._chunks.append(chunk)

    def on_finish(self) -> None:
        self._cleanupUpload()

    def on_connection_close(self) -> None:
        self._cleanupUpload()

    def _cleanupUpload(self) -> None:
        if self._upload is not None:
            self._upload.close()
            try:
                os.unlink(self._upload.name)
            except FileNotFoundError:
                pass
            self._upload = None

    def _parseCall(self) -> tuple[str, list, dict[str, str]]:
        """(method, args, other fields) from the form body or, for uploads, the query string."""
        if self._tooLarge:
            raise BadRequest(f"request body over {MAX_FORM_BODY} bytes; send files with streamFromClient")
        fields: dict[str, list[bytes]] = {}
        if self._upload is None:
            parse_body_arguments(self.request.headers.get("Content-Type", "application/x-www-form-urlencoded"),
                                 b"".join(self._chunks), fields, {}, self.request.headers)
        for name, values in self.request.query_arguments.items():
            fields.setdefault(name, values)
        values = {name: v[-1].decode("utf-8", "replace") for name, v in fields.items() if v}
        method = values.pop("method", "")
        if not method:
            raise BadRequest("no 'method' in the request")
        try:
            args = JEncode.decode(values.pop("args", "[]"))[0]
        except ValueError as exc:
            raise BadRequest(f"'args' is not valid JEncoded JSON: {exc}") from None
        if not isinstance(args, list):
            raise BadRequest("'args' must be a JSON list")
        return method, args, values

    # -- the call ----------------------------------------------------------------------------
    async def post(self) -> None:
        started = time.monotonic()
        method, credDict = "?", {}
        try:
            credDict = await self.server.authenticateCall(self.request)
            method, args, fields = self._parseCall()
            if fields.get("extraCredentials"):
                credDict = _delegated(credDict, fields["extraCredentials"])
            exported = self.serviceClass.exportedMethods.get(method)
            if exported is None:
                raise UnknownMethod(f"{self.serviceClass.serviceInfo.name} has no method {method!r}")
            exported.checkAuthorization(credDict, self.serviceClass.serviceInfo.section)
            if method == "streamFromClient":
                if self._upload is None:
                    raise BadRequest("streamFromClient needs an application/octet-stream body")
                self._upload.flush()
                args = [self._upload.name, *args]
            exported.checkArguments(args)
            handler = self.serviceClass(credDict, fields.get("clientVO"))
            bound = getattr(handler, f"export_{method}")
            if exported.isAsync:
                result = await bound(*args)
            else:
                result = await asyncio.get_running_loop().run_in_executor(self.server.executor, bound, *args)
            if method == "streamToClient" and not (isReturnStructure(result) and not result["OK"]):
                await self._stream(result)
                self._logCall(method, credDict, started, "OK")
                return
            result = result if isReturnStructure(result) else S_OK(result)
            self._send(200, result)
        except DiracError as exc:
            self._send(_statusFor(exc), exc.toSError())
            if self._status_code in (401, 403):  # say why a caller was refused (messages carry no secret)
                self._logCall(method, credDict, started, f"{self._status_code} {exc.message}")
                return
        except Exception:
            log.exception("Unexpected error in %s.%s", self.serviceClass.serviceInfo.name, method)
            self._send(500, S_ERROR(f"internal error in {method}; the server log has the details"))
        self._logCall(method, credDict, started, "OK" if self._status_code == 200 else str(self._status_code))

    def _send(self, status: int, result: dict) -> None:
        result = dict(result)
        result.pop("CallStack", None)  # never show the server's stack to a client
        self.set_status(status)
        self.finish(JEncode.encodeCompact(result))

    async def _stream(self, source: Any) -> None:
        """Send bytes, a path or an open binary file to the client in chunks."""
        if isReturnStructure(source):
            source = source["Value"]
        self.set_header("Content-Type", "application/octet-stream")
        if isinstance(source, (bytes, bytearray)):
            self.write(bytes(source))
            await self.finish()
            return
        fileObj = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source
        await _sendChunks(self, fileObj, self.server.executor)

    def _logCall(self, method: str, credDict: dict, started: float, outcome: str) -> None:
        who = credDict.get("username") or credDict.get("hostname") or "anonymous"
        log.info("%s.%s by %s@%s from %s: %s in %.1f ms", self.serviceClass.serviceInfo.name, method, who,
                 credDict.get("group"), self.request.remote_ip, outcome, (time.monotonic() - started) * 1000)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised by Tornado itself (bad framing, body too large) in the same format."""
        self._send(status_code, S_ERROR(self._reason))


class PilotFileEndpoint(tornado.web.RequestHandler):
    """``GET /pilot/<name>``: a file of the pilot files directory, to registered users and hosts only."""

    NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

    def initialize(self, directory: str, server: Any) -> None:
        self.directory = Path(directory) if directory else None
        self.server = server

    async def get(self, name: str) -> None:
        try:
            credDict = await self.server.authenticateCall(self.request)
        except DiracError as exc:
            self.set_status(_statusFor(exc))
            self.finish(exc.message)
            return
        path = self.directory / name if self.directory and self.NAME.fullmatch(name) else None
        if path is None or not path.is_file():
            self.set_status(404)
            self.finish(f"no pilot file {name!r}")
            return
        log.info("pilot file %s sent to %s", name, credDict.get("username") or credDict.get("hostname"))
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(path.stat().st_size))
        await _sendChunks(self, open(path, "rb"), self.server.executor)


async def _sendChunks(handler: tornado.web.RequestHandler, fileObj: Any, executor: Any) -> None:
    """Write a binary file to the client chunk by chunk (reads in the thread pool), close it, finish."""
    try:
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(executor, fileObj.read, CHUNK_SIZE):
            handler.write(chunk)
            await handler.flush()
    finally:
        fileObj.close()
    await handler.finish()
