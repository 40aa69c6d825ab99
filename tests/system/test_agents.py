"""dirac-agent runs real agent processes: one cycle with --once, a loop stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def agentConfig(tmp_path: Path, fail: bool = False, polling: float = 0.2) -> tuple[Path, Path]:
    output = tmp_path / "cycles.txt"
    cfg = tmp_path / "agent.cfg"
    cfg.write_text(f"""
Systems
{{
  Test
  {{
    Agents
    {{
      Counter
      {{
        Module = CounterAgent:CounterAgent
        OutputFile = {output}
        PollingTime = {polling}
        Fail = {"yes" if fail else "no"}
      }}
    }}
  }}
}}
""")
    return cfg, output


def agentCommand(cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dirac.FrameworkSystem.scripts.dirac_agent", "Test/Counter", "--cfg", str(cfg),
            *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(HERE), "DIRACSYSCONFIG": ""}


def test_once_runs_exactly_one_cycle(tmp_path):
    cfg, output = agentConfig(tmp_path)
    result = subprocess.run(agentCommand(cfg, "--once"), env=environment(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert output.read_text() == "cycle\n"
    assert "cycle 1 done" in result.stderr


def test_a_failing_cycle_gives_a_failure_exit_code(tmp_path):
    cfg, _ = agentConfig(tmp_path, fail=True)
    result = subprocess.run(agentCommand(cfg, "--once"), env=environment(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "asked to fail" in result.stderr


def test_sigterm_stops_a_looping_agent_cleanly(tmp_path):
    cfg, output = agentConfig(tmp_path)
    process = subprocess.Popen(agentCommand(cfg), env=environment(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not output.exists() or output.read_text().count("cycle") < 3):
        time.sleep(0.1)
    assert output.read_text().count("cycle") >= 3
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Stopped" in stderr and "Traceback" not in stderr
