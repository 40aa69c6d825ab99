"""The Registry section of the CS: VOs, groups, users, hosts and their properties.

Layout::

    Registry
    {
      DefaultGroup = dirac_user
      Users { alice { DN = /C=ch/O=DIRAC/CN=alice ; Email = ... } }
      Groups { dirac_user { Users = alice, bob ; Properties = NormalUser ; VO = dirac } }
      Hosts { server.example.org { DN = /C=ch/O=DIRAC/CN=server.example.org ; Properties = TrustedHost } }
      VO { dirac { VOAdmin = alice } }
    }
"""

from __future__ import annotations

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList

REGISTRY = "/Registry"


def _sections(path: str) -> list[str]:
    result = gConfig.getSections(path)
    return result["Value"] if result["OK"] else []


def getUsernameForDN(dn: str) -> str | None:
    """The user whose DN (or one of whose DNs) is ``dn``."""
    for user in _sections(f"{REGISTRY}/Users"):
        if dn in toList(gConfig.getValue(f"{REGISTRY}/Users/{user}/DN", "")):
            return user
    return None


def getUsernameForID(subject: str) -> str | None:
    """The user whose IdP subject (``ID`` option) is ``subject``."""
    for user in _sections(f"{REGISTRY}/Users"):
        if subject in toList(gConfig.getValue(f"{REGISTRY}/Users/{user}/ID", "")):
            return user
    return None


def getDNsForUsername(username: str) -> list[str]:
    return toList(gConfig.getValue(f"{REGISTRY}/Users/{username}/DN", ""))


def getHostnameForDN(dn: str) -> str | None:
    for host in _sections(f"{REGISTRY}/Hosts"):
        if dn in toList(gConfig.getValue(f"{REGISTRY}/Hosts/{host}/DN", "")):
            return host
    return None


def getPropertiesForHost(host: str) -> list[str]:
    return toList(gConfig.getValue(f"{REGISTRY}/Hosts/{host}/Properties", ""))


def getAllGroups() -> list[str]:
    return _sections(f"{REGISTRY}/Groups")


def getGroupsForUser(username: str) -> list[str]:
    return [g for g in getAllGroups() if username in toList(gConfig.getValue(f"{REGISTRY}/Groups/{g}/Users", ""))]


def getUsersInGroup(group: str) -> list[str]:
    return toList(gConfig.getValue(f"{REGISTRY}/Groups/{group}/Users", ""))


def getPropertiesForGroup(group: str) -> list[str]:
    return toList(gConfig.getValue(f"{REGISTRY}/Groups/{group}/Properties", ""))


def getVOForGroup(group: str) -> str:
    return gConfig.getValue(f"{REGISTRY}/Groups/{group}/VO", gConfig.getValue(f"{REGISTRY}/DefaultVO", ""))


def getVOs() -> list[str]:
    return _sections(f"{REGISTRY}/VO")


def getDefaultGroupForUser(username: str) -> str | None:
    """The registry's DefaultGroup when the user is in it, else the user's first group."""
    groups = getGroupsForUser(username)
    default = gConfig.getValue(f"{REGISTRY}/DefaultGroup", "")
    for candidate in toList(default):
        if candidate in groups:
            return candidate
    return groups[0] if groups else None


def getUserOption(username: str, option: str, default: str = "") -> str:
    return gConfig.getValue(f"{REGISTRY}/Users/{username}/{option}", default)


def isDownloadableGroup(group: str) -> bool:
    """Whether proxies of ``group`` may be handed out by the ProxyManager (``DownloadableProxy``, default yes)."""
    return bool(gConfig.getValue(f"{REGISTRY}/Groups/{group}/DownloadableProxy", True))
