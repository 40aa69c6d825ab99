"""SessionDB on SQLite and MariaDB: encrypted state, expiry, and sessions that outlive the portal object."""

from __future__ import annotations

import datetime

from sqlalchemy import select

from dirac.Core.Base.DB import utcnow
from dirac.WebApp.Config import PortalConfig
from dirac.WebApp.DB.SessionDB import SessionDB
from dirac.WebApp.Portal import Portal

SECRET = b"x" * 48


def later(seconds: int = 600) -> datetime.datetime:
    return utcnow() + datetime.timedelta(seconds=seconds)


def test_state_round_trips_and_is_encrypted_at_rest(db_url):
    db = SessionDB(db_url)
    state = {"user": {"username": "alice"}, "token": {"access_token": "secret-token-value"}, "csrf": "c"}
    db.createSession("the-session-id", state, later(), "alice")
    loaded, expires = db.getSession("the-session-id")
    assert loaded == state
    assert expires > utcnow()
    with db.connection() as conn:
        row = conn.execute(select(db.sessions)).one()
    assert "secret-token-value" not in row.State and "the-session-id" not in row.SessionKey
    assert db.getSession("another-id") is None


def test_update_expire_delete_and_purge(db_url):
    db = SessionDB(db_url)
    db.createSession("s1", {"n": 1}, later())
    db.createSession("s2", {"n": 2}, later(-5))
    assert db.updateSession("s1", {"n": 3})
    assert db.getSession("s1")[0] == {"n": 3}
    assert not db.updateSession("missing", {})
    assert db.purgeExpired() == 1
    db.expireSession("s1")
    assert db.getSession("s1") is None  # and removed
    assert db.countSessions() == 0


def test_a_session_outlives_the_portal_that_made_it(sqlite_url):
    config = PortalConfig(rootURL="/DIRAC", sessionLifetime=3600, cookieSecret=SECRET)
    first = Portal(config, SessionDB(sqlite_url))
    sessionID = first.newSession({"user": {"username": "bob"}}, 3600, "bob")
    first.executor.shutdown()
    restarted = Portal(config, SessionDB(sqlite_url))  # a new process: nothing in memory
    state, _ = restarted.loadSession(sessionID)
    assert state["user"] == {"username": "bob"}
    assert len(state["csrf"]) >= 32
    restarted.executor.shutdown()
