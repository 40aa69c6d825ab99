"""SandboxMetadataDB on SQLite and MariaDB: registration, assignment and the held-row cleaning steps."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from dirac.Core.Base.DB import utcnow
from dirac.Core.Utilities.Exceptions import AuthorizationError, NotFound
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB

SE = "SandboxSE"
SUM = "ab" * 32


@pytest.fixture
def sbDB(db_url: str) -> SandboxMetadataDB:
    return SandboxMetadataDB(db_url)


def register(db: SandboxMetadataDB, pfn: str, owner: str = "alice", **kwargs) -> int:
    return db.registerAndGetSandbox(owner, "dirac_user", "dirac", SE, pfn, 10, SUM, **kwargs)[0]


def test_registerAndGetSandbox_keepsSizeChecksumAndOwner(sbDB) -> None:
    sbID, new = sbDB.registerAndGetSandbox("alice", "dirac_user", "dirac", SE, "/sb/a.tar.bz2", 123, SUM)
    assert new
    sandbox = sbDB.getSandbox(SE, "/sb/a.tar.bz2")
    assert sandbox["SBId"] == sbID and sandbox["Bytes"] == 123 and sandbox["Checksum"] == SUM
    assert (sandbox["Owner"], sandbox["OwnerGroup"], sandbox["VO"]) == ("alice", "dirac_user", "dirac")
    assert sandbox["Assigned"] is False
    assert sandbox["RegistrationTime"] == sandbox["LastAccessTime"]


def test_registerAndGetSandbox_againIsTheSameRowWithANewAccessTime(sbDB) -> None:
    sbID = register(sbDB, "/sb/a.tar.bz2")
    first = sbDB.getSandbox(SE, "/sb/a.tar.bz2")["LastAccessTime"]
    assert sbDB.registerAndGetSandbox("alice", "dirac_user", "dirac", SE, "/sb/a.tar.bz2", 10, SUM) == (sbID, False)
    again = sbDB.getSandbox(SE, "/sb/a.tar.bz2")
    assert again["LastAccessTime"] > first and again["RegistrationTime"] == first


def test_registerAndGetSandbox_runsStoreInsideAndRegistersNothingWhenItFails(sbDB) -> None:
    calls = []
    register(sbDB, "/sb/ok.tar.bz2", store=lambda: calls.append("stored"))
    assert calls == ["stored"]

    def failingStore() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        register(sbDB, "/sb/failed.tar.bz2", store=failingStore)
    with pytest.raises(NotFound):
        sbDB.getSandbox(SE, "/sb/failed.tar.bz2")


def test_registerAndGetSandbox_sameLocationOfAnotherOwnerIsRefused(sbDB) -> None:
    register(sbDB, "/sb/a.tar.bz2", owner="alice")
    with pytest.raises(AuthorizationError, match="belongs to another owner"):
        register(sbDB, "/sb/a.tar.bz2", owner="bob")
    assert sbDB.getSandboxOwner(SE, "/sb/a.tar.bz2")["Owner"] == "alice"


def test_getSandboxes_answersOnlyTheRegisteredLocations(sbDB) -> None:
    register(sbDB, "/sb/a.tar.bz2")
    found = sbDB.getSandboxes([(SE, "/sb/a.tar.bz2"), (SE, "/sb/missing.tar.bz2"), ("OtherSE", "/sb/a.tar.bz2")])
    assert list(found) == [(SE, "/sb/a.tar.bz2")]


def test_accessedSandboxById_unknownSandboxIsNotFound(sbDB) -> None:
    with pytest.raises(NotFound):
        sbDB.accessedSandboxById(4242)


def test_assignSandboxesToEntities_unknownSandboxAssignsNothing(sbDB) -> None:
    sbID = register(sbDB, "/sb/a.tar.bz2")
    with pytest.raises(NotFound, match="4242"):
        sbDB.assignSandboxesToEntities({"Job:1": [(sbID, "Input"), (4242, "Input")]})
    assert sbDB.getSandboxesAssignedToEntity("Job:1") == []
    assert sbDB.assignSandboxesToEntities({"Job:1": [(sbID, "Input")]}) == 1
    assert sbDB.assignSandboxesToEntities({"Job:1": [(sbID, "Input")]}) == 0  # already there
    assert sbDB.getEntitiesOfSandbox(sbID) == [("Job:1", "Input")]


def test_deleteUnusedSandbox_removesFileThenRowOnlyWhenStillUnused(sbDB) -> None:
    old, assigned, recent = (register(sbDB, f"/sb/{name}.tar.bz2") for name in ("old", "assigned", "recent"))
    sbDB.assignSandboxesToEntities({"Job:1": [(assigned, "Output")]})
    cutoff = utcnow() + timedelta(seconds=1)
    sbDB.accessedSandboxById(recent)
    later = sbDB.getSandbox(SE, "/sb/recent.tar.bz2")["LastAccessTime"]
    assert [s["SBId"] for s in sbDB.getUnusedSandboxes(cutoff)] == [old, recent]
    removed = []
    assert sbDB.deleteUnusedSandbox(old, cutoff, lambda se, pfn: removed.append(pfn))
    assert not sbDB.deleteUnusedSandbox(assigned, cutoff, lambda se, pfn: removed.append(pfn))
    assert not sbDB.deleteUnusedSandbox(recent, later, lambda se, pfn: removed.append(pfn))
    assert removed == ["/sb/old.tar.bz2"]
    assert [s["SBId"] for s in sbDB.getSandboxLocations()] == [assigned, recent]


def test_deleteUnusedSandbox_keepsTheRowWhenTheFileCannotBeRemoved(sbDB) -> None:
    sbID = register(sbDB, "/sb/a.tar.bz2")

    def failingRemove(se: str, pfn: str) -> None:
        raise PermissionError(pfn)

    with pytest.raises(PermissionError):
        sbDB.deleteUnusedSandbox(sbID, utcnow() + timedelta(days=1), failingRemove)
    assert sbDB.getSandboxId(SE, "/sb/a.tar.bz2") == sbID


def test_deleteLostSandbox_forgetsOnlyWhenTheFileIsLostWithItsAssignments(sbDB) -> None:
    kept, lost = register(sbDB, "/sb/kept.tar.bz2"), register(sbDB, "/sb/lost.tar.bz2")
    sbDB.assignSandboxesToEntities({"Job:7": [(kept, "Input"), (lost, "Input")]})
    assert not sbDB.deleteLostSandbox(kept, lambda se, pfn: False)
    assert sbDB.deleteLostSandbox(lost, lambda se, pfn: pfn == "/sb/lost.tar.bz2")
    assert [s["SEPFN"] for s in sbDB.getSandboxesAssignedToEntity("Job:7")] == ["/sb/kept.tar.bz2"]


def test_unassignEntities_leavesSandboxesOfOtherEntitiesAssigned(sbDB) -> None:
    shared, single = register(sbDB, "/sb/shared.tar.bz2"), register(sbDB, "/sb/single.tar.bz2")
    sbDB.assignSandboxesToEntities({"Job:1": [(shared, "Input"), (single, "Input")], "Job:2": [(shared, "Input")]})
    assert sbDB.unassignEntities(["Job:1"]) == 2
    assert sbDB.getSandbox(SE, "/sb/shared.tar.bz2")["Assigned"] is True
    assert sbDB.getSandbox(SE, "/sb/single.tar.bz2")["Assigned"] is False
    assert sbDB.unassignEntities([]) == 0


def test_reuploadWhileTheCleanerHoldsTheSandboxWaitsAndEndsWithRowAndFile(sbDB) -> None:
    """A re-upload of a sandbox being cleaned waits for the cleaner, then registers it again."""
    sbID = register(sbDB, "/sb/a.tar.bz2")
    registered = sbDB.getSandbox(SE, "/sb/a.tar.bz2")["RegistrationTime"]
    files = {"/sb/a.tar.bz2"}
    events: list[str] = []

    def reupload() -> None:
        register(sbDB, "/sb/a.tar.bz2", store=lambda: files.add("/sb/a.tar.bz2"))
        events.append("re-registered")

    uploader = threading.Thread(target=reupload)

    def remove(se: str, pfn: str) -> None:
        files.discard(pfn)
        uploader.start()
        time.sleep(0.5)
        events.append("removed" if uploader.is_alive() else "uploader did not wait")

    assert sbDB.deleteUnusedSandbox(sbID, utcnow() + timedelta(days=1), remove)
    uploader.join(30)
    assert events == ["removed", "re-registered"]
    assert files == {"/sb/a.tar.bz2"}
    assert sbDB.getSandbox(SE, "/sb/a.tar.bz2")["RegistrationTime"] > registered  # a new registration


def test_registerAndGetSandbox_concurrentIdenticalUploadsShareOneRowWithoutDeadlock(sbDB) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            results.append(register(sbDB, "/sb/same.tar.bz2", store=lambda: time.sleep(0.01)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(results) == 8 and len(set(results)) == 1
