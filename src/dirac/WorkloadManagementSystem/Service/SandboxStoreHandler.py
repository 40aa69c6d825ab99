"""WorkloadManagement/SandboxStore: job sandboxes up and down, and which jobs use them.

Uploads arrive with ``streamFromClient`` (the framework spools the body and passes its path
first), are checked against the announced size and SHA-256, kept by the configured back end
and answered with DIRAC's reference ``SB:<LocalSE>|<path>``. The rules of who may read and
assign what are in ``Logic/SandboxStore.py``; options in docs/sandboxes.md.
"""

from __future__ import annotations

from typing import Any, BinaryIO, ClassVar

from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.Logic import SandboxStore
from dirac.WorkloadManagementSystem.Logic.JobPolicy import RIGHT_PUT_SANDBOX
from dirac.WorkloadManagementSystem.Logic.SandboxStorage import SandboxStorage, SandboxStoreSettings, maxSandboxBytes

#: who may upload: whoever may submit jobs or run them, and services acting for users
UPLOADERS = [Properties.NormalUser, Properties.Pilot, Properties.GenericPilot, Properties.JobAdministrator,
             Properties.TrustedHost]


class SandboxStoreHandler(RequestHandler):
    """The SandboxStore service."""

    settings: ClassVar[SandboxStoreSettings]
    storage: ClassVar[SandboxStorage]
    sandboxDB: ClassVar[SandboxMetadataDB]
    jobDB: ClassVar[JobDB]

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.settings = SandboxStoreSettings.fromCS(serviceInfo.section)
        cls.storage = cls.settings.makeStorage(create=True)
        cls.sandboxDB = SandboxMetadataDB()
        cls.jobDB = JobDB()
        cls.log.info("sandboxes of %s kept by %r, at most %d bytes each", cls.settings.localSE, cls.storage,
                     maxSandboxBytes(serviceInfo.section))

    # -- upload ---------------------------------------------------------------------------------------------
    auth_streamFromClient = UPLOADERS

    def export_streamFromClient(self, path: str, fileName: str, checksum: str, size: int,
                                assignTo: dict[str, str] | None = None) -> str:
        """Store an uploaded sandbox of ``size`` bytes and SHA-256 ``checksum``; its 'SB:<SE>|<path>'.

        ``assignTo`` ({'Job:<id>': 'Input'|'Output'}) also assigns it (PutSandbox right on each job).
        """
        jobs = _parseAssignTo(assignTo or {})
        for jobID, _ in jobs:  # refused before anything is stored
            SandboxStore.checkJobRight(self.jobDB, self.credDict, RIGHT_PUT_SANDBOX, jobID)
        reference = SandboxStore.storeSandbox(self.sandboxDB, self.storage, self.settings.localSE,
                                              maxSandboxBytes(self.serviceInfo.section), self.credDict, path,
                                              fileName, checksum, size)
        for jobID, sbType in jobs:
            SandboxStore.assignSandboxesToJob(self.sandboxDB, self.jobDB, self.credDict, jobID, [reference], sbType,
                                              jobChecked=True)
        return reference

    # -- download ---------------------------------------------------------------------------------------------
    auth_streamToClient = [AUTHENTICATED]

    def export_streamToClient(self, sbReference: str) -> BinaryIO:
        """The bytes of a sandbox the caller owns or may read through one of its jobs."""
        return SandboxStore.openSandbox(self.sandboxDB, self.jobDB, self.storage, self.settings.localSE,
                                        self.credDict, sbReference)

    auth_getSandboxInfo = [AUTHENTICATED]

    def export_getSandboxInfo(self, sbReference: str) -> dict[str, Any]:
        """{Size, Checksum (SHA-256 hex), ChecksumType, Owner, OwnerGroup, RegistrationTime, LastAccessTime,
        Assigned} of a sandbox the caller may read: what a client checks a download against."""
        return SandboxStore.sandboxInfo(SandboxStore.getReadableSandbox(self.sandboxDB, self.jobDB, self.credDict,
                                                                        sbReference))

    # -- assignment ---------------------------------------------------------------------------------------------
    auth_assignSandboxesToJob = [AUTHENTICATED]

    def export_assignSandboxesToJob(self, jobID: int, sbReferences: list[str], sbType: str) -> int:
        """Assign the caller's sandboxes to a job as 'Input' or 'Output' (PutSandbox right); new links."""
        return SandboxStore.assignSandboxesToJob(self.sandboxDB, self.jobDB, self.credDict, jobID, sbReferences,
                                                 sbType)

    auth_getSandboxesAssignedToEntity = [AUTHENTICATED]

    def export_getSandboxesAssignedToEntity(self, entityId: str) -> dict[str, list[str]]:
        """{'Input': [references], 'Output': [...]} of 'Job:<id>' (GetInfo right on the job)."""
        return SandboxStore.getSandboxesAssignedToEntity(self.sandboxDB, self.jobDB, self.credDict, entityId)

    auth_unassignJobs = [Properties.JobAdministrator, Properties.TrustedHost]

    def export_unassignJobs(self, jobIDs: list[int] | int) -> int:
        """Forget the sandbox assignments of jobs (job cleaning); how many links were removed."""
        return SandboxStore.unassignJobs(self.sandboxDB, [jobIDs] if isinstance(jobIDs, int) else jobIDs)


def _parseAssignTo(assignTo: dict[str, str]) -> list[tuple[int, str]]:
    """[(jobID, sbType)] of {'Job:<id>': 'Input'|'Output'}, checked before anything is stored."""
    jobs = []
    for entity, sbType in assignTo.items():
        kind, _, number = entity.partition(":")
        if kind != "Job" or not number.isdigit():
            raise InvalidArgument(f"assignTo: {entity!r} is not 'Job:<id>'")
        if sbType not in SandboxStore.SANDBOX_TYPES:
            raise InvalidArgument(f"assignTo: sandbox type {sbType!r} is not one of {', '.join(SandboxStore.SANDBOX_TYPES)}")
        jobs.append((int(number), sbType))
    return jobs
