"""Job descriptions: parse and check a JDL, expand parametric jobs, and prepare what JobDB stores.

Parsing uses DIRACCommon (ClassAd, loadJDLAsCFG, the parametric expansion and the pydantic
JobDescriptionModel); this module adds strict syntax and type checks, the CS limits and the
JobRequirements a job is queued with. Nothing here touches a database: a description that
fails any check raises ``InvalidJDL`` before the first row is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRACCommon.Core.Utilities.JDL import loadJDLAsCFG
from DIRACCommon.Core.Utilities.ReturnValues import S_OK
from DIRACCommon.WorkloadManagementSystem.Client import JobStatus
from DIRACCommon.WorkloadManagementSystem.DB.JobDBUtils import (
    checkAndPrepareJob,
    createJDLWithInitialStatus,
    fixJDL,
)
from DIRACCommon.WorkloadManagementSystem.Utilities.JobModel import BaseJobDescriptionModel, JobDescriptionModel
from DIRACCommon.WorkloadManagementSystem.Utilities.ParametricJob import (
    generateParametricJobs,
    getParameterVectorLength,
)
from pydantic import ValidationError

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.WorkloadManagementSystem.Client.InputDataPolicy import parsePolicy
from dirac.WorkloadManagementSystem.Logic.Exceptions import InvalidJDL

JOB_MANAGER_SECTION = "/Systems/WorkloadManagement/Services/JobManager"
JOB_DESCRIPTION_SECTION = "/Operations/Defaults/JobDescription"
DEFAULT_MAX_PARAMETRIC_JOBS = 1000
LOG_LEVELS = ["DEBUG", "VERBOSE", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "FATAL", "ALWAYS"]
DB_ATTRIBUTES_FROM_JDL = ["JobName", "JobType", "JobGroup"]
COLUMN_LENGTHS = {"JobName": 128, "JobType": 32, "JobGroup": 32}

_STRING = r'"[^"]*"'
_NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_ITEM = rf"(?:{_STRING}|{_NUMBER})"
STRING_RE = re.compile(rf"^{_STRING}$")
INT_RE = re.compile(r'^"?\s*[-+]?\d+\s*"?$')
NUMBER_RE = re.compile(rf"^{_NUMBER}$")
LIST_RE = re.compile(rf"^\{{\s*(?:{_ITEM}(?:\s*,\s*{_ITEM})*)?\s*\}}$", re.S)
BOOL_RE = re.compile(r"^(?:true|false)$", re.I)
NAME_RE = re.compile(r"^[A-Za-z_][\w.]*$")
PLACEHOLDER_RE = re.compile(r"%(?:\([\w.]+\))?[sn]")

STRING_ATTRIBUTES = {"Executable", "Arguments", "StdOutput", "StdError", "JobType", "JobGroup", "JobName",
                     "LogLevel", "OutputPath", "GridCE", "InputDataPolicy", "Owner", "OwnerGroup",
                     "VirtualOrganization", "Origin", "JobConfigArgs"}
INT_ATTRIBUTES = {"CPUTime", "NumberOfProcessors", "MinNumberOfProcessors", "MaxNumberOfProcessors", "Priority",
                  "MaxRAM", "ParameterNumber", "JobID"}
LIST_ATTRIBUTES = {"InputSandbox", "OutputSandbox", "InputData", "OutputData", "OutputSE", "Site", "BannedSites",
                   "Platform", "Tags", "ExecutionEnvironment"}


@dataclass
class JobDescription:
    """One job ready for JobDB: processed JDL, the Jobs columns, requirements and input data."""

    jdl: str
    originalJDL: str
    attributes: dict[str, Any]
    requirements: dict[str, Any]
    inputData: list[str] = field(default_factory=list)

    def asJobDBRecord(self) -> dict[str, Any]:
        """The dict JobDB.insertNewJobs takes."""
        return {"attributes": self.attributes, "jdl": self.jdl, "originalJDL": self.originalJDL,
                "inputData": self.inputData}


def maxParametricJobs() -> int:
    """How many jobs one parametric description may expand to (CS MaxParametricJobs, default 1000)."""
    return gConfig.getValue(f"{JOB_MANAGER_SECTION}/MaxParametricJobs", DEFAULT_MAX_PARAMETRIC_JOBS)


def _checkValue(name: str, value: str) -> None:
    """Raise InvalidJDL when the literal ``value`` is not of the type attribute ``name`` needs."""
    base = name.split(".")[0]
    if base in INT_ATTRIBUTES and not INT_RE.match(value):
        raise InvalidJDL(f"JDL attribute {name} must be an integer, not {value}")
    if base in STRING_ATTRIBUTES and not STRING_RE.match(value):
        raise InvalidJDL(f"JDL attribute {name} must be a quoted string, not {value}")
    if base == "InputDataPolicy":
        try:
            parsePolicy(value.strip('"'))
        except InvalidArgument as exc:
            raise InvalidJDL(f"JDL attribute InputDataPolicy: {exc.message}") from None
    if base in LIST_ATTRIBUTES and not (STRING_RE.match(value) or LIST_RE.match(value)):
        raise InvalidJDL(f"JDL attribute {name} must be a string or a list of strings, not {value}")
    if base in ("ParameterStart", "ParameterStep", "ParameterFactor") and not NUMBER_RE.match(value):
        raise InvalidJDL(f"JDL attribute {name} must be a number, not {value}")
    if base == "Parameters" and not (INT_RE.match(value) or LIST_RE.match(value)):
        raise InvalidJDL(f"JDL attribute {name} must be a number of jobs or a list of values, not {value}")
    if value.startswith("["):
        parseJDL(value)
    elif not (STRING_RE.match(value) or NUMBER_RE.match(value) or LIST_RE.match(value) or BOOL_RE.match(value)):
        raise InvalidJDL(f"JDL attribute {name} has a value of unknown type: {value}")


def parseJDL(jdl: str, placeholders: bool = False) -> ClassAd:
    """The ClassAd of a JDL whose syntax and attribute types are all valid (InvalidJDL otherwise).

    With ``placeholders``, values holding parametric placeholders (%s, %n, %(name)s) are checked
    only once expanded.
    """
    if not isinstance(jdl, str) or not jdl.strip():
        raise InvalidJDL("the job description is empty")
    text = fixJDL(jdl.strip())
    if not text.endswith("]"):
        raise InvalidJDL("malformed JDL: it must be enclosed in [ ]")
    result = loadJDLAsCFG(text)
    if not result["OK"]:
        raise InvalidJDL(f"malformed JDL: {result['Message']}")
    if result["Value"][1] != len(text) - 1:
        raise InvalidJDL(f"malformed JDL: unexpected text after position {result['Value'][1]}")
    classAd = ClassAd(text)
    if not classAd.isOK():
        raise InvalidJDL("malformed JDL: no attribute could be read")
    for name in classAd.getAttributes():
        if not NAME_RE.match(name):
            raise InvalidJDL(f"malformed JDL: {name!r} is not an attribute name (missing ';'?)")
        value = classAd.get_expression(name).strip()
        if not (placeholders and PLACEHOLDER_RE.search(value)):
            _checkValue(name, value)
    return classAd


def expandParametricJDL(classAd: ClassAd, maxJobs: int | None = None) -> list[str]:
    """The JDLs of the jobs a (possibly parametric) description stands for, at most ``maxJobs`` of them."""
    limit = maxParametricJobs() if maxJobs is None else maxJobs
    if classAd.lookupAttribute("Parameters"):
        result = getParameterVectorLength(classAd)
        if not result["OK"]:
            raise InvalidJDL(f"invalid parametric job: {result['Message']}")
        if result["Value"] is not None and result["Value"] > limit:
            raise InvalidJDL(f"parametric job of {result['Value']} jobs exceeds the maximum of {limit} "
                             f"({JOB_MANAGER_SECTION}/MaxParametricJobs)")
    result = generateParametricJobs(classAd)
    if not result["OK"]:
        raise InvalidJDL(f"invalid parametric job: {result['Message']}")
    return result["Value"]


def _modelConfig() -> dict[str, Any]:
    """Defaults and bounds of job descriptions from the CS (DIRAC's JobDescription options)."""
    def opt(name: str, default: Any) -> Any:
        return gConfig.getValue(f"{JOB_DESCRIPTION_SECTION}/{name}", default)

    return {
        "cpuTime": opt("DefaultCPUTime", 86400), "priority": opt("DefaultPriority", 1),
        "minCPUTime": opt("MinCPUTime", 100), "maxCPUTime": opt("MaxCPUTime", 500000),
        "allowedJobTypes": opt("AllowedJobTypes", ["User", "Test", "Hospital"]),
        "maxInputDataFiles": opt("MaxInputData", 500),
        "minNumberOfProcessors": opt("MinNumberOfProcessors", 1),
        "maxNumberOfProcessors": opt("MaxNumberOfProcessors", 1024),
        "minPriority": opt("MinPriority", 0), "maxPriority": opt("MaxPriority", 10),
        "possibleLogLevels": LOG_LEVELS, "sites": S_OK(_configuredSites()),
    }


def _configuredSites() -> list[str]:
    """Every site of /Resources/Sites/<Grid>/<Site>."""
    sites: list[str] = []
    grids = gConfig.getSections("/Resources/Sites")
    for grid in grids["Value"] if grids["OK"] else []:
        result = gConfig.getSections(f"/Resources/Sites/{grid}")
        sites += result["Value"] if result["OK"] else []
    return sites


class _JobModel(JobDescriptionModel):
    """DIRACCommon's job description model with its limits taken from our CS."""

    _config_builder = staticmethod(_modelConfig)


class _JobModelWithoutVO(BaseJobDescriptionModel):
    """The same checks for a job without a VO (no LFN namespace to check input data against)."""

    _config_builder = staticmethod(_modelConfig)


def _validate(classAd: ClassAd, owner: str, ownerGroup: str, vo: str) -> BaseJobDescriptionModel:
    """Check one (expanded) job against the model; its validated values."""
    lists = {key: classAd.getListFromExpression(name) for key, name in (
        ("bannedSites", "BannedSites"), ("inputSandbox", "InputSandbox"), ("inputData", "InputData"),
        ("outputData", "OutputData"), ("outputSandbox", "OutputSandbox"), ("sites", "Site"), ("tags", "Tags"))}
    values: dict[str, Any] = {key: value for key, value in lists.items() if value}
    for key, name in (("executable", "Executable"), ("arguments", "Arguments"), ("jobGroup", "JobGroup"),
                      ("jobType", "JobType"), ("jobName", "JobName"), ("logLevel", "LogLevel"),
                      ("stdout", "StdOutput"), ("stderr", "StdError"), ("gridCE", "GridCE")):
        if classAd.lookupAttribute(name):
            values[key] = classAd.getAttributeString(name)
    values.setdefault("executable", "")
    if not _configuredSites():  # one-box default: no site list in the CS, nothing to check against
        values.pop("sites", None)
    if classAd.lookupAttribute("OutputSE"):
        values["outputSE"] = ",".join(classAd.getListFromExpression("OutputSE"))
    for key, name in (("cpuTime", "CPUTime"), ("priority", "Priority")):
        if classAd.lookupAttribute(name):
            values[key] = classAd.getAttributeInt(name)
    exact = classAd.getAttributeInt("NumberOfProcessors")
    minimum = classAd.getAttributeInt("MinNumberOfProcessors")
    maximum = classAd.getAttributeInt("MaxNumberOfProcessors")
    if exact is not None:
        minimum = maximum = exact
    if minimum is not None:
        values["minNumberOfProcessors"] = minimum
    if maximum is not None:
        values["maxNumberOfProcessors"] = maximum
    model: type[BaseJobDescriptionModel] = _JobModel if vo else _JobModelWithoutVO
    try:
        return model(owner=owner, ownerGroup=ownerGroup, vo=vo, **values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'job'}: {e['msg']}" for e in exc.errors())
        raise InvalidJDL(f"invalid job description: {problems}") from exc


def prepareJob(jdl: str, owner: str, ownerGroup: str, vo: str, originalJDL: str | None = None) -> JobDescription:
    """Validate one non-parametric JDL and build what JobDB stores for it."""
    classAd = parseJDL(jdl)
    model = _validate(classAd, owner, ownerGroup, vo)
    for name, limit in COLUMN_LENGTHS.items():
        if len(classAd.getAttributeString(name)) > limit:
            raise InvalidJDL(f"JDL attribute {name} is longer than {limit} characters")
    classAd.insertAttributeInt("CPUTime", model.cpuTime)
    classAd.insertAttributeInt("Priority", model.priority)
    if model.tags:
        classAd.insertAttributeVectorString("Tags", sorted(model.tags))
    sites = classAd.getListFromExpression("Site")
    if len(sites) == 1:
        classAd.insertAttributeString("Site", sites[0])
    requirements = ClassAd("[]")
    jobAttrs: dict[str, Any] = {}
    result = checkAndPrepareJob(None, classAd, requirements, owner, ownerGroup, jobAttrs, vo, config={
        "inputDataPolicyForVO": "", "softwareDistModuleForVO": "", "defaultCPUTimeForOwnerGroup": model.cpuTime,
        "getDIRACPlatform": S_OK})
    if not result["OK"]:
        raise InvalidJDL(f"invalid job description: {result['Message']}")
    for name, values in (("Sites", sites), ("BannedSites", sorted(model.bannedSites)), ("Tags", sorted(model.tags)),
                         ("GridCEs", [model.gridCE] if model.gridCE else [])):
        if values:
            requirements.insertAttributeVectorString(name, values)
    requirements.insertAttributeString("JobTypes", model.jobType)
    requirements.insertAttributeInt("NumberOfProcessors", model.minNumberOfProcessors)
    processed = createJDLWithInitialStatus(classAd, requirements, DB_ATTRIBUTES_FROM_JDL, jobAttrs,
                                           JobStatus.RECEIVED, "Job accepted", modern=True)
    jobAttrs.update(Owner=owner, OwnerGroup=ownerGroup, VO=vo, JobType=model.jobType)
    return JobDescription(jdl=processed, originalJDL=originalJDL or jdl, attributes=jobAttrs,
                          requirements=requirementsFromJDL(processed),
                          inputData=sorted(lfn.removeprefix("LFN:") for lfn in model.inputData))


def prepareJobs(jdl: str, owner: str, ownerGroup: str, vo: str, maxJobs: int | None = None) -> list[JobDescription]:
    """Validate a JDL, expand it if parametric, and prepare every job; InvalidJDL on the first problem."""
    descriptions = []
    for number, expanded in enumerate(expandParametricJDL(parseJDL(jdl, placeholders=True), maxJobs)):
        try:
            descriptions.append(prepareJob(expanded, owner, ownerGroup, vo, originalJDL=jdl))
        except InvalidJDL as exc:
            if ClassAd(expanded).lookupAttribute("ParameterNumber"):
                raise InvalidJDL(f"parametric job {number}: {exc.message}") from exc
            raise
    return descriptions


def requirementsFromJDL(jdl: str) -> dict[str, Any]:
    """The task queue requirements stored in a processed JDL's JobRequirements."""
    classAd = ClassAd(jdl)
    if not classAd.lookupAttribute("JobRequirements"):
        raise InvalidJDL("the job description has no JobRequirements (it was not prepared by prepareJob)")
    req = ClassAd(classAd.get_expression("JobRequirements"))
    return {
        "Owner": req.getAttributeString("Owner"), "OwnerGroup": req.getAttributeString("OwnerGroup"),
        "VO": req.getAttributeString("VirtualOrganization"), "JobType": req.getAttributeString("JobTypes"),
        "CPUTime": req.getAttributeInt("CPUTime") or 0,
        "Processors": req.getAttributeInt("NumberOfProcessors") or 1,
        "Sites": req.getListFromExpression("Sites"), "BannedSites": req.getListFromExpression("BannedSites"),
        "Platforms": req.getListFromExpression("Platforms"), "Tags": req.getListFromExpression("Tags"),
        "GridCEs": req.getListFromExpression("GridCEs"),
    }
