"""AuthDB: the state of the OAuth2 authorization server, so that a restart or another server loses nothing.

Tables (secrets are stored as SHA-256 hashes: the database alone gives no usable code or token):

* ``DeviceCodes``: device logins (RFC 8628): the device code's hash, the user code, the client, the
  scope; ``Pending`` until the user signs in, then ``Granted`` with the user (or ``Denied``), then
  ``Consumed`` once the client got its tokens;
* ``AuthSessions``: sign-ins in progress at an identity provider, by the ``state`` sent to it: the
  browser cookie's hash, the PKCE verifier, the request that started it and, once the provider
  answered, the user and the groups it grants;
* ``AuthorizationCodes``: codes of the authorization code flow (single use, PKCE challenge);
* ``RefreshTokens``: refresh tokens by hash, grouped by ``SessionID`` (one sign-in): a used or revoked
  token is marked ``Revoked``; presenting it again revokes its whole session;
* ``UpstreamTokens``: per sign-in session, the identity provider's refresh token (Fernet-encrypted with
  the server's key), with which every refresh checks that the provider still grants the group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, delete, insert, select, update

from dirac.Core.Base.DB import DB, UTCDateTime, utcnow
from dirac.Core.Security.Keys import SecretBox
from dirac.Core.Utilities.Exceptions import NotFound

PENDING, GRANTED, DENIED, CONSUMED = "Pending", "Granted", "Denied", "Consumed"


def secretHash(secret: str) -> str:
    """What is stored instead of a code or token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _userColumns() -> list[Column]:
    return [Column("Username", String(128), nullable=False, default=""),
            Column("UserID", String(255), nullable=False, default=""),
            Column("Provider", String(128), nullable=False, default=""),
            Column("UserGroup", String(128), nullable=False, default=""),
            Column("SessionID", String(64), nullable=False, default="", index=True)]


def _user(row: Any) -> dict[str, str]:
    return {"username": row.Username, "userID": row.UserID, "provider": row.Provider, "group": row.UserGroup,
            "sessionID": row.SessionID}


def _userValues(user: dict[str, str]) -> dict[str, str]:
    return {"Username": user["username"], "UserID": user["userID"], "Provider": user["provider"],
            "UserGroup": user.get("group", ""), "SessionID": user.get("sessionID", "")}


class AuthDB(DB):
    """Device codes, sign-in sessions, authorization codes and refresh tokens of the authorization server."""

    dbName = "Framework/AuthDB"
    metadata = MetaData()

    deviceCodes = Table(
        "DeviceCodes", metadata,
        Column("DeviceCodeHash", String(64), primary_key=True),
        Column("UserCode", String(32), nullable=False, unique=True),
        Column("ClientID", String(255), nullable=False),
        Column("Scope", Text, nullable=False),
        Column("Status", String(16), nullable=False, default=PENDING),
        Column("Reason", Text, nullable=False, default=""),
        *_userColumns(),
        Column("PollInterval", Integer, nullable=False, default=5),
        Column("LastPoll", UTCDateTime),
        Column("ExpiresAt", UTCDateTime, nullable=False, index=True),
    )
    sessions = Table(
        "AuthSessions", metadata,
        Column("State", String(64), primary_key=True),
        Column("CookieHash", String(64), nullable=False),
        Column("Provider", String(128), nullable=False),
        Column("CodeVerifier", String(128), nullable=False),
        Column("Request", Text, nullable=False),  # JSON: what started the sign-in
        Column("Authed", Text, nullable=False, default=""),  # JSON: the user once the provider answered
        Column("ExpiresAt", UTCDateTime, nullable=False, index=True),
    )
    codes = Table(
        "AuthorizationCodes", metadata,
        Column("CodeHash", String(64), primary_key=True),
        Column("ClientID", String(255), nullable=False),
        Column("RedirectURI", Text, nullable=False),
        Column("Scope", Text, nullable=False),
        *_userColumns(),
        Column("CodeChallenge", String(128), nullable=False, default=""),
        Column("CodeChallengeMethod", String(16), nullable=False, default=""),
        Column("Nonce", String(255), nullable=False, default=""),
        Column("AuthTime", Integer, nullable=False),
        Column("Used", Boolean, nullable=False, default=False),
        Column("ExpiresAt", UTCDateTime, nullable=False, index=True),
    )
    refreshTokens = Table(
        "RefreshTokens", metadata,
        Column("TokenHash", String(64), primary_key=True),
        Column("ClientID", String(255), nullable=False),
        Column("Scope", Text, nullable=False),
        *_userColumns(),
        Column("IssuedAt", UTCDateTime, nullable=False),
        Column("ExpiresAt", UTCDateTime, nullable=False, index=True),
        Column("Revoked", Boolean, nullable=False, default=False),
    )
    upstreamTokens = Table(
        "UpstreamTokens", metadata,
        Column("SessionID", String(64), primary_key=True),
        Column("Provider", String(128), nullable=False),
        Column("RefreshToken", Text, nullable=False),  # Fernet ciphertext
        Column("ExpiresAt", UTCDateTime, nullable=False, index=True),
    )

    def __init__(self, url: str | None = None, *, encryptionKey: bytes, createTables: bool = True):
        self._box = SecretBox(encryptionKey, "was the authorization server's signing key replaced?")
        super().__init__(url, createTables=createTables)

    # -- device codes ------------------------------------------------------------------------------
    def addDeviceCode(self, deviceCode: str, userCode: str, clientID: str, scope: str, lifetime: int,
                      interval: int) -> None:
        """A new pending device login."""
        with self.transaction("addDeviceCode") as conn:
            conn.execute(insert(self.deviceCodes).values(
                DeviceCodeHash=secretHash(deviceCode), UserCode=userCode, ClientID=clientID, Scope=scope or "",
                Status=PENDING, PollInterval=interval, ExpiresAt=utcnow() + timedelta(seconds=lifetime)))

    def _deviceCode(self, where: Any) -> dict[str, Any] | None:
        with self.connection("getDeviceCode") as conn:
            row = conn.execute(select(self.deviceCodes).where(where)).first()
        if row is None:
            return None
        return {"clientID": row.ClientID, "userCode": row.UserCode, "scope": row.Scope, "status": row.Status,
                "reason": row.Reason, "user": _user(row), "interval": row.PollInterval, "lastPoll": row.LastPoll,
                "expiresAt": row.ExpiresAt, "deviceCodeHash": row.DeviceCodeHash}

    def getDeviceCode(self, deviceCode: str) -> dict[str, Any] | None:
        """The device login of ``deviceCode`` (whatever its status), or None."""
        return self._deviceCode(self.deviceCodes.c.DeviceCodeHash == secretHash(deviceCode))

    def getPendingDeviceCode(self, userCode: str) -> dict[str, Any] | None:
        """The pending, unexpired device login of ``userCode``, or None."""
        found = self._deviceCode(self.deviceCodes.c.UserCode == userCode.strip().upper())
        if found is None or found["status"] != PENDING or found["expiresAt"] <= utcnow():
            return None
        return found

    def _setDeviceStatus(self, userCode: str, status: str, values: dict[str, Any]) -> bool:
        with self.transaction("setDeviceStatus") as conn:
            return conn.execute(update(self.deviceCodes).where(
                self.deviceCodes.c.UserCode == userCode, self.deviceCodes.c.Status == PENDING,
                self.deviceCodes.c.ExpiresAt > utcnow()).values(Status=status, **values)).rowcount == 1

    def grantDeviceCode(self, userCode: str, user: dict[str, str], scope: str) -> bool:
        """Pending -> Granted to ``user`` with the final ``scope``; False when no longer pending."""
        return self._setDeviceStatus(userCode, GRANTED, {**_userValues(user), "Scope": scope})

    def denyDeviceCode(self, userCode: str, reason: str) -> bool:
        """Pending -> Denied (the client gets access_denied); False when no longer pending."""
        return self._setDeviceStatus(userCode, DENIED, {"Reason": reason[:1000]})

    def consumeDeviceCode(self, deviceCode: str) -> bool:
        """Granted -> Consumed: True for exactly one caller (tokens are issued once per device login)."""
        with self.transaction("consumeDeviceCode") as conn:
            return conn.execute(update(self.deviceCodes).where(
                self.deviceCodes.c.DeviceCodeHash == secretHash(deviceCode),
                self.deviceCodes.c.Status == GRANTED).values(Status=CONSUMED)).rowcount == 1

    def recordPoll(self, deviceCode: str) -> Any:
        """Note a poll of the token endpoint; returns the time of the previous one (None for the first)."""
        now = utcnow()
        with self.transaction("recordPoll") as conn:
            table = self.deviceCodes
            previous = conn.execute(select(table.c.LastPoll).where(
                table.c.DeviceCodeHash == secretHash(deviceCode)).with_for_update()).scalar()
            conn.execute(update(table).where(table.c.DeviceCodeHash == secretHash(deviceCode)).values(LastPoll=now))
        return previous

    # -- sign-in sessions at identity providers -----------------------------------------------------
    def addSession(self, state: str, cookie: str, provider: str, codeVerifier: str, request: str,
                   lifetime: int) -> None:
        with self.transaction("addSession") as conn:
            conn.execute(insert(self.sessions).values(
                State=state, CookieHash=secretHash(cookie), Provider=provider, CodeVerifier=codeVerifier,
                Request=request, Authed="", ExpiresAt=utcnow() + timedelta(seconds=lifetime)))

    def getSession(self, state: str, cookie: str) -> dict[str, Any] | None:
        """The unexpired session of ``state`` when ``cookie`` is the one of the browser that started it."""
        with self.connection("getSession") as conn:
            row = conn.execute(select(self.sessions).where(self.sessions.c.State == state)).first()
        if row is None or row.ExpiresAt <= utcnow() or row.CookieHash != secretHash(cookie or ""):
            return None
        return {"state": row.State, "provider": row.Provider, "codeVerifier": row.CodeVerifier,
                "request": row.Request, "authed": row.Authed}

    def setSessionUser(self, state: str, authed: str) -> None:
        with self.transaction("setSessionUser") as conn:
            conn.execute(update(self.sessions).where(self.sessions.c.State == state).values(Authed=authed))

    def removeSession(self, state: str) -> None:
        with self.transaction("removeSession") as conn:
            conn.execute(delete(self.sessions).where(self.sessions.c.State == state))

    # -- authorization codes ------------------------------------------------------------------------
    def addAuthorizationCode(self, code: str, clientID: str, redirectURI: str, scope: str, user: dict[str, str],
                             codeChallenge: str, codeChallengeMethod: str, nonce: str, authTime: int,
                             lifetime: int) -> None:
        with self.transaction("addAuthorizationCode") as conn:
            conn.execute(insert(self.codes).values(
                CodeHash=secretHash(code), ClientID=clientID, RedirectURI=redirectURI or "", Scope=scope or "",
                **_userValues(user), CodeChallenge=codeChallenge or "", CodeChallengeMethod=codeChallengeMethod or "",
                Nonce=nonce or "", AuthTime=authTime, Used=False, ExpiresAt=utcnow() + timedelta(seconds=lifetime)))

    def consumeAuthorizationCode(self, code: str, clientID: str) -> dict[str, Any] | None:
        """The code's data, for exactly one caller (marked used at once), if unexpired and issued to ``clientID``."""
        table = self.codes
        with self.transaction("consumeAuthorizationCode") as conn:
            taken = conn.execute(update(table).where(
                table.c.CodeHash == secretHash(code), table.c.ClientID == clientID, table.c.Used.is_(False),
                table.c.ExpiresAt > utcnow()).values(Used=True)).rowcount == 1
            row = conn.execute(select(table).where(table.c.CodeHash == secretHash(code))).first() if taken else None
        if row is None:
            return None
        return {"clientID": row.ClientID, "redirectURI": row.RedirectURI, "scope": row.Scope, "user": _user(row),
                "codeChallenge": row.CodeChallenge, "codeChallengeMethod": row.CodeChallengeMethod,
                "nonce": row.Nonce, "authTime": row.AuthTime}

    def nonceUsed(self, clientID: str, nonce: str) -> bool:
        with self.connection("nonceUsed") as conn:
            return conn.execute(select(self.codes.c.CodeHash).where(
                self.codes.c.ClientID == clientID, self.codes.c.Nonce == nonce).limit(1)).first() is not None

    # -- refresh tokens -----------------------------------------------------------------------------
    def addRefreshToken(self, token: str, clientID: str, scope: str, user: dict[str, str], lifetime: int) -> None:
        """A new refresh token of ``user``'s sign-in session (``user["sessionID"]``)."""
        now = utcnow()
        with self.transaction("addRefreshToken") as conn:
            conn.execute(insert(self.refreshTokens).values(
                TokenHash=secretHash(token), ClientID=clientID, Scope=scope or "",
                **_userValues(user), IssuedAt=now, ExpiresAt=now + timedelta(seconds=lifetime), Revoked=False))

    def getRefreshToken(self, token: str) -> dict[str, Any] | None:
        """The refresh token's row (revoked or expired ones too, so that reuse can be detected), or None."""
        with self.connection("getRefreshToken") as conn:
            row = conn.execute(select(self.refreshTokens).where(
                self.refreshTokens.c.TokenHash == secretHash(token))).first()
        if row is None:
            return None
        return {"tokenHash": row.TokenHash, "clientID": row.ClientID, "scope": row.Scope, "user": _user(row), "issuedAt": row.IssuedAt, "expiresAt": row.ExpiresAt, "revoked": row.Revoked}

    def claimRefreshToken(self, token: str) -> bool:
        """Mark an unrevoked, unexpired refresh token used: True for exactly one caller (rotation)."""
        table = self.refreshTokens
        with self.transaction("claimRefreshToken") as conn:
            return conn.execute(update(table).where(
                table.c.TokenHash == secretHash(token), table.c.Revoked.is_(False),
                table.c.ExpiresAt > utcnow()).values(Revoked=True)).rowcount == 1

    def revokeSession(self, sessionID: str) -> int:
        """Revoke every refresh token of one sign-in; the number of tokens that were still valid."""
        table = self.refreshTokens
        with self.transaction("revokeSession") as conn:
            return conn.execute(update(table).where(table.c.SessionID == sessionID, table.c.Revoked.is_(False))
                                .values(Revoked=True)).rowcount

    # -- the identity provider's refresh token of each sign-in session -------------------------------
    def storeUpstreamToken(self, sessionID: str, provider: str, refreshToken: str, lifetime: int) -> None:
        values = {"SessionID": sessionID, "Provider": provider, "RefreshToken": self._box.encrypt(refreshToken),
                  "ExpiresAt": utcnow() + timedelta(seconds=lifetime)}
        with self.transaction("storeUpstreamToken") as conn:
            conn.execute(self.upsert(self.upstreamTokens, values, ["Provider", "RefreshToken", "ExpiresAt"]))

    def hasUpstreamToken(self, sessionID: str) -> bool:
        with self.connection("hasUpstreamToken") as conn:
            return conn.execute(select(self.upstreamTokens.c.SessionID).where(
                self.upstreamTokens.c.SessionID == sessionID, self.upstreamTokens.c.ExpiresAt > utcnow())).first() \
                is not None

    def extendUpstreamToken(self, sessionID: str, lifetime: int) -> None:
        """Keep the session's provider token as long as its newest refresh token."""
        with self.transaction("extendUpstreamToken") as conn:
            conn.execute(update(self.upstreamTokens).where(self.upstreamTokens.c.SessionID == sessionID)
                         .values(ExpiresAt=utcnow() + timedelta(seconds=lifetime)))

    @contextmanager
    def lockedUpstreamToken(self, sessionID: str) -> Iterator[tuple[str, str, Callable[[str], None]]]:
        """(provider, refresh token, replace) with the row locked, so that a rotating token is used once."""
        table = self.upstreamTokens
        with self.transaction("lockedUpstreamToken") as conn:
            row = conn.execute(select(table.c.Provider, table.c.RefreshToken).where(
                table.c.SessionID == sessionID, table.c.ExpiresAt > utcnow()).with_for_update()).first()
            if row is None:
                raise NotFound(f"no identity provider token kept for session {sessionID[:8]}")

            def replace(newToken: str) -> None:
                conn.execute(update(table).where(table.c.SessionID == sessionID)
                             .values(RefreshToken=self._box.encrypt(newToken)))

            yield row.Provider, self._box.decrypt(row.RefreshToken, "a stored identity provider token"), replace

    def removeUpstreamToken(self, sessionID: str) -> tuple[str, str] | None:
        """Forget the session's provider token; (provider, token) for revocation, None when there was none."""
        table = self.upstreamTokens
        with self.transaction("removeUpstreamToken") as conn:
            row = conn.execute(select(table.c.Provider, table.c.RefreshToken)
                               .where(table.c.SessionID == sessionID).with_for_update()).first()
            conn.execute(delete(table).where(table.c.SessionID == sessionID))
        return (row.Provider, self._box.decrypt(row.RefreshToken, "a stored identity provider token")) if row else None

    def purgeExpired(self) -> int:
        """Delete expired rows of every table; the number deleted."""
        now = utcnow()
        deleted = 0
        with self.transaction("purgeExpired") as conn:
            for table in (self.deviceCodes, self.sessions, self.codes, self.refreshTokens, self.upstreamTokens):
                deleted += conn.execute(delete(table).where(table.c.ExpiresAt <= now)).rowcount
        return deleted
