"""The base of the data operation handlers: a DataManager acting as the request's owner, per-file outcomes.

The DataManager answers in bulk (``{"Successful": {lfn: ...}, "Failed": {lfn: reason}}``); each file
becomes Done, or Failed at once for the reasons below (the file does not exist, the owner may not, the
SE is not configured, ...), or stays Waiting with its reason for another attempt (an SE or the catalog
not reachable, an SE not writable now, a full SE, a transfer that went wrong).
"""

from __future__ import annotations

from typing import Any, ClassVar

from dirac.Core.Utilities.ReturnValues import DReturnType
from dirac.DataManagementSystem.Client.DataManager import DataManager
from dirac.RequestManagementSystem.Agent.OperationHandlerBase import OperationHandlerBase
from dirac.RequestManagementSystem.Client.File import File


class DMSRequestOperationsBase(OperationHandlerBase):
    """Data operation handlers: files through the DataManager, with the owner's credentials."""

    PERMANENT_ERRORS: ClassVar[tuple[str, ...]] = (
        "No such file or directory", "Permission denied", "Invalid LFN", "sole replica", "no Storage Element",
        "File already exists", "no such local file",
    )

    def dataManager(self) -> DataManager:
        """A DataManager acting as the request's owner (made once per run)."""
        if getattr(self, "_dataManager", None) is None:
            self._dataManager = DataManager(**self.clientOptions())
        return self._dataManager

    def applyBulk(self, files: list[File], result: DReturnType[Any], what: str) -> None:
        """Done for the files ``result`` lists as Successful; the others failed (``fileFailed``) with its reason."""
        for opFile in files:
            if not result["OK"]:
                self.fileFailed(opFile, f"{what}: {result['Message']}")
            elif opFile.LFN in result["Value"]["Successful"]:
                self.fileDone(opFile)
            else:
                self.fileFailed(opFile, f"{what}: {result['Value']['Failed'].get(opFile.LFN, 'no answer')}")

    def perTarget(self, files: list[File], targets: list[str], action: Any, what: str) -> None:
        """``action(lfns, target)`` for every target SE: a file is Done once done on all of them."""
        if not targets:
            for opFile in files:
                opFile.fail(f"{what}: the operation names no TargetSE")
            return
        errors: dict[str, list[str]] = {}
        for target in targets:
            result = action([opFile.LFN for opFile in files], target)
            for opFile in files:
                if not result["OK"]:
                    errors.setdefault(opFile.LFN, []).append(f"{target}: {result['Message']}")
                elif opFile.LFN not in result["Value"]["Successful"]:
                    errors.setdefault(opFile.LFN, []).append(
                        f"{target}: {result['Value']['Failed'].get(opFile.LFN, 'no answer')}")
        for opFile in files:
            if opFile.LFN in errors:
                self.fileFailed(opFile, f"{what}: " + "; ".join(errors[opFile.LFN]))
            else:
                self.fileDone(opFile)
