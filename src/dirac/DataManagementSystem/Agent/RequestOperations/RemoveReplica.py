"""RemoveReplica: remove the files' copies on the TargetSE(s) and their catalog replicas (DIRAC's operation).

A file with no replica there is done; a file's last replica is never removed (``Failed to remove sole
replica``, at once): the failover pair (ReplicateAndRegister, then RemoveReplica of the failover SE)
thus never loses a file whose replication did not happen.
"""

from __future__ import annotations

from dirac.DataManagementSystem.Agent.RequestOperations.DMSRequestOperationsBase import DMSRequestOperationsBase


class RemoveReplica(DMSRequestOperationsBase):
    """The operation's files no longer on its TargetSE(s)."""

    def execute(self) -> None:
        dm = self.dataManager()
        self.perTarget(self.waitingFiles, self.operation.targetSEList,
                       lambda lfns, target: dm.removeReplica(target, lfns), "replica removal")
