"""JobScheduling: the sites a job may run at, from its JDL and the sites holding its input data.

Candidates are the JDL's Site list (all sites when absent or ANY) minus its BannedSites,
intersected with the sites InputData found holding all the input data. When the CS lists sites
(/Resources/Sites), a requested site it does not list is an error. No candidate left: the job
is Failed. When the candidates are narrower than what the JDL asked, the JDL's JobRequirements
Sites are replaced so that the task queue the job enters says where it may run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Logic.Optimization import (
    UNKNOWN_SITE,
    OptimizationTask,
    Optimizer,
    SiteMap,
)

ANY_SITE = "ANY"
MULTIPLE_SITES = "Multiple"


def _names(sites: Iterable[str]) -> str:
    return ", ".join(sorted(sites))


class JobScheduling(Optimizer):
    """Decides the candidate sites of jobs, fails those with none, narrows the JDL's site requirement."""

    name = "JobScheduling"

    def __init__(self) -> None:
        super().__init__()
        self._narrowed: dict[tuple[str, tuple[str, ...]], str] = {}

    def optimize(self, tasks: Sequence[OptimizationTask]) -> None:
        siteMap = SiteMap.fromCS()
        self._narrowed.clear()  # JobRequirements narrowed in this batch, by (requirements, sites)
        for task in tasks:
            self.scheduleTask(task, siteMap)

    def scheduleTask(self, task: OptimizationTask, siteMap: SiteMap) -> None:
        """Set the task's candidate sites (Site attribute, JDL requirements) or fail it."""
        requested = {site for site in task.jdlList("Site") if site.strip().upper() != ANY_SITE}
        banned = set(task.jdlList("BannedSites"))
        unknown = requested - siteMap.sites
        if siteMap.sites and unknown:
            task.fail(self.name, UNKNOWN_SITE, f"site(s) {_names(unknown)} not configured under /Resources/Sites")
            return
        candidates: set[str] | None = (requested - banned) if requested else None
        if candidates is not None and not candidates:
            task.fail(self.name, JobMinorStatus.NO_CANDIDATE_SITE_FOUND,
                      f"every requested site is banned: {_names(requested)}")
            return
        if task.siteCandidates is not None:
            dataSites = task.siteCandidates - banned
            candidates = dataSites if candidates is None else candidates & dataSites
            if not candidates:
                task.fail(self.name, JobMinorStatus.NO_CANDIDATE_SITE_FOUND,
                          "no allowed site holds all the input data (held at: "
                          f"{_names(task.siteCandidates) or 'no configured site'})")
                return
        if candidates is None and siteMap.sites and not siteMap.sites - banned:
            task.fail(self.name, JobMinorStatus.NO_CANDIDATE_SITE_FOUND,
                      f"every configured site is banned: {_names(siteMap.sites)}")
            return
        if candidates is None:
            task.site = ANY_SITE
            return
        task.site = next(iter(candidates)) if len(candidates) == 1 else MULTIPLE_SITES
        if candidates != requested:
            self._requireSites(task, candidates)

    def _requireSites(self, task: OptimizationTask, sites: set[str]) -> None:
        """Replace the Sites of the task's JobRequirements."""
        if task.classAd is None:
            return
        key = (task.classAd.get_expression("JobRequirements"), tuple(sorted(sites)))
        if key not in self._narrowed:  # the jobs of a parametric submission share theirs: rewrite once
            requirements = ClassAd(key[0])
            requirements.insertAttributeVectorString("Sites", list(key[1]))
            self._narrowed[key] = requirements.asJDL()
        task.classAd.insertAttributeInt("JobRequirements", self._narrowed[key])
        task.jdlChanged = True
