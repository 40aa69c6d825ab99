"""Where credentials are looked for: environment first, then the CS, then the grid defaults."""

from __future__ import annotations

import os

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Security import Locations


@pytest.fixture(autouse=True)
def _cleanEnvironment(monkeypatch, tmp_path):
    for name in ("X509_USER_PROXY", "X509_CERT_DIR", "X509_USER_CERT", "X509_USER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    empty = tmp_path / "empty.cfg"
    empty.write_text("")
    monkeypatch.setenv("DIRACSYSCONFIG", str(empty))


def test_proxy_location(monkeypatch):
    assert Locations.getProxyLocation() == f"/tmp/x509up_u{os.getuid()}"
    monkeypatch.setenv("X509_USER_PROXY", "/somewhere/proxy")
    assert Locations.getProxyLocation() == "/somewhere/proxy"


def test_ca_location_env_then_cs_then_default(monkeypatch):
    assert Locations.getCAsLocation() == "/etc/grid-security/certificates"
    gConfig.initialize(options={"/DIRAC/Security/CALocation": "/cs/certificates"}, fetchRemote=False)
    assert Locations.getCAsLocation() == "/cs/certificates"
    monkeypatch.setenv("X509_CERT_DIR", "/env/certificates")
    assert Locations.getCAsLocation() == "/env/certificates"


def test_host_certificate_from_the_cs_only_when_both_files_exist(tmp_path):
    cert, key = tmp_path / "hostcert.pem", tmp_path / "hostkey.pem"
    gConfig.initialize(options={"/DIRAC/Security/CertFile": str(cert), "/DIRAC/Security/KeyFile": str(key)},
                       fetchRemote=False)
    assert Locations.getHostCertificateAndKeyLocation() is None
    cert.write_text("c")
    key.write_text("k")
    assert Locations.getHostCertificateAndKeyLocation() == (str(cert), str(key))


def test_user_certificate_env_then_globus(monkeypatch, tmp_path):
    globus = tmp_path / "home" / ".globus"
    assert Locations.getUserCertificateAndKeyLocation() == (str(globus / "usercert.pem"), str(globus / "userkey.pem"))
    monkeypatch.setenv("X509_USER_CERT", "/c.pem")
    monkeypatch.setenv("X509_USER_KEY", "/k.pem")
    assert Locations.getUserCertificateAndKeyLocation() == ("/c.pem", "/k.pem")


def test_use_server_certificate_flag():
    assert Locations.useServerCertificate() is False
    gConfig.initialize(options={"/DIRAC/Security/UseServerCertificate": "yes"}, fetchRemote=False)
    assert Locations.useServerCertificate() is True
