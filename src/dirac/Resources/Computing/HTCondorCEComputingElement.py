"""HTCondorCEComputingElement: pilots submitted to an HTCondor-CE with condor_submit, followed with condor_q/condor_history.

The HTCondor client tools must be on the PATH of the SiteDirector's host. Each submission writes a
submit file in ``<WorkingDirectory>/<CE>/`` and runs ``condor_submit -terse`` against the CE's
schedd (``-pool <CE>:<Port> -remote <CE>``; with ``UseLocalSchedd = True`` a local schedd forwards
the jobs through the grid universe, ``grid_resource = condor <CE> <CE>:<Port>``). Statuses come
from ``condor_q`` and ``condor_history`` (``-attributes ... -json``), kills from ``condor_rm``,
outputs from ``condor_transfer_data`` into the same directory (``<cluster>.<proc>.out``/``.err``).

Credentials: with a token (``setToken``) the commands authenticate with SciTokens
(``_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=SCITOKENS``, ``_CONDOR_SCITOKENS_FILE``) and the
pilots get the token (``use_scitokens``); else with the proxy over SSL
(``_condor_AUTH_SSL_CLIENT_CERTFILE``/``KEYFILE``). The proxy given to ``submitJob`` goes with
the pilots (``x509userproxy``). Options: ``Port`` (9619), ``UseLocalSchedd`` (false),
``ExtraSubmitString`` (lines added to the submit file, ``\\n`` for new lines), ``WorkingDirectory``
(required), ``Timeout`` (seconds per command, 120). References: ``htcondorce://<CE>/<cluster>.<proc>``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dirac.Core.Security import Locations
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.ComputingElement import (
    ABORTED,
    DONE,
    FAILED,
    RUNNING,
    UNKNOWN,
    WAITING,
    CEAuthenticationFailed,
    CEUnreachable,
    ComputingElement,
    ComputingElementError,
    SubmissionError,
    newStamp,
)

DEFAULT_PORT = 9619
STATE_ATTRIBUTES = "ClusterId,ProcId,JobStatus,HoldReasonCode,HoldReasonSubCode,HoldReason,ExitCode"
#: HoldReasonSubCode the submit file gives to pilots held because they exited with a non-zero code
FAILED_SUBCODE = 55
#: HTCondor JobStatus -> pilot status (5, Held, is refined in condorStatus)
CONDOR_STATES = {1: WAITING, 2: RUNNING, 3: ABORTED, 4: DONE, 5: ABORTED, 6: RUNNING, 7: WAITING}
_CONDOR_NAMES = {1: "Idle", 2: "Running", 3: "Removed", 4: "Completed", 5: "Held", 6: "Transferring Output",
                 7: "Suspended"}
_CONDOR_ID = re.compile(r"^\d+\.\d+$")
_AUTH_ERRORS = ("AUTHENTICATE", "Failed to authenticate", "SECMAN:2010", "PERMISSION DENIED")
_CONNECT_ERRORS = ("Failed to connect", "Failed to fetch ads", "Can't find address", "Connection refused",
                   "Failed to locate")

_SUBMIT_FILE = """# dirac-seed pilots for the HTCondor-CE {ce}
universe = {universe}
{gridResource}executable = {executable}
initialdir = {outputDirectory}
output = $(Cluster).$(Process).out
error = $(Cluster).$(Process).err
log = $(Cluster).$(Process).log
should_transfer_files = YES
when_to_transfer_output = ON_EXIT_OR_EVICT
transfer_output_files = ""
environment = "DIRAC_PILOT_STAMP=$(stamp) HTCONDOR_JOBID=$(Cluster).$(Process)"
{credentials}request_cpus = {processors}
+xcount = {processors}
on_exit_hold = ExitCode =!= 0
on_exit_hold_subcode = {failedSubcode}
on_exit_hold_reason = strcat("the pilot exited with code ", ExitCode)
leave_in_queue = JobStatus == 4 && (CompletionDate =?= UNDEFINED || (time() - CompletionDate) < 86400)
{extra}
queue stamp in ({stamps})
"""


def condorStatus(ad: Mapping[str, Any]) -> tuple[str, str]:
    """(pilot status, reason) of a job ClassAd from condor_q/condor_history -json."""
    code = int(ad.get("JobStatus", 0))
    status = CONDOR_STATES.get(code, UNKNOWN)
    name = _CONDOR_NAMES.get(code, f"JobStatus {code}")
    if code == 5:
        reason = str(ad.get("HoldReason", "") or "held")
        if int(ad.get("HoldReasonCode", 0) or 0) == 3 and str(ad.get("HoldReasonSubCode", "")) == str(FAILED_SUBCODE):
            return FAILED, f"HTCondor job held: {reason}"
        return ABORTED, f"HTCondor job held: {reason}"
    if code == 4 and ad.get("ExitCode") not in (None, 0):
        return FAILED, f"HTCondor job Completed with exit code {ad['ExitCode']}"
    return status, f"HTCondor job {name}"


def parseSubmitOutput(output: str) -> list[str]:
    """Condor ids from ``condor_submit -terse`` ('107.0 - 107.2' -> ['107.0', '107.1', '107.2'])."""
    match = re.search(r"(\d+)\.(\d+)\s*-\s*(\d+)\.(\d+)", output)
    if not match or match.group(1) != match.group(3):
        raise SubmissionError(f"unexpected condor_submit output: {output.strip()[:200]!r}")
    cluster, first, last = match.group(1), int(match.group(2)), int(match.group(4))
    return [f"{cluster}.{proc}" for proc in range(first, last + 1)]


class HTCondorCEComputingElement(ComputingElement):
    """Pilots as HTCondor jobs on an HTCondor-CE (condor_submit, condor_q, condor_history, condor_rm)."""

    ceType = "HTCondorCE"
    referenceScheme = "htcondorce"

    def __init__(self, ceName: str, parameters: Mapping[str, Any] | None = None):
        super().__init__(ceName, parameters)
        workingDirectory = self.getParameter("WorkingDirectory")
        if not workingDirectory:
            raise ConfigurationError(f"CE {ceName}: set WorkingDirectory (submit files and pilot outputs go there)")
        self.directory = Path(workingDirectory).absolute() / ceName

    @property
    def port(self) -> int:
        return int(self.castOption("Port", DEFAULT_PORT))

    @property
    def useLocalSchedd(self) -> bool:
        return bool(self.castOption("UseLocalSchedd", False))

    def scheddArguments(self, submit: bool = False) -> list[str]:
        """How the commands reach the CE's schedd (nothing with a local schedd)."""
        if self.useLocalSchedd:
            return []
        return ["-pool", f"{self.ceName}:{self.port}", "-remote" if submit else "-name", self.ceName]

    # -- running commands -------------------------------------------------------------------------------
    def _environment(self) -> tuple[dict[str, str], list[Path]]:
        """The commands' environment with our credential, and the temporary files holding it."""
        environment = dict(os.environ)
        files: list[Path] = []
        caDir = Locations.getCAsLocation()
        if self.token:
            handle, name = tempfile.mkstemp(prefix="htcondorce-", suffix=".token", dir=self.directory)
            os.close(handle)
            files.append(Path(name))
            writePrivateFile(files[-1], self.token.encode())
            environment.update({"_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS": "SCITOKENS",
                                "_CONDOR_SCITOKENS_FILE": name})
        elif self.proxy is not None:
            handle, name = tempfile.mkstemp(prefix="htcondorce-", suffix=".proxy", dir=self.directory)
            os.close(handle)
            files.append(Path(name))
            writePrivateFile(files[-1], self.proxy)
            environment.update({"_condor_SEC_CLIENT_AUTHENTICATION_METHODS": "SSL",
                                "_condor_AUTH_SSL_CLIENT_CERTFILE": name, "_condor_AUTH_SSL_CLIENT_KEYFILE": name,
                                "_condor_AUTH_SSL_USE_CLIENT_PROXY_ENV_VAR": "false"})
        if caDir:
            environment.update({"_condor_AUTH_SSL_CLIENT_CADIR": caDir, "_condor_AUTH_SSL_SERVER_CADIR": caDir})
        return environment, files

    def runCondor(self, command: list[str], allowFailure: bool = False) -> str:
        """Run a condor_* command with our credential; its standard output (typed errors on failure)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        environment, files = self._environment()
        timeout = float(self.castOption("Timeout", 120.0))
        try:
            done = subprocess.run(command, env=environment, capture_output=True, text=True, errors="replace",
                                  timeout=timeout, stdin=subprocess.DEVNULL, cwd=self.directory)
        except FileNotFoundError as exc:
            raise ComputingElementError(f"CE {self.ceName}: {command[0]} is not installed on this host") from exc
        except subprocess.TimeoutExpired as exc:
            raise CEUnreachable(f"CE {self.ceName}: {command[0]} did not finish within {timeout:.0f} s") from exc
        finally:
            for path in files:
                path.unlink(missing_ok=True)
        if done.returncode != 0 and not allowFailure:
            message = (done.stderr.strip() or done.stdout.strip()).replace("\n", " ")[:400]
            text = f"CE {self.ceName}: {command[0]} exited with {done.returncode}: {message}"
            if any(marker in message for marker in _AUTH_ERRORS):
                raise CEAuthenticationFailed(text)
            if any(marker in message for marker in _CONNECT_ERRORS):
                raise CEUnreachable(text)
            raise SubmissionError(text) if command[0] == "condor_submit" else ComputingElementError(text)
        return done.stdout

    # -- references ---------------------------------------------------------------------------------------
    def _condorID(self, reference: str) -> str:
        return self.ownJobID(reference, _CONDOR_ID, "<cluster>.<proc>")

    # -- the hooks ----------------------------------------------------------------------------------------
    def submitFile(self, executable: str, stamps: list[str], proxyFile: str) -> str:
        """The text of the submit file for pilots ``stamps`` running ``executable``."""
        credentials = ""
        if proxyFile:
            credentials += f"use_x509userproxy = true\nx509userproxy = {proxyFile}\n"
        if self.token:
            credentials += f"use_scitokens = true\nscitokens_file = {self.directory / 'pilot.token'}\n"
        extra = str(self.ceParameters.get("ExtraSubmitString") or "").replace("\\n", "\n")
        return _SUBMIT_FILE.format(
            ce=self.ceName, universe="grid" if self.useLocalSchedd else "vanilla",
            gridResource=f"grid_resource = condor {self.ceName} {self.ceName}:{self.port}\n"
            if self.useLocalSchedd else "",
            executable=executable, outputDirectory=self.directory, credentials=credentials,
            processors=self.numberOfProcessors, failedSubcode=FAILED_SUBCODE, extra=extra, stamps=", ".join(stamps))

    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any
                    ) -> dict[str, str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamps = [newStamp() for _ in range(numberOfJobs)]
        proxyFile = ""
        if proxy is not None:
            proxyFile = str(self.directory / f"{stamps[0]}.proxy")
            writePrivateFile(Path(proxyFile), proxy)
        if self.token:
            writePrivateFile(self.directory / "pilot.token", self.token.encode())
        submitFile = self.directory / f"{stamps[0]}.sub"
        submitFile.write_text(self.submitFile(str(Path(executableFile).absolute()), stamps, proxyFile))
        output = self.runCondor(["condor_submit", "-terse", *self.scheddArguments(submit=True), str(submitFile)])
        ids = parseSubmitOutput(output)
        if len(ids) != numberOfJobs:
            raise SubmissionError(f"CE {self.ceName}: asked for {numberOfJobs} pilots, condor_submit made {len(ids)}")
        references = {f"{self.referenceScheme}://{self.ceName}/{condorID}": stamp for condorID, stamp in
                      zip(ids, stamps, strict=True)}
        for reference in references:
            self.log.info("%s: pilot submitted to %s", reference, self.ceName)
        return references

    def _getJobStatus(self, references: list[str]) -> dict[str, str]:
        ids, statuses = self.splitReferences(references, self._condorID)
        ads: dict[str, Mapping[str, Any]] = {}
        for command in ("condor_q", "condor_history"):
            wanted = [condorID for condorID in ids if condorID not in ads]
            if not wanted:
                break
            output = self.runCondor([command, *self.scheddArguments(), *wanted, "-attributes", STATE_ATTRIBUTES,
                                     "-json"])
            try:
                rows = json.loads(output) if output.strip() else []
            except ValueError as exc:
                raise ComputingElementError(f"CE {self.ceName}: {command} answered no JSON: {exc}") from exc
            for ad in rows:
                ads.setdefault(f"{ad.get('ClusterId')}.{ad.get('ProcId')}", ad)
        for condorID, reference in ids.items():
            if condorID in ads:
                statuses[reference], self.statusReasons[reference] = condorStatus(ads[condorID])
            else:
                statuses[reference] = UNKNOWN
                self.statusReasons[reference] = "unknown to condor_q and condor_history"
        return statuses

    def _getJobOutput(self, reference: str) -> tuple[str, str]:
        condorID = self._condorID(reference)
        if not self.useLocalSchedd:
            self.runCondor(["condor_transfer_data", *self.scheddArguments(), condorID])
        texts = []
        for suffix in ("out", "err"):
            path = self.directory / f"{condorID}.{suffix}"
            texts.append(path.read_text(errors="replace") if path.exists() else "")
        return texts[0], texts[1]

    def _killJobs(self, references: list[str]) -> None:
        ids = [self._condorID(reference) for reference in references]
        if ids:
            self.runCondor(["condor_rm", *self.scheddArguments(), *ids])

    def _getCEStatus(self) -> dict[str, Any]:
        output = self.runCondor(["condor_q", *self.scheddArguments(), "-attributes", "JobStatus", "-json"])
        rows = json.loads(output) if output.strip() else []
        codes = [int(row.get("JobStatus", 0)) for row in rows]
        return {"RunningJobs": sum(code in (2, 6) for code in codes),
                "WaitingJobs": sum(code in (1, 7) for code in codes)}
