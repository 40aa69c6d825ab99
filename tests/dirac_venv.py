"""A virtualenv holding DIRAC from the package index (``pip install DIRAC``), built once and cached.

Used by tests/integration/test_dirac_client.py (DIRAC's client against our server) and by the
``dirac`` benchmark (DIRAC's own classes on the same work as ours). DIRAC is only ever run in
that venv's Python, in separate processes: it is a peer to compare with, never imported here.

The venv lives in ``~/.cache/dirac-seed-tests/dirac-venv/DIRAC-<version>-py<XY>[+extras]``
(``$XDG_CACHE_HOME`` respected, ``$DIRAC_CLIENT_VENV_CACHE`` overrides), is built under a lock
so that parallel processes build it once, and is rebuilt when a build did not finish or the
cached venv no longer imports DIRAC. ``DIRAC_CLIENT_VERSION`` picks another release.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DIRAC_VERSION = os.environ.get("DIRAC_CLIENT_VERSION", "9.1.22")
# gfal2-python is a C++ binding (needs the gfal2 library and Boost.Python to build) used only by
# DIRAC's gfal2 storage plugins; neither a client making RPC calls nor DIRAC's DB classes import it.
NOT_INSTALLED = {"gfal2-python"}
PIP_TIMEOUT = 1200
READY = "dirac-seed-ready.json"

REQUIREMENTS_OF_DIRAC = """
import json, sys
from importlib.metadata import requires
print(json.dumps([r for r in requires("DIRAC") or [] if "extra ==" not in r.replace("'", '"')]))
"""


class DiracUnavailable(RuntimeError):
    """The package index cannot provide DIRAC (offline machine): tests skip, CI and benchmarks report it."""


def cacheDir() -> Path:
    if os.environ.get("DIRAC_CLIENT_VENV_CACHE"):
        return Path(os.environ["DIRAC_CLIENT_VENV_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dirac-seed-tests" / "dirac-venv"


def _pip(python: Path, *args: str, log: Path) -> subprocess.CompletedProcess:
    with open(log, "a") as logFile:
        logFile.write(f"\n$ pip {' '.join(args)}\n")
        logFile.flush()
        return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                              stdout=logFile, stderr=subprocess.STDOUT, timeout=PIP_TIMEOUT)


def logTail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _build(venv: Path, log: Path, extras: Sequence[str]) -> dict:
    """Create the venv: DIRAC without dependencies, then DIRAC's own requirements but NOT_INSTALLED, then extras."""
    started = time.monotonic()
    log.write_text(f"building {venv} with {sys.executable}\n")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    wheels = venv / "downloads"
    # First contact with the index: a failure here means no index, not a broken build.
    if _pip(python, "download", "--no-deps", "-d", str(wheels), f"DIRAC=={DIRAC_VERSION}", log=log).returncode:
        shutil.rmtree(venv, ignore_errors=True)
        raise DiracUnavailable(f"cannot download DIRAC=={DIRAC_VERSION} from the package index:\n{logTail(log, 15)}")
    wheel = sorted(wheels.glob("*"))
    if _pip(python, "install", "--no-deps", *map(str, wheel), log=log).returncode:
        raise RuntimeError(f"pip install DIRAC failed:\n{logTail(log)}")
    requirements = json.loads(subprocess.run([str(python), "-c", REQUIREMENTS_OF_DIRAC], check=True,
                                             capture_output=True, text=True).stdout)
    wanted = [r for r in requirements
              if not any(r.lower().replace("_", "-").startswith(name) for name in NOT_INSTALLED)]
    if _pip(python, "install", *wanted, *extras, log=log).returncode:
        raise RuntimeError(f"pip install of DIRAC's requirements {' '.join(extras)} failed:\n{logTail(log)}")
    shutil.rmtree(wheels, ignore_errors=True)
    versions = subprocess.run([str(python), "-c", "import DIRAC, M2Crypto, requests; "
                               "print(DIRAC.version, M2Crypto.__version__, requests.__version__)"],
                              check=True, capture_output=True, text=True).stdout.split()
    return {"DIRAC": versions[0], "M2Crypto": versions[1], "requests": versions[2],
            "python": sys.version.split()[0], "notInstalled": sorted(NOT_INSTALLED), "extras": list(extras),
            "buildSeconds": round(time.monotonic() - started, 1)}


def _works(venv: Path) -> bool:
    """The cached venv still runs (its base Python may have been removed or upgraded)."""
    try:
        return subprocess.run([str(venv / "bin" / "python"), "-c", "import DIRAC"], capture_output=True,
                              timeout=120).returncode == 0
    except OSError:
        return False


def diracVenv(extras: Sequence[str] = ()) -> Path:
    """A venv with DIRAC (and ``extras``, e.g. mysqlclient for its DB classes): reused when complete, else built."""
    cache = cacheDir()
    cache.mkdir(parents=True, exist_ok=True)
    name = f"DIRAC-{DIRAC_VERSION}-py{sys.version_info.major}{sys.version_info.minor}" + \
        "".join(f"+{extra}" for extra in extras)
    venv, ready = cache / name, cache / name / READY
    with open(cache / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel processes build it once
        if not ready.exists() or not _works(venv):
            shutil.rmtree(venv, ignore_errors=True)  # a build that did not finish, or a stale one
            info = _build(venv, cache / f"{name}.build.log", extras)
            ready.write_text(json.dumps(info, indent=1))
    return venv
