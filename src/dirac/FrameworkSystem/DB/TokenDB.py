"""TokenDB: users' refresh tokens, encrypted at rest (Fernet: AES-128-CBC and HMAC-SHA256).

One row per user and identity provider. The key is the TokenManager's, from a file named in
the server's local configuration; the database alone reveals no token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, delete, select, update

from dirac.Core.Base.DB import DB, UTCDateTime, utcnow
from dirac.Core.Security.Keys import SecretBox
from dirac.Core.Utilities.Exceptions import NotFound


class TokenDB(DB):
    """Encrypted refresh tokens by user and identity provider."""

    dbName = "Framework/TokenDB"
    metadata = MetaData()

    tokens = Table(
        "Tokens", metadata,
        Column("Username", String(128), primary_key=True),
        Column("Provider", String(128), primary_key=True),
        Column("UserID", String(255), nullable=False),
        Column("RefreshToken", Text, nullable=False),  # Fernet ciphertext
        Column("Scope", Text, nullable=False, default=""),
        Column("LastUpdate", UTCDateTime, nullable=False),
    )

    def __init__(self, url: str | None = None, *, encryptionKey: bytes, createTables: bool = True):
        self._box = SecretBox(encryptionKey, "wrong TokenManager key?")
        super().__init__(url, createTables=createTables)

    def _encrypt(self, secret: str) -> str:
        return self._box.encrypt(secret)

    def _decrypt(self, stored: str) -> str:
        return self._box.decrypt(stored, "a stored refresh token")

    def storeRefreshToken(self, username: str, provider: str, userID: str, refreshToken: str, scope: str = "") -> None:
        """Keep (or replace) the refresh token of ``username`` at ``provider``."""
        values = {"Username": username, "Provider": provider, "UserID": userID,
                  "RefreshToken": self._encrypt(refreshToken), "Scope": scope, "LastUpdate": utcnow()}
        with self.transaction("storeRefreshToken") as conn:
            conn.execute(self.upsert(self.tokens, values, ["UserID", "RefreshToken", "Scope", "LastUpdate"]))

    @contextmanager
    def lockedRefreshToken(self, username: str, provider: str | None = None
                           ) -> Iterator[tuple[str, str, Callable[[str], None]]]:
        """(provider, refresh token, replace) with the row locked, so that a rotating token is used once."""
        stmt = select(self.tokens.c.Provider, self.tokens.c.RefreshToken).where(self.tokens.c.Username == username)
        if provider:
            stmt = stmt.where(self.tokens.c.Provider == provider)
        with self.transaction("lockedRefreshToken") as conn:
            row = conn.execute(stmt.order_by(self.tokens.c.LastUpdate.desc()).limit(1).with_for_update()).first()
            if row is None:
                raise NotFound(f"no refresh token stored for {username}" + (f" at {provider}" if provider else ""))

            def replace(newToken: str) -> None:
                conn.execute(update(self.tokens).where(self.tokens.c.Username == username,
                                                       self.tokens.c.Provider == row.Provider)
                             .values(RefreshToken=self._encrypt(newToken), LastUpdate=utcnow()))

            yield row.Provider, self._decrypt(row.RefreshToken), replace

    def removeTokens(self, username: str) -> list[tuple[str, str]]:
        """Delete the user's rows; returns their (provider, refresh token) for revocation."""
        with self.transaction("removeTokens") as conn:
            rows = conn.execute(select(self.tokens.c.Provider, self.tokens.c.RefreshToken)
                                .where(self.tokens.c.Username == username).with_for_update()).all()
            conn.execute(delete(self.tokens).where(self.tokens.c.Username == username))
        return [(row.Provider, self._decrypt(row.RefreshToken)) for row in rows]

    def getTokensInfo(self, usernames: list[str] | None = None) -> list[dict[str, Any]]:
        """What is stored, without the tokens."""
        stmt = select(self.tokens.c.Username, self.tokens.c.Provider, self.tokens.c.UserID, self.tokens.c.Scope,
                      self.tokens.c.LastUpdate)
        if usernames is not None:
            stmt = stmt.where(self.tokens.c.Username.in_(usernames))
        with self.connection("getTokensInfo") as conn:
            return [dict(row._mapping) for row in conn.execute(stmt.order_by(self.tokens.c.Username))]
