"""Where a batch system's commands run: on this host (``LocalCommandRunner``) or over SSH (``SSHCommandRunner``).

A runner executes shell command lines (``/bin/sh -c``) and moves small files. Batch-system
plug-ins only ever talk to a runner, so the same Slurm code drives a local cluster and one
reached over SSH. Commands start with the CE's ``Preamble`` (e.g. ``export SLURM_CONF=...`` or
``module load slurm``) when one is configured.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dirac.Core.Security.Keys import writePrivateFile
from dirac.Resources.Computing.ComputingElement import ComputingElementError


class CommandTimedOut(ComputingElementError):
    """A batch-system command did not finish within the CE's Timeout."""


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command line."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """One line for logs and error messages: the command, its exit code and the start of its stderr."""
        detail = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"`{self.command[:200]}` exited with {self.returncode}" + (f": {detail[-1][:300]}" if detail else "")


class CommandRunner:
    """Runs shell command lines and moves files on the host where the batch system lives."""

    #: name of the host the commands run on, for references and messages
    host: str = ""

    def __init__(self, preamble: str = "", timeout: float = 120.0):
        self.preamble = preamble.strip()
        self.timeout = timeout

    def commandLine(self, command: str) -> str:
        """``command`` prefixed with the preamble."""
        return f"{self.preamble}\n{command}" if self.preamble else command

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run ``command`` with /bin/sh; its exit code and output (CommandTimedOut, or an unreachable host, raise)."""
        raise NotImplementedError

    def writeFile(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Create or replace ``path`` (absolute) with ``data`` and permissions ``mode``; parent directories exist."""
        raise NotImplementedError

    def readFile(self, path: str) -> bytes | None:
        """The content of ``path``; None when it does not exist."""
        raise NotImplementedError

    def homeDirectory(self) -> str:
        """The home directory of the account the commands run as (relative areas start there)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (nothing to do for local commands)."""


class LocalCommandRunner(CommandRunner):
    """Runs the commands on this host, as the user of this process."""

    host = "localhost"

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        timeout = timeout or self.timeout
        try:
            done = subprocess.run(["/bin/sh", "-c", self.commandLine(command)], capture_output=True, text=True,
                                  errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise CommandTimedOut(f"`{command[:200]}` did not finish within {timeout:.0f} s") from exc
        return CommandResult(command, done.returncode, done.stdout, done.stderr)

    def writeFile(self, path: str, data: bytes, mode: int = 0o600) -> None:
        writePrivateFile(Path(path), data, mode=mode)

    def readFile(self, path: str) -> bytes | None:
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None

    def homeDirectory(self) -> str:
        return os.path.expanduser("~")


def quote(value: str | Path) -> str:
    """``value`` quoted for a /bin/sh command line."""
    return shlex.quote(str(value))
