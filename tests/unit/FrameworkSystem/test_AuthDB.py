"""AuthDB on SQLite and MariaDB: every one-time secret is used once, stored as a hash, and sessions end as a whole."""

from __future__ import annotations

import datetime
import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import NotFound, SecurityError
from dirac.FrameworkSystem.DB.AuthDB import CONSUMED, DENIED, GRANTED, PENDING, AuthDB

ALICE = {"username": "alice", "userID": "sub-alice", "provider": "IdP", "group": "dirac_user", "sessionID": "s1"}


@pytest.fixture
def db(db_url):
    return AuthDB(db_url, encryptionKey=Fernet.generate_key())


def test_a_device_login_is_granted_once_and_its_tokens_issued_once(db):
    db.addDeviceCode("device-secret", "ABCD-EFGH", "DIRAC_CLI", "g:dirac_user", 600, 5)
    with db.connection() as conn:
        stored = conn.execute(select(db.deviceCodes.c.DeviceCodeHash)).scalar_one()
    assert "device-secret" not in stored
    assert db.getPendingDeviceCode("abcd-efgh ")["clientID"] == "DIRAC_CLI"  # typed by a user: case, spaces
    assert db.getDeviceCode("device-secret")["status"] == PENDING
    assert db.consumeDeviceCode("device-secret") is False  # not granted yet
    assert db.grantDeviceCode("ABCD-EFGH", ALICE, "g:dirac_user") is True
    assert db.grantDeviceCode("ABCD-EFGH", ALICE, "g:dirac_user") is False  # no longer pending
    assert db.getPendingDeviceCode("ABCD-EFGH") is None
    found = db.getDeviceCode("device-secret")
    assert found["status"] == GRANTED and found["user"] == ALICE
    assert db.consumeDeviceCode("device-secret") is True
    assert db.consumeDeviceCode("device-secret") is False
    assert db.getDeviceCode("device-secret")["status"] == CONSUMED


def test_a_denied_or_expired_device_login_cannot_be_granted(db):
    db.addDeviceCode("d1", "AAAA-AAAA", "DIRAC_CLI", "", 600, 5)
    assert db.denyDeviceCode("AAAA-AAAA", "identity provider P does not grant group G") is True
    found = db.getDeviceCode("d1")
    assert found["status"] == DENIED and "does not grant" in found["reason"]
    assert db.grantDeviceCode("AAAA-AAAA", ALICE, "") is False
    db.addDeviceCode("d2", "BBBB-BBBB", "DIRAC_CLI", "", 600, 5)
    with db.transaction() as conn:
        conn.execute(update(db.deviceCodes).values(ExpiresAt=utcnow() - datetime.timedelta(seconds=1)))
    assert db.getPendingDeviceCode("BBBB-BBBB") is None
    assert db.grantDeviceCode("BBBB-BBBB", ALICE, "") is False
    assert db.purgeExpired() == 2


def test_polls_are_recorded_for_slow_down(db):
    db.addDeviceCode("d1", "CCCC-CCCC", "DIRAC_CLI", "", 600, 5)
    assert db.recordPoll("d1") is None
    previous = db.recordPoll("d1")
    assert previous is not None and (utcnow() - previous).total_seconds() < 5


def test_a_sign_in_session_answers_only_the_browser_that_started_it(db):
    db.addSession("state-1", "cookie-1", "IdP", "verifier", '{"kind": "device"}', 900)
    assert db.getSession("state-1", "cookie-2") is None
    assert db.getSession("state-1", "") is None
    session = db.getSession("state-1", "cookie-1")
    assert session["provider"] == "IdP" and session["codeVerifier"] == "verifier" and session["authed"] == ""
    db.setSessionUser("state-1", '{"username": "alice"}')
    assert db.getSession("state-1", "cookie-1")["authed"] == '{"username": "alice"}'
    db.removeSession("state-1")
    assert db.getSession("state-1", "cookie-1") is None


def test_an_authorization_code_is_consumed_once_by_its_client(db):
    db.addAuthorizationCode("code-1", "web", "https://portal/cb", "openid g:dirac_user", ALICE, "challenge", "S256",
                            "nonce-1", int(time.time()), 120)
    assert db.nonceUsed("web", "nonce-1") and not db.nonceUsed("web", "nonce-2")
    assert db.consumeAuthorizationCode("code-1", "other-client") is None
    found = db.consumeAuthorizationCode("code-1", "web")
    assert found["user"] == ALICE and found["codeChallenge"] == "challenge" and found["redirectURI"] == "https://portal/cb"
    assert db.consumeAuthorizationCode("code-1", "web") is None


def test_refresh_tokens_are_claimed_once_and_a_session_is_revoked_whole(db):
    db.addRefreshToken("rt-1", "DIRAC_CLI", "g:dirac_user", ALICE, 3600)
    db.addRefreshToken("rt-2", "DIRAC_CLI", "g:dirac_user", ALICE, 3600)
    db.addRefreshToken("rt-other", "DIRAC_CLI", "g:dirac_user", {**ALICE, "sessionID": "s2"}, 3600)
    with db.connection() as conn:
        assert "rt-1" not in conn.execute(select(db.refreshTokens.c.TokenHash)).scalars().all()
    assert db.getRefreshToken("rt-1")["user"] == ALICE and db.getRefreshToken("nope") is None
    assert db.claimRefreshToken("rt-1") is True
    assert db.claimRefreshToken("rt-1") is False
    assert db.getRefreshToken("rt-1")["revoked"] is True
    assert db.revokeSession("s1") == 1  # rt-2; rt-1 was already used
    assert db.claimRefreshToken("rt-2") is False
    assert db.claimRefreshToken("rt-other") is True


def test_the_providers_refresh_token_is_kept_encrypted_and_replaced_under_a_lock(db_url):
    key = Fernet.generate_key()
    db = AuthDB(db_url, encryptionKey=key)
    db.storeUpstreamToken("s1", "IdP", "upstream-1", 900)
    with db.connection() as conn:
        stored = conn.execute(select(db.upstreamTokens.c.RefreshToken)).scalar_one()
    assert "upstream-1" not in stored and Fernet(key).decrypt(stored.encode()) == b"upstream-1"
    assert db.hasUpstreamToken("s1") and not db.hasUpstreamToken("s2")
    with db.lockedUpstreamToken("s1") as (provider, token, replace):
        assert (provider, token) == ("IdP", "upstream-1")
        replace("upstream-2")
    db.extendUpstreamToken("s1", 86400)
    with pytest.raises(SecurityError, match="signing key replaced"):
        with AuthDB(db_url, encryptionKey=Fernet.generate_key()).lockedUpstreamToken("s1"):
            pass
    assert db.removeUpstreamToken("s1") == ("IdP", "upstream-2")
    assert db.removeUpstreamToken("s1") is None
    with pytest.raises(NotFound):
        with db.lockedUpstreamToken("s1"):
            pass
