"""The RPC client: ``RPCClient("WorkloadManagement/JobManager").submitJob(jdl)`` -> S_OK/S_ERROR.

Speaks DIRAC's HTTPS RPC (see ``Endpoint``). Connections are reused (one ``requests``
session per thread and credential), a service listing several URLs is tried URL by URL in
random order when one cannot be reached, and every failure comes back as S_ERROR with a
message that says what went wrong.

Credentials, in order: an explicit bearer token (``token=`` or ``$DIRAC_TOKEN``), the host
certificate when ``useCertificates`` (or ``/DIRAC/Security/UseServerCertificate``) is set,
the user's access token when ``useAccessToken`` (or ``$DIRAC_USE_ACCESS_TOKEN``, or
``/DIRAC/Security/UseTokens``) is set (``$BEARER_TOKEN`` or the token file of ``dirac-login``,
refreshed when expired), else the user's proxy (``$X509_USER_PROXY`` or ``/tmp/x509up_u<uid>``).

A trusted host acting for a user (the web portal for a user who signed in with a certificate) calls
with its host certificate and ``extraCredentials=(DN, group)``: DIRAC's ``extraCredentials`` field,
which the server honours only from hosts with the ``TrustedHost`` property.
"""

from __future__ import annotations

import datetime
import errno
import os
import random
import ssl
import threading
from pathlib import Path
from typing import Any

import requests
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Config import gConfig
from dirac.Core.Config.PathFinder import getServiceURLs
from dirac.Core.Security import Locations
from dirac.Core.Utilities import JEncode
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType

DEFAULT_TIMEOUT = 600
#: the Errno of a call no URL of the service answered (nothing reached the server)
UNREACHABLE = DErrno.EDISET
_sessions = threading.local()


def _forgetSessions() -> None:
    """In a forked child: never use the parent's connections (their TLS state belongs to the parent)."""
    global _sessions
    _sessions = threading.local()


os.register_at_fork(after_in_child=_forgetSessions)


def useAccessTokens() -> bool:
    """Whether clients call with the user's access token by default (``$DIRAC_USE_ACCESS_TOKEN``, else
    ``/DIRAC/Security/UseTokens``) rather than with a proxy."""
    fromEnv = os.environ.get("DIRAC_USE_ACCESS_TOKEN")
    if fromEnv is not None:
        return fromEnv.lower() in ("y", "yes", "true")
    return bool(gConfig.getValue("/DIRAC/Security/UseTokens", False))


def httpSession(key: tuple) -> requests.Session:
    """One keep-alive requests session per thread and ``key`` (e.g. the credential set), ignoring the environment."""
    cache = getattr(_sessions, "cache", None)
    if cache is None:
        cache = _sessions.cache = {}
    if key not in cache:
        session = cache[key] = requests.Session()
        # no proxies, .netrc or CA bundle from the environment: each would be looked up at every
        # call, and REQUESTS_CA_BUNDLE would even win over the CA location given
        session.trust_env = False
    return cache[key]


_expiries: dict[tuple[str, int, int], datetime.datetime | None] = {}


def _proxyExpiry(path: str) -> datetime.datetime | None:
    """When the proxy at ``path`` expires (None when it cannot be read); read again only when the file changes."""
    from dirac.Core.Security.X509 import X509Chain

    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _expiries:
        try:
            _expiries[key] = X509Chain.fromFile(path).notAfter
        except Exception:  # an unreadable proxy is reported by the TLS layer with its own message
            _expiries[key] = None
    return _expiries[key]


def clientCredentials(token: str | None = None, useCertificates: bool | None = None,
                      useAccessToken: bool | None = None, proxyLocation: str | None = None) -> tuple[dict[str, str], Any]:
    """(extra headers, requests' cert argument) of an HTTPS client, in the order of the module docstring: a bearer
    token, the host certificate, the user's access token, else the user's proxy (checked to exist and be valid)."""
    token = token if token is not None else os.environ.get("DIRAC_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}, None
    if useCertificates if useCertificates is not None else gConfig.getValue("/DIRAC/Security/UseServerCertificate",
                                                                           False):
        location = Locations.getHostCertificateAndKeyLocation()
        if not location:
            raise DiracError("no host certificate found (/DIRAC/Security/CertFile)", DErrno.ECERTFIND)
        return {}, tuple(location)
    if useAccessToken if useAccessToken is not None else useAccessTokens():
        from dirac.Core.Security.Tokens import currentAccessToken

        return {"Authorization": f"Bearer {currentAccessToken()}"}, None
    proxy = proxyLocation or Locations.getProxyLocation()
    if not proxy or not os.path.exists(proxy):
        raise DiracError(f"no proxy found at {proxy}: run dirac-proxy-init", DErrno.EPROXYFIND)
    expiry = _proxyExpiry(proxy)
    if expiry is not None and expiry <= datetime.datetime.now(datetime.UTC):
        raise DiracError(f"your proxy {proxy} expired at {expiry:%Y-%m-%d %H:%M:%S} UTC: "
                         "run dirac-proxy-init", errno.EKEYEXPIRED)
    return {}, proxy


class RPCClient:
    """Calls the exported methods of one service."""

    def __init__(self, service: str, timeout: float | None = None, useCertificates: bool | None = None,
                 proxyLocation: str | None = None, token: str | None = None, skipCACheck: bool = False,
                 clientVO: str | None = None, useAccessToken: bool | None = None,
                 extraCredentials: tuple[str, str] | None = None):
        self.service = service
        self.timeout = timeout or gConfig.getValue("/DIRAC/Client/Timeout", DEFAULT_TIMEOUT)
        self.useCertificates = (useCertificates if useCertificates is not None
                                else gConfig.getValue("/DIRAC/Security/UseServerCertificate", False))
        self.proxyLocation = proxyLocation
        self.token = token if token is not None else os.environ.get("DIRAC_TOKEN")
        self.skipCACheck = skipCACheck
        self.clientVO = clientVO
        self.useAccessToken = useAccessTokens() if useAccessToken is None else bool(useAccessToken)
        self.extraCredentials = extraCredentials

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any) -> DReturnType[Any]:
            return self.executeRPC(method, *args)

        call.__name__ = method
        return call

    # -- calls -------------------------------------------------------------------------------------
    def executeRPC(self, method: str, *args: Any) -> DReturnType[Any]:
        """Call ``method(*args)`` on the service."""
        result = self._request({"method": method, "args": JEncode.encode(list(args))})
        result["rpcStub"] = ((self.service, {}), method, list(args))
        return result

    def receiveFile(self, destination: str | Path, *args: Any) -> DReturnType[None]:
        """Call ``streamToClient(*args)`` and write the bytes it sends to ``destination``."""
        return self._request({"method": "streamToClient", "args": JEncode.encode(list(args))},
                             outputFile=Path(destination))

    def sendFile(self, source: str | Path, *args: Any) -> DReturnType[Any]:
        """Stream the file at ``source`` to ``streamFromClient(path, *args)`` on the server."""
        return self._request({"method": "streamFromClient", "args": JEncode.encode(list(args))},
                             inputFile=Path(source))

    # -- transport ---------------------------------------------------------------------------------
    def _credentials(self) -> tuple[dict[str, str], Any]:
        """(extra headers, requests' cert argument)."""
        return clientCredentials(self.token, self.useCertificates, self.useAccessToken, self.proxyLocation)

    def _request(self, fields: dict[str, str], outputFile: Path | None = None,
                 inputFile: Path | None = None) -> DReturnType[Any]:
        try:
            urls = getServiceURLs(self.service)
            headers, cert = self._credentials()
        except DiracError as exc:
            return exc.toSError()
        if self.clientVO:
            fields["clientVO"] = self.clientVO
        if self.extraCredentials:
            fields["extraCredentials"] = JEncode.encode(list(self.extraCredentials))
        verify: bool | str = False if self.skipCACheck else Locations.getCAsLocation()
        session = httpSession((cert, verify, "Authorization" in headers))  # the token travels per request
        errors = []
        for url in random.sample(urls, len(urls)):
            try:
                if inputFile is not None:
                    with open(inputFile, "rb") as body:
                        response = session.post(url, params=fields, data=body, timeout=self.timeout, verify=verify,
                                                cert=cert, headers={**headers,
                                                                    "Content-Type": "application/octet-stream"})
                else:
                    response = session.post(url, data=fields, timeout=self.timeout, verify=verify, cert=cert,
                                            headers=headers, stream=outputFile is not None)
            except requests.exceptions.SSLError as exc:
                return S_ERROR(DErrno.EX509, f"TLS with {url} failed (certificate refused or untrusted): "
                                             f"{rootCause(exc)}")
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                errors.append(f"{url}: {rootCause(exc)}")
                continue
            except OSError as exc:
                what = f"cannot read {inputFile}" if inputFile is not None else f"cannot call {url}"
                return S_ERROR(errno.EIO, f"{what}: {exc}")
            if response.status_code in (502, 503, 504):  # a gateway or an overloaded instance: try another
                errors.append(f"{url}: HTTP {response.status_code} {_message(response)}")
                continue
            if outputFile is not None and response.status_code == 200 and \
                    response.headers.get("Content-Type", "").startswith("application/octet-stream"):
                return _saveStream(response, outputFile)
            return _decodeResponse(url, response)
        return S_ERROR(UNREACHABLE, f"cannot reach {self.service}: " + "; ".join(errors))


def isUnreachable(result: dict) -> bool:
    """Whether a call failed because no server answered (so the call may be tried again later)."""
    return not result["OK"] and result.get("Errno") == UNREACHABLE


#: errors after which the same call may succeed later: the server could not be reached or was busy
TRANSIENT_ERRNOS = frozenset({UNREACHABLE, DErrno.EDB, errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT,
                              errno.EPROTO})


def isTransient(result: dict) -> bool:
    """Whether a failed call is worth repeating later (the server was not reached, or was busy)."""
    return not result["OK"] and result.get("Errno") in TRANSIENT_ERRNOS


def rootCause(exc: BaseException) -> str:
    """The message of the innermost cause of a requests error (the TLS reason when there is one)."""
    while exc.__context__ is not None and not isinstance(exc, ssl.SSLError):
        exc = exc.__context__
    return str(exc.args[-1] if isinstance(exc, ssl.SSLError) and exc.args else exc)


def _message(response: requests.Response) -> str:
    try:
        return JEncode.decode(response.text)[0].get("Message", "")
    except (ValueError, AttributeError):
        return response.text[:200]


def _decodeResponse(url: str, response: requests.Response) -> DReturnType[Any]:
    try:
        result = JEncode.decode(response.text)[0]
    except ValueError:
        return S_ERROR(errno.EPROTO, f"{url} answered HTTP {response.status_code} with a body that is not "
                                     f"JEncoded: {response.text[:200]!r}")
    if not isinstance(result, dict) or "OK" not in result:
        return S_ERROR(errno.EPROTO, f"{url} answered something that is not S_OK/S_ERROR")
    return result


def _saveStream(response: requests.Response, destination: Path) -> DReturnType[None]:
    tmp = destination.with_name(destination.name + ".part")
    try:
        with open(tmp, "wb") as out:
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)
        tmp.replace(destination)
    except (OSError, requests.exceptions.RequestException) as exc:
        tmp.unlink(missing_ok=True)
        return S_ERROR(errno.EIO, f"cannot receive {destination}: {exc}")
    return S_OK()
