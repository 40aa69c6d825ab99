"""dirac-ca, dirac-proxy-init, dirac-proxy-info and dirac-proxy-destroy, run in-process."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from dirac.Core.Security.Keys import loadPrivateKey, privateKeyToPEM
from dirac.Core.Security.X509 import X509Certificate, X509Chain
from dirac.FrameworkSystem.scripts import dirac_ca, dirac_proxy_destroy, dirac_proxy_info, dirac_proxy_init

REGISTRY = """
Registry
{
  DefaultGroup = dirac_user
  Users
  {
    alice
    {
      DN = /O=DIRAC-Seed/CN=alice
    }
  }
  Groups
  {
    dirac_user
    {
      Users = alice
      Properties = NormalUser
    }
    dirac_prod
    {
      Users = alice
      Properties = NormalUser, ProductionManagement
    }
    dirac_admin
    {
      Users = bob
      Properties = CSAdministrator
    }
  }
}
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A CA made with dirac-ca, alice's certificate, a CS file with the Registry; no real home or proxy."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("X509_USER_CERT", "X509_USER_KEY", "DIRACSYSCONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "x509up"))
    ca = tmp_path / "ca"
    assert dirac_ca.main(["init", "--dir", str(ca)]) == 0
    assert dirac_ca.main(["user", "alice", "--dir", str(ca), "--out-dir", str(tmp_path / "alice")]) == 0
    cfg = tmp_path / "dirac.cfg"
    cfg.write_text(REGISTRY)
    return {"root": tmp_path, "ca": ca, "cert": tmp_path / "alice" / "usercert.pem",
            "key": tmp_path / "alice" / "userkey.pem", "proxy": tmp_path / "x509up", "cfg": str(cfg)}


def _init(env, *extra: str) -> int:
    return dirac_proxy_init.main(["-C", str(env["cert"]), "-K", str(env["key"]), "--cfg", env["cfg"], *extra])


def test_dirac_ca_init_host_user_write_what_they_print(tmp_path, capsys):
    ca = tmp_path / "ca"
    assert dirac_ca.main(["init", "--dir", str(ca), "--json"]) == 0
    init = json.loads(capsys.readouterr().out)
    assert init["subject"] == "/O=DIRAC-Seed/CN=DIRAC Seed CA"
    assert Path(init["installed"]).name == X509Certificate.fromFile(ca / "cacert.pem").subjectHash + ".0"
    assert dirac_ca.main(["host", "server.example.org", "--dir", str(ca), "--alt", "127.0.0.1", "--json"]) == 0
    host = json.loads(capsys.readouterr().out)
    assert host["subject"] == "/O=DIRAC-Seed/CN=server.example.org"
    assert Path(host["certificate"]).name == "hostcert.pem"
    assert os.stat(host["key"]).st_mode & 0o777 == 0o600
    X509Chain.fromCertAndKeyFiles(host["certificate"], host["key"]).verify(Path(init["installed"]).parent)
    assert dirac_ca.main(["user", "/O=DIRAC-Seed/OU=ops/CN=bob", "--dir", str(ca), "--days", "30"]) == 0
    assert "/O=DIRAC-Seed/OU=ops/CN=bob" in capsys.readouterr().out
    assert dirac_ca.main(["init", "--dir", str(ca)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert dirac_ca.main(["host", "--dir", str(ca)]) == 2


def test_proxy_init_uses_the_default_group_and_prints_a_summary(env, capsys):
    assert _init(env) == 0
    out = capsys.readouterr().out
    assert "DIRAC group  : dirac_user" in out and "username     : alice" in out and "properties   : NormalUser" in out
    proxy = X509Chain.fromFile(env["proxy"])
    assert proxy.diracGroup == "dirac_user" and proxy.identityDN == "/O=DIRAC-Seed/CN=alice"
    assert 23 * 3600 < proxy.remainingSeconds <= 24 * 3600
    assert os.stat(env["proxy"]).st_mode & 0o777 == 0o600
    proxy.verify(env["ca"] / "certificates")


def test_proxy_init_group_validity_and_output_file(env, capsys):
    out = env["root"] / "other-proxy"
    assert _init(env, "-g", "dirac_prod", "-v", "01:30", "-u", str(out), "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["group"] == "dirac_prod" and info["properties"] == ["NormalUser", "ProductionManagement"]
    assert info["path"] == str(out)
    assert 5300 < X509Chain.fromFile(out).remainingSeconds <= 5400
    assert not env["proxy"].exists()


def test_proxy_init_refuses_a_group_the_user_is_not_in_and_keeps_the_old_proxy(env, capsys):
    assert _init(env) == 0
    before = env["proxy"].read_bytes()
    capsys.readouterr()
    assert _init(env, "-g", "dirac_admin") == 3
    assert "user alice is not a member of group dirac_admin" in capsys.readouterr().err
    assert env["proxy"].read_bytes() == before
    assert [p.name for p in env["root"].iterdir() if p.name.startswith(".x509up")] == []


def test_proxy_init_rejects_a_bad_validity(env, capsys):
    with pytest.raises(SystemExit) as exc:
        _init(env, "-v", "24h")
    assert exc.value.code == 2
    assert "expected HH:MM" in capsys.readouterr().err


def test_proxy_init_with_an_encrypted_key(env, monkeypatch, capsys):
    key = loadPrivateKey(env["key"].read_bytes())
    env["key"].write_bytes(privateKeyToPEM(key, passphrase="s3cret"))
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert _init(env, "--pass-stdin") == 0
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or "s3cret")
    assert _init(env) == 0 and prompts == ["Enter Certificate password:"]
    monkeypatch.setattr("getpass.getpass", lambda prompt: "wrong")
    capsys.readouterr()
    assert _init(env) == 3
    assert "wrong passphrase" in capsys.readouterr().err


def test_proxy_init_without_a_certificate_says_where_it_looked(env, capsys):
    assert dirac_proxy_init.main(["--cfg", env["cfg"]]) == 2
    assert ".globus/usercert.pem" in capsys.readouterr().err


def test_proxy_info_text_and_json(env, capsys):
    assert _init(env, "-g", "dirac_prod") == 0
    capsys.readouterr()
    assert dirac_proxy_info.main(["--cfg", env["cfg"]]) == 0
    text = capsys.readouterr().out
    for line in ("identity     : /O=DIRAC-Seed/CN=alice", "DIRAC group  : dirac_prod", f"path         : {env['proxy']}",
                 "username     : alice", "properties   : NormalUser, ProductionManagement"):
        assert line in text
    assert dirac_proxy_info.main(["-f", str(env["proxy"]), "--cfg", env["cfg"], "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    hours, minutes, seconds = (int(x) for x in info["timeleft"].split(":"))
    assert 23 <= hours <= 24 and info["secondsLeft"] == hours * 3600 + minutes * 60 + seconds
    assert info["subject"].startswith("/O=DIRAC-Seed/CN=alice/CN=") and info["issuer"] == "/O=DIRAC-Seed/CN=alice"


def test_proxy_info_fails_clearly_without_a_proxy_or_with_an_expired_one(env, capsys):
    assert dirac_proxy_info.main(["--cfg", env["cfg"]]) == 1
    assert f"no proxy found at {env['proxy']}" in capsys.readouterr().err
    chain = X509Chain.fromCertAndKeyFiles(env["cert"], env["key"])
    chain.generateProxy(-3600, group="dirac_user").dumpToFile(env["proxy"])
    assert dirac_proxy_info.main(["--cfg", env["cfg"]]) == 1
    assert "expired on" in capsys.readouterr().err
    assert dirac_proxy_info.main(["--cfg", env["cfg"], "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["OK"] is False


def test_proxy_destroy_removes_the_file(env, capsys):
    assert _init(env) == 0
    assert dirac_proxy_destroy.main([]) == 0
    assert not env["proxy"].exists()
    assert "removed" in capsys.readouterr().out
    assert dirac_proxy_destroy.main(["-f", str(env["proxy"])]) == 0
    assert "nothing to remove" in capsys.readouterr().out
