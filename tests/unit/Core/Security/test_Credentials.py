"""From a verified X509 chain to DIRAC's credential dict, through the Registry of the CS."""

from __future__ import annotations

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Security import Properties
from dirac.Core.Security.Credentials import credentialsFromChain
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Utilities.Exceptions import AuthenticationError, AuthorizationError


def test_property_names_are_the_cs_names():
    assert Properties.NormalUser == "NormalUser" == Properties.SecurityProperty.NORMAL_USER
    assert Properties.FileCatalogManagement == "FileCatalogManagement"
    assert Properties.isKnownProperty("GenericPilot") and not Properties.isKnownProperty("Superuser")


def test_proxy_group_gives_the_group_properties_and_vo(grid, registry):
    creds = credentialsFromChain(grid.user.generateProxy(600, group="dirac_prod"))
    assert creds == {
        "DN": "/O=DIRAC-Seed/CN=alice", "issuer": "/O=DIRAC-Seed/CN=DIRAC Seed CA", "username": "alice",
        "group": "dirac_prod", "properties": ["NormalUser", "ProductionManagement"], "VO": "lhcb",
        "isProxy": True, "isLimitedProxy": False, "authMethod": "X509",
    }


def test_without_a_group_the_default_group_applies(grid, registry):
    creds = credentialsFromChain(grid.user.generateProxy(600))
    assert creds["group"] == "dirac_user" and creds["properties"] == ["NormalUser"] and creds["VO"] == "dirac"
    plain = credentialsFromChain(X509Chain.fromCertificates(grid.user.certs))
    assert plain["isProxy"] is False and plain["group"] == "dirac_user"


def test_a_group_the_user_is_not_in_is_refused(grid, registry):
    with pytest.raises(AuthorizationError, match="user alice is not a member of group dirac_admin"):
        credentialsFromChain(grid.user.generateProxy(600, group="dirac_admin"))


def test_limited_proxies_are_flagged(grid, registry):
    creds = credentialsFromChain(grid.user.generateProxy(600, group="dirac_user", limited=True))
    assert creds["isLimitedProxy"] is True and creds["isProxy"] is True


def test_host_dn_gets_hostname_hosts_group_and_host_properties(grid, registry):
    host = X509Chain.fromCertAndKeyFiles(grid.hostCert, grid.hostKey)
    creds = credentialsFromChain(host)
    assert creds["hostname"] == "server.example.org" and creds["username"] is None
    assert creds["group"] == "hosts"
    assert creds["properties"] == ["TrustedHost", "CSAdministrator"]
    assert creds["DN"] == "/O=DIRAC-Seed/CN=server.example.org"


def test_unknown_dn_is_not_authenticated(grid, registry):
    cert, key = grid.ca.issueUserCertificate("mallory")
    with pytest.raises(AuthenticationError, match="DN /O=DIRAC-Seed/CN=mallory is not registered"):
        credentialsFromChain(X509Chain.fromPEM(cert + key).generateProxy(600))


def test_chain_of_proxies_only_has_no_identity(grid, registry):
    proxy = grid.user.generateProxy(600)
    with pytest.raises(AuthenticationError, match="identity certificate is missing"):
        credentialsFromChain(X509Chain.fromCertificates([proxy.leaf]))


def test_user_in_no_group_is_refused(grid, tmp_path):
    cfg = tmp_path / "lonely.cfg"
    cfg.write_text("Registry\n{\n  Users\n  {\n    alice\n    {\n      DN = /O=DIRAC-Seed/CN=alice\n    }\n  }\n}\n")
    gConfig.initialize(cfgFiles=[cfg], fetchRemote=False)
    with pytest.raises(AuthorizationError, match="not a member of any group"):
        credentialsFromChain(grid.user.generateProxy(600))
