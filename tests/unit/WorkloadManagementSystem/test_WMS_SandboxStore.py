"""The sandbox store rules on SQLite and MariaDB: checked uploads, who may read and assign, cleaning."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import AuthorizationError, ConfigurationError, InvalidArgument, NotFound
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.Logic import SandboxStore as logic
from dirac.WorkloadManagementSystem.Logic.SandboxStorage import MARKER, DiskSandboxStorage

SE = "SandboxSE"
MAX = 1 << 20
BOB = {"username": "bob", "group": "dirac_user", "VO": "dirac", "properties": ["NormalUser"]}
ALICE = {"username": "alice", "group": "dirac_user", "VO": "dirac", "properties": ["NormalUser"]}
BOB_PROD = {"username": "bob", "group": "dirac_prod", "VO": "dirac", "properties": ["NormalUser"]}
SHARER = {"username": "carol", "group": "dirac_user", "VO": "dirac", "properties": ["NormalUser", "JobSharing"]}
PILOT = {"username": "admin", "group": "dirac_pilot", "VO": "dirac", "properties": ["GenericPilot"]}
ADMIN = {"username": "admin", "group": "dirac_admin", "VO": "dirac", "properties": ["JobAdministrator"]}
HOST = {"username": None, "hostname": "server.example.org", "group": "hosts", "VO": "",
        "properties": ["TrustedHost"]}
JDL = '[Executable = "/bin/true"]'


@dataclass
class Store:
    sandboxDB: SandboxMetadataDB
    jobDB: JobDB
    storage: DiskSandboxStorage
    tmp: Path

    def upload(self, credDict: dict, content: bytes = b"input files", name: str = "sandbox.tar.bz2",
               checksum: str | None = None, size: int | None = None, maxBytes: int = MAX) -> str:
        path = self.tmp / f"upload-{time.monotonic_ns()}"
        path.write_bytes(content)
        return logic.storeSandbox(self.sandboxDB, self.storage, SE, maxBytes, credDict, path, name,
                                  checksum if checksum is not None else hashlib.sha256(content).hexdigest(),
                                  len(content) if size is None else size)

    def job(self, owner: str = "bob", group: str = "dirac_user") -> int:
        return self.jobDB.insertNewJobIntoDB({"Owner": owner, "OwnerGroup": group, "VO": "dirac"}, JDL)

    def read(self, credDict: dict, reference: str) -> bytes:
        with logic.openSandbox(self.sandboxDB, self.jobDB, self.storage, SE, credDict, reference) as data:
            return data.read()

    def assign(self, credDict: dict, jobID: int, references: list[str], sbType: str = "Input") -> int:
        return logic.assignSandboxesToJob(self.sandboxDB, self.jobDB, credDict, jobID, references, sbType)

    def assigned(self, credDict: dict, jobID: int) -> dict[str, list[str]]:
        return logic.getSandboxesAssignedToEntity(self.sandboxDB, self.jobDB, credDict, f"Job:{jobID}")

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.storage.basePath)) for p in self.storage.basePath.rglob("*")
                      if p.is_file() and p.name != MARKER)

    def age(self, reference: str, days: float) -> None:
        """Pretend the sandbox was last read ``days`` ago."""
        sb = self.sandboxDB.sandboxes
        with self.sandboxDB.transaction() as conn:
            conn.execute(update(sb).where(sb.c.SEPFN == logic.parseSandboxReference(reference)[1])
                         .values(LastAccessTime=utcnow() - timedelta(days=days)))

    def clean(self, days: float = 15, **kwargs) -> logic.SandboxCleaningReport:
        return logic.cleanOrphanSandboxes(days, sandboxDB=self.sandboxDB, storage=self.storage, seName=SE, **kwargs)


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Store:
    return Store(SandboxMetadataDB(db_url), JobDB(db_url), DiskSandboxStorage(tmp_path / "store", create=True),
                 tmp_path)


# -- references and layout ---------------------------------------------------------------------------

def test_parseSandboxReference_splitsSEAndPathAndRefusesOtherStrings() -> None:
    assert logic.parseSandboxReference("SB:SandboxSE|/SandBox/a|b.tar") == ("SandboxSE", "/SandBox/a|b.tar")
    for bad in ("LFN:/dirac/file", "SB:SandboxSE", "SB:|/x", "SB:SE|"):
        with pytest.raises(InvalidArgument, match="not a sandbox reference"):
            logic.parseSandboxReference(bad)


def test_sandboxKey_isByGroupOwnerAndContentWithUnsafeCharactersReplaced() -> None:
    checksum = "ab" * 32
    assert logic.sandboxKey("bob", "dirac_user", checksum, "tar.bz2") == \
        f"/SandBox/dirac_user/bob/ab/{checksum}.tar.bz2"
    assert logic.sandboxKey("..", "a/b c", checksum, "tar") == f"/SandBox/a_b_c/_/ab/{checksum}.tar"


# -- upload ------------------------------------------------------------------------------------------------

def test_storeSandbox_keepsTheFileAndRegistersTheCallerAsOwner(store) -> None:
    reference = store.upload(BOB, b"input files")
    checksum = hashlib.sha256(b"input files").hexdigest()
    assert reference == f"SB:{SE}|/SandBox/dirac_user/bob/{checksum[:2]}/{checksum}.tar.bz2"
    assert store.read(BOB, reference) == b"input files"
    sandbox = store.sandboxDB.getSandbox(SE, logic.parseSandboxReference(reference)[1])
    assert (sandbox["Owner"], sandbox["OwnerGroup"], sandbox["VO"]) == ("bob", "dirac_user", "dirac")
    assert (sandbox["Bytes"], sandbox["Checksum"]) == (11, checksum)
    assert store.files() == [f"SandBox/dirac_user/bob/{checksum[:2]}/{checksum}.tar.bz2"]
    assert os.listdir(store.storage.stagingDir) == []


def test_storeSandbox_identicalUploadsOfOneOwnerAreOneFileOfOthersSeparate(store) -> None:
    first, again = store.upload(BOB, b"same"), store.upload(BOB, b"same")
    other, otherGroup = store.upload(ALICE, b"same"), store.upload(BOB_PROD, b"same")
    assert first == again
    assert len({first, other, otherGroup}) == 3
    assert len(store.files()) == 3
    assert len(store.sandboxDB.getSandboxLocations()) == 3


def test_storeSandbox_hostsOwnTheirUploadsByHostName(store) -> None:
    reference = store.upload(HOST, b"from a service")
    assert "/SandBox/hosts/server.example.org/" in reference
    assert store.sandboxDB.getSandboxOwner(SE, logic.parseSandboxReference(reference)[1])["Owner"] == \
        "server.example.org"


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"checksum": "0" * 64}, logic.SandboxChecksumMismatch, "damaged on the way, nothing was stored"),
    ({"size": 5}, logic.SandboxSizeMismatch, "arrived with 11 bytes where the client announced 5"),
    ({"maxBytes": 10}, logic.SandboxTooLarge, "over the limit of 10 bytes"),
    ({"size": 10 << 20}, logic.SandboxTooLarge, "over the limit"),
    ({"checksum": "not-a-digest"}, InvalidArgument, "not a SHA-256 hex digest"),
    ({"name": "sandbox.zip"}, InvalidArgument, "must end in .tar"),
])
def test_storeSandbox_refusedUploadsStoreNothing(store, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        store.upload(BOB, b"input files", **kwargs)
    assert store.files() == []
    assert store.sandboxDB.getSandboxLocations() == []


def test_storeSandbox_refusalsCarryDIRACErrorCodes() -> None:
    assert logic.SandboxChecksumMismatch("x").toSError()["Errno"] == 1603  # DErrno.EBADCKS
    assert logic.SandboxSizeMismatch("x").toSError()["Errno"] == 1601  # DErrno.EFILESIZE


def test_storeSandbox_failingStorageRegistersNothing(store) -> None:
    checksum = hashlib.sha256(b"input files").hexdigest()
    blocker = store.storage.basePath / "SandBox" / "dirac_user" / "bob" / checksum[:2]
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the directory should be")
    with pytest.raises(OSError):
        store.upload(BOB, b"input files")
    assert store.sandboxDB.getSandboxLocations() == []
    assert os.listdir(store.storage.stagingDir) == []


# -- reading -----------------------------------------------------------------------------------------------

def test_openSandbox_ownerAndJobAdministratorReadOthersAreRefused(store) -> None:
    reference = store.upload(BOB, b"bob's files")
    assert store.read(BOB, reference) == b"bob's files"
    assert store.read(ADMIN, reference) == b"bob's files"
    for stranger in (ALICE, BOB_PROD, PILOT):
        with pytest.raises(AuthorizationError, match="may not read sandbox"):
            store.read(stranger, reference)


def test_openSandbox_jobSharingMembersReadTheirGroupsSandboxes(store) -> None:
    assert store.read(SHARER, store.upload(BOB, b"shared")) == b"shared"


def test_openSandbox_pilotReadsTheInputOfAJobItMayRunAndTheOwnerReadsThePilotsOutput(store) -> None:
    jobID = store.job("bob")
    inputSandbox = store.upload(BOB, b"inputs")
    store.assign(BOB, jobID, [inputSandbox], "Input")
    assert store.read(PILOT, inputSandbox) == b"inputs"
    outputSandbox = store.upload(PILOT, b"outputs")
    assert store.assign(PILOT, jobID, [outputSandbox], "Output") == 1
    assert store.read(BOB, outputSandbox) == b"outputs"
    with pytest.raises(AuthorizationError):
        store.read(ALICE, outputSandbox)


def test_openSandbox_recordsTheAccessTime(store) -> None:
    reference = store.upload(BOB)
    store.age(reference, 20)
    store.read(BOB, reference)
    sandbox = store.sandboxDB.getSandbox(SE, logic.parseSandboxReference(reference)[1])
    assert utcnow() - sandbox["LastAccessTime"] < timedelta(minutes=1)


def test_openSandbox_unknownReferenceOrLostFileIsNotFound(store) -> None:
    with pytest.raises(NotFound, match="not registered"):
        store.read(BOB, f"SB:{SE}|/SandBox/dirac_user/bob/00/none.tar.bz2")
    reference = store.upload(BOB)
    store.storage.remove(logic.parseSandboxReference(reference)[1])
    with pytest.raises(NotFound, match="missing"):
        store.read(BOB, reference)


def test_sandboxInfo_givesSizeAndChecksumToCheckADownload(store) -> None:
    reference = store.upload(BOB, b"12345")
    info = logic.sandboxInfo(logic.getReadableSandbox(store.sandboxDB, store.jobDB, BOB, reference))
    assert info["Size"] == 5 and info["Checksum"] == hashlib.sha256(b"12345").hexdigest()
    assert info["ChecksumType"] == "SHA256" and info["Assigned"] is False


# -- assignment ----------------------------------------------------------------------------------------------

def test_assignSandboxesToJob_ownerAssignsAndTheJobListsItsSandboxes(store) -> None:
    jobID = store.job("bob")
    first, second = store.upload(BOB, b"one"), store.upload(BOB, b"two")
    assert store.assign(BOB, jobID, [first, second], "Input") == 2
    assert store.assign(BOB, jobID, [first], "Input") == 0
    assert store.assigned(BOB, jobID) == {"Input": sorted([first, second], key=lambda r: r != first)}
    output = store.upload(PILOT, b"out")
    store.assign(PILOT, jobID, [output], "Output")
    assert store.assigned(BOB, jobID)["Output"] == [output]
    assert store.assigned(PILOT, jobID)["Output"] == [output]


def test_assignSandboxesToJob_needsThePutSandboxRightOnTheJob(store) -> None:
    jobID = store.job("bob")
    with pytest.raises(AuthorizationError, match="no PutSandbox right on job"):
        store.assign(ALICE, jobID, [store.upload(ALICE)])


def test_assignSandboxesToJob_refusesSandboxesOfOthers(store) -> None:
    aliceJob = store.job("alice")
    with pytest.raises(AuthorizationError, match="may not assign sandboxes of others"):
        store.assign(ALICE, aliceJob, [store.upload(BOB, b"bob's")])
    assert store.assigned(ALICE, aliceJob) == {}
    assert store.assign(ADMIN, aliceJob, [store.upload(BOB, b"bob's")]) == 1  # administrators may


def test_assignSandboxesToJob_unknownJobSandboxOrTypeIsAClearError(store) -> None:
    jobID = store.job("bob")
    reference = store.upload(BOB)
    with pytest.raises(NotFound, match="Job 4242 not found"):
        store.assign(BOB, 4242, [reference])
    with pytest.raises(NotFound, match="not registered"):
        store.assign(BOB, jobID, [reference, f"SB:{SE}|/SandBox/none.tar.bz2"])
    with pytest.raises(InvalidArgument, match="sandbox type"):
        store.assign(BOB, jobID, [reference], "Sideways")
    assert store.assigned(BOB, jobID) == {}


def test_assignSandboxesToJobs_givesAParametricSubmissionItsInputInOneStepOrNotAtAll(store) -> None:
    jobs = [store.job("bob") for _ in range(3)]
    reference = store.upload(BOB)
    assert logic.assignSandboxesToJobs(store.sandboxDB, store.jobDB, BOB, jobs, [reference], "Input") == 3
    assert all(store.assigned(BOB, jobID) == {"Input": [reference]} for jobID in jobs)
    alicesJob = store.job("alice")
    other = store.upload(BOB, b"other")
    with pytest.raises(AuthorizationError, match=f"no PutSandbox right on job {alicesJob}"):
        logic.assignSandboxesToJobs(store.sandboxDB, store.jobDB, BOB, [*jobs, alicesJob], [other], "Input")
    assert store.assigned(BOB, jobs[0]) == {"Input": [reference]}


def test_getSandboxesAssignedToEntity_needsGetInfoOnTheJob(store) -> None:
    jobID = store.job("bob")
    store.assign(BOB, jobID, [store.upload(BOB)])
    with pytest.raises(AuthorizationError, match="no GetInfo right"):
        store.assigned(ALICE, jobID)
    with pytest.raises(NotFound, match="Job 4242 not found"):
        store.assigned(BOB, 4242)
    assert store.assigned(ADMIN, 4242) == {}
    with pytest.raises(AuthorizationError, match="only ask for the sandboxes of jobs"):
        logic.getSandboxesAssignedToEntity(store.sandboxDB, store.jobDB, BOB, "Transformation:1")
    assert logic.getSandboxesAssignedToEntity(store.sandboxDB, store.jobDB, HOST, "Transformation:1") == {}


def test_unassignJobs_leavesTheSandboxesUnassigned(store) -> None:
    jobs = [store.job("bob"), store.job("bob")]
    reference = store.upload(BOB)
    for jobID in jobs:
        store.assign(BOB, jobID, [reference])
    assert logic.unassignJobs(store.sandboxDB, jobs) == 2
    assert store.assigned(BOB, jobs[0]) == {}
    assert store.sandboxDB.getSandbox(SE, logic.parseSandboxReference(reference)[1])["Assigned"] is False


# -- cleaning ------------------------------------------------------------------------------------------------

def test_cleanOrphanSandboxes_removesOldUnassignedFileAndMetadataOnly(store) -> None:
    old, recent, assigned = store.upload(BOB, b"old"), store.upload(BOB, b"recent"), store.upload(BOB, b"job's")
    store.assign(BOB, store.job("bob"), [assigned])
    store.age(old, 20)
    store.age(assigned, 20)
    report = store.clean(15)
    assert report.removed == [old] and report.lost == [] and report.failed == []
    remaining = {ref: logic.parseSandboxReference(ref)[1] for ref in (recent, assigned)}
    assert store.files() == sorted(path.lstrip("/") for path in remaining.values())
    assert sorted(s["SEPFN"] for s in store.sandboxDB.getSandboxLocations()) == sorted(remaining.values())


def test_cleanOrphanSandboxes_removesSandboxesOfCleanedJobs(store) -> None:
    jobID = store.job("bob")
    reference = store.upload(BOB)
    store.assign(BOB, jobID, [reference])
    store.age(reference, 20)
    assert store.clean(15).removed == []
    logic.unassignJobs(store.sandboxDB, [jobID])
    assert store.clean(15).removed == [reference]
    assert store.files() == []


def test_cleanOrphanSandboxes_forgetsSandboxesWhoseFileVanished(store) -> None:
    lost, kept = store.upload(BOB, b"lost"), store.upload(BOB, b"kept")
    store.assign(BOB, store.job("bob"), [lost, kept])
    store.storage.remove(logic.parseSandboxReference(lost)[1])
    report = store.clean(15)
    assert report.lost == [lost] and report.removed == []
    assert [s["SEPFN"] for s in store.sandboxDB.getSandboxLocations()] == [logic.parseSandboxReference(kept)[1]]
    assert store.clean(15, healLost=False).lost == []


def test_cleanOrphanSandboxes_worksInBatchesAndDropsStaleStagedFiles(store) -> None:
    references = [store.upload(BOB, bytes([i])) for i in range(5)]
    for reference in references:
        store.age(reference, 30)
    staged = store.storage.stage(store.tmp / next(store.tmp.glob("upload-*")).name, "/SandBox/x/y/zz/stale.tar")
    past = time.time() - 3 * 86400
    os.utime(staged.location, (past, past))
    report = store.clean(15, batchSize=2)
    assert sorted(report.removed) == sorted(references)
    assert report.staleStagedFiles == 1 and store.files() == []


def test_cleanOrphanSandboxes_touchesNothingWhenTheStorageIsNotMounted(store) -> None:
    reference = store.upload(BOB)
    store.age(reference, 30)
    (store.storage.basePath / MARKER).unlink()
    with pytest.raises(ConfigurationError, match="not mounted"):
        store.clean(15)
    assert len(store.sandboxDB.getSandboxLocations()) == 1 and len(store.files()) == 1


def test_cleanOrphanSandboxes_aSecondCopyRunningAfterwardsFindsNothingLeft(store) -> None:
    reference = store.upload(BOB)
    store.age(reference, 30)
    assert store.clean(15).removed == [reference]
    assert store.clean(15).removed == []


def test_cleanOrphanSandboxes_refusesANegativeAge(store) -> None:
    with pytest.raises(InvalidArgument, match="must not be negative"):
        store.clean(-1)
