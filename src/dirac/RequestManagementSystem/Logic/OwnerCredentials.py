"""Acting as a request's owner: a limited proxy from the ProxyManager, else an access token from the TokenManager.

The agent calls with the host certificate (``TrustedHost`` + ``FullDelegation``/``ProxyManagement``):

1. ``ProxyManager.getProxy`` for the owner's DN in the request's group, limited (as pilots run jobs), kept
   in a 0600 file of a private directory and used again while it has more than half its lifetime left;
2. when the owner uploaded no proxy, ``TokenManager.getToken(owner, group)``: an access token (kept until
   a minute before it expires), for owners who signed in with ``dirac-login`` only.

``clientOptions(owner, group)`` gives the options the DataManager and the RPC clients take
(``proxyLocation`` or ``token``, never the host certificate). It raises ``NoOwnerCredentials`` when
neither service has anything for the owner, ``CredentialsUnavailable`` when they could not be asked.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from dirac.Core.Config import Registry
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Tornado.Client import RPCClient, isTransient
from dirac.Core.Utilities.Exceptions import DiracError, NotFound
from dirac.Core.Utilities.Logging import getLogger

log = getLogger("RequestManagement/OwnerCredentials")
#: seconds an owner's proxy is asked for
PROXY_LIFETIME = 6 * 3600
TOKEN_MARGIN = 60


class NoOwnerCredentials(NotFound):
    """Neither the ProxyManager nor the TokenManager holds anything for the owner: the request cannot run."""


class CredentialsUnavailable(DiracError):
    """The ProxyManager or TokenManager could not be reached: try again later."""


class OwnerCredentials:
    """Credentials of request owners, fetched on demand and cached (one instance per agent)."""

    def __init__(self, proxyManager: Any = None, tokenManager: Any = None, lifetime: int = PROXY_LIFETIME):
        if proxyManager is None:
            from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient

            proxyManager = ProxyManagerClient()
        self.proxyManager = proxyManager
        self.tokenManager = tokenManager if tokenManager is not None else RPCClient("Framework/TokenManager")
        self.lifetime = lifetime
        self.directory = Path(tempfile.mkdtemp(prefix="dirac-rms-owners-"))
        #: (owner, group) -> (client options, time.time() after which they are fetched again)
        self._cache: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}

    def clientOptions(self, owner: str, group: str) -> dict[str, Any]:
        """RPC/DataManager options acting as ``owner`` in ``group``."""
        key = (owner, group)
        cached = self._cache.get(key)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        proxy = self._proxy(owner, group)
        options, renewAt = proxy if not isinstance(proxy, str) else self._token(owner, group, proxy)
        self._cache[key] = (options, renewAt)
        return options

    def _proxy(self, owner: str, group: str) -> tuple[dict[str, Any], float] | str:
        """(options with a limited proxy of the owner, renewal time), or why the ProxyManager has none."""
        dns = Registry.getDNsForUsername(owner)
        if not dns:
            return f"{owner} has no DN in the Registry"
        result = self.proxyManager.downloadProxy(dns[0], group, limited=True, requiredTimeLeft=self.lifetime)
        if not result["OK"]:
            if isTransient(result):
                raise CredentialsUnavailable(f"cannot reach the ProxyManager for {owner}@{group}: {result['Message']}")
            return str(result["Message"])
        chain = result["Value"]
        path = self.directory / f"{owner}@{group}.pem"
        writePrivateFile(path, chain.toPEM())
        log.info("limited proxy of %s@%s obtained (%d s left)", owner, group, chain.remainingSeconds)
        return {"proxyLocation": str(path), "useCertificates": False}, time.time() + chain.remainingSeconds / 2

    def _token(self, owner: str, group: str, noProxy: str) -> tuple[dict[str, Any], float]:
        result = self.tokenManager.getToken(owner, group)
        if not result["OK"]:
            if isTransient(result):
                raise CredentialsUnavailable(f"cannot reach the TokenManager for {owner}@{group}: {result['Message']}")
            raise NoOwnerCredentials(f"no credential of {owner}@{group}: proxy: {noProxy}; token: "
                                     f"{result['Message']}")
        token = result["Value"]
        log.info("access token of %s@%s obtained", owner, group)
        expires = float(token.get("expires_at") or time.time() + 2 * TOKEN_MARGIN)
        return {"token": token["access_token"], "useCertificates": False}, expires - TOKEN_MARGIN

    def close(self) -> None:
        """Forget the credentials and remove their files."""
        self._cache.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
