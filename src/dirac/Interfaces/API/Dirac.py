"""The ``Dirac`` API: submit and follow jobs from Python, with DIRAC's method names.

    dirac = Dirac()
    result = dirac.submitJob(job)            # S_OK(jobID), or S_OK([jobIDs]) for parametric jobs
    dirac.getJobStatus(result["Value"])      # S_OK({jobID: {"Status": ..., "MinorStatus": ..., "Site": ...}})
    dirac.getOutputSandbox(jobID)            # files land in ./<jobID>/
    dirac.selectJobs(status="Done", date="2024-05-01")   # S_OK(["12", "13"]), as DIRAC answers

Every method returns S_OK/S_ERROR; nothing raises for a failed call. Methods with
``printOutput`` also print what they got, as DIRAC's do.
"""

from __future__ import annotations

import datetime
import errno
import os
import pprint
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from DIRACCommon.Core.Utilities.ClassAd.ClassAdLight import ClassAd

from dirac.Core.Utilities.JEncode import strToIntDict
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType
from dirac.Interfaces.API.Job import Job
from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient, JobMonitoringClient

SANDBOX_PREFIXES = ("LFN:", "SB:", "http://", "https://")


def _jobIDs(jobID: int | str | Iterable[int | str]) -> list[int] | None:
    values = [jobID] if isinstance(jobID, (int, str)) else list(jobID)
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        return None


class Dirac:
    """User-level access to the WMS."""

    def __init__(self, **rpcOptions: Any):
        self.rpcOptions = rpcOptions

    def _manager(self) -> JobManagerClient:
        return JobManagerClient(**self.rpcOptions)

    def _monitoring(self) -> JobMonitoringClient:
        return JobMonitoringClient(**self.rpcOptions)

    # -- submission ---------------------------------------------------------------------------------
    def submitJob(self, job: Job | str | Path, mode: str = "wms") -> DReturnType[int | list[int]]:
        """Submit a Job, a JDL string or a JDL file: local input sandbox files are uploaded first."""
        if mode.lower() != "wms":
            return S_ERROR(f"submission mode {mode!r} is not supported: use 'wms'")
        if isinstance(job, Job):
            if job.errors:
                return S_ERROR("the job description is invalid: " + "; ".join(job.errors))
            jdl = job._toJDL()
        elif isinstance(job, Path) or (isinstance(job, str) and "\n" not in job and os.path.isfile(job)):
            try:
                jdl = Path(job).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                return S_ERROR(errno.EIO, f"cannot read the JDL file {job}: {exc}")
        else:
            jdl = str(job)
        prepared = self._uploadInputSandbox(jdl)
        if not prepared["OK"]:
            return prepared
        return self._manager().submitJob(prepared["Value"])

    def _uploadInputSandbox(self, jdl: str) -> DReturnType[str]:
        classAd = ClassAd(jdl if jdl.strip().startswith("[") else f"[{jdl}]")
        if not classAd.isOK():
            return S_ERROR("the JDL cannot be parsed")
        if not classAd.lookupAttribute("InputSandbox"):
            return S_OK(classAd.asJDL())
        entries = classAd.getListFromExpression("InputSandbox")
        local = [e for e in entries if not e.startswith(SANDBOX_PREFIXES)]
        if not local:
            return S_OK(classAd.asJDL())
        uploaded = SandboxStoreClient(**self.rpcOptions).uploadFilesAsSandbox(local)
        if not uploaded["OK"]:
            return uploaded
        remote = [e for e in entries if e.startswith(SANDBOX_PREFIXES)]
        classAd.insertAttributeVectorString("InputSandbox", remote + [uploaded["Value"]])
        return S_OK(classAd.asJDL())

    # -- control -------------------------------------------------------------------------------------
    def _control(self, method: str, jobID: Any) -> DReturnType[Any]:
        ids = _jobIDs(jobID)
        if ids is None:
            return S_ERROR(f"{jobID!r} is not a job ID or a list of job IDs")
        return getattr(self._manager(), method)(ids)

    def killJob(self, jobID: int | list[int]) -> DReturnType[Any]:
        return self._control("killJob", jobID)

    def deleteJob(self, jobID: int | list[int]) -> DReturnType[Any]:
        return self._control("deleteJob", jobID)

    def rescheduleJob(self, jobID: int | list[int]) -> DReturnType[Any]:
        return self._control("rescheduleJob", jobID)

    # -- monitoring -------------------------------------------------------------------------------------
    def getJobStatus(self, jobID: int | list[int]) -> DReturnType[dict[int, dict[str, str]]]:
        """{jobID: {'Status', 'MinorStatus', 'ApplicationStatus', 'Site'}} for each job."""
        ids = _jobIDs(jobID)
        if ids is None:
            return S_ERROR(f"{jobID!r} is not a job ID or a list of job IDs")
        result = self._monitoring().getJobsAttributes(ids, ["Status", "MinorStatus", "ApplicationStatus", "Site"])
        if not result["OK"]:
            return result
        return S_OK(strToIntDict(result["Value"]))

    def getJobAttributes(self, jobID: int, printOutput: bool = False) -> DReturnType[dict[str, Any]]:
        """{attribute: value} of one job (Status, Owner, Site, SubmissionTime, ...)."""
        result = self._monitoring().getJobAttributes(int(jobID))
        if result["OK"] and printOutput:
            print(pprint.pformat(result["Value"]))
        return result

    def getJobParameters(self, jobID: int, printOutput: bool = False) -> DReturnType[dict[str, Any]]:
        """{name: value} of the parameters a job reported (HostName, CPUNormalizationFactor, ...)."""
        monitoring = self._monitoring()
        result = monitoring.getJobParameters(int(jobID))
        if not result["OK"]:
            return result
        parameters = result["Value"].get(str(int(jobID)))
        if parameters is None:  # no parameters yet, or no such job: only the latter is an error
            exists = monitoring.getJobAttribute(int(jobID), "Status")
            if not exists["OK"]:
                return exists
            parameters = {}
        if printOutput:
            print(pprint.pformat(parameters))
        return S_OK(parameters)

    def getJobJDL(self, jobID: int, original: bool = False, printOutput: bool = False) -> DReturnType[str]:
        """The job's JDL as the WMS processed it, or as it was submitted with ``original``."""
        result = self._monitoring().getJobJDL(int(jobID), bool(original))
        if result["OK"] and printOutput:
            print(result["Value"])
        return result

    def getJobLoggingInfo(self, jobID: int, printOutput: bool = False) -> DReturnType[list]:
        """[(Status, MinorStatus, ApplicationStatus, DateTime, Source), ...] oldest first."""
        result = self._monitoring().getJobLoggingInfo(int(jobID))
        if result["OK"] and printOutput:
            from dirac.Interfaces.Utilities.CommandTools import LOGGING_COLUMNS, formatTable

            print(formatTable(LOGGING_COLUMNS, result["Value"]))
        return result

    def selectJobs(self, status: str | None = None, minorStatus: str | None = None,
                   applicationStatus: str | None = None, site: str | None = None, owner: str | None = None,
                   ownerGroup: str | None = None, jobGroup: str | None = None, date: str | None = None,
                   printErrors: bool = True, jobName: str | None = None) -> DReturnType[list[str]]:
        """IDs (as strings, like DIRAC) of the jobs matching every condition, updated since ``date``.

        ``date`` is 'YYYY-MM-DD' (default: today, UTC). A condition may be a list of values.
        With ``printErrors`` (DIRAC's default) an empty selection is S_ERROR('No jobs selected').
        """
        conditions = {"Status": status, "MinorStatus": minorStatus, "ApplicationStatus": applicationStatus,
                      "Site": site, "Owner": owner, "OwnerGroup": ownerGroup, "JobGroup": jobGroup,
                      "JobName": jobName}
        conditions = {k: v for k, v in conditions.items() if v}
        since = str(date) if date else datetime.datetime.now(datetime.UTC).date().isoformat()
        result = self._monitoring().getJobs(conditions, since)
        if result["OK"] and printErrors and not result["Value"]:
            return S_ERROR(errno.ENOENT, f"No jobs selected with date '{since}' for conditions: {conditions}")
        return result

    def getJobSummary(self, jobID: int | list[int]) -> DReturnType[dict]:
        ids = _jobIDs(jobID)
        if ids is None:
            return S_ERROR(f"{jobID!r} is not a job ID or a list of job IDs")
        result = self._monitoring().getJobsAttributes(ids, [])
        return S_OK(strToIntDict(result["Value"])) if result["OK"] else result

    # -- output ----------------------------------------------------------------------------------------
    def getOutputSandbox(self, jobID: int | str, outputDir: str | None = None, oversized: bool = True,
                         noJobDir: bool = False) -> DReturnType[list[str]]:
        """Download and unpack a job's output sandbox into <outputDir>/<jobID>/ (or outputDir with noJobDir).

        Without ``outputDir`` the files land in ./<jobID>/, which must not exist yet. S_OK(file names).
        """
        ids = _jobIDs(jobID)
        if not ids or len(ids) != 1:
            return S_ERROR(errno.EINVAL, f"{jobID!r} is not one job ID")
        base = Path(outputDir or os.getcwd())
        destination = base if noJobDir else base / str(ids[0])
        if not outputDir and not noJobDir and destination.exists():
            return S_ERROR(errno.EEXIST, f"Job output directory {destination} already exists")
        return SandboxStoreClient(**self.rpcOptions).downloadSandboxForJob(ids[0], "Output", destination)

    getJobOutputSandbox = getOutputSandbox

    def getInputSandbox(self, jobID: int, outputDir: str | None = None) -> DReturnType[list[str]]:
        """Download and unpack a job's input sandbox into <outputDir>/InputSandbox<jobID>/."""
        destination = Path(outputDir or os.getcwd()) / f"InputSandbox{int(jobID)}"
        return SandboxStoreClient(**self.rpcOptions).downloadSandboxForJob(int(jobID), "Input", destination)
