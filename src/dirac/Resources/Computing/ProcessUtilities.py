"""Process helpers for the CEs that run local processes: liveness with pid-reuse checks, process groups, credentials."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Utilities.Exceptions import InvalidArgument

_PROC = Path("/proc")
# how long processes may take to vanish after SIGKILL (they may be in uninterruptible sleep)
_KILL_TIMEOUT = 10.0


def _readStat(pid: int | str) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks since boot) of ``pid`` from /proc; None when gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def processStartTime(pid: int) -> int | None:
    """The start time of ``pid`` (opaque, comparable to a later call), None when unknown or gone."""
    if not _PROC.is_dir():
        return None
    stat = _readStat(pid)
    return stat[2] if stat else None


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is a finished child of this process, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its own parent (or init) collects it


def isProcessAlive(pid: int, startTime: int | None = None) -> bool:
    """True when ``pid`` runs and, if ``startTime`` is given, is still the process started then (no pid reuse)."""
    if not _PROC.is_dir():
        _reap(pid)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _readStat(pid)
    if stat is None:
        return False
    state, _, started = stat
    if startTime is not None and started != startTime:
        return False
    if state in ("Z", "X"):
        _reap(pid)
        return False
    return True


def isGroupAlive(pgid: int) -> bool:
    """True while a live (not zombie) process of process group ``pgid`` exists."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # zombies whose parent does not reap them (e.g. no init in a container) would still answer killpg
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _readStat(entry.name)
            if stat and stat[1] == pgid and stat[0] not in ("Z", "X"):
                return True
    return False


def _signalGroup(pgid: int, sig: signal.Signals, log: logging.Logger, label: str) -> None:
    try:
        os.killpg(pgid, sig)
        log.debug("%s: sent %s to process group %d", label, sig.name, pgid)
    except ProcessLookupError:
        pass  # already gone


def _waitForGroups(groups: dict[str, int], timeout: float, reap: bool) -> dict[str, int]:
    """Wait up to ``timeout`` seconds for the process groups to vanish; return those still alive."""
    deadline = time.monotonic() + timeout
    remaining = dict(groups)
    while remaining:
        for label, pgid in list(remaining.items()):
            if reap:
                isProcessAlive(pgid)  # collects a finished leader that is our child
            if not isGroupAlive(pgid):
                del remaining[label]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return remaining


def terminateProcessGroups(groups: dict[str, int], grace: float, log: logging.Logger, reap: bool = True) -> None:
    """SIGTERM each process group ({label: pgid}), SIGKILL those still alive after ``grace`` s, wait until gone.

    With ``reap`` the group leaders, when they are children of this process, are collected here;
    leave it False when a ``subprocess.Popen`` waits for them (it needs their exit status).
    """
    for label, pgid in groups.items():
        _signalGroup(pgid, signal.SIGTERM, log, label)
    remaining = _waitForGroups(groups, grace, reap)
    for label, pgid in remaining.items():
        log.warning("%s: process group %d still alive %.1f s after SIGTERM, sending SIGKILL", label, pgid, grace)
        _signalGroup(pgid, signal.SIGKILL, log, label)
    for label, pgid in _waitForGroups(remaining, _KILL_TIMEOUT, reap).items():
        log.error("%s: process group %d still alive %.1f s after SIGKILL", label, pgid, _KILL_TIMEOUT)


def readCredential(credential: str | bytes, what: str = "proxy") -> bytes:
    """The PEM bytes of a credential given either as PEM text or as the path of a file holding it."""
    if isinstance(credential, bytes):
        data = credential
    elif "-----BEGIN" in credential:
        data = credential.encode()
    else:
        path = Path(credential)
        if not path.is_file():
            raise InvalidArgument(f"the {what} is neither PEM text nor the path of a readable file: {credential!r}")
        data = path.read_bytes()
    if b"-----BEGIN" not in data:
        raise InvalidArgument(f"the {what} given holds no PEM block")
    return data


def writeCredentialFile(path: Path, data: bytes) -> Path:
    """Write a credential readable by its owner only (mode 0600) and return its path."""
    writePrivateFile(path, data, mode=0o600)
    return path


def removeFiles(paths: Iterable[Path], log: logging.Logger, label: str) -> None:
    """Delete files that are no longer needed (credentials of finished payloads), logging failures."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("%s: could not remove %s: %s", label, path, exc)
