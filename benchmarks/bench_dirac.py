"""DIRAC's own code on the same work as ours, back to back in the same run: ours, DIRAC's, and the ratio.

DIRAC (``pip install DIRAC``, plus mysqlclient for its DB classes) lives in a venv of its own,
cached between runs (tests/dirac_venv.py). Each workload runs as two driver processes
(benchmarks/drivers/): ours with this venv's Python, DIRAC's with the DIRAC venv's, one right
after the other on the same MariaDB server, given the same input by drivers/workloads.py and
the same dirac.cfg (written into the grid's work directory; DIRAC reads its DB connection from
/Systems/Databases/{Host,Port,User,Password} and /Systems/<System>/Databases/<DB>/DBName, ours
from /Systems/Databases/URL and NamePrefix). The databases are throwaway ones, dropped at the end.

- ``jdl``: 10,000 job descriptions (``--quick`` 1,000) through the submission-side parsing and
  checks: our ``prepareJobs`` against DIRAC 9's JobManager + JobDB steps (ClassAd, JobManifest,
  JobDescriptionModel, checkAndPrepareJob) without the database writes;
- ``taskqueue``: 100,000 waiting jobs in 1,000 task queues (100 owners x 10 requirement sets;
  ``--quick`` 5,000 in 100) inserted one per call, then 16 threads matching for 30 s (``--quick``
  10 s): our TaskQueueDB claim against DIRAC's ``TaskQueueDB.matchAndGetJob``, every JobID
  checked for double matches; then, ours only, the whole Matcher.requestJob in process;
- ``filecatalog``: 100,000 files (``--quick`` 10,000) registered in batches of 5,000, then
  ``getReplicas`` of all of them 10,000 per call: our FileCatalogDB against DIRAC's with the
  FileCatalog service's default managers.

MariaDB only (DIRAC's DB classes speak MySQL only); on the SQLite backend nothing runs. The
machine is shared: absolute figures move with its load, the ratio of two runs made back to back
much less. Results and what could not run: docs/performance.md.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks import bench_filecatalog, bench_matcher
from benchmarks.common import MYSQL_SERVER_URL, Figure, Grid, createDatabases, dropDatabases
from benchmarks.drivers import workloads

DRIVERS = Path(__file__).parent / "drivers"
#: from DIRAC's "server" extra, what its DB classes need: MySQLdb, and opensearch-py that JobDB (imported by
#: its Matcher) imports at load time
DIRAC_EXTRAS = ("mysqlclient", "opensearch-py")
CALLERS = bench_matcher.PILOTS


def _diracVenv() -> Path:
    """The cached DIRAC venv with mysqlclient (libmariadb-dev installed first when missing and possible)."""
    from tests import dirac_venv

    if shutil.which("pkg-config") and subprocess.run(["pkg-config", "--exists", "libmariadb"]).returncode:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            print("    installing libmariadb-dev (mysqlclient builds against it)", file=sys.stderr, flush=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "libmariadb-dev", "pkg-config"], check=False,
                           capture_output=True)
    print("    DIRAC venv (built on first use, ~1-2 min) ...", file=sys.stderr, flush=True)
    return dirac_venv.diracVenv(DIRAC_EXTRAS)


def diracConfig(prefix: str) -> str:
    """The dirac.cfg both sides read: the DB server, the throwaway DB names, a Registry, the sites."""
    server = make_url(MYSQL_SERVER_URL)
    sites = "\n".join(f"      {site}\n      {{\n        CE = {site.split('.', 1)[1].lower()}\n      }}"
                      for site in workloads.SITES)
    return f"""DIRAC
{{
  VirtualOrganization = dirac
}}
Systems
{{
  Databases
  {{
    Host = {server.host or "127.0.0.1"}
    Port = {server.port or 3306}
    User = {server.username or "root"}
    Password = {server.password or ""}
    URL = {MYSQL_SERVER_URL}
    NamePrefix = {prefix}ours_
  }}
  WorkloadManagement
  {{
    Databases
    {{
      TaskQueueDB
      {{
        DBName = {prefix}dirac_TaskQueueDB
      }}
    }}
  }}
  DataManagement
  {{
    Databases
    {{
      FileCatalogDB
      {{
        DBName = {prefix}dirac_FileCatalogDB
      }}
    }}
  }}
}}
Registry
{{
  DefaultGroup = dirac_user
  VO
  {{
    dirac
    {{
      VOAdmin = bench
    }}
  }}
  Groups
  {{
    dirac_user
    {{
      Users = bench
      Properties = NormalUser
      VO = dirac
    }}
  }}
  Users
  {{
    bench
    {{
      DN = /O=DIRAC-Bench/CN=bench
    }}
  }}
}}
Resources
{{
  Sites
  {{
    DIRAC
    {{
{sites}
    }}
  }}
}}
"""


class Comparison:
    """Runs the drivers of one workload, ours then DIRAC's, and turns their results into figures."""

    def __init__(self, grid: Grid, venv: Path, work: Path):
        self.grid, self.venv, self.work = grid, venv, work
        self.version = json.loads((venv / "dirac-seed-ready.json").read_text())["DIRAC"]

    def drive(self, side: str, workload: str, settings: dict[str, Any]) -> dict[str, Any] | None:
        """Run drivers/<side>_<workload>.py; its results, or None (and the reason printed) when it failed."""
        run = self.work / f"{side}_{workload}"
        (run / "home").mkdir(parents=True, exist_ok=True)
        (run / "settings.json").write_text(json.dumps(settings))
        cfg = str(self.work / "dirac.cfg")
        if side == "dirac":  # nothing of this process's environment leaks into DIRAC's
            python = self.venv / "bin" / "python"
            env = {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HOME": str(run / "home"), "LANG": "C.UTF-8",
                   "TMPDIR": str(run / "home"), "DIRACSYSCONFIG": cfg}
        else:
            python = Path(sys.executable)
            env = {key: value for key, value in os.environ.items() if not key.startswith("X509_")}
            env.update(DIRACSYSCONFIG=cfg, HOME=str(run / "home"), PYTHONPATH=str(DRIVERS.parent.parent))
        print(f"    {side}: {workload} ...", file=sys.stderr, flush=True)
        with open(run / "driver.log", "w") as log:  # stdout (DIRAC's log lines); progress and errors on stderr
            done = subprocess.run([str(python), str(DRIVERS / f"{side}_{workload}.py"), str(run / "settings.json"),
                                   str(run / "result.json")], env=env, stdout=log, timeout=3600)
        if done.returncode != 0 or not (run / "result.json").exists():
            logged = (run / "driver.log").read_text(errors="replace").splitlines()[-20:]
            print(f"    {side} {workload} FAILED (exit {done.returncode}): the error is above; the end of its "
                  "stdout (DIRAC logs its errors there):\n" + "\n".join(logged), file=sys.stderr, flush=True)
            return None
        return json.loads((run / "result.json").read_text())

    def figures(self, workload: str, name: str, key: str, unit: str, ours: dict | None, theirs: dict | None,
                target: float | None = None, better: str = "higher", checks: bool = False) -> list[Figure]:
        """Ours, DIRAC's, and how many times faster ours is (ours/DIRAC for rates, DIRAC/ours for latencies)."""
        figures = []
        for side, result in (("ours", ours), (f"DIRAC {self.version}", theirs)):
            if result is not None:
                figures.append(Figure("dirac", f"{name}: {side}", result["figures"][key], unit, target, better,
                                      self.grid.backend,
                                      note=_note(result["figures"] if checks else {}, result["notes"], result["maxRSSMiB"])))
        if ours is not None and theirs is not None:
            mine, other = ours["figures"][key], theirs["figures"][key]
            ratio = mine / other if better == "higher" else other / mine
            figures.append(Figure("dirac", f"{name}: ours vs DIRAC, times faster", ratio, "x",
                                  backend=self.grid.backend))
        return figures


def _note(figures: dict[str, Any], notes: list[str], maxRSS: float) -> str:
    """What a driver reported besides its figure: counts, checks, errors, its peak memory."""
    parts = []
    if "accepted" in figures:
        parts.append(f"{figures['accepted']:,} accepted")
    if "matched" in figures:
        parts.append(f"{figures['matched']:,} matched, {figures['matchedTwice']} twice, "
                     f"{figures['lostOrExtra']} lost")
    parts += [f"errors: {'; '.join(figures['errors'])[:200]}"] if figures.get("errors") else []
    parts += [f"rejected: {notes[0][:200]}"] if notes else []
    parts.append(f"driver peak RSS {maxRSS:.0f} MiB")
    return ", ".join(parts)


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    if grid.backend != "mysql":
        print("    skipped: DIRAC's DB classes run on MySQL/MariaDB only (use --backend mysql)", file=sys.stderr)
        return []
    venv = _diracVenv()
    work = grid.root / "dirac-compare"
    work.mkdir(parents=True, exist_ok=True)
    prefix = f"dirac_bench_cmp_{secrets.token_hex(3)}_"
    (work / "dirac.cfg").write_text(diracConfig(prefix))
    compare = Comparison(grid, venv, work)
    jobs, (waiting, taskQueues, seconds), files = (1_000, (5_000, 100, 10), 10_000) if quick else \
        (10_000, (100_000, 1_000, 30), 100_000)
    figures: list[Figure] = []
    try:
        # DIRAC's DB classes need their database to exist (dirac-install-db creates it); ours create their own
        createDatabases([f"{prefix}dirac_TaskQueueDB", f"{prefix}dirac_FileCatalogDB"])
        settings: dict[str, Any] = {"jobs": jobs}
        ours, theirs = compare.drive("ours", "jdl", settings), compare.drive("dirac", "jdl", settings)
        figures += compare.figures("jdl", f"JDL parsed, checked and prepared ({jobs:,} descriptions)",
                                   "jobsPerSecond", "jobs/s", ours, theirs, checks=True)

        settings = {"jobs": waiting, "taskQueues": taskQueues, "callers": CALLERS, "seconds": seconds}
        ours, theirs = compare.drive("ours", "taskqueue", settings), compare.drive("dirac", "taskqueue", settings)
        figures += compare.figures("taskqueue", f"TaskQueueDB insertJob, {waiting:,} jobs in {taskQueues:,} queues",
                                   "insertPerSecond", "jobs/s", ours, theirs)
        figures += compare.figures("taskqueue", f"TaskQueueDB match, {CALLERS} callers over {waiting:,} jobs",
                                   "matchPerSecond", "jobs/s", ours, theirs, bench_matcher.TARGET_REQUESTS_PER_SECOND,
                                   checks=True)
        figures += compare.figures("taskqueue", "TaskQueueDB match p50 latency", "matchP50ms", "ms", ours, theirs,
                                   better="lower")
        if ours is not None:
            service = ours["figures"]["requestJob"]
            figures.append(Figure("dirac", f"Matcher.requestJob in process, {CALLERS} callers, on what is left: ours "
                                  "(claim + Waiting->Matched + logging, 5 s candidates cache)",
                                  service["matchPerSecond"], "jobs/s", bench_matcher.TARGET_REQUESTS_PER_SECOND,
                                  backend=grid.backend, note=_note(service, [], ours["maxRSSMiB"])
                                  + f", {service['matchedInJobDB']:,} Matched in JobDB"))

        settings = {"files": files, "root": "/dirac/bench/cmp", "batch": bench_filecatalog.BATCH,
                    "replicaCall": bench_filecatalog.REPLICA_CALL}
        ours, theirs = compare.drive("ours", "filecatalog", settings), compare.drive("dirac", "filecatalog", settings)
        figures += compare.figures("filecatalog", f"FileCatalogDB add, {files:,} files, "
                                   f"{bench_filecatalog.BATCH:,} per call", "addPerSecond", "files/s", ours, theirs,
                                   bench_filecatalog.TARGET_REGISTER)
        figures += compare.figures("filecatalog", f"FileCatalogDB getReplicas, {bench_filecatalog.REPLICA_CALL:,} "
                                   "LFNs per call", "replicasPerSecond", "LFN/s", ours, theirs,
                                   bench_filecatalog.TARGET_REPLICAS)
    finally:
        dropDatabases(prefix)
    return figures
