"""InputData: where a job's input files are: the sites holding all of them become its site candidates.

Replicas come from a ``ReplicaResolver`` ({LFN: [SE]}); by default the File Catalog service
(``DataManagement/FileCatalog``, ``getReplicas``) when ``/Systems/DataManagement/URLs/FileCatalog``
is set. SEs map to sites through ``/Resources/Sites/<Grid>/<Site>/SE``. Without a catalog a job
with input data cannot be placed and is Failed; a catalog that does not answer leaves the job
Checking for a later pass. A job with ``DisableDataScheduling = True`` (DIRAC's, from
``Job.setInputDataPolicy("Download", dataScheduling=False)``) must still find replicas of all its
files but may run at any site: it downloads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Logic.Optimization import (
    NO_FILE_CATALOG,
    OptimizationTask,
    Optimizer,
    OptimizerEnvironment,
    ReplicaResolver,
    SiteMap,
)

FILE_CATALOG_URL_OPTION = "/Systems/DataManagement/URLs/FileCatalog"
FILE_CATALOG_SERVICE = "DataManagement/FileCatalog"
LFNS_PER_CALL = 1000
MAX_LFNS_IN_MESSAGE = 3


class FileCatalogResolver:
    """Replicas from the File Catalog service (``getReplicas(lfns, allStatus=False)``)."""

    def __init__(self, service: str = FILE_CATALOG_SERVICE):
        from dirac.Core.Tornado.Client import RPCClient

        self.client = RPCClient(service)

    def __call__(self, lfns: Sequence[str]) -> dict[str, list[str]]:
        result = self.client.getReplicas(list(lfns), False)
        if not result["OK"]:
            raise DiracError(f"{FILE_CATALOG_SERVICE} getReplicas failed: {result['Message']}")
        successful = result["Value"].get("Successful", {})
        return {lfn: sorted(replicas) for lfn, replicas in successful.items()}


def catalogResolverFromCS() -> ReplicaResolver | None:
    """The File Catalog resolver when the CS names a File Catalog service, else None."""
    return FileCatalogResolver() if gConfig.getValue(FILE_CATALOG_URL_OPTION, "") else None


def _shortList(lfns: Sequence[str]) -> str:
    more = len(lfns) - MAX_LFNS_IN_MESSAGE
    return ", ".join(lfns[:MAX_LFNS_IN_MESSAGE]) + (f" and {more} more" if more > 0 else "")


class InputData(Optimizer):
    """Resolves the input data of jobs to the sites holding all of it; fails jobs whose data cannot be found."""

    name = "InputData"

    def __init__(self, resolver: ReplicaResolver | None = None):
        super().__init__()
        self.resolver = resolver

    @classmethod
    def fromEnvironment(cls, environment: OptimizerEnvironment) -> InputData:
        return cls(environment.replicaResolver)

    def optimize(self, tasks: Sequence[OptimizationTask]) -> None:
        withData = [(task, task.inputDataLFNs()) for task in tasks]
        withData = [(task, lfns) for task, lfns in withData if lfns]
        if not withData:
            return
        resolver = self.resolver or catalogResolverFromCS()
        if resolver is None:
            for task, lfns in withData:
                task.fail(self.name, NO_FILE_CATALOG, f"{len(lfns)} input file(s) and no {FILE_CATALOG_URL_OPTION}")
            return
        try:
            replicas = self.resolve(resolver, sorted({lfn for _, lfns in withData for lfn in lfns}))
        except Exception as exc:  # the catalog may come back: the jobs wait for a later pass
            self.log.error("replicas of %d job(s) not resolved, left Checking: %s: %s", len(withData),
                           type(exc).__name__, exc)
            for task, _ in withData:
                task.defer(self.name, f"replicas not resolved: {exc}")
            return
        siteMap = SiteMap.fromCS()
        for task, lfns in withData:
            missing = [lfn for lfn in lfns if not replicas.get(lfn)]
            if missing:
                task.fail(self.name, JobMinorStatus.INPUT_NOT_AVAILABLE,
                          f"{len(missing)} of {len(lfns)} input file(s) without replica: {_shortList(missing)}")
                continue
            if task.jdlFlag("DisableDataScheduling"):  # Job.setInputDataPolicy("Download", dataScheduling=False)
                continue
            sites = [siteMap.sitesHolding(replicas[lfn]) for lfn in lfns]
            task.siteCandidates = set.intersection(*sites)

    @staticmethod
    def resolve(resolver: ReplicaResolver, lfns: Sequence[str]) -> Mapping[str, Sequence[str]]:
        """{LFN: [SE]} for ``lfns``, asked in chunks of LFNS_PER_CALL."""
        replicas: dict[str, Sequence[str]] = {}
        for start in range(0, len(lfns), LFNS_PER_CALL):
            replicas.update(resolver(lfns[start:start + LFNS_PER_CALL]))
        return replicas
