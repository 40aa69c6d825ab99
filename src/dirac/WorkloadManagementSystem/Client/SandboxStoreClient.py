"""Upload and download job sandboxes through WorkloadManagement/SandboxStore.

A sandbox is a tar.bz2 of files, sent with ``streamFromClient`` and named on the server by a
sandbox reference ``SB:<StorageElement>|<path>`` that goes into the job's JDL. Uploads carry
their size and SHA-256, which the server checks; every download is checked against the size
and SHA-256 the server recorded (``getSandboxInfo``) and removed when it does not match.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Tornado.Client import RPCClient
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType

SERVICE = "WorkloadManagement/SandboxStore"
SANDBOX_TYPES = ("Input", "Output")


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

    # -- upload --------------------------------------------------------------------------------------
    def uploadFilesAsSandbox(self, fileList: list[str | Path], sizeLimit: int = 0,
                             assignTo: dict[str, str] | None = None) -> DReturnType[str]:
        """Pack local files and directories into one sandbox; S_OK('SB:<SE>|<path>').

        ``assignTo`` ({'Job:<id>': 'Input'|'Output'}) assigns the sandbox in the same call.
        """
        for sbType in (assignTo or {}).values():
            if sbType not in SANDBOX_TYPES:
                return S_ERROR(errno.EINVAL, f"invalid sandbox type {sbType!r}: use one of {', '.join(SANDBOX_TYPES)}")
        missing = [str(f) for f in fileList if not os.path.exists(f)]
        if missing:
            return S_ERROR(errno.ENOENT, f"sandbox files not found: {', '.join(missing)}")
        if not fileList:
            return S_ERROR(errno.EINVAL, "no files to put in the sandbox")
        with tempfile.TemporaryDirectory(prefix="dirac-sandbox-") as tmp:
            archive = Path(tmp) / "sandbox.tar.bz2"
            try:
                with tarfile.open(archive, "w:bz2") as tar:
                    for path in fileList:
                        tar.add(str(path), arcname=os.path.basename(os.path.normpath(str(path))))
            except OSError as exc:
                return S_ERROR(errno.EIO, f"cannot pack the sandbox: {exc}")
            size = archive.stat().st_size
            if sizeLimit and size > sizeLimit:
                return S_ERROR(errno.EFBIG, f"the sandbox is {size} bytes, over the limit of {sizeLimit} bytes")
            args: list[Any] = [archive.name, fileChecksum(archive), size]
            if assignTo:
                args.append(dict(assignTo))
            return self.rpc.sendFile(archive, *args)

    # -- download ------------------------------------------------------------------------------------
    def getSandboxInfo(self, sbReference: str) -> DReturnType[dict[str, Any]]:
        """{Size, Checksum, ChecksumType, Owner, OwnerGroup, ...} of a sandbox the caller may read."""
        return self.rpc.getSandboxInfo(sbReference)

    def downloadSandbox(self, sbReference: str, destinationDir: str | Path, unpack: bool = True
                        ) -> DReturnType[list[str]]:
        """Fetch a sandbox, check it and unpack it into ``destinationDir``; S_OK(list of files).

        With ``unpack=False`` the archive itself is kept: S_OK([its path]).
        """
        info = self.getSandboxInfo(sbReference)
        if not info["OK"]:
            return info
        destination = Path(destinationDir)
        destination.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".sandbox-", suffix=".part", dir=destination)
        os.close(handle)
        archive = Path(name)
        try:
            result = self.rpc.receiveFile(archive, sbReference)
            if result["OK"]:
                result = _verify(archive, sbReference, info["Value"])
            if not result["OK"]:
                return result
            if not unpack:
                kept = destination / os.path.basename(sbReference.rpartition("|")[2])
                archive.replace(kept)
                return S_OK([str(kept)])
            try:
                with tarfile.open(archive, "r:*") as tar:
                    names = tar.getnames()
                    tar.extractall(destination, filter="data")  # refuses absolute paths, .. and devices
            except (tarfile.TarError, OSError) as exc:
                return S_ERROR(errno.EIO, f"cannot unpack sandbox {sbReference}: {exc}")
            return S_OK(names)
        finally:
            archive.unlink(missing_ok=True)

    def downloadSandboxForJob(self, jobID: int, sbType: str, destinationDir: str | Path) -> DReturnType[list[str]]:
        """Fetch and unpack every sandbox of type 'Input' or 'Output' assigned to a job."""
        result = self.getSandboxesAssignedToEntity(f"Job:{int(jobID)}")
        if not result["OK"]:
            return result
        references = result["Value"].get(sbType, [])
        if not references:
            return S_ERROR(errno.ENOENT, f"job {jobID} has no {sbType.lower()} sandbox")
        files: list[str] = []
        for reference in references:
            fetched = self.downloadSandbox(reference, destinationDir)
            if not fetched["OK"]:
                return fetched
            files += fetched["Value"]
        return S_OK(files)

    # -- assignment ------------------------------------------------------------------------------------
    def assignSandboxesToJob(self, jobID: int, sbReferences: list[str], sbType: str = "Input") -> DReturnType[int]:
        """Assign uploaded sandboxes to a job as its 'Input' or 'Output'; S_OK(number of new links)."""
        return self.rpc.assignSandboxesToJob(int(jobID), list(sbReferences), sbType)

    def getSandboxesAssignedToEntity(self, entityID: str) -> DReturnType[dict[str, list[str]]]:
        """{'Input': [references], 'Output': [...]} of an entity such as 'Job:12'."""
        return self.rpc.getSandboxesAssignedToEntity(entityID)

    def unassignJobs(self, jobIDs: list[int] | int) -> DReturnType[int]:
        """Forget the sandboxes of jobs being removed (JobAdministrator, TrustedHost)."""
        ids = [jobIDs] if isinstance(jobIDs, int) else [int(jobID) for jobID in jobIDs]
        return self.rpc.unassignJobs(ids)


def _verify(archive: Path, sbReference: str, info: dict[str, Any]) -> DReturnType[None]:
    """S_OK when the downloaded file has the size and SHA-256 the server recorded."""
    size = archive.stat().st_size
    if size != info.get("Size"):
        return S_ERROR(DErrno.EFILESIZE, f"downloaded sandbox {sbReference} has {size} bytes where the store "
                                         f"recorded {info.get('Size')}: it was removed")
    expected = info.get("Checksum") or ""
    if expected:  # sandboxes registered before checksums were recorded have none
        actual = fileChecksum(archive)
        if actual != expected:
            return S_ERROR(DErrno.EBADCKS, f"downloaded sandbox {sbReference} has SHA-256 {actual} where the store "
                                           f"recorded {expected}: it was removed")
    return S_OK()
