"""TokenManager: keeps users' refresh tokens (encrypted) and hands fresh access tokens to trusted components.

A user stores a refresh token (``storeToken``); the server refreshes it once to prove it is the
caller's (the new access token's subject must be the caller's Registry ``ID``). Components with
``TrustedHost`` or ``ProxyManagement`` then get access tokens for that user (``getToken``),
for a group the identity provider grants; ``deleteToken`` revokes the refresh token at the
provider and forgets it.

Pilots get tokens too (``getPilotToken``): the TokenManager holds the secret of the pilots' OAuth2
client and obtains access tokens with the client_credentials grant, for a pilot group the identity
provider grants to that client. The SiteDirector (``TrustedHost``) gets one for the pilots it
submits; a running pilot (``GenericPilot``) renews its own before it expires. One token per group
is cached and handed out until half of its lifetime is gone, so thousands of pilots renewing do
not each reach the provider.

Options (``/Systems/Framework/Services/TokenManager``): ``EncryptionKeyFile``, a file holding a
Fernet key (``python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'``),
mode 0600, on the server only; ``PilotTokens/IdProvider``, ``PilotTokens/client_id``, its secret in
``PilotTokens/client_secret_file`` (a 0600 file on the server) or ``PilotTokens/client_secret``
(only in the server's local dirac.cfg: never in the CS every client reads), and
``PilotTokens/scope`` (default ``wlcg.groups``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from dirac.Core.Config import Registry
from dirac.Core.Security import Properties
from dirac.Core.Security.Credentials import validateToken
from dirac.Core.Security.IdProviders import getIdProvider
from dirac.Core.Security.Keys import readEncryptionKeyFile
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Security.Tokens import expiresAt, inFirstHalfOfLife
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import AuthorizationError, ConfigurationError, DiracError
from dirac.FrameworkSystem.DB.TokenDB import TokenDB
from dirac.FrameworkSystem.Logic.UserTokens import refreshGranting


class TokenManagerHandler(RequestHandler):
    """Refresh tokens of users, access tokens for components acting for them."""

    _db: ClassVar[TokenDB | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _pilotTokens: ClassVar[dict[str, dict[str, Any]]] = {}  # group -> token (with issued_at), reused until half-life

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls._db = None  # opened at first use: the key file may be configured after the start
        cls._pilotTokens = {}

    @classmethod
    def tokenDB(cls) -> TokenDB:
        with cls._lock:
            if cls._db is None:
                key = readEncryptionKeyFile(cls.getCSOption("EncryptionKeyFile", ""),
                                            f"{cls.serviceInfo.section}/EncryptionKeyFile")
                cls._db = TokenDB(encryptionKey=key)
            return cls._db

    def _caller(self) -> str:
        return f"{self.credDict.get('username') or self.credDict.get('hostname')}@{self.credDict.get('group')}"

    auth_storeToken = [AUTHENTICATED]

    def export_storeToken(self, refreshToken: str, provider: str) -> dict[str, Any]:
        """Keep the caller's refresh token issued by ``provider`` (checked by one refresh)."""
        idp = getIdProvider(provider)
        fresh = OAuth2Client(idp).refresh(refreshToken)
        claims = validateToken(fresh["access_token"])
        username = Registry.getUsernameForID(str(claims["sub"]))
        if not username or username != self.credDict.get("username"):
            raise AuthorizationError(f"the refresh token is not {self.credDict.get('username')}'s")
        self.tokenDB().storeRefreshToken(username, provider, str(claims["sub"]), fresh.get("refresh_token") or refreshToken,
                                         fresh.get("scope", ""))
        self.log.info("refresh token of %s at %s stored", username, provider)
        return {"username": username, "provider": provider, "groups": idp.groupsFromClaims(claims)}

    auth_getToken = [Properties.TrustedHost, Properties.ProxyManagement]

    def export_getToken(self, username: str, group: str) -> dict[str, Any]:
        """A fresh access token of ``username`` for a component acting for them in ``group``."""
        with self.tokenDB().lockedRefreshToken(username) as (provider, refreshToken, replace):
            fresh, _ = refreshGranting(OAuth2Client(getIdProvider(provider)), refreshToken, replace, username, group)
        self.log.info("access token of %s@%s handed to %s", username, group, self._caller())
        return {"access_token": fresh["access_token"], "expires_at": expiresAt(fresh), "provider": provider,
                "scope": fresh.get("scope", ""), "group": group}

    auth_deleteToken = [AUTHENTICATED]

    def export_deleteToken(self, username: str) -> dict[str, Any]:
        """Revoke and forget ``username``'s refresh tokens (their own, or anyone's with ProxyManagement)."""
        if username != self.credDict.get("username") and \
                Properties.ProxyManagement not in self.credDict.get("properties", []):
            raise AuthorizationError(f"{self._caller()} may not delete the tokens of {username}")
        revoked, failures = [], []
        for provider, refreshToken in self.tokenDB().removeTokens(username):
            try:
                OAuth2Client(getIdProvider(provider)).revoke(refreshToken)
                revoked.append(provider)
            except DiracError as exc:
                self.log.warning("revocation of %s's refresh token at %s failed: %s", username, provider, exc)
                failures.append(f"{provider}: {exc}")
        self.log.info("tokens of %s deleted by %s (revoked at %s)", username, self._caller(), ", ".join(revoked) or "-")
        return {"revoked": revoked, "failed": failures}

    auth_getUserTokensInfo = [AUTHENTICATED]

    def export_getUserTokensInfo(self) -> list[dict[str, Any]]:
        """What is stored for the caller (never the tokens)."""
        return self.tokenDB().getTokensInfo([self.credDict.get("username") or ""])

    auth_getUsersTokensInfo = [Properties.ProxyManagement]

    def export_getUsersTokensInfo(self, users: list[str]) -> list[dict[str, Any]]:
        """What is stored for ``users`` (never the tokens)."""
        return self.tokenDB().getTokensInfo(users)

    # -- pilots ----------------------------------------------------------------------------------------
    auth_getPilotToken = [Properties.TrustedHost, Properties.GenericPilot]

    def export_getPilotToken(self, group: str = "") -> dict[str, Any]:
        """An access token of the pilots' client for pilots of ``group`` (a pilot: only its own, the default)."""
        group = group or self.credDict.get("group", "")
        properties = self.credDict.get("properties", [])
        if Properties.TrustedHost not in properties and group != self.credDict.get("group"):
            raise AuthorizationError(f"{self._caller()} may only renew the token of its own group")
        if Properties.GenericPilot not in Registry.getPropertiesForGroup(group):
            raise AuthorizationError(f"{group} is not a pilot group (it has no {Properties.GenericPilot})")
        token = self._pilotToken(group)
        self.log.info("pilot token for %s handed to %s (%d s left)", group, self._caller(),
                      token["expires_at"] - time.time())
        return {key: token[key] for key in ("access_token", "expires_at", "provider", "scope", "group")}

    @classmethod
    def _pilotToken(cls, group: str) -> dict[str, Any]:
        """The cached token of ``group`` while more than half its lifetime is left, else a new one."""
        with cls._lock:
            cached = cls._pilotTokens.get(group)
            now = time.time()
            if cached and inFirstHalfOfLife(cached["issued_at"], cached["expires_at"]):
                return cached
            section = "PilotTokens/"
            provider = cls.getCSOption(f"{section}IdProvider", "")
            if not provider:
                raise ConfigurationError(f"no pilot tokens: set {cls.serviceInfo.section}/PilotTokens/IdProvider")
            idp = getIdProvider(provider)
            client = OAuth2Client(idp, cls.getCSOption(f"{section}client_id", ""), cls._pilotClientSecret())
            fresh = client.clientCredentials(cls.getCSOption(f"{section}scope", "wlcg.groups"))
            claims = validateToken(fresh["access_token"])
            if group not in idp.groupsFromClaims(claims):
                raise AuthorizationError(f"identity provider {provider} does not grant group {group} to the "
                                         f"pilots' client {client.clientID}")
            expiry = expiresAt(fresh) or float(claims.get("exp") or now)
            cls._pilotTokens[group] = {**fresh, "expires_at": expiry, "issued_at": now, "group": group,
                                       "scope": fresh.get("scope", "")}
            return cls._pilotTokens[group]

    @classmethod
    def _pilotClientSecret(cls) -> str:
        """The pilots' client secret: from ``client_secret_file`` (preferred) or ``client_secret``."""
        secretFile = cls.getCSOption("PilotTokens/client_secret_file", "")
        if secretFile:
            try:
                return Path(secretFile).read_text().strip()
            except OSError as exc:
                raise ConfigurationError(f"cannot read the pilots' client secret {secretFile}: {exc.strerror}") \
                    from exc
        secret = cls.getCSOption("PilotTokens/client_secret", "")
        if not secret:
            raise ConfigurationError(f"set {cls.serviceInfo.section}/PilotTokens/client_secret_file")
        return secret
