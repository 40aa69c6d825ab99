"""The Configuration Service and its clients against a real server process."""

from __future__ import annotations

import time

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Config import Registry, gConfig


def test_client_reads_the_registry_from_the_configuration_service(grid):
    assert gConfig.getValue("/Registry/Users/bob/DN") == "/O=DIRAC-Seed/OU=dirac/CN=bob"
    assert Registry.getGroupsForUser("bob") == ["dirac_user"]
    assert gConfig.getVersion() != "0"


def test_unchanged_configuration_is_not_sent_again(grid):
    client = grid.client("Configuration/Server")
    version = client.getVersion()["Value"]
    assert client.getCompressedDataIfNewer(version)["Value"] == {"newestVersion": version}
    assert "data" in client.getCompressedDataIfNewer("0")["Value"]


def test_admin_change_reaches_a_running_client_within_its_refresh_interval(grid):
    gConfig.initialize(options={"/DIRAC/Configuration/RefreshTime": "1"})
    assert gConfig.getValue("/Test/Refresh/Stamp", "") == ""
    stamp = f"stamp-{time.time()}"
    api = CSAPI()
    assert api.initialize()["OK"]
    api.setOption("/Test/Refresh/Stamp", stamp)
    committed = api.commit()
    assert committed["OK"], committed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gConfig.getValue("/Test/Refresh/Stamp", "") != stamp:
        time.sleep(0.2)
    assert gConfig.getValue("/Test/Refresh/Stamp", "") == stamp
    assert gConfig.getVersion() == committed["Value"]


def test_commit_needs_cs_administrator(grid):
    api = CSAPI(proxyLocation=str(grid.proxies["user"]), useCertificates=False)
    assert api.initialize()["OK"]
    api.setOption("/Test/Forbidden", "yes")
    result = api.commit()
    assert not result["OK"]
    assert "CSAdministrator" in result["Message"]


def test_concurrent_commit_from_an_old_version_is_refused(grid):
    first, second = CSAPI(), CSAPI()
    assert first.initialize()["OK"] and second.initialize()["OK"]
    first.setOption("/Test/Conflict/Value", "first")
    second.setOption("/Test/Conflict/Value", "second")
    assert first.commit()["OK"]
    result = second.commit()
    assert not result["OK"]
    assert "changed since you read it" in result["Message"]


def test_history_and_rollback(grid):
    api = CSAPI()
    assert api.initialize()["OK"]
    api.setOption("/Test/Rollback/Value", "before")
    before = api.commit()["Value"]
    api.setOption("/Test/Rollback/Value", "after")
    assert api.commit()["OK"]
    history = api.getCommitHistory(5)["Value"]
    assert [before, "admin"] in history
    rolled = api.rollbackToVersion(before)
    assert rolled["OK"], rolled
    assert api.initialize()["OK"]
    assert api.getOption("/Test/Rollback/Value") == "before"
