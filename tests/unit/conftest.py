"""Fixtures of the unit tests: Storage Elements of the File plug-in in temporary directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig


def _fileSEOptions(name: str, root: Path, **options: str) -> dict[str, str]:
    section = f"/Resources/StorageElements/{name}"
    return {f"{section}/BackendType": "DISK", f"{section}/File/Protocol": "file", f"{section}/File/Path": str(root),
            **{f"{section}/{key}": value for key, value in options.items()}}


@pytest.fixture
def addFileSE() -> Callable[..., None]:
    """Configure (locally) a File Storage Element: addFileSE(name, root, **SE options)."""

    def add(name: str, root: Path, **options: str) -> None:
        gConfig.initialize(cfgFiles=[], options=_fileSEOptions(name, root, **options), fetchRemote=False)

    return add


@pytest.fixture
def fileSEs(tmp_path: Path, addFileSE: Callable[..., None]) -> dict[str, Path]:
    """SE-A and SE-B (File plug-in) in tmp_path/se-a and tmp_path/se-b; the CS has only these local options."""
    roots = {"SE-A": tmp_path / "se-a", "SE-B": tmp_path / "se-b"}
    for name, root in roots.items():
        root.mkdir()
        addFileSE(name, root)
    return roots
