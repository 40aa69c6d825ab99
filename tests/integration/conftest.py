"""A real one-box instance served by a real server process on loopback HTTPS.

The ``grid`` fixture creates an instance (CA, host certificate, CS), adds a test service and
a second user, starts ``dirac-service`` with every installed service plus the test one and the
web portal in a subprocess and points this test process at it as a client (``DIRACSYSCONFIG``,
``X509_USER_PROXY``, ``X509_CERT_DIR``). Databases are the instance's SQLite files.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from diraccfg import CFG
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from dirac.Core.Base import Components
from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationData import setOption
from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.X509 import X509Chain
from dirac.Core.Tornado.Client import RPCClient
from dirac.FrameworkSystem.Logic.Instance import Instance, initInstance

HERE = Path(__file__).parent
MYSQL_SERVER_URL = os.environ.get("DIRAC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")


def freePort() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Grid:
    """A running test instance and the credentials made for the tests."""

    instance: Instance
    port: int
    process: subprocess.Popen
    ca: CertificateAuthority
    proxies: dict[str, Path] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)  # how the server process was started (restart)
    env: dict[str, str] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"https://127.0.0.1:{self.port}/{service}"

    def stopServer(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def restart(self) -> None:
        """Stop the server process and start it again on the same port (what survives a restart)."""
        self.stopServer()
        with open(self.instance.root.parent / "server.log", "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        with environmentOf(self.instance):
            waitUntilAnswering(self.url("Configuration/Server"), self.instance.proxy, self.process)

    def client(self, service: str = "Test/Dummy", proxy: str = "admin", **kwargs) -> RPCClient:
        return RPCClient(service, proxyLocation=str(self.proxies[proxy]), useCertificates=False, **kwargs)

    def uploadProxy(self, dn: str, group: str, home: Path, hours: int = 72) -> Path:
        """A certificate of ``dn`` from the instance CA in ``home``, and its proxy in ``group`` uploaded to the
        ProxyManager with dirac-proxy-init (valid ``hours``): its local proxy's path."""
        cert, key = self.ca.issueUserCertificate(dn)
        (home / "usercert.pem").write_bytes(cert)
        (home / "userkey.pem").write_bytes(key)
        (home / "userkey.pem").chmod(0o600)
        env = {**os.environ, **self.instance.environment(), "X509_USER_PROXY": str(home / "proxy.pem")}
        done = subprocess.run([str(Path(sys.executable).parent / "dirac-proxy-init"), "-C", str(home / "usercert.pem"),
                               "-K", str(home / "userkey.pem"), "-g", group, "--upload-valid", f"{hours}:00"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return home / "proxy.pem"

    def makeProxy(self, name: str, dn: str, group: str | None, lifetime: int = 3600) -> Path:
        """Issue a user certificate from the instance CA and a proxy of it."""
        cert, key = self.ca.issueUserCertificate(dn)
        path = self.instance.root / "user" / f"{name}.pem"
        X509Chain.fromPEM(cert + key).generateProxy(lifetime, group=group).dumpToFile(str(path))
        self.proxies[name] = path
        return path


def _prepareMaster(instance: Instance, options: dict[str, str]) -> None:
    cfg = CFG().loadFromFile(str(instance.masterCFG))
    for path, value in options.items():
        setOption(cfg, path, value)
    setOption(cfg, "/Systems/Test/Services/Dummy/HandlerPath", "DummyHandler:DummyHandler")
    setOption(cfg, "/Systems/Test/URLs/Dummy", cfg.getOption("/Systems/Configuration/URLs/Server").replace(
        "Configuration/Server", "Test/Dummy"))
    setOption(cfg, "/Registry/Users/bob/DN", "/O=DIRAC-Seed/OU=dirac/CN=bob")
    setOption(cfg, "/Registry/Groups/dirac_user/Users", "admin, bob")
    cfg.writeToFile(str(instance.masterCFG))


def waitUntilAnswering(url: str, proxy: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        last = RPCClient(url, proxyLocation=str(proxy), useCertificates=False, timeout=2).ping()
        if last["OK"]:
            return
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer: {last}")


@contextlib.contextmanager
def environmentOf(instance: Instance) -> Iterator[None]:
    """This process as a client of ``instance`` (its CS, proxy and CAs) for the duration of the block."""
    saved = {k: os.environ.get(k) for k in instance.environment()}
    os.environ.update(instance.environment())
    gConfig.reset()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        gConfig.reset()


@contextlib.contextmanager
def runningGrid(root: Path, databaseServer: str = "", databasePrefix: str = "",
                options: dict[str, str] | None = None) -> Iterator[Grid]:
    """A started grid in ``root``; its databases on ``databaseServer`` (SQLite files when empty); ``options``
    set in its central configuration before it starts."""
    port = freePort()
    instance = initInstance(root / "instance", port=port)
    _prepareMaster(instance, options or {})
    if databaseServer:  # in the client's file too: tests open the grid's databases directly
        cfg = CFG().loadFromFile(str(instance.clientCFG))
        setOption(cfg, "/Systems/Databases/URL", databaseServer)
        setOption(cfg, "/Systems/Databases/NamePrefix", databasePrefix)
        cfg.writeToFile(str(instance.clientCFG))
    log = open(root / "server.log", "wb")
    env = {**os.environ, "PYTHONPATH": str(HERE), "DIRACSYSCONFIG": "", "X509_CERT_DIR": str(instance.certificatesDir)}
    env.pop("X509_USER_PROXY", None)
    command = [sys.executable, "-m", "dirac.FrameworkSystem.scripts.dirac_service", *Components.listServices(),
               "Test/Dummy", *Components.listWebApps(), "--cfg", str(instance.clientCFG), "--cfg", str(instance.serverCFG)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    ca = CertificateAuthority(instance.caDir)
    ca.load()
    grid = Grid(instance, port, process, ca, proxies={"admin": instance.proxy}, command=command, env=env)
    try:
        try:
            with environmentOf(instance):
                waitUntilAnswering(grid.url("Configuration/Server"), instance.proxy, process)
        except RuntimeError as exc:
            log.flush()
            raise RuntimeError(f"{exc}\n{(root / 'server.log').read_text()[-3000:]}") from None
        grid.makeProxy("user", "/O=DIRAC-Seed/OU=dirac/CN=admin", "dirac_user")
        grid.makeProxy("bob", "/O=DIRAC-Seed/OU=dirac/CN=bob", "dirac_user")
        yield grid
    finally:
        grid.stopServer()
        log.close()
        if os.environ.get("DIRAC_TEST_SHOW_SERVER_LOG"):
            print((root / "server.log").read_text())


@pytest.fixture(scope="session")
def sqliteGrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    """A grid on SQLite, started once for the session."""
    with runningGrid(tmp_path_factory.mktemp("grid")) as started:
        yield started


@pytest.fixture
def grid(sqliteGrid: Grid) -> Iterator[Grid]:
    """The SQLite grid, with this process as its client during the test (and only then: later tests see no grid)."""
    with environmentOf(sqliteGrid.instance):
        yield sqliteGrid


@pytest.fixture(scope="session")
def mysqlGrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    """A grid whose databases are on MariaDB (fails, not skips, when CI=true and MariaDB is missing)."""
    server = create_engine(MYSQL_SERVER_URL, poolclass=NullPool, connect_args={"connect_timeout": 5})
    prefix = f"dirac_grid_{secrets.token_hex(4)}_"
    try:
        with server.connect():
            pass
    except OperationalError as exc:
        message = f"MariaDB/MySQL not reachable at {MYSQL_SERVER_URL}: {exc.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        with runningGrid(tmp_path_factory.mktemp("mysqlgrid"), MYSQL_SERVER_URL, prefix) as started:
            yield started
    finally:
        with server.begin() as conn:
            for (name,) in conn.exec_driver_sql("SHOW DATABASES").all():
                if name.startswith(prefix):
                    conn.exec_driver_sql(f"DROP DATABASE `{name}`")
        server.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def anyGrid(request: pytest.FixtureRequest) -> Iterator[Grid]:
    """The SQLite grid, then the MariaDB grid, with this process as its client during the test."""
    started = request.getfixturevalue(f"{request.param}Grid")
    with environmentOf(started.instance):
        yield started


@pytest.fixture(scope="session")
def oidcProvider(tmp_path_factory: pytest.TempPathFactory):
    """The local OpenID Connect provider of tests/servers/oidc (fails when CI=true and it cannot start)."""
    from .idp import runningProvider

    with runningProvider(tmp_path_factory.mktemp("oidc")) as provider:
        yield provider
