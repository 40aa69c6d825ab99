"""ForkServer: functions run in forked children of a pre-imported server process, each in its own session,
working directory, environment and output files; their exit codes and signals come back like subprocess's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dirac.Core.Utilities.ForkServer import LOST_EXIT_CODE, ForkServer, ForkServerError

HERE = Path(__file__).parent
TARGETS = "forkserver_targets"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForkServer]:
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the server imports the targets' module by name
    started = ForkServer(preload=[TARGETS])
    started.start()
    yield started
    started.close(10)


def runIn(server: ForkServer, directory: Path, function: str, *argv: str, env: dict | None = None):
    directory.mkdir(exist_ok=True)
    return server.run(f"{TARGETS}:{function}", list(argv), directory, env or {"ONLY": "this", "PYTHONPATH": str(HERE)},
                      directory / "out", directory / "err")


def test_a_child_runs_in_its_own_session_directory_environment_and_files(server, tmp_path):
    child = runIn(server, tmp_path / "job", "describe", "7", "--job", "job.json")
    assert child.wait(30) == 7 and child.returncode == 7 and child.poll() == 7
    seen = json.loads((tmp_path / "job" / "out").read_text())
    assert seen["argv"] == ["7", "--job", "job.json"] and seen["sysArgv"][1:] == seen["argv"]
    assert seen["cwd"] == str(tmp_path / "job")
    assert seen["env"] == {"ONLY": "this", "PYTHONPATH": str(HERE)}
    assert seen["pid"] == child.pid and seen["sid"] == child.pid and seen["pgid"] == child.pid
    # 0, 1, 2 and the descriptor listing /proc/self/fd: nothing of the server's
    assert len(seen["fds"]) == 4 and seen["fds"][:3] == [0, 1, 2], seen["fds"]
    assert seen["stdin"] == ""
    assert (tmp_path / "job" / "err").read_text() == "to stderr\n"


def test_exit_codes_system_exit_exceptions_and_signals_come_back(server, tmp_path):
    assert runIn(server, tmp_path / "a", "exitWith", "3").wait(30) == 3
    assert runIn(server, tmp_path / "b", "describe").wait(30) == 0
    failed = runIn(server, tmp_path / "c", "fail", "x")
    assert failed.wait(30) == 1
    assert "RuntimeError: failed on purpose: ['x']" in (tmp_path / "c" / "err").read_text()
    sleeping = runIn(server, tmp_path / "d", "sleep", "60")
    with pytest.raises(subprocess.TimeoutExpired):
        sleeping.wait(0.2)
    os.killpg(sleeping.pid, signal.SIGKILL)  # its own process group, as the inner CEs kill payloads
    assert sleeping.wait(30) == -signal.SIGKILL


def test_children_started_from_several_threads_at_once_all_report(server, tmp_path):
    children = {}

    def start(index: int) -> None:
        children[index] = runIn(server, tmp_path / str(index), "exitWith", str(index))

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {index: child.wait(30) for index, child in children.items()} == {i: i for i in range(8)}
    assert len({child.pid for child in children.values()}) == 8


def test_a_dead_server_leaves_its_children_followed_and_is_started_again(server, tmp_path):
    running = runIn(server, tmp_path / "a", "sleep", "1")
    server._process.kill()  # the server dies; its child lives on in its session
    assert running.wait(30) == LOST_EXIT_CODE
    assert runIn(server, tmp_path / "b", "exitWith", "4").wait(30) == 4


def test_a_server_that_cannot_import_its_modules_is_an_error(tmp_path):
    broken = ForkServer(preload=["no_such_module_anywhere"])
    try:
        with pytest.raises(ForkServerError, match="stopped"):
            broken.run(f"{TARGETS}:describe", [], tmp_path, {}, tmp_path / "out", tmp_path / "err")
    finally:
        broken.close(10)


def test_close_waits_for_the_running_children(server, tmp_path):
    child = runIn(server, tmp_path / "a", "sleep", "0.5")
    server.close(30)
    assert child.wait(5) == 0 and not server.alive


def test_a_child_that_cannot_be_set_up_is_an_error_saying_why(server, tmp_path):
    with pytest.raises(ForkServerError, match="FileNotFoundError"):
        server.run(f"{TARGETS}:describe", [], tmp_path / "missing", {}, tmp_path / "out", tmp_path / "err")
    assert runIn(server, tmp_path / "ok", "exitWith", "0").wait(30) == 0  # the server goes on


def test_a_child_is_its_own_group_with_default_signals_as_soon_as_run_returns(server, tmp_path):
    for index in range(5):
        child = runIn(server, tmp_path / str(index), "sleep", "60")
        os.killpg(child.pid, signal.SIGTERM)  # at once: no window where it ignores it or is in the server's group
        assert child.wait(30) == -signal.SIGTERM
