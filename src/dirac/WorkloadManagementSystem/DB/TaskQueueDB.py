"""TaskQueueDB: waiting jobs grouped by their scheduling requirements.

A task queue (tq_TaskQueues) is one combination of owner, group, VO, job type, CPU time bucket
and processors, plus the sets in tq_TQToSites, tq_TQToBannedSites, tq_TQToPlatforms, tq_TQToTags
and tq_TQToGridCEs; tq_Jobs holds its jobs with their priority. Matching looks only at task
queues (one indexed query), then claims one job of the chosen queue by deleting its tq_Jobs
row: whoever deletes the row owns the job, so a job is handed out once however many ask.

``claimFirstJob`` tries several task queues in one transaction: on MariaDB/MySQL each look is a
``SELECT ... LIMIT 2 FOR UPDATE SKIP LOCKED`` walking the index ``(TQId, Priority DESC, JobId)``
(concurrent claimers skip each other's rows instead of waiting; the DESC column, honoured from
MariaDB 10.8 and MySQL 8, spares a sort that would lock every job of the queue). A database made
before this index existed keeps its old one; add it with
``CREATE INDEX ix_tq_Jobs_TQId_PriorityDesc ON tq_Jobs (TQId, Priority DESC, JobId)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
)

from dirac.Core.Base.DB import DB
from dirac.Core.Utilities.Exceptions import DatabaseError, InvalidArgument

#: CPU time buckets (seconds): a job is queued with the first bucket not below its CPUTime.
CPU_TIME_BUCKETS = (360, 1800, 3600, 10800, 21600, 43200, 86400, 172800, 259200, 345600, 432000, 518400, 604800)
DAY = 86400
MULTI_VALUED = ("Sites", "BannedSites", "Platforms", "Tags", "GridCEs")
SCALARS = ("Owner", "OwnerGroup", "VO", "JobType", "CPUTime", "Processors")


def cpuTimeBucket(cpuTime: int) -> int:
    """The CPU time a task queue asks for when its jobs need ``cpuTime`` seconds."""
    for bucket in CPU_TIME_BUCKETS:
        if cpuTime <= bucket:
            return bucket
    return -(-int(cpuTime) // DAY) * DAY


def normaliseRequirements(requirements: Mapping[str, Any]) -> dict[str, Any]:
    """Requirements with every key, sorted value sets, 'ANY' sites dropped and CPU time bucketed."""
    unknown = set(requirements) - set(SCALARS) - set(MULTI_VALUED)
    if unknown:
        raise InvalidArgument(f"unknown task queue requirement(s): {', '.join(sorted(unknown))}")
    for key in ("Owner", "OwnerGroup"):
        if not requirements.get(key):
            raise InvalidArgument(f"task queue requirements lack {key}")
    result: dict[str, Any] = {
        "Owner": str(requirements["Owner"]), "OwnerGroup": str(requirements["OwnerGroup"]),
        "VO": str(requirements.get("VO") or ""), "JobType": str(requirements.get("JobType") or "User"),
        "CPUTime": cpuTimeBucket(int(requirements.get("CPUTime") or 0)),
        "Processors": max(1, int(requirements.get("Processors") or 1)),
    }
    for key in MULTI_VALUED:
        values = requirements.get(key) or []
        values = [values] if isinstance(values, str) else values
        result[key] = sorted({str(v).strip() for v in values if str(v).strip() and str(v).strip().upper() != "ANY"})
    return result


def requirementsHash(normalised: Mapping[str, Any]) -> str:
    """The key of a task queue: a digest of its normalised requirements."""
    return hashlib.sha256(json.dumps(normalised, sort_keys=True).encode()).hexdigest()


@dataclass
class Claim:
    """What claimFirstJob did: the job taken (JobID None when none), the newest TQId when checked,
    the task queues found empty (and removed), and what its ``then`` returned."""

    jobID: int | None = None
    priority: int = 0
    tqID: int | None = None
    newest: int | None = None
    emptied: list[int] = field(default_factory=list)
    outcome: Any = None


def _valueTable(name: str, metadata: MetaData) -> Table:
    return Table(name, metadata,
                 Column("TQId", Integer, ForeignKey("tq_TaskQueues.TQId", ondelete="CASCADE"), primary_key=True),
                 Column("Value", String(128), primary_key=True),
                 Index(f"ix_{name}_Value", "Value"))


class TaskQueueDB(DB):
    """Task queues and the waiting jobs in them."""

    dbName = "WorkloadManagement/TaskQueueDB"
    metadata = MetaData()

    taskQueues = Table(
        "tq_TaskQueues", metadata,
        Column("TQId", Integer, primary_key=True, autoincrement=True),
        Column("RequirementsHash", String(64), nullable=False, unique=True),
        Column("Owner", String(64), nullable=False),
        Column("OwnerGroup", String(128), nullable=False),
        Column("VO", String(32), nullable=False, default=""),
        Column("JobType", String(32), nullable=False, default="User"),
        Column("CPUTime", Integer, nullable=False),
        Column("Processors", Integer, nullable=False, default=1),
        Column("Enabled", Boolean, nullable=False, default=True),
        Index("ix_tq_TaskQueues_Enabled_CPUTime", "Enabled", "CPUTime"),
        Index("ix_tq_TaskQueues_OwnerGroup", "OwnerGroup", "Owner"),
        sqlite_autoincrement=True,  # TQIds never reused: the Matcher's candidate cache relies on it
    )
    tqJobs = Table(
        "tq_Jobs", metadata,
        Column("JobId", Integer, primary_key=True, autoincrement=False),
        Column("TQId", Integer, ForeignKey("tq_TaskQueues.TQId", ondelete="CASCADE"), nullable=False),
        Column("Priority", Integer, nullable=False, default=0),
    )
    Index("ix_tq_Jobs_TQId_PriorityDesc", tqJobs.c.TQId, tqJobs.c.Priority.desc(), tqJobs.c.JobId)
    valueTables = {
        "Sites": _valueTable("tq_TQToSites", metadata),
        "BannedSites": _valueTable("tq_TQToBannedSites", metadata),
        "Platforms": _valueTable("tq_TQToPlatforms", metadata),
        "Tags": _valueTable("tq_TQToTags", metadata),
        "GridCEs": _valueTable("tq_TQToGridCEs", metadata),
    }

    def __init__(self, url: str | None = None, *, createTables: bool = True):
        super().__init__(url, createTables=createTables)
        self._matchQueries: dict[tuple[int, tuple[str, ...]], Select[Any]] = {}
        jobs = self.tqJobs
        # built once: the claim runs for every match
        self._bestJobs = self.selectForUpdateSkipLocked(
            select(jobs.c.JobId, jobs.c.Priority).where(jobs.c.TQId == bindparam("tqID"))
            .order_by(jobs.c.Priority.desc(), jobs.c.JobId).limit(2))
        self._deleteJob = delete(jobs).where(jobs.c.JobId == bindparam("jobID"))
        self._anyJob = select(jobs.c.JobId).where(jobs.c.TQId == bindparam("tqID")).limit(1)
        self._newest = select(func.max(self.taskQueues.c.TQId))

    # -- filling ----------------------------------------------------------------------------------------------
    def _taskQueueID(self, conn: Connection, normalised: Mapping[str, Any], digest: str) -> int:
        """The TQId of these requirements, creating the task queue when missing."""
        tq = self.taskQueues
        query = select(tq.c.TQId).where(tq.c.RequirementsHash == digest)
        if self.isMySQL:  # a locking read sees rows committed after our snapshot and blocks their deletion
            query = query.with_for_update(read=True)
        tqID = conn.scalar(query)
        if tqID is not None:
            return int(tqID)
        created = conn.execute(self.insertIgnore(tq).values(
            RequirementsHash=digest, **{key: normalised[key] for key in SCALARS})).rowcount == 1
        tqID = int(conn.scalar(query))
        if created:
            for key, table in self.valueTables.items():
                if normalised[key]:
                    conn.execute(insert(table), [{"TQId": tqID, "Value": value} for value in normalised[key]])
        return tqID

    def insertJobs(self, jobs: Sequence[tuple[int, Mapping[str, Any], int]]) -> dict[int, int]:
        """Queue jobs given as (JobID, requirements, priority) in one transaction; {JobID: TQId}."""
        prepared = []
        for jobID, requirements, priority in jobs:
            normalised = normaliseRequirements(requirements)
            prepared.append((int(jobID), normalised, requirementsHash(normalised), int(priority)))
        result: dict[int, int] = {}
        with self.transaction("insertJobs") as conn:
            known: dict[str, int] = {}
            for jobID, normalised, digest, _ in prepared:
                if digest not in known:
                    known[digest] = self._taskQueueID(conn, normalised, digest)
                result[jobID] = known[digest]
            rows = [{"JobId": jobID, "TQId": known[digest], "Priority": priority}
                    for jobID, _, digest, priority in prepared]
            if rows:
                conn.execute(self.upsert(self.tqJobs, rows, ["TQId", "Priority"]))
        return result

    def insertJob(self, jobID: int, requirements: Mapping[str, Any], priority: int = 0) -> int:
        """Queue one job; the TQId of its task queue."""
        return self.insertJobs([(jobID, requirements, priority)])[jobID]

    def deleteJob(self, jobID: int) -> bool:
        """Take a job out of its task queue; False when it was not queued."""
        with self.transaction("deleteJob") as conn:
            return conn.execute(delete(self.tqJobs).where(self.tqJobs.c.JobId == jobID)).rowcount == 1

    def getTaskQueueForJob(self, jobID: int) -> int | None:
        """The TQId of a queued job (None when not queued)."""
        with self.connection("getTaskQueueForJob") as conn:
            return conn.scalar(select(self.tqJobs.c.TQId).where(self.tqJobs.c.JobId == jobID))

    # -- matching -----------------------------------------------------------------------------------------------
    def _values(self, key: str) -> Table:
        return self.valueTables[key]

    def _noValues(self, key: str) -> ColumnElement[bool]:
        table = self._values(key)
        return ~exists().where(table.c.TQId == self.taskQueues.c.TQId)

    def _hasValueIn(self, key: str, param: BindParameter[Any]) -> ColumnElement[bool]:
        table = self._values(key)
        return exists().where(table.c.TQId == self.taskQueues.c.TQId, table.c.Value.in_(param))

    def _matchQuery(self, requiredTags: int, limits: tuple[str, ...]) -> Select[Any]:
        """The matching statement for this shape of resource (built once: building it costs more than running it)."""
        key = (requiredTags, limits)
        if key not in self._matchQueries:
            tq, tags = self.taskQueues, self._values("Tags")

            def many(name: str) -> BindParameter[Any]:
                return bindparam(name, expanding=True)

            conditions: list[ColumnElement[bool]] = [
                tq.c.Enabled,
                tq.c.CPUTime <= bindparam("cpuTime"),
                tq.c.Processors <= bindparam("processors"),
                exists().where(self.tqJobs.c.TQId == tq.c.TQId),
                or_(self._noValues("Sites"), self._hasValueIn("Sites", many("site"))),
                ~self._hasValueIn("BannedSites", many("site")),
                or_(self._noValues("Platforms"), self._hasValueIn("Platforms", many("platforms"))),
                or_(self._noValues("GridCEs"), self._hasValueIn("GridCEs", many("gridCE"))),
                ~exists().where(tags.c.TQId == tq.c.TQId, tags.c.Value.not_in(many("tags"))),
            ]
            conditions += [self._hasValueIn("Tags", many(f"required{i}")) for i in range(requiredTags)]
            conditions += [tq.c[name].in_(many(f"limit{name}")) for name in limits]
            self._matchQueries[key] = (select(tq.c.TQId, tq.c.Owner, tq.c.OwnerGroup, tq.c.VO, tq.c.JobType,
                                              tq.c.CPUTime).where(and_(*conditions)).order_by(tq.c.TQId))
        return self._matchQueries[key]

    def matchingTaskQueues(self, resource: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Enabled, non-empty task queues whose requirements the resource satisfies.

        ``resource``: Site, CPUTime, NumberOfProcessors, Platforms (list), Tags (list),
        RequiredTags (list), GridCE, and optional limits Owner, OwnerGroup, VO, JobType (lists).
        """
        required = list(resource.get("RequiredTags") or [])
        limits = tuple(name for name in ("Owner", "OwnerGroup", "VO", "JobType") if resource.get(name))
        params: dict[str, Any] = {
            "cpuTime": int(resource.get("CPUTime") or 0), "processors": int(resource.get("NumberOfProcessors") or 1),
            "site": [resource.get("Site") or ""], "platforms": list(resource.get("Platforms") or []),
            "gridCE": [resource.get("GridCE") or ""], "tags": list(resource.get("Tags") or []),
            **{f"required{i}": [tag] for i, tag in enumerate(required)},
            **{f"limit{name}": list(resource[name]) for name in limits},
        }
        with self.connection("matchingTaskQueues") as conn:
            return [dict(row) for row in conn.execute(self._matchQuery(len(required), limits), params).mappings()]

    def claimJob(self, tqID: int) -> tuple[int | None, int, bool]:
        """Take the highest priority job out of a task queue: (JobID or None, its priority, whether jobs remain)."""
        claim = self.claimFirstJob([tqID], deleteEmptied=False)
        with self.connection("claimJob") as conn:  # after the commit: see the comment in claimFirstJob
            remaining = conn.scalar(self._anyJob, {"tqID": tqID}) is not None
        return claim.jobID, claim.priority, remaining

    def claimFirstJob(self, tqIDs: Sequence[int], newest: int | None = None, deleteEmptied: bool = True,
                      then: Callable[[Connection, int], Any] | None = None) -> Claim:
        """Take the best job of the first of these task queues that has one nobody else is taking.

        All in one transaction; when ``newest`` is given and a task queue was created since
        (MAX(TQId) differs), nothing is claimed, so that the caller can look again. ``then(conn,
        JobID)`` runs in the same transaction once a job is taken (its result is the Claim's
        ``outcome``): with DB.joinTransaction, the job's status changes with its claim. With
        ``deleteEmptied``, queues left without jobs are removed after the commit.
        """
        result = Claim()
        maybeEmpty: list[int] = []
        with self.transaction("claimFirstJob") as conn:
            if newest is not None:
                result.newest = int(conn.scalar(self._newest) or 0)
                if result.newest != newest:
                    return result
            for tqID in tqIDs:
                rows = conn.execute(self._bestJobs, {"tqID": tqID}).all()
                if rows and conn.execute(self._deleteJob, {"jobID": rows[0].JobId}).rowcount == 1:
                    result.jobID, result.priority, result.tqID = int(rows[0].JobId), int(rows[0].Priority), int(tqID)
                    if len(rows) < 2:
                        maybeEmpty.append(tqID)
                    if then is not None:
                        result.outcome = then(conn, result.jobID)
                    break
                maybeEmpty.append(tqID)
        # Looked at after the commit, in a fresh snapshot: of pilots emptying a queue together,
        # the last to commit sees every claim and so finds it empty.
        if maybeEmpty and deleteEmptied:
            with self.connection("claimFirstJob") as conn:
                result.emptied = [tqID for tqID in maybeEmpty if conn.scalar(self._anyJob, {"tqID": tqID}) is None]
            for tqID in result.emptied:
                self.deleteTaskQueueIfEmpty(tqID)
        return result

    def newestTaskQueueID(self) -> int:
        """The highest TQId in use (0 when there is none): it changes when a task queue is created."""
        with self.connection("newestTaskQueueID") as conn:
            return int(conn.scalar(self._newest) or 0)

    def deleteTaskQueueIfEmpty(self, tqID: int) -> bool:
        """Remove a task queue that has no job left; True when it was removed."""
        tq = self.taskQueues
        try:
            with self.transaction("deleteTaskQueueIfEmpty") as conn:
                return conn.execute(delete(tq).where(
                    tq.c.TQId == tqID, ~exists().where(self.tqJobs.c.TQId == tqID))).rowcount == 1
        except DatabaseError as exc:  # lost a lock race: cleanEmptyTaskQueues will catch it later
            self.log.info("task queue %s not removed now: %s", tqID, exc)
            return False

    def cleanEmptyTaskQueues(self) -> int:
        """Remove every task queue without jobs; how many were removed."""
        tq = self.taskQueues
        with self.transaction("cleanEmptyTaskQueues") as conn:
            return conn.execute(delete(tq).where(~exists().where(self.tqJobs.c.TQId == tq.c.TQId))).rowcount

    def setTaskQueueState(self, tqID: int, enabled: bool) -> None:
        """Enable or disable matching from a task queue."""
        with self.transaction("setTaskQueueState") as conn:
            conn.execute(self.taskQueues.update().where(self.taskQueues.c.TQId == tqID).values(Enabled=enabled))

    # -- monitoring ------------------------------------------------------------------------------------------------
    def retrieveTaskQueues(self, tqIDs: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """{TQId: requirements + Jobs (count) + Enabled} of the task queues (all when ``tqIDs`` is None)."""
        tq, jobs = self.taskQueues, self.tqJobs
        counts = select(jobs.c.TQId, func.count().label("Jobs")).group_by(jobs.c.TQId).subquery()
        query = select(tq, func.coalesce(counts.c.Jobs, 0).label("Jobs")).outerjoin(counts,
                                                                                     counts.c.TQId == tq.c.TQId)
        if tqIDs is not None:
            query = query.where(tq.c.TQId.in_(list(tqIDs)))
        with self.connection("retrieveTaskQueues") as conn:
            result = {row["TQId"]: {key: row[key] for key in (*SCALARS, "Enabled", "Jobs")}
                      for row in conn.execute(query).mappings()}
            for key, table in self.valueTables.items():
                for entry in result.values():
                    entry[key] = []
                for tqID, value in conn.execute(select(table.c.TQId, table.c.Value).order_by(table.c.Value)):
                    if tqID in result:
                        result[tqID][key].append(value)
        return result
