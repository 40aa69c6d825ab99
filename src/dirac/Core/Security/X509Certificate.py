"""One X509 certificate: DNs in DIRAC's slash form, validity, proxy and DIRAC group extensions."""

from __future__ import annotations

import datetime
import hashlib
import re
from functools import cached_property
from pathlib import Path

from M2Crypto import ASN1, EVP, X509

from dirac.Core.Security import DER
from dirac.Core.Utilities.Exceptions import SecurityError

#: RFC 3820 proxyCertInfo extension (must be critical)
OID_PROXY_CERT_INFO = "1.3.6.1.5.5.7.1.14"
#: the pre-RFC (Globus "draft") proxyCertInfo extension, still recognised when reading
OID_PROXY_CERT_INFO_DRAFT = "1.3.6.1.4.1.3536.1.222"
#: RFC 3820 policy language: the proxy inherits all rights of its issuer
OID_PPL_INHERIT_ALL = "1.3.6.1.5.5.7.21.1"
#: RFC 3820 policy language: the proxy has no rights of its own (independent)
OID_PPL_INDEPENDENT = "1.3.6.1.5.5.7.21.2"
#: Globus policy language of a limited proxy (may not be used to start jobs)
OID_PPL_LIMITED = "1.3.6.1.4.1.3536.1.1.1.9"
#: DIRAC group extension: IA5String with the group name
OID_DIRAC_GROUP = "1.2.42.42"
OID_BASIC_CONSTRAINTS = "2.5.29.19"
OID_COMMON_NAME = "2.5.4.3"

_SHORT_NAMES = {
    "2.5.4.6": "C", "2.5.4.8": "ST", "2.5.4.7": "L", "2.5.4.10": "O", "2.5.4.11": "OU",
    OID_COMMON_NAME: "CN", "2.5.4.5": "serialNumber", "2.5.4.4": "SN", "2.5.4.42": "GN",
    "2.5.4.12": "title", "2.5.4.9": "street", "2.5.4.17": "postalCode",
    "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
_DN_SPLIT = re.compile(r"/(?=[A-Za-z][A-Za-z0-9.]*=)")


def _decodeString(tag: int, value: bytes) -> str:
    if tag == 0x1E:  # BMPString
        return value.decode("utf-16-be", "replace")
    if tag == 0x1C:  # UniversalString
        return value.decode("utf-32-be", "replace")
    if tag == 0x14:  # T61String: in practice latin-1
        return value.decode("latin-1")
    return value.decode("utf-8", "replace")


def rdnsToDN(rdns: list[bytes]) -> str:
    """DIRAC's slash form ("/C=ch/O=DIRAC/CN=alice") of a list of encoded RDNs."""
    parts = []
    for rdn in rdns:
        rdnSet, _ = DER.readTLV(rdn)
        values = []
        for attribute in DER.children(rdnSet.value):
            oid, value = DER.children(attribute.value)
            name = DER.decodeOID(oid.value)
            values.append(f"{_SHORT_NAMES.get(name, name)}={_decodeString(value.tag, value.value)}")
        parts.append("/" + "+".join(values))
    return "".join(parts)


def dnToX509Name(dn: str) -> X509.X509_Name:
    """An M2Crypto name from DIRAC's slash form; raises SecurityError when it is not one."""
    if not dn.startswith("/") or "=" not in dn:
        raise SecurityError(f"{dn!r} is not a DN of the form /O=Org/CN=name")
    name = X509.X509_Name()
    for part in _DN_SPLIT.split(dn[1:]):
        field, _, value = part.partition("=")
        kind = ASN1.MBSTRING_ASC if value.isascii() else ASN1.MBSTRING_FLAG  # MBSTRING_FLAG alone = UTF-8
        try:
            name.add_entry_by_txt(field=field, type=kind, entry=value.encode(), len=-1, loc=-1, set=0)
        except X509.X509Error as exc:
            raise SecurityError(f"bad attribute {part!r} in DN {dn!r}: {exc}") from exc
    return name


def nameHash(name: X509.X509_Name) -> str:
    """The subject-name hash OpenSSL uses for file names in a CA directory (``openssl x509 -hash``)."""
    return f"{name.as_hash():08x}"


class X509Certificate:
    """An immutable view of one certificate (wraps an M2Crypto X509 object)."""

    def __init__(self, cert: X509.X509):
        self._cert = cert
        self._der: bytes = cert.as_der()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def fromPEM(cls, data: bytes | str) -> X509Certificate:
        """The first certificate in PEM text."""
        raw = data.encode() if isinstance(data, str) else data
        try:
            return cls(X509.load_cert_string(raw, X509.FORMAT_PEM))
        except X509.X509Error as exc:
            raise SecurityError(f"cannot read a PEM certificate: {exc}") from exc

    @classmethod
    def fromDER(cls, data: bytes) -> X509Certificate:
        """A certificate from its DER encoding."""
        try:
            return cls(X509.load_cert_der_string(data))
        except X509.X509Error as exc:
            raise SecurityError(f"cannot read a DER certificate: {exc}") from exc

    @classmethod
    def fromFile(cls, path: str | Path) -> X509Certificate:
        """The first certificate of a PEM (or DER) file."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SecurityError(f"cannot read certificate file {path}: {exc.strerror}") from exc
        return cls.fromPEM(data) if b"-----BEGIN" in data else cls.fromDER(data)

    # -- identity --------------------------------------------------------------------------
    @property
    def m2(self) -> X509.X509:
        """The underlying M2Crypto certificate."""
        return self._cert

    @cached_property
    def subjectRDNs(self) -> list[bytes]:
        """The encoded RDNs of the subject name."""
        return DER.subjectRDNs(self._der)

    @cached_property
    def issuerRDNs(self) -> list[bytes]:
        """The encoded RDNs of the issuer name."""
        return DER.issuerRDNs(self._der)

    @property
    def subjectDN(self) -> str:
        """Subject in DIRAC's slash form."""
        return rdnsToDN(self.subjectRDNs)

    @property
    def issuerDN(self) -> str:
        """Issuer in DIRAC's slash form."""
        return rdnsToDN(self.issuerRDNs)

    @property
    def subjectHash(self) -> str:
        """OpenSSL's hash of the subject name (CA directory file name)."""
        return nameHash(self._cert.get_subject())

    @property
    def issuerHash(self) -> str:
        """OpenSSL's hash of the issuer name (where to look for the issuer in a CA directory)."""
        return nameHash(self._cert.get_issuer())

    @property
    def serial(self) -> int:
        return int(self._cert.get_serial_number())

    @property
    def isSelfIssued(self) -> bool:
        """True when subject and issuer names are the same (a root CA)."""
        return self.subjectRDNs == self.issuerRDNs

    # -- validity --------------------------------------------------------------------------
    @cached_property  # a certificate never changes; parsing its ASN.1 time costs ~30 us
    def notBefore(self) -> datetime.datetime:
        """Start of validity (aware, UTC)."""
        return self._cert.get_not_before().get_datetime().astimezone(datetime.UTC)

    @cached_property
    def notAfter(self) -> datetime.datetime:
        """End of validity (aware, UTC)."""
        return self._cert.get_not_after().get_datetime().astimezone(datetime.UTC)

    @property
    def remainingSeconds(self) -> int:
        """Seconds until expiry (0 when expired)."""
        left = (self.notAfter - datetime.datetime.now(datetime.UTC)).total_seconds()
        return max(0, int(left))

    # -- extensions ------------------------------------------------------------------------
    @cached_property
    def extensions(self) -> dict[str, DER.Extension]:
        """The extensions by dotted OID."""
        return DER.certificateExtensions(self._der)

    @property
    def isProxy(self) -> bool:
        """True for an RFC 3820 proxy (critical proxyCertInfo)."""
        return OID_PROXY_CERT_INFO in self.extensions or OID_PROXY_CERT_INFO_DRAFT in self.extensions

    @cached_property
    def proxyPolicyLanguage(self) -> str | None:
        """The proxy's policy language OID (None for a non-proxy)."""
        ext = self.extensions.get(OID_PROXY_CERT_INFO) or self.extensions.get(OID_PROXY_CERT_INFO_DRAFT)
        if ext is None:
            return None
        info, _ = DER.readTLV(ext.value)
        for part in DER.children(info.value):
            if part.tag == DER.SEQUENCE:  # ProxyPolicy, after the optional path length
                return DER.decodeOID(DER.children(part.value)[0].value)
        raise SecurityError(f"proxy {self.subjectDN} has a malformed proxyCertInfo extension")

    @property
    def isLimitedProxy(self) -> bool:
        """True for a limited proxy (Globus limited policy language)."""
        return self.proxyPolicyLanguage == OID_PPL_LIMITED

    @property
    def isCA(self) -> bool:
        """True when basicConstraints says cA."""
        ext = self.extensions.get(OID_BASIC_CONSTRAINTS)
        if ext is None:
            return False
        constraints, _ = DER.readTLV(ext.value)
        parts = DER.children(constraints.value)
        return bool(parts) and parts[0].tag == DER.BOOLEAN and parts[0].value != b"\x00"

    @property
    def diracGroup(self) -> str | None:
        """The DIRAC group carried in extension 1.2.42.42, or None."""
        ext = self.extensions.get(OID_DIRAC_GROUP)
        if ext is None:
            return None
        value, _ = DER.readTLV(ext.value)
        return value.value.decode("ascii", "replace")

    # -- keys and signatures ---------------------------------------------------------------
    @property
    def publicKey(self) -> EVP.PKey:
        return self._cert.get_pubkey()

    @property
    def subjectKeyId(self) -> bytes:
        """SHA-1 of the subjectPublicKey (RFC 5280 method 1)."""
        return hashlib.sha1(DER.subjectPublicKeyBits(self._der)).digest()

    def isSignedBy(self, issuer: X509Certificate) -> bool:
        """True when ``issuer``'s key verifies this certificate's signature."""
        try:
            return self._cert.verify(issuer.publicKey) == 1
        except (X509.X509Error, EVP.EVPError, ValueError):
            return False

    # -- encodings -------------------------------------------------------------------------
    def toPEM(self) -> bytes:
        return self._cert.as_pem()

    def toDER(self) -> bytes:
        return self._der

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X509Certificate) and other._der == self._der

    def __hash__(self) -> int:
        return hash(self._der)

    def __repr__(self) -> str:
        return f"<X509Certificate {self.subjectDN} issued by {self.issuerDN}>"


def commonNameOnlyLast(cert: X509Certificate) -> bool:
    """True when the subject's last RDN is a single CN (required of a proxy)."""
    return bool(cert.subjectRDNs) and DER.rdnAttributes(cert.subjectRDNs[-1]) == [OID_COMMON_NAME]


def utcNow() -> datetime.datetime:
    """Now, aware, UTC, whole seconds (certificates carry no fractions)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def asn1Time(when: datetime.datetime) -> ASN1.ASN1_TIME:
    """An M2Crypto time for ``when``."""
    value = ASN1.ASN1_TIME()
    value.set_datetime(when.astimezone(datetime.UTC))
    return value


def newExtension(oidOrName: str, value: str, critical: bool = False) -> X509.X509_Extension:
    """An extension from OpenSSL's config syntax (e.g. ``DER:30:00`` or ``CA:TRUE``)."""
    return X509.new_extension(oidOrName, value, critical=1 if critical else 0)


def derExtension(oid: str, der: bytes, critical: bool = False) -> X509.X509_Extension:
    """An extension whose value is given as DER bytes."""
    return newExtension(oid, "DER:" + ":".join(f"{b:02x}" for b in der), critical)

