"""extraCredentials: a trusted host (the web portal) acting for a user against a real server process."""

from __future__ import annotations

from pathlib import Path

import pytest

from dirac.Core.Tornado.Client import RPCClient

ADMIN_DN = "/O=DIRAC-Seed/OU=dirac/CN=admin"
BOB_DN = "/O=DIRAC-Seed/OU=dirac/CN=bob"


@pytest.fixture
def hostCredential(grid, tmp_path: Path) -> str:
    """The grid's host certificate and key in one PEM file (what the portal's server holds)."""
    path = tmp_path / "host.pem"
    path.write_bytes(grid.instance.hostCert.read_bytes() + grid.instance.hostKey.read_bytes())
    return str(path)


def test_trusted_host_acts_for_a_user_in_a_group_of_theirs(grid, hostCredential):
    who = RPCClient("Test/Dummy", proxyLocation=hostCredential, useCertificates=False,
                    extraCredentials=(BOB_DN, "dirac_user")).whoami()
    assert who["OK"], who
    assert who["Value"]["username"] == "bob"
    assert who["Value"]["group"] == "dirac_user"
    assert who["Value"]["DN"] == BOB_DN
    assert "TrustedHost" not in who["Value"]["properties"]
    assert who["Value"]["delegatedBy"]


def test_the_user_rights_apply_not_the_host_ones(grid, hostCredential):
    def adminOnly(dn: str, group: str) -> dict:
        return RPCClient("Test/Dummy", proxyLocation=hostCredential, useCertificates=False,
                         extraCredentials=(dn, group)).adminOnly()

    assert adminOnly(ADMIN_DN, "dirac_admin")["OK"]  # ServiceAdministrator: the admin group's, not the host's
    refused = adminOnly(BOB_DN, "dirac_user")
    assert not refused["OK"]
    assert "bob (group dirac_user) may not call adminOnly" in refused["Message"]


def test_a_group_the_user_is_not_in_is_refused(grid, hostCredential):
    result = RPCClient("Test/Dummy", proxyLocation=hostCredential, useCertificates=False,
                       extraCredentials=(BOB_DN, "dirac_admin")).whoami()
    assert not result["OK"]
    assert "not a member of group dirac_admin" in result["Message"]


def test_an_unregistered_dn_is_refused(grid, hostCredential):
    result = RPCClient("Test/Dummy", proxyLocation=hostCredential, useCertificates=False,
                       extraCredentials=("/O=Nowhere/CN=nobody", "dirac_user")).whoami()
    assert not result["OK"]
    assert "is not registered" in result["Message"]


def test_a_user_may_not_act_for_another_user(grid):
    result = grid.client(proxy="bob", extraCredentials=(ADMIN_DN, "dirac_admin")).whoami()
    assert not result["OK"]
    assert "only hosts with TrustedHost may" in result["Message"]


def test_malformed_extra_credentials_are_refused(grid, hostCredential):
    result = RPCClient("Test/Dummy", proxyLocation=hostCredential, useCertificates=False,
                       extraCredentials=(BOB_DN,)).whoami()  # type: ignore[arg-type]
    assert not result["OK"]
    assert "[DN, group]" in result["Message"]
