"""RegisterFile: add files to the File Catalog with their replica on the TargetSE (DIRAC's operation): PFN, Size,
Checksum (Adler32) and GUID from the request's file. A file already registered with that replica is done."""

from __future__ import annotations

from dirac.DataManagementSystem.Agent.RequestOperations.DMSRequestOperationsBase import DMSRequestOperationsBase


class RegisterFile(DMSRequestOperationsBase):
    """The operation's files in the catalog."""

    def execute(self) -> None:
        files = self.waitingFiles
        targets = self.operation.targetSEList
        if not targets:
            for opFile in files:
                opFile.fail("registration: the operation names no TargetSE")
            return
        entries = {opFile.LFN: {"PFN": opFile.PFN, "SE": targets[0], "Size": opFile.Size, "Checksum": opFile.Checksum,
                                "ChecksumType": "Adler32", "GUID": opFile.GUID} for opFile in files}
        self.applyBulk(files, self.dataManager().catalog.addFile(entries), "registration")
