"""The one-box life cycle through the real commands: init, start, use, stop (SIGTERM)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

BIN = Path(sys.executable).parent


def freePort() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*command: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def oneBox(tmp_path):
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if k not in ("DIRACSYSCONFIG", "X509_USER_PROXY", "X509_CERT_DIR")}
    env["HOME"] = str(tmp_path)  # nothing leaks into the real home
    run("dirac-server", "init", "--dir", str(instance), "--port", str(freePort()), env=env)
    yield instance, env
    run("dirac-server", "stop", "--dir", str(instance), env=env, check=False)


def test_init_start_use_and_stop(oneBox):
    instance, env = oneBox
    served = instance.parent / "served"
    served.mkdir()
    (served / "note.txt").write_text("served file")
    started = run("dirac-server", "-o", f"/DIRAC/Server/PilotFilesDirectory={served}", "start", "--detach", "--dir",
                  str(instance), env=env)
    assert "ready" in started.stdout
    client = {**env, "DIRACSYSCONFIG": str(instance / "etc/dirac.cfg"),
              "X509_USER_PROXY": str(instance / "user/proxy.pem"),
              "X509_CERT_DIR": str(instance / "etc/grid-security/certificates")}
    who = json.loads(run("dirac-ping-service", "--json", "--whoami", "Configuration/Server", env=client).stdout)
    assert who["whoami"]["username"] == "admin"
    assert who["whoami"]["group"] == "dirac_admin"
    caFile = next((instance / "etc/grid-security/certificates").glob("*.0"))
    port = json.loads(run("dirac-configuration-dump", "--json", "/DIRAC/Configuration", env=client).stdout)
    url = port["Servers"].replace("/Configuration/Server", "/pilot/note.txt")
    answer = requests.get(url, cert=str(instance / "user/proxy.pem"), verify=str(caFile), timeout=30)
    assert answer.text == "served file", "the -o option given to start did not reach the detached server"

    run("dirac-configuration-set", "/Registry/Users/admin/Email=admin@example.org", env=client)
    dumped = json.loads(run("dirac-configuration-dump", "--json", "/Registry/Users/admin", env=client).stdout)
    assert dumped["Email"] == "admin@example.org"

    again = run("dirac-server", "start", "--detach", "--dir", str(instance), env=env, check=False)
    assert again.returncode == 1 and "already runs" in again.stderr

    pid = int((instance / "run/server.pid").read_text())
    stopped = run("dirac-server", "stop", "--dir", str(instance), env=env)
    assert f"pid {pid}" in stopped.stdout
    assert not (instance / "run/server.pid").exists()
    log = (instance / "log/server.log").read_text()
    assert "Stopped" in log and "Traceback" not in log
    status = run("dirac-server", "status", "--dir", str(instance), env=env, check=False)
    assert status.returncode == 1


def test_init_refuses_to_overwrite_an_instance(oneBox):
    instance, env = oneBox
    result = run("dirac-server", "init", "--dir", str(instance), env=env, check=False)
    assert result.returncode == 1
    assert "already holds an instance" in result.stderr


def test_commands_have_help():
    for command in ("dirac-server", "dirac-service", "dirac-agent", "dirac-ca", "dirac-proxy-init",
                    "dirac-proxy-info", "dirac-proxy-destroy", "dirac-ping-service", "dirac-configuration-dump",
                    "dirac-configuration-set"):
        result = run(command, "--help", env=dict(os.environ))
        assert "usage:" in result.stdout
