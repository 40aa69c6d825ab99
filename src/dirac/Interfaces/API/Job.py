"""The ``Job`` API: describe a job in Python and get its JDL, as with DIRAC's Job class.

    j = Job()
    j.setName("API")
    j.setCPUTime(500)
    j.setExecutable("/bin/echo hello")
    Dirac().submitJob(j)

Setters validate their input and return S_OK/S_ERROR like DIRAC's; an invalid value is also
remembered and makes ``submitJob`` fail, so a script cannot submit a half-described job.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

from dirac.Core.Config.Operations import getOperationsValue
from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType
from dirac.WorkloadManagementSystem.Client.InputDataPolicy import (
    DOWNLOAD,
    POLICY_SECTION,
    SHORT_NAMES,
    modulePath,
    parsePolicy,
    policyStep,
)

DEFAULT_CPU_TIME = 86400
LOG_LEVELS = ("DEBUG", "VERBOSE", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "FATAL", "ALWAYS")


def _asList(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.replace(";", ",").split(",") if item.strip()]
    return [str(item).strip() for item in value if str(item).strip()]


def insertAttributes(classAd: ClassAd, attributes: dict[str, Any]) -> None:
    """Set JDL attributes from Python values: lists as string vectors, numbers as numbers, the rest as strings."""
    for name, value in attributes.items():
        if isinstance(value, (list, tuple)):
            classAd.insertAttributeVectorString(name, [str(v) for v in value])
        elif isinstance(value, int) and not isinstance(value, bool):
            classAd.insertAttributeInt(name, value)
        elif isinstance(value, float):
            classAd.set_expression(name, repr(value))
        else:
            classAd.insertAttributeString(name, str(value))


class Job:
    """A job description built attribute by attribute."""

    def __init__(self, stdout: str = "std.out", stderr: str = "std.err"):
        self.attributes: dict[str, Any] = {
            "JobName": "Name", "JobType": "User", "Priority": 1, "CPUTime": DEFAULT_CPU_TIME,
            "StdOutput": stdout, "StdError": stderr, "LogLevel": "INFO",
            "OutputSandbox": [stdout, stderr],
        }
        self.steps: list[tuple[str, str]] = []
        self.parameterSequences: dict[str, list] = {}
        self.errors: list[str] = []

    # -- helpers ---------------------------------------------------------------------------------
    def _error(self, message: str) -> DReturnType[None]:
        self.errors.append(message)
        return S_ERROR(message)

    def _set(self, name: str, value: Any) -> DReturnType[None]:
        self.attributes[name] = value
        return S_OK()

    # -- what runs ----------------------------------------------------------------------------------
    def setExecutable(self, executable: str, arguments: str = "", logFile: str = "") -> DReturnType[None]:
        """Add a step: ``executable`` may carry its arguments ('/bin/echo hello')."""
        if not executable or not executable.strip():
            return self._error("setExecutable: the executable is empty")
        words = shlex.split(executable)
        command, extra = words[0], " ".join(shlex.quote(w) for w in words[1:])
        self.steps.append((command, " ".join(part for part in (extra, str(arguments)) if part)))
        return S_OK()

    def setName(self, name: str) -> DReturnType[None]:
        return self._set("JobName", str(name))

    def setType(self, jobType: str) -> DReturnType[None]:
        return self._set("JobType", str(jobType))

    def setJobGroup(self, jobGroup: str) -> DReturnType[None]:
        return self._set("JobGroup", str(jobGroup))

    def setLogLevel(self, logLevel: str) -> DReturnType[None]:
        if str(logLevel).upper() not in LOG_LEVELS:
            return self._error(f"setLogLevel: {logLevel!r} is not one of {', '.join(LOG_LEVELS)}")
        return self._set("LogLevel", str(logLevel).upper())

    def setExecutionEnv(self, environmentDict: dict[str, str]) -> DReturnType[None]:
        """Environment variables for the payload."""
        return self._set("ExecutionEnvironment", [f"{k}={v}" for k, v in environmentDict.items()])

    # -- resources ------------------------------------------------------------------------------------
    def setCPUTime(self, timeInSecs: int) -> DReturnType[None]:
        """CPU time the job needs, in normalised seconds."""
        try:
            seconds = int(timeInSecs)
        except (TypeError, ValueError):
            return self._error(f"setCPUTime: {timeInSecs!r} is not a number of seconds")
        if seconds <= 0:
            return self._error(f"setCPUTime: {seconds} is not a positive number of seconds")
        return self._set("CPUTime", seconds)

    def setPriority(self, priority: int) -> DReturnType[None]:
        try:
            return self._set("Priority", int(priority))
        except (TypeError, ValueError):
            return self._error(f"setPriority: {priority!r} is not an integer")

    def setNumberOfProcessors(self, numberOfProcessors: int | None = None, minNumberOfProcessors: int | None = None,
                              maxNumberOfProcessors: int | None = None) -> DReturnType[None]:
        """Processors the job uses: an exact number, or a range."""
        values = [v for v in (numberOfProcessors, minNumberOfProcessors, maxNumberOfProcessors) if v is not None]
        if any(not isinstance(v, int) or v < 1 for v in values):
            return self._error(f"setNumberOfProcessors: {values} must be positive integers")
        if numberOfProcessors is not None:
            self.attributes["NumberOfProcessors"] = numberOfProcessors
        if minNumberOfProcessors is not None:
            self.attributes["MinNumberOfProcessors"] = minNumberOfProcessors
        if maxNumberOfProcessors is not None:
            self.attributes["MaxNumberOfProcessors"] = maxNumberOfProcessors
        if values and max(values) > 1:
            self.setTag(["MultiProcessor"])
        return S_OK()

    def setPlatform(self, platform: str | list[str]) -> DReturnType[None]:
        return self._set("Platform", _asList(platform))

    def setTag(self, tags: str | list[str]) -> DReturnType[None]:
        """Tags a resource must offer (e.g. 'GPU', 'MultiProcessor')."""
        current = self.attributes.get("Tags", [])
        return self._set("Tags", current + [t for t in _asList(tags) if t not in current])

    def setDestination(self, destination: str | list[str]) -> DReturnType[None]:
        """Site(s) where the job may run ('ANY' for anywhere)."""
        sites = [s for s in _asList(destination) if s.upper() != "ANY"]
        if not sites:
            self.attributes.pop("Site", None)
            return S_OK()
        return self._set("Site", sites)

    def setBannedSites(self, sites: str | list[str]) -> DReturnType[None]:
        return self._set("BannedSites", _asList(sites))

    def setDestinationCE(self, ceName: str, diracSite: str | None = None) -> DReturnType[None]:
        self.attributes["GridCE"] = ceName
        return self.setDestination(diracSite) if diracSite else S_OK()

    # -- data -------------------------------------------------------------------------------------------
    def setInputSandbox(self, files: str | list[str]) -> DReturnType[None]:
        """Local files (or 'LFN:' paths) shipped with the job."""
        return self._set("InputSandbox", _asList(files))

    def setOutputSandbox(self, files: str | list[str]) -> DReturnType[None]:
        """Files brought back with the job's output (std.out and std.err always are)."""
        standard = [self.attributes["StdOutput"], self.attributes["StdError"]]
        return self._set("OutputSandbox", standard + [f for f in _asList(files) if f not in standard])

    def setInputData(self, lfns: str | list[str]) -> DReturnType[None]:
        return self._set("InputData", [lfn.removeprefix("LFN:") for lfn in _asList(lfns)])

    def setInputDataPolicy(self, policy: str | list[str], dataScheduling: bool = True) -> DReturnType[None]:
        """How the job reads its InputData: 'Download' (copied into its working directory), 'Protocol' (read in
        place through transport URLs on its site's SEs, nothing copied), or both in order ('Protocol, Download':
        the files Protocol cannot give are downloaded). A short name stands for the Operations option
        InputDataPolicy/<Name> when set, else for DIRAC's module. ``dataScheduling=False`` (Download only): the
        job may run anywhere, not only at the sites holding its data."""
        parts = []
        try:
            for name in _asList(policy):
                step = policyStep(name)
                short = name.strip().capitalize()
                configured = getOperationsValue(f"{POLICY_SECTION}/{short}", "") if short.lower() in SHORT_NAMES else ""
                parts.append(configured or modulePath(step))
            value = ", ".join(parts)
            steps = parsePolicy(value)
        except InvalidArgument as exc:
            return self._error(f"setInputDataPolicy: {exc.message}")
        if not dataScheduling and steps != [DOWNLOAD]:
            return self._error("setInputDataPolicy: scheduling by input data may only be disabled with the "
                               "Download policy")
        if not dataScheduling:
            self.attributes["DisableDataScheduling"] = "True"
        else:
            self.attributes.pop("DisableDataScheduling", None)
        return self._set("InputDataPolicy", value)

    def setOutputData(self, lfns: str | list[str], outputSE: str | list[str] | None = None,
                      outputPath: str = "") -> DReturnType[None]:
        self.attributes["OutputData"] = _asList(lfns)
        if outputSE:
            self.attributes["OutputSE"] = _asList(outputSE)
        if outputPath:
            self.attributes["OutputPath"] = outputPath
        return S_OK()

    # -- parametric jobs ----------------------------------------------------------------------------
    def setParameterSequence(self, name: str, parameterList: list, addToWorkflow: bool | str = False
                             ) -> DReturnType[None]:
        """One value per job: the job becomes len(parameterList) jobs, using %(name)s in its attributes."""
        if not parameterList:
            return self._error(f"setParameterSequence: the sequence {name!r} is empty")
        lengths = {len(seq) for seq in self.parameterSequences.values()}
        if lengths and len(parameterList) not in lengths:
            return self._error(f"setParameterSequence: {name!r} has {len(parameterList)} values, the other "
                               f"sequences {lengths.pop()}")
        self.parameterSequences[name] = list(parameterList)
        return S_OK()

    # -- output -----------------------------------------------------------------------------------------
    def _executable(self) -> tuple[str, str]:
        if len(self.steps) == 1:
            return self.steps[0]
        commands = [" ".join(part for part in (shlex.quote(cmd), args) if part) for cmd, args in self.steps]
        return "/bin/sh", "-ec " + shlex.quote("\n".join(commands))

    def _toJDL(self) -> str:
        """The job description in DIRAC's JDL (ClassAd) syntax."""
        classAd = ClassAd("[]")
        if self.steps:
            executable, arguments = self._executable()
            classAd.insertAttributeString("Executable", executable)
            if arguments:
                classAd.insertAttributeString("Arguments", arguments)
        insertAttributes(classAd, self.attributes)
        for name, values in self.parameterSequences.items():
            classAd.insertAttributeInt("Parameters", len(values))
            classAd.insertAttributeVectorString(f"Parameters.{name}", [str(v) for v in values])
        return classAd.asJDL()

    toJDL = _toJDL

    def __str__(self) -> str:
        return self._toJDL()
