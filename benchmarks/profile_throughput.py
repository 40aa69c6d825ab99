"""Profile the throughput benchmark: py-spy on the server, the agents and every JobWrapper.

    pip install py-spy      # a profiling tool, not a dependency of the project
    .venv/bin/python -m benchmarks.profile_throughput [--backend sqlite|mysql] [--quick] [--out DIR]

Runs ``benchmarks/bench_throughput.py`` on a fresh one-box grid while ``py-spy record`` samples
the server (``--gil``: only the thread holding the GIL, i.e. the CPU the server spends), the
Optimizers and SiteDirector agents, and each pilot's fork server with its children (the
JobWrappers; wall-clock samples, so waiting for the server shows as ``SSLSocket.read``). Writes the
raw stacks to ``DIR/<component>.txt`` (flame-graph tools read them) and prints the functions
with the most samples per component.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks import bench_throughput
from benchmarks.common import runningGrid

FORK_SERVER = "dirac.Core.Utilities.ForkServer"


def _spy(pid: int, output: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen([shutil.which("py-spy") or "py-spy", "record", "-p", str(pid), "-f", "raw", "-r", "100",
                             "-o", str(output), *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _spyForkServers(out: Path, spies: list[subprocess.Popen], stop: threading.Event) -> None:
    """Attach to each pilot's fork server (not to its children, which carry the same command line) as it starts."""
    seen: set[int] = set()
    while not stop.wait(0.1):
        for process in psutil.process_iter(["pid", "ppid", "cmdline"]):
            if process.pid in seen or FORK_SERVER not in " ".join(process.info["cmdline"] or []):
                continue
            seen.add(process.pid)
            try:
                parent = " ".join(psutil.Process(process.info["ppid"]).cmdline())
            except psutil.Error:
                continue
            if FORK_SERVER not in parent:
                spies.append(_spy(process.pid, out / f"wrappers-{process.pid}.txt", "--subprocesses"))


#: frames every stack goes through (interpreter start, event loop, threads, imports): not worth listing
GENERIC = re.compile(r"runpy|asyncio/|threading\.py|importlib|concurrent/futures|<module>|ForkServer\.py|Runner\.py|"
                     r"dirac_server\.py|tornado/(web|ioloop|gen|platform)")


def summary(files: list[Path], top: int, within: str = "") -> list[tuple[int, float, str]]:
    """(samples, share, frame) of the frames found in the most samples of the stacks through ``within`` (each
    frame counted once per stack; generic frames left out)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, number = line.rpartition(" ")
            if not number.isdigit() or within not in stack:
                continue
            frames = {re.sub(r" \(/\S*/(site-packages|src|python3\.\d+)/", " (", frame)
                      for frame in stack.split(";") if not frame.startswith("process ")}
            total += int(number)
            for frame in frames:
                if not GENERIC.search(frame):
                    counts[frame] += int(number)
    return [(count, count / max(total, 1), frame) for frame, count in counts.most_common(top)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "mysql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="40 jobs instead of 400")
    parser.add_argument("--out", default="", help="where the raw profiles go (default: a new temporary directory)")
    parser.add_argument("--top", type=int, default=25, help="frames shown per component")
    args = parser.parse_args(argv)
    if not shutil.which("py-spy"):
        parser.error("py-spy is not installed: pip install py-spy")
    out = Path(args.out or tempfile.mkdtemp(prefix="throughput-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    spies: list[subprocess.Popen] = []
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="dirac-bench-") as work, runningGrid(Path(work), args.backend) as grid:
        spies.append(_spy(int((grid.instance / "run" / "server.pid").read_text()), out / "server.txt", "--gil"))
        startAgent = grid.startAgent

        def startSpiedAgent(name: str, *options: str) -> None:
            startAgent(name, *options)
            time.sleep(0.3)
            spies.append(_spy(grid.agents[-1].pid, out / f"{name.split('/')[-1]}.txt", "--gil"))

        grid.startAgent = startSpiedAgent  # type: ignore[method-assign]
        watcher = threading.Thread(target=_spyForkServers, args=(out, spies, stop), daemon=True)
        watcher.start()
        try:
            figures = bench_throughput.run(grid, quick=args.quick)
        finally:
            stop.set()
            watcher.join()
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(60)
    for figure in figures:
        print(f"{figure.name}: {figure.value:,.1f} {figure.unit}")
    for component, files, within in (("server (CPU)", [out / "server.txt"], ""),
                                     ("JobWrappers (wall clock)", sorted(out.glob("wrappers-*.txt")), "_runChild")):
        print(f"\n== {component}")
        for count, share, frame in summary([f for f in files if f.exists()], args.top, within):
            print(f"{count:8d} {100 * share:5.1f}%  {frame[:140]}")
    print(f"\nraw profiles in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
