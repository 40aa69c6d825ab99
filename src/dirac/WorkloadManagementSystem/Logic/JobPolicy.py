"""Who may do what with which job: the rights of a caller over jobs, from its properties.

* ``JobAdministrator``: every right on every job.
* the owner (same user and same group as the job): every right on its jobs; with the group
  property ``JobSharing``, every right on the jobs of its group.
* ``JobMonitor``: may read the information of every job.
* ``GenericPilot`` (and a host with ``TrustedHost``): may read jobs, fetch and store their
  sandboxes, change their status and reschedule them (pilots report on the jobs they run).
* ``NormalUser``: may submit jobs.

Everything else is refused. Rights are DIRAC's names (``Kill``, ``GetInfo``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dirac.Core.Security import Properties
from dirac.Core.Utilities.Exceptions import AuthorizationError

RIGHT_GET_INFO = "GetInfo"
RIGHT_GET_SANDBOX = "GetSandbox"
RIGHT_PUT_SANDBOX = "PutSandbox"
RIGHT_CHANGE_STATUS = "ChangeStatus"
RIGHT_DELETE = "Delete"
RIGHT_KILL = "Kill"
RIGHT_SUBMIT = "Submit"
RIGHT_RESCHEDULE = "Reschedule"
OWNER_RIGHTS = frozenset({RIGHT_GET_INFO, RIGHT_GET_SANDBOX, RIGHT_PUT_SANDBOX, RIGHT_CHANGE_STATUS, RIGHT_DELETE,
                          RIGHT_KILL, RIGHT_SUBMIT, RIGHT_RESCHEDULE})
PILOT_RIGHTS = frozenset({RIGHT_GET_INFO, RIGHT_GET_SANDBOX, RIGHT_PUT_SANDBOX, RIGHT_CHANGE_STATUS,
                          RIGHT_RESCHEDULE})


class JobPolicy:
    """The rights of one caller (its credentials as the server sees them)."""

    def __init__(self, credDict: Mapping[str, Any]):
        self.user = credDict.get("username") or ""
        self.group = credDict.get("group") or ""
        self.properties = set(credDict.get("properties") or [])
        self.who = self.user or credDict.get("hostname") or credDict.get("DN") or "anonymous"

    def _globalRights(self) -> frozenset[str]:
        """Rights the caller has on every job, whoever owns it."""
        if Properties.JobAdministrator in self.properties:
            return OWNER_RIGHTS
        rights: set[str] = set()
        if Properties.GenericPilot in self.properties or Properties.TrustedHost in self.properties:
            rights |= PILOT_RIGHTS
        if Properties.JobMonitor in self.properties:
            rights.add(RIGHT_GET_INFO)
        return frozenset(rights)

    @property
    def seesAllJobs(self) -> bool:
        """Whether selections need no owner filter."""
        return RIGHT_GET_INFO in self._globalRights()

    def ownerConditions(self) -> dict[str, str]:
        """JobDB conditions that restrict a selection to the jobs this caller may see ({} for all)."""
        if self.seesAllJobs:
            return {}
        if Properties.JobSharing in self.properties:
            return {"OwnerGroup": self.group}
        return {"Owner": self.user, "OwnerGroup": self.group}

    def hasRight(self, right: str, owner: str, ownerGroup: str) -> bool:
        """Whether the caller has ``right`` on a job of ``owner``/``ownerGroup``."""
        if right in self._globalRights():
            return True
        if right == RIGHT_SUBMIT:
            return Properties.NormalUser in self.properties
        if ownerGroup != self.group or not self.group:
            return False
        return owner == self.user or Properties.JobSharing in self.properties

    def canSubmit(self) -> None:
        """Raise AuthorizationError unless the caller may submit jobs."""
        if not (Properties.NormalUser in self.properties or Properties.JobAdministrator in self.properties):
            raise AuthorizationError(f"{self.who} (group {self.group}) may not submit jobs: "
                                     f"the group needs the {Properties.NormalUser} property")

    def split(self, right: str, owners: Mapping[int, Mapping[str, Any]]) -> tuple[list[int], list[int]]:
        """(allowed, refused) job IDs given {JobID: {'Owner', 'OwnerGroup'}}."""
        allowed, refused = [], []
        for jobID, attrs in sorted(owners.items()):
            (allowed if self.hasRight(right, attrs["Owner"], attrs["OwnerGroup"]) else refused).append(jobID)
        return allowed, refused

    def sortJobs(self, jobDB: Any, right: str, jobIDs: Iterable[int]) -> tuple[list[int], list[int], list[int]]:
        """(allowed, refused, unknown) among ``jobIDs``, reading their owners from ``jobDB``."""
        ids = sorted({int(jobID) for jobID in jobIDs})
        owners = jobDB.getJobsAttributes(ids, ["Owner", "OwnerGroup"])
        allowed, refused = self.split(right, owners)
        return allowed, refused, [jobID for jobID in ids if jobID not in owners]

    def checkJobs(self, jobDB: Any, right: str, jobIDs: Iterable[int]) -> list[int]:
        """The existing jobs among ``jobIDs``; AuthorizationError if the caller lacks ``right`` on any."""
        allowed, refused, _ = self.sortJobs(jobDB, right, jobIDs)
        if refused:
            shown = ", ".join(map(str, refused[:20])) + (" ..." if len(refused) > 20 else "")
            raise AuthorizationError(f"{self.who} (group {self.group}) has no {right} right on job(s) {shown}")
        return allowed
