"""Which Storage Elements a name stands for, and which are at a site (DIRAC's CS layout).

* ``/Resources/StorageElements/<SE>``: a concrete SE;
* ``/Resources/Sites/<Grid>/<Site>/SE``: the SEs at a site (``<Grid>`` is the site name's first part);
* ``/Resources/Sites/<Grid>/<Site>/AssociatedSEs/<Alias>``: what an alias means at that site;
* ``/Resources/StorageElementGroups/<Group>``: a named list of SEs, e.g. DIRAC's ``SE-USER`` (where user
  jobs write their outputs by default) and ``Tier1-Failover`` (where they go when those fail).
"""

from __future__ import annotations

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList

STORAGE_ELEMENTS = "/Resources/StorageElements"
SE_GROUPS = "/Resources/StorageElementGroups"
SITES = "/Resources/Sites"


def getSEsForSite(site: str) -> list[str]:
    """The SEs at ``site`` (its ``SE`` option), [] for an unknown site."""
    if not site:
        return []
    return toList(gConfig.getValue(f"{SITES}/{site.split('.')[0]}/{site}/SE", ""))


def isStorageElement(name: str) -> bool:
    """Whether ``name`` is a concrete SE of the CS."""
    return gConfig.getSections(f"{STORAGE_ELEMENTS}/{name}")["OK"]


def getDestinationSEList(name: str, site: str = "") -> list[str]:
    """The SEs ``name`` stands for, those at ``site`` first: itself when it is an SE, else the site's alias,
    else the SE group; [] when it is none of them."""
    if isStorageElement(name):
        return [name]
    ses = toList(gConfig.getValue(f"{SITES}/{site.split('.')[0]}/{site}/AssociatedSEs/{name}", "")) if site else []
    ses = ses or toList(gConfig.getValue(f"{SE_GROUPS}/{name}", ""))
    local = set(getSEsForSite(site))
    return [se for se in ses if se in local] + [se for se in ses if se not in local]
