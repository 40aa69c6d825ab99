"""WorkloadManagement/PilotManager: the bookkeeping of pilots, with DIRAC's method names and signatures.

Who may call what:

* register pilots, set their status, store their output (SiteDirector, PilotStatusAgent):
  ``TrustedHost``, ``Operator``, ``SiteManager``; delete them: ``TrustedHost``, ``Operator``;
* report the job a pilot runs and the pilot's CPU power (the pilot itself): ``GenericPilot``;
* read pilot information, selections, counters and summaries: any authenticated caller;
* read a pilot's output and log lines: ``Operator``, ``JobAdministrator``, ``SiteManager``, and
  the owner of a job the pilot ran (``checkPilotReadable``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB, PilotNotFound
from dirac.WorkloadManagementSystem.Logic.JobPolicy import RIGHT_GET_INFO, JobPolicy

PILOT_REGISTRARS = [Properties.TrustedHost, Properties.Operator, Properties.SiteManager]
PILOT_CLEANERS = [Properties.TrustedHost, Properties.Operator]
PILOT_READERS = [Properties.Operator, Properties.JobAdministrator, Properties.SiteManager]
DEFAULT_MAX_OUTPUT_SIZE = 1 << 20

Date = datetime | str | None


def checkPilotReadable(credDict: Mapping[str, Any], pilot: Mapping[str, Any] | None, jobDB: JobDB,
                       what: str = "output") -> None:
    """Raise AuthorizationError unless the caller may read this pilot's output and logs.

    ``PILOT_READERS`` read every pilot; anyone else needs the GetInfo right (see JobPolicy) on a
    job the pilot ran, pilot rights excepted: a pilot may not read the logs of other pilots.
    """
    properties = set(credDict.get("properties") or [])
    if properties & set(PILOT_READERS):
        return
    jobs = list((pilot or {}).get("Jobs") or [])
    if jobs:
        policy = JobPolicy({**credDict, "properties": sorted(properties - {Properties.GenericPilot})})
        owners = jobDB.getJobsAttributes(jobs, ["Owner", "OwnerGroup"])
        if any(policy.hasRight(RIGHT_GET_INFO, attrs["Owner"], attrs["OwnerGroup"]) for attrs in owners.values()):
            return
    who = credDict.get("username") or credDict.get("hostname") or credDict.get("DN")
    name = (pilot or {}).get("PilotJobReference") or "this pilot"
    raise AuthorizationError(f"{who} (group {credDict.get('group')}) may not read the {what} of {name}: it needs "
                             f"one of {', '.join(PILOT_READERS)} or to own a job the pilot ran")


def toJobID(jobID: str | int) -> int:
    """A job ID sent as int or string (DIRAC clients send both)."""
    try:
        return int(jobID)
    except ValueError:
        raise InvalidArgument(f"{jobID!r} is not a job ID") from None


class PilotManagerHandler(RequestHandler):
    """References, statuses, jobs and output of the pilots."""

    pilotAgentsDB: ClassVar[PilotAgentsDB]
    jobDB: ClassVar[JobDB]
    maxOutputSize: ClassVar[int] = DEFAULT_MAX_OUTPUT_SIZE

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.pilotAgentsDB = PilotAgentsDB()
        cls.jobDB = JobDB()
        cls.maxOutputSize = int(cls.getCSOption("MaxOutputSize", DEFAULT_MAX_OUTPUT_SIZE))

    # -- registration and status (SiteDirector, PilotStatusAgent) ----------------------------------
    auth_addPilotReferences = PILOT_REGISTRARS

    def export_addPilotReferences(self, pilotRef: list[str], VO: str, gridType: str = "DIRAC",
                                  pilotStampDict: dict[str, str] | None = None, destinationSite: str = "NotAssigned",
                                  queue: str = "Unknown", gridSite: str = "Unknown") -> dict[str, int]:
        """Register submitted pilots; {reference: PilotID}."""
        return self.pilotAgentsDB.addPilotReferences(pilotRef, VO, gridType, pilotStampDict or {}, destinationSite,
                                                     queue, gridSite)

    auth_setPilotStatus = PILOT_REGISTRARS

    def export_setPilotStatus(self, pilotRef: str, status: str, destination: str | None = None,
                              reason: str | None = None, gridSite: str | None = None, queue: str | None = None) -> None:
        """Set a pilot's status (a name of PILOT_STATES) and reason, optionally where it runs."""
        self.pilotAgentsDB.setPilotStatus(pilotRef, status, destination=destination, statusReason=reason,
                                          gridSite=gridSite, queue=queue)

    auth_storePilotOutput = PILOT_REGISTRARS

    def export_storePilotOutput(self, pilotReference: str, output: str, error: str) -> None:
        """Store the stdout and stderr of an ended pilot (the tail of each, up to MaxOutputSize characters)."""
        self.pilotAgentsDB.storePilotOutput(pilotReference, output, error, self.maxOutputSize)

    auth_setAccountingFlag = PILOT_REGISTRARS

    def export_setAccountingFlag(self, pilotRef: str, mark: str | bool = "True") -> None:
        """Mark whether the pilot's accounting record was sent."""
        self.pilotAgentsDB.setAccountingFlag(pilotRef, mark)

    auth_deletePilots = PILOT_CLEANERS

    def export_deletePilots(self, pilotIDs: list[int] | str | int) -> list[int]:
        """Delete pilots by PilotID (or one by its reference) with their jobs, output and logs; the IDs deleted."""
        if isinstance(pilotIDs, str):
            return self.pilotAgentsDB.deletePilot(pilotIDs)
        return self.pilotAgentsDB.deletePilots(pilotIDs)

    auth_clearPilots = PILOT_CLEANERS

    def export_clearPilots(self, interval: int = 30, aborted_interval: int = 7) -> list[int]:
        """Delete pilots submitted more than ``interval`` days ago (Aborted ones: ``aborted_interval``)."""
        return self.pilotAgentsDB.clearPilots(interval, aborted_interval)

    # -- reports from the pilot ---------------------------------------------------------------------
    auth_setJobForPilot = [Properties.GenericPilot]

    def export_setJobForPilot(self, jobID: str | int, pilotRef: str, destination: str | None = None) -> None:
        """Record that the pilot (reference or stamp) runs the job; the pilot becomes Running."""
        self.pilotAgentsDB.setJobForPilot(toJobID(jobID), pilotRef, destination=destination)

    auth_setPilotBenchmark = [Properties.GenericPilot]

    def export_setPilotBenchmark(self, pilotRef: str, mark: float) -> None:
        """Record the CPU power the pilot measured on its node."""
        self.pilotAgentsDB.setPilotBenchmark(pilotRef, mark)

    # -- reading --------------------------------------------------------------------------------------
    auth_getPilotInfo = [AUTHENTICATED]

    def export_getPilotInfo(self, pilotReference: list[str] | str) -> dict[str, dict[str, Any]]:
        """{reference: {attribute: value, 'Jobs': [JobIDs]}} of the pilots (S_ERROR EWMSNOPILOT if none)."""
        if not pilotReference:
            raise InvalidArgument("getPilotInfo needs at least one pilot reference")
        return self.pilotAgentsDB.getPilotInfo(pilotReference)

    auth_getPilots = [AUTHENTICATED]

    def export_getPilots(self, jobID: str | int) -> dict[str, dict[str, Any]]:
        """The info of the pilots that ran (or run) the job, as getPilotInfo."""
        pilotIDs = self.pilotAgentsDB.getPilotsForJobID(toJobID(jobID))
        if not pilotIDs:
            raise PilotNotFound(f"Failed to get pilot for Job {toJobID(jobID)}: no pilot reported running it")
        return self.pilotAgentsDB.getPilotInfo(pilotID=pilotIDs)

    auth_selectPilots = [AUTHENTICATED]

    def export_selectPilots(self, condDict: dict[str, Any], older: Date = None, newer: Date = None,
                            timeStamp: str = "SubmissionTime", orderAttribute: str | None = None,
                            limit: int | None = None) -> list[str]:
        """References of the pilots matching {attribute: value or [values]} and a time window."""
        return self.pilotAgentsDB.selectPilots(condDict, older, newer, timeStamp, orderAttribute, limit)

    auth_countPilots = [AUTHENTICATED]

    def export_countPilots(self, condDict: dict[str, Any], older: Date = None, newer: Date = None,
                           timeStamp: str = "SubmissionTime") -> int:
        """How many pilots match the conditions."""
        return self.pilotAgentsDB.countPilots(condDict, older, newer, timeStamp)

    auth_getCounters = [AUTHENTICATED]

    def export_getCounters(self, table: str, keys: list[str], condDict: dict[str, Any], newer: Date = None,
                           timeStamp: str = "SubmissionTime", older: Date = None) -> list[tuple[dict[str, Any], int]]:
        """[({key: value}, count)] of the pilots grouped by ``keys`` (``table`` is 'PilotAgents')."""
        if table != "PilotAgents":
            raise InvalidArgument(f"getCounters counts PilotAgents only, not {table!r}")
        return self.pilotAgentsDB.getCounters(keys, condDict, older, newer, timeStamp)

    auth_getCurrentPilotCounters = [AUTHENTICATED]

    def export_getCurrentPilotCounters(self, attrDict: dict[str, Any] | None = None) -> dict[str, int]:
        """{Status: count}; final statuses count the pilots updated in the last day only."""
        return self.pilotAgentsDB.getCurrentPilotCounters(attrDict)

    auth_getPilotSummary = [AUTHENTICATED]

    def export_getPilotSummary(self, startdate: Date = "", enddate: Date = "") -> dict[str, dict[str, int]]:
        """{CE: {Status: count, 'Aborted_Hour', 'Aborted_Day'}, 'Total': {...}} of pilots submitted in the window."""
        return self.pilotAgentsDB.getPilotSummary(startdate, enddate)

    # -- output and logs ----------------------------------------------------------------------------------
    auth_getPilotOutput = [AUTHENTICATED]

    def export_getPilotOutput(self, pilotReference: str) -> dict[str, Any]:
        """{'StdOut', 'StdErr', 'FileList'} of an ended pilot (pilot readers and owners of its jobs)."""
        pilot = self.pilotAgentsDB.getPilotInfo(pilotReference)[pilotReference]
        checkPilotReadable(self.credDict, pilot, self.jobDB)
        output = self.pilotAgentsDB.getPilotOutput(pilotReference)
        return {**output, "PilotJobReference": pilotReference, "FileList": []}

    auth_getPilotLoggingInfo = [AUTHENTICATED]

    def export_getPilotLoggingInfo(self, pilotReference: str) -> str:
        """The lines the pilot streamed while running, as one text (see PilotLogging for following them)."""
        pilot = self.pilotAgentsDB.getPilotInfo(pilotReference)[pilotReference]
        checkPilotReadable(self.credDict, pilot, self.jobDB, "logs")
        if not pilot["PilotStamp"]:
            return ""
        return "\n".join(row["Line"] for row in self.pilotAgentsDB.getPilotLogs(pilot["PilotStamp"]))
