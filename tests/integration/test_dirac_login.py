"""dirac-login end to end: device flow at the real local provider (browser step scripted), a job
submitted with the saved token, refresh of an expired access token, dirac-logout revoking it."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from dirac.Core.Security import IdProviders, Tokens
from dirac.Core.Security.OAuth2 import OAuth2Client
from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.Exceptions import AuthenticationError

from .idp import completeDeviceLogin
from .test_idp_tokens import configureIdP

JDL = '[Executable = "/bin/echo"; Arguments = "token"; CPUTime = 1000; JobName = "token-job"]'


@pytest.fixture(scope="module")
def idp(sqliteGrid, oidcProvider):
    configureIdP(sqliteGrid, oidcProvider)
    return oidcProvider


def command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"dirac.FrameworkSystem.scripts.{name}", *args]


def diracLogin(idp, tokenFile, *args: str, user: str = "alice") -> subprocess.CompletedProcess:
    """Run dirac-login, do the browser step when it prints the URL, and wait for it."""
    env = {**os.environ, "BEARER_TOKEN_FILE": str(tokenFile)}
    process = subprocess.Popen(command("dirac_login", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    first = process.stdout.readline()
    match = re.search(r"Open (\S+) in a browser and sign in; the code is (\S+)", first)
    if not match:
        process.kill()
        raise AssertionError(f"dirac-login printed {first!r}: {process.communicate()}")
    completeDeviceLogin(match.group(1), user, f"{user}-password", idp.caFile)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, first + out, err)


@pytest.fixture(scope="module")
def loggedIn(sqliteGrid, idp, tmp_path_factory):
    """alice logged in with dirac-login as dirac_admin; the token file and the command's output."""
    from .conftest import environmentOf

    tokenFile = tmp_path_factory.mktemp("login") / "bt_test"
    with environmentOf(sqliteGrid.instance):
        done = diracLogin(idp, tokenFile, "dirac_admin", "--json")
    assert done.returncode == 0, done
    return tokenFile, done


def test_dirac_login_saves_the_token_and_prints_who_the_user_is(grid, loggedIn):
    tokenFile, done = loggedIn
    info = json.loads(done.stdout.split("\n", 1)[1])
    assert info["username"] == "alice" and info["group"] == "dirac_admin"
    assert info["subject"] == "a1b2c3d4-alice" and info["issuer"].startswith("https://127.0.0.1:")
    assert "JobAdministrator" in info["properties"] and 0 < info["secondsLeft"] <= 300
    assert stat.S_IMODE(tokenFile.stat().st_mode) == 0o600
    token = json.loads(tokenFile.read_text())
    assert token["provider"] == "TestIdP" and token["refresh_token"]
    assert token["access_token"] not in done.stdout + done.stderr


def test_job_submitted_with_the_token_belongs_to_the_user_and_group(grid, loggedIn, monkeypatch):
    tokenFile, _ = loggedIn
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(tokenFile))
    jobID = RPCClient("WorkloadManagement/JobManager", useAccessToken=True).submitJob(JDL)
    assert jobID["OK"], jobID
    monkeypatch.setenv("DIRAC_USE_ACCESS_TOKEN", "yes")
    attributes = RPCClient("WorkloadManagement/JobMonitoring").getJobAttributes(jobID["Value"])
    assert attributes["OK"], attributes
    assert attributes["Value"]["Owner"] == "alice" and attributes["Value"]["OwnerGroup"] == "dirac_admin"


def test_an_expired_access_token_is_refreshed_and_saved_by_the_client(grid, loggedIn, monkeypatch):
    tokenFile, _ = loggedIn
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(tokenFile))
    token = json.loads(tokenFile.read_text())
    token["expires_at"] = 1
    Tokens.writeTokenFile(token)
    who = RPCClient("Test/Dummy", useAccessToken=True).whoami()
    assert who["OK"], who
    assert who["Value"]["username"] == "alice" and who["Value"]["group"] == "dirac_admin"
    renewed = json.loads(tokenFile.read_text())
    assert renewed["access_token"] != token["access_token"] and renewed["expires_at"] > 1


def test_without_a_token_file_the_client_says_to_run_dirac_login(grid, tmp_path, monkeypatch):
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(tmp_path / "none"))
    result = RPCClient("Test/Dummy", useAccessToken=True).whoami()
    assert not result["OK"] and "run dirac-login" in result["Message"]


def test_dirac_logout_revokes_the_refresh_token_and_removes_the_file(grid, idp, tmp_path):
    tokenFile = tmp_path / "bt_logout"
    done = diracLogin(idp, tokenFile, user="bob")
    assert done.returncode == 0, done
    assert "username   : robert" in done.stdout and "group      : dirac_user" in done.stdout
    refreshToken = json.loads(tokenFile.read_text())["refresh_token"]
    out = subprocess.run(command("dirac_logout"), env={**os.environ, "BEARER_TOKEN_FILE": str(tokenFile)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    assert "refresh token revoked" in out.stdout and not tokenFile.exists()
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        OAuth2Client(IdProviders.getIdProvider("TestIdP")).refresh(refreshToken)
