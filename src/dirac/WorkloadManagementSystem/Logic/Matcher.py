"""The matcher: hand a pilot the best waiting job its resource can run, exactly once.

Eligible task queues come from one TaskQueueDB query over the resource description; one is
drawn at random weighted by fair share (group ``/Registry/Groups/<g>/JobShare``, default 1000,
split between the group's users by ``/Registry/Users/<u>/JobShare``, default 1, then equally
between each user's task queues); its highest-priority job is claimed by deleting it from the
queue (only one claimer can) and moved Waiting -> Matched through JobState.

A request costs one TaskQueueDB transaction (up to SAMPLES queues drawn by weight, each looked at
with ``SELECT ... LIMIT 2 FOR UPDATE SKIP LOCKED`` and the first job found deleted), one JobDB
transaction (``UPDATE ... WHERE Status='Waiting'``, the JDL, stale commands dropped) and one
logging insert (JobState.setJobMatched). When the three databases share a server (the same
MariaDB server and account, or the same SQLite file: ``DB.sharesServerWith``), the status change
and its logging record are written in the claim's transaction: one commit per match, and a job is
never out of its task queue without being Matched. When none of the drawn queues has a free job,
all are tried in weighted order (weightedOrder), still in one transaction.

With ``candidatesCacheTime`` (the Matcher service's ``CandidatesCacheTime``), the eligible task
queues and their weights are kept per resource shape for that many seconds, as long as no task
queue was created meanwhile (``MAX(TQId)``, read in the claim's transaction, tells; then nothing
is claimed and the queues are looked up again). Queues found empty are dropped from the cached
list; a round that finds nothing looks again without the cache.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Connection

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Utilities.Exceptions import DatabaseError, InvalidArgument, NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import Claim, TaskQueueDB
from dirac.WorkloadManagementSystem.Logic.Exceptions import NoMatchFound, StatusConflict
from dirac.WorkloadManagementSystem.Logic.JobState import setJobMatched

log = getLogger("WorkloadManagement/Matcher")
DEFAULT_GROUP_SHARE = 1000.0
DEFAULT_USER_SHARE = 1.0
MAX_ROUNDS = 20
#: task queues drawn by weight and tried in one claim transaction before all are tried in weighted order
SAMPLES = 3


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


@dataclass(frozen=True)
class Candidates:
    """The task queues a resource may take jobs from: by TQId, their fair-share weights for sampling."""

    taskQueues: dict[int, dict[str, Any]]
    weights: dict[int, float]
    newest: int | None = None  # the newest TQId when looked up (None: not cached, not checked)
    validUntil: float = 0.0
    ids: list[int] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)

    @classmethod
    def build(cls, taskQueues: Sequence[Mapping[str, Any]], weights: Mapping[int, float] | None = None,
              newest: int | None = None, validUntil: float = 0.0) -> Candidates:
        queues = {int(tq["TQId"]): dict(tq) for tq in taskQueues}
        weights = dict(weights) if weights is not None else taskQueueShares(list(queues.values()))
        ids = [tqID for tqID in queues if weights[tqID] > 0]
        return cls(queues, {tqID: weights[tqID] for tqID in queues}, newest, validUntil, ids,
                   list(itertools.accumulate(weights[tqID] for tqID in ids)))

    def without(self, tqIDs: Iterable[int]) -> Candidates:
        gone = set(tqIDs)
        return Candidates.build([tq for tqID, tq in self.taskQueues.items() if tqID not in gone], self.weights,
                                self.newest, self.validUntil)

    def sample(self, rng: random.Random, k: int) -> list[int]:
        """Up to ``k`` distinct TQIds drawn by weight (the first one exactly as weightedOrder's first)."""
        if not self.ids:
            return []
        return list(dict.fromkeys(rng.choices(self.ids, cum_weights=self.cumulative, k=k)))


class Matcher:
    """requestJob over a TaskQueueDB and JobDB/JobLoggingDB."""

    def __init__(self, jobDB: JobDB, loggingDB: JobLoggingDB, taskQueueDB: TaskQueueDB,
                 rng: random.Random | None = None, candidatesCacheTime: float = 0.0):
        self.jobDB = jobDB
        self.loggingDB = loggingDB
        self.taskQueueDB = taskQueueDB
        self.rng = rng or random.Random()
        self.candidatesCacheTime = candidatesCacheTime
        #: resource shape -> the eligible task queues when last looked up
        self._candidates: dict[str, Candidates] = {}
        self._lock = threading.Lock()
        #: the three databases reached through one connection: claim and status change in one transaction
        self.oneTransaction = taskQueueDB.sharesServerWith(jobDB) and taskQueueDB.sharesServerWith(loggingDB)

    def _eligible(self, resource: Mapping[str, Any], key: str, fresh: bool) -> Candidates:
        """The task queues this resource may take jobs from, and their fair-share weights."""
        if self.candidatesCacheTime <= 0:
            return Candidates.build(self.taskQueueDB.matchingTaskQueues(resource))
        now = time.monotonic()
        with self._lock:
            cached = self._candidates.get(key)
        if not fresh and cached and cached.validUntil > now:
            return cached  # whether a task queue was created since is checked in the claim's transaction
        newest = self.taskQueueDB.newestTaskQueueID()
        candidates = Candidates.build(self.taskQueueDB.matchingTaskQueues(resource), newest=newest,
                                      validUntil=now + self.candidatesCacheTime)
        with self._lock:
            self._candidates[key] = candidates
        return candidates

    def _forget(self, key: str, tqIDs: list[int]) -> None:
        """Drop emptied task queues from the cached candidates."""
        if not tqIDs or self.candidatesCacheTime <= 0:
            return
        with self._lock:
            cached = self._candidates.get(key)
            if cached is not None:
                self._candidates[key] = cached.without(tqIDs)

    def _claimFrom(self, tqIDs: list[int], newest: int | None, site: str, source: str) -> tuple[Claim | None, bool]:
        """(the claim, or None when it failed, whether a task queue was created since)."""
        if not tqIDs:
            return None, False
        then = partial(self._setMatched, site, source) if self.oneTransaction else None
        try:
            claim = self.taskQueueDB.claimFirstJob(tqIDs, newest=newest, then=then)
        except DatabaseError as exc:  # e.g. a deadlock: the claim was rolled back, try again
            log.warning("claim in task queues %s failed, trying again: %s", tqIDs[:SAMPLES], exc)
            return None, False
        return claim, newest is not None and claim.newest != newest

    def _setMatched(self, site: str, source: str, conn: Connection, jobID: int) -> str | None:
        """In the claim's transaction: Waiting -> Matched; the JDL, or None when the job was no longer Waiting."""
        try:
            return setJobMatched(self.jobDB, self.loggingDB, jobID, site, source=source, conn=conn)
        except (StatusConflict, NotFound) as exc:  # its task queue entry is removed all the same
            log.warning("Job %s taken from its task queue but not matched: %s", jobID, exc)
            return None

    def _claim(self, key: str, candidates: Candidates, site: str, source: str) -> tuple[Claim | None, bool]:
        """A job from the candidates: a few queues drawn by weight, else all in weighted order; (claim, stale)."""
        picks = candidates.sample(self.rng, SAMPLES)
        claim, stale = self._claimFrom(picks, candidates.newest, site, source)
        self._forget(key, claim.emptied if claim else [])
        if stale or (claim is not None and claim.jobID is not None):
            return claim, stale
        tried = set(picks)
        rest = [tqID for tqID in weightedOrder(candidates.weights, self.rng) if tqID not in tried]
        claim, _ = self._claimFrom(rest, None, site, source)
        self._forget(key, claim.emptied if claim else [])
        return claim, False

    def requestJob(self, resourceDescription: Mapping[str, Any], source: str = "Matcher") -> dict[str, Any]:
        """Claim the job to run on this resource: {JobID, JDL, Owner, OwnerGroup, VO, JobType, ...}.

        Raises NoMatchFound when no waiting job fits, InvalidArgument for a bad description.
        """
        resource = normaliseResource(resourceDescription)
        key = repr(sorted(resource.items()))
        fresh = False
        for _ in range(MAX_ROUNDS):
            candidates = self._eligible(resource, key, fresh)
            if not candidates.taskQueues:
                if fresh or self.candidatesCacheTime <= 0:
                    break
                fresh = True  # the cached queues are all empty: a queue may have had jobs added since
                continue
            claim, fresh = self._claim(key, candidates, resource["Site"], source)
            if claim is None or claim.jobID is None:
                fresh = True  # every candidate was empty or taken by concurrent matchers: look again
                continue
            jobID, tqID = claim.jobID, int(claim.tqID or 0)
            jdl = claim.outcome if self.oneTransaction else self._setMatched(resource["Site"], source, None, jobID)
            if jdl is None:
                continue
            queue = candidates.taskQueues[tqID]
            log.debug("Job %s matched to %s at %s", jobID, resource.get("GridCE") or "a resource", resource["Site"])
            return {"JobID": jobID, "JDL": jdl, "TaskQueueID": tqID, "UserPriority": claim.priority,
                    **{key: queue[key] for key in ("Owner", "OwnerGroup", "VO", "JobType")}}
        raise NoMatchFound(f"No match found for the resource at {resource['Site']} "
                           f"(CPUTime {resource['CPUTime']}, {resource['NumberOfProcessors']} processor(s))")
