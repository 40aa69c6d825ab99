"""StalledJobAgent: Running jobs nobody hears from become Stalled, then Failed (or rescheduled).

Each cycle:

1. Running and Completing jobs with no sign of life (heartbeat, status update, start) for
   ``StalledTime`` seconds become Stalled: ``Job stalled: pilot not running`` when their pilot is
   known to have ended, else ``Watchdog identified this job as stalled``.
2. Stalled jobs become Failed when their pilot has ended (``Job stalled: pilot not running``)
   or after ``FailedTime`` seconds without a sign of life (``Stalling for more than <n> sec``).
   With ``RescheduleStalled``, or at a site of ``StalledJobsToRescheduleSites``, they are then
   rescheduled (Failed past MaxRescheduling, as any rescheduling).
3. Matched jobs their pilot did not start within ``MatchedTime`` seconds are rescheduled.

A heartbeat from a Stalled job sets it Running again (JobStateUpdate), so a job that only
went quiet for a while is not failed. See docs/agents.md for the options.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Base.DB import utcnow
from dirac.WorkloadManagementSystem.Agent.JobDatabasesAgent import JobDatabasesAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Logic import StalledJobs
from dirac.WorkloadManagementSystem.Logic.StalledJobs import lastSignOfLife, pilotHasEnded

SOURCE = "StalledJobAgent"
ACTIVE = (JobStatus.RUNNING, JobStatus.COMPLETING)


class StalledJobAgent(JobDatabasesAgent):
    """Finds jobs whose wrapper went silent and sets them Stalled, then Failed or rescheduled."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **AgentModule.DEFAULTS,
        "PollingTime": 600.0,
        "StalledTime": 3600,
        "FailedTime": 10800,
        "MatchedTime": 7200,
        "RescheduleStalled": False,
        "StalledJobsToRescheduleSites": [],
        "MaxJobsAtOnce": 500,
    }

    def __init__(self, agentName: str = "WorkloadManagement/StalledJobAgent", **databases: Any):
        super().__init__(agentName, **databases)

    def execute(self) -> str:
        now = utcnow()
        stalled = self.markStalledJobs(now)
        failed, rescheduled = self.failStalledJobs(now)
        matched = self.rescheduleMatchedJobs(now)
        return (f"{len(stalled)} job(s) stalled, {len(failed)} stalled job(s) failed, {len(rescheduled)} rescheduled, "
                f"{len(matched)} matched job(s) not started rescheduled")

    # -- 1. Running/Completing -> Stalled ---------------------------------------------------------------------
    def markStalledJobs(self, now: datetime) -> list[int]:
        """Set Stalled the Running/Completing jobs silent for StalledTime; the JobIDs stalled."""
        stalledTime = self.am_getOption("StalledTime")
        before = now - timedelta(seconds=stalledTime)
        jobIDs = self.jobDB.selectJobsWithoutSignOfLife(ACTIVE, before, limit=self.am_getOption("MaxJobsAtOnce"))
        if not jobIDs:
            return []
        attributes = self.jobDB.getJobsAttributes(jobIDs, ["Status", *StalledJobs.SIGN_OF_LIFE])
        pilots = StalledJobs.currentPilots(self.jobDB, self.pilotDB, jobIDs)
        plan: dict[int, tuple[str, str]] = {}
        for jobID, attrs in attributes.items():
            if attrs["Status"] not in ACTIVE or (lastSignOfLife(attrs) or before) >= before:
                continue  # it changed since it was selected
            pilot = pilots.get(jobID)
            if pilotHasEnded(pilot):
                plan[jobID] = (attrs["Status"], JobMinorStatus.STALLED_PILOT_NOT_RUNNING)
                why = f"its pilot {pilot['PilotJobReference']} is {pilot['Status']}"
            else:
                plan[jobID] = (attrs["Status"], JobMinorStatus.WATCHDOG_STALLED)
                why = "its pilot is not known to have ended"
            self.log.info("Job %d: %s, no sign of life since %s (over %d s), %s: setting it Stalled", jobID,
                          attrs["Status"], lastSignOfLife(attrs), stalledTime, why)
        return StalledJobs.moveJobs(self.jobDB, self.loggingDB, plan, JobStatus.STALLED, SOURCE)

    # -- 2. Stalled -> Failed or rescheduled ------------------------------------------------------------------
    def _reschedules(self, site: str) -> bool:
        return self.am_getOption("RescheduleStalled") or site in self.am_getOption("StalledJobsToRescheduleSites")

    def failStalledJobs(self, now: datetime) -> tuple[list[int], list[int]]:
        """Fail (or reschedule) Stalled jobs whose pilot ended or that stayed silent FailedTime: (failed, rescheduled)."""
        failedTime = self.am_getOption("FailedTime")
        limit = self.am_getOption("MaxJobsAtOnce")
        silent = set(self.jobDB.selectJobsWithoutSignOfLife([JobStatus.STALLED],
                                                            now - timedelta(seconds=failedTime), limit=limit))
        stalled = set(self.jobDB.selectJobs({"Status": JobStatus.STALLED}, orderAttribute="LastUpdateTime",
                                            limit=limit))
        pilots = StalledJobs.currentPilots(self.jobDB, self.pilotDB, stalled | silent)
        pilotEnded = {jobID for jobID in stalled | silent if pilotHasEnded(pilots.get(jobID))}
        candidates = sorted(silent | pilotEnded)
        if not candidates:
            return [], []
        attributes = self.jobDB.getJobsAttributes(candidates, ["Site", *StalledJobs.SIGN_OF_LIFE])
        toFail: dict[int, tuple[str, str]] = {}
        toReschedule: dict[int, tuple[str, str]] = {}
        for jobID, attrs in attributes.items():
            if jobID in pilotEnded:
                pilot = pilots[jobID]
                reason = JobMinorStatus.STALLED_PILOT_NOT_RUNNING
                why = f"its pilot {pilot['PilotJobReference']} is {pilot['Status']}"
            else:
                reason = f"Stalling for more than {failedTime} sec"
                why = f"no sign of life since {lastSignOfLife(attrs)}"
            rescheduling = self._reschedules(attrs["Site"])
            (toReschedule if rescheduling else toFail)[jobID] = (JobStatus.STALLED, reason)
            self.log.info("Job %d: Stalled at %s and %s: %s", jobID, attrs["Site"], why,
                          "failing and rescheduling it" if rescheduling else "setting it Failed")
        failed = StalledJobs.moveJobs(self.jobDB, self.loggingDB, toFail, JobStatus.FAILED, SOURCE)
        done = StalledJobs.failAndReschedule(self.jobDB, self.loggingDB, self.taskQueueDB, toReschedule, SOURCE)
        failed += [jobID for jobID, status in done.items() if status == JobStatus.FAILED]
        return sorted(failed), sorted(jobID for jobID, status in done.items() if status != JobStatus.FAILED)

    # -- 3. Matched but never started -> rescheduled --------------------------------------------------------
    def rescheduleMatchedJobs(self, now: datetime) -> list[int]:
        """Reschedule the jobs Matched for over MatchedTime (their pilot died before starting them); the JobIDs."""
        matchedTime = self.am_getOption("MatchedTime")
        jobIDs = self.jobDB.selectJobs({"Status": JobStatus.MATCHED}, older=now - timedelta(seconds=matchedTime),
                                       limit=self.am_getOption("MaxJobsAtOnce"))
        reason = f"Not started by its pilot within {matchedTime} sec"
        for jobID in jobIDs:
            self.log.info("Job %d: Matched for over %d s and never started: failing and rescheduling it", jobID,
                          matchedTime)
        done = StalledJobs.failAndReschedule(self.jobDB, self.loggingDB, self.taskQueueDB,
                                             {jobID: (JobStatus.MATCHED, reason) for jobID in jobIDs}, SOURCE)
        return sorted(done)
