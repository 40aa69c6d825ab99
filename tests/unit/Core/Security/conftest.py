"""A CA, its certificate directory and a user and host certificate, shared by the security tests."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest
from M2Crypto import ASN1, EVP, X509

from dirac.Core.Config import gConfig
from dirac.Core.Security import DER
from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.Keys import generateRSAKey
from dirac.Core.Security.X509 import OID_PPL_INHERIT_ALL, OID_PROXY_CERT_INFO, X509Certificate, X509Chain
from dirac.Core.Security.X509Certificate import asn1Time, derExtension, newExtension

USER_DN = "/O=DIRAC-Seed/CN=alice"
HOST_DN = "/O=DIRAC-Seed/CN=server.example.org"


REGISTRY = """
Registry
{
  DefaultGroup = dirac_user
  DefaultVO = dirac
  Users
  {
    alice
    {
      DN = /O=DIRAC-Seed/CN=alice
      ID = 0c6f8a5e-alice
    }
    bob
    {
      DN = /O=DIRAC-Seed/CN=bob
    }
  }
  Groups
  {
    dirac_user
    {
      Users = alice
      Properties = NormalUser
      VO = dirac
    }
    dirac_admin
    {
      Users = bob
      Properties = NormalUser, CSAdministrator, ServiceAdministrator
    }
    dirac_prod
    {
      Users = alice
      Properties = NormalUser, ProductionManagement
      VO = lhcb
    }
  }
  Hosts
  {
    server.example.org
    {
      DN = /O=DIRAC-Seed/CN=server.example.org
      Properties = TrustedHost, CSAdministrator
    }
  }
}
"""


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """The Registry above loaded into gConfig (reset after the test by the top conftest); its file."""
    cfg = tmp_path / "registry.cfg"
    cfg.write_text(REGISTRY)
    gConfig.initialize(cfgFiles=[cfg], fetchRemote=False)
    return cfg


@dataclass
class Grid:
    """A CA with its hash directory, alice's certificate chain and a host certificate."""

    ca: CertificateAuthority
    caDir: Path
    user: X509Chain
    hostCert: Path
    hostKey: Path
    workDir: Path


@pytest.fixture(scope="session")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Grid:
    root = tmp_path_factory.mktemp("grid")
    ca = CertificateAuthority(root / "ca")
    ca.create()
    caDir = root / "certificates"
    ca.installInCertificatesDir(caDir)
    cert, key = ca.issueUserCertificate("alice")
    hostCert, hostKey = ca.issueHostCertificate("server.example.org")
    (root / "hostcert.pem").write_bytes(hostCert)
    (root / "hostkey.pem").write_bytes(hostKey)
    return Grid(ca, caDir, X509Chain.fromPEM(cert + key), root / "hostcert.pem", root / "hostkey.pem", root)


def craftProxy(issuer: X509Chain, *, subjectSuffix: str | None = None, language: str = OID_PPL_INHERIT_ALL,
               signingKey: EVP.PKey | None = None, lifetime: int = 3600, ca: bool = False) -> X509Chain:
    """A proxy built by hand, to break one rule that generateProxy always respects."""
    key = generateRSAKey(2048)
    cert = X509.X509()
    cert.set_version(2)
    cert.set_serial_number(4242)
    cert.set_issuer(issuer.leaf.m2.get_subject())
    cert.set_subject(issuer.leaf.m2.get_subject())
    cert.get_subject().add_entry_by_txt(field="CN", type=ASN1.MBSTRING_ASC, entry=subjectSuffix or "4242",
                                        len=-1, loc=-1, set=0)
    now = datetime.datetime.now(datetime.UTC)
    cert.set_not_before(asn1Time(now - datetime.timedelta(minutes=5)))
    cert.set_not_after(asn1Time(now + datetime.timedelta(seconds=lifetime)))
    cert.set_pubkey(key)
    info = DER.encode(DER.SEQUENCE, DER.encode(DER.SEQUENCE, DER.encodeOID(language)))
    cert.add_ext(derExtension(OID_PROXY_CERT_INFO, info, critical=True))
    if ca:
        cert.add_ext(newExtension("basicConstraints", "CA:TRUE", critical=True))
    cert.sign(signingKey or issuer.key, "sha256")
    return X509Chain([X509Certificate(cert)] + issuer.certs, key)


def craftWithSubject(issuer: X509Chain, subject: str) -> X509Chain:
    """A proxy whose subject is ``subject`` instead of the issuer's subject plus one CN."""
    from dirac.Core.Security.X509Certificate import dnToX509Name

    chain = craftProxy(issuer)
    cert = chain.leaf.m2
    cert.set_subject(dnToX509Name(subject))
    cert.sign(issuer.key, "sha256")
    return X509Chain([X509Certificate(cert)] + issuer.certs, chain.key)


@pytest.fixture
def craft():
    """The hand-made proxy builders (``craft.proxy(...)``, ``craft.withSubject(...)``)."""

    class _Craft:
        proxy = staticmethod(craftProxy)
        withSubject = staticmethod(craftWithSubject)

    return _Craft
