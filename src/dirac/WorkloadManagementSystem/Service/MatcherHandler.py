"""WorkloadManagement/Matcher: pilots ask for the job their slot should run.

A pilot only gets jobs of its own VO; a private pilot (``Pilot`` property, not
``GenericPilot``) only its own user's jobs. The job is claimed exactly once (Logic/Matcher)
and moves Waiting -> Matched; commands left over from an earlier attempt are dropped.
"""

from __future__ import annotations

from typing import Any

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

from dirac.Core.Config import gConfig
from dirac.Core.Security import Properties
from dirac.Core.Tornado.RequestHandler import RequestHandler, ServiceInfo
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.PilotAgentsDB import PilotAgentsDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.Matcher import Matcher, normaliseResource

PILOTS = [Properties.GenericPilot, Properties.Pilot]
OBSERVERS = [Properties.GenericPilot, Properties.Pilot, Properties.TrustedHost, Properties.JobAdministrator,
             Properties.Operator, Properties.SiteManager]


def resourceFromJDL(jdl: str) -> dict[str, Any]:
    """A resource description given as a ClassAd: {attribute: value}, lists kept as lists."""
    classAd = ClassAd(jdl if jdl.strip().startswith("[") else f"[{jdl}]")
    if not classAd.isOK():
        raise InvalidArgument("the resource description is not a valid ClassAd")
    description: dict[str, Any] = {}
    for name in classAd.getAttributes():
        expression = classAd.get_expression(name).strip()
        description[name] = (classAd.getListFromExpression(name) if expression.startswith("{")
                             else classAd.getAttributeString(name))
    return description


class MatcherHandler(RequestHandler):
    """Job matching for pilots, and the task queues a resource could serve."""

    matcher: Matcher
    taskQueueDB: TaskQueueDB
    pilotAgentsDB: PilotAgentsDB

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        cls.taskQueueDB = TaskQueueDB()
        cls.matcher = Matcher(JobDB(), JobLoggingDB(), cls.taskQueueDB,
                              candidatesCacheTime=gConfig.getValue(f"{serviceInfo.section}/CandidatesCacheTime", 5.0))
        cls.pilotAgentsDB = PilotAgentsDB()

    def _limited(self, description: dict[str, Any]) -> dict[str, Any]:
        """The description restricted to what this pilot may run (its VO; its owner for private pilots)."""
        limited = dict(description)
        properties = self.credDict.get("properties", [])
        vo = self.credDict.get("VO")
        if vo and Properties.JobAdministrator not in properties:
            limited["VO"] = [vo]
        if Properties.GenericPilot not in properties and Properties.JobAdministrator not in properties:
            limited["Owner"] = [self.credDict.get("username") or ""]
            limited["OwnerGroup"] = [self.credDict.get("group") or ""]
        return limited

    auth_requestJob = PILOTS

    def export_requestJob(self, resourceDescription: dict | str) -> dict[str, Any]:
        """The job this resource should run: {JobID, JDL, Owner, OwnerGroup, VO, JobType, TaskQueueID, ...}."""
        description = (resourceFromJDL(resourceDescription) if isinstance(resourceDescription, str)
                       else resourceDescription)
        who = self.credDict.get("username") or self.credDict.get("hostname") or "a pilot"
        # commands meant for an earlier attempt are dropped in the transaction that sets Matched
        match = self.matcher.requestJob(self._limited(description), source=f"Matcher/{who}"[:32])
        pilot = description.get("PilotReference") or description.get("PilotStamp")
        if pilot:
            try:
                self.pilotAgentsDB.setJobForPilot(match["JobID"], str(pilot), site=str(description.get("Site") or ""))
            except NotFound as exc:  # a pilot not submitted by a SiteDirector (a test, a private pilot)
                self.log.info("Job %s matched by an unregistered pilot: %s", match["JobID"], exc.message)
        match["Group"] = match["OwnerGroup"]
        return match

    auth_getActiveTaskQueues = OBSERVERS

    def export_getActiveTaskQueues(self) -> dict[int, dict[str, Any]]:
        """{TQId: requirements, job count and Enabled} of every task queue."""
        return self.taskQueueDB.retrieveTaskQueues()

    auth_getMatchingTaskQueues = OBSERVERS

    def export_getMatchingTaskQueues(self, resourceDict: dict) -> dict[int, dict[str, Any]]:
        """{TQId: ...} of the non-empty task queues whose jobs this resource could run."""
        resource = normaliseResource(self._limited(resourceDict))
        tqIDs = [tq["TQId"] for tq in self.taskQueueDB.matchingTaskQueues(resource)]
        return self.taskQueueDB.retrieveTaskQueues(tqIDs) if tqIDs else {}
