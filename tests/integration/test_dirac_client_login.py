"""The real DIRAC client's ``dirac-login --use-diracas --token`` and ``dirac-logout`` against our authorization
server (/auth), and DIRAC's TornadoClient calling our services with the token it saved.

DIRAC runs from the cached venv of tests/dirac_venv.py (see test_dirac_client.py), in its own processes
with only its own environment; the browser step is scripted against our server and the real test
OpenID Connect provider. Marked ``dirac_client`` (skipped offline, failing with CI=true).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from dirac.Core.Tornado.Client import RPCClient
from tests import dirac_venv

from .authserver import Browser, configureAuthServer

pytestmark = [pytest.mark.dirac_client, pytest.mark.slow, pytest.mark.timeout(1200)]

WHOAMI = """
import json, sys
import DIRAC
DIRAC.initialize()
from DIRAC.Core.Tornado.Client.TornadoClient import TornadoClient
print(json.dumps(TornadoClient(sys.argv[1]).whoami(), default=str))
"""


@pytest.fixture(scope="module")
def diracVenv() -> Path:
    """DIRAC's venv with tornado: DIRAC 9.1's client-side OAuth2 code (IdProvider -> authorization/utils/Requests)
    imports tornado, which only DIRAC's server extra installs."""
    try:
        return dirac_venv.diracVenv(("tornado",))
    except dirac_venv.DiracUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def _environment(venv: Path, work: Path, grid, issuer: str, tokenFile: Path) -> dict[str, str]:
    """All a DIRAC process gets: its venv, a local dirac.cfg naming our Configuration Server and authorization
    server (what ``dirac-configure`` writes: a token client needs the issuer before it can read the CS), no proxy,
    the token file."""
    cfg = work / "dirac.cfg"
    cfg.write_text("DIRAC\n{\n  Configuration\n  {\n"
                   f"    Servers = {grid.url('Configuration/Server')}\n  }}\n"
                   f"  Security\n  {{\n    Authorization\n    {{\n      issuer = {issuer}\n    }}\n  }}\n}}\n")
    (work / "home").mkdir(exist_ok=True)
    return {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(work / "home"), "LANG": "C.UTF-8",
            "TMPDIR": str(work / "home"), "NO_PROXY": "127.0.0.1,localhost", "DIRACSYSCONFIG": str(cfg),
            "X509_CERT_DIR": str(grid.instance.certificatesDir), "X509_USER_PROXY": str(work / "no-proxy"),
            "BEARER_TOKEN_FILE": str(tokenFile)}


def test_real_dirac_login_through_our_server_and_dirac_logout(grid, oidcProvider, diracVenv, tmp_path):
    server = configureAuthServer(grid, oidcProvider)
    tokenFile = tmp_path / "bt_dirac"
    env = _environment(diracVenv, tmp_path, grid, server.issuer, tokenFile)
    login = subprocess.Popen([str(diracVenv / "bin" / "dirac-login"), "dirac_admin", "--use-diracas", "--token",
                              "-I", server.issuer], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env)
    seen = []
    for line in login.stdout:
        seen.append(line)
        url = re.search(r"(https://\S+/auth/device\?user_code=\S+)", line)
        if url:
            break
    else:
        raise AssertionError(f"DIRAC's dirac-login printed no verification URL: {''.join(seen)}")
    assert "Use the following link to continue" in "".join(seen)
    assert 'id="success"' in Browser(server).signIn(url.group(1), "alice").text
    rest, _ = login.communicate(timeout=300)
    output = "".join(seen) + rest
    assert login.returncode == 0, output
    assert f"New token is saved to {tokenFile}." in output
    token = json.loads(tokenFile.read_text())
    who = RPCClient("Test/Dummy", token=token["access_token"]).whoami()
    assert who["OK"] and (who["Value"]["username"], who["Value"]["group"]) == ("alice", "dirac_admin"), who

    # DIRAC's own client library, configured by our CS (which has the issuer), calls our service with the token
    done = subprocess.run([str(diracVenv / "bin" / "python"), "-c", WHOAMI, grid.url("Test/Dummy")],
                          env={**env, "DIRAC_USE_ACCESS_TOKEN": "true"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["OK"], answer
    assert (answer["Value"]["username"], answer["Value"]["group"]) == ("alice", "dirac_admin")

    # DIRAC's dirac-logout (reading the CS with the token, as its users export) revokes both tokens at /auth/revoke
    logout = subprocess.run([str(diracVenv / "bin" / "dirac-logout"), "-I", server.issuer],
                            env={**env, "DIRAC_USE_ACCESS_TOKEN": "true"}, capture_output=True, text=True, timeout=300)
    said = logout.stdout + logout.stderr
    assert logout.returncode == 0, logout
    assert "access_token is revoked" in said and "refresh_token is revoked" in said, said
    assert not tokenFile.exists()
    assert server.refresh(token["refresh_token"]).json()["error"] == "invalid_grant"
