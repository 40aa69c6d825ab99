"""WorkloadManagement/PilotLogging: log lines streamed by running pilots, kept in PilotAgentsDB by pilot stamp.

A pilot (``GenericPilot``) calls ``sendMessage(message, pilotUUID, wnVO)`` with plain JSON from
the standard library: ``method=sendMessage&args=json.dumps([lines, stamp, vo])``. ``message`` is
a list of lines, one line, or (as DIRAC's pilot sends it) a JSON text of a list of lines.
The lines of a stamp are numbered from 1 in the order they arrive; readers ask for the lines after
the last number they saw (``getPilotLogs(refOrStamp, sinceSequence)``) to follow a pilot while it
runs. Readers: ``Operator``, ``JobAdministrator``, ``SiteManager`` and the owner of a job the
pilot ran.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument
from dirac.Resources.Computing.ComputingElement import PILOT_FINAL_STATES
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB, PilotNotFound
from dirac.WorkloadManagementSystem.Service.PilotManagerHandler import checkPilotReadable, toJobID

PILOT_LOGGERS = [Properties.GenericPilot, Properties.Operator]
DEFAULTS = {"MaxLinesPerMessage": 10_000, "MaxLineLength": 4096, "MaxLinesPerAnswer": 5000}
_STAMP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VO = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def messageLines(message: str | list[str]) -> list[str]:
    """The lines of a message: a list of lines, a JSON text of one, or plain text (split at newlines)."""
    if isinstance(message, str):
        try:
            decoded = json.loads(message)
        except ValueError:
            decoded = message
        message = decoded if isinstance(decoded, (str, list)) else message
    items = [message] if isinstance(message, str) else message
    lines: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgument(f"a pilot log line must be a string, not {type(item).__name__}")
        lines.extend(item.rstrip("\r\n").split("\n"))
    return [line.rstrip("\r") for line in lines]


class PilotLoggingHandler(RequestHandler):
    """Receives pilot log lines and serves them to operators and job owners."""

    pilotAgentsDB: ClassVar[PilotAgentsDB]
    jobDB: ClassVar[JobDB]
    limits: ClassVar[dict[str, int]] = dict(DEFAULTS)

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.pilotAgentsDB = PilotAgentsDB()
        cls.jobDB = JobDB()
        cls.limits = {name: int(cls.getCSOption(name, default)) for name, default in DEFAULTS.items()}
        for name, value in cls.limits.items():
            if value < 1:
                raise ConfigurationError(f"{serviceInfo.section}/{name} = {value}: it must be at least 1")

    # -- from pilots ------------------------------------------------------------------------------------
    def _stampAndVO(self, pilotUUID: str, wnVO: str) -> tuple[str, str]:
        if not _STAMP.match(pilotUUID):
            raise InvalidArgument(f"pilot stamp {pilotUUID!r} is invalid (letters, digits, '_.-', 64 at most)")
        vo = self.credDict.get("VO") or wnVO
        if vo and not _VO.match(vo):
            raise InvalidArgument(f"VO name {vo!r} is invalid")
        return pilotUUID, vo

    auth_sendMessage = PILOT_LOGGERS

    def export_sendMessage(self, message: str | list[str], pilotUUID: str, wnVO: str = "") -> int:
        """Append the pilot's lines to its log (the caller's VO wins over ``wnVO``); the last sequence number."""
        stamp, vo = self._stampAndVO(pilotUUID, wnVO)
        lines = messageLines(message)
        maxLines, maxLength = self.limits["MaxLinesPerMessage"], self.limits["MaxLineLength"]
        kept = [line if len(line) <= maxLength else line[:maxLength] + "[...truncated...]"
                for line in lines[:maxLines]]
        if len(lines) > maxLines:
            self.log.warning("pilot %s sent %d lines in one message: %d dropped", stamp, len(lines),
                             len(lines) - maxLines)
            kept.append(f"[pilot logging: {len(lines) - maxLines} more lines dropped: over "
                        f"MaxLinesPerMessage={maxLines} in one message]")
        return self.pilotAgentsDB.addPilotLogs(stamp, kept, vo)

    auth_finaliseLogs = PILOT_LOGGERS

    def export_finaliseLogs(self, payload: Any, pilotUUID: str, wnVO: str = "") -> None:
        """The pilot will send no more lines: followers of its log stop."""
        stamp, vo = self._stampAndVO(pilotUUID, wnVO)
        self.pilotAgentsDB.finalisePilotLogs(stamp, vo)

    # -- for readers ---------------------------------------------------------------------------------------
    def _answer(self, pilot: dict[str, Any] | None, stamp: str, sinceSequence: int) -> dict[str, Any]:
        """The lines after ``sinceSequence`` with what a follower needs to know whether more will come."""
        limit = self.limits["MaxLinesPerAnswer"]
        lines = self.pilotAgentsDB.getPilotLogs(stamp, sinceSequence, limit + 1) if stamp else []
        more = len(lines) > limit
        lines = lines[:limit]
        stream = self.pilotAgentsDB.getPilotLogStream(stamp) if stamp else None
        status = pilot["Status"] if pilot else ""
        return {"PilotStamp": stamp, "PilotJobReference": pilot["PilotJobReference"] if pilot else "",
                "Status": status, "Jobs": pilot["Jobs"] if pilot else [],
                "Final": status in PILOT_FINAL_STATES or bool(stream and stream["Finalised"]),
                "Lines": lines, "LastSequence": lines[-1]["Sequence"] if lines else sinceSequence, "More": more}

    auth_getPilotLogs = [AUTHENTICATED]

    def export_getPilotLogs(self, pilotRefOrStamp: str, sinceSequence: int = 0) -> dict[str, Any]:
        """Lines of a pilot (by reference or stamp) after ``sinceSequence``.

        Answer: {PilotStamp, PilotJobReference, Status, Jobs, Final, Lines: [{Sequence, Time, Line}],
        LastSequence, More}; ``Final`` once the pilot ended or finalised its log, ``More`` when
        MaxLinesPerAnswer cut the answer (ask again from LastSequence).
        """
        pilot = self.pilotAgentsDB.findPilot(pilotRefOrStamp)
        if pilot is None and self.pilotAgentsDB.getPilotLogStream(pilotRefOrStamp) is None:
            raise PilotNotFound(f"no pilot and no pilot log for {pilotRefOrStamp}")
        checkPilotReadable(self.credDict, pilot or {"PilotJobReference": pilotRefOrStamp}, self.jobDB, "logs")
        stamp = pilot["PilotStamp"] if pilot else pilotRefOrStamp
        return self._answer(pilot, stamp, sinceSequence)

    auth_getJobPilotLogs = [AUTHENTICATED]

    def export_getJobPilotLogs(self, jobID: int | str, sinceSequence: int = 0) -> list[dict[str, Any]]:
        """The logs (as getPilotLogs) of every pilot that ran the job, in the order they started it."""
        jobID = toJobID(jobID)
        pilotIDs = self.pilotAgentsDB.getPilotsForJobID(jobID)
        if not pilotIDs:
            raise PilotNotFound(f"no pilot reported running job {jobID}")
        pilots = sorted(self.pilotAgentsDB.getPilotInfo(pilotID=pilotIDs).values(),
                        key=lambda pilot: pilotIDs.index(pilot["PilotID"]))
        self._checkJobReadable(jobID, pilots[0])
        return [self._answer(pilot, pilot["PilotStamp"], sinceSequence) for pilot in pilots]

    def _checkJobReadable(self, jobID: int, pilot: dict[str, Any]) -> None:
        """The caller needs to be a pilot reader or to have GetInfo on this very job."""
        checkPilotReadable(self.credDict, {**pilot, "Jobs": [jobID]}, self.jobDB, "logs")


__all__ = ["PilotLoggingHandler", "messageLines"]
