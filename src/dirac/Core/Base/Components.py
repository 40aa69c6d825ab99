"""Finds the installed services, agents and plug-ins through entry points.

Systems (and extensions) declare their components in their package metadata::

    [project.entry-points."dirac.services"]
    "Configuration/Server" = "dirac.ConfigurationSystem.Service.ConfigurationHandler:ConfigurationHandler"

    [project.entry-points."dirac.agents"]
    "WorkloadManagement/SiteDirector" = "dirac.WorkloadManagementSystem.Agent.SiteDirector:SiteDirector"

    [project.entry-points."dirac.webapps"]              # pages served by the same HTTPS server
    "WebApp/Portal" = "dirac.WebApp.Portal:portalRoutes"  # a function: TornadoServer -> Tornado routes

Nothing is imported until a component is loaded, so commands stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from importlib.resources import files
from typing import Any

from dirac.Core.Utilities.Exceptions import ConfigurationError

SERVICES = "dirac.services"
AGENTS = "dirac.agents"
WEBAPPS = "dirac.webapps"


def _entryPoints(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def listServices() -> list[str]:
    """'System/Service' names of every installed service."""
    return sorted(_entryPoints(SERVICES))


def listAgents() -> list[str]:
    """'System/Agent' names of every installed agent."""
    return sorted(_entryPoints(AGENTS))


def listWebApps() -> list[str]:
    """'System/Name' names of every installed web application (the portal)."""
    return sorted(_entryPoints(WEBAPPS))


def loadWebApp(name: str) -> Any:
    """The route factory of web application 'System/Name': ``factory(server) -> [(pattern, handler, kwargs)]``."""
    return _load(WEBAPPS, name)


def _load(group: str, name: str) -> Any:
    points = _entryPoints(group)
    if name not in points:
        kind = {SERVICES: "service", AGENTS: "agent"}.get(group, "web application")
        known = ", ".join(sorted(points)) or "none"
        raise ConfigurationError(f"no {kind} called {name} is installed (installed: {known})")
    return points[name].load()


def loadClass(path: str, what: str) -> Any:
    """The object named by ``module:Class`` (ConfigurationError naming ``what`` when it cannot be loaded)."""
    module, _, cls = path.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load {path} for {what}: {exc}") from exc


def pluginClasses(builtin: Mapping[str, str], group: str) -> dict[str, str]:
    """{name: 'module:Class'} of a plug-in family (CEs, batch systems): the built-in ones and entry points of ``group``."""
    classes = dict(builtin)
    classes.update({name: point.value for name, point in _entryPoints(group).items()})
    return classes


def _fromCS(option: str, name: str) -> type | None:
    """The class named by a ``module:Class`` CS option, or None when the option is unset."""
    from dirac.Core.Config import gConfig

    path = gConfig.getValue(option, "")
    return loadClass(path, name) if path else None


def loadService(name: str) -> type:
    """The handler class of service 'System/Service'.

    A service section may name its handler with ``HandlerPath = package.module:Class``
    (services of extensions and tests that are not installed as entry points).
    """
    from dirac.Core.Config.PathFinder import getServiceSection

    return _fromCS(f"{getServiceSection(name)}/HandlerPath", name) or _load(SERVICES, name)


def loadAgent(name: str) -> type:
    """The agent class of 'System/Agent', or the ``Module = package.module:Class`` of its section."""
    from dirac.Core.Config.PathFinder import getAgentSection

    return _fromCS(f"{getAgentSection(name)}/Module", name) or _load(AGENTS, name)


def systemPackages() -> dict[str, str]:
    """{'Configuration': 'dirac.ConfigurationSystem', ...} for every system with a component."""
    packages = {}
    for group in (SERVICES, AGENTS):
        for name, ep in _entryPoints(group).items():
            system = name.split("/")[0]
            module = ep.value.split(":")[0]
            packages.setdefault(system, module.rsplit(".", 2)[0])
    return packages


def configTemplate(system: str) -> str:
    """The ConfigTemplate.cfg of a system package ('' when it has none)."""
    package = systemPackages().get(system)
    if not package:
        return ""
    resource = files(importlib.import_module(package)).joinpath("ConfigTemplate.cfg")
    return resource.read_text() if resource.is_file() else ""
