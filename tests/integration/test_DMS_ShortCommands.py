"""The COMDIRAC-style data commands (dpwd, dcd, dls, dmkdir, dput, dget, drm, drepl, dfind, dsize, dmeta) against
the real server, as bob, with their current directory in a file of the test."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import types
from pathlib import Path

import pytest

from dirac.Core.Base.Script import EXIT_NOT_FOUND, EXIT_OK
from dirac.Interfaces.scripts import dcommands
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient

from .test_WMS_Commands import cli  # noqa: F401  (the fixture running a command's main in this process)

HOME = "/dirac/user/b/bob"
COMMANDS = ["dpwd", "dcd", "dls", "dmkdir", "dput", "dget", "drm", "drepl", "dfind", "dsize", "dmeta"]
d = types.SimpleNamespace(**{name: types.SimpleNamespace(main=getattr(dcommands, name)) for name in COMMANDS})


@pytest.mark.parametrize("name", COMMANDS)
def test_every_short_command_has_help_and_json(name, capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as exit_:
        getattr(dcommands, name)(["--help"])
    assert exit_.value.code == 0 and "--json" in capsys.readouterr().out


def test_a_session_of_short_commands(cli, tmp_path, monkeypatch) -> None:  # noqa: ANN001, F811
    monkeypatch.setenv("DCOMMANDS_CWD_FILE", str(tmp_path / "cwd"))
    area = f"{HOME}/short-{secrets.token_hex(4)}"
    local = tmp_path / "f.dat"
    local.write_bytes(os.urandom(50_000))

    assert cli(d.dpwd, proxy="bob").out.strip() == HOME
    assert cli(d.dmkdir, area, proxy="bob").code == EXIT_OK
    assert cli(d.dcd, area, proxy="bob").out.strip() == area
    assert cli(d.dpwd, "--json", proxy="bob").json() == {"cwd": area}
    ran = cli(d.dput, local, "-S", "OneBox-SE", proxy="bob")
    assert ran.code == EXIT_OK and f"{area}/f.dat uploaded to OneBox-SE" in ran.out
    assert cli(d.dls, proxy="bob").out.split() == ["f.dat"]
    assert "50000" in cli(d.dls, "-l", proxy="bob").out
    assert cli(d.drepl, "f.dat", "-S", "OneBox-Failover", proxy="bob").code == EXIT_OK
    assert cli(d.dsize, ".", "--json", proxy="bob").json() == {area: {"Files": 1, "Size": 50_000}}

    admin = FileCatalogClient(proxyLocation=str(cli.grid.proxies["admin"]), useCertificates=False)
    field = f"Run{secrets.token_hex(3)}"
    assert admin.addMetadataField(field, "INT")["OK"]
    assert cli(d.dmeta, ".", f"{field}=7", proxy="bob").code == EXIT_OK
    assert cli(d.dmeta, ".", "--json", proxy="bob").json()[field] == 7
    assert cli(d.dfind, "..", f"{field}>=5", proxy="bob").out.split() == [f"{area}/f.dat"]
    assert cli(d.dfind, "..", f"{field}>7", proxy="bob").out.strip() == "no file matches"

    out = tmp_path / "out"
    assert cli(d.dget, "f.dat", "-D", out, proxy="bob").code == EXIT_OK
    assert (out / "f.dat").read_bytes() == local.read_bytes()
    assert cli(d.drm, f"{area}/f.dat", proxy="bob").code == EXIT_OK
    assert cli(d.dls, proxy="bob").out.strip() == ""
    ran = cli(d.dget, "f.dat", "-D", out, proxy="bob")
    assert ran.code == EXIT_NOT_FOUND and "f.dat not downloaded" in ran.err
    assert cli(d.dcd, "/dirac/no/such/dir", proxy="bob").code == EXIT_NOT_FOUND
    assert cli(d.dpwd, proxy="bob").out.strip() == area  # a failed dcd changes nothing


def test_the_catalog_shell_runs_commands_from_its_input(cli, tmp_path) -> None:  # noqa: ANN001, F811
    """dirac-dms-filecatalog-cli, the real console script, as bob, fed on standard input."""
    area = f"{HOME}/shell-{secrets.token_hex(4)}"
    local = tmp_path / "g.dat"
    local.write_bytes(b"shell data")
    ran = cli(d.dput, local, "-D", area, "-S", "OneBox-SE", proxy="bob")
    assert ran.code == EXIT_OK, ran.err
    env = {**os.environ, **cli.grid.instance.environment(), "X509_USER_PROXY": str(cli.grid.proxies["bob"])}
    script = "\n".join([f"cd {area}", "pwd", "mkdir sub", "ls", "size .", "replicas g.dat", "meta get .",
                        "bogus", "exit"]) + "\n"
    done = subprocess.run([str(Path(sys.executable).parent / "dirac-dms-filecatalog-cli"), "--cwd-file",
                           str(tmp_path / "shell-cwd")], input=script, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr  # the unknown command
    lines = done.stdout.splitlines()
    assert area in lines and "sub/" in lines and "g.dat" in lines
    assert "OneBox-SE" in done.stdout and "10" in done.stdout  # the replica, the size
    assert "unknown command 'bogus'" in done.stderr
    assert (tmp_path / "shell-cwd").read_text().strip() == area
