"""What the JobWrapper is given: the slot description in ``job.json`` and the job's JDL.

The JobAgent writes ``<workdir>/job.json`` (see ``JobArguments``) and runs
``dirac-jobwrapper --job <workdir>/job.json`` in ``<workdir>``. ``PayloadDescription`` reads
the JDL attributes the wrapper acts on, with DIRAC's names and defaults.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.WorkloadManagementSystem.Client.InputDataPolicy import parsePolicy

_KINDS = {int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class JobArguments:
    """The contents of job.json, written by the JobAgent for one matched job."""

    JobID: int
    #: the processed JDL the Matcher returned
    JDL: str
    Owner: str = ""
    OwnerGroup: str = ""
    VO: str = ""
    PilotReference: str = ""
    Site: str = ""
    GridCE: str = ""
    #: the node's CPU power (HS06 per core); 0 when unknown
    CPUNormalizationFactor: float = 0.0
    #: seconds the slot may still run; 0 when unlimited
    WallClockLimit: float = 0.0
    #: MB of memory of the slot; 0 when unlimited
    MaxRAM: int = 0

    @classmethod
    def fromDict(cls, data: Any) -> JobArguments:
        """Check and convert a decoded job.json (InvalidArgument naming the bad entry)."""
        if not isinstance(data, dict):
            raise InvalidArgument(f"job.json must hold a JSON object, not {type(data).__name__}")
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in data:
                if item.name in ("JobID", "JDL"):
                    raise InvalidArgument(f"job.json has no {item.name}")
                continue
            value = data[item.name]
            kind = {"JobID": int, "JDL": str, "CPUNormalizationFactor": float, "WallClockLimit": float,
                    "MaxRAM": int}.get(item.name, str)
            problem = f"job.json: {item.name} must be {_KINDS[kind]}, not {value!r}"
            if isinstance(value, bool) or (kind is str and not isinstance(value, str)):
                raise InvalidArgument(problem)
            try:
                values[item.name] = kind(value)
            except (TypeError, ValueError):
                raise InvalidArgument(problem) from None
        if values["JobID"] <= 0:
            raise InvalidArgument(f"job.json: JobID must be a positive integer, not {values['JobID']}")
        if not values["JDL"].strip():
            raise InvalidArgument("job.json: the JDL is empty")
        for name in ("CPUNormalizationFactor", "WallClockLimit", "MaxRAM"):
            if values.get(name, 0) < 0:
                raise InvalidArgument(f"job.json: {name} must not be negative, not {values[name]}")
        return cls(**values)

    @classmethod
    def fromFile(cls, path: str | Path) -> JobArguments:
        """Read job.json (InvalidArgument when it cannot be read or is invalid)."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise InvalidArgument(f"cannot read {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise InvalidArgument(f"{path} is not valid JSON: {exc}") from exc
        return cls.fromDict(data)


def _string(classAd: ClassAd, name: str, default: str = "") -> str:
    """A string attribute without its enclosing quotes (inner quotes are kept, unlike getAttributeString)."""
    if not classAd.lookupAttribute(name):
        return default
    value = classAd.get_expression(name).strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def _strings(classAd: ClassAd, name: str) -> list[str]:
    """A list-of-strings attribute (or a single string) with its values as written (getListFromExpression drops
    every space)."""
    if not classAd.lookupAttribute(name):
        return []
    expression = classAd.get_expression(name).strip()
    if expression.startswith("{"):
        return [value for value in re.findall(r'"([^"]*)"', expression) if value.strip()]
    value = _string(classAd, name)
    return [value] if value.strip() else []


def _number(classAd: ClassAd, name: str, default: int = 0) -> int:
    if not classAd.lookupAttribute(name):
        return default
    value = classAd.getAttributeInt(name)
    if value is None or value < 0:
        raise InvalidArgument(f"JDL attribute {name} must be a non-negative integer, not {classAd.get_expression(name)}")
    return value


@dataclass
class PayloadDescription:
    """The JDL attributes the JobWrapper acts on."""

    executable: str
    arguments: str = ""
    stdOutput: str = "std.out"
    stdError: str = "std.err"
    inputSandbox: list[str] = field(default_factory=list)
    outputSandbox: list[str] = field(default_factory=list)
    inputData: list[str] = field(default_factory=list)
    #: the steps of the JDL's InputDataPolicy (DOWNLOAD, PROTOCOL), [] when it names none
    inputDataPolicy: list[str] = field(default_factory=list)
    outputData: list[str] = field(default_factory=list)
    outputSE: list[str] = field(default_factory=list)
    #: where OutputData given as local names go: below the owner's home, or an absolute ``LFN:`` path
    outputPath: str = ""
    #: normalised CPU seconds (HS06 s) per processor, None when the JDL gives none
    cpuTime: int | None = None
    #: MB, 0 when the JDL gives none
    maxRAM: int = 0
    numberOfProcessors: int = 1
    executionEnvironment: dict[str, str] = field(default_factory=dict)
    jobType: str = "User"
    disableCPUCheck: bool = False

    @classmethod
    def fromJDL(cls, jdl: str) -> PayloadDescription:
        """Read the JDL (InvalidArgument when it cannot be parsed or an attribute is invalid)."""
        classAd = ClassAd(jdl.strip())
        if not classAd.isOK():
            raise InvalidArgument("the JDL cannot be parsed")
        environment = {}
        for entry in _strings(classAd, "ExecutionEnvironment"):
            name, sep, value = entry.partition("=")
            if not sep or not name.strip():
                raise InvalidArgument(f"JDL ExecutionEnvironment entry {entry!r} is not NAME=value")
            environment[name.strip()] = value
        policy = _strings(classAd, "InputDataPolicy")
        try:
            policy = parsePolicy(policy) if policy else []
        except InvalidArgument as exc:
            raise InvalidArgument(f"JDL InputDataPolicy: {exc.message}") from None
        processors = max(_number(classAd, "NumberOfProcessors", 0), _number(classAd, "MinNumberOfProcessors", 0), 1)
        return cls(
            executable=_string(classAd, "Executable"),
            arguments=_string(classAd, "Arguments"),
            stdOutput=_string(classAd, "StdOutput") or "std.out",
            stdError=_string(classAd, "StdError") or "std.err",
            inputSandbox=_strings(classAd, "InputSandbox"),
            outputSandbox=_strings(classAd, "OutputSandbox"),
            inputData=_strings(classAd, "InputData"),
            inputDataPolicy=policy,
            outputData=_strings(classAd, "OutputData"),
            outputSE=_strings(classAd, "OutputSE"),
            outputPath=_string(classAd, "OutputPath"),
            cpuTime=_number(classAd, "CPUTime") if classAd.lookupAttribute("CPUTime") else None,
            maxRAM=_number(classAd, "MaxRAM"),
            numberOfProcessors=processors,
            executionEnvironment=environment,
            jobType=_string(classAd, "JobType", "User"),
            disableCPUCheck=bool(classAd.lookupAttribute("DisableCPUCheck")),
        )
