"""SandboxMetadataDB: which sandbox files exist, who owns them and which jobs use them.

Sandboxes are named by their storage element and path (SEName, SEPFN); entities that use
them are strings such as ``Job:123``, with a type ``Input`` or ``Output``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
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
    update,
)

from dirac.Core.Base.DB import DB, UTCDateTime, utcnow
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument, NotFound

SANDBOX_TYPES = ("Input", "Output")


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

    def _ownerID(self, conn: Any, owner: str, ownerGroup: str, vo: str) -> int:
        conn.execute(self.insertIgnore(self.owners).values(Owner=owner, OwnerGroup=ownerGroup, VO=vo))
        return int(conn.scalar(select(self.owners.c.OwnerId).where(
            self.owners.c.Owner == owner, self.owners.c.OwnerGroup == ownerGroup, self.owners.c.VO == vo)))

    def registerAndGetSandbox(self, owner: str, ownerGroup: str, vo: str, seName: str, sePFN: str,
                              size: int = 0) -> tuple[int, bool]:
        """Register a sandbox file (or find it): (SBId, True when newly registered)."""
        sb = self.sandboxes
        now = utcnow()
        with self.transaction("registerAndGetSandbox") as conn:
            ownerID = self._ownerID(conn, owner, ownerGroup, vo)
            new = conn.execute(self.insertIgnore(sb).values(
                OwnerId=ownerID, SEName=seName, SEPFN=sePFN, Bytes=size, RegistrationTime=now,
                LastAccessTime=now)).rowcount == 1
            row = conn.execute(select(sb.c.SBId, sb.c.OwnerId).where(sb.c.SEName == seName, sb.c.SEPFN == sePFN)
                               ).one()
            if row.OwnerId != ownerID:
                raise AuthorizationError(f"sandbox {seName}:{sePFN} belongs to another owner")
            if not new:
                conn.execute(update(sb).where(sb.c.SBId == row.SBId).values(LastAccessTime=now))
            return int(row.SBId), new

    def accessedSandboxById(self, sbID: int) -> None:
        """Note that a sandbox was just read."""
        with self.transaction("accessedSandboxById") as conn:
            conn.execute(update(self.sandboxes).where(self.sandboxes.c.SBId == sbID).values(LastAccessTime=utcnow()))

    def getSandboxId(self, seName: str, sePFN: str) -> int:
        """The SBId of a sandbox file (NotFound when unknown)."""
        sb = self.sandboxes
        with self.connection("getSandboxId") as conn:
            sbID = conn.scalar(select(sb.c.SBId).where(sb.c.SEName == seName, sb.c.SEPFN == sePFN))
        if sbID is None:
            raise NotFound(f"sandbox {seName}:{sePFN} is not registered")
        return int(sbID)

    def getSandboxOwner(self, seName: str, sePFN: str) -> dict[str, str]:
        """{Owner, OwnerGroup, VO} of a sandbox file."""
        sb, owners = self.sandboxes, self.owners
        with self.connection("getSandboxOwner") as conn:
            row = conn.execute(select(owners.c.Owner, owners.c.OwnerGroup, owners.c.VO)
                               .join(sb, sb.c.OwnerId == owners.c.OwnerId)
                               .where(sb.c.SEName == seName, sb.c.SEPFN == sePFN)).mappings().first()
        if row is None:
            raise NotFound(f"sandbox {seName}:{sePFN} is not registered")
        return dict(row)

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
        with self.transaction("assignSandboxesToEntities") as conn:
            sbIDs = {row["SBId"] for row in rows}
            known = set(conn.scalars(select(self.sandboxes.c.SBId).where(self.sandboxes.c.SBId.in_(sbIDs))))
            if sbIDs - known:
                raise NotFound(f"sandbox(es) {sorted(sbIDs - known)} are not registered")
            added = sum(conn.execute(self.insertIgnore(self.entityMapping).values(row)).rowcount for row in rows)
            conn.execute(update(self.sandboxes).where(self.sandboxes.c.SBId.in_(sbIDs)).values(Assigned=True))
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
        with self.transaction("unassignEntities") as conn:
            removed = conn.execute(delete(em).where(em.c.EntityId.in_(list(entityIDs)))).rowcount
            conn.execute(update(sb).where(sb.c.Assigned, ~exists().where(em.c.SBId == sb.c.SBId))
                         .values(Assigned=False))
        return removed

    def getUnusedSandboxes(self, olderThan: datetime) -> list[dict[str, Any]]:
        """[{SBId, SEName, SEPFN}] of unassigned sandboxes not accessed since ``olderThan``."""
        sb = self.sandboxes
        query = select(sb.c.SBId, sb.c.SEName, sb.c.SEPFN).where(~sb.c.Assigned, sb.c.LastAccessTime < olderThan)
        with self.connection("getUnusedSandboxes") as conn:
            return [dict(row) for row in conn.execute(query.order_by(sb.c.SBId)).mappings()]

    def deleteSandboxes(self, sbIDs: Iterable[int]) -> int:
        """Forget sandbox files (after their storage copies are gone); how many were removed."""
        with self.transaction("deleteSandboxes") as conn:
            return conn.execute(delete(self.sandboxes).where(self.sandboxes.c.SBId.in_(list(sbIDs)))).rowcount
