"""ProxyDB on SQLite and MariaDB: delegation through a server-made key, proxies encrypted at rest, checks on
what may be stored, lifetime rules, expiry listing, deletion and the action log."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Utilities.Exceptions import NotFound, SecurityError
from dirac.FrameworkSystem.DB.ProxyDB import ProxyDB

BOB = "/O=DIRAC-Seed/CN=bob"


@pytest.fixture(scope="module")
def bobCertificate(tmp_path_factory: pytest.TempPathFactory) -> X509Chain:
    ca = CertificateAuthority(tmp_path_factory.mktemp("ca"))
    ca.create()
    cert, key = ca.issueUserCertificate(BOB)
    return X509Chain.fromPEM(cert + key)


def test_a_delegated_proxy_is_stored_encrypted_and_handed_back_with_its_key(db_url, bobCertificate):
    key = Fernet.generate_key()
    db = ProxyDB(db_url, encryptionKey=key)
    request = db.generateDelegationRequest(BOB)
    delegated = bobCertificate.generateChainFromRequest(request["request"], 5 * 86400)
    with pytest.raises(NotFound, match="no open delegation request"):
        db.completeDelegation(request["id"], "/O=DIRAC-Seed/CN=mallory", "mallory", delegated.certificatesPEM().decode())
    db.completeDelegation(request["id"], BOB, "bob", delegated.certificatesPEM().decode())
    with pytest.raises(NotFound, match="no open delegation request"):  # a request is used once
        db.completeDelegation(request["id"], BOB, "bob", delegated.certificatesPEM().decode())

    with db.connection() as conn:
        stored = conn.execute(select(db.proxies.c.Pem)).scalar_one()
        requestKeys = conn.execute(select(db.requests.c.Pem)).scalars().all()
    assert b"PRIVATE KEY" not in stored and b"CERTIFICATE" not in stored and requestKeys == []
    assert b"PRIVATE KEY" in Fernet(key).decrypt(stored)

    chain, secondsLeft = db.getProxy(BOB, requiredLifetime=86400)
    assert chain.hasKey and chain.identityDN == BOB and 4 * 86400 < secondsLeft <= 5 * 86400
    assert db.getProxyStrength(BOB) == 2048
    with pytest.raises(NotFound, match="less than the 604800 s required"):
        db.getProxy(BOB, requiredLifetime=7 * 86400)
    with pytest.raises(SecurityError, match="wrong ProxyManager key"):
        ProxyDB(db_url, encryptionKey=Fernet.generate_key()).getProxy(BOB)

    info = db.getProxiesInfo(["bob"])
    assert [(i["UserName"], i["UserDN"]) for i in info] == [("bob", BOB)] and "Pem" not in info[0]
    assert db.getExpiringProxies(3 * 86400) == []
    assert [p["UserName"] for p in db.getExpiringProxies(6 * 86400)] == ["bob"]

    db.logAction("download proxy", "/O=DIRAC-Seed/CN=pilot", "dirac_pilot", BOB, "dirac_user")
    assert [(r["Action"], r["TargetGroup"]) for r in db.getLogs(BOB)] == [("download proxy", "dirac_user")]
    assert db.deleteProxy(BOB) and not db.deleteProxy(BOB)
    with pytest.raises(NotFound, match="has no proxy uploaded"):
        db.getProxy(BOB)


def test_only_full_long_clean_proxies_of_the_caller_are_stored(db_url, bobCertificate):
    db = ProxyDB(db_url, encryptionKey=Fernet.generate_key())
    refusals = {
        "limited proxies are not allowed": dict(lifetime=86400, limited=True),
        "DIRAC group extension are not allowed": dict(lifetime=86400, group="dirac_user"),
        "cannot store a proxy with": dict(lifetime=600),
    }
    for message, options in refusals.items():
        request = db.generateDelegationRequest(BOB)
        proxy = bobCertificate.generateChainFromRequest(request["request"], options.pop("lifetime"), **options)
        with pytest.raises(SecurityError, match=message):
            db.completeDelegation(request["id"], BOB, "bob", proxy.certificatesPEM().decode())
    request = db.generateDelegationRequest(BOB)
    otherKey = bobCertificate.generateProxy(86400)  # signed for another key than the request's
    with pytest.raises(SecurityError, match="does not match"):
        db.completeDelegation(request["id"], BOB, "bob", otherKey.certificatesPEM().decode())
    with pytest.raises(SecurityError, match="not of /O=Other"):
        db.storeProxy("/O=Other", "other", bobCertificate.generateProxy(86400))
    assert db.getProxiesInfo() == []
    db.storeProxy(BOB, "bob", bobCertificate.generateProxy(2 * 86400))
    db.storeProxy(BOB, "bob", bobCertificate.generateProxy(86400))  # shorter: the longer one is kept
    assert db.getProxy(BOB)[1] > 86400 + 3600
