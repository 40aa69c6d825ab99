"""ProxyManager: users delegate long proxies; authorized components get short proxies of them in a chosen group.

Upload (delegation, as DIRAC): ``requestDelegationUpload`` makes a key pair and a certificate
request on the server (the private key never leaves it); the client signs a proxy for that
request with its certificate and sends the certificates back (``completeDelegationUpload``).

Download: the caller sends a request of its own (``getProxy(userDN, userGroup, requestPem,
lifetime)``); the server signs a proxy of the stored one for it, carrying ``userGroup``. Who may,
DIRAC's rules: ``FullDelegation`` (full or limited, as asked), ``LimitedDelegation`` (limited
only), ``PrivateLimitedDelegation`` (limited, own proxy only, in a group having that property).
The group must be one of the user's and downloadable (``/Registry/Groups/<g>/DownloadableProxy``,
default yes); a caller with ``GenericPilot`` and no ``FullDelegation`` only gets proxies for groups
of its own VO (the VO it may match jobs of).

Options (``/Systems/Framework/Services/ProxyManager``): ``EncryptionKeyFile`` (a Fernet key, mode
0600, on the server only), ``MaxLifetimeFactor`` (1.5: a proxy handed out lives up to this times
the requested lifetime, within the stored proxy's).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from dirac.Core.Config import Registry
from dirac.Core.Security import Locations, Properties
from dirac.Core.Security.Keys import readEncryptionKeyFile
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument, SecurityError
from dirac.FrameworkSystem.DB.ProxyDB import ProxyDB

DELEGATORS = [Properties.FullDelegation, Properties.LimitedDelegation, Properties.PrivateLimitedDelegation]


class ProxyManagerHandler(RequestHandler):
    """Delegated proxies of users, short proxies for components acting for them."""

    _db: ClassVar[ProxyDB | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls._db = None  # opened at first use: the key file may be configured after the start

    @classmethod
    def proxyDB(cls) -> ProxyDB:
        with cls._lock:
            if cls._db is None:
                key = readEncryptionKeyFile(cls.getCSOption("EncryptionKeyFile", ""),
                                            f"{cls.serviceInfo.section}/EncryptionKeyFile")
                cls._db = ProxyDB(encryptionKey=key)
            return cls._db

    def _caller(self) -> str:
        return f"{self.credDict.get('username') or self.credDict.get('hostname')}@{self.credDict.get('group')}"

    def _callerDN(self) -> str:
        dn = self.credDict.get("DN")
        if not dn or not self.credDict.get("username"):
            raise AuthorizationError(f"{self._caller()}: only registered users with a certificate delegate proxies")
        return str(dn)

    # -- upload ----------------------------------------------------------------------------------
    auth_requestDelegationUpload = [AUTHENTICATED]

    def export_requestDelegationUpload(self, requestedUploadTime: int | None = None) -> dict[str, Any]:
        """A delegation request for the caller: {"id", "request"} (``requestedUploadTime`` is ignored, as in DIRAC 8)."""
        request = self.proxyDB().generateDelegationRequest(self._callerDN())
        self.log.info("delegation request %d for %s", request["id"], self._caller())
        return request

    auth_completeDelegationUpload = [AUTHENTICATED]

    def export_completeDelegationUpload(self, requestId: int, pemChain: str) -> dict[str, Any]:
        """Store the proxy signed for request ``requestId``; the caller's proxies {DN: expiry}."""
        userDN = self._callerDN()
        certificates = X509Chain.fromPEM(pemChain, source="the delegated proxy")
        certificates.verify(Locations.getCAsLocation())
        chain = self.proxyDB().completeDelegation(requestId, userDN, self.credDict["username"], pemChain)
        self.proxyDB().logAction("upload proxy", userDN, self.credDict.get("group") or "", userDN, "")
        self.log.info("proxy of %s uploaded (request %d), valid until %s", self._caller(), requestId,
                      chain.notAfter.strftime("%Y-%m-%d %H:%M"))
        return self.export_getUserProxiesInfo()

    # -- information -----------------------------------------------------------------------------
    auth_getUserProxiesInfo = [AUTHENTICATED]

    def export_getUserProxiesInfo(self) -> dict[str, Any]:
        """The caller's stored proxies: {DN: expiration time}."""
        username = self.credDict.get("username")
        if not username:
            return {}
        return {info["UserDN"]: info["ExpirationTime"] for info in self.proxyDB().getProxiesInfo([username])}

    auth_getRegisteredUsers = [AUTHENTICATED]

    def export_getRegisteredUsers(self, validSecondsRequired: int = 0) -> list[dict[str, Any]]:
        """Users with a stored proxy valid ``validSecondsRequired`` more seconds (only the caller without ProxyManagement)."""
        users = None if Properties.ProxyManagement in self.credDict.get("properties", []) else \
            [self.credDict.get("username") or ""]
        return self.proxyDB().getProxiesInfo(users, validSecondsRequired)

    auth_getExpiringProxies = [Properties.ProxyManagement]

    def export_getExpiringProxies(self, days: int | float) -> list[dict[str, Any]]:
        """Stored proxies that expire within ``days`` days (one log line each, for operators)."""
        expiring = self.proxyDB().getExpiringProxies(int(float(days) * 86400))
        for info in expiring:
            self.log.warning("proxy of %s (%s) expires on %s", info["UserName"], info["UserDN"],
                             info["ExpirationTime"].strftime("%Y-%m-%d %H:%M UTC"))
        return expiring

    auth_getStoredProxyStrength = DELEGATORS + [Properties.ProxyManagement]

    def export_getStoredProxyStrength(self, userDN: str, userGroup: str | None = None,
                                      vomsAttr: str | bool | None = None) -> int:
        """Bits of the stored proxy's key (clients make their request as strong)."""
        return self.proxyDB().getProxyStrength(userDN)

    # -- download --------------------------------------------------------------------------------
    def _forcedLimited(self, userDN: str, userGroup: str) -> bool:
        """Whether the caller may only get a limited proxy of ``userDN`` in ``userGroup``; refuses what it may not get."""
        properties = self.credDict.get("properties", [])
        username = Registry.getUsernameForDN(userDN)
        if username is None:
            raise InvalidArgument(f"{userDN} is not a registered user")
        if userGroup not in Registry.getGroupsForUser(username):
            raise AuthorizationError(f"user {username} is not a member of group {userGroup}")
        if not Registry.isDownloadableGroup(userGroup):
            raise AuthorizationError(f"proxies of group {userGroup} may not be downloaded")
        if Properties.FullDelegation in properties:
            return False
        if Properties.GenericPilot in properties and self.credDict.get("VO") and \
                Registry.getVOForGroup(userGroup) != self.credDict["VO"]:
            raise AuthorizationError(f"{self._caller()} may not get proxies for group {userGroup} of another VO")
        if Properties.LimitedDelegation in properties:
            return True
        if Properties.PrivateLimitedDelegation in properties:
            if userDN != self.credDict.get("DN"):
                raise AuthorizationError(f"{self._caller()} may only get its own proxies")
            if Properties.PrivateLimitedDelegation not in Registry.getPropertiesForGroup(userGroup):
                raise AuthorizationError(f"{self._caller()} may not get proxies for group {userGroup}")
            return True
        raise AuthorizationError(f"{self._caller()} may not get proxies")

    auth_getProxy = DELEGATORS

    def export_getProxy(self, userDN: str, userGroup: str, requestPem: str, requiredLifetime: int) -> str:
        """A proxy of ``userDN`` in ``userGroup`` for the caller's request (PEM certificates, no key)."""
        limited = self._forcedLimited(userDN, userGroup)
        if requiredLifetime <= 0:
            raise InvalidArgument(f"getProxy: requiredLifetime must be positive, not {requiredLifetime}")
        chain, secondsLeft = self.proxyDB().getProxy(userDN, requiredLifetime)
        lifetime = int(min(secondsLeft, requiredLifetime * float(self.getCSOption("MaxLifetimeFactor", 1.5))))
        try:
            delegated = chain.generateChainFromRequest(requestPem, lifetime, group=userGroup, limited=limited)
        except SecurityError as exc:
            raise InvalidArgument(str(exc)) from exc
        self.proxyDB().logAction("download proxy", self.credDict.get("DN") or "", self.credDict.get("group") or "",
                                 userDN, userGroup)
        self.log.info("%s proxy of %s@%s (%d s) handed to %s", "limited" if delegated.isLimitedProxy else "full",
                      Registry.getUsernameForDN(userDN), userGroup, lifetime, self._caller())
        return delegated.certificatesPEM().decode()

    auth_getVOMSProxy = DELEGATORS

    def export_getVOMSProxy(self, userDN: str, userGroup: str, requestPem: str, requiredLifetime: int,
                            vomsAttribute: str | bool | None = None) -> str:
        """As getProxy; VOMS extensions are not supported, so a VOMS attribute is refused."""
        if vomsAttribute:
            raise InvalidArgument(f"this server does not add VOMS extensions (asked: {vomsAttribute})")
        return self.export_getProxy(userDN, userGroup, requestPem, requiredLifetime)

    # -- deletion --------------------------------------------------------------------------------
    auth_deleteProxy = [AUTHENTICATED]

    def export_deleteProxy(self, userDN: str) -> bool:
        """Forget the proxy of ``userDN`` (the caller's own, or anyone's with ProxyManagement)."""
        if userDN != self.credDict.get("DN") and Properties.ProxyManagement not in self.credDict.get("properties", []):
            raise AuthorizationError(f"{self._caller()} may not delete the proxy of {userDN}")
        deleted = self.proxyDB().deleteProxy(userDN)
        self.proxyDB().logAction("delete proxy", self.credDict.get("DN") or "", self.credDict.get("group") or "",
                                 userDN, "")
        self.log.info("proxy of %s deleted by %s", userDN, self._caller())
        return deleted

    auth_deleteProxyBundle = [AUTHENTICATED]

    def export_deleteProxyBundle(self, idList: list) -> int:
        """Delete the proxies of several DNs (or [DN, group] pairs, as older clients send); how many were deleted."""
        dns = [item[0] if isinstance(item, (list, tuple)) else item for item in idList]
        if not all(isinstance(dn, str) for dn in dns):
            raise InvalidArgument("deleteProxyBundle: expected a list of DNs")
        return sum(1 for dn in dns if self.export_deleteProxy(dn))
