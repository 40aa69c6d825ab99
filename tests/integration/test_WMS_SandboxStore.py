"""WorkloadManagement/SandboxStore over real HTTPS: uploads checked, downloads verified, who may read and assign.

Proxies: ``bob`` and ``user`` (admin) in dirac_user, ``admin`` in dirac_admin (JobAdministrator)
and ``pilot`` (admin in dirac_pilot: GenericPilot). Jobs are inserted with the submission logic
straight into the grid's own databases; sandbox files are looked at in the grid's BasePath.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import NotFound
from dirac.FrameworkSystem.Logic.Instance import ONE_BOX_SE
from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient, fileChecksum
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.Logic.JobSubmission import submitJob
from dirac.WorkloadManagementSystem.Logic.SandboxStore import parseSandboxReference

from .conftest import environmentOf, runningGrid

SECTION = "/Systems/WorkloadManagement/Services/SandboxStore"
SE = "SandboxSE"
BOB, USER, ADMIN = "bob", "user", "admin"
PILOT = "admin-as-pilot"  # a pilot proxy of its own: other modules make a "pilot" of another DN


@pytest.fixture
def sb(grid):  # noqa: ANN001, ANN201
    """The grid, with a pilot proxy."""
    if PILOT not in grid.proxies:
        grid.makeProxy(PILOT, "/O=DIRAC-Seed/OU=dirac/CN=admin", "dirac_pilot")
    return grid


def client(grid, proxy: str) -> SandboxStoreClient:  # noqa: ANN001
    return SandboxStoreClient(proxyLocation=str(grid.proxies[proxy]), useCertificates=False)


def rpc(grid, proxy: str):  # noqa: ANN001, ANN201
    return grid.client("WorkloadManagement/SandboxStore", proxy)


def ok(result: dict):  # noqa: ANN201
    assert result["OK"], result.get("Message")
    return result["Value"]


def files(tmp_path: Path, **contents: str) -> list[Path]:
    paths = []
    for name, text in contents.items():
        path = tmp_path / name
        path.write_text(text)
        paths.append(path)
    return paths


def job(owner: str = "bob", jdl: str = '[Executable = "/bin/true"]') -> int:
    return submitJob(JobDB(), JobLoggingDB(), jdl, owner, "dirac_user", "dirac")[0]


def storedFile(grid, reference: str) -> Path:  # noqa: ANN001
    return grid.instance.root / "sandboxes" / parseSandboxReference(reference)[1].lstrip("/")


def tarball(tmp_path: Path, content: bytes = b"payload") -> Path:
    (tmp_path / "payload.txt").write_bytes(content)
    archive = tmp_path / "sandbox.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(tmp_path / "payload.txt", arcname="payload.txt")
    return archive


def assertNothingStoredFor(grid, checksum: str) -> None:  # noqa: ANN001
    assert not list((grid.instance.root / "sandboxes").rglob(f"{checksum}*"))
    assert not [s for s in SandboxMetadataDB().getSandboxLocations() if checksum in s["SEPFN"]]
    assert os.listdir(grid.instance.root / "sandboxes" / ".staging") == []


# -- round trip ---------------------------------------------------------------------------------------------

def test_upload_then_download_round_trip_is_checked_against_the_stored_checksum(sb, tmp_path) -> None:
    reference = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"a.txt": "alpha", "b.txt": "beta"})))
    assert reference.startswith(f"SB:{SE}|/SandBox/dirac_user/bob/")
    stored = storedFile(sb, reference)
    info = ok(rpc(sb, BOB).getSandboxInfo(reference))
    assert info["Size"] == stored.stat().st_size and info["Checksum"] == fileChecksum(stored)
    assert info["ChecksumType"] == "SHA256" and info["Owner"] == "bob"
    out = tmp_path / "out"
    assert sorted(ok(client(sb, BOB).downloadSandbox(reference, out))) == ["a.txt", "b.txt"]
    assert (out / "a.txt").read_text() == "alpha" and (out / "b.txt").read_text() == "beta"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no partial download left


def test_download_without_unpacking_keeps_the_archive(sb, tmp_path) -> None:
    reference = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"kept.txt": "kept"})))
    kept = ok(client(sb, BOB).downloadSandbox(reference, tmp_path / "out", unpack=False))
    assert len(kept) == 1 and fileChecksum(kept[0]) == fileChecksum(storedFile(sb, reference))


def test_identical_uploads_of_one_owner_are_one_file(sb, tmp_path) -> None:
    inputs = files(tmp_path, **{"same.txt": "same content"})
    archive = tarball(tmp_path, b"identical bytes")
    args = (archive.name, fileChecksum(archive), archive.stat().st_size)
    first, second = ok(rpc(sb, BOB).sendFile(archive, *args)), ok(rpc(sb, BOB).sendFile(archive, *args))
    assert first == second and storedFile(sb, first).is_file()
    assert ok(rpc(sb, USER).sendFile(archive, *args)) != first  # another owner: its own copy
    assert ok(client(sb, BOB).uploadFilesAsSandbox(inputs)).startswith(f"SB:{SE}|")


def test_download_of_a_corrupted_store_file_is_refused_and_removed(sb, tmp_path) -> None:
    reference = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"c.txt": "to be damaged"})))
    stored = storedFile(sb, reference)
    stored.write_bytes(bytes(b ^ 0xFF for b in stored.read_bytes()))  # same size, other bytes
    out = tmp_path / "out"
    result = client(sb, BOB).downloadSandbox(reference, out)
    assert not result["OK"] and "SHA-256" in result["Message"] and "was removed" in result["Message"]
    assert list(out.iterdir()) == []


# -- refused uploads -------------------------------------------------------------------------------------------

def test_upload_with_a_wrong_checksum_is_refused_and_nothing_is_stored(sb, tmp_path) -> None:
    archive = tarball(tmp_path, b"checksum test")
    wrong = hashlib.sha256(b"something else").hexdigest()
    result = rpc(sb, BOB).sendFile(archive, archive.name, wrong, archive.stat().st_size)
    assert not result["OK"] and "damaged on the way, nothing was stored" in result["Message"]
    assert result["Errno"] == 1603  # DErrno.EBADCKS
    assertNothingStoredFor(sb, wrong)
    assertNothingStoredFor(sb, fileChecksum(archive))


def test_upload_with_a_wrong_size_is_refused_and_nothing_is_stored(sb, tmp_path) -> None:
    archive = tarball(tmp_path, b"size test")
    result = rpc(sb, BOB).sendFile(archive, archive.name, fileChecksum(archive), archive.stat().st_size + 1)
    assert not result["OK"] and "where the client announced" in result["Message"]
    assert result["Errno"] == 1601  # DErrno.EFILESIZE
    assertNothingStoredFor(sb, fileChecksum(archive))


def test_upload_over_MaxSandboxSizeMiB_is_refused(sb, tmp_path) -> None:
    api = CSAPI()
    ok(api.initialize())
    previous = api.getOption(f"{SECTION}/MaxSandboxSizeMiB", "100")
    api.setOption(f"{SECTION}/MaxSandboxSizeMiB", "1")
    ok(api.commit())
    try:
        big = tmp_path / "big.tar"
        big.write_bytes(os.urandom((1 << 20) + 1))
        result = rpc(sb, BOB).sendFile(big, big.name, fileChecksum(big), big.stat().st_size)
        assert not result["OK"] and "over the limit of 1048576 bytes" in result["Message"]
        assert result["Errno"] == errno.EFBIG
        assertNothingStoredFor(sb, fileChecksum(big))
        small = tarball(tmp_path, b"small enough")
        ok(rpc(sb, BOB).sendFile(small, small.name, fileChecksum(small), small.stat().st_size))
    finally:
        api.setOption(f"{SECTION}/MaxSandboxSizeMiB", previous)
        ok(api.commit())


def test_upload_of_a_missing_local_file_is_a_clear_client_error(sb, tmp_path) -> None:
    result = client(sb, BOB).uploadFilesAsSandbox([tmp_path / "missing.txt"])
    assert not result["OK"] and result["Errno"] == errno.ENOENT
    assert "sandbox files not found" in result["Message"] and "missing.txt" in result["Message"]


def test_upload_needs_a_tar_archive_name(sb, tmp_path) -> None:
    data = tmp_path / "data.zip"
    data.write_bytes(b"zip?")
    result = rpc(sb, BOB).sendFile(data, data.name, fileChecksum(data), 4)
    assert not result["OK"] and "must end in .tar" in result["Message"]


# -- who may read ------------------------------------------------------------------------------------------------

def test_bob_cannot_download_admins_sandbox_but_downloads_his_own(sb, tmp_path) -> None:
    admins = ok(client(sb, USER).uploadFilesAsSandbox(files(tmp_path, **{"admin.txt": "admin's"})))
    bobs = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"bob.txt": "bob's"})))
    refused = client(sb, BOB).downloadSandbox(admins, tmp_path / "stolen")
    assert not refused["OK"] and "may not read sandbox" in refused["Message"]
    assert not (tmp_path / "stolen" / "admin.txt").exists()
    raw = rpc(sb, BOB).receiveFile(tmp_path / "raw", admins)  # straight to streamToClient: refused too
    assert not raw["OK"] and "may not read sandbox" in raw["Message"]
    assert ok(client(sb, BOB).downloadSandbox(bobs, tmp_path / "mine")) == ["bob.txt"]
    assert ok(client(sb, ADMIN).downloadSandbox(bobs, tmp_path / "admin")) == ["bob.txt"]  # JobAdministrator


def test_unknown_sandbox_reference_is_not_found(sb, tmp_path) -> None:
    result = rpc(sb, BOB).receiveFile(tmp_path / "none", f"SB:{SE}|/SandBox/dirac_user/bob/00/none.tar.bz2")
    assert not result["OK"] and result["Errno"] == NotFound.errno and "not registered" in result["Message"]
    assert not (tmp_path / "none").exists()
    malformed = rpc(sb, BOB).getSandboxInfo("LFN:/dirac/user/b/bob/file")
    assert not malformed["OK"] and "not a sandbox reference" in malformed["Message"]


def test_download_records_the_access_time(sb, tmp_path) -> None:
    reference = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"t.txt": "time"})))
    db = SandboxMetadataDB()
    sb_ = db.sandboxes
    with db.transaction() as conn:  # as if last read 20 days ago
        conn.execute(update(sb_).where(sb_.c.SEPFN == parseSandboxReference(reference)[1])
                     .values(LastAccessTime=utcnow() - timedelta(days=20)))
    ok(client(sb, BOB).downloadSandbox(reference, tmp_path / "out"))
    assert utcnow() - db.getSandbox(SE, parseSandboxReference(reference)[1])["LastAccessTime"] < timedelta(minutes=1)


# -- jobs, pilots and assignment -------------------------------------------------------------------------------------

def test_pilot_reads_the_input_of_a_job_it_runs_and_returns_an_output_the_owner_reads(sb, tmp_path) -> None:
    inputRef = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"input.txt": "job input"})))
    jobID = job("bob", f'[Executable = "/bin/cat"; Arguments = "input.txt"; InputSandbox = {{"{inputRef}"}}]')
    refused = client(sb, PILOT).downloadSandbox(inputRef, tmp_path / "early")
    assert not refused["OK"] and "not assigned to a job" in refused["Message"]  # not the pilot's until assigned
    assert ok(client(sb, BOB).assignSandboxesToJob(jobID, [inputRef], "Input")) == 1
    assert ok(client(sb, PILOT).getSandboxesAssignedToEntity(f"Job:{jobID}")) == {"Input": [inputRef]}
    workDir = tmp_path / "pilot"
    assert ok(client(sb, PILOT).downloadSandboxForJob(jobID, "Input", workDir)) == ["input.txt"]
    assert (workDir / "input.txt").read_text() == "job input"

    (workDir / "std.out").write_text("job output")
    outputRef = ok(client(sb, PILOT).uploadFilesAsSandbox([workDir / "std.out"], assignTo={f"Job:{jobID}": "Output"}))
    assert "/SandBox/dirac_pilot/admin/" in outputRef
    (workDir / "extra.log").write_text("more output")
    extraRef = ok(client(sb, PILOT).uploadFilesAsSandbox([workDir / "extra.log"]))
    assert ok(client(sb, PILOT).assignSandboxesToJob(jobID, [extraRef], "Output")) == 1

    assigned = ok(client(sb, BOB).getSandboxesAssignedToEntity(f"Job:{jobID}"))
    assert assigned == {"Input": [inputRef], "Output": [outputRef, extraRef]}
    mine = tmp_path / "bob"
    assert sorted(ok(client(sb, BOB).downloadSandboxForJob(jobID, "Output", mine))) == ["extra.log", "std.out"]
    assert (mine / "std.out").read_text() == "job output"


def test_others_can_neither_list_nor_fill_the_sandboxes_of_bobs_job(sb, tmp_path) -> None:
    jobID = job("bob")
    listed = client(sb, USER).getSandboxesAssignedToEntity(f"Job:{jobID}")
    assert not listed["OK"] and "no GetInfo right" in listed["Message"]
    usersRef = ok(client(sb, USER).uploadFilesAsSandbox(files(tmp_path, **{"u.txt": "user's"})))
    assigned = client(sb, USER).assignSandboxesToJob(jobID, [usersRef], "Input")
    assert not assigned["OK"] and "no PutSandbox right" in assigned["Message"]
    withUpload = client(sb, USER).uploadFilesAsSandbox(files(tmp_path, **{"v.txt": "refused first"}),
                                                       assignTo={f"Job:{jobID}": "Input"})
    assert not withUpload["OK"] and "no PutSandbox right" in withUpload["Message"]
    bobsRef = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"w.txt": "bob's"})))
    usersJob = job("admin")
    foreign = client(sb, USER).assignSandboxesToJob(usersJob, [bobsRef], "Input")
    assert not foreign["OK"] and "may not assign sandboxes of others" in foreign["Message"]
    assert ok(client(sb, BOB).getSandboxesAssignedToEntity(f"Job:{jobID}")) == {}


def test_assignment_of_unknown_jobs_sandboxes_or_types_is_refused(sb, tmp_path) -> None:
    jobID = job("bob")
    reference = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"x.txt": "x"})))
    unknownJob = client(sb, BOB).assignSandboxesToJob(987654, [reference], "Input")
    assert not unknownJob["OK"] and "Job 987654 not found" in unknownJob["Message"]
    unknownRef = client(sb, BOB).assignSandboxesToJob(jobID, [f"SB:{SE}|/SandBox/none.tar"], "Input")
    assert not unknownRef["OK"] and "not registered" in unknownRef["Message"]
    badType = rpc(sb, BOB).assignSandboxesToJob(jobID, [reference], "Sideways")
    assert not badType["OK"] and "sandbox type" in badType["Message"]
    badArgs = rpc(sb, BOB).assignSandboxesToJob(str(jobID), [reference], "Input")
    assert not badArgs["OK"] and "jobID" in badArgs["Message"]


def test_unassignJobs_is_for_job_administrators_and_frees_the_sandboxes(sb, tmp_path) -> None:
    jobID = job("bob")
    reference = ok(client(sb, BOB).uploadFilesAsSandbox(files(tmp_path, **{"y.txt": "y"})))
    ok(client(sb, BOB).assignSandboxesToJob(jobID, [reference], "Input"))
    refused = client(sb, BOB).unassignJobs([jobID])
    assert not refused["OK"] and "JobAdministrator" in refused["Message"]
    assert ok(client(sb, ADMIN).unassignJobs([jobID])) == 1
    assert ok(client(sb, BOB).getSandboxesAssignedToEntity(f"Job:{jobID}")) == {}
    assert ok(rpc(sb, BOB).getSandboxInfo(reference))["Assigned"] is False


# -- on a Storage Element ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seGrid(tmp_path_factory):  # noqa: ANN001, ANN201
    """A grid whose SandboxStore keeps sandboxes on OneBox-SE, the instance's StorageElement service."""
    options = {f"{SECTION}/Backend": "StorageElement", f"{SECTION}/LocalSE": ONE_BOX_SE}
    with runningGrid(tmp_path_factory.mktemp("segrid"), options=options) as started:
        yield started


def test_sandboxes_can_live_on_a_storage_element_served_over_https(seGrid, tmp_path) -> None:
    with environmentOf(seGrid.instance):
        reference = ok(client(seGrid, "user").uploadFilesAsSandbox(files(tmp_path, **{"se.txt": "on the SE"})))
        assert reference.startswith(f"SB:{ONE_BOX_SE}|/SandBox/dirac_user/admin/")
        onSE = seGrid.instance.root / "storage" / "Disk" / parseSandboxReference(reference)[1].lstrip("/")
        assert ok(rpc(seGrid, "user").getSandboxInfo(reference))["Checksum"] == fileChecksum(onSE)
        assert not (seGrid.instance.root / "sandboxes").exists() or not list(
            (seGrid.instance.root / "sandboxes").rglob("*.tar.bz2"))
        out = tmp_path / "out"
        ok(client(seGrid, "user").downloadSandbox(reference, out))
        assert (out / "se.txt").read_text() == "on the SE"
