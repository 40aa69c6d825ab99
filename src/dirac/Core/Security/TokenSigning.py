"""The keys of DIRAC's own authorization server (``https://<host>:<port>/auth``).

The server signs its access and ID tokens with one RSA key (RS256). Options, in the
``/DIRAC/Security/Authorization`` section (DIRAC's place for the authorization server):

* ``issuer``: its URL, the ``iss`` of its tokens (``dirac-server init`` sets ``https://<host>:<port>/auth``);
* ``SigningKeyFile``: the private key, PEM, mode 0600, only on the hosts that run the authorization
  server (their local configuration; ``dirac-server init`` creates ``etc/auth-signing-key.pem``);
* ``Audience``: the ``aud`` of its access tokens (default ``dirac``, as for identity providers).

A host holding the key file verifies tokens with it; any other host reads the public key from
the issuer's discovery document and key set (``<issuer>/jwk``), over TLS checked against the CA
directory, cached like an identity provider's keys. The key id (``kid``) is the key's RFC 7638
thumbprint. The private key is never logged and never leaves the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from dirac.Core.Config import gConfig
from dirac.Core.Security import IdProviders
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Utilities.Exceptions import AuthenticationError, ConfigurationError

SIGNING_KEY_FILE = f"{IdProviders.AUTHORIZATION}/SigningKeyFile"
ALGORITHM = "RS256"


@dataclass(frozen=True)
class SigningKey:
    """The authorization server's private key with its public JWK and key id."""

    privateKey: rsa.RSAPrivateKey
    kid: str

    @property
    def publicKey(self) -> rsa.RSAPublicKey:
        return self.privateKey.public_key()

    @property
    def publicJWK(self) -> dict[str, str]:
        jwk = RSAAlgorithm.to_jwk(self.publicKey, as_dict=True)
        return {"kty": "RSA", "n": jwk["n"], "e": jwk["e"], "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    @property
    def privatePEM(self) -> bytes:
        return self.privateKey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint (SHA-256, base64url) of an RSA public JWK."""
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _fromPrivateKey(key: rsa.RSAPrivateKey) -> SigningKey:
    return SigningKey(key, thumbprint(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)))


def createSigningKeyFile(path: str | Path, bits: int = 2048) -> SigningKey:
    """A new RSA key written to ``path`` with mode 0600 (``dirac-server init``)."""
    key = _fromPrivateKey(rsa.generate_private_key(public_exponent=65537, key_size=bits))
    writePrivateFile(path, key.privatePEM)
    return key


_cache: dict[tuple[str, float], SigningKey] = {}
_lock = threading.Lock()


def localSigningKey() -> SigningKey | None:
    """The key of ``SigningKeyFile`` (cached until the file changes); None when the option is unset."""
    path = gConfig.getValue(SIGNING_KEY_FILE, "")
    if not path:
        return None
    try:
        mtime = Path(path).stat().st_mtime
        with _lock:
            if (path, mtime) in _cache:
                return _cache[(path, mtime)]
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the authorization server's key {path} ({SIGNING_KEY_FILE}): "
                                 f"{exc.strerror}") from exc
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} ({SIGNING_KEY_FILE}) holds no unencrypted PEM private key") from exc
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ConfigurationError(f"{path} ({SIGNING_KEY_FILE}) must hold an RSA key")
    key = _fromPrivateKey(private)
    with _lock:
        _cache.clear()
        _cache[(path, mtime)] = key
    return key


def signingKey() -> SigningKey:
    """The key that signs this server's tokens; ConfigurationError naming the option when missing."""
    key = localSigningKey()
    if key is None:
        raise ConfigurationError(f"the authorization server has no signing key: set {SIGNING_KEY_FILE}")
    return key


def derivedSecret(purpose: str) -> bytes:
    """A Fernet key for ``purpose``, derived from the signing key (HKDF-SHA256): the server encrypts what it keeps
    (identity providers' refresh tokens) without another secret file to manage."""
    from dirac.Core.Security.Keys import derivedKey

    material = signingKey().privateKey.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    return derivedKey(material, purpose)


def verificationKey(kid: str | None) -> Any:
    """The public key that verifies a token of this server with key id ``kid``."""
    local = localSigningKey()
    if local is not None:
        if kid is not None and kid != local.kid:
            raise AuthenticationError(f"token signing key {kid!r} is not the authorization server's key")
        return local.publicKey
    server = IdProviders.authorizationServer()
    if server is None:
        raise AuthenticationError("no authorization server is configured (/DIRAC/Security/Authorization/issuer)")
    return IdProviders.signingKey(server, kid)
