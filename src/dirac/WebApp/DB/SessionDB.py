"""SessionDB: the web portal's server-side sessions, which survive a restart of the portal.

A row is keyed by a hash of the session id (the random value the browser's signed cookie holds)
and its state is encrypted with a key derived from that id: the database alone yields neither a
usable session nor the users' tokens.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, delete, select, update

from dirac.Core.Base.DB import DB, LongText, UTCDateTime, utcnow
from dirac.Core.Security.Keys import SecretBox, derivedKey
from dirac.Core.Utilities.Exceptions import SecurityError


def _rowKey(sessionID: str) -> str:
    return hashlib.sha256(b"dirac-portal-session-row:" + sessionID.encode()).hexdigest()


def _box(sessionID: str) -> SecretBox:
    return SecretBox(derivedKey(sessionID.encode(), "dirac-portal-session-key"), "not this session's key")


class SessionDB(DB):
    """Portal sessions: encrypted state, owner and expiry."""

    dbName = "WebApp/SessionDB"
    metadata = MetaData()

    sessions = Table(
        "Sessions", metadata,
        Column("SessionKey", String(64), primary_key=True),
        Column("Username", String(128), nullable=True, index=True),  # None until signed in
        Column("State", LongText, nullable=False),  # Fernet ciphertext of the JSON state
        Column("Created", UTCDateTime, nullable=False),
        Column("Expires", UTCDateTime, nullable=False, index=True),
    )

    def createSession(self, sessionID: str, state: dict[str, Any], expires: datetime.datetime,
                      username: str | None = None) -> None:
        """Store a new session."""
        with self.transaction("createSession") as conn:
            conn.execute(self.sessions.insert().values(
                SessionKey=_rowKey(sessionID), Username=username, Created=utcnow(), Expires=expires,
                State=_box(sessionID).encrypt(json.dumps(state))))

    def getSession(self, sessionID: str) -> tuple[dict[str, Any], datetime.datetime] | None:
        """(state, expiry) of a live session; None when unknown, expired (then removed) or undecipherable."""
        key = _rowKey(sessionID)
        with self.connection("getSession") as conn:
            row = conn.execute(select(self.sessions.c.State, self.sessions.c.Expires)
                               .where(self.sessions.c.SessionKey == key)).first()
        if row is None:
            return None
        if row.Expires <= utcnow():
            self.deleteSession(sessionID)
            return None
        try:
            return json.loads(_box(sessionID).decrypt(row.State, "the session state")), row.Expires
        except (SecurityError, ValueError):
            self.log.warning("session %s... cannot be decrypted: removed", key[:12])
            self.deleteSession(sessionID)
            return None

    def updateSession(self, sessionID: str, state: dict[str, Any], expires: datetime.datetime | None = None) -> bool:
        """Replace the state (and expiry) of a session; False when it no longer exists."""
        values: dict[str, Any] = {"State": _box(sessionID).encrypt(json.dumps(state))}
        if expires is not None:
            values["Expires"] = expires
        with self.transaction("updateSession") as conn:
            return conn.execute(update(self.sessions).where(self.sessions.c.SessionKey == _rowKey(sessionID))
                                .values(**values)).rowcount == 1

    def expireSession(self, sessionID: str) -> None:
        """Make a session expired now (administrators; tests of the expiry path)."""
        with self.transaction("expireSession") as conn:
            conn.execute(update(self.sessions).where(self.sessions.c.SessionKey == _rowKey(sessionID))
                         .values(Expires=utcnow() - datetime.timedelta(seconds=1)))

    def deleteSession(self, sessionID: str) -> None:
        with self.transaction("deleteSession") as conn:
            conn.execute(delete(self.sessions).where(self.sessions.c.SessionKey == _rowKey(sessionID)))

    def purgeExpired(self) -> int:
        """Remove expired sessions; how many."""
        with self.transaction("purgeExpired") as conn:
            return conn.execute(delete(self.sessions).where(self.sessions.c.Expires <= utcnow())).rowcount

    def countSessions(self, username: str | None = None) -> int:
        """Live sessions (of ``username``)."""
        stmt = select(self.sessions.c.SessionKey).where(self.sessions.c.Expires > utcnow())
        if username is not None:
            stmt = stmt.where(self.sessions.c.Username == username)
        with self.connection("countSessions") as conn:
            return len(conn.execute(stmt).all())
