"""JobLoggingDB: the status history of every job, with the source and time of each change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Index, Integer, MetaData, String, Table, delete, insert, select

from dirac.Core.Base.DB import DB, UTCDateTime, utcnow

SeqID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only


class JobLoggingDB(DB):
    """One LoggingInfo row per status, minor status or application status change."""

    dbName = "WorkloadManagement/JobLoggingDB"
    metadata = MetaData()

    loggingInfo = Table(
        "LoggingInfo", metadata,
        Column("SeqID", SeqID, primary_key=True, autoincrement=True),
        Column("JobID", Integer, nullable=False),
        Column("Status", String(32), nullable=False, default=""),
        Column("MinorStatus", String(128), nullable=False, default=""),
        Column("ApplicationStatus", String(255), nullable=False, default=""),
        Column("StatusTime", UTCDateTime, nullable=False),
        Column("Source", String(32), nullable=False, default="Unknown"),
        Index("ix_LoggingInfo_JobID_SeqID", "JobID", "SeqID"),
    )

    def addLoggingRecords(self, records: Sequence[Mapping[str, Any]], conn: Connection | None = None) -> None:
        """Insert records {JobID, Status, MinorStatus, ApplicationStatus, StatusTime, Source} in one go.

        ``conn``: a transaction of another database on the same server to write them in (DB.joinTransaction).
        """
        if not records:
            return
        now = utcnow()
        rows = [{"JobID": int(r["JobID"]), "Status": r.get("Status") or "",
                 "MinorStatus": (r.get("MinorStatus") or "")[:128],
                 "ApplicationStatus": (r.get("ApplicationStatus") or "")[:255],
                 "StatusTime": r.get("StatusTime") or now, "Source": (r.get("Source") or "Unknown")[:32]}
                for r in records]
        with self.joinTransaction(conn, "addLoggingRecords") as (conn, tables):
            conn.execute(insert(tables(self.loggingInfo)), rows)

    def addLoggingRecord(self, jobID: int | Iterable[int], status: str = "", minorStatus: str = "",
                         applicationStatus: str = "", date: datetime | None = None, source: str = "Unknown") -> None:
        """Record one change for a job (or the same change for several jobs)."""
        ids = [jobID] if isinstance(jobID, int) else list(jobID)
        self.addLoggingRecords([{"JobID": i, "Status": status, "MinorStatus": minorStatus,
                                 "ApplicationStatus": applicationStatus, "StatusTime": date, "Source": source}
                                for i in ids])

    def getJobLoggingInfo(self, jobID: int) -> list[dict[str, Any]]:
        """The job's history, oldest first: [{Status, MinorStatus, ApplicationStatus, StatusTime, Source}]."""
        li = self.loggingInfo
        query = (select(li.c.Status, li.c.MinorStatus, li.c.ApplicationStatus, li.c.StatusTime, li.c.Source)
                 .where(li.c.JobID == jobID).order_by(li.c.SeqID))
        with self.connection("getJobLoggingInfo") as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def getWMSTimeStamps(self, jobID: int) -> dict[str, datetime]:
        """{Status: first time the job entered it}."""
        stamps: dict[str, datetime] = {}
        for record in self.getJobLoggingInfo(jobID):
            if record["Status"]:
                stamps.setdefault(record["Status"], record["StatusTime"])
        return stamps

    def deleteJob(self, jobIDs: int | Iterable[int]) -> int:
        """Forget the history of jobs; how many rows were removed."""
        ids = [jobIDs] if isinstance(jobIDs, int) else list(jobIDs)
        with self.transaction("deleteJob") as conn:
            return conn.execute(delete(self.loggingInfo).where(self.loggingInfo.c.JobID.in_(ids))).rowcount
