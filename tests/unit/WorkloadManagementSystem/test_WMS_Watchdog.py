"""The Watchdog against real payload processes (small Python scripts in their own session).

The JobStateUpdate service is replaced by ``RecordingJobStateClient``, which records the
heartbeats and answers the commands a test gives it; the real round trip is in
tests/integration/test_WMS_JobWrapper.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.JobWrapper.Settings import JobWrapperSettings
from dirac.WorkloadManagementSystem.JobWrapper.Watchdog import (
    JOB_EXCEEDED_CPU_LIMIT,
    Watchdog,
    WatchdogLimits,
    cpuLimit,
)

pytestmark = pytest.mark.timeout(120)

FAST = JobWrapperSettings(PollingTime=0.1, HeartBeatInterval=0.3, KillGracePeriod=2.0, MinDiskSpace=0,
                          CPUSampleTime=0)
BURN = "while True: pass"
SLEEP = "import time; time.sleep(120)"


class RecordingJobStateClient:
    """Stands for JobStateUpdate: records heartbeats, answers ``commands`` once, or fails when ``down``."""

    def __init__(self, commands: dict[str, str] | None = None, down: bool = False):
        self.heartBeats: list[tuple[int, dict, dict]] = []
        self.commands = commands or {}
        self.down = down

    def sendHeartBeat(self, jobID: int, dynamicData: dict, staticData: dict) -> dict:
        if self.down:
            return S_ERROR(1110, "cannot reach WorkloadManagement/JobStateUpdate: connection refused")
        self.heartBeats.append((jobID, dynamicData, staticData))
        commands, self.commands = self.commands, {}
        return S_OK(commands)


def startPayload(code: str, tmp_path: Path, stdout: Path | None = None) -> subprocess.Popen:
    """Run a Python snippet as a payload leading its own session, as the JobWrapper does."""
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, stdout=out,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        if stdout:
            out.close()


def watch(process: subprocess.Popen, limits: WatchdogLimits, tmp_path: Path, settings: JobWrapperSettings = FAST,
          client: RecordingJobStateClient | None = None, stdOutput: Path | None = None,
          timeout: float = 60) -> tuple[Watchdog, int, float]:
    """Watch ``process`` to its end like the JobWrapper does: (watchdog, return code, seconds it took)."""
    watchdog = Watchdog(42, process, client or RecordingJobStateClient(), limits, settings, tmp_path, stdOutput)
    start = time.monotonic()
    watchdog.start()
    try:
        returncode = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        watchdog.stop()
        watchdog.join(timeout=30)
    assert not watchdog.is_alive()
    return watchdog, returncode, time.monotonic() - start


def waitForFile(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_cpu_burning_payload_over_its_cpu_limit_is_killed_with_the_cpu_reason(tmp_path: Path) -> None:
    process = startPayload(BURN, tmp_path)
    watchdog, returncode, took = watch(process, WatchdogLimits(cpuTime=1.0), tmp_path)
    assert watchdog.failureReason == JOB_EXCEEDED_CPU_LIMIT
    assert returncode == -signal.SIGTERM
    assert watchdog.lastSample.cpu > 1.0
    assert took < 30
    assert not watchdog.killedByCommand


def test_memory_hog_over_max_ram_is_killed_with_the_memory_reason(tmp_path: Path) -> None:
    process = startPayload("""
        import time
        hog = b"x" * (300 * 1024 * 1024)
        time.sleep(120)
    """, tmp_path)
    watchdog, returncode, _ = watch(process, WatchdogLimits(maxRAM=100), tmp_path)
    assert watchdog.failureReason == JobMinorStatus.JOB_EXCEEDED_MEMORY
    assert returncode == -signal.SIGTERM
    assert watchdog.maxRSS > 100


def test_wall_clock_overrun_is_killed_with_the_wall_clock_reason(tmp_path: Path) -> None:
    process = startPayload(SLEEP, tmp_path)
    watchdog, returncode, took = watch(process, WatchdogLimits(wallClockTime=1.0), tmp_path)
    assert watchdog.failureReason == JobMinorStatus.JOB_EXCEEDED_WALL_CLOCK
    assert returncode == -signal.SIGTERM
    assert 1.0 <= took < 20


def test_kill_command_arriving_with_a_heartbeat_kills_the_payload(tmp_path: Path) -> None:
    client = RecordingJobStateClient(commands={"Kill": ""})
    process = startPayload(SLEEP, tmp_path)
    watchdog, returncode, took = watch(process, WatchdogLimits(), tmp_path, client=client)
    assert watchdog.failureReason == JobMinorStatus.RECEIVED_KILL_SIGNAL
    assert watchdog.killedByCommand
    assert returncode == -signal.SIGTERM
    assert len(client.heartBeats) == 1 and took < 20


def test_child_processes_of_the_payload_are_killed_too_even_daemonised_ones(tmp_path: Path) -> None:
    process = startPayload("""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        if os.fork() == 0:          # a grandchild re-parented to init when its parent exits at once
            if os.fork() == 0:
                open("orphan.pid", "w").write(str(os.getpid()))
                time.sleep(120)
            os._exit(0)
        open("child.pid", "w").write(str(child.pid))
        time.sleep(120)
    """, tmp_path)
    child = int(waitForFile(tmp_path / "child.pid"))
    orphan = int(waitForFile(tmp_path / "orphan.pid"))
    assert psutil.Process(orphan).ppid() != process.pid
    watchdog, _, _ = watch(process, WatchdogLimits(wallClockTime=1.5), tmp_path)
    assert watchdog.failureReason == JobMinorStatus.JOB_EXCEEDED_WALL_CLOCK
    deadline = time.monotonic() + 10
    while not (gone(child) and gone(orphan)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child) and gone(orphan)


def test_payload_ignoring_sigterm_is_killed_with_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    process = startPayload("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("ready", "w").write("1")
        time.sleep(120)
    """, tmp_path)
    waitForFile(tmp_path / "ready")
    settings = replace(FAST, KillGracePeriod=1.0)
    watchdog, returncode, took = watch(process, WatchdogLimits(wallClockTime=0.5), tmp_path, settings)
    assert returncode == -signal.SIGKILL
    assert watchdog.failureReason == JobMinorStatus.JOB_EXCEEDED_WALL_CLOCK
    assert 1.5 <= took < 20


def test_heartbeats_carry_cpu_wall_clock_memory_and_the_last_output_lines(tmp_path: Path) -> None:
    client = RecordingJobStateClient()
    stdout = tmp_path / "std.out"
    process = startPayload("""
        import time
        block = b"y" * (60 * 1024 * 1024)
        for line in range(30):
            print("line", line, flush=True)
        end = time.process_time() + 2.0
        while time.process_time() < end:
            pass
    """, tmp_path, stdout)
    watchdog, returncode, _ = watch(process, WatchdogLimits(cpuTime=100, maxRAM=1000, wallClockTime=100), tmp_path,
                                    client=client, stdOutput=stdout)
    assert returncode == 0 and watchdog.failureReason is None
    assert len(client.heartBeats) >= 2
    jobID, dynamic, static = client.heartBeats[-1]
    assert jobID == 42
    assert set(dynamic) == {"CPUConsumed", "WallClockTime", "MemoryUsed", "Vsize", "LoadAverage",
                            "AvailableDiskSpace"}
    assert 0.3 < dynamic["CPUConsumed"] <= dynamic["WallClockTime"] + 0.5
    assert dynamic["MemoryUsed"] > 50 and dynamic["Vsize"] >= dynamic["MemoryUsed"]
    cpus = [heartBeat[1]["CPUConsumed"] for heartBeat in client.heartBeats]
    assert cpus == sorted(cpus)
    assert static["StandardOutput"].splitlines()[-1] == "line 29"
    assert len(static["StandardOutput"].splitlines()) == FAST.MaxJobPeekLines


def test_stalled_payload_without_cpu_progress_is_killed_with_the_stalled_reason(tmp_path: Path) -> None:
    settings = replace(FAST, CPUSampleTime=1.5, MinCPUWallClockRatio=5)
    process = startPayload(SLEEP, tmp_path)
    watchdog, _, took = watch(process, WatchdogLimits(), tmp_path, settings)
    assert watchdog.failureReason == JobMinorStatus.WATCHDOG_STALLED
    assert 1.5 <= took < 20


def test_busy_payload_is_not_stalled(tmp_path: Path) -> None:
    settings = replace(FAST, CPUSampleTime=0.5, MinCPUWallClockRatio=5)
    process = startPayload("""
        import time
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            pass
    """, tmp_path)
    watchdog, returncode, _ = watch(process, WatchdogLimits(), tmp_path, settings)
    assert returncode == 0 and watchdog.failureReason is None


def test_payload_within_its_limits_ends_by_itself_and_heartbeat_failures_do_not_stop_it(tmp_path: Path) -> None:
    client = RecordingJobStateClient(down=True)
    process = startPayload("import time; time.sleep(1); raise SystemExit(3)", tmp_path)
    watchdog, returncode, _ = watch(process, WatchdogLimits(cpuTime=100, wallClockTime=100, maxRAM=1000), tmp_path,
                                    client=client)
    assert returncode == 3
    assert watchdog.failureReason is None and watchdog.heartBeats == 0


def test_kill_requested_by_the_wrapper_stops_the_payload_with_that_reason(tmp_path: Path) -> None:
    process = startPayload(SLEEP, tmp_path)
    watchdog = Watchdog(42, process, RecordingJobStateClient(), WatchdogLimits(), FAST, tmp_path)
    watchdog.start()
    watchdog.requestKill(JobMinorStatus.RECEIVED_KILL_SIGNAL)
    assert process.wait(timeout=20) == -signal.SIGTERM
    watchdog.join(timeout=20)
    assert watchdog.failureReason == JobMinorStatus.RECEIVED_KILL_SIGNAL and not watchdog.killedByCommand


def test_cpu_limit_turns_normalised_seconds_per_processor_into_local_seconds_with_the_margin() -> None:
    assert cpuLimit(1000, 10.0, 1, 0) == pytest.approx(100)
    assert cpuLimit(1000, 10.0, 2, 20) == pytest.approx(240)
    assert cpuLimit(1000, 0.0, 1, 20) == pytest.approx(1200)  # no CPU power known: JDL seconds as local seconds
    assert cpuLimit(0, 10.0, 1, 20) == 0
