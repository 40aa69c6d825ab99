"""The JobAgent against the real services: the payload proxies it fetches from the ProxyManager with a pilot
proxy, and reuses for the same owner's next jobs while they still live long enough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Security.X509Chain import X509Chain
from dirac.FrameworkSystem.Client.ProxyManagerClient import ProxyManagerClient
from dirac.WorkloadManagementSystem.Agent.JobAgent import JobAgent

BIN = Path(sys.executable).parent
BOB_DN = "/O=DIRAC-Seed/OU=dirac/CN=bob"
HANDED = "limited proxy of bob@dirac_user"


@pytest.fixture(scope="module")
def bobUploaded(sqliteGrid, tmp_path_factory) -> None:
    """bob's proxy uploaded for 72 hours with dirac-proxy-init; a pilot proxy (CN=pilot, dirac_pilot)."""
    home = tmp_path_factory.mktemp("bob-jobagent")
    cert, key = sqliteGrid.ca.issueUserCertificate(BOB_DN)
    (home / "usercert.pem").write_bytes(cert)
    (home / "userkey.pem").write_bytes(key)
    (home / "userkey.pem").chmod(0o600)
    sqliteGrid.makeProxy("jobagent-pilot", "/O=DIRAC-Seed/OU=dirac/CN=pilot", "dirac_pilot")
    env = {**os.environ, **sqliteGrid.instance.environment(), "X509_USER_PROXY": str(home / "proxy.pem")}
    done = subprocess.run([str(BIN / "dirac-proxy-init"), "-C", str(home / "usercert.pem"), "-K",
                           str(home / "userkey.pem"), "-g", "dirac_user", "--upload-valid", "72:00"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def handedOut(grid) -> int:
    """How many of bob's limited proxies the ProxyManager has handed out so far."""
    return (grid.instance.root.parent / "server.log").read_text().count(HANDED)


def test_a_pilot_reuses_an_owners_payload_proxy_while_it_lives_long_enough(grid, bobUploaded):
    agent = JobAgent(proxyManager=ProxyManagerClient(proxyLocation=str(grid.proxies["jobagent-pilot"]),
                                                     useCertificates=False))
    before = handedOut(grid)
    first = agent._payloadProxy(1, "bob", "dirac_user")
    assert first is not None and handedOut(grid) == before + 1
    chain = X509Chain.fromPEM(first)
    assert chain.identityDN == BOB_DN and chain.isLimitedProxy and chain.hasKey
    assert agent._payloadProxy(2, "bob", "dirac_user") == first
    assert handedOut(grid) == before + 1, "the second job of bob asked the ProxyManager again"
    # a slot with more time left than the cached proxy: a new, longer one is fetched
    gConfig.data.setLocalOption("/LocalSite/CPUTimeLeft", str(chain.remainingSeconds + 3600))
    longer = agent._payloadProxy(3, "bob", "dirac_user")
    assert longer is not None and longer != first and handedOut(grid) == before + 2
    assert X509Chain.fromPEM(longer).remainingSeconds > chain.remainingSeconds
