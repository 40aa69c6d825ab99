"""The dynamic user registry against the real local provider: a user the provider vouches for, unknown to the
Registry, is added to the central configuration at her first call (name from her token, groups the provider
grants); name clashes get a suffix; a subject granted no group is refused and not added."""

from __future__ import annotations

import time

import pytest

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI

from .conftest import environmentOf
from .idp import USERS, deviceLoginTokens
from .test_idp_tokens import configureIdP, forged, whoami

REGISTER = "/Resources/IdProviders/TestIdP/RegisterUsers"


def identity(token: str) -> dict:
    who = whoami(token)
    assert who["OK"], who
    return who["Value"]


def centralConfiguration(grid) -> CSAPI:
    api = CSAPI(proxyLocation=str(grid.proxies["admin"]), useCertificates=False)
    assert api.initialize()["OK"]
    return api


@pytest.fixture(scope="module")
def registering(sqliteGrid, oidcProvider):
    """The provider with RegisterUsers = yes for this module only."""
    configureIdP(sqliteGrid, oidcProvider)
    with environmentOf(sqliteGrid.instance):
        api = centralConfiguration(sqliteGrid)
        api.setOption(REGISTER, "yes")
        assert api.commit()["OK"]
    yield oidcProvider
    with environmentOf(sqliteGrid.instance):
        api = centralConfiguration(sqliteGrid)
        api.setOption(REGISTER, "no")
        assert api.commit()["OK"]


def test_a_user_unknown_to_the_registry_is_registered_at_her_first_call(grid, registering):
    api = centralConfiguration(grid)
    assert "carol" not in api.listSections("/Registry/Users")
    tokens = deviceLoginTokens(registering, "carol")
    who = identity(tokens["access_token"])
    assert who["username"] == "carol" and who["group"] == "dirac_user", who
    api = centralConfiguration(grid)
    assert api.getOption("/Registry/Users/carol/ID") == USERS["carol"][1]
    assert api.getOption("/Registry/Users/carol/Email") == "carol@example.invalid"
    assert api.getOption("/Registry/Users/carol/IdProvider") == "TestIdP"
    assert "carol" in api.getOption("/Registry/Groups/dirac_user/Users").replace(" ", "").split(",")
    assert "carol" not in api.getOption("/Registry/Groups/dirac_admin/Users")
    assert identity(tokens["access_token"])["username"] == "carol"  # once only
    log = (grid.instance.root.parent / "server.log").read_text()
    assert log.count(f"registered user carol (subject {USERS['carol'][1]} of TestIdP)") == 1
    assert tokens["access_token"] not in log


def test_a_taken_name_gets_a_suffix_and_an_ungranted_subject_is_refused(grid, registering):
    other = f"x{int(time.time())}-alice"
    who = identity(forged(registering, sub=other, preferred_username="Alice"))
    assert who["username"] == "alice-2" and who["group"] == "dirac_user", who
    assert centralConfiguration(grid).getOption("/Registry/Users/alice-2/ID") == other
    refused = whoami(forged(registering, sub="nobody-granted", preferred_username="mallory",
                               **{"wlcg.groups": ["/other/vo"]}))
    assert not refused["OK"] and "grants subject nobody-granted no DIRAC group" in refused["Message"]
    assert "mallory" not in centralConfiguration(grid).listSections("/Registry/Users")
