"""What every benchmark shares: a one-box grid started with the real commands, timing, the results table.

A benchmark is a function ``run(grid, options) -> list[Figure]``; ``benchmarks/run.py`` starts
the grids (SQLite and/or MariaDB), calls the benchmarks and prints and saves what they measured.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

BIN = Path(sys.executable).parent
MYSQL_SERVER_URL = os.environ.get("DIRAC_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
#: options of the benchmarked server: room for the largest parametric submission
SERVER_OPTIONS = {"/Systems/WorkloadManagement/Services/JobManager/MaxParametricJobs": "100000"}


@dataclass
class Figure:
    """One measured number next to its target (``better``: 'higher' or 'lower')."""

    benchmark: str
    name: str
    value: float
    unit: str
    target: float | None = None
    better: str = "higher"
    backend: str = ""
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target

    def asDict(self) -> dict:
        return {**asdict(self), "met": self.met}


@dataclass
class Grid:
    """A running one-box server (services only); agents are started by the benchmarks that need them."""

    root: Path
    backend: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    agents: list[subprocess.Popen] = field(default_factory=list)

    @property
    def instance(self) -> Path:
        return self.root / "instance"

    def command(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run([str(BIN / args[0]), *args[1:]], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}: {done.stderr[-2000:]}")
        return done

    def startAgent(self, name: str, *options: str) -> None:
        log = open(self.root / f"{name.replace('/', '_')}.log", "ab")
        self.agents.append(subprocess.Popen(
            [str(BIN / "dirac-agent"), name, "--cfg", str(self.instance / "etc" / "dirac.cfg"),
             "--cfg", str(self.instance / "etc" / "server.cfg"), *self.overrides(), *options],
            env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def overrides(self) -> list[str]:
        return [] if self.backend == "sqlite" else ["-o", f"/Systems/Databases/URL={MYSQL_SERVER_URL}",
                                                    "-o", f"/Systems/Databases/NamePrefix={self.prefix}"]

    @property
    def prefix(self) -> str:
        return f"dirac_bench_{self.root.name}_"

    def stopAgents(self) -> None:
        for agent in self.agents:
            agent.terminate()
        for agent in self.agents:
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
        self.agents.clear()


def freePort() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def runningGrid(workDir: Path, backend: str) -> Iterator[Grid]:
    """``dirac-server init`` + ``start --detach --no-agents`` on SQLite or MariaDB; this process as its client."""
    root = workDir / f"{backend}-{secrets.token_hex(3)}"
    root.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DIRACSYSCONFIG", "X509_USER_PROXY", "X509_CERT_DIR")}
    env["HOME"] = str(root)
    grid = Grid(root, backend, freePort(), env)
    grid.command("dirac-server", "init", "--dir", str(grid.instance), "--port", str(grid.port))
    serverOptions = [item for path, value in SERVER_OPTIONS.items() for item in ("-o", f"{path}={value}")]
    grid.command("dirac-server", *grid.overrides(), *serverOptions, "start", "--detach", "--no-agents", "--dir",
                 str(grid.instance))
    if backend != "sqlite":  # this process opens the grid's databases too (set-up, checks)
        with open(grid.instance / "etc" / "dirac.cfg", "a") as cfg:
            cfg.write(f"\nSystems\n{{\n  Databases\n  {{\n    URL = {MYSQL_SERVER_URL}\n"
                      f"    NamePrefix = {grid.prefix}\n  }}\n}}\n")
    saved = {k: os.environ.get(k) for k in ("DIRACSYSCONFIG", "X509_USER_PROXY", "X509_CERT_DIR")}
    os.environ.update({"DIRACSYSCONFIG": str(grid.instance / "etc" / "dirac.cfg"),
                       "X509_USER_PROXY": str(grid.instance / "user" / "proxy.pem"),
                       "X509_CERT_DIR": str(grid.instance / "etc" / "grid-security" / "certificates")})
    from dirac.Core.Config import gConfig

    gConfig.reset()
    try:
        yield grid
    finally:
        grid.stopAgents()
        grid.command("dirac-server", "stop", "--dir", str(grid.instance), check=False)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        gConfig.reset()
        if backend != "sqlite":
            dropDatabases(grid.prefix)


def _onServer(statements: Callable[[Connection], None]) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    server = create_engine(MYSQL_SERVER_URL, poolclass=NullPool)
    try:
        with server.begin() as conn:
            statements(conn)
    finally:
        server.dispose()


def createDatabases(names: list[str]) -> None:
    """Empty databases on the benchmark's MariaDB server (for code that does not create its own)."""
    _onServer(lambda conn: [conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{name}`") for name in names])


def dropDatabases(prefix: str) -> None:
    """Drop every database whose name starts with ``prefix`` on the benchmark's MariaDB server."""
    def drop(conn: Connection) -> None:
        for (name,) in conn.exec_driver_sql("SHOW DATABASES").all():
            if name.startswith(prefix):
                conn.exec_driver_sql(f"DROP DATABASE `{name}`")

    _onServer(drop)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def serverRSS(grid: Grid) -> float:
    """Resident memory of the grid's server process, MiB."""
    import psutil

    pid = int((grid.instance / "run" / "server.pid").read_text())
    return psutil.Process(pid).memory_info().rss / 2**20
