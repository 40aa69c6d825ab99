"""The Watchdog: a thread that watches a running payload, reports on it, and stops it when it must.

Every ``PollingTime`` seconds it measures the payload's process tree (``ProcessTree``) and
checks, in this order: a kill asked for (a ``Kill`` command from the server, or the wrapper
itself being stopped), memory, CPU time, wall-clock time, free disk space and CPU progress
(stalled). Every ``HeartBeatInterval`` seconds it sends the numbers with
``JobStateUpdate.sendHeartBeat(jobID, dynamicData, staticData)``, whose answer may carry
commands. When a check fails it stops the payload (SIGTERM, then SIGKILL after
``KillGracePeriod``) and keeps the reason as ``failureReason``: the job's minor status.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.JobWrapper.ProcessTree import ProcessTree, TreeSample
from dirac.WorkloadManagementSystem.JobWrapper.Settings import JobWrapperSettings

#: DIRAC's wording when a job used more than its own CPU time (JobMinorStatus.JOB_EXCEEDED_CPU is the queue's)
JOB_EXCEEDED_CPU_LIMIT = "Job has exceeded maximum CPU time limit"
#: the command the server sends with a heartbeat answer when the job was killed
KILL_COMMAND = "Kill"


@dataclass(frozen=True)
class WatchdogLimits:
    """What the payload may use; 0 means no limit."""

    #: CPU seconds of the whole process tree, as measured on this node (not normalised)
    cpuTime: float = 0.0
    #: seconds since the payload started
    wallClockTime: float = 0.0
    #: resident memory of the whole process tree, MB
    maxRAM: float = 0.0


def cpuLimit(normalisedCPUTime: float, cpuNormalizationFactor: float, processors: int, marginPercent: float) -> float:
    """The CPU seconds a payload may use on this node: the JDL CPUTime (HS06 s per processor) turned into local
    seconds with the node's CPU power, times the processors, plus the margin. Without a factor, the JDL
    seconds are taken as local seconds."""
    if normalisedCPUTime <= 0:
        return 0.0
    seconds = normalisedCPUTime / cpuNormalizationFactor if cpuNormalizationFactor > 0 else normalisedCPUTime
    return seconds * max(processors, 1) * (1 + marginPercent / 100)


def tail(path: Path | None, lines: int) -> str:
    """The last ``lines`` lines of a text file (at most 64 kB read), '' when there is none."""
    if path is None or lines <= 0:
        return ""
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 65536))
            data = stream.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class Watchdog(threading.Thread):
    """Watches one payload process (a ``subprocess.Popen`` leading its own session) until it ends."""

    def __init__(self, jobID: int, process: subprocess.Popen, client: Any, limits: WatchdogLimits,
                 settings: JobWrapperSettings, workDir: str | Path = ".", stdOutput: Path | None = None,
                 log: logging.Logger | None = None):
        super().__init__(name=f"Watchdog-{jobID}", daemon=True)
        self.jobID = jobID
        self.process = process
        self.client = client
        self.limits = limits
        self.settings = settings
        self.workDir = Path(workDir)
        self.stdOutput = stdOutput
        self.log = log or getLogger("WorkloadManagement/Watchdog")
        self.label = f"Job {jobID}"
        self.tree = ProcessTree(process.pid)
        self.startTime = time.monotonic()
        #: the minor status of the job when the Watchdog stopped the payload, else None
        self.failureReason: str | None = None
        #: True when the payload was stopped by a Kill command (the job is Killed: nothing may override it)
        self.killedByCommand = False
        self.lastSample = TreeSample(0.0, 0.0, 0.0, 0)
        self.maxRSS = 0.0
        self.heartBeats = 0
        self._wake = threading.Event()
        self._stopping = False
        self._killRequest: tuple[str, bool] | None = None
        self._grace = settings.KillGracePeriod
        self._cpuHistory: collections.deque[tuple[float, float]] = collections.deque()
        self._lastHeartBeat: float | None = None

    # -- control from other threads ------------------------------------------------------------------
    def requestKill(self, reason: str, byCommand: bool = False, grace: float | None = None) -> None:
        """Ask the Watchdog to stop the payload now, with ``reason`` as the job's minor status.

        ``grace`` (seconds between SIGTERM and SIGKILL) shortens KillGracePeriod when time is short.
        """
        if self._killRequest is None:
            self._killRequest = (reason, byCommand)
            if grace is not None:
                self._grace = min(grace, self._grace)
        self._wake.set()

    def stop(self) -> None:
        """The payload ended: end the watch."""
        self._stopping = True
        self._wake.set()

    @property
    def wallClock(self) -> float:
        return time.monotonic() - self.startTime

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> None:
        self.log.info("%s: Watchdog started for payload process %d (CPU limit %.0f s, wall clock %.0f s, "
                      "memory %.0f MB)", self.label, self.process.pid, self.limits.cpuTime,
                      self.limits.wallClockTime, self.limits.maxRAM)
        while True:
            self._wake.wait(self.settings.PollingTime)
            self._wake.clear()
            if self._stopping or self.process.poll() is not None:
                if self._killRequest is None:
                    break
            try:
                if self.checkOnce():
                    break
            except Exception:  # the watch must go on: a bad sample must not leave the payload unwatched
                self.log.exception("%s: Watchdog check failed", self.label)
        self.log.info("%s: Watchdog ended after %.0f s: CPU %.1f s, max memory %.1f MB, %d heartbeat(s)%s",
                      self.label, self.wallClock, self.lastSample.cpu, self.maxRSS, self.heartBeats,
                      f", stopped the payload: {self.failureReason}" if self.failureReason else "")

    def checkOnce(self) -> bool:
        """One cycle: measure, check, maybe send a heartbeat; True when the payload was stopped."""
        if self._killRequest is None:
            sample = self.sample()
            reason = self.checkLimits(sample)
            if reason:
                self.requestKill(reason)
            elif self._heartBeatDue():
                self.sendHeartBeat(sample)
        if self._killRequest is not None:
            reason, byCommand = self._killRequest
            self.failureReason = reason
            self.killedByCommand = byCommand
            self.log.warning("%s: stopping the payload: %s", self.label, reason)
            self.tree.terminate(self._grace, self.log, self.label)
            return True
        return False

    def sample(self) -> TreeSample:
        """Measure the payload now and remember the CPU progress."""
        sample = self.tree.sample()
        now = self.wallClock
        self.lastSample = sample
        self.maxRSS = max(self.maxRSS, sample.rss)
        self._cpuHistory.append((now, sample.cpu))
        while len(self._cpuHistory) > 2 and self._cpuHistory[1][0] <= now - self.settings.CPUSampleTime:
            self._cpuHistory.popleft()
        return sample

    # -- the checks ----------------------------------------------------------------------------------
    def checkLimits(self, sample: TreeSample) -> str | None:
        """The minor status to stop the payload with, or None when it is within its limits."""
        limits, wallClock = self.limits, self.wallClock
        if limits.maxRAM and sample.rss > limits.maxRAM:
            self.log.warning("%s: memory %.1f MB over the limit of %.0f MB", self.label, sample.rss, limits.maxRAM)
            return JobMinorStatus.JOB_EXCEEDED_MEMORY
        if limits.cpuTime and sample.cpu > limits.cpuTime:
            self.log.warning("%s: CPU time %.1f s over the limit of %.1f s", self.label, sample.cpu, limits.cpuTime)
            return JOB_EXCEEDED_CPU_LIMIT
        if limits.wallClockTime and wallClock > limits.wallClockTime:
            self.log.warning("%s: wall-clock time %.0f s over the limit of %.0f s", self.label, wallClock,
                             limits.wallClockTime)
            return JobMinorStatus.JOB_EXCEEDED_WALL_CLOCK
        if self.settings.MinDiskSpace:
            free = self.freeDiskSpace()
            if 0 <= free < self.settings.MinDiskSpace:
                self.log.warning("%s: %.1f MB free in %s, below %.0f MB", self.label, free, self.workDir,
                                 self.settings.MinDiskSpace)
                return JobMinorStatus.JOB_INSUFFICIENT_DISK
        if self.isStalled():
            return JobMinorStatus.WATCHDOG_STALLED
        return None

    def isStalled(self) -> bool:
        """Whether the payload used at most MinCPUWallClockRatio % of a core over the last CPUSampleTime seconds."""
        window = self.settings.CPUSampleTime
        if not window or len(self._cpuHistory) < 2:
            return False
        (start, cpuStart), (now, cpuNow) = self._cpuHistory[0], self._cpuHistory[-1]
        if now - start < window:
            return False
        progress = cpuNow - cpuStart
        if progress > self.settings.MinCPUWallClockRatio / 100 * (now - start):
            return False
        self.log.warning("%s: %.1f s of CPU in the last %.0f s: stalled", self.label, progress, now - start)
        return True

    def freeDiskSpace(self) -> float:
        """MB free in the working directory (-1 when unknown)."""
        try:
            return shutil.disk_usage(self.workDir).free / (1024 * 1024)
        except OSError:
            return -1.0

    # -- heartbeats ----------------------------------------------------------------------------------
    def _heartBeatDue(self) -> bool:
        return self._lastHeartBeat is None or self.wallClock - self._lastHeartBeat >= self.settings.HeartBeatInterval

    def heartBeatData(self, sample: TreeSample) -> tuple[dict[str, Any], dict[str, Any]]:
        """(dynamic data, static data) of a heartbeat, with DIRAC's names."""
        dynamic = {
            "CPUConsumed": round(sample.cpu, 2),
            "WallClockTime": round(self.wallClock, 1),
            "MemoryUsed": round(sample.rss, 1),
            "Vsize": round(sample.vsize, 1),
            "LoadAverage": round(os.getloadavg()[0], 2),
            "AvailableDiskSpace": round(self.freeDiskSpace(), 1),
        }
        output = tail(self.stdOutput, self.settings.MaxJobPeekLines)
        return dynamic, ({"StandardOutput": output} if output else {})

    def sendHeartBeat(self, sample: TreeSample) -> None:
        """Send a heartbeat and act on the commands in the answer (a failure is logged, the job goes on)."""
        self._lastHeartBeat = self.wallClock
        dynamic, static = self.heartBeatData(sample)
        result = self.client.sendHeartBeat(self.jobID, dynamic, static)
        if not result["OK"]:
            self.log.warning("%s: heartbeat not sent: %s", self.label, result["Message"])
            return
        self.heartBeats += 1
        commands = result["Value"] or {}
        if not isinstance(commands, dict):
            self.log.warning("%s: heartbeat answer is not a dict of commands: %r", self.label, commands)
            return
        for command in commands:
            if command == KILL_COMMAND:
                self.log.info("%s: Kill command received with the heartbeat", self.label)
                self.requestKill(JobMinorStatus.RECEIVED_KILL_SIGNAL, byCommand=True)
            else:
                self.log.warning("%s: unknown command %r from the heartbeat answer, ignored", self.label, command)
