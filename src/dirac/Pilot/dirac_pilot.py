#!/usr/bin/env python3
"""dirac-pilot: prepare a worker node and run the JobAgent there.

Standard library only: this file runs on a bare worker node before anything is installed.
Steps, each logged with its duration:

1. check the node: CPUs, memory, disk, platform, Python, CPU power (DB12 when the ``DB12``
   package is importable by the client, else a short built-in benchmark of the same kind);
2. find or install the client: an existing installation (``--client-python``, a shared
   area) or a fresh virtual environment with ``pip install <wheel or requirement>``;
3. configure it: a ``dirac.cfg`` pointing at the Configuration Service, with the site, CE,
   queue and node facts under ``/LocalSite``;
4. run the JobAgent (``dirac-jobagent``) with the pilot's credentials until it stops.

Credentials: a pilot proxy (``--proxy``, ``$X509_USER_PROXY`` if that file exists) or an access token (``--token``,
``$BEARER_TOKEN_FILE``: a bare JWT or a JSON token file). With only a token the JobAgent talks to
the server with it (``DIRAC_USE_ACCESS_TOKEN``) and renews it in place before it expires.

Every log line also goes to the server's pilot logging (``--logging-url``: the
``WorkloadManagement/PilotLogging`` service, method ``sendMessage``), in batches, as the pilot
runs, so its progress can be followed while it is alive. Exit codes: the JobAgent's, or 2 when
the pilot itself failed (the reason is the last log line).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

VERSION = "1"


# -- logging ---------------------------------------------------------------------------------------
class PilotLog:
    """Prints each line and ships batches of lines to the server's pilot logging service."""

    def __init__(self, url: str = "", stamp: str = "", vo: str = "", proxy: str = "", caDir: str = "",
                 interval: float = 5, token: str = ""):
        self.url, self.stamp, self.vo, self.proxy, self.caDir, self.token = url, stamp, vo, proxy, caDir, token
        self.pending: list[str] = []
        self.lock = threading.Lock()
        self.stopEvent = threading.Event()
        self.interval = interval
        self.thread: threading.Thread | None = None
        if url:
            self.thread = threading.Thread(target=self._loop, daemon=True)
            self.thread.start()

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC pilot: {message}"
        print(line, flush=True)
        with self.lock:
            self.pending.append(line)

    def _loop(self) -> None:
        while not self.stopEvent.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Send what is pending; keep it for the next try if the server does not answer."""
        if not self.url:
            return
        with self.lock:
            lines, self.pending = self.pending, []
        if not lines:
            return
        if not sendRPC(self.url, "sendMessage", [lines, self.stamp, self.vo], self.proxy, self.caDir, self.token):
            with self.lock:
                self.pending = lines + self.pending

    def close(self) -> None:
        """Send what is left and tell the server no more lines will come."""
        self.stopEvent.set()
        self.flush()
        if self.url and self.stamp:
            sendRPC(self.url, "finaliseLogs", [{}, self.stamp, self.vo], self.proxy, self.caDir, self.token)


def readAccessToken(path: str) -> str:
    """The access token in a token file: a bare JWT, or JSON with ``access_token``."""
    text = Path(path).read_text().strip()
    return str(json.loads(text)["access_token"]) if text.startswith("{") else text


def sendRPC(url: str, method: str, args: list, proxy: str, caDir: str, token: str = "", timeout: float = 30) -> bool:
    """One call in DIRAC's HTTPS RPC format (form body: method, args as JSON); True on S_OK.

    Authenticated with the proxy when there is one, else with the token file's bearer token (read
    at each call: the JobAgent renews it in place)."""
    context = ssl.create_default_context(capath=caDir or None)
    headers = {}
    body = urllib.parse.urlencode({"method": method, "args": json.dumps(args)}).encode()
    try:
        if proxy:
            context.load_cert_chain(proxy)
        elif token:
            headers["Authorization"] = f"Bearer {readAccessToken(token)}"
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=timeout,
                                    context=context) as answer:
            return bool(json.loads(answer.read()).get("OK"))
    except (OSError, ValueError, KeyError) as exc:
        print(f"pilot: cannot send to {url}: {exc}", file=sys.stderr, flush=True)
        return False


# -- node ------------------------------------------------------------------------------------------
def memoryMB() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def osRelease() -> str:
    try:
        fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        return f"{fields.get('ID', 'linux').strip(chr(34))}{fields.get('VERSION_ID', '').strip(chr(34))}"
    except OSError:
        return platform.system().lower()


def cpuPower(python: str | None = None, method: str = "db12") -> tuple[float, str]:
    """(power, method): DB12 through ``python`` if asked and the client has the package, else built in."""
    if python and method == "db12":
        probe = subprocess.run([python, "-c", "import db12, json; print(json.dumps(db12.single_dirac_benchmark()))"],
                               capture_output=True, text=True, timeout=300)
        if probe.returncode == 0:
            try:
                return float(json.loads(probe.stdout.strip().splitlines()[-1])["NORM"]), "DB12"
            except (ValueError, KeyError, IndexError, TypeError):
                pass
    return builtinBenchmark(), "builtin"


def builtinBenchmark(iterations: int = 1_000_000) -> float:
    """A short CPU benchmark on DB12's model (gaussian random numbers), normalised the same way."""
    import random

    generator = random.Random(12345)
    started = time.process_time()
    total = 0.0
    for _ in range(iterations):
        total += generator.normalvariate(10, 1)
    cpu = max(time.process_time() - started, 1e-6)
    return round(250.0 * iterations / 1_000_000 / cpu / 30.0, 2)


def checkNode(workDir: Path, python: str | None = None, benchmark: str = "db12") -> dict:
    """The facts the JobAgent reports to the Matcher about this node."""
    usage = shutil.disk_usage(workDir)
    power, method = cpuPower(python, benchmark)
    return {"NumberOfProcessors": os.cpu_count() or 1, "MaxRAM": memoryMB(), "DiskSpaceMB": usage.free // 2**20,
            "Platform": f"{platform.machine()}-{osRelease()}", "Python": platform.python_version(),
            "Hostname": platform.node(), "CPUNormalizationFactor": power, "CPUBenchmark": method}


# -- client ----------------------------------------------------------------------------------------
def caBundle(caDir: Path, bundle: Path) -> Path:
    """One PEM file (what pip takes) with the CAs of a hashed CA directory and the node's usual ones."""
    pems = [path.read_text() for path in sorted(caDir.iterdir())
            if path.is_file() and "BEGIN CERTIFICATE" in path.read_text(errors="replace")]
    usual = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
             or ssl.get_default_verify_paths().cafile)
    if usual and Path(usual).is_file():  # the package index is still trusted for the dependencies
        pems.append(Path(usual).read_text())
    bundle.write_text("\n".join(pems))
    return bundle


def installClient(args: argparse.Namespace, workDir: Path, log: PilotLog) -> Path:
    """The python of a client installation: the given one, or a new venv with pip."""
    if args.client_python:
        python = Path(args.client_python)
        log(f"using the client installed with {python}")
    else:
        venv = workDir / "client"
        log(f"installing the client into {venv} from {args.install}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args.install.split()]
        env = dict(os.environ)
        if "https://" in args.install:  # the server's own wheel: trust its CA too, show the pilot proxy
            bundle = str(caBundle(Path(args.ca_dir), workDir / "ca-bundle.pem"))
            # requests lets REQUESTS_CA_BUNDLE win over pip's --cert: point both at the bundle
            env.update(PIP_CERT=bundle, REQUESTS_CA_BUNDLE=bundle)
            pip += ["--client-cert", args.proxy] if args.proxy else []
        done = subprocess.run(pip, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not install {args.install}: {done.stderr.strip()[-1500:]}")
    check = subprocess.run([str(python), "-c", "import dirac; print(dirac.__version__)"], capture_output=True,
                           text=True)
    if check.returncode != 0:
        raise RuntimeError(f"the client at {python} cannot be imported: {check.stderr.strip()}")
    log(f"client version {check.stdout.strip()}")
    return python


def writeConfiguration(args: argparse.Namespace, workDir: Path, node: dict) -> Path:
    """dirac.cfg for the JobAgent: where the CS is, the slot's description, the JobAgent's limits."""
    local = {"Site": args.site, "GridCE": args.ce, "CEQueue": args.queue, "PilotReference": args.pilot_reference,
             "PilotStamp": args.pilot_stamp, "CPUTimeLeft": args.cpu_time, "NumberOfProcessors": args.processors,
             "WorkingDirectory": str(workDir / "jobs"), "MaxRAM": args.max_ram or node["MaxRAM"],
             "Tag": args.tags, "NodeProcessors": node["NumberOfProcessors"],
             **{k: v for k, v in node.items() if k not in ("Hostname", "MaxRAM", "NumberOfProcessors")}}
    lines = ["DIRAC", "{", f"  VirtualOrganization = {args.vo}" if args.vo else "", "  Configuration", "  {",
             f"    Servers = {args.cs}", "  }", "  Security", "  {", f"    CALocation = {args.ca_dir}", "  }", "}",
             "LocalSite", "{"]
    lines += [f"  {key} = {value}" for key, value in local.items() if value not in (None, "")]
    lines += ["}", "Systems", "{", "  WorkloadManagement", "  {", "    Agents", "    {", "      JobAgent", "      {",
              f"        MaxJobs = {args.max_jobs}", "      }", "    }", "  }", "}"]
    path = workDir / "etc" / "dirac.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def environmentProxy() -> str:
    """``$X509_USER_PROXY`` when the file it names exists: a batch system may name one it never wrote (ARC's
    A-REX does when nothing was delegated to the job), and then the pilot's token is its credential."""
    path = os.environ.get("X509_USER_PROXY", "")
    return path if path and os.path.isfile(path) else ""


def runJobAgent(python: Path, cfg: Path, args: argparse.Namespace, log: PilotLog) -> int:
    """Run the JobAgent until it stops; its output becomes pilot log lines."""
    command = [str(python), "-m", "dirac.WorkloadManagementSystem.scripts.dirac_jobagent"]
    env = {**os.environ, "X509_CERT_DIR": args.ca_dir, "DIRACSYSCONFIG": str(cfg),
           "DIRAC_PILOT_REFERENCE": args.pilot_reference, "DIRAC_PILOT_STAMP": args.pilot_stamp}
    if args.proxy:
        env["X509_USER_PROXY"] = args.proxy
    else:  # a token pilot: the JobAgent and the JobWrappers call the server with the token file
        env.pop("X509_USER_PROXY", None)
        env.update(BEARER_TOKEN_FILE=args.token, DIRAC_USE_ACCESS_TOKEN="yes")
    log(f"starting the JobAgent: {' '.join(command)}")
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        log(f"jobagent: {line.rstrip()}")
    return process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare this worker node and run the DIRAC JobAgent.")
    parser.add_argument("--cs", required=True, help="URL(s) of the Configuration Server")
    parser.add_argument("--site", required=True, help="DIRAC site name, e.g. DIRAC.OneBox.local")
    parser.add_argument("--ce", required=True, help="CE name")
    parser.add_argument("--queue", default="default")
    parser.add_argument("--proxy", default=environmentProxy(), help="pilot proxy file (default: $X509_USER_PROXY "
                        "if that file exists)")
    parser.add_argument("--token", default=os.environ.get("BEARER_TOKEN_FILE", ""),
                        help="pilot access token file, used when there is no proxy")
    parser.add_argument("--ca-dir", default=os.environ.get("X509_CERT_DIR", "/etc/grid-security/certificates"))
    parser.add_argument("--client-python", help="python of an existing client installation (shared area)")
    parser.add_argument("--install", default="dirac-seed", help="what pip installs when no --client-python")
    parser.add_argument("--workdir", default=os.getcwd())
    parser.add_argument("--pilot-reference", default=os.environ.get("DIRAC_PILOT_REFERENCE", ""))
    parser.add_argument("--pilot-stamp", default=os.environ.get("DIRAC_PILOT_STAMP", ""))
    parser.add_argument("--vo", default="", help="the VO whose jobs this pilot runs")
    parser.add_argument("--logging-url", default="", help="URL of WorkloadManagement/PilotLogging")
    parser.add_argument("--cpu-time", type=int, default=86400, help="CPU seconds this slot offers")
    parser.add_argument("--max-jobs", type=int, default=100, help="jobs to run before stopping")
    parser.add_argument("--processors", type=int, default=1, help="processors of this slot")
    parser.add_argument("--max-ram", type=int, default=0, help="MB of memory of this slot (default: the node's)")
    parser.add_argument("--tags", default="", help="comma-separated tags of this slot")
    parser.add_argument("--benchmark", choices=("db12", "builtin"), default="db12",
                        help="CPU power: DB12 (as DIRAC, ~10 s) or a quick built-in estimate")
    parser.add_argument("--check-only", action="store_true", help="check the node, print the facts, stop")
    args = parser.parse_args(argv)

    workDir = Path(args.workdir).resolve()
    workDir.mkdir(parents=True, exist_ok=True)
    if not args.pilot_stamp and args.pilot_reference:
        args.pilot_stamp = args.pilot_reference.rstrip("/").rsplit("/", 1)[-1]
    log = PilotLog(args.logging_url, args.pilot_stamp, args.vo, args.proxy, args.ca_dir, token=args.token)
    try:
        log(f"pilot version {VERSION} starting on {platform.node()} in {workDir} for {args.site}/{args.ce}")
        if os.environ.get("X509_USER_PROXY") and not args.proxy:
            log(f"$X509_USER_PROXY names {os.environ['X509_USER_PROXY']}, which does not exist: not used")
        if args.proxy or args.token:
            log(f"credential: {'proxy ' + args.proxy if args.proxy else 'access token in ' + args.token}")
        elif not args.check_only:
            raise RuntimeError("no credential: neither a proxy (--proxy, $X509_USER_PROXY) nor a token "
                               "(--token, $BEARER_TOKEN_FILE)")
        if args.check_only:
            python = Path(args.client_python) if args.client_python else None
        else:
            python = installClient(args, workDir, log)
        node = checkNode(workDir, str(python) if python else None, args.benchmark)
        log("node: " + ", ".join(f"{k}={v}" for k, v in node.items()))
        if args.check_only:
            print(json.dumps(node))
            return 0
        cfg = writeConfiguration(args, workDir, node)
        code = runJobAgent(python, cfg, args, log)  # type: ignore[arg-type]
        log(f"JobAgent finished with exit code {code}")
        return code
    except Exception as exc:  # the pilot must report why it stopped, whatever happened
        log(f"pilot failed: {type(exc).__name__}: {exc}")
        return 2
    finally:
        log.close()


if __name__ == "__main__":
    sys.exit(main())
