"""SandboxMetadataDB: which sandbox files exist, who owns them and which jobs use them.

Sandboxes are named by their storage element and path (SEName, SEPFN); entities that use
them are strings such as ``Job:123``, with a type ``Input`` or ``Output``.

The file and its row change together: ``registerAndGetSandbox`` runs the caller's ``store``
step (the atomic rename of the file into place) while it holds the sandbox row, and the
cleaning methods run their ``remove`` step while they hold it too, so a sandbox being
re-uploaded and the same sandbox being cleaned never interleave: a committed row always
has its file. On MariaDB the row is locked; on SQLite every write transaction is serial.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    delete,
    exists,
    select,
    tuple_,
    update,
)

from dirac.Core.Base.DB import DB, UTCDateTime, utcnow
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument, NotFound

SANDBOX_TYPES = ("Input", "Output")

#: Called with (SEName, SEPFN) while the sandbox row is held; raising aborts and keeps the row.
SandboxFileStep = Callable[[str, str], Any]


class SandboxMetadataDB(DB):
    """Sandbox files, their owners and their assignment to jobs."""

    dbName = "WorkloadManagement/SandboxMetadataDB"
    metadata = MetaData()

    owners = Table(
        "sb_Owners", metadata,
        Column("OwnerId", Integer, primary_key=True, autoincrement=True),
        Column("Owner", String(64), nullable=False),
        Column("OwnerGroup", String(128), nullable=False),
        Column("VO", String(64), nullable=False, default=""),
        UniqueConstraint("Owner", "OwnerGroup", "VO", name="uq_sb_Owners"),
    )
    sandboxes = Table(
        "sb_SandBoxes", metadata,
        Column("SBId", Integer, primary_key=True, autoincrement=True),
        Column("OwnerId", Integer, ForeignKey("sb_Owners.OwnerId"), nullable=False),
        Column("SEName", String(64), nullable=False),
        Column("SEPFN", String(512), nullable=False),
        Column("Bytes", BigInteger, nullable=False, default=0),
        Column("Checksum", String(64), nullable=False, default=""),  # SHA-256, hex
        Column("RegistrationTime", UTCDateTime, nullable=False),
        Column("LastAccessTime", UTCDateTime, nullable=False),
        Column("Assigned", Boolean, nullable=False, default=False),
        UniqueConstraint("SEName", "SEPFN", name="uq_sb_SandBoxes_Location"),
        Index("ix_sb_SandBoxes_Assigned_LastAccess", "Assigned", "LastAccessTime"),
    )
    entityMapping = Table(
        "sb_EntityMapping", metadata,
        Column("SBId", Integer, ForeignKey("sb_SandBoxes.SBId", ondelete="CASCADE"), primary_key=True),
        Column("EntityId", String(128), primary_key=True),
        Column("Type", String(64), primary_key=True),
        Index("ix_sb_EntityMapping_EntityId", "EntityId"),
    )

    # -- registration -----------------------------------------------------------------------------
    def _ownerID(self, conn: Connection, owner: str, ownerGroup: str, vo: str) -> int:
        conn.execute(self.insertIgnore(self.owners).values(Owner=owner, OwnerGroup=ownerGroup, VO=vo))
        return int(conn.scalar(select(self.owners.c.OwnerId).where(
            self.owners.c.Owner == owner, self.owners.c.OwnerGroup == ownerGroup, self.owners.c.VO == vo)))

    def registerAndGetSandbox(self, owner: str, ownerGroup: str, vo: str, seName: str, sePFN: str,
                              size: int = 0, checksum: str = "", store: Callable[[], Any] | None = None
                              ) -> tuple[int, bool]:
        """Register a sandbox file (or find it and note the access): (SBId, True when newly registered).

        ``store`` runs inside the transaction once the row is held (it puts the file in place);
        if it raises, nothing is registered.
        """
        sb = self.sandboxes
        now = utcnow()
        with self.transaction("registerAndGetSandbox") as conn:
            ownerID = self._ownerID(conn, owner, ownerGroup, vo)
            # one statement that inserts or bumps takes the row's write lock at once (no shared->exclusive upgrade)
            conn.execute(self.upsert(sb, {"OwnerId": ownerID, "SEName": seName, "SEPFN": sePFN, "Bytes": size,
                                          "Checksum": checksum, "RegistrationTime": now, "LastAccessTime": now,
                                          "Assigned": False}, ["LastAccessTime"]))
            row = conn.execute(select(sb.c.SBId, sb.c.OwnerId, sb.c.RegistrationTime)
                               .where(sb.c.SEName == seName, sb.c.SEPFN == sePFN)).one()
            if row.OwnerId != ownerID:
                raise AuthorizationError(f"sandbox {seName}:{sePFN} belongs to another owner")
            if store is not None:
                store()
            return int(row.SBId), row.RegistrationTime == now

    def accessedSandboxById(self, sbID: int) -> None:
        """Note that a sandbox was just read (NotFound when it is gone)."""
        with self.transaction("accessedSandboxById") as conn:
            changed = conn.execute(update(self.sandboxes).where(self.sandboxes.c.SBId == sbID)
                                   .values(LastAccessTime=utcnow())).rowcount
        if changed != 1:
            raise NotFound(f"sandbox {sbID} is not registered (any more)")

    # -- lookups -------------------------------------------------------------------------------------
    def getSandboxId(self, seName: str, sePFN: str) -> int:
        """The SBId of a sandbox file (NotFound when unknown)."""
        return int(self.getSandbox(seName, sePFN)["SBId"])

    def getSandbox(self, seName: str, sePFN: str) -> dict[str, Any]:
        """{SBId, SEName, SEPFN, Owner, OwnerGroup, VO, Bytes, Checksum, RegistrationTime, LastAccessTime,
        Assigned} of a sandbox file (NotFound when unknown)."""
        found = self.getSandboxes([(seName, sePFN)])
        if (seName, sePFN) not in found:
            raise NotFound(f"sandbox {seName}:{sePFN} is not registered")
        return found[(seName, sePFN)]

    def getSandboxes(self, locations: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """{(SEName, SEPFN): sandbox as in getSandbox} of the registered ones among ``locations``."""
        sb, owners = self.sandboxes, self.owners
        wanted = list(dict.fromkeys(locations))
        if not wanted:
            return {}
        query = (select(sb.c.SBId, sb.c.SEName, sb.c.SEPFN, owners.c.Owner, owners.c.OwnerGroup, owners.c.VO,
                        sb.c.Bytes, sb.c.Checksum, sb.c.RegistrationTime, sb.c.LastAccessTime, sb.c.Assigned)
                 .join(owners, owners.c.OwnerId == sb.c.OwnerId)
                 .where(tuple_(sb.c.SEName, sb.c.SEPFN).in_(wanted)))
        with self.connection("getSandboxes") as conn:
            return {(row["SEName"], row["SEPFN"]): dict(row) for row in conn.execute(query).mappings()}

    def getSandboxOwner(self, seName: str, sePFN: str) -> dict[str, str]:
        """{Owner, OwnerGroup, VO} of a sandbox file."""
        sandbox = self.getSandbox(seName, sePFN)
        return {key: sandbox[key] for key in ("Owner", "OwnerGroup", "VO")}

    def getEntitiesOfSandbox(self, sbID: int) -> list[tuple[str, str]]:
        """[(EntityId, Type)] of the entities (e.g. 'Job:12') a sandbox is assigned to."""
        em = self.entityMapping
        with self.connection("getEntitiesOfSandbox") as conn:
            return [(row.EntityId, row.Type) for row in conn.execute(
                select(em.c.EntityId, em.c.Type).where(em.c.SBId == sbID).order_by(em.c.EntityId, em.c.Type))]

    # -- assignment ------------------------------------------------------------------------------------
    def assignSandboxesToEntities(self, entities: Mapping[str, Sequence[tuple[int, str]]]) -> int:
        """Link sandboxes to entities: {EntityId: [(SBId, 'Input'|'Output')]}; how many links are new."""
        rows = []
        for entityID, sandboxes in entities.items():
            for sbID, sbType in sandboxes:
                if sbType not in SANDBOX_TYPES:
                    raise InvalidArgument(f"{entityID}: sandbox type {sbType!r} is not one of {SANDBOX_TYPES}")
                rows.append({"SBId": int(sbID), "EntityId": entityID, "Type": sbType})
        if not rows:
            return 0
        sb = self.sandboxes
        with self.transaction("assignSandboxesToEntities") as conn:
            sbIDs = sorted({row["SBId"] for row in rows})
            query = select(sb.c.SBId).where(sb.c.SBId.in_(sbIDs)).order_by(sb.c.SBId)
            # held until commit: a cleaner deleting one of them either finished before (NotFound) or waits
            known = set(conn.scalars(query.with_for_update() if self.isMySQL else query))
            if set(sbIDs) - known:
                raise NotFound(f"sandbox(es) {sorted(set(sbIDs) - known)} are not registered")
            added = sum(conn.execute(self.insertIgnore(self.entityMapping).values(row)).rowcount for row in rows)
            conn.execute(update(sb).where(sb.c.SBId.in_(sbIDs)).values(Assigned=True))
        return added

    def getSandboxesAssignedToEntity(self, entityID: str, sbType: str | None = None) -> list[dict[str, Any]]:
        """[{SBId, SEName, SEPFN, Type, Bytes}] of the sandboxes an entity uses."""
        sb, em = self.sandboxes, self.entityMapping
        query = (select(sb.c.SBId, sb.c.SEName, sb.c.SEPFN, em.c.Type, sb.c.Bytes)
                 .join(em, em.c.SBId == sb.c.SBId).where(em.c.EntityId == entityID).order_by(sb.c.SBId))
        if sbType:
            query = query.where(em.c.Type == sbType)
        with self.connection("getSandboxesAssignedToEntity") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def unassignEntities(self, entityIDs: Iterable[str]) -> int:
        """Drop the links of entities (e.g. deleted jobs); sandboxes left unused become unassigned."""
        sb, em = self.sandboxes, self.entityMapping
        ids = list(entityIDs)
        if not ids:
            return 0
        with self.transaction("unassignEntities") as conn:
            removed = conn.execute(delete(em).where(em.c.EntityId.in_(ids))).rowcount
            conn.execute(update(sb).where(sb.c.Assigned, ~exists().where(em.c.SBId == sb.c.SBId))
                         .values(Assigned=False))
        return removed

    # -- cleaning -----------------------------------------------------------------------------------------
    def _unused(self, olderThan: datetime) -> list[ColumnElement[bool]]:
        sb, em = self.sandboxes, self.entityMapping
        return [~sb.c.Assigned, sb.c.LastAccessTime < olderThan, ~exists().where(em.c.SBId == sb.c.SBId)]

    def getUnusedSandboxes(self, olderThan: datetime, seName: str | None = None, limit: int | None = None,
                           afterSBId: int = 0) -> list[dict[str, Any]]:
        """[{SBId, SEName, SEPFN}] of unassigned sandboxes not accessed since ``olderThan``, by SBId."""
        sb = self.sandboxes
        query = select(sb.c.SBId, sb.c.SEName, sb.c.SEPFN).where(*self._unused(olderThan), sb.c.SBId > afterSBId)
        if seName is not None:
            query = query.where(sb.c.SEName == seName)
        query = query.order_by(sb.c.SBId)
        if limit is not None:
            query = query.limit(limit)
        with self.connection("getUnusedSandboxes") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def getSandboxLocations(self, seName: str | None = None, limit: int | None = None, afterSBId: int = 0
                            ) -> list[dict[str, Any]]:
        """[{SBId, SEName, SEPFN}] of every registered sandbox (of one SE), by SBId, a page at a time."""
        sb = self.sandboxes
        query = select(sb.c.SBId, sb.c.SEName, sb.c.SEPFN).where(sb.c.SBId > afterSBId)
        if seName is not None:
            query = query.where(sb.c.SEName == seName)
        query = query.order_by(sb.c.SBId)
        if limit is not None:
            query = query.limit(limit)
        with self.connection("getSandboxLocations") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def _deleteHeld(self, operation: str, sbID: int, conditions: Sequence[ColumnElement[bool]],
                    step: Callable[[str, str], bool]) -> bool:
        """Hold sandbox ``sbID`` if it still meets ``conditions`` (skipping it when another process holds it),
        run ``step(SEName, SEPFN)`` and delete the row when the step answers True."""
        sb = self.sandboxes
        with self.transaction(operation) as conn:
            location = conn.execute(select(sb.c.SEName, sb.c.SEPFN).where(sb.c.SBId == sbID)).first()
            if location is None:
                return False
            # Held through the (SEName, SEPFN) index, which an upload of the same file locks first: holding
            # the primary key alone would let that upload take the index entry and deadlock with our DELETE.
            row = conn.execute(self.selectForUpdateSkipLocked(
                select(sb.c.SBId).where(sb.c.SEName == location.SEName, sb.c.SEPFN == location.SEPFN,
                                        *conditions))).first()
            if row is None or row.SBId != sbID or not step(location.SEName, location.SEPFN):
                return False
            conn.execute(delete(self.entityMapping).where(self.entityMapping.c.SBId == sbID))
            conn.execute(delete(sb).where(sb.c.SBId == sbID))
        return True

    def deleteUnusedSandbox(self, sbID: int, olderThan: datetime, remove: SandboxFileStep) -> bool:
        """Delete a sandbox that is still unused since ``olderThan``: ``remove(SEName, SEPFN)`` deletes its file
        first, then the row goes; False (nothing done) when it was used, assigned or taken meanwhile."""
        def step(seName: str, sePFN: str) -> bool:
            remove(seName, sePFN)
            return True

        return self._deleteHeld("deleteUnusedSandbox", sbID, self._unused(olderThan), step)

    def deleteLostSandbox(self, sbID: int, isLost: Callable[[str, str], bool]) -> bool:
        """Forget a sandbox whose file vanished: ``isLost(SEName, SEPFN)`` is asked while the row is held."""
        return self._deleteHeld("deleteLostSandbox", sbID, [], isLost)

    def deleteSandboxes(self, sbIDs: Iterable[int]) -> int:
        """Forget sandbox files (after their storage copies are gone); how many were removed."""
        ids = list(sbIDs)
        if not ids:
            return 0
        with self.transaction("deleteSandboxes") as conn:
            conn.execute(delete(self.entityMapping).where(self.entityMapping.c.SBId.in_(ids)))
            return conn.execute(delete(self.sandboxes).where(self.sandboxes.c.SBId.in_(ids))).rowcount
