"""The job's data on the worker node: input files downloaded or read in place, output files stored and registered.

* ``InputData``: by the job's input data policy (``Client/InputDataPolicy``): downloaded (below), or read in
  place through transport URLs on the SEs of the job's site (``InputDataByProtocol``), or the first then
  the other for the files the first could not make available; the payload finds them all listed in the
  files ``InputDataByProtocol.writeInputDataFiles`` writes.
* ``InputData`` downloaded and the ``LFN:`` entries of ``InputSandbox``: replicas from the File Catalog,
  downloaded into the working directory (named after the LFN) from the SEs of the job's site first, each
  checked against the catalog's Adler32 (``DataManager.getFile``).
* ``OutputData`` (local names, globs allowed, or ``LFN:`` paths), ``OutputSE`` and ``OutputPath``: each file
  is stored and registered (``DataManager.putAndRegister``) on the first of the output SEs that takes it,
  else on a failover SE (the ``Tier1-Failover`` SE group), from where the job's request moves it to the first
  OutputSE later (``failedOver``, see FailoverRequest). ``putAndRegister`` leaves nothing registered
  without its copy, so a file that every SE refused is in neither.

Everything runs with the wrapper's own credentials (``X509_USER_PROXY``): the catalog's and SEs' rules
apply to whoever that is. See docs/jobwrapper.md, "Input and output data".
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dirac.Core.Config import gConfig
from dirac.Core.Config.Operations import getOperationsValue
from dirac.Core.Config.Registry import getVOForGroup
from dirac.Core.Security.Locations import getCAsLocation
from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.Logging import getLogger
from dirac.DataManagementSystem.Utilities.ResolveSE import getDestinationSEList, getSEsForSite
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Client.InputDataPolicy import PROTOCOL, inputDataPolicy, localProtocols
from dirac.WorkloadManagementSystem.JobWrapper.InputDataByProtocol import (
    InputFile,
    resolveByProtocol,
    writeInputDataFiles,
)

#: DIRAC's SE groups: where user jobs' OutputData go without OutputSE, and where they go when those fail
DEFAULT_OUTPUT_SE_GROUP = "SE-USER"
FAILOVER_SE_GROUP = "Tier1-Failover"

log = getLogger("WorkloadManagement/JobWrapper")


class JobDataError(Exception):
    """A data step failed: ``minorStatus`` is the job's minor status, ``message`` says why."""

    def __init__(self, minorStatus: str, message: str):
        super().__init__(message)
        self.minorStatus = minorStatus
        self.message = message


@dataclass(frozen=True)
class OutputFile:
    """One file of OutputData: where it is on the node and the LFN it gets."""

    local: Path
    lfn: str
    #: the OutputData entry naming it
    entry: str


@dataclass(frozen=True)
class FailedOverFile:
    """An OutputData file stored on a failover SE: a request is to move it to ``targetSE`` later."""

    output: OutputFile
    failoverSE: str
    #: the first OutputSE: where DIRAC's failover request replicates it
    targetSE: str


def stripLFN(entry: str) -> str:
    """``LFN:/a/b`` (or ``lfn:``) -> ``/a/b``."""
    return entry[4:] if entry[:4].lower() == "lfn:" else entry


def lfnProblem(lfn: str) -> str | None:
    """Why ``lfn`` cannot be a file's LFN (the catalog checks the rest: VO root, lengths), None when it can."""
    if not lfn:
        return "empty LFN"
    if not lfn.startswith("/"):
        return f"{lfn!r} is not an absolute path"
    if any(part in ("", ".", "..") for part in lfn[1:].split("/")):
        return f"{lfn!r} has an empty, '.' or '..' component"
    return None


def userLFNPrefix(vo: str) -> str:
    """DIRAC's Operations option ``LFNUserPrefix`` (the VO's, else the defaults', else ``user``)."""
    return getOperationsValue("LFNUserPrefix", "user", vo)


class JobData:
    """The data steps of one job; parameters go to ``report`` (a JobReport)."""

    def __init__(self, jobID: int, workDir: Path, site: str, owner: str, ownerGroup: str, vo: str,
                 dataManager: Any, report: Any):
        self.jobID = jobID
        self.workDir = workDir
        self.site = site or gConfig.getValue("/LocalSite/Site", "")
        self.owner = owner
        self.vo = vo or (getVOForGroup(ownerGroup) if ownerGroup else "")
        self.dm = dataManager
        self.report = report
        #: the OutputData files ``upload`` could only store on a failover SE
        self.failedOver: list[FailedOverFile] = []

    # -- input -------------------------------------------------------------------------------------------------
    def replicas(self, lfns: list[str], failure: str, notAvailable: str) -> dict[str, dict[str, str]]:
        """{lfn: {SE: PFN}} of the replicas that may be read now; files without one fail with ``notAvailable``
        (the ``MissingLFNs`` parameter lists them), a catalog that cannot be asked with ``failure``."""
        replicas = self.dm.getActiveReplicas(lfns)
        if not replicas["OK"]:
            raise JobDataError(failure, f"cannot get the replicas of the input files: {replicas['Message']}")
        problems = dict(replicas["Value"]["Failed"])
        problems.update({lfn: "no replica on a Storage Element that may be read now"
                         for lfn, ses in replicas["Value"]["Successful"].items() if not ses})
        if problems:
            self.report.setJobParameter("MissingLFNs", "\n".join(f"LFN:{lfn} Problem: {why}"
                                                                 for lfn, why in sorted(problems.items())))
            raise JobDataError(notAvailable, "input file(s) not available: "
                               + "; ".join(f"{lfn}: {why}" for lfn, why in sorted(problems.items())))
        return replicas["Value"]["Successful"]

    def _download(self, lfns: list[str], replicas: dict[str, dict[str, str]], failure: str,
                  parameter: str) -> tuple[dict[str, str], dict[str, str]]:
        """Download ``lfns`` into the working directory, those at the job's site first: ({lfn: local path},
        {lfn: why not}); ``parameter`` receives the summary, as DIRAC's DownloadInputData."""
        names: dict[str, str] = {}
        for lfn in lfns:
            clash = names.setdefault(os.path.basename(lfn), lfn)
            if clash != lfn:
                raise JobDataError(failure, f"{clash} and {lfn} would both be {os.path.basename(lfn)} in the "
                                            f"working directory")
        local = getSEsForSite(self.site)
        atSite = [lfn for lfn in lfns if set(replicas.get(lfn, {})) & set(local)]
        log.info("Job %d: downloading %d file(s), %d with a replica at %s (%s)", self.jobID, len(lfns), len(atSite),
                 self.site or "an unknown site", ", ".join(local) or "no SE")
        got = self.dm.getFile(lfns, self.workDir, preferredSEs=local)
        if not got["OK"]:
            raise JobDataError(failure, f"cannot download the input files: {got['Message']}")
        summary = (f"Successfully downloaded {len(got['Value']['Successful'])} LFN(s) ({len(atSite)} with a "
                   f"replica at the site):\n" + "\n".join(sorted(got["Value"]["Successful"])))
        failed = got["Value"]["Failed"]
        if failed:
            summary += f"\nFailed to download {len(failed)} LFN(s):\n" + "\n".join(sorted(failed))
        self.report.setJobParameter(parameter, summary, sendFlag=False)
        return got["Value"]["Successful"], failed

    def download(self, entries: list[str], failure: str, notAvailable: str, parameter: str) -> dict[str, str]:
        """Download the files into the working directory, those at the job's site first: {lfn: local path}.

        Files without a replica fail with ``notAvailable``, any other problem with ``failure``."""
        lfns = list(dict.fromkeys(stripLFN(entry) for entry in entries))
        got, failed = self._download(lfns, self.replicas(lfns, failure, notAvailable), failure, parameter)
        if failed:
            raise JobDataError(failure, "cannot download " + "; ".join(f"{lfn}: {why}"
                                                                     for lfn, why in sorted(failed.items())))
        return got

    def downloadInputSandboxLFNs(self, lfns: list[str]) -> dict[str, str]:
        """The ``LFN:`` entries of the input sandbox into the working directory."""
        failure = JobMinorStatus.FAILED_DOWNLOADING_INPUT_SANDBOX_LFN
        return self.download(lfns, failure, failure, "DownloadInputSandboxLFNs")

    def resolveInputData(self, entries: list[str], jdlPolicy: list[str]) -> dict[str, str]:
        """Make the InputData available to the payload by the steps of its input data policy (the JDL's, else the
        site's, else download), each taking the files the previous ones could not; the payload's environment
        (the files listing them, see ``InputDataByProtocol``). Files no step made available fail the job."""
        failure = JobMinorStatus.INPUT_DATA_RESOLUTION
        try:
            policy, origin = inputDataPolicy(jdlPolicy, self.site, self.vo)
        except DiracError as exc:
            raise JobDataError(failure, exc.message) from exc
        lfns = list(dict.fromkeys(stripLFN(entry) for entry in entries))
        log.info("Job %d: %d input file(s), policy %s (from %s)", self.jobID, len(lfns), ", ".join(policy), origin)
        replicas = self.replicas(lfns, failure, JobMinorStatus.INPUT_NOT_AVAILABLE)
        metadata = self.dm.catalog.getFileMetadata(lfns)
        if not metadata["OK"]:
            raise JobDataError(failure, f"cannot get the metadata of the input files: {metadata['Message']}")
        metadata = metadata["Value"]["Successful"]
        files: dict[str, InputFile] = {}
        failed: dict[str, str] = {}
        for step in policy:
            left = [lfn for lfn in lfns if lfn not in files]
            if not left:
                break
            if step == PROTOCOL:
                resolved, failed = self.resolveByProtocol(left, replicas, metadata)
                files.update(resolved)
            else:
                got, failed = self._download(left, replicas, failure, "DownloadInputData")
                files.update({lfn: InputFile(lfn, path, "", "local", str(metadata.get(lfn, {}).get("GUID") or ""),
                                             int(metadata.get(lfn, {}).get("Size") or 0),
                                             str(metadata.get(lfn, {}).get("Checksum") or ""), Downloaded=True)
                              for lfn, path in got.items()})
        if failed:
            raise JobDataError(failure, f"{len(failed)} input file(s) not made available by "
                               f"{', '.join(policy)}: " + " | ".join(f"{lfn}: {why}" for lfn, why in failed.items()))
        environment = writeInputDataFiles(self.workDir, [files[lfn] for lfn in lfns])
        if not os.environ.get("X509_CERT_DIR"):  # for the payload's own readers (xrdcp, curl, davix)
            environment["X509_CERT_DIR"] = getCAsLocation()
        return environment

    def resolveByProtocol(self, lfns: list[str], replicas: dict[str, dict[str, str]],
                          metadata: dict[str, dict[str, Any]]) -> tuple[dict[str, InputFile], dict[str, str]]:
        """TURLs of ``lfns`` on the SEs of the job's site, in the configured protocols; nothing is downloaded.
        Parameters: ``InputDataByProtocol`` (file: SE, protocol), DIRAC's ``ProblematicTURLs`` (the failures)."""
        local = getSEsForSite(self.site)
        protocols = localProtocols(self.vo)
        resolved, failed = resolveByProtocol(lfns, replicas, metadata, local, protocols, self.dm.storageElement)
        log.info("Job %d: %d of %d file(s) by protocol at %s (SEs %s, protocols %s)", self.jobID, len(resolved),
                 len(lfns), self.site or "an unknown site", ", ".join(local) or "none", ", ".join(protocols))
        for lfn, why in failed.items():
            log.warning("Job %d: no TURL for %s: %s", self.jobID, lfn, why)
        if resolved:
            self.report.setJobParameter("InputDataByProtocol", f"Resolved {len(resolved)} LFN(s) by protocol:\n"
                                        + "\n".join(f"{lfn}: {item.SE} ({item.Protocol})"
                                                    for lfn, item in resolved.items()), sendFlag=False)
        if failed:
            self.report.setJobParameter("ProblematicTURLs", "\n".join(
                f"Failed to obtain TURL for {lfn}: {why}" for lfn, why in failed.items()), sendFlag=False)
        return resolved, failed

    # -- output ------------------------------------------------------------------------------------------------
    def userBase(self) -> str:
        """DIRAC's default place of a user job's outputs: /<vo>/<LFNUserPrefix>/<initial>/<owner>."""
        if not self.owner or not self.vo:
            raise JobDataError(JobMinorStatus.UPLOADING_OUTPUT_DATA,
                               "cannot name the output files: the job's owner or VO is unknown")
        return f"/{self.vo}/{userLFNPrefix(self.vo)}/{self.owner[0]}/{self.owner}"

    def outputDirectory(self, outputPath: str) -> str:
        """Where OutputData given as local names go (DIRAC's rules): ``LFN:<path>`` as it is, another
        OutputPath below the owner's home, none: ``<home>/<JobID // 1000>/<JobID>``."""
        if outputPath[:4].lower() == "lfn:":
            return stripLFN(outputPath).rstrip("/")
        relative = outputPath.strip("/") or f"{self.jobID // 1000}/{self.jobID}"
        return f"{self.userBase()}/{relative}"

    def outputFiles(self, entries: list[str], outputPath: str) -> tuple[list[OutputFile], list[str]]:
        """(the files to store with their LFNs, entries without a wildcard that match no file)."""
        root = self.workDir.resolve()
        files: dict[str, OutputFile] = {}
        missing: list[str] = []
        for entry in entries:
            isLFN = entry[:4].lower() == "lfn:"
            pattern = os.path.basename(stripLFN(entry)) if isLFN else entry
            matches = [(self.workDir / name).resolve() for name in sorted(glob.glob(pattern, root_dir=self.workDir))]
            outside = [m for m in matches if not m.is_relative_to(root)]
            if outside:
                raise JobDataError(JobMinorStatus.UPLOADING_OUTPUT_DATA,
                                   f"OutputData {entry!r} is outside the working directory")
            matches = [m for m in matches if m.is_file()]
            if not matches and not glob.has_magic(pattern):
                missing.append(entry)
            for match in matches:
                directory = os.path.dirname(stripLFN(entry)) if isLFN else self.outputDirectory(outputPath)
                lfn = f"{directory}/{match.name}"
                problem = lfnProblem(lfn)
                if problem:
                    raise JobDataError(JobMinorStatus.UPLOADING_OUTPUT_DATA, f"OutputData {entry!r}: {problem}")
                if lfn in files and files[lfn].local != match:
                    raise JobDataError(JobMinorStatus.UPLOADING_OUTPUT_DATA,
                                       f"OutputData: {files[lfn].local.name} and {match.name} would both be {lfn}")
                files[lfn] = OutputFile(match, lfn, entry)
        return list(files.values()), missing

    def destinations(self, outputSEs: list[str]) -> tuple[list[str], list[str]]:
        """(the output SEs in the order given, SE groups and aliases expanded; the failover SEs not among them)."""
        ses: list[str] = []
        for name in outputSEs or [DEFAULT_OUTPUT_SE_GROUP]:
            # a name that is no SE, alias or group is kept: its upload then fails with a clear reason
            ses += getDestinationSEList(name, self.site) or ([name] if outputSEs else [])
        ses = list(dict.fromkeys(ses))
        failover = [se for se in getDestinationSEList(FAILOVER_SE_GROUP, self.site) if se not in ses]
        return ses, failover

    def upload(self, entries: list[str], outputSEs: list[str], outputPath: str) -> dict[str, str]:
        """Store and register every OutputData file: {lfn: SE}. Raises JobDataError (Uploading Output Data)
        naming the files that could not be stored anywhere, or that are missing, after trying all the others."""
        failure = JobMinorStatus.UPLOADING_OUTPUT_DATA
        files, missing = self.outputFiles(entries, outputPath)
        ses, failover = self.destinations(outputSEs)
        if not ses and not failover:
            raise JobDataError(failure, "No output SEs defined in VO configuration (OutputSE, or the SE groups "
                                        f"{DEFAULT_OUTPUT_SE_GROUP} and {FAILOVER_SE_GROUP})")
        log.info("Job %d: uploading %d output file(s) to %s (failover: %s)", self.jobID, len(files),
                 ", ".join(ses) or "-", ", ".join(failover) or "-")
        landed: dict[str, str] = {}
        errors: dict[str, list[str]] = {}
        for output in files:
            for se in ses + failover:
                put = self.dm.putAndRegister(output.lfn, output.local, se)
                reason = put["Message"] if not put["OK"] else put["Value"]["Failed"].get(output.lfn)
                if put["OK"] and output.lfn in put["Value"]["Successful"]:
                    landed[output.lfn] = se
                    if se in failover and ses:
                        self.failedOver.append(FailedOverFile(output, se, ses[0]))
                    log.info("Job %d: %s stored on %s%s and registered", self.jobID, output.lfn, se,
                             " (failover)" if se in failover else "")
                    break
                log.warning("Job %d: %s not stored on %s: %s", self.jobID, output.lfn, se, reason)
                errors.setdefault(output.lfn, []).append(f"{se}: {reason}")
        if landed:
            self.report.setJobParameters([
                ("UploadedOutputData", ", ".join(landed)),
                ("OutputDataSEs", "\n".join(f"{lfn}: {se}{' (failover)' if se in failover else ''}"
                                            for lfn, se in landed.items())),
            ], sendFlag=False)
        notStored = [output for output in files if output.lfn not in landed]
        if notStored or missing:
            self.report.setJobParameter("OutputData", "MissingFiles: " + ", ".join(
                missing + [output.entry for output in notStored]), sendFlag=False)
            reasons = [f"{entry}: no such file in the working directory" for entry in missing]
            reasons += [f"{output.lfn}: {'; '.join(errors[output.lfn])}" for output in notStored]
            raise JobDataError(failure, "Failed to upload OutputData: " + " | ".join(reasons))
        return landed
