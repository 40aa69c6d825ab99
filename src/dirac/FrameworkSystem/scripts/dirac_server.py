"""dirac-server: create and run a whole grid in one box.

    dirac-server init  [--dir DIR]   CA, certificates, central configuration, admin proxy
    dirac-server start [--dir DIR]   all installed services, agents and the web portal in one process
                       [--detach]    ... in the background, waiting until it answers
    dirac-server stop  [--dir DIR]   SIGTERM to the running server, wait for it to end
    dirac-server status [--dir DIR]  is it running and answering?
    dirac-server publish-client [--dir DIR] [--use]
                                     build this client's wheel where the server serves it to
                                     pilots (https://<host>:<port>/pilot/<wheel>); with --use,
                                     make the SiteDirector's pilots pip-install it
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dirac.Core.Base import Components
from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, Script
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.Logging import setupLogging
from dirac.FrameworkSystem.Logic.Instance import Instance, initInstance

SITE_DIRECTOR = "/Systems/WorkloadManagement/Agents/SiteDirector"
DEFAULT_DIR = os.environ.get("DIRAC_INSTANCE", str(Path.home() / ".dirac" / "instance"))


def _pid(instance: Instance) -> int | None:
    try:
        pid = int(instance.pidFile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _ping(instance: Instance, timeout: float = 5) -> dict:
    """Ping the instance's Configuration Server with the admin proxy."""
    from dirac.Core.Tornado.Client import RPCClient

    url = gConfig.getValue("/DIRAC/Configuration/Servers", "")
    return RPCClient(url.split(",")[0].strip(), timeout=timeout, proxyLocation=str(instance.proxy)).ping()


def cmdInit(script: Script, args) -> int:
    instance = initInstance(args.dir, host=args.host, port=args.port, vo=args.vo, admin=args.admin,
                            force=args.force)
    info = {"instance": str(instance.root), "services": Components.listServices(),
            "agents": Components.listAgents(), "environment": instance.environment()}
    script.output(info, lambda d: (f"Instance created in {d['instance']}\n"
                                   f"  services: {', '.join(d['services']) or 'none'}\n"
                                   f"  agents:   {', '.join(d['agents']) or 'none'}\n"
                                   f"Start it with: dirac-server start --dir {d['instance']}\n"
                                   f"Clients use it after: source {instance.bashrc}"))
    return EXIT_OK


def cmdStart(script: Script, args) -> int:
    instance = Instance(Path(args.dir))
    if not instance.exists():
        return script.fail(f"no instance in {instance.root}: run dirac-server init first")
    if (pid := _pid(instance)) is not None:
        return script.fail(f"the server of {instance.root} already runs (pid {pid})")
    if args.detach:
        return _startDetached(script, instance, args)
    from dirac.Core.Base.Runner import runComponents

    gConfig.reset()
    gConfig.initialize(cfgFiles=[instance.clientCFG, instance.serverCFG], options=dict(args.overrides),
                       fetchRemote=False)
    instance.pidFile.write_text(str(os.getpid()))
    try:
        return runComponents(Components.listServices() + Components.listWebApps(),  # the portal at /DIRAC too
                             [] if args.no_agents else Components.listAgents())
    finally:
        instance.pidFile.unlink(missing_ok=True)


def _startDetached(script: Script, instance: Instance, args) -> int:
    command = [sys.executable, "-m", "dirac.FrameworkSystem.scripts.dirac_server"]
    for path, value in args.overrides:  # options of the command itself: before the sub-command
        command += ["-o", f"{path}={value}"]
    command += ["start", "--dir", str(instance.root)] + (["--no-agents"] if args.no_agents else [])
    instance.logFile.parent.mkdir(parents=True, exist_ok=True)
    with open(instance.logFile, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "DIRAC_LOG_LEVEL": "INFO"})
    gConfig.reset()
    gConfig.initialize(cfgFiles=[instance.clientCFG], fetchRemote=False)
    deadline = time.monotonic() + args.wait
    print(f"Starting the server of {instance.root} (log: {instance.logFile})", end="", flush=True)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print()
            return script.fail(f"the server exited with code {process.returncode}; see {instance.logFile}")
        if _ping(instance, timeout=2)["OK"]:
            print(" ready.")
            script.output({"pid": process.pid, "log": str(instance.logFile)},
                          f"Server running, pid {process.pid}")
            return EXIT_OK
        print(".", end="", flush=True)
        time.sleep(0.5)
    print()
    return script.fail(f"the server did not answer within {args.wait} s; see {instance.logFile}")


def cmdStop(script: Script, args) -> int:
    instance = Instance(Path(args.dir))
    pid = _pid(instance)
    if pid is None:
        script.output({"running": False}, "The server is not running")
        return EXIT_OK
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline and _pid(instance) == pid:
        time.sleep(0.2)
    if _pid(instance) == pid:
        return script.fail(f"the server (pid {pid}) did not stop within {args.wait} s")
    script.output({"running": False, "pid": pid}, f"Server (pid {pid}) stopped")
    return EXIT_OK


def cmdStatus(script: Script, args) -> int:
    instance = Instance(Path(args.dir))
    pid = _pid(instance)
    gConfig.reset()
    gConfig.initialize(cfgFiles=[instance.clientCFG], fetchRemote=False)
    answer = _ping(instance) if pid else {"OK": False, "Message": "not running"}
    status = {"instance": str(instance.root), "pid": pid, "answering": answer["OK"],
              "detail": answer.get("Value") if answer["OK"] else answer["Message"]}
    script.output(status, lambda s: f"{s['instance']}: " + (f"running (pid {s['pid']}), answering"
                                                              if s["answering"] else f"not answering: {s['detail']}"))
    return EXIT_OK if answer["OK"] else EXIT_FAILED


def cmdPublishClient(script: Script, args) -> int:
    instance = Instance(Path(args.dir))
    if not instance.exists():
        return script.fail(f"no instance in {instance.root}: run dirac-server init first")
    source = Path(args.source) if args.source else Path(__file__).resolve().parents[4]  # <root>/src/dirac/...
    if not (source / "pyproject.toml").exists():
        return script.fail(f"{source} is not the project's source tree: give it with --source")
    instance.pilotFilesDir.mkdir(parents=True, exist_ok=True)
    before = set(instance.pilotFilesDir.glob("*.whl"))
    print(f"Building the client wheel from {source} ...", file=sys.stderr, flush=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
                            "-w", str(instance.pilotFilesDir), str(source)], capture_output=True, text=True)
    if built.returncode != 0:
        return script.fail(f"pip wheel failed: {built.stderr.strip()[-2000:]}")
    wheels = sorted(set(instance.pilotFilesDir.glob("*.whl")) - before) or \
        sorted(instance.pilotFilesDir.glob("dirac_seed-*.whl"), key=lambda p: p.stat().st_mtime)
    wheel = wheels[-1]
    gConfig.reset()
    gConfig.initialize(cfgFiles=[instance.clientCFG], fetchRemote=False)
    csURL = gConfig.getValue("/DIRAC/Configuration/Servers", "").split(",")[0].strip()
    url = f"{csURL.rsplit('/', 2)[0]}/pilot/{wheel.name}"
    info = {"wheel": str(wheel), "url": url, "used": False}
    if args.use:
        from dirac.ConfigurationSystem.Client.CSAPI import CSAPI

        api = CSAPI(proxyLocation=str(instance.proxy))
        result = api.initialize()
        if result["OK"]:
            api.setOption(f"{SITE_DIRECTOR}/PilotInstall", url)
            api.setOption(f"{SITE_DIRECTOR}/PilotClientPython", "")
            result = api.commit()
        if not result["OK"]:
            return script.fail(f"wheel built, but the CS was not changed (is the server running?): "
                               f"{result['Message']}")
        info["used"] = True
    script.output(info, lambda d: f"Client wheel {d['wheel']}\nserved at {d['url']}\n" + (
        "The SiteDirector's pilots now install it (PilotInstall)." if d["used"] else
        f"Pilots install it with: dirac-configuration-set {SITE_DIRECTOR}/PilotInstall={d['url']}"))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    script = Script("Create and run a whole grid in one box.", jsonOutput=True, fetchRemote=False)
    commands = script.parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create an instance directory")
    init.add_argument("--host", default="127.0.0.1", help="address the server listens on (default 127.0.0.1)")
    init.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
    init.add_argument("--vo", default="dirac", help="name of the virtual organisation (default dirac)")
    init.add_argument("--admin", default="admin", help="user name of the local administrator")
    init.add_argument("--force", action="store_true", help="replace an existing instance")
    start = commands.add_parser("start", help="run all services and agents")
    start.add_argument("--detach", action="store_true", help="run in the background")
    start.add_argument("--no-agents", action="store_true", help="services only")
    for sub in (start, commands.add_parser("stop", help="stop the running server")):
        sub.add_argument("--wait", type=float, default=60, help="seconds to wait (default 60)")
    commands.add_parser("status", help="is the server running and answering?")
    publish = commands.add_parser("publish-client", help="serve this client's wheel to pilots")
    publish.add_argument("--source", help="the project's source tree (default: where this client runs from)")
    publish.add_argument("--use", action="store_true", help="make the SiteDirector's pilots install it (needs the "
                         "server running)")
    for sub in commands.choices.values():
        sub.add_argument("--dir", default=DEFAULT_DIR, help=f"instance directory (default {DEFAULT_DIR})")
    args = script.parseArgs(argv)
    if args.command == "start":
        setupLogging(os.environ.get("DIRAC_LOG_LEVEL") or ("DEBUG" if args.debug else "INFO"))
    handler = {"init": cmdInit, "start": cmdStart, "stop": cmdStop, "status": cmdStatus,
               "publish-client": cmdPublishClient}[args.command]
    try:
        return handler(script, args)
    except DiracError as exc:
        return script.fail(exc.message)


if __name__ == "__main__":
    sys.exit(main())
