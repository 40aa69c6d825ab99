"""The processes of a payload: measured together (CPU, memory) and stopped together.

The payload's leader runs in a session of its own (``start_new_session``); its processes are
the leader's descendants plus every process still in that session, so a child that
daemonised (re-parented to init) is still found, measured and killed. When the leader does not
lead its own session, only its descendants count (never the caller's session).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass

import psutil

MB = 1024 * 1024
# how long processes may take to vanish after SIGKILL (uninterruptible sleep)
_KILL_TIMEOUT = 10.0


@dataclass(frozen=True)
class TreeSample:
    """One measurement of the payload's processes."""

    #: CPU seconds (user + system) of the processes, including their children already reaped
    cpu: float
    #: resident memory, MB (the sum over processes: shared pages count once per process)
    rss: float
    #: virtual memory, MB
    vsize: float
    processes: int


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class ProcessTree:
    """The payload started as process ``pid``, and everything it started."""

    def __init__(self, pid: int):
        self.pid = pid
        self.root = psutil.Process(pid)
        try:
            self.session = os.getsid(pid) if os.getsid(pid) == pid else None
        except ProcessLookupError:
            self.session = None
        self._cpu = 0.0

    def members(self) -> list[psutil.Process]:
        """The processes of the payload now (zombies included: their CPU is not yet in their parent's)."""
        found: dict[int, psutil.Process] = {}
        try:
            if self.root.is_running():  # else its children were re-parented: only the session finds them
                found[self.root.pid] = self.root
                for child in self.root.children(recursive=True):
                    found[child.pid] = child
        except psutil.Error:
            found.pop(self.root.pid, None)  # the leader is gone (or its pid was reused)
        if self.session is not None:
            # getsid is one system call: only the processes of the session are read from /proc
            for pid in psutil.pids():
                if pid in found:
                    continue
                try:
                    if os.getsid(pid) == self.session:
                        found[pid] = psutil.Process(pid)
                except (OSError, psutil.Error):
                    continue
        found.pop(os.getpid(), None)
        return list(found.values())

    def sample(self) -> TreeSample:
        """Measure the payload's processes now; the CPU time never goes down between two samples."""
        cpu = rss = vsize = 0.0
        count = 0
        for process in self.members():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    cpu += times.user + times.system + times.children_user + times.children_system
                    if process.status() != psutil.STATUS_ZOMBIE:
                        memory = process.memory_info()
                        rss += memory.rss
                        vsize += memory.vms
                        count += 1
            except psutil.Error:
                continue  # it ended meanwhile: its parent accounts for it from now on
        self._cpu = max(self._cpu, cpu)
        return TreeSample(cpu=self._cpu, rss=rss / MB, vsize=vsize / MB, processes=count)

    def terminate(self, grace: float, log: logging.Logger, label: str) -> int:
        """SIGTERM every process of the payload, SIGKILL those left after ``grace`` s; the number signalled."""
        processes = [p for p in self.members() if _alive(p)]
        if not processes:
            return 0
        log.info("%s: sending SIGTERM to %d payload process(es)", label, len(processes))
        self._signal(processes, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in processes):
            time.sleep(0.05)
        # processes started during the grace period are killed too
        survivors = {p.pid: p for p in processes + self.members() if _alive(p)}
        if survivors:
            log.warning("%s: %d payload process(es) still alive %.1f s after SIGTERM, sending SIGKILL", label,
                        len(survivors), grace)
            self._signal(list(survivors.values()), signal.SIGKILL)
            deadline = time.monotonic() + _KILL_TIMEOUT
            while time.monotonic() < deadline and any(_alive(p) for p in survivors.values()):
                time.sleep(0.05)
            left = [p.pid for p in survivors.values() if _alive(p)]
            if left:
                log.error("%s: payload processes %s still alive %.0f s after SIGKILL", label, left, _KILL_TIMEOUT)
        return len(processes)

    def _signal(self, processes: list[psutil.Process], sig: signal.Signals) -> None:
        if self.session is not None:
            try:
                os.killpg(self.session, sig)  # the leader's group: its members get it at the same instant
            except (ProcessLookupError, PermissionError):
                pass
        for process in processes:
            try:
                process.send_signal(sig)
            except psutil.Error:
                continue
