"""A small project-local certificate authority issuing host and user certificates.

Directory layout: ``cacert.pem``, ``cakey.pem`` (0600) and ``serial`` (the next serial
number). ``installInCertificatesDir`` publishes the CA certificate under OpenSSL's hash
name, as found in ``/etc/grid-security/certificates``.
"""

from __future__ import annotations

import base64
import datetime
import fcntl
import ipaddress
import re
import secrets
from pathlib import Path

from M2Crypto import EVP, X509

from dirac.Core.Security import DER
from dirac.Core.Security.Keys import generateRSAKey, loadPrivateKey, privateKeyToPEM, writePrivateFile
from dirac.Core.Security.X509Certificate import (
    X509Certificate,
    asn1Time,
    derExtension,
    dnToX509Name,
    newExtension,
    utcNow,
)
from dirac.Core.Utilities.Exceptions import SecurityError
from dirac.Core.Utilities.Logging import getLogger

log = getLogger("Security/CA")

DEFAULT_CA_SUBJECT = "/O=DIRAC-Seed/CN=DIRAC Seed CA"
OID_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
OID_CRL_NUMBER = "2.5.29.20"
_LAST_CN = re.compile(r"/CN=[^/]*$")


def _keyIdExtensions(subjectKey: EVP.PKey, issuerKey: EVP.PKey) -> list[X509.X509_Extension]:
    skid = DER.encode(DER.OCTET_STRING, subjectKey.get_key_identifier())
    akid = DER.encode(DER.SEQUENCE, DER.encode(0x80, issuerKey.get_key_identifier()))
    return [derExtension("2.5.29.14", skid), derExtension("2.5.29.35", akid)]


def _altNames(hostname: str, altNames: list[str]) -> str:
    entries = []
    for name in [hostname, *altNames]:
        try:
            entry = f"IP:{ipaddress.ip_address(name)}"
        except ValueError:
            entry = f"DNS:{name}"
        if entry not in entries:
            entries.append(entry)
    return ",".join(entries)


class CertificateAuthority:
    """Create or load a CA in ``directory`` and issue certificates with it."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._cert: X509Certificate | None = None
        self._key: EVP.PKey | None = None

    @property
    def certPath(self) -> Path:
        return self.directory / "cacert.pem"

    @property
    def keyPath(self) -> Path:
        return self.directory / "cakey.pem"

    @property
    def serialPath(self) -> Path:
        return self.directory / "serial"

    @property
    def certificate(self) -> X509Certificate:
        """The CA certificate (loads the CA when needed)."""
        if self._cert is None:
            self.load()
        assert self._cert is not None
        return self._cert

    def exists(self) -> bool:
        return self.certPath.exists() and self.keyPath.exists()

    # -- life cycle ------------------------------------------------------------------------
    def create(self, subject: str = DEFAULT_CA_SUBJECT, days: int = 3650, bits: int = 2048,
               overwrite: bool = False) -> X509Certificate:
        """Make a new self-signed CA; refuses to replace an existing one unless ``overwrite``."""
        if self.exists() and not overwrite:
            raise SecurityError(f"a CA already exists in {self.directory}")
        key = generateRSAKey(bits)
        cert = X509.X509()
        cert.set_version(2)
        cert.set_serial_number(secrets.randbelow(2**63 - 1) + 1)
        name = dnToX509Name(subject)
        cert.set_subject(name)
        cert.set_issuer(name)
        now = utcNow()
        cert.set_not_before(asn1Time(now - datetime.timedelta(minutes=5)))
        cert.set_not_after(asn1Time(now + datetime.timedelta(days=days)))
        cert.set_pubkey(key)
        cert.add_ext(newExtension("basicConstraints", "CA:TRUE", critical=True))
        cert.add_ext(newExtension("keyUsage", "keyCertSign,cRLSign", critical=True))
        for ext in _keyIdExtensions(key, key):
            cert.add_ext(ext)
        cert.sign(key, "sha256")
        self.directory.mkdir(parents=True, exist_ok=True)
        writePrivateFile(self.keyPath, privateKeyToPEM(key))
        writePrivateFile(self.certPath, cert.as_pem(), mode=0o644)
        self.serialPath.write_text("1\n")
        self._cert, self._key = X509Certificate(cert), key
        log.info("Created CA %s in %s", subject, self.directory)
        return self._cert

    def load(self) -> CertificateAuthority:
        """Read the CA certificate and key from the directory."""
        if not self.exists():
            raise SecurityError(f"no CA in {self.directory}: create one first (dirac-ca init)")
        self._cert = X509Certificate.fromFile(self.certPath)
        self._key = loadPrivateKey(self.keyPath.read_bytes(), source=str(self.keyPath))
        return self

    def _nextSerial(self) -> int:
        """The next serial number, taken under a file lock so two processes never share one."""
        with open(self.serialPath, "a+") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            stream.seek(0)
            text = stream.read().strip()
            # a lost serial file must not restart at 1 and reuse numbers already issued
            serial = int(text) if text else secrets.randbelow(2**48) + 2**32
            stream.seek(0)
            stream.truncate()
            stream.write(f"{serial + 1}\n")
        return serial

    # -- issuing ---------------------------------------------------------------------------
    def subjectFor(self, commonName: str) -> str:
        """A DN under the CA's organisation: the CA subject with its last CN replaced."""
        if commonName.startswith("/"):
            return commonName
        return _LAST_CN.sub("", self.certificate.subjectDN) + f"/CN={commonName}"

    def _issue(self, subject: str, days: int, bits: int, extensions: list[X509.X509_Extension],
               validFrom: datetime.datetime | None) -> tuple[bytes, bytes]:
        if self._key is None:
            self.load()
        assert self._key is not None
        caCert = self.certificate
        key = generateRSAKey(bits)
        cert = X509.X509()
        cert.set_version(2)
        cert.set_serial_number(self._nextSerial())
        cert.set_subject(dnToX509Name(subject))
        cert.set_issuer(caCert.m2.get_subject())
        start = (validFrom or utcNow()).astimezone(datetime.UTC).replace(microsecond=0)
        cert.set_not_before(asn1Time(start - datetime.timedelta(minutes=5)))
        cert.set_not_after(asn1Time(min(start + datetime.timedelta(days=days), caCert.notAfter)))
        cert.set_pubkey(key)
        cert.add_ext(newExtension("basicConstraints", "CA:FALSE", critical=True))
        cert.add_ext(newExtension("keyUsage", "digitalSignature,keyEncipherment", critical=True))
        for ext in extensions + _keyIdExtensions(key, self._key):
            cert.add_ext(ext)
        cert.sign(self._key, "sha256")
        log.info("Issued certificate %s (serial %d)", subject, cert.get_serial_number())
        return cert.as_pem(), privateKeyToPEM(key)

    def issueHostCertificate(self, hostname: str, altNames: list[str] | None = None, days: int = 365,
                             bits: int = 2048, validFrom: datetime.datetime | None = None) -> tuple[bytes, bytes]:
        """(certPEM, keyPEM) for a server: SAN with the host name and ``altNames``, server+client auth."""
        names = ["localhost", "127.0.0.1"] if altNames is None else altNames
        extensions = [
            newExtension("subjectAltName", _altNames(hostname, names)),
            newExtension("extendedKeyUsage", "serverAuth,clientAuth"),
        ]
        return self._issue(self.subjectFor(hostname), days, bits, extensions, validFrom)

    def issueUserCertificate(self, subject: str, days: int = 365, bits: int = 2048,
                             validFrom: datetime.datetime | None = None) -> tuple[bytes, bytes]:
        """(certPEM, keyPEM) for a user; ``subject`` is a full DN or a common name."""
        extensions = [newExtension("extendedKeyUsage", "clientAuth")]
        return self._issue(self.subjectFor(subject), days, bits, extensions, validFrom)

    # -- publishing ------------------------------------------------------------------------
    def crlPEM(self) -> bytes:
        """An empty CRL signed by the CA, valid as long as the CA."""
        if self._key is None:
            self.load()
        assert self._key is not None
        caCert = self.certificate
        algorithm = DER.encode(DER.SEQUENCE, DER.encodeOID(OID_SHA256_WITH_RSA) + DER.encode(DER.NULL, b""))
        crlNumber = DER.encode(DER.SEQUENCE, DER.encodeOID(OID_CRL_NUMBER)
                               + DER.encode(DER.OCTET_STRING, DER.encodeInteger(1)))
        tbs = DER.encode(DER.SEQUENCE, b"".join([
            DER.encodeInteger(1),  # v2
            algorithm,
            DER.encode(DER.SEQUENCE, b"".join(caCert.subjectRDNs)),
            DER.encodeTime(utcNow()),
            DER.encodeTime(caCert.notAfter),
            DER.encode(0xA0, DER.encode(DER.SEQUENCE, crlNumber)),
        ]))
        self._key.reset_context(md="sha256")
        self._key.sign_init()
        self._key.sign_update(tbs)
        signature = self._key.sign_final()
        crl = DER.encode(DER.SEQUENCE, tbs + algorithm + DER.encode(DER.BIT_STRING, b"\x00" + signature))
        body = base64.encodebytes(crl).replace(b"\n", b"")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return b"-----BEGIN X509 CRL-----\n" + b"\n".join(lines) + b"\n-----END X509 CRL-----\n"

    def installInCertificatesDir(self, certDir: str | Path) -> Path:
        """Publish the CA as ``<subject hash>.0`` (and its empty CRL as ``.r0``); returns the cert path."""
        target = Path(certDir)
        target.mkdir(parents=True, exist_ok=True)
        caCert = self.certificate
        index = 0
        while True:  # keep other CAs that share the hash; replace our own copy
            path = target / f"{caCert.subjectHash}.{index}"
            if not path.exists() or X509Certificate.fromFile(path) == caCert:
                break
            index += 1
        writePrivateFile(path, caCert.toPEM(), mode=0o644)
        writePrivateFile(target / f"{caCert.subjectHash}.r{index}", self.crlPEM(), mode=0o644)
        log.info("Installed CA %s as %s", caCert.subjectDN, path)
        return path
