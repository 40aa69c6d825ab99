"""Bearer tokens on the same RPC framework: accepted from a trusted issuer, refused otherwise."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Tornado.Client import RPCClient

from .conftest import environmentOf

ISSUER = "https://idp.test.invalid"


@pytest.fixture(scope="module")
def issuerKey(sqliteGrid):
    """A signing key whose public half the CS trusts, and bob registered with an IdP subject."""
    key = ec.generate_private_key(ec.SECP256R1())
    publicFile = sqliteGrid.instance.root / "idp-public.pem"
    publicFile.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    with environmentOf(sqliteGrid.instance):
        api = CSAPI(proxyLocation=str(sqliteGrid.proxies["admin"]), useCertificates=False)
        assert api.initialize()["OK"]
        api.setOption("/DIRAC/Security/TokenIssuers/TestIdP/Issuer", ISSUER)
        api.setOption("/DIRAC/Security/TokenIssuers/TestIdP/PublicKeyFile", str(publicFile))
        api.setOption("/Registry/Users/bob/ID", "subject-of-bob")
        assert api.commit()["OK"]
    return key


def token(key, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "subject-of-bob", "aud": "dirac", "iat": now, "exp": now + 600,
               "scope": "group:dirac_user"}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm="ES256")


def call(grid, bearer: str) -> dict:
    return RPCClient("Test/Dummy", token=bearer).whoami()


def test_valid_token_authenticates_the_registered_user(grid, issuerKey):
    who = call(grid, token(issuerKey))
    assert who["OK"], who
    assert who["Value"]["username"] == "bob"
    assert who["Value"]["group"] == "dirac_user"
    assert who["Value"]["authMethod"] == "JWT"
    assert RPCClient("Test/Dummy", token=token(issuerKey)).add(2, 2)["Value"] == 4


@pytest.mark.parametrize("claims, reason", [
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "token expired"),
    ({"nbf": int(time.time()) + 3600}, "not valid before"),
    ({"aud": "someone-else"}, "audience"),
    ({"iss": "https://evil.invalid"}, "not trusted"),
    ({"scope": "group:dirac_admin"}, "not a member of group dirac_admin"),
    ({"sub": "nobody"}, "not registered"),
])
def test_bad_tokens_are_refused_with_the_reason(grid, issuerKey, claims, reason):
    refused = token(issuerKey, **claims)
    result = call(grid, refused)
    assert not result["OK"]
    assert reason in result["Message"]
    logFile, deadline = grid.instance.root.parent / "server.log", time.monotonic() + 10
    while True:  # the server writes its log line after answering
        log = logFile.read_text()
        said = [line for line in log.splitlines() if "Test/Dummy.? by anonymous" in line and reason in line]
        if said or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert said, "the server log says why the call was refused"
    assert refused not in log and refused.split(".")[1] not in log  # never the token itself


def test_unsigned_and_foreign_signed_tokens_are_refused(grid, issuerKey):
    unsigned = jwt.encode({"iss": ISSUER, "sub": "subject-of-bob", "aud": "dirac", "exp": int(time.time()) + 60,
                           "iat": int(time.time())}, None, algorithm="none")
    result = call(grid, unsigned)
    assert not result["OK"] and "not accepted" in result["Message"]
    forged = token(ec.generate_private_key(ec.SECP256R1()))
    result = call(grid, forged)
    assert not result["OK"] and "signature" in result["Message"]
