"""Fixtures shared by every test: a clean configuration and database URLs for both backends."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from dirac.Core.Base.DB import disposeEngines
from dirac.Core.Config import gConfig

MYSQL_SERVER_URL = os.environ.get("DIRAC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")


@pytest.fixture(autouse=True)
def _resetConfiguration() -> Iterator[None]:
    """Forget every configuration option a test loaded or set."""
    yield
    gConfig.reset()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh SQLite file in the test's temporary directory."""
    url = f"sqlite:///{tmp_path / 'test.sqlite'}"
    yield url
    disposeEngines(url)


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """The URL of a throwaway MariaDB database, dropped afterwards (skipped, or failed when CI=true, if unreachable)."""
    server = create_engine(MYSQL_SERVER_URL, poolclass=NullPool, connect_args={"connect_timeout": 5})
    name = f"dirac_test_{secrets.token_hex(6)}"
    try:
        with server.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    except OperationalError as exc:
        server.dispose()
        message = f"MariaDB/MySQL not reachable at {MYSQL_SERVER_URL}: {exc.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    url = f"{MYSQL_SERVER_URL}/{name}"
    yield url
    disposeEngines(url)
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    server.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database, once on SQLite and once on MariaDB."""
    return request.getfixturevalue(f"{request.param}_url")
