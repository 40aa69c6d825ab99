"""The Computing Element interface: what the SiteDirector and the JobAgent call on every kind of CE.

A CE is configured from a flat dict of parameters: the SiteDirector merges the CS sections
``/Resources/Sites/<Grid>/<Site>/CEs/<CE>`` and ``.../CEs/<CE>/Queues/<Queue>`` (queue options win)
and adds ``Site``, ``GridCE`` and ``Queue``. Option names are DIRAC's: ``CEType``, ``Queue``,
``MaxTotalJobs``, ``MaxWaitingJobs``, ``NumberOfProcessors``, ``MaxRAM`` (MB), ``Tag``,
``RequiredTag``, ``Platform``, ``CPUTime`` (seconds) or ``maxCPUTime`` (minutes),
``WorkingDirectory``. Values may be CS strings; they are cast here, and a value that cannot be
cast is a ``ConfigurationError`` naming the CE and the option.

Error convention: the public methods (``submitJob``, ``getJobStatus``, ``getJobOutput``,
``killJob``, ``getCEStatus``, ``available``, ``getDescription``) are an edge and return DIRAC's
``S_OK``/``S_ERROR`` like DIRAC's CE API. Plug-ins implement the ``_``-prefixed hooks, which
return plain values and raise typed exceptions (``DiracError`` subclasses below); the base class
turns those into ``S_ERROR`` with their DErrno code. Other exceptions are bugs and propagate.
``getComputingElement`` (the factory) is not a CE method: it raises ``ConfigurationError``.

Job statuses are DIRAC's pilot status names (``PILOT_STATES``); references look like
``<scheme>://<host>/<id>``, e.g. ``local://box.example.org/5f0c...``.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, ParamSpec, TypeVar

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Base.Components import loadClass, pluginClasses
from dirac.Core.Config.ConfigurationClient import castValue, toList
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError, InvalidArgument
from dirac.Core.Utilities.Logging import getLogger
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType
from dirac.Resources.Computing.ProcessUtilities import readCredential

# -- pilot statuses (DIRAC's PilotStatus names) ---------------------------------------------------
SUBMITTED = "Submitted"
WAITING = "Waiting"
RUNNING = "Running"
DONE = "Done"
FAILED = "Failed"
ABORTED = "Aborted"
DELETED = "Deleted"
UNKNOWN = "Unknown"
PILOT_STATES = (SUBMITTED, WAITING, RUNNING, DONE, FAILED, ABORTED, DELETED, UNKNOWN)
PILOT_TRANSIENT_STATES = (SUBMITTED, WAITING, RUNNING)
PILOT_FINAL_STATES = (DONE, FAILED, ABORTED, DELETED)

# -- parameters: type and default of each known option, in one place ------------------------------
PARAMETER_DEFAULTS: dict[str, Any] = {
    "CEType": "",
    "Site": "",
    "GridCE": "",
    "Queue": "",
    "Platform": "",
    "MaxTotalJobs": 1,
    "MaxWaitingJobs": 1,
    "NumberOfProcessors": 1,
    "MaxRAM": 0,
    "CPUTime": 0,
    "maxCPUTime": 0,
    "Tag": [],
    "RequiredTag": [],
    "WorkingDirectory": "",
    "KillGracePeriod": 10.0,
}

_STAMP = re.compile(r"^[0-9a-f]{16}$")

P = ParamSpec("P")
T = TypeVar("T")


class ComputingElementError(DiracError):
    """A CE operation failed."""

    errno = DErrno.ERESGEN


class NotEnoughSlots(ComputingElementError):
    """The CE has no room for this submission (MaxTotalJobs, MaxWaitingJobs or free processors)."""

    errno = DErrno.ERESUNA


class SubmissionError(ComputingElementError):
    """The CE refused or failed to start a submission."""

    errno = DErrno.EWMSSUBM


class CEUnreachable(ComputingElementError):
    """The CE (or the host its commands run on) cannot be reached: refused, timed out, unknown host, dropped."""

    errno = DErrno.ERESUNA


class CEAuthenticationFailed(ComputingElementError):
    """The CE refused our credentials (e.g. an SSH key it does not accept) or its identity could not be verified."""

    errno = DErrno.ENOAUTH


class UnknownJobReference(ComputingElementError):
    """A job reference that this CE did not issue or no longer knows."""

    errno = DErrno.ERESUNK


def edgeMethod(method: Callable[P, T]) -> Callable[P, DReturnType[T]]:
    """Run a CE method and wrap its value in S_OK; a DiracError (or OSError) becomes a logged S_ERROR."""
    operation = method.__name__.lstrip("_")

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> DReturnType[T]:
        ce: ComputingElement = args[0]  # type: ignore[assignment]
        try:
            return S_OK(method(*args, **kwargs))
        except DiracError as exc:
            ce.log.warning("%s failed: %s", operation, exc.message)
            return exc.toSError()
        except OSError as exc:
            ce.log.exception("CE %s: %s failed", ce.ceName, operation)
            return S_ERROR(DErrno.ERESGEN, f"CE {ce.ceName}: {operation} failed: {exc}")

    return wrapper


def splitReference(reference: str) -> str:
    """The CE-local job id of a reference 'scheme://host/<id>' (a ':::stamp' suffix is ignored)."""
    jobID = reference.split(":::")[0].rstrip("/").rsplit("/", 1)[-1]
    if not jobID or jobID in (".", ".."):
        raise UnknownJobReference(f"malformed job reference {reference!r}")
    return jobID


def newStamp() -> str:
    """A fresh random pilot stamp (16 hex digits), the job id of the CEs that run local processes."""
    return secrets.token_hex(8)


def splitStamp(reference: str) -> str:
    """The stamp of a reference issued with ``newStamp`` (UnknownJobReference for anything else, e.g. '../x')."""
    stamp = splitReference(reference)
    if not _STAMP.match(stamp):
        raise UnknownJobReference(f"malformed job reference {reference!r}: no pilot stamp in it")
    return stamp


class ComputingElement:
    """Base of every CE: parameters, slot arithmetic, credentials and the S_OK/S_ERROR edge."""

    ceType: ClassVar[str] = ""
    #: scheme of the job references this CE issues, e.g. 'local' for 'local://host/<stamp>'
    referenceScheme: ClassVar[str] = ""

    def __init__(self, ceName: str, parameters: Mapping[str, Any] | None = None):
        self.ceName = ceName
        self.log = getLogger(f"Resources/Computing/{self.ceType or type(self).__name__}")
        self.ceParameters: dict[str, Any] = {}
        self.proxy: bytes | None = None
        self.token: str | None = None
        self.submittedJobs = 0
        #: reference -> the reason of its last status, filled by the plug-ins' _getJobStatus
        self.statusReasons: dict[str, str] = {}
        self.setParameters({"CEType": self.ceType, "GridCE": ceName, **(parameters or {})})

    # -- configuration ------------------------------------------------------------------------------
    def setParameters(self, parameters: Mapping[str, Any]) -> None:
        """Merge ``parameters`` into the CE's, casting known options to their type (ConfigurationError if invalid)."""
        for name, value in parameters.items():
            default = PARAMETER_DEFAULTS.get(name)
            if isinstance(value, str) and default is not None and not isinstance(default, str):
                try:
                    value = castValue(value, default)
                except ValueError as exc:
                    raise ConfigurationError(f"CE {self.ceName}: option {name}={value!r} is invalid: {exc}") from exc
            elif isinstance(default, list):
                value = toList(value)
            self.ceParameters[name] = value
        self._checkParameters()

    def _checkParameters(self) -> None:
        for name, minimum in (("MaxTotalJobs", 0), ("MaxWaitingJobs", 0), ("NumberOfProcessors", 1)):
            if int(self.getParameter(name)) < minimum:
                raise ConfigurationError(f"CE {self.ceName}: option {name}={self.getParameter(name)} is below {minimum}")

    def getParameter(self, name: str) -> Any:
        """The value of option ``name`` (its default when unset)."""
        return self.ceParameters.get(name, PARAMETER_DEFAULTS.get(name))

    @property
    def maxTotalJobs(self) -> int:
        return int(self.getParameter("MaxTotalJobs"))

    @property
    def maxWaitingJobs(self) -> int:
        return int(self.getParameter("MaxWaitingJobs"))

    @property
    def numberOfProcessors(self) -> int:
        return int(self.getParameter("NumberOfProcessors"))

    @property
    def killGracePeriod(self) -> float:
        return float(self.getParameter("KillGracePeriod"))

    def castOption(self, name: str, default: Any) -> Any:
        """A plug-in's own option ``name`` cast to the type of ``default`` (ConfigurationError naming it if invalid)."""
        value = self.ceParameters.get(name, default)
        if isinstance(default, list):
            return toList(value)
        try:
            return castValue(value, default) if isinstance(value, str) and not isinstance(default, str) else value
        except ValueError as exc:
            raise ConfigurationError(f"CE {self.ceName}: option {name}={value!r} is invalid: {exc}") from exc

    def cpuTime(self) -> int:
        """The queue's CPU time limit in seconds (``CPUTime``, else ``maxCPUTime`` minutes), 0 when unset."""
        cpuTime = int(self.getParameter("CPUTime"))
        return cpuTime or int(self.getParameter("maxCPUTime")) * 60

    # -- credentials --------------------------------------------------------------------------------
    def setProxy(self, proxy: str | bytes | None) -> None:
        """The proxy this CE uses for itself (PEM text or a file path; None forgets it)."""
        self.proxy = readCredential(proxy) if proxy is not None else None

    def setToken(self, token: str | Mapping[str, Any] | None) -> None:
        """The bearer token this CE uses for itself: an access token string or an OAuth2 token dict."""
        if isinstance(token, Mapping):
            if not token.get("access_token"):
                raise InvalidArgument(f"CE {self.ceName}: the token dict has no access_token")
            token = str(token["access_token"])
        self.token = token or None

    # -- references ---------------------------------------------------------------------------------
    def makeReference(self, stamp: str) -> str:
        """The job reference '<scheme>://<host>/<stamp>' of a job this CE started."""
        return f"{self.referenceScheme}://{socket.gethostname()}/{stamp}"

    def ownJobID(self, reference: str, pattern: re.Pattern[str], form: str) -> str:
        """The id in a reference '<scheme>://<CE>/<id>' this CE issued (UnknownJobReference for any other)."""
        reference = reference.split(":::")[0]
        prefix = f"{self.referenceScheme}://{self.ceName}/"
        jobID = reference[len(prefix):] if reference.startswith(prefix) else ""
        if not pattern.match(jobID):
            raise UnknownJobReference(f"{reference}: not a reference of CE {self.ceName} ({prefix}{form})")
        return jobID

    def splitReferences(self, references: list[str], localID: Callable[[str], str]
                        ) -> tuple[dict[str, str], dict[str, str]]:
        """({CE-local id: reference}, {reference: Unknown} for those ``localID`` refuses), the refusals logged."""
        ids: dict[str, str] = {}
        unknown: dict[str, str] = {}
        for reference in references:
            try:
                ids[localID(reference)] = reference
            except UnknownJobReference as exc:
                self.log.warning("%s", exc.message)
                unknown[reference] = UNKNOWN
        return ids, unknown

    # -- the interface (edge) -----------------------------------------------------------------------
    def submitJob(
        self, executableFile: str, proxy: str | bytes | None = None, numberOfJobs: int = 1, **kwargs: Any
    ) -> DReturnType[list[str]]:
        """Start ``numberOfJobs`` copies of ``executableFile``: S_OK([job reference, ...]) plus 'PilotStampDict'.

        ``proxy`` (PEM text or the path of a PEM file) is the credential given to the jobs.
        """
        if not isinstance(numberOfJobs, int) or numberOfJobs < 1:
            return InvalidArgument(f"numberOfJobs must be a positive integer, not {numberOfJobs!r}").toSError()
        result = self._submitJob(executableFile, proxy, numberOfJobs, kwargs)
        if result["OK"] and isinstance(result["Value"], dict):  # {reference: stamp}: stamps apart from the ids
            result["PilotStampDict"] = dict(result["Value"])
            result["Value"] = list(result["Value"])
        elif result["OK"]:
            result["PilotStampDict"] = {ref: splitReference(ref) for ref in result["Value"]}
        return result

    @edgeMethod
    def _submitJob(self, executableFile: str, proxy: str | bytes | None, numberOfJobs: int, kwargs: dict
                   ) -> list[str] | dict[str, str]:
        if not os.path.isfile(executableFile):
            raise InvalidArgument(f"CE {self.ceName}: executable {executableFile} does not exist")
        pem = readCredential(proxy) if proxy is not None else None
        references = self._submitJobs(executableFile, pem, numberOfJobs, **kwargs)
        self.submittedJobs += len(references)
        return references

    @edgeMethod
    def getJobStatus(self, jobIDList: list[str] | str) -> dict[str, str]:
        """S_OK({reference: status}) with statuses from PILOT_STATES; unknown references are 'Unknown'."""
        references = [jobIDList] if isinstance(jobIDList, str) else list(jobIDList)
        return self._getJobStatus(references)

    @edgeMethod
    def getJobOutput(self, jobID: str) -> tuple[str, str]:
        """S_OK((stdout, stderr)) of one job."""
        return self._getJobOutput(jobID)

    @edgeMethod
    def killJob(self, jobIDList: list[str] | str) -> None:
        """Stop the given jobs (SIGTERM, then SIGKILL after KillGracePeriod seconds for local processes)."""
        references = [jobIDList] if isinstance(jobIDList, str) else list(jobIDList)
        self._killJobs(references)

    @edgeMethod
    def getCEStatus(self) -> dict[str, Any]:
        """S_OK({'SubmittedJobs', 'RunningJobs', 'WaitingJobs', 'AvailableProcessors', ...})."""
        status = {"SubmittedJobs": self.submittedJobs, "RunningJobs": 0, "WaitingJobs": 0}
        status.update(self._getCEStatus())
        status.setdefault("AvailableProcessors", self.numberOfProcessors)
        return status

    @edgeMethod
    def available(self) -> int:
        """S_OK(number of jobs that can be submitted now) from MaxTotalJobs and MaxWaitingJobs."""
        status = self.getCEStatus()
        if not status["OK"]:
            raise ComputingElementError(f"CE {self.ceName}: cannot get its status: {status['Message']}")
        return self._freeSlots(status["Value"])

    def _freeSlots(self, status: Mapping[str, Any]) -> int:
        running, waiting = int(status["RunningJobs"]), int(status["WaitingJobs"])
        totalSlots = self.maxTotalJobs - running - waiting
        waitingSlots = self.maxWaitingJobs - waiting if self.maxWaitingJobs else totalSlots
        return max(0, min(totalSlots, waitingSlots))

    @edgeMethod
    def getDescription(self) -> dict[str, Any]:
        """S_OK(resource description for the Matcher): Site, GridCE, Queue, Platform, Tag, NumberOfProcessors, ..."""
        description: dict[str, Any] = {
            "Site": self.getParameter("Site"),
            "GridCE": self.getParameter("GridCE"),
            "CEType": self.getParameter("CEType"),
            "Queue": self.getParameter("Queue"),
            "Tag": list(self.getParameter("Tag")),
            "RequiredTag": list(self.getParameter("RequiredTag")),
            "NumberOfProcessors": self.numberOfProcessors,
        }
        for name, value in (("Platform", self.getParameter("Platform")), ("MaxRAM", int(self.getParameter("MaxRAM"))),
                            ("CPUTime", self.cpuTime())):
            if value:
                description[name] = value
        description.update(self._describe())
        if description["NumberOfProcessors"] > 1 and "MultiProcessor" not in description["Tag"]:
            description["Tag"].append("MultiProcessor")
        return description

    def statusReason(self, reference: str) -> str:
        """Why the job has the status the last ``getJobStatus`` gave, in the CE's words ('' when it has none)."""
        return self.statusReasons.get(reference, "")

    def close(self) -> None:
        """Release what the CE holds open (connections); the CE reopens them when used again."""

    @classmethod
    def implementation(cls, parameters: Mapping[str, Any]) -> type[ComputingElement]:
        """The class that serves a CE of this type with these parameters (e.g. Local with a BatchSystem)."""
        return cls

    # -- hooks for plug-ins: plain values in and out, typed exceptions on failure --------------------
    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any
                    ) -> list[str] | dict[str, str]:
        """Start the jobs; return their references, or {reference: pilot stamp} when stamps are not the ids."""
        raise NotImplementedError(f"{type(self).__name__} does not implement submission")

    def _getJobStatus(self, references: list[str]) -> dict[str, str]:
        """{reference: status} for each reference."""
        raise NotImplementedError(f"{type(self).__name__} does not implement job status")

    def _getJobOutput(self, reference: str) -> tuple[str, str]:
        """(stdout, stderr) of a job."""
        raise NotImplementedError(f"{type(self).__name__} does not implement job output")

    def _killJobs(self, references: list[str]) -> None:
        """Stop the jobs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement killing jobs")

    def _getCEStatus(self) -> dict[str, Any]:
        """Counters of the CE: at least RunningJobs and WaitingJobs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement the CE status")

    def _describe(self) -> dict[str, Any]:
        """Description entries the plug-in adds or overrides (e.g. free processors)."""
        return {}


# -- the factory ------------------------------------------------------------------------------------
COMPUTING_ELEMENTS = "dirac.computing_elements"
_BUILTIN_COMPUTING_ELEMENTS = {
    "Local": "dirac.Resources.Computing.LocalComputingElement:LocalComputingElement",
    "InProcess": "dirac.Resources.Computing.InProcessComputingElement:InProcessComputingElement",
    "Pool": "dirac.Resources.Computing.PoolComputingElement:PoolComputingElement",
    "SSH": "dirac.Resources.Computing.SSHComputingElement:SSHComputingElement",
    "SSHBatch": "dirac.Resources.Computing.SSHComputingElement:SSHBatchComputingElement",
    "HTCondorCE": "dirac.Resources.Computing.HTCondorCEComputingElement:HTCondorCEComputingElement",
    "AREX": "dirac.Resources.Computing.AREXComputingElement:AREXComputingElement",
    "Cloud": "dirac.Resources.Computing.CloudComputingElement:CloudComputingElement",
}


def computingElementClasses() -> dict[str, str]:
    """{CEType: 'module:Class'} of every installed CE (entry points over the built-in ones)."""
    return pluginClasses(_BUILTIN_COMPUTING_ELEMENTS, COMPUTING_ELEMENTS)


def getComputingElement(ceType: str, ceName: str, parameters: Mapping[str, Any] | None = None) -> ComputingElement:
    """A configured CE of type ``ceType`` (e.g. 'Local'); raises ConfigurationError for an unknown or broken type."""
    classes = computingElementClasses()
    if ceType not in classes:
        known = ", ".join(sorted(classes))
        raise ConfigurationError(f"CE {ceName}: no Computing Element of type {ceType!r} is installed (known: {known})")
    ceClass = loadClass(classes[ceType], f"CE {ceName} of type {ceType}")
    if not (isinstance(ceClass, type) and issubclass(ceClass, ComputingElement)):
        raise ConfigurationError(f"CE {ceName}: {classes[ceType]} is not a ComputingElement")
    ceClass = ceClass.implementation(parameters or {})
    return ceClass(ceName, {**(parameters or {}), "CEType": ceType})
