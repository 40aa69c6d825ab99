"""The rules of the sandbox store: storing uploads, who may read or assign a sandbox, and cleaning.

A sandbox is named by its reference ``SB:<SEName>|<path>``. Who may do what:

* read (download, ``getSandboxInfo``): the owner (same user or host and same group; the whole
  group with ``JobSharing``), a ``JobAdministrator``, or anyone holding the ``GetSandbox`` right
  (see ``JobPolicy``) on a job the sandbox is assigned to: a pilot reads the input sandbox of
  the job it runs, a user the output sandbox a pilot uploaded for the user's job;
* assign to a job: the ``PutSandbox`` right on the job, and the sandbox must be the caller's
  own (or its group's with ``JobSharing``; any for ``JobAdministrator`` and ``TrustedHost``);
* list the sandboxes of a job: the ``GetInfo`` right on the job.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Base.DB import utcnow
from dirac.Core.Security import Properties
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument, NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import fileChecksum
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SANDBOX_TYPES, SandboxMetadataDB
from dirac.WorkloadManagementSystem.Logic.JobPolicy import (
    RIGHT_GET_INFO,
    RIGHT_GET_SANDBOX,
    RIGHT_PUT_SANDBOX,
    JobPolicy,
)
from dirac.WorkloadManagementSystem.Logic.SandboxStorage import (
    MIB,
    SandboxStorage,
    SandboxStoreSettings,
    checkKey,
)

log = getLogger("WorkloadManagement/SandboxStore")

SB_PREFIX = "SB:"
CHECKSUM_TYPE = "SHA256"
#: DIRAC's default grace period for unassigned sandboxes
DEFAULT_UNUSED_DAYS = 15.0
STALE_STAGED_SECONDS = 86400
_CHECKSUM = re.compile(r"^[0-9a-f]{64}$")
_EXTENSION = re.compile(r"\.(tar(?:\.(?:bz2|gz|xz|zst))?)$")
_JOB_ENTITY = re.compile(r"^Job:(\d+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


class SandboxTooLarge(InvalidArgument):
    """An upload over the MaxSandboxSizeMiB limit of the store."""

    errno = errno.EFBIG


class SandboxSizeMismatch(InvalidArgument):
    """An upload whose byte count is not the one the client announced."""

    errno = DErrno.EFILESIZE


class SandboxChecksumMismatch(InvalidArgument):
    """An upload (or download) whose SHA-256 is not the announced one."""

    errno = DErrno.EBADCKS


# -- references -------------------------------------------------------------------------------------
def makeSandboxReference(seName: str, sePFN: str) -> str:
    """``SB:<SEName>|<path>``."""
    return f"{SB_PREFIX}{seName}|{sePFN}"


def parseSandboxReference(reference: str) -> tuple[str, str]:
    """(SEName, path) of ``SB:<SEName>|<path>``; InvalidArgument for anything else."""
    seName, sep, sePFN = reference[len(SB_PREFIX):].partition("|") if reference.startswith(SB_PREFIX) else ("", "", "")
    if not seName or not sep or not sePFN:
        raise InvalidArgument(f"{reference!r} is not a sandbox reference (SB:<SEName>|<path>)")
    return seName, sePFN


def jobEntity(jobID: int) -> str:
    """The entity name of a job in the sandbox metadata: ``Job:<id>``."""
    return f"Job:{int(jobID)}"


# -- who the caller is --------------------------------------------------------------------------------
def ownerOf(credDict: Mapping[str, Any]) -> tuple[str, str, str]:
    """(owner, group, VO) a sandbox uploaded by this caller is registered under (hosts: their host name)."""
    owner = credDict.get("username") or credDict.get("hostname") or ""
    group = credDict.get("group") or ""
    if not owner or not group:
        raise AuthorizationError(f"{credDict.get('DN')} has no user or host name and group: it cannot own sandboxes")
    return owner, group, credDict.get("VO") or ""


def _ownsOrShares(credDict: Mapping[str, Any], sandbox: Mapping[str, Any]) -> bool:
    owner, group, _ = ownerOf(credDict)
    if sandbox["OwnerGroup"] != group:
        return False
    return sandbox["Owner"] == owner or Properties.JobSharing in (credDict.get("properties") or [])


def _who(credDict: Mapping[str, Any]) -> str:
    return f"{credDict.get('username') or credDict.get('hostname') or credDict.get('DN')} (group {credDict.get('group')})"


def sandboxKey(owner: str, group: str, checksum: str, extension: str) -> str:
    """Where an upload goes: by owner group, owner and content, so identical uploads of one owner are one file."""
    def safe(name: str) -> str:
        name = _UNSAFE.sub("_", name)
        return name if name.strip(".") else "_"

    return checkKey(f"/SandBox/{safe(group)}/{safe(owner)}/{checksum[:2]}/{checksum}.{extension}")


# -- upload ------------------------------------------------------------------------------------------------
def sandboxExtension(fileName: str) -> str:
    """'tar.bz2' for 'sandbox.tar.bz2'; InvalidArgument when the name is not a tar archive."""
    match = _EXTENSION.search(fileName.lower())
    if not match:
        raise InvalidArgument(f"sandbox file name {fileName!r} must end in .tar, .tar.bz2, .tar.gz, .tar.xz or .tar.zst")
    return match.group(1)


def storeSandbox(sandboxDB: SandboxMetadataDB, storage: SandboxStorage, seName: str, maxBytes: int,
                 credDict: Mapping[str, Any], uploadPath: str | Path, fileName: str, checksum: str,
                 size: int) -> str:
    """Check an uploaded file against the announced size and SHA-256, store and register it; its reference.

    Nothing is stored when a check fails. The file appears under its key and in the metadata
    in one step; an identical upload by the same owner finds the same file.
    """
    if size < 0:
        raise InvalidArgument(f"sandbox size {size} is negative")
    if size > maxBytes:
        raise SandboxTooLarge(f"the sandbox {fileName} is {size} bytes, over the limit of {maxBytes} bytes "
                              f"({maxBytes / MIB:g} MiB): put large files on a grid storage element instead")
    received = os.path.getsize(uploadPath)
    if received != size:
        log.warning("upload %s by %s refused: %d bytes received, %d announced", fileName, _who(credDict), received,
                    size)
        raise SandboxSizeMismatch(f"the sandbox {fileName} arrived with {received} bytes where the client announced "
                               f"{size}: nothing was stored")
    checksum = checksum.strip().lower()
    if not _CHECKSUM.match(checksum):
        raise InvalidArgument(f"sandbox checksum {checksum!r} is not a SHA-256 hex digest")
    extension = sandboxExtension(fileName)
    actual = fileChecksum(uploadPath)
    if actual != checksum:
        log.warning("upload %s by %s refused: SHA-256 %s received, %s announced", fileName, _who(credDict), actual,
                    checksum)
        raise SandboxChecksumMismatch(f"the sandbox {fileName} arrived with SHA-256 {actual} where the client announced "
                               f"{checksum}: it was damaged on the way, nothing was stored")
    owner, group, vo = ownerOf(credDict)
    key = sandboxKey(owner, group, checksum, extension)
    staged = storage.stage(Path(uploadPath), key)
    try:
        sbID, new = sandboxDB.registerAndGetSandbox(owner, group, vo, seName, key, size, checksum,
                                                    store=lambda: storage.commit(staged))
    finally:
        storage.discard(staged)
    reference = makeSandboxReference(seName, key)
    log.info("sandbox %s (SBId %d, %d bytes) %s by %s@%s", reference, sbID, size,
             "stored" if new else "uploaded again", owner, group)
    return reference


# -- reading -------------------------------------------------------------------------------------------------
def _jobIDsOf(entities: Iterable[tuple[str, str]]) -> list[int]:
    return sorted({int(match.group(1)) for entity, _ in entities if (match := _JOB_ENTITY.match(entity))})


def getReadableSandbox(sandboxDB: SandboxMetadataDB, jobDB: JobDB, credDict: Mapping[str, Any],
                       reference: str) -> dict[str, Any]:
    """The metadata of a sandbox the caller may read (NotFound, AuthorizationError)."""
    seName, sePFN = parseSandboxReference(reference)
    sandbox = sandboxDB.getSandbox(seName, sePFN)
    if Properties.JobAdministrator in (credDict.get("properties") or []) or _ownsOrShares(credDict, sandbox):
        return sandbox
    jobIDs = _jobIDsOf(sandboxDB.getEntitiesOfSandbox(sandbox["SBId"]))
    owners = jobDB.getJobsAttributes(jobIDs, ["Owner", "OwnerGroup"]) if jobIDs else {}
    allowed, _ = JobPolicy(credDict).split(RIGHT_GET_SANDBOX, owners)
    if not allowed:
        raise AuthorizationError(f"{_who(credDict)} may not read sandbox {reference}: it is not theirs and not "
                                 f"assigned to a job on which they have the {RIGHT_GET_SANDBOX} right")
    return sandbox


def sandboxInfo(sandbox: Mapping[str, Any]) -> dict[str, Any]:
    """What a client needs to check a download: {Size, Checksum, ChecksumType, ...}."""
    return {"Size": int(sandbox["Bytes"]), "Checksum": sandbox["Checksum"], "ChecksumType": CHECKSUM_TYPE,
            "Owner": sandbox["Owner"], "OwnerGroup": sandbox["OwnerGroup"],
            "RegistrationTime": sandbox["RegistrationTime"], "LastAccessTime": sandbox["LastAccessTime"],
            "Assigned": bool(sandbox["Assigned"])}


def openSandbox(sandboxDB: SandboxMetadataDB, jobDB: JobDB, storage: SandboxStorage, seName: str,
                credDict: Mapping[str, Any], reference: str) -> BinaryIO:
    """The file of a sandbox the caller may read, its access time recorded."""
    sandbox = getReadableSandbox(sandboxDB, jobDB, credDict, reference)
    if sandbox["SEName"] != seName:
        raise NotFound(f"sandbox {reference} is kept on {sandbox['SEName']}, not in this store ({seName})")
    # noted before opening: a cleaner either removed it first (NotFound here) or now sees it as used
    sandboxDB.accessedSandboxById(sandbox["SBId"])
    return storage.open(sandbox["SEPFN"])


# -- assignment ---------------------------------------------------------------------------------------------------
def checkJobRight(jobDB: JobDB, credDict: Mapping[str, Any], right: str, jobID: int) -> None:
    """Raise NotFound for an unknown job, AuthorizationError when the caller lacks ``right`` on it."""
    _checkJobs(jobDB, JobPolicy(credDict), right, [jobID])


def _checkJobs(jobDB: JobDB, policy: JobPolicy, right: str, jobIDs: Sequence[int]) -> None:
    owners = jobDB.getJobsAttributes(jobIDs, ["Owner", "OwnerGroup"])
    unknown = [jobID for jobID in jobIDs if jobID not in owners]
    if unknown:
        raise NotFound(f"Job {', '.join(map(str, unknown))} not found")
    _, refused = policy.split(right, owners)
    if refused:
        shown = ", ".join(map(str, refused[:20])) + (" ..." if len(refused) > 20 else "")
        raise AuthorizationError(f"{policy.who} (group {policy.group}) has no {right} right on job {shown}")


def assignSandboxesToJob(sandboxDB: SandboxMetadataDB, jobDB: JobDB, credDict: Mapping[str, Any], jobID: int,
                         references: Sequence[str], sbType: str, jobChecked: bool = False) -> int:
    """Assign registered sandboxes to a job as its 'Input' or 'Output'; how many links are new.

    ``jobChecked``: the caller's PutSandbox right on the job was checked already (checkJobRight)."""
    return assignSandboxesToJobs(sandboxDB, jobDB, credDict, [jobID], references, sbType, jobChecked)


def assignSandboxesToJobs(sandboxDB: SandboxMetadataDB, jobDB: JobDB, credDict: Mapping[str, Any],
                          jobIDs: Sequence[int], references: Sequence[str], sbType: str,
                          jobsChecked: bool = False) -> int:
    """Assign the same sandboxes to several jobs (e.g. the input sandbox of a parametric submission) in one
    transaction; all or nothing. How many links are new. ``jobsChecked``: see assignSandboxesToJob."""
    if sbType not in SANDBOX_TYPES:
        raise InvalidArgument(f"sandbox type {sbType!r} is not one of {', '.join(SANDBOX_TYPES)}")
    ids = sorted({int(jobID) for jobID in jobIDs})
    if not references or not ids:
        return 0
    policy = JobPolicy(credDict)
    if not jobsChecked:
        _checkJobs(jobDB, policy, RIGHT_PUT_SANDBOX, ids)
    locations = [parseSandboxReference(reference) for reference in references]
    known = sandboxDB.getSandboxes(locations)
    missing = [makeSandboxReference(*location) for location in locations if location not in known]
    if missing:
        raise NotFound(f"sandbox(es) not registered: {', '.join(missing)}")
    properties = set(credDict.get("properties") or [])
    if not properties & {Properties.JobAdministrator, Properties.TrustedHost}:
        foreign = [makeSandboxReference(*location) for location, sandbox in known.items()
                   if not _ownsOrShares(credDict, sandbox)]
        if foreign:
            raise AuthorizationError(f"{_who(credDict)} may not assign sandboxes of others: {', '.join(foreign)}")
    links = [(sandbox["SBId"], sbType) for sandbox in known.values()]
    added = sandboxDB.assignSandboxesToEntities({jobEntity(jobID): links for jobID in ids})
    log.info("job(s) %s: %d %s sandbox(es) assigned by %s", ", ".join(map(str, ids[:10])) +
             (" ..." if len(ids) > 10 else ""), len(known), sbType, policy.who)
    return added


def getSandboxesAssignedToEntity(sandboxDB: SandboxMetadataDB, jobDB: JobDB, credDict: Mapping[str, Any],
                                 entityID: str) -> dict[str, list[str]]:
    """{'Input': [references], 'Output': [...]} of an entity (types without sandboxes are left out, as in DIRAC)."""
    match = _JOB_ENTITY.match(entityID)
    properties = set(credDict.get("properties") or [])
    if match:
        jobID = int(match.group(1))
        if Properties.JobAdministrator not in properties:
            _checkJobs(jobDB, JobPolicy(credDict), RIGHT_GET_INFO, [jobID])
    elif not properties & {Properties.JobAdministrator, Properties.TrustedHost}:
        raise AuthorizationError(f"{_who(credDict)} may only ask for the sandboxes of jobs ('Job:<id>'), "
                                 f"not of {entityID!r}")
    answer: dict[str, list[str]] = {}
    for sandbox in sandboxDB.getSandboxesAssignedToEntity(entityID):
        answer.setdefault(sandbox["Type"], []).append(makeSandboxReference(sandbox["SEName"], sandbox["SEPFN"]))
    return answer


def unassignJobs(sandboxDB: SandboxMetadataDB, jobIDs: Iterable[int]) -> int:
    """Forget which sandboxes the jobs used (job cleaning); how many links were removed."""
    entities = [jobEntity(jobID) for jobID in sorted(set(jobIDs))]
    removed = sandboxDB.unassignEntities(entities)
    if entities:
        log.info("unassigned %d sandbox link(s) of %d job(s)", removed, len(entities))
    return removed


# -- cleaning ------------------------------------------------------------------------------------------------
@dataclass
class SandboxCleaningReport:
    """What one cleaning pass did (references of the sandboxes concerned)."""

    removed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    staleStagedFiles: int = 0


def cleanOrphanSandboxes(olderThanDays: float = DEFAULT_UNUSED_DAYS, *, sandboxDB: SandboxMetadataDB | None = None,
                         storage: SandboxStorage | None = None, seName: str | None = None,
                         healLost: bool = True, batchSize: int = 1000) -> SandboxCleaningReport:
    """Remove sandboxes no job uses and nobody read for ``olderThanDays`` (file first, then metadata), forget
    sandboxes whose file vanished (``healLost``) and drop staged copies a dead server left behind.

    Safe to run as several copies and while the service works: each sandbox is decided while its
    row is held. Without arguments, the database, back end and SE come from the CS. Raises when
    the storage is unreachable (nothing is touched then); one sandbox failing is logged and counted.
    """
    if olderThanDays < 0:
        raise InvalidArgument(f"olderThanDays must not be negative, got {olderThanDays}")
    if storage is None or seName is None:
        settings = SandboxStoreSettings.fromCS()
        storage = storage or settings.makeStorage()
        seName = seName or settings.localSE
    sandboxDB = sandboxDB or SandboxMetadataDB()
    storage.checkAvailable()
    report = SandboxCleaningReport()
    cutoff = utcnow() - timedelta(days=olderThanDays)

    def remove(_se: str, sePFN: str) -> None:
        storage.remove(sePFN)

    after = 0
    while batch := sandboxDB.getUnusedSandboxes(cutoff, seName=seName, limit=batchSize, afterSBId=after):
        for sandbox in batch:
            reference = makeSandboxReference(sandbox["SEName"], sandbox["SEPFN"])
            try:
                if sandboxDB.deleteUnusedSandbox(sandbox["SBId"], cutoff, remove):
                    report.removed.append(reference)
            except Exception:
                log.exception("cannot remove unused sandbox %s (SBId %d)", reference, sandbox["SBId"])
                report.failed.append(reference)
        after = batch[-1]["SBId"]

    if healLost:
        def isLost(_se: str, sePFN: str) -> bool:
            return not storage.exists(sePFN)

        after = 0
        while batch := sandboxDB.getSandboxLocations(seName=seName, limit=batchSize, afterSBId=after):
            for sandbox in batch:
                reference = makeSandboxReference(sandbox["SEName"], sandbox["SEPFN"])
                try:
                    if isLost(sandbox["SEName"], sandbox["SEPFN"]) and \
                            sandboxDB.deleteLostSandbox(sandbox["SBId"], isLost):
                        log.warning("sandbox %s (SBId %d) lost its file: its metadata is removed", reference,
                                    sandbox["SBId"])
                        report.lost.append(reference)
                except Exception:
                    log.exception("cannot check sandbox %s (SBId %d)", reference, sandbox["SBId"])
                    report.failed.append(reference)
            after = batch[-1]["SBId"]

    report.staleStagedFiles = storage.removeStaleStagedFiles(STALE_STAGED_SECONDS)
    log.info("sandbox cleaning (unused for %g days): %d removed, %d lost files forgotten, %d failed, "
             "%d stale staged files dropped", olderThanDays, len(report.removed), len(report.lost),
             len(report.failed), report.staleStagedFiles)
    return report
