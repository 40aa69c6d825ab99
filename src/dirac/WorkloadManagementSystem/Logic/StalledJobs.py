"""Rules shared by the agents that find jobs nobody runs any more (StalledJobAgent, PilotStatusAgent).

A job's last sign of life is the latest of its HeartBeatTime, LastUpdateTime and StartExecTime.
The pilot of a job is the pilot of its current attempt: a JobToPilotMapping row started after
the job's last rescheduling, else the pilot named by its ``Pilot_Reference`` parameter (job
parameters of earlier attempts are in the attic).

Every status change goes through ``JobState`` and is conditional on the status the decision
was based on: a job that changed meanwhile (a heartbeat resumed it, another agent copy took it)
is skipped, never overwritten. A stalled job cannot be rescheduled directly in DIRAC's state
machine, so rescheduling here is Failed (with the reason) then rescheduled from Failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Utilities.Exceptions import NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.Resources.Computing.ComputingElement import PILOT_FINAL_STATES
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB, PilotNotFound
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic import JobState
from dirac.WorkloadManagementSystem.Logic.Exceptions import IllegalTransition, StatusConflict

log = getLogger("WorkloadManagement/StalledJobs")

SIGN_OF_LIFE = ("HeartBeatTime", "LastUpdateTime", "StartExecTime")
#: what a job's current pilot is described by
PILOT_KEYS = ("PilotID", "PilotJobReference", "Status", "LastUpdateTime")
_SKIPPED = (StatusConflict, IllegalTransition, NotFound)


def lastSignOfLife(attributes: Mapping[str, Any]) -> datetime | None:
    """The latest of a job's HeartBeatTime, LastUpdateTime and StartExecTime (None when none is set)."""
    stamps = [attributes[name] for name in SIGN_OF_LIFE if attributes.get(name) is not None]
    return max(stamps) if stamps else None


def currentPilots(jobDB: JobDB, pilotDB: PilotAgentsDB, jobIDs: Iterable[int]) -> dict[int, dict[str, Any]]:
    """{JobID: {PilotID, PilotJobReference, Status, LastUpdateTime}} of the pilot of each job's current attempt.

    Jobs whose pilot is not known are left out.
    """
    ids = sorted(set(jobIDs))
    if not ids:
        return {}
    attempts = jobDB.getJobsAttributes(ids, ["RescheduleTime"])
    result: dict[int, dict[str, Any]] = {}
    for jobID, rows in pilotDB.getPilotsOfJobs(list(attempts)).items():
        since = attempts[jobID]["RescheduleTime"]
        current = [row for row in rows if since is None or row["StartTime"] >= since]
        if current:
            result[jobID] = {key: current[-1][key] for key in PILOT_KEYS}
    unknown = [jobID for jobID in attempts if jobID not in result]
    references = {jobID: params["Pilot_Reference"]
                  for jobID, params in jobDB.getJobParameters(unknown, ["Pilot_Reference"]).items()
                  if params.get("Pilot_Reference") not in (None, "", "Unknown")} if unknown else {}
    if references:
        try:
            pilots = pilotDB.getPilotInfo(sorted(set(references.values())), list(PILOT_KEYS))
        except PilotNotFound:
            pilots = {}
        for jobID, reference in references.items():
            if reference in pilots:
                result[jobID] = {key: pilots[reference][key] for key in PILOT_KEYS}
    return result


def pilotHasEnded(pilot: Mapping[str, Any] | None) -> bool:
    """True when the pilot is known and in a final status (Done, Failed, Aborted, Deleted)."""
    return pilot is not None and pilot["Status"] in PILOT_FINAL_STATES


def moveJobs(jobDB: JobDB, loggingDB: JobLoggingDB, jobs: Mapping[int, tuple[str, str | None]], status: str,
             source: str) -> list[int]:
    """Move jobs {JobID: (expected current status, minor status or None to keep it)} to ``status``; the JobIDs moved.

    Each job moves only if it is still in its expected status (one transaction per expected
    status); the others, changed or removed meanwhile, are skipped.
    """
    groups: dict[str, dict[int, JobState.StatusChange]] = {}
    for jobID, (expected, minorStatus) in sorted(jobs.items()):
        if expected == status:
            raise ValueError(f"Job {jobID}: moving a job from {expected} to {status} is no move")
        groups.setdefault(expected, {})[jobID] = JobState.StatusChange(status, minorStatus, source=source)
    moved: list[int] = []
    for expected, changes in groups.items():
        done = JobState.applyStatusChanges(jobDB, loggingDB, changes, expected)
        moved += done
        for jobID in sorted(set(changes) - set(done)):
            log.info("Job %d: not set %s, it is no longer %s", jobID, status, expected)
    return sorted(moved)


def rescheduleFailedJobs(jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB, jobIDs: Iterable[int],
                         source: str) -> dict[int, str]:
    """Reschedule jobs this caller has just set Failed (Failed past MaxRescheduling); {JobID: new status}."""
    ids = sorted(set(jobIDs))
    if not ids:
        return {}
    try:
        return JobState.rescheduleJobs(jobDB, loggingDB, ids, source=source, taskQueueDB=taskQueueDB)
    except _SKIPPED:
        pass
    done: dict[int, str] = {}
    for jobID in ids:
        try:
            done.update(JobState.rescheduleJobs(jobDB, loggingDB, [jobID], source=source, taskQueueDB=taskQueueDB))
        except _SKIPPED as exc:
            log.info("Job %d: not rescheduled, it changed meanwhile: %s", jobID, exc)
    return done


def failAndReschedule(jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB,
                      jobs: Mapping[int, tuple[str, str]], source: str) -> dict[int, str]:
    """Fail jobs {JobID: (expected status, reason)} then reschedule them; {JobID: Received or Failed}.

    The Failed record keeps the reason; past MaxRescheduling the job stays Failed
    ('Maximum of reschedulings reached').
    """
    failed = moveJobs(jobDB, loggingDB, jobs, JobStatus.FAILED, source)
    return rescheduleFailedJobs(jobDB, loggingDB, taskQueueDB, failed, source)
