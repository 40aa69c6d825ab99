"""The optimizer chain: claim a batch of new jobs, check them link by link, queue or fail them.

A batch goes through three steps, each with few database round trips whatever its size:

1. ``claimJobsToOptimize`` moves up to BatchSize jobs Received -> Checking (and takes back the
   Checking jobs whose claim is older than ClaimTimeout: their agent stopped) through
   ``JobState.claimJobs``, so copies of the agent running at once never share a job.
2. ``runChain`` hands the batch to each optimizer in turn (``Optimizer.optimize``); an
   optimizer fails a job (``OptimizationTask.fail``), defers it (left Checking, taken back after
   ClaimTimeout), or records what the next links need (site candidates, a narrowed JDL).
3. ``finishTasks`` applies every outcome in one transaction (``JobState.applyStatusChanges``):
   Failed with a minor status naming the problem, or Waiting and into the task queue of the
   job's requirements.
"""

from __future__ import annotations

import importlib
import re
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus

from dirac.Core.Base.DB import utcnow
from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Utilities.Exceptions import ConfigurationError, DatabaseError, DiracError
from dirac.Core.Utilities.Logging import getLogger
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.DB.JobDB import JobDB
from dirac.WorkloadManagementSystem.DB.JobLoggingDB import JobLoggingDB
from dirac.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from dirac.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB, normaliseRequirements
from dirac.WorkloadManagementSystem.Logic.Exceptions import InvalidJDL
from dirac.WorkloadManagementSystem.Logic.JobDescription import NAME_RE, requirementsFromJDL
from dirac.WorkloadManagementSystem.Logic.JobState import StatusChange, applyStatusChanges, claimJobs

log = getLogger("WorkloadManagement/Optimization")

DEFAULT_CHAIN = ("JobSanity", "InputData", "JobScheduling")
EXECUTOR_PACKAGE = "dirac.WorkloadManagementSystem.Executor"
SOURCE = "Optimizers"
SITES_SECTION = "/Resources/Sites"
TASK_QUEUE_ATTEMPTS = 3
TASK_ATTRIBUTES = ("Owner", "OwnerGroup", "VO", "JobType", "Site", "UserPriority")

# Minor statuses of jobs the optimizers fail, besides those of JobMinorStatus (ILLEGAL_JOB_JDL,
# INPUT_NOT_AVAILABLE, NO_CANDIDATE_SITE_FOUND); the details go to the application status.
NO_EXECUTABLE = "No executable in the job description"
INPUT_SANDBOX_NOT_REGISTERED = "Input sandbox not registered"
INPUT_SANDBOX_NOT_OWNED = "Input sandbox belongs to another owner"
NO_FILE_CATALOG = "Input data cannot be resolved: no File Catalog configured"
UNKNOWN_SITE = "Requested site is not configured"

#: Resolves LFNs to the storage elements holding them: {LFN: [SE]}; LFNs without replica may be missing.
ReplicaResolver = Callable[[Sequence[str]], Mapping[str, Sequence[str]]]

MAX_JDL_NESTING = 5
_BRACKETS = re.compile(r"[\[\]]")


# -- reading a stored JDL ---------------------------------------------------------------------------------------
def _classAdParserTrap(text: str) -> str | None:
    """Why DIRACCommon's ClassAd parser would not return on ``text``, or None when it will.

    That parser ignores quotes: it loops forever unless every '[' is closed and every ']' but the
    last is directly followed by ';' (so a value such as "x[1]" cannot be read either).
    """
    depth = 0
    last = len(text) - 1
    for match in _BRACKETS.finditer(text):
        position = match.start()
        if match.group() == "[":
            depth += 1
            if depth > MAX_JDL_NESTING:
                return f"brackets nested deeper than {MAX_JDL_NESTING} levels"
            continue
        depth -= 1
        if position == last:
            return "unbalanced '['" if depth else None
        if depth <= 0:
            return f"unbalanced ']' at character {position}"
        if text[position + 1:position + 2] != ";":
            return f"']' at character {position} is not followed by ';' (brackets inside a value cannot be read)"
    return "unbalanced '['" if depth else None


def parseStoredJDL(text: str) -> ClassAd:
    """The ClassAd of a JDL read from JobDB; InvalidJDL when it cannot be read."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise InvalidJDL("malformed JDL: it is not enclosed in [ ]")
    problem = _classAdParserTrap(text)
    if problem:
        raise InvalidJDL(f"malformed JDL: {problem}")
    classAd = ClassAd(text)
    names = classAd.getAttributes()
    if not classAd.isOK() or not names:
        raise InvalidJDL("malformed JDL: no attribute could be read")
    bad = [name for name in names if not NAME_RE.match(name)]
    if bad:
        raise InvalidJDL(f"malformed JDL: {bad[0]!r} is not an attribute name")
    return classAd


# -- sites and storage elements of the CS ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteMap:
    """The sites of the CS (/Resources/Sites/<Grid>/<Site>) and the storage elements (<Site>/SE) at each."""

    sites: frozenset[str] = frozenset()
    sitesBySE: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def fromCS(cls) -> SiteMap:
        """The sites and SEs configured now."""
        sites: set[str] = set()
        bySE: dict[str, set[str]] = {}
        grids = gConfig.getSections(SITES_SECTION)
        for grid in grids["Value"] if grids["OK"] else []:
            names = gConfig.getSections(f"{SITES_SECTION}/{grid}")
            for site in names["Value"] if names["OK"] else []:
                sites.add(site)
                for se in toList(gConfig.getValue(f"{SITES_SECTION}/{grid}/{site}/SE", "")):
                    bySE.setdefault(se, set()).add(site)
        return cls(frozenset(sites), {se: frozenset(names) for se, names in bySE.items()})

    def sitesHolding(self, storageElements: Iterable[str]) -> set[str]:
        """The sites at which at least one of ``storageElements`` is."""
        return set().union(*(self.sitesBySE.get(se, ()) for se in storageElements))


# -- one job of a batch ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class OptimizationTask:
    """One job on its way through the chain, with what the optimizers learn about it."""

    jobID: int
    attributes: dict[str, Any]
    jdl: str
    inputData: list[str] = field(default_factory=list)
    classAd: ClassAd | None = None
    jdlError: str = ""
    #: Sites holding all the input data (None: the job reads none, any site will do).
    siteCandidates: set[str] | None = None
    #: The Site attribute to set when the job is queued (None: unchanged).
    site: str | None = None
    jdlChanged: bool = False
    failure: StatusChange | None = None
    deferral: str = ""

    @property
    def active(self) -> bool:
        """True while the job is neither failed nor deferred."""
        return self.failure is None and not self.deferral

    @property
    def owner(self) -> str:
        return str(self.attributes.get("Owner") or "")

    @property
    def ownerGroup(self) -> str:
        return str(self.attributes.get("OwnerGroup") or "")

    def jdlList(self, name: str) -> list[str]:
        """A list attribute of the JDL ([] when absent or unreadable)."""
        if self.classAd is None or not self.classAd.lookupAttribute(name):
            return []
        return [value for value in self.classAd.getListFromExpression(name) if value.strip()]

    def jdlFlag(self, name: str) -> bool:
        """Whether a boolean attribute of the JDL is true (``true`` or ``"True"``)."""
        if self.classAd is None or not self.classAd.lookupAttribute(name):
            return False
        return self.classAd.get_expression(name).strip().strip('"').lower() in ("true", "yes", "1")

    def inputDataLFNs(self) -> list[str]:
        """The LFNs the job reads (JobDB's InputData table and the JDL's InputData), without 'LFN:'."""
        lfns = set(self.inputData) | {lfn.removeprefix("LFN:") for lfn in self.jdlList("InputData")}
        return sorted(lfn for lfn in lfns if lfn)

    def fail(self, optimizer: str, minorStatus: str, detail: str = "") -> None:
        """Mark the job Failed by ``optimizer`` with ``minorStatus`` (``detail`` becomes its application status)."""
        if self.active:
            self.failure = StatusChange(JobStatus.FAILED, minorStatus, detail or minorStatus, source=optimizer)

    def defer(self, optimizer: str, reason: str) -> None:
        """Leave the job Checking: another pass takes it back after ClaimTimeout."""
        if self.active:
            self.deferral = f"{optimizer}: {reason}"


# -- the optimizers -------------------------------------------------------------------------------------------------
@dataclass
class OptimizerEnvironment:
    """What the optimizers may use: the WMS databases and, when given, a replica resolver."""

    jobDB: JobDB
    loggingDB: JobLoggingDB
    taskQueueDB: TaskQueueDB
    sandboxDB: SandboxMetadataDB
    replicaResolver: ReplicaResolver | None = None


class Optimizer:
    """One link of the chain: looks at the active jobs of a batch, fails or defers some, notes what comes next."""

    name: ClassVar[str] = ""
    #: True for the link that reports unreadable JDLs; the others only see jobs whose JDL was read.
    readsUnparsedJDL: ClassVar[bool] = False

    def __init__(self) -> None:
        self.log = getLogger(f"WorkloadManagement/{self.name or type(self).__name__}")

    @classmethod
    def fromEnvironment(cls, environment: OptimizerEnvironment) -> Optimizer:
        """The optimizer built from what the agent holds."""
        return cls()

    def optimize(self, tasks: Sequence[OptimizationTask]) -> None:
        """Check the tasks of a batch (all active): fail or defer those that cannot go on."""
        raise NotImplementedError(f"{type(self).__name__} must implement optimize()")


def optimizerClass(name: str) -> type[Optimizer]:
    """The optimizer called ``name`` (a module of the Executor package) or given as 'package.module:Class'."""
    module, _, className = name.partition(":") if ":" in name else (f"{EXECUTOR_PACKAGE}.{name}", "", name)
    try:
        cls = getattr(importlib.import_module(module), className)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"unknown optimizer {name!r} ({type(exc).__name__}: {exc}); the installed ones are "
                                 f"{', '.join(DEFAULT_CHAIN)}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise ConfigurationError(f"optimizer {name!r} is not an Optimizer subclass")
    return cls


def buildChain(names: Sequence[str], environment: OptimizerEnvironment) -> list[Optimizer]:
    """The optimizers named in order, built from ``environment`` (ConfigurationError for an unknown name)."""
    if not names:
        raise ConfigurationError("the optimizer chain is empty (set Optimizers = JobSanity, InputData, JobScheduling)")
    return [optimizerClass(name).fromEnvironment(environment) for name in names]


# -- a batch --------------------------------------------------------------------------------------------------------
@dataclass
class BatchResult:
    """What became of the jobs of one or more batches."""

    claimed: int = 0
    waiting: int = 0
    failed: int = 0
    deferred: int = 0
    leftAlone: int = 0
    taskQueues: set[int] = field(default_factory=set)
    seconds: float = 0.0

    def add(self, other: BatchResult) -> None:
        """Add the counts of another batch to these."""
        for name in ("claimed", "waiting", "failed", "deferred", "leftAlone", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.taskQueues |= other.taskQueues

    def summary(self) -> str:
        """One line for the log."""
        text = (f"{self.claimed} job(s) checked in {self.seconds:.2f} s: {self.waiting} Waiting in "
                f"{len(self.taskQueues)} task queue(s), {self.failed} Failed")
        if self.deferred:
            text += f", {self.deferred} left Checking for a later pass"
        if self.leftAlone:
            text += f", {self.leftAlone} changed by others meanwhile"
        return text


def claimJobsToOptimize(jobDB: JobDB, loggingDB: JobLoggingDB, limit: int, claimTimeout: float,
                        firstOptimizer: str, source: str = SOURCE) -> list[int]:
    """Move up to ``limit`` Received jobs, and Checking ones claimed over ``claimTimeout`` s ago, to Checking."""
    staleBefore = utcnow() - timedelta(seconds=claimTimeout)
    return claimJobs(jobDB, loggingDB, {JobStatus.CHECKING: staleBefore, JobStatus.RECEIVED: None},
                     JobStatus.CHECKING, firstOptimizer, limit, source)


def _readJDLs(jobDB: JobDB, jobIDs: Sequence[int]) -> dict[int, str | Exception]:
    """{JobID: JDL text, or the error reading it} (one query unless a stored JDL is corrupt)."""
    try:
        return dict(jobDB.getJobJDLs(jobIDs))
    except (ValueError, zlib.error):  # a JDL neither plain nor compressed: find which one, one by one
        jdls: dict[int, str | Exception] = {}
        for jobID in jobIDs:
            try:
                jdls[jobID] = jobDB.getJobJDL(jobID)
            except (ValueError, zlib.error) as exc:
                jdls[jobID] = exc
            except DiracError:  # removed meanwhile
                continue
        return jdls


def loadTasks(jobDB: JobDB, jobIDs: Sequence[int]) -> list[OptimizationTask]:
    """The tasks of the jobs among ``jobIDs`` that still exist, with their JDL read (or why it cannot be)."""
    attributes = jobDB.getJobsAttributes(jobIDs, TASK_ATTRIBUTES)
    jdls = _readJDLs(jobDB, list(attributes))
    inputData = jobDB.getJobsInputData(list(attributes))
    tasks = []
    for jobID in sorted(attributes):
        stored = jdls.get(jobID, "")
        task = OptimizationTask(jobID, attributes[jobID], stored if isinstance(stored, str) else "",
                                inputData.get(jobID, []))
        if isinstance(stored, Exception):
            task.jdlError = f"malformed JDL: it cannot be decoded ({type(stored).__name__}: {stored})"
        else:
            try:
                task.classAd = parseStoredJDL(stored)
            except InvalidJDL as exc:
                task.jdlError = exc.message
        tasks.append(task)
    return tasks


def _optimize(optimizer: Optimizer, tasks: list[OptimizationTask]) -> None:
    """Run one link over the batch; when it raises, run it job by job and defer only the jobs it raises on."""
    try:
        optimizer.optimize(tasks)
        return
    except Exception as exc:
        log.error("%s failed on a batch of %d job(s), retrying job by job: %s: %s", optimizer.name, len(tasks),
                  type(exc).__name__, exc)
    for task in tasks:
        if not task.active:
            continue
        try:
            optimizer.optimize([task])
        except Exception as exc:
            log.error("Job %s: %s failed, left Checking for a later pass: %s: %s", task.jobID, optimizer.name,
                      type(exc).__name__, exc)
            task.defer(optimizer.name, f"{type(exc).__name__}: {exc}")


def runChain(optimizers: Sequence[Optimizer], tasks: Sequence[OptimizationTask]) -> None:
    """Hand the active tasks to each optimizer in turn; a JDL no link reported unreadable fails the job anyway."""
    for optimizer in optimizers:
        active = [task for task in tasks if task.active and (task.classAd is not None or optimizer.readsUnparsedJDL)]
        if active:
            _optimize(optimizer, active)
    for task in tasks:
        if task.active and task.classAd is None:
            task.fail(SOURCE, JobMinorStatus.ILLEGAL_JOB_JDL, task.jdlError)


def _queueRequirements(classAd: ClassAd, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The task queue requirements of a job's (possibly narrowed) JDL, checked; ``known`` caches them by text."""
    expression = classAd.get_expression("JobRequirements")
    if expression not in known:  # the jobs of a parametric submission share theirs: read once per batch
        known[expression] = normaliseRequirements(requirementsFromJDL(f"[ JobRequirements = {expression}; ]"))
    return known[expression]


def finishTasks(environment: OptimizerEnvironment, tasks: Sequence[OptimizationTask], source: str) -> BatchResult:
    """Fail the failed tasks and queue the others as Waiting (deferred ones stay Checking); what happened."""
    result = BatchResult(claimed=len(tasks))
    requirements: dict[int, dict[str, Any]] = {}
    known: dict[str, dict[str, Any]] = {}
    newJDLs: dict[int, str] = {}
    for task in tasks:
        if not task.active or task.classAd is None:
            continue
        if task.jdlChanged:
            task.jdl = task.classAd.asJDL()
        try:
            requirements[task.jobID] = _queueRequirements(task.classAd, known)
        except DiracError as exc:
            task.fail(source, JobMinorStatus.ILLEGAL_JOB_JDL, f"no valid JobRequirements: {exc.message}")
            continue
        if task.jdlChanged:
            newJDLs[task.jobID] = task.jdl
    changes: dict[int, StatusChange] = {}
    for task in tasks:
        if task.failure is not None:
            changes[task.jobID] = task.failure
        elif task.active:
            changes[task.jobID] = StatusChange(JobStatus.WAITING, JobMinorStatus.PILOT_AGENT_SUBMISSION, source=source,
                                               attributes={"Site": task.site} if task.site else None)
        else:
            result.deferred += 1
            log.warning("Job %s: left Checking (%s)", task.jobID, task.deferral)
    environment.jobDB.setJobJDLs(newJDLs)
    applied = applyStatusChanges(environment.jobDB, environment.loggingDB, changes, JobStatus.CHECKING)
    result.leftAlone = len(changes) - len(applied)
    queued = [task for task in tasks if applied.get(task.jobID) == JobStatus.WAITING]
    for task in tasks:
        if applied.get(task.jobID) == JobStatus.FAILED and task.failure is not None:
            result.failed += 1
            log.warning("Job %s: Failed by %s: %s (%s)", task.jobID, task.failure.source, task.failure.minorStatus,
                        task.failure.applicationStatus)
    if queued:
        tqIDs = _insertIntoTaskQueues(environment.taskQueueDB, [
            (task.jobID, requirements[task.jobID], int(task.attributes.get("UserPriority") or 0)) for task in queued])
        result.waiting = len(tqIDs)
        result.taskQueues = set(tqIDs.values())
    return result


def _insertIntoTaskQueues(taskQueueDB: TaskQueueDB, jobs: list[tuple[int, dict[str, Any], int]]) -> dict[int, int]:
    """TaskQueueDB.insertJobs, tried again when it fails (e.g. a deadlock with another agent creating a queue)."""
    for attempt in range(1, TASK_QUEUE_ATTEMPTS + 1):
        try:
            return taskQueueDB.insertJobs(jobs)
        except DatabaseError as exc:
            if attempt == TASK_QUEUE_ATTEMPTS:
                log.error("Jobs %s are Waiting but in no task queue: %s", [job[0] for job in jobs], exc)
                raise
            log.warning("task queue insertion of %d job(s) failed (attempt %d), trying again: %s", len(jobs),
                        attempt, exc)
            time.sleep(0.1 * attempt)
    return {}


def optimizeJobs(environment: OptimizerEnvironment, optimizers: Sequence[Optimizer], jobIDs: Sequence[int]
                 ) -> BatchResult:
    """Run the chain over claimed (Checking) jobs and apply the outcome; what happened to them."""
    started = time.monotonic()
    tasks = loadTasks(environment.jobDB, jobIDs)
    runChain(optimizers, tasks)
    result = finishTasks(environment, tasks, optimizers[-1].name if optimizers else SOURCE)
    result.seconds = time.monotonic() - started
    return result
