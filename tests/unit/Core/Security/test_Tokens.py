"""Bearer tokens: only trusted issuers, asymmetric signatures and valid claims give DIRAC credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from dirac.Core.Config import gConfig
from dirac.Core.Security.Credentials import credentialsFromToken, groupFromClaims
from dirac.Core.Utilities.Exceptions import AuthenticationError, AuthorizationError

ISSUER = "https://idp.example.org"
ALICE_ID = "0c6f8a5e-alice"
ISSUERS = "/DIRAC/Security/TokenIssuers"


def _publicPEM(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keys():
    return {"RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1()),
            "EdDSA": ed25519.Ed25519PrivateKey.generate(),
            "other": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.fixture
def idp(registry, keys, tmp_path):
    """Three trusted issuers (RSA, EC, Ed25519 keys in PEM files) added to the Registry's CS."""
    options = {}
    for alg in ("RS256", "ES256", "EdDSA"):
        keyFile = tmp_path / f"{alg}.pem"
        keyFile.write_bytes(_publicPEM(keys[alg]))
        issuer = ISSUER if alg == "RS256" else f"{ISSUER}/{alg}"
        options[f"{ISSUERS}/{alg}IdP/Issuer"] = issuer
        options[f"{ISSUERS}/{alg}IdP/PublicKeyFile"] = str(keyFile)
    gConfig.initialize(cfgFiles=[registry], options=options, fetchRemote=False)
    return keys


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": ALICE_ID, "aud": "dirac", "iat": now, "exp": now + 600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(keys, alg: str = "RS256", key: str | None = None, **changes) -> str:
    return jwt.encode(claims(**changes), keys[key or alg], algorithm=alg)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handMade(header: dict, payload: dict, sign) -> str:
    signingInput = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    return f"{signingInput}.{_b64(sign(signingInput.encode()))}"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_valid_token_gives_user_credentials(idp, alg):
    issuer = ISSUER if alg == "RS256" else f"{ISSUER}/{alg}"
    creds = credentialsFromToken(token(idp, alg, iss=issuer))
    assert creds == {"DN": "/O=DIRAC-Seed/CN=alice", "ID": ALICE_ID, "issuer": issuer, "username": "alice",
                     "group": "dirac_user", "properties": ["NormalUser"], "VO": "dirac",
                     "isProxy": False, "isLimitedProxy": False, "authMethod": "JWT"}


def test_group_comes_from_scope_or_dirac_group_claim(idp):
    assert credentialsFromToken(token(idp, scope="openid group:dirac_prod"))["group"] == "dirac_prod"
    creds = credentialsFromToken(token(idp, dirac_group="dirac_prod"))
    assert creds["properties"] == ["NormalUser", "ProductionManagement"] and creds["VO"] == "lhcb"
    assert groupFromClaims({"scope": "openid profile"}) is None


def test_group_the_user_is_not_in_is_refused(idp):
    with pytest.raises(AuthorizationError, match="user alice is not a member of group dirac_admin"):
        credentialsFromToken(token(idp, scope="group:dirac_admin"))


def test_alg_none_is_refused(idp):
    unsigned = handMade({"alg": "none", "typ": "JWT"}, claims(), lambda _: b"")
    with pytest.raises(AuthenticationError, match="algorithm 'none' is not accepted"):
        credentialsFromToken(unsigned)


def test_hs256_signed_with_the_public_key_is_refused(idp):
    secret = _publicPEM(idp["RS256"])
    forged = handMade({"alg": "HS256", "typ": "JWT"}, claims(),
                      lambda data: hmac.new(secret, data, hashlib.sha256).digest())
    with pytest.raises(AuthenticationError, match="algorithm 'HS256' is not accepted"):
        credentialsFromToken(forged)


def test_wrong_audience_is_refused(idp):
    with pytest.raises(AuthenticationError, match="audience 'someone-else' does not include 'dirac'"):
        credentialsFromToken(token(idp, aud="someone-else"))


def test_audience_can_be_configured(idp, registry):
    gConfig.initialize(cfgFiles=[registry], options={f"{ISSUERS}/RS256IdP/Audience": "my-vo"}, fetchRemote=False)
    assert credentialsFromToken(token(idp, aud="my-vo"))["username"] == "alice"
    with pytest.raises(AuthenticationError, match="does not include 'my-vo'"):
        credentialsFromToken(token(idp))


def test_unknown_issuer_is_refused(idp):
    with pytest.raises(AuthenticationError, match="token issuer https://evil.example.org is not trusted"):
        credentialsFromToken(token(idp, iss="https://evil.example.org"))


def test_signature_by_another_key_is_refused(idp):
    with pytest.raises(AuthenticationError, match="signature is invalid"):
        credentialsFromToken(token(idp, key="other"))


def test_expired_token_is_refused_saying_when(idp):
    with pytest.raises(AuthenticationError, match=r"token expired at \d{4}-\d\d-\d\d"):
        credentialsFromToken(token(idp, exp=int(time.time()) - 120))


@pytest.mark.parametrize("field", ["nbf", "iat"])
def test_token_from_the_future_is_refused(idp, field):
    with pytest.raises(AuthenticationError, match="token is not valid before"):
        credentialsFromToken(token(idp, **{field: int(time.time()) + 600}))


def test_small_clock_skew_is_tolerated(idp):
    assert credentialsFromToken(token(idp, iat=int(time.time()) + 10))["username"] == "alice"


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud"])
def test_required_claims(idp, claim):
    with pytest.raises(AuthenticationError, match=f"lacks the required claim '{claim}'"):
        credentialsFromToken(token(idp, **{claim: None}))


def test_unregistered_subject_is_refused(idp):
    with pytest.raises(AuthenticationError, match="token subject nobody .* is not registered"):
        credentialsFromToken(token(idp, sub="nobody"))


def test_garbage_is_a_malformed_token(idp):
    with pytest.raises(AuthenticationError, match="malformed token"):
        credentialsFromToken("not.a.token")


def test_keys_from_a_jwks_url_are_fetched_once_and_cached(registry, keys):
    public = keys["RS256"].public_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    body = json.dumps({"keys": [dict(jwk, kid="k1", use="sig", alg="RS256")]}).encode()
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/jwks"
        gConfig.initialize(cfgFiles=[registry], options={f"{ISSUERS}/Web/Issuer": "https://web.example.org",
                                                         f"{ISSUERS}/Web/JWKSURL": url}, fetchRemote=False)
        signed = jwt.encode(claims(iss="https://web.example.org"), keys["RS256"], algorithm="RS256",
                            headers={"kid": "k1"})
        assert credentialsFromToken(signed)["username"] == "alice"
        assert credentialsFromToken(signed)["username"] == "alice"
        assert hits == ["/jwks"]
        unknownKid = jwt.encode(claims(iss="https://web.example.org"), keys["other"], algorithm="RS256",
                                headers={"kid": "k2"})
        with pytest.raises(AuthenticationError, match="cannot get the token signing key"):
            credentialsFromToken(unknownKid)
    finally:
        server.shutdown()
        server.server_close()
