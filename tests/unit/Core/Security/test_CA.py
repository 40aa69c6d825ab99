"""The project CA: creation, the OpenSSL hash directory, host and user certificates, the CRL."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

import pytest
from cryptography import x509 as cx509
from cryptography.x509.oid import ExtendedKeyUsageOID

from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.X509 import X509Certificate
from dirac.Core.Utilities.Exceptions import SecurityError

needsOpenSSL = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")


def _openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)


def test_ca_is_a_self_signed_ca_with_a_private_key(grid):
    ca = grid.ca.certificate
    assert ca.subjectDN == ca.issuerDN == "/O=DIRAC-Seed/CN=DIRAC Seed CA"
    assert ca.isCA and ca.isSignedBy(ca)
    assert os.stat(grid.ca.keyPath).st_mode & 0o777 == 0o600
    reloaded = CertificateAuthority(grid.ca.directory).load()
    assert reloaded.certificate == ca


def test_create_refuses_to_replace_an_existing_ca(grid):
    with pytest.raises(SecurityError, match="already exists"):
        CertificateAuthority(grid.ca.directory).create()


def test_load_without_a_ca_says_how_to_make_one(tmp_path):
    with pytest.raises(SecurityError, match="dirac-ca init"):
        CertificateAuthority(tmp_path).load()


@needsOpenSSL
def test_ca_is_installed_under_the_hash_openssl_computes(grid):
    expected = _openssl("x509", "-hash", "-noout", "-in", str(grid.ca.certPath)).stdout.strip()
    assert grid.ca.certificate.subjectHash == expected
    installed = grid.caDir / f"{expected}.0"
    assert X509Certificate.fromFile(installed) == grid.ca.certificate
    assert (grid.caDir / f"{expected}.r0").exists()
    # installing again replaces our own copy instead of adding a second one
    grid.ca.installInCertificatesDir(grid.caDir)
    assert sorted(p.name for p in grid.caDir.iterdir()) == [f"{expected}.0", f"{expected}.r0"]


@needsOpenSSL
def test_empty_crl_is_signed_by_the_ca_and_usable_for_crl_checks(grid):
    crl = next(grid.caDir.glob("*.r0"))
    result = _openssl("crl", "-in", str(crl), "-CAfile", str(grid.ca.certPath), "-noout")
    assert "verify OK" in result.stdout + result.stderr
    check = _openssl("verify", "-crl_check", "-CApath", str(grid.caDir), str(grid.hostCert))
    assert check.returncode == 0, check.stdout + check.stderr


def test_host_certificate_has_san_and_server_and_client_auth(grid):
    cert = cx509.load_pem_x509_certificate(grid.hostCert.read_bytes())
    san = cert.extensions.get_extension_for_class(cx509.SubjectAlternativeName).value
    assert san.get_values_for_type(cx509.DNSName) == ["server.example.org", "localhost"]
    assert san.get_values_for_type(cx509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(cx509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.extensions.get_extension_for_class(cx509.BasicConstraints).value.ca is False
    assert X509Certificate.fromFile(grid.hostCert).subjectDN == "/O=DIRAC-Seed/CN=server.example.org"


def test_host_alt_names_can_be_chosen(grid):
    certPEM, _ = grid.ca.issueHostCertificate("db.example.org", altNames=["::1", "db"], days=10)
    san = cx509.load_pem_x509_certificate(certPEM).extensions.get_extension_for_class(cx509.SubjectAlternativeName)
    assert san.value.get_values_for_type(cx509.DNSName) == ["db.example.org", "db"]
    assert san.value.get_values_for_type(cx509.IPAddress) == [ipaddress.ip_address("::1")]


def test_user_certificate_is_for_client_auth_and_takes_a_cn_or_a_dn(grid):
    byName, _ = grid.ca.issueUserCertificate("bob")
    byDN, _ = grid.ca.issueUserCertificate("/O=DIRAC-Seed/OU=dirac/CN=carol")
    assert X509Certificate.fromPEM(byName).subjectDN == "/O=DIRAC-Seed/CN=bob"
    assert X509Certificate.fromPEM(byDN).subjectDN == "/O=DIRAC-Seed/OU=dirac/CN=carol"
    eku = cx509.load_pem_x509_certificate(byName).extensions.get_extension_for_class(cx509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_issued_serial_numbers_are_unique_and_certificates_never_outlive_the_ca(grid):
    serials = {X509Certificate.fromPEM(grid.ca.issueUserCertificate(f"u{i}")[0]).serial for i in range(4)}
    assert len(serials) == 4 and grid.ca.certificate.serial not in serials
    forever = X509Certificate.fromPEM(grid.ca.issueUserCertificate("forever", days=100000)[0])
    assert forever.notAfter == grid.ca.certificate.notAfter


def test_subject_key_identifiers_chain_to_the_ca(grid):
    user = cx509.load_der_x509_certificate(grid.user.leaf.toDER())
    ca = cx509.load_der_x509_certificate(grid.ca.certificate.toDER())
    akid = user.extensions.get_extension_for_class(cx509.AuthorityKeyIdentifier).value.key_identifier
    assert akid == ca.extensions.get_extension_for_class(cx509.SubjectKeyIdentifier).value.digest
    assert grid.user.leaf.subjectKeyId == user.extensions.get_extension_for_class(
        cx509.SubjectKeyIdentifier).value.digest
