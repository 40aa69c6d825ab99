"""The COMDIRAC-style data commands (dpwd, dcd, dls, dmkdir, dput, dget, drm, drepl, dfind, dsize, dmeta) against
the real server, as bob, with their current directory in a file of the test."""

from __future__ import annotations

import os
import secrets
import types

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
