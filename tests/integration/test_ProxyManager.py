"""ProxyManager over HTTPS: proxies delegated by their owners (dirac-proxy-init and the client), short proxies
handed to authorized components in a chosen group, refusals, encryption at rest and clean logs."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Tornado.Client import RPCClient
from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient

BIN = Path(sys.executable).parent
BOB_DN = "/O=DIRAC-Seed/OU=dirac/CN=bob"
ADMIN_DN = "/O=DIRAC-Seed/OU=dirac/CN=admin"
PILOT = "pilot-of-its-own"  # the CN=pilot proxy: other modules keep "pilot" for a pilot proxy of admin


def client(grid, proxy: str) -> ProxyManagerClient:
    return ProxyManagerClient(proxyLocation=str(grid.proxies[proxy]), useCertificates=False)


@pytest.fixture(scope="module")
def bob(sqliteGrid, tmp_path_factory) -> dict[str, Path]:
    """bob's certificate and key files, his proxy uploaded with dirac-proxy-init; a pilot's proxy."""
    home = tmp_path_factory.mktemp("bob")
    cert, key = sqliteGrid.ca.issueUserCertificate(BOB_DN)
    (home / "usercert.pem").write_bytes(cert)
    (home / "userkey.pem").write_bytes(key)
    (home / "userkey.pem").chmod(0o600)
    sqliteGrid.makeProxy(PILOT, "/O=DIRAC-Seed/OU=dirac/CN=pilot", "dirac_pilot")
    env = {**os.environ, **sqliteGrid.instance.environment(), "X509_USER_PROXY": str(home / "proxy.pem")}
    command = [str(BIN / "dirac-proxy-init"), "-C", str(home / "usercert.pem"), "-K", str(home / "userkey.pem"),
               "-g", "dirac_user", "--upload-valid", "72:00", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["uploaded"] is True
    return {"cert": home / "usercert.pem", "key": home / "userkey.pem", "proxy": home / "proxy.pem", "env": env}


def test_dirac_proxy_init_uploads_a_long_proxy_unless_told_not_to(grid, bob):
    info = ProxyManagerClient(proxyLocation=str(bob["proxy"]), useCertificates=False).getUserProxiesInfo()
    assert info["OK"] and list(info["Value"]) == [BOB_DN], info
    left = info["Value"][BOB_DN] - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # JEncode: naive UTC
    assert 71 * 3600 < left.total_seconds() <= 72 * 3600
    command = [str(BIN / "dirac-proxy-init"), "-C", str(bob["cert"]), "-K", str(bob["key"]), "--no-upload", "--json"]
    done = subprocess.run(command, env=bob["env"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "uploaded" not in json.loads(done.stdout), done.stdout + done.stderr


def test_a_pilot_gets_a_limited_proxy_of_the_job_owner_in_the_owners_group(grid, bob):
    got = client(grid, PILOT).getPayloadProxyFromDIRACGroup(BOB_DN, "dirac_user", 3600)
    assert got["OK"], got
    chain = got["Value"]
    assert chain.hasKey and chain.isLimitedProxy and chain.identityDN == BOB_DN and chain.diracGroup == "dirac_user"
    assert 3600 <= chain.remainingSeconds <= 5400  # at most MaxLifetimeFactor (1.5) times the request
    path = grid.instance.root / "user" / "bob-payload.pem"
    chain.dumpToFile(path)
    who = RPCClient("Test/Dummy", proxyLocation=str(path), useCertificates=False).whoami()
    assert who["OK"] and who["Value"]["username"] == "bob" and who["Value"]["group"] == "dirac_user", who
    # a pilot asking for a full proxy still gets a limited one (LimitedDelegation)
    full = client(grid, PILOT).downloadProxy(BOB_DN, "dirac_user", limited=False, requiredTimeLeft=3600)
    assert full["OK"] and full["Value"].isLimitedProxy


def test_an_administrator_gets_a_full_proxy_with_dirac_admin_get_proxy(grid, bob, tmp_path):
    out = tmp_path / "bob.pem"
    env = {**os.environ, **grid.instance.environment()}
    done = subprocess.run([str(BIN / "dirac-admin-get-proxy"), "bob", "dirac_user", "-v", "2:00", "-u", str(out),
                           "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    chain = X509Chain.fromFile(out)
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert chain.identityDN == BOB_DN and chain.diracGroup == "dirac_user" and not chain.isLimitedProxy


def test_refused_to_normal_users_to_other_users_and_for_groups_the_user_is_not_in(grid, bob):
    refused = client(grid, "user").downloadProxy(BOB_DN, "dirac_user")  # admin as a plain dirac_user
    assert not refused["OK"] and "may not call getProxy" in refused["Message"]
    ownProxy = ProxyManagerClient(proxyLocation=str(bob["proxy"]), useCertificates=False)
    refused = ownProxy.downloadProxy(BOB_DN, "dirac_user")
    assert not refused["OK"] and "may not call getProxy" in refused["Message"]
    refused = client(grid, "admin").downloadProxy(BOB_DN, "dirac_admin")
    assert not refused["OK"] and "user bob is not a member of group dirac_admin" in refused["Message"]
    refused = client(grid, PILOT).downloadProxy(BOB_DN, "dirac_pilot")
    assert not refused["OK"] and "not a member of group dirac_pilot" in refused["Message"]
    refused = client(grid, PILOT).downloadProxy("/O=DIRAC-Seed/OU=dirac/CN=nobody", "dirac_user")
    assert not refused["OK"] and "not a registered user" in refused["Message"]
    refused = client(grid, "admin").downloadProxy(BOB_DN, "dirac_user", requiredTimeLeft=30 * 86400)
    assert not refused["OK"] and "less than the 2592000 s required" in refused["Message"]
    refused = client(grid, "bob").deleteProxy(ADMIN_DN)
    assert not refused["OK"] and "may not delete the proxy of" in refused["Message"]
    refused = client(grid, "bob").getExpiringProxies(7)
    assert not refused["OK"] and "may not call getExpiringProxies" in refused["Message"]
    # an upload of somebody else's proxy: bob signs the request the server made for the administrator
    request = client(grid, "admin").requestDelegationUpload()
    bobCertificate = X509Chain.fromCertAndKeyFiles(bob["cert"], bob["key"])
    signed = bobCertificate.generateChainFromRequest(request["Value"]["request"], 86400)
    refused = client(grid, "admin").completeDelegationUpload(request["Value"]["id"], signed.certificatesPEM().decode())
    assert not refused["OK"] and f"the proxy is of {BOB_DN}, not of {ADMIN_DN}" in refused["Message"]
    refused = client(grid, "bob").completeDelegationUpload(request["Value"]["id"], signed.certificatesPEM().decode())
    assert not refused["OK"] and "no open delegation request" in refused["Message"]


def test_the_administrator_proxy_is_uploaded_by_init_and_expiry_is_reported(grid, bob):
    users = client(grid, "admin").getRegisteredUsers(0)
    assert users["OK"] and {u["UserName"] for u in users["Value"]} == {"admin", "bob"}
    own = client(grid, "bob").getRegisteredUsers(0)
    assert own["OK"] and [u["UserName"] for u in own["Value"]] == ["bob"]
    env = {**os.environ, **grid.instance.environment()}
    done = subprocess.run([str(BIN / "dirac-admin-proxy-expiry"), "--days", "7"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "bob" in done.stdout and "admin " not in done.stdout, done.stdout + done.stderr
    done = subprocess.run([str(BIN / "dirac-admin-proxy-expiry"), "--days", "1"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "no uploaded proxy expires within 1 days" in done.stdout


def test_stored_private_keys_are_encrypted_and_never_logged(grid, bob):
    proxyDB = grid.instance.root / "db" / "ProxyDB.sqlite"
    raw = proxyDB.read_bytes()
    assert b"PRIVATE KEY" not in raw and b"BEGIN CERTIFICATE" not in raw
    with sqlite3.connect(proxyDB) as db:
        rows = db.execute("SELECT UserName, Pem FROM ProxyDB_CleanProxies").fetchall()
    assert {name for name, _ in rows} == {"admin", "bob"}
    assert all(b"PRIVATE KEY" not in bytes(pem) for _, pem in rows)
    log = (grid.instance.root.parent / "server.log").read_text()
    assert "PRIVATE KEY" not in log and "CERTIFICATE" not in log
    assert grid.instance.proxyManagerKey.read_text().strip() not in log
    assert "limited proxy of bob@dirac_user" in log and "handed to pilot@dirac_pilot" in log


def test_deleting_a_proxy_bundle(grid, bob):
    deleted = ProxyManagerClient(proxyLocation=str(bob["proxy"]), useCertificates=False).deleteProxyBundle([BOB_DN])
    assert deleted["OK"] and deleted["Value"] == 1, deleted
    gone = client(grid, PILOT).getPayloadProxyFromDIRACGroup(BOB_DN, "dirac_user", 3600)
    assert not gone["OK"] and "has no proxy uploaded" in gone["Message"]
