"""RemoveFile: remove files, every replica and the catalog entry (DIRAC's operation); absent files are done."""

from __future__ import annotations

from dirac.DataManagementSystem.Agent.RequestOperations.DMSRequestOperationsBase import DMSRequestOperationsBase


class RemoveFile(DMSRequestOperationsBase):
    """The operation's files removed everywhere."""

    def execute(self) -> None:
        files = self.waitingFiles
        self.applyBulk(files, self.dataManager().removeFile([opFile.LFN for opFile in files]), "removal")
