"""The one base of every DIRAC database: SQLAlchemy Core tables on SQLite or MariaDB/MySQL.

A database class names itself and declares its tables::

    class JobDB(DB):
        dbName = "WorkloadManagement/JobDB"
        metadata = MetaData()
        jobs = Table("Jobs", metadata, Column("JobID", Integer, primary_key=True), ...)

The URL comes from the argument, else ``/Systems/<System>/Databases/<DB>/URL``, else the
server every database shares, ``/Systems/Databases/URL`` (e.g. ``mysql+pymysql://dirac:pw@db``,
the database being ``<NamePrefix><DB>`` with ``/Systems/Databases/NamePrefix``), else
``sqlite:///<InstancePath>/db/<DB>.sqlite``. Writes go through ``transaction()``, reads through
``connection()``; every SQLAlchemy error leaving either becomes a ``DatabaseError``. On MariaDB
the pool is set by ``PoolSize`` (32), ``MaxOverflow`` (8) and ``PoolRecycle`` (3600 s) in the
database's section.

Claiming work when several copies of an agent run at once: never read, decide, then write.
Either claim each row with a conditional UPDATE and check that it changed exactly one row::

    with db.transaction("claimJob") as conn:
        claimed = conn.execute(update(jobs).where(jobs.c.JobID == jobID, jobs.c.Status == "Waiting")
                               .values(Status="Matched")).rowcount == 1

or lock the candidates in the transaction that updates them::

    with db.transaction("claimJobs") as conn:
        ids = conn.scalars(db.selectForUpdateSkipLocked(select(jobs.c.JobID).where(...).limit(10))).all()
        conn.execute(update(jobs).where(jobs.c.JobID.in_(ids)).values(Status="Matched"))

On MariaDB/MySQL the second form locks the rows and other claimers skip them; on SQLite
``transaction()`` takes the write lock when it begins (``BEGIN IMMEDIATE``), so writers run
one after the other and both forms are safe there too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Insert,
    MetaData,
    Select,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError, StatementError
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.types import TypeDecorator, TypeEngine

from dirac.Core.Config import gConfig
from dirac.Core.Config.PathFinder import getDatabaseSection, splitComponent
from dirac.Core.Utilities.Exceptions import ConfigurationError, DatabaseError
from dirac.Core.Utilities.Logging import getLogger

COMMON_SECTION = "/Systems/Databases"  # options shared by every database
SQLITE_BUSY_TIMEOUT_MS = 30_000
SCHEMA_LOCK_TIMEOUT_S = 60
MYSQL_UNKNOWN_DATABASE = 1049
#: MariaDB connections kept open per database and process (``<DB section>/PoolSize``): as many as a
#: server has request threads (/DIRAC/Server/MaxThreads, 32), so that a busy service reuses them
#: instead of opening one (TCP, authentication, a TLS context) per request beyond the pool
DEFAULT_POOL_SIZE = 32
#: connections opened beyond the pool under a burst and closed when returned (``<DB section>/MaxOverflow``)
DEFAULT_MAX_OVERFLOW = 8

_engines: dict[str, Engine] = {}
_enginesLock = threading.Lock()


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


#: text of any length: TEXT on SQLite, MEDIUMTEXT (16 MiB) on MariaDB/MySQL where TEXT stops at 64 KiB
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


class UTCDateTime(TypeDecorator[datetime]):
    """A DATETIME stored as naive UTC and read back as an aware UTC datetime (naive input is refused)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given where an aware one is needed (use utcnow())")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _same(table: Table) -> Table:
    return table


def _describe(exc: SQLAlchemyError) -> str:
    """The driver's message and the statement, without SQLAlchemy's background links and parameters."""
    if isinstance(exc, StatementError) and exc.orig is not None:  # DBAPI and bind-parameter errors
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    statement = " ".join((getattr(exc, "statement", None) or "").split())
    return f"{text} [SQL: {statement[:300]}]" if statement else text


def _onSQLiteConnect(dbapiConnection: Any, _record: Any) -> None:
    # We emit BEGIN ourselves (see _onSQLiteBegin): pysqlite's implicit transactions defer locking.
    dbapiConnection.isolation_level = None
    for pragma in (f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", "journal_mode=WAL", "synchronous=NORMAL",
                   "foreign_keys=ON"):
        dbapiConnection.execute(f"PRAGMA {pragma}")


def _onSQLiteBegin(conn: Connection) -> None:
    # Writers take the lock up front so they queue on busy_timeout instead of failing on upgrade.
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("dirac_readonly") else "BEGIN IMMEDIATE")


def _ensureMySQLDatabase(url: URL) -> None:
    """CREATE DATABASE IF NOT EXISTS for the database of ``url`` when the server says it is unknown."""
    probe = create_engine(url, poolclass=NullPool)
    try:
        with probe.connect():
            return
    except OperationalError as exc:
        if not exc.orig or exc.orig.args[:1] != (MYSQL_UNKNOWN_DATABASE,):
            raise
    finally:
        probe.dispose()
    server = create_engine(URL.create(url.drivername, url.username, url.password, url.host, url.port, None, url.query),
                           poolclass=NullPool)
    try:
        quoted = server.dialect.identifier_preparer.quote_identifier(url.database or "")
        with server.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4")
    finally:
        server.dispose()


def _createEngine(url: URL, section: str) -> Engine:
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            # One shared connection: an in-memory database is only for single-threaded tests.
            engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _onSQLiteConnect)
        event.listen(engine, "begin", _onSQLiteBegin)
        return engine
    if url.get_backend_name() in ("mysql", "mariadb"):
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        _ensureMySQLDatabase(url)
        return create_engine(url, pool_pre_ping=True,
                             pool_recycle=gConfig.getValue(f"{section}/PoolRecycle", 3600),
                             pool_size=gConfig.getValue(f"{section}/PoolSize", DEFAULT_POOL_SIZE),
                             max_overflow=gConfig.getValue(f"{section}/MaxOverflow", DEFAULT_MAX_OVERFLOW))
    return create_engine(url, pool_pre_ping=True)


def getEngine(url: str, section: str = "") -> Engine:
    """The process-wide engine of ``url``, created on first use (``section`` holds the pool options)."""
    with _enginesLock:
        if url not in _engines:
            _engines[url] = _createEngine(make_url(url), section)
        return _engines[url]


def disposeEngines(url: str | None = None) -> None:
    """Close the pooled connections of ``url`` (all URLs when None) and forget the engines."""
    with _enginesLock:
        for key in [url] if url else list(_engines):
            engine = _engines.pop(key, None)
            if engine is not None:
                engine.dispose()


class DB:
    """Base of every database: engine from the CS, schema creation, transactions and dialect helpers."""

    dbName: ClassVar[str] = ""
    metadata: ClassVar[MetaData]

    def __init__(self, url: str | None = None, *, createTables: bool = True):
        if not self.dbName or getattr(self, "metadata", None) is None:
            raise ConfigurationError(f"{type(self).__name__} must set dbName = 'System/DBName' and metadata")
        self.system, self.name = splitComponent(self.dbName)
        self.section = getDatabaseSection(self.dbName)
        self.log = getLogger(self.dbName)
        self.url = url or gConfig.getValue(f"{self.section}/URL", "") or self.defaultURL()
        with self._errors("connect"):
            self.engine = getEngine(self.url, self.section)
        self.log.debug("using %s", make_url(self.url).render_as_string(hide_password=True))
        if createTables:
            self.createTables()

    def defaultURL(self) -> str:
        """The shared server's ``<URL>/<NamePrefix><DB>``, else ``sqlite:///<InstancePath>/db/<DB>.sqlite``."""
        server = gConfig.getValue(f"{COMMON_SECTION}/URL", "")
        if server:
            name = gConfig.getValue(f"{COMMON_SECTION}/NamePrefix", "") + self.name
            return make_url(server).set(database=name).render_as_string(hide_password=False)
        instance = gConfig.getValue("/LocalInstallation/InstancePath", "") or str(Path.home() / ".dirac")
        return f"sqlite:///{Path(instance).expanduser() / 'db' / self.name}.sqlite"

    @property
    def isMySQL(self) -> bool:
        """True on MariaDB/MySQL, False on SQLite."""
        return self.engine.dialect.name in ("mysql", "mariadb")

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turn any SQLAlchemy error raised inside into a DatabaseError naming this DB and the operation."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise DatabaseError(f"{self.name}: {operation} failed: {_describe(exc)}") from exc

    @contextmanager
    def transaction(self, operation: str = "transaction") -> Iterator[Connection]:
        """A connection in a transaction committed on success and rolled back on any exception."""
        with self._errors(operation), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def connection(self, operation: str = "query") -> Iterator[Connection]:
        """A connection for reads (rolled back at the end; use transaction() to write)."""
        with self._errors(operation), self.engine.connect() as conn:
            conn.execution_options(dirac_readonly=True)
            yield conn

    def sharesServerWith(self, other: DB) -> bool:
        """Whether one connection of this database reaches ``other``'s tables too (see joinTransaction)."""
        if self.url == other.url:
            return True
        mine, theirs = make_url(self.url), make_url(other.url)
        return self.isMySQL and other.isMySQL and mine.set(database="") == theirs.set(database="")

    @contextmanager
    def joinTransaction(self, conn: Connection | None, operation: str
                        ) -> Iterator[tuple[Connection, Callable[[Table], Table]]]:
        """(connection, tables) to write in: a transaction of our own when ``conn`` is None, else ``conn``.

        ``conn`` is a transaction of another database for which ``sharesServerWith`` holds (the same
        SQLite file, or the same MariaDB server and account): our writes then commit or roll back
        with its own. ``tables`` maps each of our tables to the one to use in statements (qualified
        with our database's name when ``conn`` is in another database).
        """
        if conn is None:
            with self.transaction(operation) as own:
                yield own, _same
            return
        database = make_url(self.url).database
        with self._errors(operation):
            yield conn, _same if conn.engine.url.database == database else self._qualifiedTables(database)

    def _qualifiedTables(self, database: str | None) -> Callable[[Table], Table]:
        with _enginesLock:
            if getattr(self, "_qualified", None) is None:
                qualified = MetaData()
                self._qualified = {table.name: table.to_metadata(qualified, schema=database)
                                   for table in self.metadata.sorted_tables}
        return lambda table: self._qualified[table.name]

    def createTables(self) -> None:
        """Create the missing tables and indexes (idempotent; safe when several processes start at once)."""
        with self._errors("createTables"), self.engine.connect() as conn:
            if not self.isMySQL:
                with conn.begin():  # BEGIN IMMEDIATE: concurrent creators wait for each other
                    self.metadata.create_all(conn)
                return
            # MySQL DDL is not transactional: serialise creators with a server-wide named lock.
            lockName = f"dirac_schema.{conn.engine.url.database}"[:64]
            if conn.scalar(select(func.get_lock(lockName, SCHEMA_LOCK_TIMEOUT_S))) != 1:
                raise DatabaseError(f"{self.name}: createTables failed: lock {lockName} not obtained "
                                    f"in {SCHEMA_LOCK_TIMEOUT_S} s")
            try:
                self.metadata.create_all(conn)
                conn.commit()
            finally:
                conn.scalar(select(func.release_lock(lockName)))

    def insertIgnore(self, table: Table) -> Insert:
        """An INSERT that skips rows clashing with a primary or unique key (their rowcount is 0)."""
        if self.isMySQL:
            return insert(table).prefix_with("IGNORE")
        return sqlite.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, values: dict[str, Any] | list[dict[str, Any]],
               updateColumns: Sequence[str]) -> Insert:
        """An INSERT of ``values`` that, on a primary or unique key clash, updates ``updateColumns`` instead."""
        if self.isMySQL:
            stmt = mysql.insert(table).values(values)
            return stmt.on_duplicate_key_update({col: stmt.inserted[col] for col in updateColumns})
        stmt = sqlite.insert(table).values(values)
        return stmt.on_conflict_do_update(set_={col: stmt.excluded[col] for col in updateColumns})

    def selectForUpdateSkipLocked(self, stmt: Select) -> Select:
        """``stmt`` locking the rows it returns and skipping rows locked by others (plain on SQLite)."""
        return stmt.with_for_update(skip_locked=True) if self.isMySQL else stmt

    def close(self) -> None:
        """Close this database's pooled connections (they are reopened if the DB is used again)."""
        self.engine.dispose()
