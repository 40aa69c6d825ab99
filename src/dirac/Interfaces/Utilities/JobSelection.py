"""Selecting jobs from the command line: condition values, dates, statuses and who is asking."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType

ALL_STATES: list[str] = list(JobStatus.JOB_STATES)
ACTIVE_STATES: list[str] = [state for state in ALL_STATES if state not in JobStatus.JOB_FINAL_STATES]
SUMMARY_CHUNK = 1000


def listOption(text: str) -> list[str]:
    """'a,b, c' -> ['a', 'b', 'c'] (an argparse type)."""
    values = [value.strip() for value in text.split(",") if value.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected a value or a comma-separated list of values")
    return values


def checkDate(text: str) -> str:
    """A 'YYYY-MM-DD' date, checked (an argparse type)."""
    try:
        return datetime.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the YYYY-MM-DD format") from None


def statusList(text: str) -> list[str]:
    """Job statuses from 'done,Failed' in DIRAC's spelling, refusing unknown ones (an argparse type)."""
    known = {state.lower(): state for state in ALL_STATES}
    statuses = []
    for value in listOption(text):
        if value.lower() not in known:
            raise argparse.ArgumentTypeError(f"{value!r} is not a job status: use {', '.join(ALL_STATES)}")
        statuses.append(known[value.lower()])
    return statuses


def daysAgo(days: int) -> str:
    """The date ``days`` days before today (UTC) as 'YYYY-MM-DD'."""
    return (datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=days)).isoformat()


def callerName() -> DReturnType[str]:
    """The DIRAC user name the WMS sees for this client's credentials."""
    from dirac.WorkloadManagementSystem.Client.WMSClients import JobMonitoringClient

    result = JobMonitoringClient().whoami()
    if not result["OK"]:
        return result
    name = result["Value"].get("username")
    return S_OK(name) if name else S_ERROR("these credentials belong to no DIRAC user: give one with --User")


def jobSummaries(dirac: Any, jobIDs: list[int]) -> DReturnType[dict[int, dict[str, Any]]]:
    """{jobID: attributes} of the jobs, asked for in chunks; unknown and unreadable jobs are left out."""
    summaries: dict[int, dict[str, Any]] = {}
    for start in range(0, len(jobIDs), SUMMARY_CHUNK):
        result = dirac.getJobSummary(jobIDs[start:start + SUMMARY_CHUNK])
        if not result["OK"]:
            return result
        summaries.update(result["Value"])
    return S_OK(summaries)


def callerJobs(statuses: list[str] | None) -> DReturnType[list[int]]:
    """IDs of every job of the caller (any date) in ``statuses`` (any status when None)."""
    from dirac.WorkloadManagementSystem.Client.WMSClients import JobMonitoringClient

    who = callerName()
    if not who["OK"]:
        return who
    conditions: dict[str, Any] = {"Owner": who["Value"]}
    if statuses:
        conditions["Status"] = statuses
    result = JobMonitoringClient().getJobs(conditions)
    return S_OK([int(jobID) for jobID in result["Value"]]) if result["OK"] else result
