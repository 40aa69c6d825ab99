"""TokenManager over HTTPS with the real local provider: refresh tokens stored encrypted, access tokens
handed to authorized components acting for a user after the user's own token expired, revocation."""

from __future__ import annotations

import sqlite3

import pytest
from cryptography.fernet import Fernet

from dirac.Core.Security import IdProviders
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import AuthenticationError

from .conftest import environmentOf
from .idp import deviceLoginTokens
from .test_idp_tokens import configureIdP


@pytest.fixture(scope="module")
def manager(sqliteGrid, oidcProvider):
    """The IdP configured and alice's refresh token stored by alice herself (with the TokenManager key that
    ``dirac-server init`` made, named in the server's local configuration)."""
    configureIdP(sqliteGrid, oidcProvider)
    keyFile = sqliteGrid.instance.tokenManagerKey
    with environmentOf(sqliteGrid.instance):
        tokens = deviceLoginTokens(oidcProvider, "alice", "openid offline_access wlcg.groups group:dirac_admin")
        stored = RPCClient("Framework/TokenManager", token=tokens["access_token"]).storeToken(
            tokens["refresh_token"], "TestIdP")
    assert stored["OK"], stored
    assert stored["Value"]["username"] == "alice" and "dirac_admin" in stored["Value"]["groups"]
    return {"key": keyFile.read_bytes(), "tokens": tokens}


def test_an_agent_gets_a_fresh_access_token_of_the_user_and_acts_as_them(grid, manager):
    for _ in range(2):  # the provider rotates the refresh token: the stored one follows
        handed = grid.client("Framework/TokenManager", proxy="admin").getToken("alice", "dirac_admin")
        assert handed["OK"], handed
        who = RPCClient("Test/Dummy", token=handed["Value"]["access_token"]).whoami()
        assert who["OK"], who
        assert who["Value"]["username"] == "alice" and who["Value"]["group"] == "dirac_admin"
    assert handed["Value"]["access_token"] != manager["tokens"]["access_token"]


def test_normal_users_cannot_get_others_tokens_nor_ungranted_groups(grid, manager):
    refused = grid.client("Framework/TokenManager", proxy="bob").getToken("alice", "dirac_admin")
    assert not refused["OK"] and "may not call getToken" in refused["Message"]
    refused = grid.client("Framework/TokenManager", proxy="admin").getToken("alice", "dirac_pilot")
    assert not refused["OK"] and "does not grant group dirac_pilot" in refused["Message"]
    refused = grid.client("Framework/TokenManager", proxy="bob").deleteToken("alice")
    assert not refused["OK"] and "may not delete the tokens of alice" in refused["Message"]


def test_refresh_tokens_are_encrypted_at_rest(grid, manager):
    info = grid.client("Framework/TokenManager", proxy="admin").getUsersTokensInfo(["alice"])
    assert info["OK"] and info["Value"][0]["Provider"] == "TestIdP" and "RefreshToken" not in info["Value"][0]
    with sqlite3.connect(grid.instance.root / "db" / "TokenDB.sqlite") as db:
        (stored,) = db.execute("SELECT RefreshToken FROM Tokens WHERE Username = 'alice'").fetchone()
    plain = Fernet(manager["key"]).decrypt(stored.encode()).decode()
    assert plain and plain not in stored


def test_deleting_revokes_the_refresh_token_at_the_provider(grid, manager):
    with sqlite3.connect(grid.instance.root / "db" / "TokenDB.sqlite") as db:
        (stored,) = db.execute("SELECT RefreshToken FROM Tokens WHERE Username = 'alice'").fetchone()
    refreshToken = Fernet(manager["key"]).decrypt(stored.encode()).decode()
    deleted = RPCClient("Framework/TokenManager", token=manager["tokens"]["access_token"]).deleteToken("alice")
    assert deleted["OK"] and deleted["Value"]["revoked"] == ["TestIdP"], deleted
    gone = grid.client("Framework/TokenManager", proxy="admin").getToken("alice", "dirac_admin")
    assert not gone["OK"] and "no refresh token stored for alice" in gone["Message"]
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        OAuth2Client(IdProviders.getIdProvider("TestIdP")).refresh(refreshToken)
    log = (grid.instance.root.parent / "server.log").read_text()
    assert "access token of alice@dirac_admin handed to admin@dirac_admin" in log
    assert refreshToken not in log and manager["tokens"]["refresh_token"] not in log
    assert manager["key"].decode() not in log
