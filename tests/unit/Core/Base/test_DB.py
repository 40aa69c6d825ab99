"""The DB base on SQLite and MariaDB: schema, transactions, dialect helpers, datetimes, errors, URLs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.pool import NullPool

from dirac.Core.Base.DB import DB, UTCDateTime, disposeEngines, utcnow
from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import ConfigurationError, DatabaseError


class ExampleDB(DB):
    """A small database shaped like the real ones."""

    dbName = "Test/ExampleDB"
    metadata = MetaData()
    jobs = Table(
        "Jobs", metadata,
        Column("JobID", Integer, primary_key=True, autoincrement=True),
        Column("Status", String(32), nullable=False, index=True),
        Column("Owner", String(64)),
        Column("LastUpdate", UTCDateTime),
    )
    parameters = Table(
        "JobParameters", metadata,
        Column("JobID", Integer, ForeignKey("Jobs.JobID"), primary_key=True),
        Column("Name", String(64), primary_key=True),
        Column("Value", String(255)),
    )
    sites = Table(
        "Sites", metadata,
        Column("SiteID", Integer, primary_key=True),
        Column("Name", String(64), nullable=False, unique=True),
        Column("Mask", String(16)),
    )


def insertJobs(db: DB, count: int, status: str = "Waiting") -> list[int]:
    with db.transaction() as conn:
        conn.execute(ExampleDB.jobs.insert(), [{"Status": status, "Owner": "alice"} for _ in range(count)])
        return list(conn.scalars(select(ExampleDB.jobs.c.JobID).order_by(ExampleDB.jobs.c.JobID)))


def test_createTables_createsAllTablesAndIsIdempotent(db_url: str) -> None:
    db = ExampleDB(db_url)
    insertJobs(db, 1)
    db.createTables()
    again = ExampleDB(db_url)
    with again.connection() as conn:
        assert set(inspect(conn).get_table_names()) == {"Jobs", "JobParameters", "Sites"}
        assert conn.scalar(select(func.count()).select_from(ExampleDB.jobs)) == 1


def test_createTables_concurrentFirstStartsInSeveralProcessesAllSucceed(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "start.py"
    script.write_text(textwrap.dedent("""
        import sys
        from sqlalchemy import Column, Integer, MetaData, String, Table
        from dirac.Core.Base.DB import DB

        class ManyTablesDB(DB):
            dbName = "Test/ManyTablesDB"
            metadata = MetaData()
            for i in range(30):
                Table(f"T{i}", metadata, Column("ID", Integer, primary_key=True), Column("Name", String(32), index=True))

        ManyTablesDB(sys.argv[1])
    """))
    processes = [subprocess.Popen([sys.executable, str(script), db_url], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, "\n".join(errors)


def test_transaction_rollsBackEverythingWhenTheBlockRaises(db_url: str) -> None:
    db = ExampleDB(db_url)
    with pytest.raises(RuntimeError, match="abort"), db.transaction() as conn:
        conn.execute(ExampleDB.jobs.insert().values(Status="Waiting"))
        raise RuntimeError("abort")
    with pytest.raises(DatabaseError), db.transaction("insertParameters") as conn:
        conn.execute(ExampleDB.jobs.insert().values(JobID=7, Status="Waiting"))
        conn.execute(ExampleDB.jobs.insert().values(JobID=7, Status="Waiting"))  # duplicate key
    with db.connection() as conn:
        assert conn.scalar(select(func.count()).select_from(ExampleDB.jobs)) == 0


def test_foreignKeysAreEnforcedOnBothBackends(db_url: str) -> None:
    db = ExampleDB(db_url)
    with pytest.raises(DatabaseError, match="setParameter"), db.transaction("setParameter") as conn:
        conn.execute(ExampleDB.parameters.insert().values(JobID=12345, Name="CPU", Value="1"))


def test_insertIgnore_skipsRowsClashingWithAKeyAndInsertsTheOthers(db_url: str) -> None:
    db = ExampleDB(db_url)
    sites = ExampleDB.sites
    with db.transaction() as conn:
        conn.execute(sites.insert().values(SiteID=1, Name="LCG.CERN.cern", Mask="Active"))
        assert conn.execute(db.insertIgnore(sites).values(SiteID=1, Name="other", Mask="Banned")).rowcount == 0
        assert conn.execute(db.insertIgnore(sites).values(SiteID=2, Name="LCG.CERN.cern", Mask="Banned")).rowcount == 0
        assert conn.execute(db.insertIgnore(sites).values(SiteID=3, Name="LCG.IN2P3.fr", Mask="Banned")).rowcount == 1
    with db.connection() as conn:
        rows = conn.execute(select(sites.c.SiteID, sites.c.Name, sites.c.Mask).order_by(sites.c.SiteID)).all()
    assert [tuple(row) for row in rows] == [(1, "LCG.CERN.cern", "Active"), (3, "LCG.IN2P3.fr", "Banned")]


def test_upsert_insertsNewRowsAndUpdatesOnlyTheGivenColumnsOfExistingOnes(db_url: str) -> None:
    db = ExampleDB(db_url)
    sites = ExampleDB.sites
    with db.transaction() as conn:
        conn.execute(db.upsert(sites, {"SiteID": 1, "Name": "LCG.CERN.cern", "Mask": "Active"}, ["Mask"]))
        conn.execute(db.upsert(sites, [{"SiteID": 1, "Name": "renamed", "Mask": "Banned"},
                                       {"SiteID": 2, "Name": "LCG.RAL.uk", "Mask": "Active"}], ["Mask"]))
        # a clash on the unique Name (not the primary key) also updates
        conn.execute(db.upsert(sites, {"SiteID": 99, "Name": "LCG.RAL.uk", "Mask": "Probing"}, ["Mask"]))
    with db.connection() as conn:
        rows = conn.execute(select(sites.c.SiteID, sites.c.Name, sites.c.Mask).order_by(sites.c.SiteID)).all()
    assert [tuple(row) for row in rows] == [(1, "LCG.CERN.cern", "Banned"), (2, "LCG.RAL.uk", "Probing")]


def test_utcDateTime_storesAnyAwareTimeAndReadsItBackAsAwareUTC(db_url: str) -> None:
    db = ExampleDB(db_url)
    paris = datetime(2024, 3, 31, 2, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    now = utcnow()
    with db.transaction() as conn:
        conn.execute(ExampleDB.jobs.insert(), [{"JobID": 1, "Status": "Done", "LastUpdate": paris},
                                               {"JobID": 2, "Status": "Done", "LastUpdate": now}])
    with db.connection() as conn:
        stored = conn.scalars(select(ExampleDB.jobs.c.LastUpdate).order_by(ExampleDB.jobs.c.JobID)).all()
        raw = conn.scalar(select(func.count()).where(ExampleDB.jobs.c.LastUpdate < datetime(2024, 3, 31, 0, 31,
                                                                                             tzinfo=UTC)))
    assert stored == [paris, now]
    assert all(value.tzinfo is UTC for value in stored)
    assert stored[0].hour == 0 and stored[0].microsecond == 123456
    assert raw == 1  # compared in UTC inside the database


def test_utcDateTime_refusesNaiveDatetimes(db_url: str) -> None:
    db = ExampleDB(db_url)
    with pytest.raises(DatabaseError, match="naive datetime"), db.transaction("setLastUpdate") as conn:
        conn.execute(ExampleDB.jobs.insert().values(Status="Done", LastUpdate=datetime(2024, 1, 1)))


def _claimByConditionalUpdate(db: ExampleDB, worker: str) -> list[int]:
    jobs = ExampleDB.jobs
    claimed = []
    while True:
        with db.connection() as conn:
            candidates = conn.scalars(select(jobs.c.JobID).where(jobs.c.Status == "Waiting").limit(5)).all()
        if not candidates:
            return claimed
        for jobID in candidates:
            with db.transaction("claimJob") as conn:
                result = conn.execute(update(jobs).where(jobs.c.JobID == jobID, jobs.c.Status == "Waiting")
                                      .values(Status="Matched", Owner=worker))
            if result.rowcount == 1:
                claimed.append(jobID)


def _claimBySkipLocked(db: ExampleDB, worker: str) -> list[int]:
    jobs = ExampleDB.jobs
    claimed = []
    while True:
        with db.transaction("claimJobs") as conn:
            query = select(jobs.c.JobID).where(jobs.c.Status == "Waiting").order_by(jobs.c.JobID).limit(3)
            ids = conn.scalars(db.selectForUpdateSkipLocked(query)).all()
            if ids:
                conn.execute(update(jobs).where(jobs.c.JobID.in_(ids)).values(Status="Matched", Owner=worker))
        if not ids:
            return claimed
        claimed.extend(ids)


@pytest.mark.parametrize("claim", [_claimByConditionalUpdate, _claimBySkipLocked])
def test_claimingRows_eightThreadsClaimEachRowExactlyOnce(db_url: str, claim) -> None:
    db = ExampleDB(db_url)
    jobIDs = insertJobs(db, 120)
    results: dict[str, list[int]] = {}
    failures: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            results[name] = claim(db, name)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(f"worker{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    claimedIDs = [jobID for ids in results.values() for jobID in ids]
    assert sorted(claimedIDs) == jobIDs
    with db.connection() as conn:
        owners = dict(conn.execute(select(ExampleDB.jobs.c.JobID, ExampleDB.jobs.c.Owner)).all())
    assert all(owners[jobID] == name for name, ids in results.items() for jobID in ids)


def test_badStatement_raisesDatabaseErrorNamingTheDBTheOperationAndTheStatement(db_url: str) -> None:
    db = ExampleDB(db_url)
    with pytest.raises(DatabaseError) as excinfo, db.connection("getJobAttributes") as conn:
        conn.execute(text("SELECT NoSuchColumn FROM Jobs"))
    message = str(excinfo.value)
    assert message.startswith("ExampleDB: getJobAttributes failed: ")
    assert "NoSuchColumn" in message and "sqlalche.me" not in message


def test_url_comesFromTheCSOptionOfTheDatabaseSection(sqlite_url: str) -> None:
    gConfig.initialize(options={"/Systems/Test/Databases/ExampleDB/URL": sqlite_url}, fetchRemote=False)
    db = ExampleDB()
    assert db.url == sqlite_url
    assert Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_url_defaultsToSQLiteUnderTheInstancePath(tmp_path: Path) -> None:
    gConfig.initialize(options={"/LocalInstallation/InstancePath": str(tmp_path / "instance")}, fetchRemote=False)
    db = ExampleDB()
    try:
        assert db.url == f"sqlite:///{tmp_path / 'instance' / 'db' / 'ExampleDB.sqlite'}"
        assert (tmp_path / "instance" / "db" / "ExampleDB.sqlite").exists()
    finally:
        disposeEngines(db.url)


@pytest.mark.mysql
def test_url_comesFromTheSharedDatabaseServerWithThePrefixedName(mysql_url: str) -> None:
    server, _, database = mysql_url.rpartition("/")
    gConfig.initialize(options={"/Systems/Databases/URL": server, "/Systems/Databases/NamePrefix": f"{database}_"},
                       fetchRemote=False)
    db = ExampleDB()
    try:
        assert db.url == f"{server}/{database}_ExampleDB"
        assert db.isMySQL
        with db.connection() as conn:
            assert conn.exec_driver_sql("SELECT DATABASE()").scalar() == f"{database}_ExampleDB"
    finally:
        disposeEngines(db.url)
        with create_engine(server, poolclass=NullPool).begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}_ExampleDB`")


def test_engine_isSharedByAllInstancesWithTheSameURL(sqlite_url: str) -> None:
    assert ExampleDB(sqlite_url).engine is ExampleDB(sqlite_url, createTables=False).engine


def test_sqlite_connectionsUseWALAndForeignKeys(sqlite_url: str) -> None:
    with ExampleDB(sqlite_url).connection() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


@pytest.mark.mysql
def test_mysql_createsTheDatabaseWhenItDoesNotExist(mysql_url: str) -> None:
    url = f"{mysql_url}_new"
    try:
        db = ExampleDB(url)
        with db.connection() as conn:
            assert "Jobs" in inspect(conn).get_table_names()
    finally:
        disposeEngines(url)
        with ExampleDB(mysql_url, createTables=False).transaction() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{url.rsplit('/', 1)[1]}`")


def test_subclassWithoutDbName_isRefusedWithAClearMessage() -> None:
    class NamelessDB(DB):
        metadata = MetaData()

    with pytest.raises(ConfigurationError, match="NamelessDB must set dbName"):
        NamelessDB("sqlite://")
