"""PilotAgentsDB: the pilots submitted to computing elements, the jobs they ran, their output and log lines.

Tables (DIRAC's names): ``PilotAgents`` (one row per pilot reference), ``JobToPilotMapping``
(which pilot ran which job), ``PilotOutput`` (stdout and stderr of ended pilots), and for the
lines a pilot streams while it runs, ``PilotLogStreams`` (one per pilot stamp, with the last
sequence number given) and ``PilotLogs`` (the lines). Log lines are keyed by the pilot stamp,
not by ``PilotID``: a pilot may log before the SiteDirector has registered it, and its lines are
joined to the pilot by the stamp later.

Sequence numbers of a stamp's lines count from 1, without gaps, in the order the batches were
stored; the stream row is locked while a batch is stored, so a reader that saw sequence ``n``
never later finds a line below ``n`` appear (``getPilotLogs(stamp, sinceSequence=n)`` follows a
running pilot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from DIRACCommon.Core.Utilities import DErrno
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)

from dirac.Core.Base.DB import DB, LongText, UTCDateTime, utcnow
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.Resources.Computing.ComputingElement import (
    ABORTED,
    PILOT_FINAL_STATES,
    PILOT_STATES,
    PILOT_TRANSIENT_STATES,
    RUNNING,
    SUBMITTED,
)

#: characters kept of a log line (a MySQL TEXT holds 65535 bytes, 4 per character at worst)
MAX_LINE_CHARS = 16_000
#: characters kept of a pilot's stdout or stderr (a MEDIUMTEXT holds 16 MiB)
MAX_OUTPUT_CHARS = 4_000_000
TRUNCATED = "[...truncated...]"
INFO_COLUMNS = ("PilotJobReference", "PilotID", "PilotStamp", "VO", "GridType", "Status", "StatusReason",
                "DestinationSite", "Queue", "GridSite", "BenchMark", "AccountingSent", "SubmissionTime",
                "LastUpdateTime")


class PilotNotFound(NotFound):
    """No pilot has this reference (or stamp); DIRAC's EWMSNOPILOT."""

    errno = DErrno.EWMSNOPILOT


def toUTC(value: datetime | date | str | None) -> datetime | None:
    """An aware UTC datetime from a datetime (naive means UTC), a date or an ISO string; None for ''/None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgument(f"{value!r} is not a date ('YYYY-mm-dd' or 'YYYY-mm-dd HH:MM:SS')") from None
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _cascade() -> ForeignKey:
    return ForeignKey("PilotAgents.PilotID", ondelete="CASCADE")


def _keepTail(text: str, limit: int) -> str:
    """``text`` cut to its last ``limit`` characters, marked as truncated."""
    if len(text) <= limit:
        return text
    return TRUNCATED + "\n" + text[len(text) - limit:]


class PilotAgentsDB(DB):
    """Bookkeeping of pilots: references, statuses, jobs, output and streamed log lines."""

    dbName = "WorkloadManagement/PilotAgentsDB"
    metadata = MetaData()

    pilotAgents = Table(
        "PilotAgents", metadata,
        Column("PilotID", Integer, primary_key=True, autoincrement=True),
        Column("PilotJobReference", String(255), nullable=False, unique=True),
        Column("PilotStamp", String(64), nullable=False, default=""),
        Column("DestinationSite", String(128), nullable=False, default="NotAssigned"),
        Column("Queue", String(128), nullable=False, default="Unknown"),
        Column("GridSite", String(128), nullable=False, default="Unknown"),
        Column("VO", String(128), nullable=False),
        Column("GridType", String(32), nullable=False, default="DIRAC"),
        Column("BenchMark", Float, nullable=False, default=0.0),
        Column("SubmissionTime", UTCDateTime),
        Column("LastUpdateTime", UTCDateTime),
        Column("Status", String(32), nullable=False, default="Unknown"),
        Column("StatusReason", String(255), nullable=False, default="Unknown"),
        Column("AccountingSent", Boolean, nullable=False, default=False),
        Index("ix_PilotAgents_Status", "Status"),
        Index("ix_PilotAgents_PilotStamp", "PilotStamp"),
        Index("ix_PilotAgents_Site_CE_Status", "GridSite", "DestinationSite", "Status"),
        Index("ix_PilotAgents_CE_Queue_Status", "DestinationSite", "Queue", "Status"),
        Index("ix_PilotAgents_SubmissionTime", "SubmissionTime"),
        sqlite_autoincrement=True,  # a PilotID is never given twice
    )
    jobToPilotMapping = Table(
        "JobToPilotMapping", metadata,
        Column("PilotID", Integer, _cascade(), primary_key=True),
        Column("JobID", Integer, primary_key=True, index=True),
        Column("StartTime", UTCDateTime, nullable=False),
    )
    pilotOutput = Table(
        "PilotOutput", metadata,
        Column("PilotID", Integer, _cascade(), primary_key=True),
        Column("StdOutput", LongText, nullable=False),
        Column("StdError", LongText, nullable=False),
    )
    pilotLogStreams = Table(
        "PilotLogStreams", metadata,
        Column("PilotStamp", String(64), primary_key=True),
        Column("VO", String(128), nullable=False, default=""),
        Column("LastSequence", Integer, nullable=False, default=0),
        Column("Finalised", Boolean, nullable=False, default=False),
        Column("FirstTime", UTCDateTime, nullable=False),
        Column("LastUpdateTime", UTCDateTime, nullable=False, index=True),
    )
    pilotLogs = Table(
        "PilotLogs", metadata,
        Column("PilotStamp", String(64), ForeignKey("PilotLogStreams.PilotStamp", ondelete="CASCADE"),
               primary_key=True),
        Column("Sequence", Integer, primary_key=True, autoincrement=False),
        Column("LineTime", UTCDateTime, nullable=False),
        Column("Line", Text, nullable=False),
    )

    COLUMNS = tuple(pilotAgents.c.keys())

    # -- helpers ---------------------------------------------------------------------------------------
    def _column(self, name: str) -> Any:
        if name not in self.COLUMNS:
            raise InvalidArgument(f"unknown pilot attribute {name!r} (known: {', '.join(self.COLUMNS)})")
        return self.pilotAgents.c[name]

    def _conditions(self, condDict: Mapping[str, Any] | None, older: Any = None, newer: Any = None,
                    timeStamp: str = "SubmissionTime") -> list[ColumnElement[bool]]:
        """WHERE clauses: attribute equal to a value or in a list, and ``timeStamp`` before/after dates."""
        clauses: list[ColumnElement[bool]] = []
        for name, value in (condDict or {}).items():
            column = self._column(name)
            if isinstance(value, (list, tuple, set)):
                clauses.append(column.in_(list(value)))
            else:
                clauses.append(column == value)
        older, newer = toUTC(older), toUTC(newer)
        if older or newer:
            stamp = self._column(timeStamp)
            if older:
                clauses.append(stamp < older)
            if newer:
                clauses.append(stamp > newer)
        return clauses

    def _pilotID(self, conn: Connection, pilotRef: str, byStamp: bool = False) -> int:
        """The PilotID of a reference (or, with ``byStamp``, of a stamp when no reference matches)."""
        pa = self.pilotAgents
        pilotID = conn.scalar(select(pa.c.PilotID).where(pa.c.PilotJobReference == pilotRef))
        if pilotID is None and byStamp and pilotRef:
            pilotID = conn.scalar(select(pa.c.PilotID).where(pa.c.PilotStamp == pilotRef).order_by(pa.c.PilotID))
        if pilotID is None:
            raise PilotNotFound(f"No pilots found for PilotJobReference(s): {pilotRef}")
        return int(pilotID)

    # -- registration and status ---------------------------------------------------------------------------
    def addPilotReferences(self, pilotRef: Sequence[str], VO: str, gridType: str = "DIRAC",
                           pilotStampDict: Mapping[str, str] | None = None, destinationSite: str = "NotAssigned",
                           queue: str = "Unknown", gridSite: str = "Unknown") -> dict[str, int]:
        """Register submitted pilots (status Submitted) in one transaction; {reference: PilotID}."""
        refs = list(dict.fromkeys(pilotRef))
        if not refs:
            return {}
        stamps = pilotStampDict or {}
        now = utcnow()
        rows = [{"PilotJobReference": ref, "PilotStamp": stamps.get(ref, ""), "VO": VO, "GridType": gridType,
                 "DestinationSite": destinationSite or "NotAssigned", "Queue": queue or "Unknown",
                 "GridSite": gridSite or "Unknown", "SubmissionTime": now, "LastUpdateTime": now,
                 "Status": SUBMITTED, "StatusReason": "Submitted"} for ref in refs]
        pa = self.pilotAgents
        with self.transaction("addPilotReferences") as conn:
            known = list(conn.scalars(select(pa.c.PilotJobReference).where(pa.c.PilotJobReference.in_(refs))))
            if known:
                raise InvalidArgument(f"pilot reference(s) already registered: {', '.join(sorted(known))}")
            conn.execute(insert(pa), rows)
            ids = dict(conn.execute(select(pa.c.PilotJobReference, pa.c.PilotID).where(pa.c.PilotJobReference.in_(refs))).all())
        self.log.info("registered %d pilot(s) of %s on %s/%s (%s): %s", len(refs), VO, gridSite, destinationSite,
                      queue, ", ".join(refs[:3]) + (" ..." if len(refs) > 3 else ""))
        return ids

    def setPilotStatus(self, pilotRef: str, status: str, destination: str | None = None,
                       statusReason: str | None = None, gridSite: str | None = None, queue: str | None = None,
                       benchmark: float | None = None, updateTime: datetime | None = None) -> None:
        """Set the status of a pilot (and optionally where it runs, its benchmark); PilotNotFound if unknown."""
        if status not in PILOT_STATES:
            raise InvalidArgument(f"pilot {pilotRef}: {status!r} is not a pilot status ({', '.join(PILOT_STATES)})")
        values: dict[str, Any] = {"Status": status, "LastUpdateTime": toUTC(updateTime) or utcnow(),
                                  "StatusReason": (statusReason or "Not given")[:255]}
        for column, value in (("DestinationSite", destination), ("GridSite", gridSite), ("Queue", queue)):
            if value:
                values[column] = value
        if benchmark:
            values["BenchMark"] = float(benchmark)
        with self.transaction("setPilotStatus") as conn:
            changed = conn.execute(update(self.pilotAgents)
                                   .where(self.pilotAgents.c.PilotJobReference == pilotRef).values(values)).rowcount
        if changed != 1:
            raise PilotNotFound(f"No pilots found for PilotJobReference(s): {pilotRef}")
        self.log.debug("pilot %s: %s (%s)", pilotRef, status, values["StatusReason"])

    def setPilotBenchmark(self, pilotRef: str, mark: float) -> None:
        """Record the CPU power the pilot measured on its worker node."""
        self._updatePilot("setPilotBenchmark", pilotRef, {"BenchMark": float(mark)}, byStamp=True)

    def setAccountingFlag(self, pilotRef: str, mark: str | bool = "True") -> None:
        """Mark whether the pilot's accounting record was sent (DIRAC passes 'True'/'False')."""
        flag = mark if isinstance(mark, bool) else str(mark).strip().lower() in ("true", "yes", "1")
        self._updatePilot("setAccountingFlag", pilotRef, {"AccountingSent": flag})

    def _updatePilot(self, operation: str, pilotRef: str, values: Mapping[str, Any], byStamp: bool = False) -> None:
        with self.transaction(operation) as conn:
            pilotID = self._pilotID(conn, pilotRef, byStamp)
            conn.execute(update(self.pilotAgents).where(self.pilotAgents.c.PilotID == pilotID).values(dict(values)))

    # -- reading -------------------------------------------------------------------------------------------
    def getPilotInfo(self, pilotRef: str | Sequence[str] | None = None, paramNames: Sequence[str] | None = None,
                     pilotID: int | Sequence[int] | None = None) -> dict[str, dict[str, Any]]:
        """{reference: {attribute: value, ..., 'Jobs': [JobIDs]}} of the pilots asked for; PilotNotFound if none."""
        names = list(dict.fromkeys(["PilotJobReference", "PilotID", *(paramNames or INFO_COLUMNS)]))
        query = select(*(self._column(name) for name in names))
        refs = [pilotRef] if isinstance(pilotRef, str) else list(pilotRef or [])
        ids = [pilotID] if isinstance(pilotID, int) else list(pilotID or [])
        if refs:
            query = query.where(self.pilotAgents.c.PilotJobReference.in_(refs))
        if ids:
            query = query.where(self.pilotAgents.c.PilotID.in_(ids))
        with self.connection("getPilotInfo") as conn:
            pilots = {row["PilotJobReference"]: dict(row) for row in conn.execute(query).mappings()}
            jobs = self._jobsForPilots(conn, [info["PilotID"] for info in pilots.values()])
        if not pilots:
            raise PilotNotFound(f"No pilots found for PilotJobReference(s): {', '.join(refs) or ids}")
        for info in pilots.values():
            info["Jobs"] = jobs.get(info["PilotID"], [])
        return pilots

    def findPilot(self, refOrStamp: str) -> dict[str, Any] | None:
        """The info of the pilot with this reference, else with this stamp; None if there is none."""
        if not refOrStamp:
            return None
        with self.connection("findPilot") as conn:
            try:
                pilotID = self._pilotID(conn, refOrStamp, byStamp=True)
            except PilotNotFound:
                return None
        return next(iter(self.getPilotInfo(pilotID=pilotID).values()))

    def selectPilots(self, condDict: Mapping[str, Any] | None = None, older: Any = None, newer: Any = None,
                     timeStamp: str = "SubmissionTime", orderAttribute: str | None = None,
                     limit: int | None = None) -> list[str]:
        """References of the pilots matching attribute conditions and a time window, ordered ('Attr[:DESC]')."""
        query = select(self.pilotAgents.c.PilotJobReference).where(
            *self._conditions(condDict, older, newer, timeStamp))
        if orderAttribute:
            name, _, direction = orderAttribute.partition(":")
            if direction.upper() not in ("", "ASC", "DESC"):
                raise InvalidArgument(f"order direction {direction!r} is neither ASC nor DESC")
            column = self._column(name)
            query = query.order_by(column.desc() if direction.upper() == "DESC" else column.asc())
        query = query.order_by(self.pilotAgents.c.PilotID)
        if limit:
            query = query.limit(int(limit))
        with self.connection("selectPilots") as conn:
            return list(conn.scalars(query))

    def countPilots(self, condDict: Mapping[str, Any] | None = None, older: Any = None, newer: Any = None,
                    timeStamp: str = "SubmissionTime") -> int:
        """How many pilots match (the SiteDirector counts waiting and running pilots per CE and queue)."""
        query = select(func.count()).select_from(self.pilotAgents).where(
            *self._conditions(condDict, older, newer, timeStamp))
        with self.connection("countPilots") as conn:
            return int(conn.scalar(query) or 0)

    def getCounters(self, attrList: Sequence[str], condDict: Mapping[str, Any] | None = None, older: Any = None,
                    newer: Any = None, timeStamp: str = "SubmissionTime") -> list[tuple[dict[str, Any], int]]:
        """[({attribute: value}, count)]: how many pilots per combination of the attributes in ``attrList``."""
        columns = [self._column(name) for name in attrList]
        query = (select(*columns, func.count()).where(*self._conditions(condDict, older, newer, timeStamp))
                 .group_by(*columns).order_by(*columns))
        with self.connection("getCounters") as conn:
            return [({name: row[i] for i, name in enumerate(attrList)}, int(row[-1])) for row in conn.execute(query)]

    def getCurrentPilotCounters(self, attrDict: Mapping[str, Any] | None = None) -> dict[str, int]:
        """{Status: count} of the matching pilots, final statuses counting only the pilots updated in the last day."""
        pa = self.pilotAgents
        recent = or_(pa.c.Status.not_in(PILOT_FINAL_STATES), pa.c.LastUpdateTime >= utcnow() - timedelta(days=1))
        query = select(pa.c.Status, func.count()).where(*self._conditions(attrDict), recent).group_by(pa.c.Status)
        with self.connection("getCurrentPilotCounters") as conn:
            return {status: int(count) for status, count in conn.execute(query)}

    def getPilotSummary(self, startdate: Any = "", enddate: Any = "") -> dict[str, dict[str, int]]:
        """{CE: {Status: count, 'Aborted_Hour', 'Aborted_Day'}, 'Total': {Status: count}} of pilots submitted in the window."""
        pa = self.pilotAgents
        window = []
        if start := toUTC(startdate):
            window.append(pa.c.SubmissionTime >= start)
        if end := toUTC(enddate):
            window.append(pa.c.SubmissionTime <= end)
        now = utcnow()
        hourAgo, dayAgo = now - timedelta(hours=1), now - timedelta(days=1)
        summary: dict[str, dict[str, int]] = {"Total": dict.fromkeys(PILOT_STATES, 0)}
        with self.connection("getPilotSummary") as conn:
            for ce, status, count in conn.execute(select(pa.c.DestinationSite, pa.c.Status, func.count())
                                                  .where(*window).group_by(pa.c.DestinationSite, pa.c.Status)):
                summary.setdefault(ce, {"Aborted_Hour": 0, "Aborted_Day": 0})[status] = int(count)
                summary["Total"][status] = summary["Total"].get(status, 0) + int(count)
            aborted = conn.execute(
                select(pa.c.DestinationSite, func.count(), func.sum(case((pa.c.LastUpdateTime >= hourAgo, 1), else_=0)))
                .where(pa.c.Status == ABORTED, pa.c.LastUpdateTime >= dayAgo).group_by(pa.c.DestinationSite))
            for ce, day, hour in aborted:
                if ce in summary:
                    summary[ce].update(Aborted_Day=int(day), Aborted_Hour=int(hour or 0))
        return summary

    # -- jobs ------------------------------------------------------------------------------------------------
    def setJobForPilot(self, jobID: int, pilotRef: str, site: str | None = None, updateStatus: bool = True,
                       destination: str | None = None) -> None:
        """Record that the pilot (reference or stamp) runs the job; a pilot still alive becomes Running.

        ``site`` sets the pilot's GridSite, ``destination`` its DestinationSite (CE), when given.
        """
        pa = self.pilotAgents
        with self.transaction("setJobForPilot") as conn:
            pilotID = self._pilotID(conn, pilotRef, byStamp=True)
            conn.execute(self.insertIgnore(self.jobToPilotMapping).values(PilotID=pilotID, JobID=int(jobID),
                                                                          StartTime=utcnow()))
            if destination:
                conn.execute(update(pa).where(pa.c.PilotID == pilotID).values(DestinationSite=destination))
            if updateStatus:
                values = {"Status": RUNNING, "StatusReason": f"Report from job {int(jobID)}", "LastUpdateTime": utcnow()}
                if site:
                    values["GridSite"] = site
                conn.execute(update(pa).where(pa.c.PilotID == pilotID, pa.c.Status.in_(PILOT_TRANSIENT_STATES))
                             .values(values))
        self.log.info("pilot %s runs job %d", pilotRef, int(jobID))

    def _jobsForPilots(self, conn: Connection, pilotIDs: Iterable[int]) -> dict[int, list[int]]:
        jp = self.jobToPilotMapping
        jobs: dict[int, list[int]] = {}
        rows = conn.execute(select(jp.c.PilotID, jp.c.JobID).where(jp.c.PilotID.in_(list(pilotIDs)))
                            .order_by(jp.c.StartTime, jp.c.JobID))
        for pilotID, jobID in rows:
            jobs.setdefault(pilotID, []).append(jobID)
        return jobs

    def getJobsForPilot(self, pilotID: int | Sequence[int]) -> dict[int, list[int]]:
        """{PilotID: [JobIDs it ran]} (pilots that ran no job are left out)."""
        with self.connection("getJobsForPilot") as conn:
            return self._jobsForPilots(conn, [pilotID] if isinstance(pilotID, int) else pilotID)

    def getPilotsForJobID(self, jobID: int) -> list[int]:
        """PilotIDs of the pilots that ran (or run) the job, in the order they started it."""
        jp = self.jobToPilotMapping
        with self.connection("getPilotsForJobID") as conn:
            return list(conn.scalars(select(jp.c.PilotID).where(jp.c.JobID == int(jobID))
                                     .order_by(jp.c.StartTime, jp.c.PilotID)))

    # -- output ----------------------------------------------------------------------------------------------
    def storePilotOutput(self, pilotRef: str, output: str, error: str, maxChars: int = MAX_OUTPUT_CHARS) -> None:
        """Store (or replace) the pilot's stdout and stderr, keeping the last ``maxChars`` characters of each."""
        limit = min(int(maxChars), MAX_OUTPUT_CHARS)
        with self.transaction("storePilotOutput") as conn:
            pilotID = self._pilotID(conn, pilotRef)
            conn.execute(self.upsert(self.pilotOutput, {"PilotID": pilotID, "StdOutput": _keepTail(output, limit),
                                                        "StdError": _keepTail(error, limit)},
                                     ["StdOutput", "StdError"]))

    def getPilotOutput(self, pilotRef: str) -> dict[str, str]:
        """{'StdOut', 'StdErr'} stored for the pilot; PilotNotFound for an unknown pilot, NotFound if none stored."""
        po = self.pilotOutput
        with self.connection("getPilotOutput") as conn:
            pilotID = self._pilotID(conn, pilotRef)
            row = conn.execute(select(po.c.StdOutput, po.c.StdError).where(po.c.PilotID == pilotID)).first()
        if row is None:
            raise NotFound(f"no output stored for pilot {pilotRef} (it is stored when the pilot has ended)")
        return {"StdOut": row.StdOutput, "StdErr": row.StdError}

    # -- streamed log lines ------------------------------------------------------------------------------------
    def addPilotLogs(self, stamp: str, lines: Sequence[str], vo: str = "") -> int:
        """Append lines to the log of a pilot stamp (registered or not); the sequence number of the last one."""
        if not stamp:
            raise InvalidArgument("pilot log lines need the pilot stamp")
        lines = [line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + TRUNCATED for line in lines]
        streams = self.pilotLogStreams
        now = utcnow()
        with self.transaction("addPilotLogs") as conn:
            # The UPDATE locks the stream row until commit: batches of one stamp get their numbers in turn.
            bump = (update(streams).where(streams.c.PilotStamp == stamp)
                    .values(LastSequence=streams.c.LastSequence + len(lines), LastUpdateTime=now))
            if conn.execute(bump).rowcount == 0:
                created = conn.execute(self.insertIgnore(streams).values(
                    PilotStamp=stamp, VO=vo, LastSequence=len(lines), Finalised=False, FirstTime=now,
                    LastUpdateTime=now)).rowcount
                if created == 0:  # another batch created the stream first
                    conn.execute(bump)
            last = int(conn.scalar(select(streams.c.LastSequence).where(streams.c.PilotStamp == stamp)))
            if lines:
                first = last - len(lines) + 1
                conn.execute(insert(self.pilotLogs), [{"PilotStamp": stamp, "Sequence": first + i, "LineTime": now,
                                                       "Line": line} for i, line in enumerate(lines)])
        return last

    def getPilotLogs(self, stamp: str, sinceSequence: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """[{Sequence, Time, Line}] of the stamp's lines after ``sinceSequence``, in order (``limit`` lines at most)."""
        logs = self.pilotLogs
        query = (select(logs.c.Sequence, logs.c.LineTime.label("Time"), logs.c.Line)
                 .where(logs.c.PilotStamp == stamp, logs.c.Sequence > int(sinceSequence)).order_by(logs.c.Sequence))
        if limit:
            query = query.limit(int(limit))
        with self.connection("getPilotLogs") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def getPilotLogStream(self, stamp: str) -> dict[str, Any] | None:
        """{PilotStamp, VO, LastSequence, Finalised, FirstTime, LastUpdateTime} of a stamp's log; None if it never logged."""
        streams = self.pilotLogStreams
        with self.connection("getPilotLogStream") as conn:
            row = conn.execute(select(streams).where(streams.c.PilotStamp == stamp)).mappings().first()
        return dict(row) if row else None

    def finalisePilotLogs(self, stamp: str, vo: str = "") -> None:
        """Mark the stamp's log as complete: the pilot says it will send no more lines."""
        streams = self.pilotLogStreams
        now = utcnow()
        with self.transaction("finalisePilotLogs") as conn:
            mark = update(streams).where(streams.c.PilotStamp == stamp).values(Finalised=True, LastUpdateTime=now)
            if conn.execute(mark).rowcount == 0 and conn.execute(self.insertIgnore(streams).values(
                    PilotStamp=stamp, VO=vo, LastSequence=0, Finalised=True, FirstTime=now,
                    LastUpdateTime=now)).rowcount == 0:
                conn.execute(mark)

    # -- cleaning ----------------------------------------------------------------------------------------------
    def deletePilots(self, pilotIDs: int | Iterable[int]) -> list[int]:
        """Delete pilots with their job mapping, output and log lines; the PilotIDs deleted."""
        ids = sorted({int(i) for i in ([pilotIDs] if isinstance(pilotIDs, int) else pilotIDs)})
        if not ids:
            return []
        pa = self.pilotAgents
        with self.transaction("deletePilots") as conn:
            rows = conn.execute(select(pa.c.PilotID, pa.c.PilotStamp).where(pa.c.PilotID.in_(ids))).all()
            found = [row.PilotID for row in rows]
            stamps = [row.PilotStamp for row in rows if row.PilotStamp]
            for table in (self.pilotOutput, self.jobToPilotMapping):  # the FKs cascade; do not rely on it
                conn.execute(delete(table).where(table.c.PilotID.in_(found)))
            conn.execute(delete(pa).where(pa.c.PilotID.in_(found)))
            self._deleteLogs(conn, stamps)
        if found:
            self.log.info("deleted %d pilot(s)", len(found))
        return found

    def deletePilot(self, pilotRef: str) -> list[int]:
        """Delete one pilot given its reference."""
        with self.connection("deletePilot") as conn:
            pilotID = self._pilotID(conn, pilotRef)
        return self.deletePilots([pilotID])

    def _deleteLogs(self, conn: Connection, stamps: Sequence[str]) -> None:
        if stamps:
            conn.execute(delete(self.pilotLogs).where(self.pilotLogs.c.PilotStamp.in_(stamps)))
            conn.execute(delete(self.pilotLogStreams).where(self.pilotLogStreams.c.PilotStamp.in_(stamps)))

    def clearPilots(self, interval: int = 30, aborted_interval: int = 7) -> list[int]:
        """Delete pilots submitted over ``interval`` days ago (Aborted: ``aborted_interval``) and stale orphan logs."""
        pa, streams = self.pilotAgents, self.pilotLogStreams
        now = utcnow()
        old = or_(pa.c.SubmissionTime < now - timedelta(days=interval),
                  and_(pa.c.Status == ABORTED, pa.c.SubmissionTime < now - timedelta(days=aborted_interval)))
        with self.connection("clearPilots") as conn:
            ids = list(conn.scalars(select(pa.c.PilotID).where(old)))
        deleted = self.deletePilots(ids)
        with self.transaction("clearPilots") as conn:
            orphans = list(conn.scalars(
                select(streams.c.PilotStamp).where(streams.c.LastUpdateTime < now - timedelta(days=interval),
                                                   not_(streams.c.PilotStamp.in_(select(pa.c.PilotStamp))))))
            self._deleteLogs(conn, orphans)
        if orphans:
            self.log.info("deleted the logs of %d unregistered pilot stamp(s)", len(orphans))
        return deleted

    # == for the WMS agents (StalledJobAgent, PilotStatusAgent, JobCleaningAgent) ===================================
    _JOB_PILOT_COLUMNS = ("PilotID", "PilotJobReference", "Status", "LastUpdateTime")

    def _jobPilotRows(self, *conditions: ColumnElement[bool], limit: int | None = None) -> list[dict[str, Any]]:
        pa, jp = self.pilotAgents, self.jobToPilotMapping
        query = (select(jp.c.JobID, jp.c.StartTime, *(pa.c[name] for name in self._JOB_PILOT_COLUMNS))
                 .join(pa, pa.c.PilotID == jp.c.PilotID).where(*conditions)
                 .order_by(jp.c.JobID, jp.c.StartTime, jp.c.PilotID))
        if limit is not None:
            query = query.limit(limit)
        with self.connection("jobPilots") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def getPilotsOfJobs(self, jobIDs: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """{JobID: [{JobID, StartTime, PilotID, PilotJobReference, Status, LastUpdateTime}]}, earliest start first."""
        ids = sorted({int(i) for i in jobIDs})
        result: dict[int, list[dict[str, Any]]] = {}
        if ids:
            for row in self._jobPilotRows(self.jobToPilotMapping.c.JobID.in_(ids)):
                result.setdefault(row["JobID"], []).append(row)
        return result

    def getJobsOfEndedPilots(self, endedAfter: datetime, endedBefore: datetime, limit: int | None = None
                             ) -> list[dict[str, Any]]:
        """[{JobID, StartTime, PilotID, ...}] of the pilots in a final status last updated in (endedAfter, endedBefore]."""
        pa = self.pilotAgents
        return self._jobPilotRows(pa.c.Status.in_(PILOT_FINAL_STATES), pa.c.LastUpdateTime > endedAfter,
                                  pa.c.LastUpdateTime <= endedBefore, limit=limit)

    def abortPilotsNotUpdatedSince(self, pilotRefs: Iterable[str], before: datetime, reason: str) -> list[str]:
        """Set Aborted the pilots among ``pilotRefs`` still in a transient status and not updated since ``before``.

        The references changed; pilots updated meanwhile, or held by another transaction, are left alone.
        """
        refs = sorted(set(pilotRefs))
        if not refs:
            return []
        pa = self.pilotAgents
        with self.transaction("abortPilotsNotUpdatedSince") as conn:
            rows = conn.execute(self.selectForUpdateSkipLocked(
                select(pa.c.PilotID, pa.c.PilotJobReference)
                .where(pa.c.PilotJobReference.in_(refs), pa.c.Status.in_(PILOT_TRANSIENT_STATES),
                       pa.c.LastUpdateTime < before).order_by(pa.c.PilotID))).all()
            if rows:
                conn.execute(update(pa).where(pa.c.PilotID.in_([row.PilotID for row in rows]))
                             .values(Status=ABORTED, StatusReason=reason[:255], LastUpdateTime=utcnow()))
        return [row.PilotJobReference for row in rows]

    def deleteJobMappings(self, jobIDs: Iterable[int]) -> int:
        """Forget which pilots ran these jobs (the jobs are being removed); how many mappings were deleted."""
        ids = sorted({int(i) for i in jobIDs})
        if not ids:
            return 0
        with self.transaction("deleteJobMappings") as conn:
            return conn.execute(delete(self.jobToPilotMapping)
                                .where(self.jobToPilotMapping.c.JobID.in_(ids))).rowcount


__all__ = ["PilotAgentsDB", "PilotNotFound", "toUTC"]
