"""ReplicateAndRegister: copy files to the TargetSE(s) and register the new replicas (DIRAC's operation).

``SourceSE`` (one SE) restricts where the copy is read from; several or none: any replica. Each copy is
checked with Adler32 on the way (``DataManager.replicateAndRegister``): a file already on a target counts
as done there. A file the catalog does not know fails at once; an SE that cannot be reached or written
now leaves the file Waiting for the next attempt.
"""

from __future__ import annotations

from dirac.DataManagementSystem.Agent.RequestOperations.DMSRequestOperationsBase import DMSRequestOperationsBase


class ReplicateAndRegister(DMSRequestOperationsBase):
    """Replicas of the operation's files on its TargetSE(s)."""

    def execute(self) -> None:
        sources = self.operation.sourceSEList
        sourceSE = sources[0] if len(sources) == 1 else ""
        dm = self.dataManager()
        self.perTarget(self.waitingFiles, self.operation.targetSEList,
                       lambda lfns, target: dm.replicateAndRegister(lfns, target, sourceSE=sourceSE),
                       "replication")
