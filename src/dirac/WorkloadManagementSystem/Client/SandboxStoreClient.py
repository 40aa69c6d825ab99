"""Upload and download job sandboxes through WorkloadManagement/SandboxStore.

A sandbox is a tar.bz2 of files, sent with ``streamFromClient`` and named on the server by a
sandbox reference ``SB:<StorageElement>|<path>`` that goes into the job's JDL.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType

SERVICE = "WorkloadManagement/SandboxStore"


def fileChecksum(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        while block := data.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class SandboxStoreClient:
    """Pack, send, fetch and unpack sandboxes."""

    def __init__(self, **rpcOptions: Any):
        self.rpc = RPCClient(rpcOptions.pop("url", None) or SERVICE, **rpcOptions)

    def uploadFilesAsSandbox(self, fileList: list[str | Path], sizeLimit: int = 0) -> DReturnType[str]:
        """Pack local files and directories into one sandbox; S_OK('SB:<SE>|<path>')."""
        missing = [str(f) for f in fileList if not os.path.exists(f)]
        if missing:
            return S_ERROR(f"input sandbox files not found: {', '.join(missing)}")
        with tempfile.TemporaryDirectory(prefix="dirac-sandbox-") as tmp:
            archive = Path(tmp) / "sandbox.tar.bz2"
            with tarfile.open(archive, "w:bz2") as tar:
                for path in fileList:
                    tar.add(str(path), arcname=os.path.basename(os.path.normpath(str(path))))
            size = archive.stat().st_size
            if sizeLimit and size > sizeLimit:
                return S_ERROR(f"the sandbox is {size} bytes, over the limit of {sizeLimit} bytes")
            return self.rpc.sendFile(archive, archive.name, fileChecksum(archive), size)

    def downloadSandbox(self, sbReference: str, destinationDir: str | Path, unpack: bool = True
                        ) -> DReturnType[list[str]]:
        """Fetch a sandbox and unpack it into ``destinationDir``; S_OK(list of files)."""
        destination = Path(destinationDir)
        destination.mkdir(parents=True, exist_ok=True)
        archive = destination / f".sandbox-{os.getpid()}.tar.bz2"
        result = self.rpc.receiveFile(archive, sbReference)
        if not result["OK"]:
            return result
        try:
            if not unpack:
                return S_OK([str(archive)])
            with tarfile.open(archive, "r:*") as tar:
                names = tar.getnames()
                tar.extractall(destination, filter="data")  # refuses absolute paths, .. and devices
            return S_OK(names)
        except (tarfile.TarError, OSError) as exc:
            return S_ERROR(f"cannot unpack sandbox {sbReference}: {exc}")
        finally:
            if unpack:
                archive.unlink(missing_ok=True)

    def downloadSandboxForJob(self, jobID: int, sbType: str, destinationDir: str | Path) -> DReturnType[list[str]]:
        """Fetch and unpack every sandbox of type 'Input' or 'Output' assigned to a job."""
        result = self.rpc.getSandboxesAssignedToEntity(f"Job:{jobID}")
        if not result["OK"]:
            return result
        references = result["Value"].get(sbType, [])
        if not references:
            return S_ERROR(f"job {jobID} has no {sbType.lower()} sandbox")
        files: list[str] = []
        for reference in references:
            fetched = self.downloadSandbox(reference, destinationDir)
            if not fetched["OK"]:
                return fetched
            files += fetched["Value"]
        return S_OK(files)

    def assignSandboxesToJob(self, jobID: int, sbReferences: list[str], sbType: str = "Input") -> DReturnType[Any]:
        return self.rpc.assignSandboxesToJob(jobID, sbReferences, sbType)
