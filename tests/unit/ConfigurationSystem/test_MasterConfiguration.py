"""Versioned commits, conflicts, history and rollback of the master configuration."""

from __future__ import annotations

import pytest
from diraccfg import CFG

from dirac.ConfigurationSystem.Logic.MasterConfiguration import (
    MasterConfiguration,
    VersionConflict,
    compress,
    decompress,
)
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound


def edit(master: MasterConfiguration, path: str, value: str) -> str:
    cfg = master.cfg.clone()
    section, _, name = path.rpartition("/")
    from dirac.Core.Config.ConfigurationData import setOption

    setOption(cfg, path, value)
    return str(cfg)


def test_new_master_gets_a_version_and_persists(tmp_path):
    master = MasterConfiguration(tmp_path / "Master.cfg")
    assert master.version
    assert CFG().loadFromFile(str(tmp_path / "Master.cfg")).getOption("/DIRAC/Configuration/Version") == \
        master.version


def test_commit_bumps_version_and_keeps_history(tmp_path):
    master = MasterConfiguration(tmp_path / "Master.cfg")
    first = master.version
    second = master.commit(edit(master, "/A/B", "1"), "alice")
    assert second > first
    assert master.cfg.getOption("/A/B") == "1"
    assert master.history() == [[second, "alice"]]
    assert "B = 1" not in master.versionContents(first)
    reloaded = MasterConfiguration(tmp_path / "Master.cfg")
    assert reloaded.version == second and reloaded.cfg.getOption("/A/B") == "1"


def test_commit_from_an_old_version_is_refused(tmp_path):
    master = MasterConfiguration(tmp_path / "Master.cfg")
    stale = edit(master, "/A/B", "stale")
    master.commit(edit(master, "/A/B", "fresh"), "alice")
    with pytest.raises(VersionConflict, match="changed since you read it"):
        master.commit(stale, "bob")
    assert master.cfg.getOption("/A/B") == "fresh"


def test_rollback_restores_old_content_as_a_new_version(tmp_path):
    master = MasterConfiguration(tmp_path / "Master.cfg")
    v1 = master.commit(edit(master, "/A/B", "one"), "alice")
    master.commit(edit(master, "/A/B", "two"), "alice")
    v3 = master.rollback(v1, "bob")
    assert master.version == v3 and v3 > v1
    assert master.cfg.getOption("/A/B") == "one"
    assert master.history()[0] == [v3, "bob"]


def test_bad_input_is_refused_clearly(tmp_path):
    master = MasterConfiguration(tmp_path / "Master.cfg")
    with pytest.raises(InvalidArgument):
        decompress("not base64 zlib")
    with pytest.raises(NotFound):
        master.versionContents("1999-01-01 00:00:00.000000")
    assert decompress(compress("A = 1\n")) == "A = 1\n"
