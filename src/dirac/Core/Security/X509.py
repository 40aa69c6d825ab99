"""X509 certificates and proxy chains: the names the rest of the code imports.

``X509Certificate`` and ``X509Chain`` live in their own modules; this one gathers them and
adds the bridge from a TLS connection to the chain the peer presented.
"""

from __future__ import annotations

import ssl
from typing import Any

from dirac.Core.Security.X509Certificate import (
    OID_DIRAC_GROUP,
    OID_PPL_INHERIT_ALL,
    OID_PPL_LIMITED,
    OID_PROXY_CERT_INFO,
    X509Certificate,
    dnToX509Name,
)
from dirac.Core.Security.X509Chain import X509Chain, findIssuersInCADir
from dirac.Core.Utilities.Exceptions import SecurityError

__all__ = [
    "OID_DIRAC_GROUP", "OID_PPL_INHERIT_ALL", "OID_PPL_LIMITED", "OID_PROXY_CERT_INFO",
    "X509Certificate", "X509Chain", "dnToX509Name", "findIssuersInCADir", "peerChainFromSSLObject",
]


def _toDER(item: Any) -> bytes:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    return item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]


def peerChainFromSSLObject(sslobj: Any) -> X509Chain:
    """The chain the TLS peer presented, as OpenSSL verified it, leaf first (no key).

    ``sslobj`` may be an ``ssl.SSLSocket`` (e.g. Tornado's ``request.connection.stream.socket``),
    an ``ssl.SSLObject`` or the internal ``_ssl._SSLSocket`` (``sslsock._sslobj``). CPython 3.11
    and 3.12 only offer the private ``_sslobj.get_verified_chain()``, returning
    ``_ssl.Certificate`` objects whose DER is ``cert.public_bytes(ssl._ssl.ENCODING_DER)``;
    3.13+ also has the public ``SSLSocket.get_verified_chain()`` returning DER bytes. Both are
    handled. The context must have verified the peer (``CERT_REQUIRED``, and
    ``VERIFY_ALLOW_PROXY_CERTS`` for proxies), otherwise there is no verified chain.
    """
    inner = getattr(sslobj, "_sslobj", None) or sslobj
    getter = getattr(inner, "get_verified_chain", None) or getattr(sslobj, "get_verified_chain", None)
    if getter is None:
        raise SecurityError("this Python's ssl module cannot report the peer's verified chain")
    chain = getter()
    if not chain:
        raise SecurityError("the TLS peer presented no verified certificate")
    return X509Chain.fromCertificates([X509Certificate.fromDER(_toDER(item)) for item in chain])
