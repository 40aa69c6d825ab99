"""The data management commands (dirac-dms-*) against the real server: upload, replicas, replicate, metadata,
find, list, download with checksum, remove, and their exit codes. Commands run in this process through
``main(argv)`` as bob (dirac_user), with one real console script to prove the entry points."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from dirac.Core.Base.Script import EXIT_AUTH, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from dirac.Core.Utilities.Adler import fileAdler32
from dirac.Interfaces.scripts import (
    dirac_dms_add_file,
    dirac_dms_catalog_metadata,
    dirac_dms_find_lfns,
    dirac_dms_get_file,
    dirac_dms_lfn_replicas,
    dirac_dms_remove_files,
    dirac_dms_replicate_lfn,
    dirac_dms_user_lfns,
)
from dirac.Resources.Catalog.FileCatalogClient import FileCatalogClient

from .test_WMS_Commands import cli  # noqa: F401  (the fixture running a command's main in this process)

COMMANDS = [dirac_dms_add_file, dirac_dms_get_file, dirac_dms_lfn_replicas, dirac_dms_remove_files,
            dirac_dms_replicate_lfn, dirac_dms_user_lfns, dirac_dms_find_lfns, dirac_dms_catalog_metadata]
HOME = "/dirac/user/b/bob"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda module: module.__name__.rpartition(".")[2])
def test_every_dms_command_has_help_json_and_the_common_switches(command, capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as exit_:
        command.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "--json" in out and "-o /Path=value" in out


def test_dmsCommands_uploadReplicateFindDownloadRemove(cli, tmp_path) -> None:  # noqa: ANN001, F811
    area = f"{HOME}/cmd-{secrets.token_hex(4)}"
    local = tmp_path / "f.dat"
    local.write_bytes(os.urandom(100_000))
    uploads = tmp_path / "uploads.txt"
    uploads.write_text(f"{area}/f1 {local} OneBox-SE\n{area}/f2 {local} OneBox-SE\n{area}/bad {tmp_path}/none OneBox-SE\n")

    ran = cli(dirac_dms_add_file, uploads, proxy="bob")
    assert ran.code == EXIT_FAILED and f"Successfully uploaded {area}/f1" in ran.out
    assert f"ERROR: {area}/bad not uploaded" in ran.err and "no such local file" in ran.err
    assert cli(dirac_dms_add_file, f"{area}/f1", local, "OneBox-SE", proxy="bob").code == EXIT_FAILED  # exists

    ran = cli(dirac_dms_replicate_lfn, f"{area}/f1", "OneBox-Failover", proxy="bob")
    assert ran.code == EXIT_OK and "replicated to OneBox-Failover" in ran.out
    ran = cli(dirac_dms_lfn_replicas, f"{area}/f1", f"{area}/missing", "--json", proxy="bob")
    answer = ran.json()
    assert set(answer["Successful"][f"{area}/f1"]) == {"OneBox-SE", "OneBox-Failover"}
    assert ran.code == EXIT_NOT_FOUND and f"{area}/missing" in answer["Failed"]

    ran = cli(dirac_dms_catalog_metadata, f"{area}/f2", proxy="bob")
    assert ran.code == EXIT_OK and fileAdler32(local) in ran.out and "GUID" in ran.out

    ran = cli(dirac_dms_user_lfns, "--json", proxy="bob")
    assert {f"{area}/f1", f"{area}/f2"} <= set(ran.json())
    ran = cli(dirac_dms_user_lfns, "-b", area, "-w", "*2", proxy="bob")
    assert ran.out.split() == [f"{area}/f2"]
    assert cli(dirac_dms_find_lfns, "Path=/dirac", proxy="bob").code == EXIT_USAGE

    out = tmp_path / "out"
    out.mkdir()
    ran = cli(dirac_dms_get_file, f"{area}/f1", f"{area}/f2", "-D", out, "--SE", "OneBox-Failover", proxy="bob")
    assert ran.code == EXIT_NOT_FOUND and "no replica on OneBox-Failover" in ran.err
    assert (out / "f1").read_bytes() == local.read_bytes() and not (out / "f2").exists()

    ran = cli(dirac_dms_remove_files, f"{area}/f1", proxy="user")  # admin in dirac_user: not bob's directory
    assert ran.code == EXIT_AUTH and "Permission denied" in ran.err
    lfnList = tmp_path / "lfns.txt"
    lfnList.write_text(f"{area}/f1\n{area}/f2\n")
    ran = cli(dirac_dms_remove_files, lfnList, proxy="bob")
    assert ran.code == EXIT_OK and f"Removed {area}/f2" in ran.out
    assert not (cli.grid.instance.root / "storage" / "Failover" / area.lstrip("/") / "f1").exists()


def test_findLfns_byMetadata(cli, tmp_path) -> None:  # noqa: ANN001, F811
    field = f"Run{secrets.token_hex(3)}"
    admin = FileCatalogClient(proxyLocation=str(cli.grid.proxies["admin"]), useCertificates=False)
    assert admin.addMetadataField(field, "int", "-f")["OK"]
    area = f"{HOME}/find-{secrets.token_hex(4)}"
    local = tmp_path / "f"
    local.write_bytes(b"x")
    for run in (1, 7):
        assert cli(dirac_dms_add_file, f"{area}/r{run}", local, "OneBox-SE", proxy="bob").code == EXIT_OK
    bob = FileCatalogClient(proxyLocation=str(cli.grid.proxies["bob"]), useCertificates=False)
    assert bob.setMetadataBulk({f"{area}/r{run}": {field: run} for run in (1, 7)})["OK"]
    ran = cli(dirac_dms_find_lfns, f"Path={area}", f"{field}>=5", proxy="bob")
    assert ran.code == EXIT_OK and ran.out.split() == [f"{area}/r7"]


def test_consoleScript_exitCodeAndJSON(grid, tmp_path) -> None:  # noqa: ANN001
    env = {**os.environ, "X509_USER_PROXY": str(grid.proxies["bob"])}
    ran = subprocess.run([str(Path(sys.executable).parent / "dirac-dms-lfn-replicas"), f"{HOME}/nothing-here",
                          "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert ran.returncode == EXIT_NOT_FOUND, ran.stderr
    assert "No such file" in ran.stdout
