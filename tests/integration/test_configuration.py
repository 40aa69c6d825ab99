"""The Configuration Service and its clients against a real server process."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Config import Registry, gConfig
from dirac.Core.Utilities.ForkServer import ForkServer


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


def test_fork_server_children_start_with_its_configuration_and_get_changes_through_it(grid, tmp_path, monkeypatch):
    refresh = tmp_path / "refresh.cfg"
    refresh.write_text("DIRAC\n{\n  Configuration\n  {\n    RefreshTime = 3\n  }\n}\n")
    monkeypatch.setenv("DIRACSYSCONFIG", f"{os.environ['DIRACSYSCONFIG']},{refresh}")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # forked_configuration.py
    server = ForkServer(["forked_configuration"], initializer="dirac.Core.Config:gConfig.loadForForking")

    def start(name: str):
        (tmp_path / name).mkdir()
        return server.run("forked_configuration:describe", ["/Test/Forked/Stamp"], tmp_path / name, dict(os.environ),
                          tmp_path / name / "out", tmp_path / name / "err")

    def seen(name: str, child) -> dict:
        assert child.wait(60) == 0, (tmp_path / name / "err").read_text()
        return json.loads((tmp_path / name / "out").read_text())

    try:
        children = {name: start(name) for name in ("a", "b")}  # forked back to back, well within RefreshTime
        first, second = (seen(name, child) for name, child in children.items())
        assert first["version"] == gConfig.getVersion() and first["value"] == ""
        assert first["lastAnswer"] == second["lastAnswer"] > 0, "a child fetched the configuration on its own"
        assert first["refresherRunning"] and second["refresherRunning"]
        stamp = f"stamp-{time.time()}"
        api = CSAPI()
        assert api.initialize()["OK"]
        api.setOption("/Test/Forked/Stamp", stamp)
        assert api.commit()["OK"]
        time.sleep(3.2)  # the server's copy is now due: it is refreshed before the next fork
        third = seen("c", start("c"))
        assert third["value"] == stamp and third["lastAnswer"] > first["lastAnswer"]
    finally:
        server.close(10)
