"""A certificate chain with its private key: proxy files, proxy generation and chain verification."""

from __future__ import annotations

import datetime
import re
import secrets
from functools import cached_property
from pathlib import Path

from M2Crypto import ASN1, EVP, X509

from dirac.Core.Security import DER
from dirac.Core.Security.Keys import (
    extractPrivateKeyPEM,
    generateRSAKey,
    loadPrivateKey,
    privateKeyToPEM,
    publicKeyMatches,
    writePrivateFile,
)
from dirac.Core.Security.X509Certificate import (
    OID_DIRAC_GROUP,
    OID_PPL_INHERIT_ALL,
    OID_PPL_LIMITED,
    OID_PROXY_CERT_INFO,
    X509Certificate,
    asn1Time,
    commonNameOnlyLast,
    derExtension,
    newExtension,
    utcNow,
)
from dirac.Core.Security.X509Request import loadProxyRequest
from dirac.Core.Utilities.Exceptions import SecurityError

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
#: how far in the past a new proxy starts, to absorb clock skew between hosts
CLOCK_SKEW = datetime.timedelta(minutes=5)
OID_AUTHORITY_KEY_ID = "2.5.29.35"
OID_SUBJECT_KEY_ID = "2.5.29.14"


def _fmt(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _kind(cert: X509Certificate) -> str:
    return "proxy" if cert.isProxy else "certificate"


def _orderChain(leaf: X509Certificate, others: list[X509Certificate]) -> list[X509Certificate]:
    """``leaf`` followed by its issuers, then anything unrelated."""
    ordered, rest = [leaf], list(others)
    while rest and not ordered[-1].isSelfIssued:
        issuer = next((c for c in rest if c.subjectRDNs == ordered[-1].issuerRDNs), None)
        if issuer is None:
            break
        ordered.append(issuer)
        rest.remove(issuer)
    return ordered + rest


class X509Chain:
    """Certificates leaf first, with the leaf's private key when known."""

    def __init__(self, certs: list[X509Certificate], key: EVP.PKey | None = None):
        if not certs:
            raise SecurityError("an X509 chain needs at least one certificate")
        if key is not None and not publicKeyMatches(certs[0].publicKey, key):
            raise SecurityError(f"the private key does not match the certificate {certs[0].subjectDN}")
        self.certs = certs
        self.key = key

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def fromPEM(cls, data: bytes | str, passphrase: bytes | str | None = None,
                source: str = "the PEM data") -> X509Chain:
        """A chain from PEM text: certificates in any order, optionally the leaf's private key."""
        raw = data.encode() if isinstance(data, str) else data
        certs = [X509Certificate.fromPEM(block) for block in _PEM_CERT.findall(raw)]
        if not certs:
            raise SecurityError(f"no certificate found in {source}")
        keyPEM = extractPrivateKeyPEM(raw)
        key = loadPrivateKey(keyPEM, passphrase, source) if keyPEM else None
        leaf = certs[0]
        if key is not None:
            leaf = next((c for c in certs if publicKeyMatches(c.publicKey, key)), None)
            if leaf is None:
                raise SecurityError(f"the private key in {source} matches none of its certificates")
        return cls(_orderChain(leaf, [c for c in certs if c is not leaf]), key)

    @classmethod
    def fromFile(cls, path: str | Path, passphrase: bytes | str | None = None) -> X509Chain:
        """A chain from a proxy file (proxy, its key, then the rest of the chain)."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError as exc:
            raise SecurityError(f"no proxy or certificate file at {path}") from exc
        except OSError as exc:
            raise SecurityError(f"cannot read {path}: {exc.strerror}") from exc
        return cls.fromPEM(data, passphrase, source=str(path))

    @classmethod
    def fromCertAndKeyFiles(cls, certPath: str | Path, keyPath: str | Path,
                            passphrase: bytes | str | None = None) -> X509Chain:
        """A chain from a certificate file (possibly with its CA chain) and a separate key file."""
        try:
            certData = Path(certPath).read_bytes()
            keyData = Path(keyPath).read_bytes()
        except OSError as exc:
            raise SecurityError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        keyPEM = extractPrivateKeyPEM(keyData)
        if keyPEM is None:
            raise SecurityError(f"no private key found in {keyPath}")
        certs = [X509Certificate.fromPEM(block) for block in _PEM_CERT.findall(certData)]
        if not certs:
            raise SecurityError(f"no certificate found in {certPath}")
        key = loadPrivateKey(keyPEM, passphrase, str(keyPath))
        leaf = next((c for c in certs if publicKeyMatches(c.publicKey, key)), None)
        if leaf is None:
            raise SecurityError(f"the private key in {keyPath} does not match the certificate in {certPath}")
        return cls(_orderChain(leaf, [c for c in certs if c is not leaf]), key)

    @classmethod
    def fromCertificates(cls, certs: list[X509Certificate]) -> X509Chain:
        """A chain (no key) from certificates already in leaf-first order."""
        return cls(list(certs))

    # -- what the chain says ---------------------------------------------------------------
    @property
    def hasKey(self) -> bool:
        return self.key is not None

    @property
    def leaf(self) -> X509Certificate:
        return self.certs[0]

    @property
    def identityCertificate(self) -> X509Certificate:
        """The first non-proxy certificate: the user's or host's own certificate."""
        for cert in self.certs:
            if not cert.isProxy:
                return cert
        raise SecurityError(f"the chain of {self.leaf.subjectDN} has only proxies: its identity certificate is missing")

    @property
    def identityDN(self) -> str:
        return self.identityCertificate.subjectDN

    @property
    def isProxy(self) -> bool:
        return self.leaf.isProxy

    @property
    def isLimitedProxy(self) -> bool:
        """True when any proxy level is limited."""
        return any(c.isLimitedProxy for c in self._proxies())

    @property
    def diracGroup(self) -> str | None:
        """The DIRAC group of the leaf-most proxy that carries one."""
        for cert in self._proxies():
            if cert.diracGroup:
                return cert.diracGroup
        return None

    @cached_property
    def notAfter(self) -> datetime.datetime:
        """When the first certificate of the chain expires."""
        return min(c.notAfter for c in self.certs)

    @property
    def remainingSeconds(self) -> int:
        """Seconds until the chain expires (0 when expired)."""
        return max(0, int((self.notAfter - datetime.datetime.now(datetime.UTC)).total_seconds()))

    def _proxies(self) -> list[X509Certificate]:
        proxies = []
        for cert in self.certs:
            if not cert.isProxy:
                break
            proxies.append(cert)
        return proxies

    # -- proxies ---------------------------------------------------------------------------
    def generateProxy(self, lifetime_s: int, group: str | None = None, limited: bool = False,
                      bits: int = 2048, *, validFrom: datetime.datetime | None = None) -> X509Chain:
        """A new RFC 3820 proxy signed by this chain's key, with the rest of this chain behind it.

        ``validFrom`` (default now) starts the lifetime; notBefore is a few minutes earlier
        for clock skew; notAfter never goes beyond this chain's. Tests get an already expired
        proxy with a negative lifetime or a ``validFrom`` in the past.
        """
        key = generateRSAKey(bits)
        cert = self._signProxy(key, lifetime_s, group, limited, validFrom)
        return X509Chain([cert] + self.certs, key)

    def generateChainFromRequest(self, requestPEM: bytes | str, lifetime_s: int, group: str | None = None,
                                 limited: bool = False) -> X509Chain:
        """A proxy for the public key of a PKCS#10 request (delegation: the requester keeps its key).

        The chain has no key; the proxy is limited when ``limited`` or when the request asks for it.
        """
        publicKey, requestsLimited = loadProxyRequest(requestPEM)
        return X509Chain.fromCertificates([self._signProxy(publicKey, lifetime_s, group, limited or requestsLimited,
                                                           None)] + self.certs)

    def _signProxy(self, publicKey: EVP.PKey, lifetime_s: int, group: str | None, limited: bool,
                   validFrom: datetime.datetime | None) -> X509Certificate:
        if self.key is None:
            raise SecurityError(f"cannot sign a proxy for {self.leaf.subjectDN}: the private key is not loaded")
        now = utcNow()
        if validFrom is None and lifetime_s > 0 and self.notAfter <= now:
            raise SecurityError(f"cannot make a proxy: {self.leaf.subjectDN} expired on {_fmt(self.notAfter)}")
        issuer = self.leaf
        if issuer.isLimitedProxy and not limited:
            raise SecurityError(f"the limited proxy {issuer.subjectDN} can only issue limited proxies")
        start = (validFrom or now).astimezone(datetime.UTC).replace(microsecond=0)
        serial = secrets.randbelow(2**63 - 1) + 1

        cert = X509.X509()
        cert.set_version(2)
        cert.set_serial_number(serial)
        cert.set_issuer(issuer.m2.get_subject())
        cert.set_subject(issuer.m2.get_subject())
        cert.get_subject().add_entry_by_txt(field="CN", type=ASN1.MBSTRING_ASC, entry=str(serial),
                                            len=-1, loc=-1, set=0)
        notAfter = min(start + datetime.timedelta(seconds=lifetime_s), self.notAfter)
        cert.set_not_before(asn1Time(min(start, notAfter) - CLOCK_SKEW))
        cert.set_not_after(asn1Time(notAfter))
        cert.set_pubkey(publicKey)

        language = OID_PPL_LIMITED if limited else OID_PPL_INHERIT_ALL
        proxyInfo = DER.encode(DER.SEQUENCE, DER.encode(DER.SEQUENCE, DER.encodeOID(language)))
        cert.add_ext(derExtension(OID_PROXY_CERT_INFO, proxyInfo, critical=True))
        cert.add_ext(newExtension("keyUsage", "digitalSignature,keyEncipherment", critical=True))
        issuerKeyId = issuer.extensions.get(OID_SUBJECT_KEY_ID)
        if issuerKeyId is not None:
            keyId, _ = DER.readTLV(issuerKeyId.value)
            cert.add_ext(derExtension(OID_AUTHORITY_KEY_ID, DER.encode(DER.SEQUENCE, DER.encode(0x80, keyId.value))))
        group = group or self.diracGroup
        if group:
            if not group.isascii() or len(group) > 255:
                raise SecurityError(f"invalid DIRAC group name {group!r}")
            cert.add_ext(derExtension(OID_DIRAC_GROUP, DER.ia5String(group)))
        cert.sign(self.key, "sha256")
        return X509Certificate(cert)

    # -- output ----------------------------------------------------------------------------
    def toPEM(self) -> bytes:
        """Proxy-file order: leaf certificate, its private key (if any), the rest of the chain."""
        parts = [self.leaf.toPEM()]
        if self.key is not None:
            parts.append(privateKeyToPEM(self.key))
        parts.extend(c.toPEM() for c in self.certs[1:])
        return b"".join(parts)

    def certificatesPEM(self) -> bytes:
        """All certificates, leaf first, without the key."""
        return b"".join(c.toPEM() for c in self.certs)

    def dumpToFile(self, path: str | Path) -> Path:
        """Write the proxy file atomically with mode 0600 and return its path."""
        path = Path(path)
        writePrivateFile(path, self.toPEM())
        return path

    # -- verification ----------------------------------------------------------------------
    def verify(self, caDir: str | Path) -> None:
        """Check dates, signatures and proxy rules up to a CA in ``caDir``; raises SecurityError."""
        caPath = Path(caDir)
        if not caPath.is_dir():
            raise SecurityError(f"CA directory {caDir} does not exist")
        now = datetime.datetime.now(datetime.UTC)
        for index, cert in enumerate(self.certs):
            _checkDates(cert, now)
            if cert.isProxy:
                _checkProxyStep(cert, self.certs[index + 1] if index + 1 < len(self.certs) else None)
                continue
            anchors = findIssuersInCADir(cert, caPath)
            if anchors:
                signers = [anchor for anchor in anchors if cert.isSignedBy(anchor)]
                if not signers:
                    raise SecurityError(f"bad signature: {cert.subjectDN} was not signed by the CA {cert.issuerDN}")
                if not any(a.notBefore <= now <= a.notAfter for a in signers):
                    _checkDates(signers[0], now)
                return
            nextCert = self.certs[index + 1] if index + 1 < len(self.certs) else None
            if nextCert is None or nextCert.subjectRDNs != cert.issuerRDNs or cert.isSelfIssued:
                raise SecurityError(f"unknown CA: the issuer {cert.issuerDN} of {cert.subjectDN} is not in {caDir}")
            if not nextCert.isCA or nextCert.isProxy:
                raise SecurityError(f"{nextCert.subjectDN} is not a CA, so it cannot issue {cert.subjectDN}")
            if not cert.isSignedBy(nextCert):
                raise SecurityError(f"bad signature: {cert.subjectDN} was not signed by {nextCert.subjectDN}")
        raise SecurityError(f"unknown CA: the chain of {self.leaf.subjectDN} ends without a CA from {caDir}")

    def __repr__(self) -> str:
        return f"<X509Chain {self.leaf.subjectDN} ({len(self.certs)} certificates, key={self.hasKey})>"


def _checkDates(cert: X509Certificate, now: datetime.datetime) -> None:
    if now > cert.notAfter:
        raise SecurityError(f"{_kind(cert)} {cert.subjectDN} expired on {_fmt(cert.notAfter)}")
    if now < cert.notBefore:
        raise SecurityError(f"{_kind(cert)} {cert.subjectDN} is not valid before {_fmt(cert.notBefore)}")


def _checkProxyStep(proxy: X509Certificate, issuer: X509Certificate | None) -> None:
    """A proxy must be signed by the next certificate and extend its subject by one CN."""
    if issuer is None or issuer.subjectRDNs != proxy.issuerRDNs:
        raise SecurityError(f"the chain lacks the issuer {proxy.issuerDN} of proxy {proxy.subjectDN}")
    if proxy.subjectRDNs[:-1] != issuer.subjectRDNs or not commonNameOnlyLast(proxy):
        raise SecurityError(f"proxy subject {proxy.subjectDN} does not extend its issuer's subject "
                            f"{issuer.subjectDN} by one CN")
    if proxy.isCA or issuer.isCA:
        raise SecurityError(f"proxy {proxy.subjectDN} claims to be or to be issued by a CA: proxies may not be CAs")
    if issuer.isLimitedProxy and not proxy.isLimitedProxy:
        raise SecurityError(f"limited proxy {issuer.subjectDN} cannot issue the full proxy {proxy.subjectDN}")
    if not proxy.isSignedBy(issuer):
        raise SecurityError(f"bad signature: proxy {proxy.subjectDN} was not signed by the key of {issuer.subjectDN}")


def findIssuersInCADir(cert: X509Certificate, caDir: str | Path) -> list[X509Certificate]:
    """The CA certificates in ``caDir`` (OpenSSL hash layout) whose subject is ``cert``'s issuer."""
    found = []
    for candidate in sorted(Path(caDir).glob(f"{cert.issuerHash}.[0-9]*")):
        try:
            ca = X509Certificate.fromFile(candidate)
        except SecurityError:
            continue
        if ca.subjectRDNs == cert.issuerRDNs:
            found.append(ca)
    return found
