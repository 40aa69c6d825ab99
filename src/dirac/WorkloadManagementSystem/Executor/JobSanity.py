"""JobSanity: a job can run at all: its JDL reads, names an executable, and its input sandboxes are its owner's.

Input sandbox entries ``SB:<SE>|<path>`` must be registered in SandboxMetadataDB by the job's
owner (same user and group); they are then assigned to the job (entity ``Job:<id>``, type
Input). ``LFN:`` entries are downloaded by the job wrapper and not looked at here.
"""

from __future__ import annotations

from collections.abc import Sequence

from dirac.Core.Utilities.Exceptions import NotFound
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.Logic.Optimization import (
    INPUT_SANDBOX_NOT_OWNED,
    INPUT_SANDBOX_NOT_REGISTERED,
    NO_EXECUTABLE,
    OptimizationTask,
    Optimizer,
    OptimizerEnvironment,
)

SANDBOX_PREFIX = "SB:"


def splitSandboxReference(reference: str) -> tuple[str, str] | None:
    """'SB:<SE>|<path>' -> (SE, path); None when it is not of that form."""
    seName, sep, path = reference.removeprefix(SANDBOX_PREFIX).partition("|")
    if not reference.startswith(SANDBOX_PREFIX) or not sep or not seName.strip() or not path.strip():
        return None
    return seName.strip(), path.strip()


class JobSanity(Optimizer):
    """Fails jobs that cannot run: unreadable JDL, no executable, input sandboxes missing or of another owner."""

    name = "JobSanity"
    readsUnparsedJDL = True

    def __init__(self, sandboxDB: SandboxMetadataDB):
        super().__init__()
        self.sandboxDB = sandboxDB

    @classmethod
    def fromEnvironment(cls, environment: OptimizerEnvironment) -> JobSanity:
        return cls(environment.sandboxDB)

    def optimize(self, tasks: Sequence[OptimizationTask]) -> None:
        readable = []
        for task in tasks:
            if task.classAd is None:
                task.fail(self.name, JobMinorStatus.ILLEGAL_JOB_JDL, task.jdlError)
            elif not task.classAd.getAttributeString("Executable").strip():
                task.fail(self.name, NO_EXECUTABLE, "the JDL has no Executable")
            elif not task.classAd.lookupAttribute("JobRequirements"):
                task.fail(self.name, JobMinorStatus.ILLEGAL_JOB_JDL, "the JDL has no JobRequirements")
            else:
                readable.append(task)
        self.assignInputSandboxes(readable)

    def _lookUp(self, location: tuple[str, str]) -> tuple[int, dict[str, str]] | None:
        """(SBId, owner) of a registered sandbox, None when unknown."""
        try:
            return self.sandboxDB.getSandboxId(*location), self.sandboxDB.getSandboxOwner(*location)
        except NotFound:
            return None

    def assignInputSandboxes(self, tasks: Sequence[OptimizationTask]) -> None:
        """Check the SB: input sandboxes of the tasks and assign them to their jobs (one lookup per sandbox)."""
        references = {task.jobID: [ref for ref in task.jdlList("InputSandbox") if ref.startswith(SANDBOX_PREFIX)]
                      for task in tasks}
        locations = {ref: splitSandboxReference(ref) for refs in references.values() for ref in refs}
        known = {location: self._lookUp(location) for location in set(locations.values()) if location is not None}
        assignments: dict[str, list[tuple[int, str]]] = {}
        for task in tasks:
            sandboxes = []
            for ref in references[task.jobID]:
                location = locations[ref]
                found = known.get(location) if location is not None else None
                if found is None:
                    task.fail(self.name, INPUT_SANDBOX_NOT_REGISTERED, f"{ref} is not a registered sandbox")
                    break
                sbID, owner = found
                if (owner["Owner"], owner["OwnerGroup"]) != (task.owner, task.ownerGroup):
                    task.fail(self.name, INPUT_SANDBOX_NOT_OWNED,
                              f"{ref} belongs to {owner['Owner']}@{owner['OwnerGroup']}, "
                              f"not to {task.owner}@{task.ownerGroup}")
                    break
                sandboxes.append((sbID, "Input"))
            if task.active and sandboxes:
                assignments[f"Job:{task.jobID}"] = sandboxes
        if assignments:
            self.sandboxDB.assignSandboxesToEntities(assignments)
            self.log.debug("assigned input sandboxes to %d job(s)", len(assignments))
