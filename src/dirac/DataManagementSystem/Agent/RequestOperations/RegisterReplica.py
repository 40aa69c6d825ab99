"""RegisterReplica: add the files' replicas on the TargetSE(s) to the File Catalog (DIRAC's operation), with the
file's PFN; the copy itself must already be there."""

from __future__ import annotations

from dirac.DataManagementSystem.Agent.RequestOperations.DMSRequestOperationsBase import DMSRequestOperationsBase


class RegisterReplica(DMSRequestOperationsBase):
    """The operation's replicas in the catalog."""

    def execute(self) -> None:
        files = self.waitingFiles
        catalog = self.dataManager().catalog
        pfns = {opFile.LFN: opFile.PFN for opFile in files}
        self.perTarget(files, self.operation.targetSEList,
                       lambda lfns, target: catalog.addReplica({lfn: {"SE": target, "PFN": pfns[lfn]}
                                                                for lfn in lfns}),
                       "replica registration")
