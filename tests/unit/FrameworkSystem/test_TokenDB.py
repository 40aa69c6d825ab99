"""TokenDB on SQLite and MariaDB: refresh tokens encrypted at rest, replaced under a row lock, removed."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from dirac.Core.Utilities.Exceptions import NotFound, SecurityError
from dirac.FrameworkSystem.DB.TokenDB import TokenDB


def test_refresh_tokens_are_stored_encrypted_replaced_and_removed(db_url):
    key = Fernet.generate_key()
    db = TokenDB(db_url, encryptionKey=key)
    db.storeRefreshToken("alice", "IdP", "sub-alice", "refresh-1", "wlcg.groups")
    with db.connection() as conn:
        stored = conn.execute(select(db.tokens.c.RefreshToken)).scalar_one()
    assert "refresh-1" not in stored and Fernet(key).decrypt(stored.encode()) == b"refresh-1"
    with db.lockedRefreshToken("alice") as (provider, token, replace):
        assert (provider, token) == ("IdP", "refresh-1")
        replace("refresh-2")
    with db.lockedRefreshToken("alice", "IdP") as (_, token, _replace):
        assert token == "refresh-2"
    assert [(i["Username"], i["Provider"], i["UserID"]) for i in db.getTokensInfo()] == [("alice", "IdP", "sub-alice")]
    with pytest.raises(SecurityError, match="wrong TokenManager key"):
        with TokenDB(db_url, encryptionKey=Fernet.generate_key()).lockedRefreshToken("alice"):
            pass
    assert db.removeTokens("alice") == [("IdP", "refresh-2")]
    with pytest.raises(NotFound, match="no refresh token stored for alice"):
        with db.lockedRefreshToken("alice"):
            pass
