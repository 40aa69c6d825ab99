"""PKCS#10 requests for proxy delegation: the requester keeps its new private key, the signer returns a proxy.

A request for a limited proxy carries ``CN=limited proxy`` in its subject (as DIRAC's requests do);
other requests carry ``CN=proxy``. The signer only takes the public key from the request, after
checking the request's own signature (proof that the requester holds the private key).
"""

from __future__ import annotations

from M2Crypto import EVP, X509

from dirac.Core.Security.Keys import generateRSAKey
from dirac.Core.Utilities.Exceptions import SecurityError

LIMITED_CN = "limited proxy"
FULL_CN = "proxy"


def generateProxyRequest(bits: int = 2048, limited: bool = False) -> tuple[bytes, EVP.PKey]:
    """(request PEM, its new private key) for asking a delegated proxy."""
    key = generateRSAKey(bits)
    request = X509.Request()
    request.set_version(0)
    name = X509.X509_Name()
    name.CN = LIMITED_CN if limited else FULL_CN
    request.set_subject_name(name)
    request.set_pubkey(key)
    request.sign(key, "sha256")
    return request.as_pem(), key


def loadProxyRequest(pem: bytes | str) -> tuple[EVP.PKey, bool]:
    """(public key, whether a limited proxy is asked) of a request whose signature is valid."""
    raw = pem.encode() if isinstance(pem, str) else pem
    try:
        request = X509.load_request_string(raw, X509.FORMAT_PEM)
        publicKey = request.get_pubkey()
        valid = request.verify(publicKey) == 1
    except (X509.X509Error, EVP.EVPError, ValueError) as exc:
        raise SecurityError(f"invalid certificate request: {exc}") from exc
    if not valid:
        raise SecurityError("invalid certificate request: its signature does not match its public key")
    if publicKey.size() * 8 < 1024:
        raise SecurityError(f"the certificate request's key is too weak ({publicKey.size() * 8} bits)")
    commonNames = request.get_subject().get_entries_by_nid(X509.X509_Name.nid["CN"])
    limited = any(entry.get_data().as_text() == LIMITED_CN for entry in commonNames)
    return publicKey, limited
