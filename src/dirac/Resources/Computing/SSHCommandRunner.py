"""Batch-system commands and files on a remote host over SSH (paramiko): key authentication, optional jump host.

One connection per runner, opened at the first use and reopened once when it was dropped. Host
keys are checked against ``SSHKnownHosts`` (or the user's ``~/.ssh/known_hosts``); an unknown
host is refused unless ``SSHStrictHostKeyChecking`` is false. Failures become typed errors whose
message names the account, host and cause: ``CEAuthenticationFailed`` (key refused, unreadable
key, host key mismatch or unknown) and ``CEUnreachable`` (refused, timed out, unknown host, dropped).
"""

from __future__ import annotations

import os
import socket
import threading

import paramiko

from dirac.Core.Utilities.Logging import getLogger
from dirac.Resources.Computing.CommandRunner import CommandResult, CommandRunner, CommandTimedOut
from dirac.Resources.Computing.ComputingElement import CEAuthenticationFailed, CEUnreachable, ComputingElementError

DEFAULT_SSH_PORT = 22


def parseHostPort(value: str, defaultPort: int = DEFAULT_SSH_PORT) -> tuple[str, int]:
    """'host' or 'host:port' -> (host, port)."""
    host, _, port = value.strip().rpartition(":") if ":" in value else (value.strip(), "", "")
    if not port:
        return value.strip(), defaultPort
    if not port.isdigit():
        raise ValueError(f"invalid port in {value!r}")
    return host, int(port)


class SSHCommandRunner(CommandRunner):
    """Runs the commands as ``user`` on ``host`` over SSH, authenticating with a private key."""

    def __init__(self, host: str, port: int = DEFAULT_SSH_PORT, user: str = "", key: str = "", tunnel: str = "",
                 knownHosts: str = "", strictHostKeyChecking: bool = True, preamble: str = "",
                 timeout: float = 120.0, connectTimeout: float = 20.0):
        super().__init__(preamble, timeout)
        self.host, self.port = host, port
        self.user = user or os.environ.get("USER", "")
        self.key = os.path.expanduser(key) if key else ""
        self.tunnel = tunnel
        self.knownHosts = os.path.expanduser(knownHosts) if knownHosts else ""
        self.strictHostKeyChecking = strictHostKeyChecking
        self.connectTimeout = connectTimeout
        self.log = getLogger("Resources/Computing/SSH")
        self._client: paramiko.SSHClient | None = None
        self._gateway: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.RLock()

    @property
    def account(self) -> str:
        return f"{self.user}@{self.host}:{self.port}" + (f" via {self.tunnel}" if self.tunnel else "")

    # -- connection -----------------------------------------------------------------------------------
    def _newClient(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.knownHosts:
            client.load_host_keys(self.knownHosts)
        else:
            client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.RejectPolicy() if self.strictHostKeyChecking
                                           else paramiko.WarningPolicy())
        return client

    def _connectClient(self, client: paramiko.SSHClient, host: str, port: int, sock: paramiko.Channel | None = None
                       ) -> None:
        where = f"{self.user}@{host}:{port}"
        if self.key and not os.access(self.key, os.R_OK):
            raise CEAuthenticationFailed(f"{where}: the SSH key {self.key} cannot be read")
        try:
            client.connect(host, port=port, username=self.user, key_filename=self.key or None, timeout=self.connectTimeout,
                           banner_timeout=self.connectTimeout, auth_timeout=self.connectTimeout,
                           channel_timeout=self.connectTimeout, allow_agent=not self.key,
                           look_for_keys=not self.key, sock=sock)
        except paramiko.BadHostKeyException as exc:
            raise CEAuthenticationFailed(f"{where}: host key mismatch, refusing to connect: {exc}") from exc
        except paramiko.AuthenticationException as exc:
            raise CEAuthenticationFailed(f"{where}: authentication refused (key {self.key or 'from the agent'}): "
                                         f"{exc}") from exc
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            raise CEUnreachable(f"{where}: connection refused ({exc.strerror or exc})") from exc
        except TimeoutError as exc:
            raise CEUnreachable(f"{where}: connection timed out after {self.connectTimeout:.0f} s") from exc
        except socket.gaierror as exc:
            raise CEUnreachable(f"{where}: unknown host ({exc.strerror or exc})") from exc
        except paramiko.SSHException as exc:
            if "known_hosts" in str(exc):
                raise CEAuthenticationFailed(f"{where}: host key unknown, refusing to connect (add it to "
                                             f"SSHKnownHosts): {exc}") from exc
            raise CEUnreachable(f"{where}: SSH handshake failed: {exc}") from exc
        except (OSError, EOFError) as exc:
            raise CEUnreachable(f"{where}: cannot connect: {exc}") from exc

    def _connect(self) -> paramiko.SSHClient:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if self._client is not None and transport is not None and transport.is_active():
                return self._client
            self.close()
            sock = None
            if self.tunnel:
                gatewayHost, gatewayPort = parseHostPort(self.tunnel)
                self._gateway = self._newClient()
                self._connectClient(self._gateway, gatewayHost, gatewayPort)
                try:
                    sock = self._gateway.get_transport().open_channel(  # type: ignore[union-attr]
                        "direct-tcpip", (self.host, self.port), ("127.0.0.1", 0), timeout=self.connectTimeout)
                except (paramiko.SSHException, OSError) as exc:
                    self.close()
                    raise CEUnreachable(f"{self.account}: the jump host cannot reach the host: {exc}") from exc
            client = self._newClient()
            try:
                self._connectClient(client, self.host, self.port, sock)
            except BaseException:
                client.close()
                self.close()
                raise
            self._client = client
            self.log.debug("connected to %s", self.account)
            return client

    def close(self) -> None:
        with self._lock:
            for closable in (self._sftp, self._client, self._gateway):
                if closable is not None:
                    try:
                        closable.close()
                    except (OSError, EOFError, paramiko.SSHException) as exc:
                        self.log.debug("closing the connection to %s: %s", self.account, exc)
            self._sftp = self._client = self._gateway = None

    def _sftpClient(self) -> paramiko.SFTPClient:
        with self._lock:
            client = self._connect()
            if self._sftp is None:
                self._sftp = client.open_sftp()
            return self._sftp

    def _retrying(self, what: str, operation):  # noqa: ANN001, ANN202 - a private helper for the methods below
        """Run ``operation()``; when the connection was dropped under it, reconnect and try once more."""
        for attempt in (1, 2):
            try:
                return operation()
            except (OSError, paramiko.SSHException, EOFError) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                if isinstance(exc, OSError) and exc.errno is not None and not isinstance(exc, ConnectionError):
                    # a file error on the remote side (no such directory, permission denied), not the connection
                    raise ComputingElementError(f"{self.account}: {what} failed: {exc}") from exc
                self.close()
                if attempt == 2:
                    raise CEUnreachable(f"{self.account}: {what} failed, connection lost: {exc}") from exc
                self.log.info("connection to %s lost during %s (%s): reconnecting", self.account, what, exc)
        raise AssertionError("unreachable")

    # -- commands and files --------------------------------------------------------------------------
    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        timeout = timeout or self.timeout

        def execute() -> CommandResult:
            client = self._connect()
            try:
                _, stdout, stderr = client.exec_command(self.commandLine(command), timeout=timeout)
                out = stdout.read().decode(errors="replace")
                err = stderr.read().decode(errors="replace")
                returncode = stdout.channel.recv_exit_status()
            except TimeoutError as exc:
                self.close()
                raise CommandTimedOut(f"{self.account}: `{command[:200]}` did not finish within {timeout:.0f} s"
                                      ) from exc
            return CommandResult(command, returncode, out, err)

        return self._retrying(f"`{command[:80]}`", execute)

    def writeFile(self, path: str, data: bytes, mode: int = 0o600) -> None:
        def write() -> None:
            sftp = self._sftpClient()
            tmp = f"{path}.part"
            with sftp.open(tmp, "wb") as stream:
                stream.chmod(mode)  # before the data: a credential is never readable by others
                stream.write(data)
            sftp.posix_rename(tmp, path)

        self._retrying(f"writing {path}", write)

    def readFile(self, path: str) -> bytes | None:
        def read() -> bytes | None:
            sftp = self._sftpClient()
            try:
                with sftp.open(path, "rb") as stream:
                    return stream.read()
            except FileNotFoundError:
                return None

        return self._retrying(f"reading {path}", read)

    def homeDirectory(self) -> str:
        return self._retrying("finding the home directory", lambda: self._sftpClient().normalize("."))
