"""JobDB: jobs, their JDLs, attributes, parameters, input data and heartbeats.

Status changes do not go through ``setJobAttributes``: they are applied by
``dirac.WorkloadManagementSystem.Logic.JobState`` through ``transitionJobs``, which locks the
rows and updates each one only if it still has the status the decision was based on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from DIRACCommon.WorkloadManagementSystem.DB.JobDBUtils import extractJDL
from sqlalchemy import (
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
    Text,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from dirac.Core.Base.DB import DB, LongText, UTCDateTime, utcnow
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound

DEFAULT_MAX_RESCHEDULING = 3
DATE_ATTRIBUTES = ("SubmissionTime", "RescheduleTime", "LastUpdateTime", "StartExecTime", "HeartBeatTime",
                   "EndExecTime")

#: Called with {JobID: row as dict} of the locked jobs, returns {JobID: values to set} (omit a job to skip it).
TransitionPlan = Callable[[dict[int, dict[str, Any]]], dict[int, dict[str, Any]]]


def _cascade() -> ForeignKey:
    return ForeignKey("Jobs.JobID", ondelete="CASCADE")


class JobDB(DB):
    """The jobs of the WMS and everything recorded about each of them."""

    dbName = "WorkloadManagement/JobDB"
    metadata = MetaData()

    jobs = Table(
        "Jobs", metadata,
        Column("JobID", Integer, primary_key=True, autoincrement=True),
        Column("JobType", String(32), nullable=False, default="User"),
        Column("JobGroup", String(32), nullable=False, default="00000000"),
        Column("Site", String(100), nullable=False, default="ANY"),
        Column("JobName", String(128), nullable=False, default="Unknown"),
        Column("Owner", String(64), nullable=False, default="Unknown"),
        Column("OwnerGroup", String(128), nullable=False, default="Unknown"),
        Column("VO", String(32), nullable=False, default=""),
        *(Column(name, UTCDateTime) for name in DATE_ATTRIBUTES),
        Column("Status", String(32), nullable=False, default="Received"),
        Column("MinorStatus", String(128), nullable=False, default=""),
        Column("ApplicationStatus", String(255), nullable=False, default="Unknown"),
        Column("UserPriority", Integer, nullable=False, default=0),
        Column("RescheduleCounter", Integer, nullable=False, default=0),
        Column("VerifiedFlag", Boolean, nullable=False, default=False),
        Column("AccountedFlag", Boolean, nullable=False, default=False),
        Index("ix_Jobs_Status_Site", "Status", "Site"),
        Index("ix_Jobs_Owner", "Owner"),
        Index("ix_Jobs_OwnerGroup", "OwnerGroup"),
        Index("ix_Jobs_JobGroup", "JobGroup"),
        Index("ix_Jobs_LastUpdateTime", "LastUpdateTime"),
        Index("ix_Jobs_HeartBeatTime", "HeartBeatTime"),
        sqlite_autoincrement=True,  # a JobID is never given twice, even after the newest job is removed
    )
    jobJDLs = Table(
        "JobJDLs", metadata,
        Column("JobID", Integer, _cascade(), primary_key=True),
        Column("JDL", LongText, nullable=False),
        Column("OriginalJDL", LongText, nullable=False),
    )
    jobParameters = Table(
        "JobParameters", metadata,
        Column("JobID", Integer, _cascade(), primary_key=True),
        Column("Name", String(100), primary_key=True),
        Column("Value", LongText, nullable=False),
    )
    atticJobParameters = Table(
        "AtticJobParameters", metadata,
        Column("JobID", Integer, _cascade(), primary_key=True),
        Column("Name", String(100), primary_key=True),
        Column("RescheduleCycle", Integer, primary_key=True),
        Column("Value", LongText, nullable=False),
    )
    inputData = Table(
        "InputData", metadata,
        Column("JobID", Integer, _cascade(), primary_key=True),
        Column("LFN", String(255), primary_key=True),
        Column("Status", String(32), nullable=False, default="AprioriGood"),
    )
    heartBeatLoggingInfo = Table(
        "HeartBeatLoggingInfo", metadata,
        Column("HeartBeatID", Integer, primary_key=True, autoincrement=True),
        Column("JobID", Integer, _cascade(), nullable=False, index=True),
        Column("Name", String(100), nullable=False),
        Column("Value", Text, nullable=False),
        Column("HeartBeatTime", UTCDateTime, nullable=False),
    )
    jobCommands = Table(
        "JobCommands", metadata,
        Column("CommandID", Integer, primary_key=True, autoincrement=True),
        Column("JobID", Integer, _cascade(), nullable=False, index=True),
        Column("Command", String(100), nullable=False),
        Column("Arguments", String(255), nullable=False, default=""),
        Column("Status", String(64), nullable=False, default="Received"),
        Column("ReceptionTime", UTCDateTime, nullable=False),
        Column("ExecutionTime", UTCDateTime),
    )

    ATTRIBUTES = tuple(jobs.c.keys())

    def __init__(self, url: str | None = None, *, createTables: bool = True):
        super().__init__(url, createTables=createTables)
        self._matchCache: dict[Table, tuple[Any, Any, Any]] = {}

    @property
    def maxRescheduling(self) -> int:
        """How many times a job may be rescheduled (``<JobDB section>/MaxRescheduling``, default 3)."""
        from dirac.Core.Config import gConfig

        return gConfig.getValue(f"{self.section}/MaxRescheduling", DEFAULT_MAX_RESCHEDULING)

    # -- helpers ---------------------------------------------------------------------------------------
    def _checkAttributes(self, names: Iterable[str]) -> list[str]:
        names = list(names)
        unknown = [name for name in names if name not in self.ATTRIBUTES]
        if unknown:
            raise InvalidArgument(f"unknown job attribute(s) {', '.join(unknown)} (known: {', '.join(self.ATTRIBUTES)})")
        return names

    def _conditions(self, condDict: Mapping[str, Any] | None, older: datetime | None = None,
                    newer: datetime | None = None, timeStamp: str = "LastUpdateTime") -> list[ColumnElement[bool]]:
        """WHERE clauses: attribute equal to a value or in a list, and timeStamp before/after dates."""
        clauses: list[ColumnElement[bool]] = []
        for name, value in (condDict or {}).items():
            column = self.jobs.c[self._checkAttributes([name])[0]]
            if isinstance(value, (list, tuple, set)):
                clauses.append(column.in_(list(value)))
            else:
                clauses.append(column == value)
        if older or newer:
            stamp = self.jobs.c[self._checkAttributes([timeStamp])[0]]
            if older:
                clauses.append(stamp < older)
            if newer:
                clauses.append(stamp > newer)
        return clauses

    # -- insertion ----------------------------------------------------------------------------------------
    def insertNewJobs(self, jobs: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert jobs ({'attributes', 'jdl', 'originalJDL', 'inputData'}) in ONE transaction; their JobIDs."""
        now = utcnow()
        jobIDs = []
        with self.transaction("insertNewJobs") as conn:
            jdlRows, lfnRows = [], []
            for job in jobs:
                attributes = dict(job["attributes"])
                self._checkAttributes(attributes)
                attributes.setdefault("SubmissionTime", now)
                attributes.setdefault("LastUpdateTime", now)
                jobID = conn.execute(insert(self.jobs).values(attributes)).inserted_primary_key[0]
                classAd = ClassAd(job["jdl"])
                classAd.insertAttributeInt("JobID", jobID)
                jdlRows.append({"JobID": jobID, "JDL": classAd.asJDL(),
                                "OriginalJDL": job.get("originalJDL", job["jdl"])})
                lfnRows += [{"JobID": jobID, "LFN": lfn} for lfn in sorted(set(job.get("inputData") or []))]
                jobIDs.append(jobID)
            if jdlRows:
                conn.execute(insert(self.jobJDLs), jdlRows)
            if lfnRows:
                conn.execute(insert(self.inputData), lfnRows)
        self.log.info("inserted %d job(s): %s", len(jobIDs), _idRange(jobIDs))
        return jobIDs

    def insertNewJobIntoDB(self, attributes: Mapping[str, Any], jdl: str, originalJDL: str | None = None,
                           inputData: Sequence[str] = ()) -> int:
        """Insert one job; its JobID."""
        return self.insertNewJobs([{"attributes": attributes, "jdl": jdl, "originalJDL": originalJDL or jdl,
                                    "inputData": inputData}])[0]

    # -- attributes -----------------------------------------------------------------------------------------
    def getJobsAttributes(self, jobIDs: Iterable[int], attrList: Sequence[str] | None = None
                          ) -> dict[int, dict[str, Any]]:
        """{JobID: {attribute: value}} of the jobs that exist among ``jobIDs``."""
        names = self._checkAttributes(attrList) if attrList else list(self.ATTRIBUTES)
        columns = [self.jobs.c[name] for name in dict.fromkeys(["JobID", *names])]
        with self.connection("getJobsAttributes") as conn:
            rows = conn.execute(select(*columns).where(self.jobs.c.JobID.in_(list(jobIDs)))).mappings()
            return {row["JobID"]: {name: row[name] for name in names} for row in rows}

    def getJobAttributes(self, jobID: int, attrList: Sequence[str] | None = None) -> dict[str, Any]:
        """{attribute: value} of one job (NotFound if it does not exist)."""
        result = self.getJobsAttributes([jobID], attrList)
        if jobID not in result:
            raise NotFound(f"Job {jobID} not found")
        return result[jobID]

    def getJobAttribute(self, jobID: int, name: str) -> Any:
        """One attribute of one job."""
        return self.getJobAttributes(jobID, [name])[name]

    def setJobAttributes(self, jobIDs: int | Iterable[int], attributes: Mapping[str, Any],
                         updateTime: bool = True) -> int:
        """Set attributes (never Status: see Logic.JobState) of jobs; how many jobs were updated."""
        ids = [jobIDs] if isinstance(jobIDs, int) else list(jobIDs)
        self._checkAttributes(attributes)
        if "Status" in attributes or "JobID" in attributes:
            raise InvalidArgument(f"jobs {_idRange(ids)}: Status and JobID cannot be set as attributes "
                                  "(status changes go through the job state machine)")
        values = dict(attributes)
        if updateTime:
            values.setdefault("LastUpdateTime", utcnow())
        with self.transaction("setJobAttributes") as conn:
            return conn.execute(update(self.jobs).where(self.jobs.c.JobID.in_(ids)).values(values)).rowcount

    def transitionJobs(self, jobIDs: Iterable[int], plan: TransitionPlan
                       ) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
        """Lock the jobs, ask ``plan`` what to set, apply it only where Status is unchanged: {JobID: (old, new)}.

        When the plan raises RescheduleCounter, the job's parameters move to AtticJobParameters under
        the old counter (a rescheduled job starts with no parameters). Missing jobs raise NotFound.
        """
        ids = sorted(set(jobIDs))
        done: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        with self.transaction("transitionJobs") as conn:
            query = select(self.jobs).where(self.jobs.c.JobID.in_(ids)).order_by(self.jobs.c.JobID)
            if self.isMySQL:
                query = query.with_for_update()
            current = {row["JobID"]: dict(row) for row in conn.execute(query).mappings()}
            missing = [jobID for jobID in ids if jobID not in current]
            if missing:
                raise NotFound(f"Job(s) {', '.join(map(str, missing))} not found")
            groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[int]] = {}
            for jobID, values in plan(current).items():
                old = current[jobID]
                groups.setdefault((old["Status"], tuple(sorted(values.items()))), []).append(jobID)
                if values.get("RescheduleCounter", old["RescheduleCounter"]) > old["RescheduleCounter"]:
                    self._archiveParameters(conn, jobID, old["RescheduleCounter"])
                done[jobID] = (old, values)
            for (status, values), group in groups.items():  # one UPDATE per identical change
                changed = conn.execute(update(self.jobs).where(self.jobs.c.JobID.in_(group),
                                                               self.jobs.c.Status == status)
                                       .values(dict(values))).rowcount
                if changed != len(group):  # cannot happen while the rows are locked; never write blindly anyway
                    raise NotFound(f"Job(s) {_idRange(group)} changed status under our feet (expected {status})")
        return done

    def setWaitingJobMatched(self, jobID: int, values: Mapping[str, Any], conn: Connection | None = None
                             ) -> dict[str, Any] | None:
        """The Matcher's one transaction on a claimed job: ``values`` (Status Matched ...) set if it is still Waiting.

        Also drops the commands left over from an earlier attempt. Returns {ApplicationStatus, JDL}
        (the processed JDL), or None when the job is no longer Waiting (nothing is changed then).
        ``conn``: a transaction of another database on the same server to do it in (DB.joinTransaction).
        """
        with self.joinTransaction(conn, "setWaitingJobMatched") as (conn, tables):
            setMatched, readBack, dropCommands = self._matchStatements(tables)
            if conn.execute(setMatched, {**values, "b_jobID": jobID, "b_status": JobStatus.WAITING}).rowcount != 1:
                return None
            row = conn.execute(readBack, {"b_jobID": jobID}).one()
            if row.Pending:  # rare: commands sent to an earlier attempt of the job
                conn.execute(dropCommands, {"b_jobID": jobID, "b_sent": values.get("LastUpdateTime") or utcnow()})
        if row.JDL is None:
            raise NotFound(f"Job {jobID} has no JDL (unknown job)")
        return {"ApplicationStatus": row.ApplicationStatus, "JDL": extractJDL(row.JDL)}

    def _matchStatements(self, tables: Callable[[Table], Table]) -> tuple[Any, Any, Any]:
        """setWaitingJobMatched's statements for these tables, built once (it runs at every match).

        The UPDATE has no VALUES: its SET clause is the columns given when it is executed.
        """
        jobs, jdls, commands = tables(self.jobs), tables(self.jobJDLs), tables(self.jobCommands)
        statements = self._matchCache.get(jobs)
        if statements is None:
            jobID = bindparam("b_jobID")
            pending = exists().where(commands.c.JobID == jobID, commands.c.Status == "Received")
            statements = (
                update(jobs).where(jobs.c.JobID == jobID, jobs.c.Status == bindparam("b_status")),
                select(jobs.c.ApplicationStatus, jdls.c.JDL, pending.label("Pending"))
                .select_from(jobs.outerjoin(jdls, jdls.c.JobID == jobs.c.JobID)).where(jobs.c.JobID == jobID),
                update(commands).where(commands.c.JobID == jobID, commands.c.Status == "Received")
                .values(Status="Sent", ExecutionTime=bindparam("b_sent")),
            )
            self._matchCache[jobs] = statements
        return statements

    def _archiveParameters(self, conn: Connection, jobID: int, cycle: int) -> None:
        params = self.jobParameters
        conn.execute(insert(self.atticJobParameters).from_select(
            ["JobID", "Name", "RescheduleCycle", "Value"],
            select(params.c.JobID, params.c.Name, literal(cycle, Integer), params.c.Value)
            .where(params.c.JobID == jobID)))
        conn.execute(delete(params).where(params.c.JobID == jobID))

    # -- JDL --------------------------------------------------------------------------------------------------
    def getJobJDL(self, jobID: int, original: bool = False) -> str:
        """The JDL of a job as stored at submission time (``original``) or as processed."""
        column = self.jobJDLs.c.OriginalJDL if original else self.jobJDLs.c.JDL
        with self.connection("getJobJDL") as conn:
            jdl = conn.scalar(select(column).where(self.jobJDLs.c.JobID == jobID))
        if jdl is None:
            raise NotFound(f"Job {jobID} has no JDL (unknown job)")
        return extractJDL(jdl)

    def getJobJDLs(self, jobIDs: Iterable[int]) -> dict[int, str]:
        """{JobID: processed JDL} for the existing jobs among ``jobIDs``."""
        with self.connection("getJobJDLs") as conn:
            rows = conn.execute(select(self.jobJDLs.c.JobID, self.jobJDLs.c.JDL)
                                .where(self.jobJDLs.c.JobID.in_(list(jobIDs))))
            return {jobID: extractJDL(jdl) for jobID, jdl in rows}

    def setJobJDL(self, jobID: int, jdl: str, original: bool = False) -> None:
        """Replace the processed (or original) JDL of a job."""
        column = "OriginalJDL" if original else "JDL"
        with self.transaction("setJobJDL") as conn:
            if conn.execute(update(self.jobJDLs).where(self.jobJDLs.c.JobID == jobID)
                            .values({column: jdl})).rowcount != 1:
                raise NotFound(f"Job {jobID} not found: its JDL cannot be set")

    def getInputData(self, jobID: int) -> list[str]:
        """The LFNs the job reads."""
        with self.connection("getInputData") as conn:
            return list(conn.scalars(select(self.inputData.c.LFN).where(self.inputData.c.JobID == jobID)
                                     .order_by(self.inputData.c.LFN)))

    # -- parameters ---------------------------------------------------------------------------------------------
    def setJobParameters(self, jobID: int, parameters: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> None:
        """Set (insert or replace) named parameters of a job."""
        items = parameters.items() if isinstance(parameters, Mapping) else parameters
        values = [{"JobID": jobID, "Name": str(name), "Value": str(value)} for name, value in items]
        if not values:
            return
        with self.transaction("setJobParameters") as conn:
            if conn.scalar(select(self.jobs.c.JobID).where(self.jobs.c.JobID == jobID)) is None:
                raise NotFound(f"Job {jobID} not found: its parameters cannot be set")
            conn.execute(self.upsert(self.jobParameters, values, ["Value"]))

    def setJobParameter(self, jobID: int, name: str, value: Any) -> None:
        """Set one parameter of a job."""
        self.setJobParameters(jobID, {name: value})

    def getJobParameters(self, jobIDs: int | Iterable[int], paramList: Sequence[str] | None = None
                         ) -> dict[int, dict[str, str]]:
        """{JobID: {name: value}} for the jobs (only the names in ``paramList`` when given)."""
        ids = [jobIDs] if isinstance(jobIDs, int) else list(jobIDs)
        query = select(self.jobParameters).where(self.jobParameters.c.JobID.in_(ids))
        if paramList:
            query = query.where(self.jobParameters.c.Name.in_(list(paramList)))
        result: dict[int, dict[str, str]] = {}
        with self.connection("getJobParameters") as conn:
            for row in conn.execute(query.order_by(self.jobParameters.c.Name)).mappings():
                result.setdefault(row["JobID"], {})[row["Name"]] = row["Value"]
        return result

    def getAtticJobParameters(self, jobID: int, rescheduleCycle: int | None = None) -> dict[int, dict[str, str]]:
        """{RescheduleCycle: {name: value}}: the parameters a job had before each rescheduling."""
        attic = self.atticJobParameters
        query = select(attic).where(attic.c.JobID == jobID)
        if rescheduleCycle is not None:
            query = query.where(attic.c.RescheduleCycle == rescheduleCycle)
        result: dict[int, dict[str, str]] = {}
        with self.connection("getAtticJobParameters") as conn:
            for row in conn.execute(query).mappings():
                result.setdefault(row["RescheduleCycle"], {})[row["Name"]] = row["Value"]
        return result

    # -- heartbeats ------------------------------------------------------------------------------------------------
    def setHeartBeatData(self, jobID: int, dynamicData: Mapping[str, Any], date: datetime | None = None) -> None:
        """Record a heartbeat (e.g. CPUConsumed, MemoryUsed, LoadAverage) and the job's HeartBeatTime."""
        now = date or utcnow()
        with self.transaction("setHeartBeatData") as conn:
            if conn.execute(update(self.jobs).where(self.jobs.c.JobID == jobID)
                            .values(HeartBeatTime=now)).rowcount != 1:
                raise NotFound(f"Job {jobID} not found: heartbeat not recorded")
            if dynamicData:
                conn.execute(insert(self.heartBeatLoggingInfo), [
                    {"JobID": jobID, "Name": str(name), "Value": str(value), "HeartBeatTime": now}
                    for name, value in dynamicData.items()])

    def getHeartBeatData(self, jobID: int) -> list[tuple[str, str, datetime]]:
        """[(name, value, time)] of the job's heartbeats, oldest first."""
        hb = self.heartBeatLoggingInfo
        with self.connection("getHeartBeatData") as conn:
            rows = conn.execute(select(hb.c.Name, hb.c.Value, hb.c.HeartBeatTime).where(hb.c.JobID == jobID)
                                .order_by(hb.c.HeartBeatID))
            return [(name, value, time) for name, value, time in rows]

    # -- commands to running jobs ----------------------------------------------------------------------------------------
    def setJobCommand(self, jobID: int, command: str, arguments: str = "") -> None:
        """Queue a command (e.g. 'Kill') for the job's wrapper, delivered with its next heartbeat."""
        with self.transaction("setJobCommand") as conn:
            conn.execute(insert(self.jobCommands).values(JobID=jobID, Command=command, Arguments=arguments,
                                                         ReceptionTime=utcnow()))

    def popJobCommands(self, jobID: int) -> dict[str, str]:
        """{command: arguments} of the job's undelivered commands, now marked Sent (each is delivered once)."""
        jc = self.jobCommands
        with self.transaction("popJobCommands") as conn:
            rows = conn.execute(self.selectForUpdateSkipLocked(
                select(jc.c.CommandID, jc.c.Command, jc.c.Arguments)
                .where(jc.c.JobID == jobID, jc.c.Status == "Received").order_by(jc.c.CommandID))).all()
            if rows:
                conn.execute(update(jc).where(jc.c.CommandID.in_([row.CommandID for row in rows]))
                             .values(Status="Sent", ExecutionTime=utcnow()))
        return {row.Command: row.Arguments for row in rows}

    # -- selections --------------------------------------------------------------------------------------------------
    def selectJobs(self, condDict: Mapping[str, Any] | None = None, older: datetime | None = None,
                   newer: datetime | None = None, timeStamp: str = "LastUpdateTime",
                   orderAttribute: str | None = None, limit: int | None = None, offset: int = 0) -> list[int]:
        """JobIDs matching attribute conditions and a time window, ordered ('Attr' or 'Attr:DESC') and paged."""
        query = select(self.jobs.c.JobID).where(*self._conditions(condDict, older, newer, timeStamp))
        if orderAttribute:
            name, _, direction = orderAttribute.partition(":")
            column = self.jobs.c[self._checkAttributes([name])[0]]
            if direction.upper() not in ("", "ASC", "DESC"):
                raise InvalidArgument(f"order direction {direction!r} is neither ASC nor DESC")
            query = query.order_by(column.desc() if direction.upper() == "DESC" else column.asc())
        query = query.order_by(self.jobs.c.JobID)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self.connection("selectJobs") as conn:
            return list(conn.scalars(query))

    def countJobs(self, condDict: Mapping[str, Any] | None = None, older: datetime | None = None,
                  newer: datetime | None = None, timeStamp: str = "LastUpdateTime") -> int:
        """How many jobs match (the total behind a paged selectJobs)."""
        query = select(func.count()).select_from(self.jobs).where(*self._conditions(condDict, older, newer,
                                                                                      timeStamp))
        with self.connection("countJobs") as conn:
            return int(conn.scalar(query) or 0)

    def getCounters(self, attrList: Sequence[str], condDict: Mapping[str, Any] | None = None,
                    older: datetime | None = None, newer: datetime | None = None,
                    timeStamp: str = "LastUpdateTime") -> list[tuple[dict[str, Any], int]]:
        """[({attribute: value}, count)]: how many jobs per combination of the attributes in ``attrList``."""
        columns = [self.jobs.c[name] for name in self._checkAttributes(attrList)]
        query = (select(*columns, func.count()).where(*self._conditions(condDict, older, newer, timeStamp))
                 .group_by(*columns).order_by(*columns))
        with self.connection("getCounters") as conn:
            return [({name: row[i] for i, name in enumerate(attrList)}, int(row[-1])) for row in conn.execute(query)]

    def getDistinctJobAttributes(self, attribute: str, condDict: Mapping[str, Any] | None = None) -> list[Any]:
        """The distinct values of one attribute among the matching jobs."""
        column = self.jobs.c[self._checkAttributes([attribute])[0]]
        with self.connection("getDistinctJobAttributes") as conn:
            return list(conn.scalars(select(column).distinct().where(*self._conditions(condDict)).order_by(column)))

    # -- removal -------------------------------------------------------------------------------------------------------
    def removeJobFromDB(self, jobIDs: int | Iterable[int]) -> int:
        """Delete jobs and everything recorded about them; how many jobs were removed."""
        ids = [jobIDs] if isinstance(jobIDs, int) else list(jobIDs)
        with self.transaction("removeJobFromDB") as conn:
            for table in (self.jobCommands, self.heartBeatLoggingInfo, self.inputData, self.atticJobParameters, self.jobParameters,
                          self.jobJDLs):
                conn.execute(delete(table).where(table.c.JobID.in_(ids)))
            removed = conn.execute(delete(self.jobs).where(self.jobs.c.JobID.in_(ids))).rowcount
        self.log.info("removed %d job(s): %s", removed, _idRange(ids))
        return removed

    def jobsExist(self, jobIDs: Iterable[int]) -> set[int]:
        """The JobIDs among ``jobIDs`` that exist."""
        with self.connection("jobsExist") as conn:
            return set(conn.scalars(select(self.jobs.c.JobID).where(self.jobs.c.JobID.in_(list(jobIDs)))))

    # == for the WMS agents (StalledJobAgent, JobCleaningAgent) ========================================================
    def selectJobsWithoutSignOfLife(self, statuses: Sequence[str], before: datetime, limit: int | None = None
                                    ) -> list[int]:
        """JobIDs in ``statuses`` whose HeartBeatTime, LastUpdateTime and StartExecTime are all unset or before ``before``."""
        jobs = self.jobs
        query = (select(jobs.c.JobID).where(jobs.c.Status.in_(list(statuses)),
                                            *((jobs.c[name].is_(None) | (jobs.c[name] < before))
                                              for name in ("HeartBeatTime", "LastUpdateTime", "StartExecTime")))
                 .order_by(jobs.c.JobID))
        if limit is not None:
            query = query.limit(limit)
        with self.connection("selectJobsWithoutSignOfLife") as conn:
            return list(conn.scalars(query))

    def removeJobsInStatus(self, jobIDs: Iterable[int], status: str) -> list[int]:
        """Delete the jobs among ``jobIDs`` still in ``status`` with all JobDB holds about them; the JobIDs removed.

        One transaction per job, and jobs another transaction holds are skipped: cleaners running at
        once never remove a job twice, nor deadlock on the rows of neighbouring jobs.
        """
        children = [table for table in reversed(self.metadata.sorted_tables)
                    if table is not self.jobs and "JobID" in table.c]
        removed = []
        for jobID in sorted(set(jobIDs)):
            with self._errors("removeJobsInStatus"), self.engine.connect() as conn:
                if self.isMySQL:  # record locks only, no gap locks on the neighbours' rows
                    conn.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    if conn.scalar(self.selectForUpdateSkipLocked(
                            select(self.jobs.c.JobID).where(self.jobs.c.JobID == jobID,
                                                            self.jobs.c.Status == status))) is None:
                        continue
                    for table in children:
                        conn.execute(delete(table).where(table.c.JobID == jobID))
                    conn.execute(delete(self.jobs).where(self.jobs.c.JobID == jobID))
            removed.append(jobID)
        return removed


    # == for the Optimizers agent: claims by status, bulk reads and writes of a batch ===================================
    def claimJobsForTransition(self, statuses: Mapping[str, datetime | None], limit: int, plan: TransitionPlan
                               ) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
        """Lock up to ``limit`` jobs no one else holds, then apply ``plan`` as transitionJobs does: {JobID: (old, new)}.

        ``statuses`` maps each status to claim from to a date its LastUpdateTime must be before (None:
        any); they are searched in that order. Copies running at once never claim the same job. The
        rows ``plan`` sees hold JobID, Status, MinorStatus, ApplicationStatus and LastUpdateTime.
        """
        jobs = self.jobs
        columns = [jobs.c[name] for name in ("JobID", "Status", "MinorStatus", "ApplicationStatus", "LastUpdateTime")]
        with self._errors("claimJobsForTransition"), self.engine.connect() as conn:
            if self.isMySQL:  # record locks only: claimers scanning the Status index never deadlock on gap locks
                conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                current: dict[int, dict[str, Any]] = {}
                for status, before in statuses.items():
                    if len(current) >= limit:
                        break
                    query = select(*columns).where(jobs.c.Status == status)
                    if before is not None:
                        query = query.where(jobs.c.LastUpdateTime < before)
                    # the order of the (Status, Site) index: MySQL reads and locks only the rows it returns
                    query = query.order_by(jobs.c.Site, jobs.c.JobID).limit(limit - len(current))
                    current.update((row["JobID"], dict(row))
                                   for row in conn.execute(self.selectForUpdateSkipLocked(query)).mappings())
                done: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
                groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[int]] = {}
                for jobID, values in plan(current).items():
                    groups.setdefault((current[jobID]["Status"], tuple(sorted(values.items()))), []).append(jobID)
                    done[jobID] = (current[jobID], values)
                for (status, values), group in groups.items():  # one UPDATE per identical change
                    conn.execute(update(jobs).where(jobs.c.JobID.in_(group), jobs.c.Status == status)
                                 .values(dict(values)))
        return done

    def getJobsInputData(self, jobIDs: Iterable[int]) -> dict[int, list[str]]:
        """{JobID: LFNs it reads} for the jobs among ``jobIDs`` that have input data."""
        result: dict[int, list[str]] = {}
        with self.connection("getJobsInputData") as conn:
            for jobID, lfn in conn.execute(select(self.inputData.c.JobID, self.inputData.c.LFN)
                                           .where(self.inputData.c.JobID.in_(list(jobIDs)))
                                           .order_by(self.inputData.c.JobID, self.inputData.c.LFN)):
                result.setdefault(jobID, []).append(lfn)
        return result

    def setJobJDLs(self, jdls: Mapping[int, str], perStatement: int = 500) -> int:
        """Replace the processed JDL of several jobs in one transaction; how many were replaced."""
        if not jdls:
            return 0
        table = self.jobJDLs
        items = sorted(jdls.items())
        replaced = 0
        with self.transaction("setJobJDLs") as conn:
            for start in range(0, len(items), perStatement):  # one statement per chunk, not per job
                chunk = dict(items[start:start + perStatement])
                replaced += conn.execute(update(table).where(table.c.JobID.in_(list(chunk)))
                                         .values(JDL=case(chunk, value=table.c.JobID))).rowcount
        return replaced


def _idRange(jobIDs: Sequence[int]) -> str:
    """'12' or '12..40 (29 jobs)' for log lines."""
    if not jobIDs:
        return "none"
    if len(jobIDs) == 1:
        return str(jobIDs[0])
    return f"{min(jobIDs)}..{max(jobIDs)} ({len(jobIDs)} jobs)"


__all__ = ["JobDB", "TransitionPlan"]
