"""Runs a set of services and agents in one process until SIGTERM or SIGINT.

Used by ``dirac-server start`` (everything installed, one process), ``dirac-service`` and
``dirac-agent`` (one component, for multi-process and multi-host deployments). Names of web
applications (``WebApp/Portal``) among the services are served by the same HTTPS server. Services
start listening first, then agents start, each in its own thread; on SIGTERM agents
finish their current cycle and the server closes its connections.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from dirac.Core.Base import Components
from dirac.Core.Utilities.Logging import getLogger

log = getLogger("Runner")


def runComponents(services: list[str], agents: list[str], port: int | None = None,
                  onReady: Callable[[], None] | None = None) -> int:
    """Host ``services`` on one HTTPS port and run ``agents``; returns the exit code."""
    from dirac.Core.Tornado.Server import TornadoServer

    if "Configuration/Server" in services:
        # The master configuration must be in gConfig before other components read their options.
        Components.loadService("Configuration/Server").loadMaster()
    webAppNames = set(Components.listWebApps())
    webApps = {name: Components.loadWebApp(name) for name in services if name in webAppNames}
    handlers = {name: Components.loadService(name) for name in services if name not in webApps}
    agentClasses = {name: Components.loadAgent(name) for name in agents}

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        server = TornadoServer(handlers, port=port, webApps=webApps) if handlers or webApps else None
        if server:
            await server.listen()
        running = []
        for name, agentClass in agentClasses.items():
            agent = agentClass(name)
            agent.start()
            running.append(agent)
        log.info("Running %d services and %d agents", len(handlers), len(running))
        if onReady:
            onReady()
        await stop.wait()
        log.info("Stopping: waiting for agents to finish their cycle")
        for agent in running:
            agent.stop()
        for agent in running:
            await loop.run_in_executor(None, agent.join, 60)
        if server:
            await server.close()
        log.info("Stopped")

    asyncio.run(main())
    return 0
