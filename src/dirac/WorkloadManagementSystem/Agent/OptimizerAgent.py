"""The Optimizers agent: takes new jobs from Received to Waiting in their task queue, or to Failed with the reason.

Each cycle claims batches of jobs (Received -> Checking, plus Checking jobs whose claim is
older than ClaimTimeout) until none is left, and runs the optimizer chain over each batch (see
``Logic/Optimization.py``). Several copies may run at once, in threads or on several hosts.

Options in ``/Systems/WorkloadManagement/Agents/Optimizers``: ``PollingTime`` (s), ``BatchSize``
(jobs per claim), ``ClaimTimeout`` (s after which a Checking job is taken back) and
``Optimizers`` (the chain, in order).
"""

from __future__ import annotations

from typing import Any, ClassVar

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.Optimization import (
    DEFAULT_CHAIN,
    SOURCE,
    BatchResult,
    Optimizer,
    OptimizerEnvironment,
    ReplicaResolver,
    buildChain,
    claimJobsToOptimize,
    optimizeJobs,
)


class OptimizerAgent(AgentModule):
    """Runs the job optimizer chain (JobSanity, InputData, JobScheduling) over batches of new jobs."""

    DEFAULTS: ClassVar[dict[str, Any]] = {**AgentModule.DEFAULTS, "PollingTime": 2.0, "BatchSize": 1000,
                                          "ClaimTimeout": 300.0, "Optimizers": list(DEFAULT_CHAIN)}

    def __init__(self, agentName: str = "WorkloadManagement/Optimizers", jobDB: JobDB | None = None,
                 loggingDB: JobLoggingDB | None = None, taskQueueDB: TaskQueueDB | None = None,
                 sandboxDB: SandboxMetadataDB | None = None, replicaResolver: ReplicaResolver | None = None):
        super().__init__(agentName)
        self.jobDB = jobDB
        self.loggingDB = loggingDB
        self.taskQueueDB = taskQueueDB
        self.sandboxDB = sandboxDB
        self.replicaResolver = replicaResolver
        self.environment: OptimizerEnvironment | None = None
        self._chainNames: tuple[str, ...] = ()
        self._chain: list[Optimizer] = []
        #: What became of the jobs this agent checked since it started.
        self.processed = BatchResult()

    def initialize(self) -> None:
        self.environment = OptimizerEnvironment(
            jobDB=self.jobDB or JobDB(), loggingDB=self.loggingDB or JobLoggingDB(),
            taskQueueDB=self.taskQueueDB or TaskQueueDB(), sandboxDB=self.sandboxDB or SandboxMetadataDB(),
            replicaResolver=self.replicaResolver)
        self.chain()
        for name in ("BatchSize", "ClaimTimeout"):
            if self.am_getOption(name) <= 0:
                raise ConfigurationError(f"{self.section}/{name} must be positive, not {self.am_getOption(name)}")

    @property
    def env(self) -> OptimizerEnvironment:
        """The DBs and clients of the optimizers (set by initialize())."""
        if self.environment is None:
            raise ConfigurationError(f"{self.agentName}: initialize() was not run")
        return self.environment

    def chain(self) -> list[Optimizer]:
        """The optimizers of the Optimizers option, rebuilt when the option changes."""
        names = tuple(self.am_getOption("Optimizers"))
        if names != self._chainNames or not self._chain:
            self._chain = buildChain(names, self.env)
            self._chainNames = names
            self.log.info("optimizer chain: %s", " -> ".join(names))
        return self._chain

    def execute(self) -> str:
        chain = self.chain()
        batchSize = max(1, int(self.am_getOption("BatchSize")))
        claimTimeout = float(self.am_getOption("ClaimTimeout"))
        total = BatchResult()
        while not self.stopRequested:
            jobIDs = claimJobsToOptimize(self.env.jobDB, self.env.loggingDB, batchSize, claimTimeout, chain[0].name,
                                         SOURCE)
            if not jobIDs:
                break
            result = optimizeJobs(self.env, chain, jobIDs)
            self.log.info("batch of jobs %d..%d: %s", jobIDs[0], jobIDs[-1], result.summary())
            total.add(result)
            self.processed.add(result)
            if len(jobIDs) < batchSize:
                break
        return total.summary() if total.claimed else "no job to check"
