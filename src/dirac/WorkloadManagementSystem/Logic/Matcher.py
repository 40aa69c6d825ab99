"""The matcher: hand a pilot the best waiting job its resource can run, exactly once.

Eligible task queues come from one TaskQueueDB query over the resource description; one is
drawn at random weighted by fair share (group ``/Registry/Groups/<g>/JobShare``, default 1000,
split between the group's users by ``/Registry/Users/<u>/JobShare``, default 1, then equally
between each user's task queues); its highest-priority job is claimed by deleting it from the
queue (only one claimer can) and moved Waiting -> Matched through JobState.

With ``candidatesCacheTime`` (the Matcher service's ``CandidatesCacheTime``), the eligible task
queues and their weights are kept per resource shape for that many seconds, as long as no task
queue was created meanwhile (one cheap ``MAX(TQId)`` query tells): most requests then cost a
claim and a status change only. A queue emptied meanwhile just yields no job and the next is
tried; a round that finds nothing looks again without the cache.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Utilities.Exceptions import DatabaseError, InvalidArgument, NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.Exceptions import NoMatchFound, StatusConflict
from dirac.WorkloadManagementSystem.Logic.JobState import setJobStatus

log = getLogger("WorkloadManagement/Matcher")
DEFAULT_GROUP_SHARE = 1000.0
DEFAULT_USER_SHARE = 1.0
MAX_ROUNDS = 20


def _asList(value: Any) -> list[str]:
    if value is None:
        return []
    return toList(value) if isinstance(value, str) else [str(v) for v in value if str(v).strip()]


def normaliseResource(description: Mapping[str, Any]) -> dict[str, Any]:
    """The resource as TaskQueueDB.matchingTaskQueues takes it, from a DIRAC-style pilot description.

    Site and CPUTime are required; Platform/Platforms, Tag/Tags, RequiredTag/RequiredTags may be
    strings or lists; a resource with N processors also offers the tags MultiProcessor and
    1Processors .. NProcessors that job descriptions carry.
    """
    missing = [key for key in ("Site", "CPUTime") if not description.get(key)]
    if missing:
        raise InvalidArgument(f"resource description lacks {', '.join(missing)}: {dict(description)}")
    try:
        cpuTime = int(description["CPUTime"])
        processors = int(description.get("NumberOfProcessors") or 1)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"resource CPUTime and NumberOfProcessors must be integers: {exc}") from exc
    tags = set(_asList(description.get("Tag")) + _asList(description.get("Tags")))
    tags.update(f"{n}Processors" for n in range(1, processors + 1))
    if processors > 1:
        tags.add("MultiProcessor")
    resource = {
        "Site": str(description["Site"]), "GridCE": str(description.get("GridCE") or ""), "CPUTime": cpuTime,
        "NumberOfProcessors": processors, "Tags": sorted(tags),
        "Platforms": _asList(description.get("Platform")) + _asList(description.get("Platforms")),
        "RequiredTags": _asList(description.get("RequiredTag")) + _asList(description.get("RequiredTags")),
    }
    for key in ("Owner", "OwnerGroup", "VO", "JobType"):
        if description.get(key):
            resource[key] = _asList(description[key])
    return resource


def groupShare(group: str) -> float:
    """The fair share of a group (``/Registry/Groups/<group>/JobShare``)."""
    return max(0.0, gConfig.getValue(f"/Registry/Groups/{group}/JobShare", DEFAULT_GROUP_SHARE))


def userShare(user: str) -> float:
    """The relative share of a user within its groups (``/Registry/Users/<user>/JobShare``)."""
    return max(0.0, gConfig.getValue(f"/Registry/Users/{user}/JobShare", DEFAULT_USER_SHARE))


def taskQueueShares(taskQueues: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """{TQId: weight}: group share split between the group's users, then between each user's queues."""
    byGroup: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for tq in taskQueues:
        byGroup[tq["OwnerGroup"]][tq["Owner"]].append(tq["TQId"])
    weights: dict[int, float] = {}
    for group, owners in byGroup.items():
        shares = {owner: userShare(owner) for owner in owners}
        total = sum(shares.values()) or 1.0
        for owner, tqIDs in owners.items():
            for tqID in tqIDs:
                weights[tqID] = groupShare(group) * shares[owner] / total / len(tqIDs)
    return weights


def weightedOrder(weights: Mapping[int, float], rng: random.Random) -> list[int]:
    """The keys in a random order where heavier ones tend to come first (weighted sampling)."""
    def key(tqID: int) -> float:
        weight = weights[tqID]
        return rng.random() ** (1.0 / weight) if weight > 0 else -1.0

    return sorted(weights, key=key, reverse=True)


class Matcher:
    """requestJob over a TaskQueueDB and JobDB/JobLoggingDB."""

    def __init__(self, jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB,
                 rng: random.Random | None = None, candidatesCacheTime: float = 0.0):
        self.jobDB = jobDB
        self.loggingDB = loggingDB
        self.taskQueueDB = taskQueueDB
        self.rng = rng or random.Random()
        self.candidatesCacheTime = candidatesCacheTime
        #: resource shape -> (valid until, newest TQId then, eligible task queues, their weights)
        self._candidates: dict[str, tuple[float, int, list[dict[str, Any]], dict[int, float]]] = {}
        self._lock = threading.Lock()

    def _eligible(self, resource: Mapping[str, Any], fresh: bool) -> tuple[list[dict[str, Any]], dict[int, float]]:
        """The task queues this resource may take jobs from, and their fair-share weights."""
        if self.candidatesCacheTime <= 0:
            taskQueues = self.taskQueueDB.matchingTaskQueues(resource)
            return taskQueues, taskQueueShares(taskQueues)
        key = repr(sorted(resource.items()))
        newest = self.taskQueueDB.newestTaskQueueID()
        now = time.monotonic()
        with self._lock:
            cached = self._candidates.get(key)
        if not fresh and cached and cached[0] > now and cached[1] == newest:
            return cached[2], cached[3]
        taskQueues = self.taskQueueDB.matchingTaskQueues(resource)
        weights = taskQueueShares(taskQueues)
        with self._lock:
            self._candidates[key] = (now + self.candidatesCacheTime, newest, taskQueues, weights)
        return taskQueues, weights

    def _claim(self, tqIDs: list[int]) -> tuple[int, int, int] | None:
        """(JobID, priority, TQId) of a job taken from the first of these task queues that has one."""
        for tqID in tqIDs:
            try:
                jobID, priority, remaining = self.taskQueueDB.claimJob(tqID)
            except DatabaseError as exc:  # e.g. a deadlock: the claim was rolled back, try elsewhere
                log.warning("claim in task queue %s failed, trying another: %s", tqID, exc)
                continue
            if not remaining:
                self.taskQueueDB.deleteTaskQueueIfEmpty(tqID)
            if jobID is not None:
                return jobID, priority, tqID
        return None

    def requestJob(self, resourceDescription: Mapping[str, Any], source: str = "Matcher") -> dict[str, Any]:
        """Claim the job to run on this resource: {JobID, JDL, Owner, OwnerGroup, VO, JobType, ...}.

        Raises NoMatchFound when no waiting job fits, InvalidArgument for a bad description.
        """
        resource = normaliseResource(resourceDescription)
        for round_ in range(MAX_ROUNDS):
            taskQueues, weights = self._eligible(resource, fresh=round_ > 0)
            if not taskQueues:
                break
            claimed = self._claim(weightedOrder(weights, self.rng))
            if claimed is None:
                continue  # every candidate was taken by concurrent matchers: look again
            jobID, priority, tqID = claimed
            try:
                setJobStatus(self.jobDB, self.loggingDB, jobID, JobStatus.MATCHED, "Assigned", source=source,
                             expectedStatus=JobStatus.WAITING, extraAttributes={"Site": resource["Site"]})
            except (StatusConflict, NotFound) as exc:
                log.warning("Job %s taken from its task queue but not matched: %s", jobID, exc)
                continue
            queue = next(tq for tq in taskQueues if tq["TQId"] == tqID)
            log.info("Job %s matched to %s at %s", jobID, resource.get("GridCE") or "a resource", resource["Site"])
            return {"JobID": jobID, "JDL": self.jobDB.getJobJDL(jobID), "TaskQueueID": tqID, "UserPriority": priority,
                    **{key: queue[key] for key in ("Owner", "OwnerGroup", "VO", "JobType")}}
        raise NoMatchFound(f"No match found for the resource at {resource['Site']} "
                           f"(CPUTime {resource['CPUTime']}, {resource['NumberOfProcessors']} processor(s))")
