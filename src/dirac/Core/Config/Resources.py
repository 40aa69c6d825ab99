"""Readers of the ``/Resources`` section: sites, their computing elements and queues.

Layout (DIRAC's): ``/Resources/Sites/<Grid>/<Site>/CEs/<CE>`` holds the CE options (``CEType``,
limits, ...) and ``.../CEs/<CE>/Queues/<Queue>`` the queue options. A queue's parameters are the
CE options overlaid by the queue's, plus ``Site``, ``GridCE``, ``Queue`` and ``Grid``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dirac.Core.Config import gConfig

SITES = "/Resources/Sites"


def _sections(path: str) -> list[str]:
    result = gConfig.getSections(path)
    return result["Value"] if result["OK"] else []


def _options(path: str) -> dict[str, str]:
    result = gConfig.getOptionsDict(path)
    return result["Value"] if result["OK"] else {}


def getSites() -> dict[str, str]:
    """{site: grid} of every configured site."""
    return {site: grid for grid in _sections(SITES) for site in _sections(f"{SITES}/{grid}")}


def getQueues(sites: Iterable[str] = (), ces: Iterable[str] = (), ceTypes: Iterable[str] = ()
              ) -> dict[str, dict[str, Any]]:
    """{'<CE>/<Queue>': parameters} of the configured queues, optionally only of some sites, CEs or CE types."""
    wantedSites, wantedCEs, wantedTypes = set(sites), set(ces), set(ceTypes)
    queues: dict[str, dict[str, Any]] = {}
    for site, grid in sorted(getSites().items()):
        if wantedSites and site not in wantedSites:
            continue
        for ce in _sections(f"{SITES}/{grid}/{site}/CEs"):
            if wantedCEs and ce not in wantedCEs:
                continue
            cePath = f"{SITES}/{grid}/{site}/CEs/{ce}"
            ceOptions = _options(cePath)
            if wantedTypes and ceOptions.get("CEType", "") not in wantedTypes:
                continue
            for queue in _sections(f"{cePath}/Queues"):
                queues[f"{ce}/{queue}"] = {**ceOptions, **_options(f"{cePath}/Queues/{queue}"),
                                           "Site": site, "Grid": grid, "GridCE": ce, "Queue": queue}
    return queues
