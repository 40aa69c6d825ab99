"""Certificates and proxy chains: parsing, proxy generation, the DIRAC group, files and verification."""

from __future__ import annotations

import datetime
import os
import random
import re

import pytest
from cryptography import x509 as cx509

from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.Keys import loadPrivateKey, privateKeyToPEM
from dirac.Core.Security.X509 import (
    OID_DIRAC_GROUP,
    OID_PPL_LIMITED,
    OID_PROXY_CERT_INFO,
    X509Certificate,
    X509Chain,
)
from dirac.Core.Utilities.Exceptions import SecurityError

USER_DN = "/O=DIRAC-Seed/CN=alice"
UTC = datetime.UTC


def test_certificate_names_dates_and_flags(grid):
    cert = grid.user.leaf
    assert cert.subjectDN == USER_DN
    assert cert.issuerDN == "/O=DIRAC-Seed/CN=DIRAC Seed CA"
    assert cert.notBefore.tzinfo is not None and cert.notAfter.utcoffset() == datetime.timedelta(0)
    assert cert.notBefore < datetime.datetime.now(UTC) < cert.notAfter
    assert not cert.isProxy and not cert.isCA and cert.diracGroup is None
    assert grid.ca.certificate.isCA
    assert 360 * 86400 < cert.remainingSeconds <= 365 * 86400
    assert X509Certificate.fromDER(cert.toDER()) == cert
    assert X509Certificate.fromPEM(cert.toPEM()).serial == cert.serial


def test_proxy_carries_group_and_extends_the_issuer_subject_by_its_serial(grid):
    proxy = grid.user.generateProxy(3600, group="dirac_user")
    leaf = proxy.leaf
    assert leaf.isProxy and proxy.isProxy and not proxy.isLimitedProxy
    assert leaf.subjectDN == f"{USER_DN}/CN={leaf.serial}" and leaf.serial > 0
    assert leaf.issuerDN == USER_DN
    assert proxy.identityDN == USER_DN
    assert proxy.diracGroup == leaf.diracGroup == "dirac_user"
    assert [c.subjectDN for c in proxy.certs[1:]] == [USER_DN]
    assert 3500 < proxy.remainingSeconds <= 3600
    assert leaf.notBefore < datetime.datetime.now(UTC) - datetime.timedelta(minutes=4)


def test_proxy_extensions_as_an_independent_parser_sees_them(grid):
    cert = cx509.load_der_x509_certificate(grid.user.generateProxy(600, group="dirac_admin").leaf.toDER())
    proxyInfo = cert.extensions.get_extension_for_oid(cx509.ObjectIdentifier(OID_PROXY_CERT_INFO))
    assert proxyInfo.critical
    # ProxyCertInfo ::= SEQUENCE { ProxyPolicy SEQUENCE { id-ppl-inheritAll } }, no path length limit
    assert proxyInfo.value.value == bytes.fromhex("300c300a06082b06010505071501")
    group = cert.extensions.get_extension_for_oid(cx509.ObjectIdentifier(OID_DIRAC_GROUP))
    assert not group.critical
    assert group.value.value == bytes([0x16, len("dirac_admin")]) + b"dirac_admin"
    usage = cert.extensions.get_extension_for_class(cx509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment


def test_group_is_inherited_by_the_next_level_unless_a_new_one_is_given(grid):
    first = grid.user.generateProxy(3600, group="dirac_user")
    inherited = first.generateProxy(1800)
    replaced = first.generateProxy(1800, group="dirac_prod")
    assert inherited.leaf.diracGroup == inherited.diracGroup == "dirac_user"
    assert replaced.diracGroup == "dirac_prod"
    assert grid.user.generateProxy(600).diracGroup is None
    assert inherited.leaf.subjectDN.startswith(first.leaf.subjectDN + "/CN=")
    assert inherited.identityDN == USER_DN and len(inherited.certs) == 3


def test_proxy_never_outlives_its_issuer(grid):
    short = grid.user.generateProxy(600)
    longer = short.generateProxy(7 * 86400)
    assert longer.leaf.notAfter == short.leaf.notAfter
    assert longer.notAfter == short.notAfter


def test_limited_proxy_is_flagged_and_cannot_issue_a_full_one(grid):
    limited = grid.user.generateProxy(3600, limited=True)
    assert limited.leaf.isLimitedProxy and limited.isLimitedProxy
    assert limited.leaf.proxyPolicyLanguage == OID_PPL_LIMITED
    assert limited.generateProxy(600, limited=True).isLimitedProxy
    with pytest.raises(SecurityError, match="can only issue limited proxies"):
        limited.generateProxy(600)


def test_proxy_file_round_trip_in_proxy_order_with_mode_0600(grid, tmp_path):
    proxy = grid.user.generateProxy(3600, group="dirac_user").generateProxy(1800)
    path = proxy.dumpToFile(tmp_path / "x509up")
    assert os.stat(path).st_mode & 0o777 == 0o600
    blocks = re.findall(rb"-----BEGIN ([A-Z ]+)-----", path.read_bytes())
    assert blocks == [b"CERTIFICATE", b"RSA PRIVATE KEY", b"CERTIFICATE", b"CERTIFICATE"]
    again = X509Chain.fromFile(path)
    assert again.hasKey and again.certs == proxy.certs and again.diracGroup == "dirac_user"
    assert again.toPEM() == proxy.toPEM()


def test_chain_is_ordered_leaf_first_whatever_the_pem_order(grid):
    proxy = grid.user.generateProxy(3600).generateProxy(1800)
    pieces = [c.toPEM() for c in proxy.certs] + [privateKeyToPEM(proxy.key)]
    random.Random(7).shuffle(pieces)
    shuffled = X509Chain.fromPEM(b"".join(pieces))
    assert shuffled.certs == proxy.certs
    assert X509Chain.fromPEM(b"".join(c.toPEM() for c in proxy.certs)).hasKey is False


def test_key_that_matches_no_certificate_is_refused(grid, tmp_path):
    other = grid.user.generateProxy(600)
    with pytest.raises(SecurityError, match="matches none"):
        X509Chain.fromPEM(grid.user.leaf.toPEM() + privateKeyToPEM(other.key))
    certFile = tmp_path / "usercert.pem"
    certFile.write_bytes(grid.user.leaf.toPEM())
    with pytest.raises(SecurityError, match="does not match the certificate"):
        X509Chain.fromCertAndKeyFiles(certFile, grid.hostKey)


def test_encrypted_key_needs_the_right_passphrase(grid):
    encrypted = privateKeyToPEM(grid.user.key, passphrase="s3cret")
    assert b"ENCRYPTED" in encrypted
    with pytest.raises(SecurityError, match="encrypted"):
        loadPrivateKey(encrypted)
    with pytest.raises(SecurityError, match="wrong passphrase"):
        loadPrivateKey(encrypted, "nope")
    chain = X509Chain.fromPEM(grid.user.leaf.toPEM() + encrypted, passphrase="s3cret")
    assert chain.hasKey and chain.generateProxy(600).identityDN == USER_DN


def test_proxy_needs_a_key(grid):
    with pytest.raises(SecurityError, match="private key is not loaded"):
        X509Chain.fromCertificates(grid.user.certs).generateProxy(600)


# -- verification --------------------------------------------------------------------------------
def test_verify_accepts_user_host_and_proxy_chains(grid):
    grid.user.verify(grid.caDir)
    X509Chain.fromCertAndKeyFiles(grid.hostCert, grid.hostKey).verify(grid.caDir)
    proxy = grid.user.generateProxy(3600, group="dirac_user")
    proxy.verify(grid.caDir)
    proxy.generateProxy(600).verify(grid.caDir)
    grid.user.generateProxy(600, limited=True).generateProxy(300, limited=True).verify(grid.caDir)
    # a chain that carries its CA as well (as TLS peers report it) verifies too
    X509Chain.fromCertificates(proxy.certs + [grid.ca.certificate]).verify(grid.caDir)


def test_verify_rejects_an_expired_proxy_saying_when(grid):
    expired = grid.user.generateProxy(-3600)
    assert expired.remainingSeconds == 0
    with pytest.raises(SecurityError, match=r"proxy /O=DIRAC-Seed/CN=alice/CN=\d+ expired on \d{4}-\d\d-\d\d"):
        expired.verify(grid.caDir)
    past = datetime.datetime.now(UTC) - datetime.timedelta(hours=3)
    with pytest.raises(SecurityError, match="expired on"):
        grid.user.generateProxy(3600, validFrom=past).verify(grid.caDir)


def test_verify_rejects_a_proxy_not_yet_valid(grid):
    future = datetime.datetime.now(UTC) + datetime.timedelta(hours=2)
    with pytest.raises(SecurityError, match="is not valid before"):
        grid.user.generateProxy(3600, validFrom=future).verify(grid.caDir)


def test_verify_rejects_an_expired_user_certificate(grid):
    past = datetime.datetime.now(UTC) - datetime.timedelta(days=40)
    cert, key = grid.ca.issueUserCertificate("old-alice", days=30, validFrom=past)
    chain = X509Chain.fromPEM(cert + key)
    with pytest.raises(SecurityError, match=r"certificate /O=DIRAC-Seed/CN=old-alice expired on"):
        chain.verify(grid.caDir)
    with pytest.raises(SecurityError, match="cannot make a proxy"):
        chain.generateProxy(3600)


def test_verify_rejects_an_unknown_ca(grid, tmp_path):
    rogue = CertificateAuthority(tmp_path / "rogue")
    rogue.create(subject="/O=Rogue/CN=Rogue CA")
    cert, key = rogue.issueUserCertificate("/O=DIRAC-Seed/CN=alice")
    proxy = X509Chain.fromPEM(cert + key).generateProxy(600)
    with pytest.raises(SecurityError, match="unknown CA: the issuer /O=Rogue/CN=Rogue CA"):
        proxy.verify(grid.caDir)
    # bringing the rogue root along in the chain does not make it trusted
    with pytest.raises(SecurityError, match="unknown CA"):
        X509Chain.fromCertificates(proxy.certs + [rogue.certificate]).verify(grid.caDir)


def test_verify_rejects_a_ca_impostor_with_the_same_name(grid, tmp_path):
    impostor = CertificateAuthority(tmp_path / "impostor")
    impostor.create(subject="/O=DIRAC-Seed/CN=DIRAC Seed CA")
    cert, key = impostor.issueUserCertificate("alice")
    with pytest.raises(SecurityError, match="bad signature: /O=DIRAC-Seed/CN=alice was not signed by the CA"):
        X509Chain.fromPEM(cert + key).verify(grid.caDir)


def test_verify_rejects_a_proxy_signed_by_the_wrong_key(grid, craft):
    stranger = grid.user.generateProxy(600).key
    forged = craft.proxy(grid.user, signingKey=stranger)
    with pytest.raises(SecurityError, match="bad signature: proxy .* was not signed by the key of /O=DIRAC-Seed/CN=alice"):
        forged.verify(grid.caDir)


def test_verify_rejects_a_proxy_whose_subject_does_not_extend_its_issuer(grid, craft):
    forged = craft.withSubject(grid.user, "/O=DIRAC-Seed/CN=bob/CN=1234")
    with pytest.raises(SecurityError, match="does not extend its issuer's subject /O=DIRAC-Seed/CN=alice"):
        forged.verify(grid.caDir)


def test_verify_rejects_a_full_proxy_under_a_limited_one(grid, craft):
    limited = grid.user.generateProxy(3600, limited=True)
    escalated = craft.proxy(limited)
    assert not escalated.leaf.isLimitedProxy
    with pytest.raises(SecurityError, match="limited proxy .* cannot issue the full proxy"):
        escalated.verify(grid.caDir)


def test_verify_rejects_a_proxy_that_claims_to_be_a_ca(grid, craft):
    caProxy = craft.proxy(grid.user, ca=True)
    assert caProxy.leaf.isCA and caProxy.leaf.isProxy
    with pytest.raises(SecurityError, match="proxies may not be CAs"):
        caProxy.verify(grid.caDir)


def test_verify_rejects_a_proxy_without_its_issuer_in_the_chain(grid):
    proxy = grid.user.generateProxy(600)
    with pytest.raises(SecurityError, match="the chain lacks the issuer"):
        X509Chain.fromCertificates([proxy.leaf]).verify(grid.caDir)


def test_verify_needs_an_existing_ca_directory(grid, tmp_path):
    with pytest.raises(SecurityError, match="does not exist"):
        grid.user.verify(tmp_path / "missing")
