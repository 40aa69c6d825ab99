"""Where things live in the CS: component sections, service URLs, database sections.

Layout (DIRAC v9, without setups): ``/Systems/<System>/Services/<Service>``,
``/Systems/<System>/Agents/<Agent>``, ``/Systems/<System>/Databases/<DB>`` and the
comma-separated ``/Systems/<System>/URLs/<Service>``.
"""

from __future__ import annotations

from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Utilities.Exceptions import ConfigurationError


def splitComponent(name: str) -> tuple[str, str]:
    """'WorkloadManagement/JobManager' -> ('WorkloadManagement', 'JobManager')."""
    system, sep, component = name.strip("/").partition("/")
    if not sep or not system or not component or "/" in component:
        raise ConfigurationError(f"{name!r} is not of the form System/Component")
    return system, component


def getSystemSection(system: str) -> str:
    return f"/Systems/{system.removesuffix('System')}"


def getServiceSection(name: str) -> str:
    system, service = splitComponent(name)
    return f"{getSystemSection(system)}/Services/{service}"


def getAgentSection(name: str) -> str:
    system, agent = splitComponent(name)
    return f"{getSystemSection(system)}/Agents/{agent}"


def getExecutorSection(name: str) -> str:
    system, executor = splitComponent(name)
    return f"{getSystemSection(system)}/Executors/{executor}"


def getDatabaseSection(name: str) -> str:
    system, db = splitComponent(name)
    return f"{getSystemSection(system)}/Databases/{db}"


def getServiceURLs(name: str) -> list[str]:
    """The URLs of a service ('System/Service'); a full https:// URL is returned as is."""
    if name.startswith(("https://", "http://")):
        return toList(name)
    from dirac.Core.Config import gConfig

    system, service = splitComponent(name)
    urls = toList(gConfig.getValue(f"{getSystemSection(system)}/URLs/{service}", ""))
    if not urls:
        raise ConfigurationError(f"no URL for service {name} (set {getSystemSection(system)}/URLs/{service})")
    return urls
