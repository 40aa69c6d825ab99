"""TokenManager: keeps users' refresh tokens (encrypted) and hands fresh access tokens to trusted components.

A user stores a refresh token (``storeToken``); the server refreshes it once to prove it is the
caller's (the new access token's subject must be the caller's Registry ``ID``). Components with
``TrustedHost`` or ``ProxyManagement`` then get access tokens for that user (``getToken``),
for a group the identity provider grants; ``deleteToken`` revokes the refresh token at the
provider and forgets it.

Options (``/Systems/Framework/Services/TokenManager``): ``EncryptionKeyFile``, a file holding a
Fernet key (``python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'``),
mode 0600, on the server only.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from dirac.Core.Config import Registry
from dirac.Core.Security import Properties
from dirac.Core.Security.Credentials import validateToken
from dirac.Core.Security.IdProviders import getIdProvider
from dirac.Core.Security.Keys import readEncryptionKeyFile
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Security.Tokens import expiresAt
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import AuthorizationError, DiracError
from dirac.FrameworkSystem.DB.TokenDB import TokenDB


class TokenManagerHandler(RequestHandler):
    """Refresh tokens of users, access tokens for components acting for them."""

    _db: ClassVar[TokenDB | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls._db = None  # opened at first use: the key file may be configured after the start

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
            idp = getIdProvider(provider)
            fresh = OAuth2Client(idp).refresh(refreshToken)
            if fresh.get("refresh_token") and fresh["refresh_token"] != refreshToken:
                replace(fresh["refresh_token"])
        claims = validateToken(fresh["access_token"])
        if group not in idp.groupsFromClaims(claims):
            raise AuthorizationError(f"identity provider {provider} does not grant group {group} to user {username}")
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
