"""PilotStatusAgent: pilot bookkeeping from the databases, so that no job waits on a dead pilot.

Each cycle:

1. Pilots in a transient status (Submitted, Waiting, Running) not updated for
   ``PilotStalledDays`` become Aborted, unless one of their jobs still shows signs of life.
2. Jobs still Matched, Running or Completing whose pilot ended (Done, Failed, Aborted, Deleted)
   more than ``EndedPilotGraceTime`` seconds ago, and that were not heard from since, are
   handled at once instead of waiting for StalledJobAgent's StalledTime: Running and Completing
   ones become Stalled (``Job stalled: pilot not running``), Matched ones are rescheduled.
3. Pilot records older than ``ClearPilotsDelay`` days (Aborted ones: ``ClearAbortedPilotsDelay``)
   are deleted.

The SiteDirector asks the computing elements for pilot statuses; this agent only reads and
writes the databases. See docs/agents.md for the options.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.AgentModule import AgentModule
from dirac.Core.Base.DB import utcnow
from dirac.Resources.Computing.ComputingElement import PILOT_TRANSIENT_STATES
from dirac.WorkloadManagementSystem.Agent.JobDatabasesAgent import JobDatabasesAgent
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotNotFound
from dirac.WorkloadManagementSystem.Logic import StalledJobs
from dirac.WorkloadManagementSystem.Logic.StalledJobs import lastSignOfLife, pilotHasEnded

SOURCE = "PilotStatusAgent"
#: job statuses in which a job needs a live pilot
NEEDS_PILOT = (JobStatus.MATCHED, JobStatus.RUNNING, JobStatus.COMPLETING)


class PilotStatusAgent(JobDatabasesAgent):
    """Aborts pilots nobody hears from, hands the jobs of ended pilots on, and clears old pilot records."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        **AgentModule.DEFAULTS,
        "PollingTime": 300.0,
        "PilotStalledDays": 3.0,
        "EndedPilotGraceTime": 600,
        "EndedPilotLookbackTime": 86400,
        "ClearPilotsDelay": 30,
        "ClearAbortedPilotsDelay": 7,
        "MaxPilotsAtOnce": 1000,
        "MaxJobsAtOnce": 500,
    }

    def __init__(self, agentName: str = "WorkloadManagement/PilotStatusAgent", **databases: Any):
        super().__init__(agentName, **databases)

    def execute(self) -> str:
        now = utcnow()
        aborted = self.abortStalledPilots(now)
        stalled, rescheduled = self.handleJobsOfEndedPilots(now)
        cleared = self.pilotDB.clearPilots(self.am_getOption("ClearPilotsDelay"),
                                           self.am_getOption("ClearAbortedPilotsDelay"))
        return (f"{len(aborted)} silent pilot(s) aborted, {len(stalled)} job(s) of ended pilots stalled, "
                f"{len(rescheduled)} matched job(s) of ended pilots rescheduled, {len(cleared)} old pilot(s) cleared")

    # -- 1. silent pilots -> Aborted ------------------------------------------------------------------------------
    def abortStalledPilots(self, now: datetime) -> list[str]:
        """Abort the transient pilots not updated for PilotStalledDays whose jobs are silent too; their references."""
        days = self.am_getOption("PilotStalledDays")
        before = now - timedelta(days=days)
        refs = self.pilotDB.selectPilots({"Status": list(PILOT_TRANSIENT_STATES)}, older=before,
                                         timeStamp="LastUpdateTime", orderAttribute="LastUpdateTime",
                                         limit=self.am_getOption("MaxPilotsAtOnce"))
        if not refs:
            return []
        try:
            pilots = self.pilotDB.getPilotInfo(refs, ["Status", "LastUpdateTime"])
        except PilotNotFound:  # cleared meanwhile by another copy
            return []
        jobs = self.jobDB.getJobsAttributes({jobID for info in pilots.values() for jobID in info["Jobs"]},
                                            ["Status", *StalledJobs.SIGN_OF_LIFE])
        silent = []
        for ref, info in sorted(pilots.items()):
            alive = [jobID for jobID in info["Jobs"] if jobID in jobs and jobs[jobID]["Status"] in NEEDS_PILOT
                     and (lastSignOfLife(jobs[jobID]) or before) > before]
            if alive:
                self.log.info("pilot %s: %s with no update since %s, but its job(s) %s are alive: left alone", ref,
                              info["Status"], info["LastUpdateTime"], alive)
            else:
                silent.append(ref)
        reason = f"No status update for over {days:g} days (PilotStatusAgent)"
        aborted = self.pilotDB.abortPilotsNotUpdatedSince(silent, before, reason)
        for ref in aborted:
            self.log.info("pilot %s: %s with no update since %s: set Aborted", ref, pilots[ref]["Status"],
                          pilots[ref]["LastUpdateTime"])
        return aborted

    # -- 2. jobs of ended pilots -> Stalled / rescheduled ----------------------------------------------------------
    def handleJobsOfEndedPilots(self, now: datetime) -> tuple[list[int], list[int]]:
        """Stall the Running/Completing jobs and reschedule the Matched jobs of pilots that ended: (stalled, rescheduled)."""
        grace = timedelta(seconds=self.am_getOption("EndedPilotGraceTime"))
        rows = self.pilotDB.getJobsOfEndedPilots(now - timedelta(seconds=self.am_getOption("EndedPilotLookbackTime")),
                                                 now - grace)
        jobs = self.jobDB.getJobsAttributes({row["JobID"] for row in rows}, ["Status", *StalledJobs.SIGN_OF_LIFE])
        waiting = sorted(jobID for jobID, attrs in jobs.items()
                         if attrs["Status"] in NEEDS_PILOT and (lastSignOfLife(attrs) or now) < now - grace)
        waiting = waiting[:self.am_getOption("MaxJobsAtOnce")]
        pilots = StalledJobs.currentPilots(self.jobDB, self.pilotDB, waiting)
        toStall: dict[int, tuple[str, str]] = {}
        toReschedule: dict[int, tuple[str, str]] = {}
        for jobID in waiting:
            pilot = pilots.get(jobID)
            if not pilotHasEnded(pilot) or (pilot["LastUpdateTime"] or now) >= now - grace:
                continue  # the ended pilot ran an earlier attempt of the job
            status = jobs[jobID]["Status"]
            target = toReschedule if status == JobStatus.MATCHED else toStall
            target[jobID] = (status, JobMinorStatus.STALLED_PILOT_NOT_RUNNING)
            self.log.info("Job %d: %s but its pilot %s is %s since %s and the job was silent since %s: %s", jobID,
                          status, pilot["PilotJobReference"], pilot["Status"], pilot["LastUpdateTime"],
                          lastSignOfLife(jobs[jobID]),
                          "failing and rescheduling it" if status == JobStatus.MATCHED else "setting it Stalled")
        stalled = StalledJobs.moveJobs(self.jobDB, self.loggingDB, toStall, JobStatus.STALLED, SOURCE)
        rescheduled = StalledJobs.failAndReschedule(self.jobDB, self.loggingDB, self.taskQueueDB, toReschedule,
                                                    SOURCE)
        return stalled, sorted(rescheduled)
