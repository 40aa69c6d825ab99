"""WMS databases on one URL (SQLite and MariaDB) and helpers to submit and queue jobs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.JobSubmission import scheduleJobs, submitJob


@dataclass
class WMS:
    """The three databases the job life cycle touches."""

    jobDB: JobDB
    loggingDB: JobLoggingDB
    tqDB: TaskQueueDB

    def submit(self, jdl: str, owner: str = "alice", group: str = "dirac_user", vo: str = "dirac") -> list[int]:
        return submitJob(self.jobDB, self.loggingDB, jdl, owner, group, vo)

    def submitWaiting(self, jdl: str, owner: str = "alice", group: str = "dirac_user", vo: str = "dirac"
                      ) -> list[int]:
        jobIDs = self.submit(jdl, owner, group, vo)
        scheduleJobs(self.jobDB, self.loggingDB, self.tqDB, jobIDs)
        return jobIDs

    def tableCounts(self) -> dict[str, int]:
        from sqlalchemy import func, select

        counts = {}
        for db in (self.jobDB, self.loggingDB, self.tqDB):
            with db.connection() as conn:
                for table in db.metadata.sorted_tables:
                    counts[table.name] = conn.scalar(select(func.count()).select_from(table))
        return counts


@pytest.fixture
def wms(db_url: str) -> WMS:
    """JobDB, JobLoggingDB and TaskQueueDB in one empty database (SQLite, then MariaDB)."""
    return WMS(JobDB(db_url), JobLoggingDB(db_url), TaskQueueDB(db_url))


def _jdl(**attributes: object) -> str:
    """A JDL running /bin/true with the given extra attributes (lists become ClassAd lists)."""
    parts = ['Executable = "/bin/true"']
    for name, value in attributes.items():
        if isinstance(value, (list, tuple)):
            parts.append(f"{name} = {{{', '.join(chr(34) + str(v) + chr(34) for v in value)}}}")
        elif isinstance(value, int):
            parts.append(f"{name} = {value}")
        else:
            parts.append(f'{name} = "{value}"')
    return "[" + "; ".join(parts) + "]"


@pytest.fixture
def makeJDL():  # noqa: ANN201
    """jdl(CPUTime=100, Site=["A", "B"]) -> a JDL string running /bin/true."""
    return _jdl
