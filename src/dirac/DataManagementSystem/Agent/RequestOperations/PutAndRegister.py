"""PutAndRegister: upload a local file (its ``PFN``: a path the agent's host reads) to the TargetSE and register
it (DIRAC's operation), checked against the file's Checksum when it has one; GUID kept when given."""

from __future__ import annotations

from dirac.DataManagementSystem.Agent.RequestOperations.DMSRequestOperationsBase import DMSRequestOperationsBase


class PutAndRegister(DMSRequestOperationsBase):
    """The operation's local files stored on its (first) TargetSE and registered."""

    def execute(self) -> None:
        targets = self.operation.targetSEList
        dm = self.dataManager()
        for opFile in self.waitingFiles:
            if not targets:
                opFile.fail("upload: the operation names no TargetSE")
                continue
            self.applyBulk([opFile], dm.putAndRegister(opFile.LFN, opFile.PFN, targets[0], guid=opFile.GUID or None,
                                                       checksum=opFile.Checksum or None), f"upload to {targets[0]}")
