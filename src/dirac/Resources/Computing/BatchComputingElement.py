"""Computing elements whose pilots are jobs of a batch system (Host, Slurm, ...) on one or more batch hosts.

The batch hosts are reached through a ``CommandRunner``: this host for ``LocalComputingElement``
with ``BatchSystem = Slurm`` (``LocalBatchComputingElement``), SSH for ``SSHComputingElement`` and
``SSHBatchComputingElement``. Per pilot, the CE writes into ``ExecutableArea`` the pilot
executable (``<stamp>.py``), its proxy (``<stamp>.proxy``, mode 0600) and a job script
(``<stamp>.sh``) that sets ``DIRAC_PILOT_STAMP``, ``DIRAC_PILOT_REFERENCE`` and
``X509_USER_PROXY``, runs the pilot in ``WorkArea/<stamp>``, removes the credential and writes the
exit code next to the output (see ``BatchSystems/BatchSystem.py``).

Areas (options of the CE or queue section): ``SharedArea`` (absolute, or relative to the home
directory of the batch account; default ``dirac-pilots``), ``WorkArea`` (default
``<SharedArea>/work``), ``ExecutableArea``, ``BatchOutput`` and ``BatchError`` (default
``<SharedArea>/data``); relative ones are inside ``SharedArea``. Other options: ``BatchSystem``
(``Host`` or ``Slurm``, default Host), ``Preamble`` (shell lines run before every command),
``Timeout`` (seconds per command, default 120), and the batch system's own options.

References are DIRAC's: ``<scheme><batch system>://<CE name>/<batch id>``, e.g.
``sshslurm://ce.example.org/1234``, and ``.../<host>/<batch id>`` for several hosts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.BatchSystems import getBatchSystemClass
from dirac.Resources.Computing.BatchSystems.BatchSystem import BatchJob, BatchSystem, JobState
from dirac.Resources.Computing.CommandRunner import CommandRunner, LocalCommandRunner, quote
from dirac.Resources.Computing.ComputingElement import (
    UNKNOWN,
    ComputingElement,
    ComputingElementError,
    NotEnoughSlots,
    UnknownJobReference,
    newStamp,
)

AREA_DEFAULTS = {"WorkArea": "work", "ExecutableArea": "data", "BatchOutput": "data", "BatchError": "data"}
DEFAULT_SHARED_AREA = "dirac-pilots"
_BATCH_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

_JOB_SCRIPT = """#!/bin/sh
# dirac-seed pilot {stamp}, written by the computing element {ceName}
jobid={jobID}
export DIRAC_PILOT_STAMP={stamp}
export DIRAC_PILOT_REFERENCE={prefix}"$jobid"
{environment}
mkdir -p {workDirectory} && cd {workDirectory} || {{ rc=1; echo "cannot enter {workDirectory}" >&2; }}
[ -n "$rc" ] || {{ {executable}; rc=$?; }}
{cleanup}
echo "$rc" > {output}/"$jobid".exit.tmp && mv -f {output}/"$jobid".exit.tmp {output}/"$jobid".exit
exit "$rc"
"""


@dataclass
class BatchHost:
    """One host the CE submits to: its command runner, slots, batch system and areas (set up at first use)."""

    name: str
    runner: CommandRunner
    maxJobs: int
    batch: BatchSystem | None = None
    areas: dict[str, str] = field(default_factory=dict)


class BatchComputingElement(ComputingElement):
    """Base of the CEs that drive a batch system through command runners; subclasses say how hosts are reached."""

    #: True when references carry the host name ('<prefix><host>/<id>'): CEs with several hosts
    multiHost = False

    def __init__(self, ceName: str, parameters: Mapping[str, Any] | None = None):
        super().__init__(ceName, parameters)
        self.batchSystemClass = getBatchSystemClass(str(self.ceParameters.get("BatchSystem") or "Host"))
        self.timeout = self._number("Timeout", 120.0)
        self.hosts: dict[str, BatchHost] = {}

    def _number(self, name: str, default: float) -> float:
        value = self.ceParameters.get(name, default)
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"CE {self.ceName}: option {name}={value!r} is not a number") from exc

    # -- hooks ----------------------------------------------------------------------------------------
    def _makeHosts(self) -> dict[str, BatchHost]:
        """The batch hosts of this CE, by name (not yet connected)."""
        raise NotImplementedError

    def _defaultSharedArea(self) -> str:
        return DEFAULT_SHARED_AREA

    # -- hosts, areas, references ----------------------------------------------------------------------------
    @property
    def referencePrefix(self) -> str:
        return f"{self.referenceScheme}{self.batchSystemClass.name.lower()}://{self.ceName}/"

    def _hosts(self) -> dict[str, BatchHost]:
        if not self.hosts:
            self.hosts = self._makeHosts()
        return self.hosts

    def _ready(self, host: BatchHost) -> BatchSystem:
        """The batch system of ``host``, its areas resolved and created at the first call."""
        if host.batch is not None:
            return host.batch
        shared = str(self.ceParameters.get("SharedArea") or self._defaultSharedArea())
        home = None
        if not shared.startswith("/"):
            home = host.runner.homeDirectory()
            shared = f"{home.rstrip('/')}/{shared}"
        areas = {"SharedArea": shared.rstrip("/")}
        for name, default in AREA_DEFAULTS.items():
            value = str(self.ceParameters.get(name) or default)
            areas[name] = (value if value.startswith("/") else f"{areas['SharedArea']}/{value}").rstrip("/")
        result = host.runner.run("mkdir -p " + " ".join(quote(path) for path in sorted(set(areas.values()))))
        if not result.ok:
            raise ComputingElementError(f"CE {self.ceName}: cannot create its areas on {host.name}: {result.describe()}")
        host.areas = areas
        host.batch = self.batchSystemClass(host.runner, areas["BatchOutput"], areas["BatchError"],
                                           {**self.ceParameters, "KillGracePeriod": self.killGracePeriod})
        self.log.info("CE %s: %s batch system on %s, shared area %s", self.ceName, self.batchSystemClass.name,
                      host.name, shared)
        return host.batch

    def makeReference(self, stamp: str, host: str = "") -> str:
        """The reference of batch job ``stamp`` (a batch id) on ``host``."""
        return f"{self.referencePrefix}{host}/{stamp}" if self.multiHost else f"{self.referencePrefix}{stamp}"

    def _parseReference(self, reference: str) -> tuple[BatchHost, str]:
        """(host, batch id) of a reference this CE issued (UnknownJobReference otherwise)."""
        reference = reference.split(":::")[0]
        if not reference.startswith(self.referencePrefix):
            raise UnknownJobReference(f"{reference}: not a reference of CE {self.ceName} ({self.referencePrefix}...)")
        rest = reference[len(self.referencePrefix):]
        hostName, batchID = rest.rsplit("/", 1) if self.multiHost and "/" in rest else ("", rest)
        hosts = self._hosts()
        host = hosts.get(hostName) if self.multiHost else next(iter(hosts.values()))
        if host is None or not _BATCH_ID.match(batchID):
            raise UnknownJobReference(f"{reference}: no such host or malformed batch id for CE {self.ceName}")
        return host, batchID

    # -- submission -----------------------------------------------------------------------------------
    def _jobScript(self, host: BatchHost, batch: BatchSystem, stamp: str, executable: str, credentials: list[str],
                   environment: Mapping[str, str]) -> str:
        exports = [f"export {name}={quote(value)}" for name, value in environment.items()]
        prefix = self.makeReference("", host.name)
        return _JOB_SCRIPT.format(
            stamp=quote(stamp), ceName=self.ceName, jobID=batch.jobIDExpression(stamp), prefix=quote(prefix),
            environment="\n".join(exports), workDirectory=quote(f"{host.areas['WorkArea']}/{stamp}"),
            executable=quote(executable),
            cleanup=("rm -f " + " ".join(quote(c) for c in credentials)) if credentials else "",
            output=quote(host.areas["BatchOutput"]),
        )

    def _prepareJob(self, host: BatchHost, batch: BatchSystem, executable: bytes, proxy: bytes | None,
                    environment: Mapping[str, str]) -> BatchJob:
        stamp = newStamp()
        area = host.areas["ExecutableArea"]
        credentials, env = [], dict(environment)
        if proxy is not None:
            credentials.append(f"{area}/{stamp}.proxy")
            host.runner.writeFile(credentials[-1], proxy, 0o600)
            env["X509_USER_PROXY"] = credentials[-1]
        if self.token:
            credentials.append(f"{area}/{stamp}.token")
            host.runner.writeFile(credentials[-1], self.token.encode(), 0o600)
            env["BEARER_TOKEN_FILE"] = credentials[-1]
        host.runner.writeFile(f"{area}/{stamp}.py", executable, 0o700)
        script = f"{area}/{stamp}.sh"
        host.runner.writeFile(script, self._jobScript(host, batch, stamp, f"{area}/{stamp}.py", credentials,
                                                      env).encode(), 0o700)
        return BatchJob(stamp, script, host.areas["WorkArea"], self.numberOfProcessors)

    def _hostSlots(self, host: BatchHost) -> int:
        """Pilots ``host`` takes now: its MaxTotalJobs share and the CE's MaxWaitingJobs."""
        running, waiting = self._ready(host).countJobs()
        return self._freeSlots({"RunningJobs": running, "WaitingJobs": waiting}, host.maxJobs)

    def _freeSlots(self, status: Mapping[str, Any], maxJobs: int | None = None) -> int:
        running, waiting = int(status["RunningJobs"]), int(status["WaitingJobs"])
        total = (self.maxTotalJobs if maxJobs is None else maxJobs) - running - waiting
        waitingSlots = self.maxWaitingJobs - waiting if self.maxWaitingJobs else total
        return max(0, min(total, waitingSlots))

    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any
                    ) -> dict[str, str]:
        environment: Mapping[str, str] = kwargs.get("environment") or {}
        executable = Path(executableFile).read_bytes()
        plan, errors = [], []
        for host in self._hosts().values():
            try:
                free = self._hostSlots(host)
            except ComputingElementError as exc:
                if not self.multiHost:
                    raise
                errors.append(exc.message)
                self.log.warning("CE %s: host %s skipped: %s", self.ceName, host.name, exc.message)
                continue
            plan.append((free, host))
        plan.sort(key=lambda item: -item[0])
        free = sum(slots for slots, _ in plan)
        if numberOfJobs > free:
            detail = f" ({'; '.join(errors)})" if errors else ""
            raise NotEnoughSlots(f"CE {self.ceName}: cannot submit {numberOfJobs} pilot(s), {free} slot(s) free"
                                 f" with MaxTotalJobs={self.maxTotalJobs}, MaxWaitingJobs={self.maxWaitingJobs}"
                                 + detail)
        submitted: dict[str, str] = {}
        left = numberOfJobs
        for slots, host in plan:
            count = min(slots, left)
            if count <= 0:
                break
            batch = self._ready(host)
            jobs = [self._prepareJob(host, batch, executable, proxy, environment) for _ in range(count)]
            ids = batch.submit(jobs)
            for job, batchID in zip(jobs, ids, strict=False):
                reference = self.makeReference(batchID, host.name)
                submitted[reference] = job.stamp
                self.log.info("%s: pilot %s submitted to %s on %s", reference, job.stamp, self.batchSystemClass.name,
                              host.name)
            if len(ids) < len(jobs):
                self.log.warning("CE %s: only %d of %d pilot(s) submitted on %s", self.ceName, len(ids), len(jobs),
                                 host.name)
                break
            left -= count
        return submitted

    # -- following jobs --------------------------------------------------------------------------------
    def _byHost(self, references: list[str]) -> tuple[dict[str, tuple[BatchHost, dict[str, str]]], list[str]]:
        """({host name: (host, {reference: batch id})}, references this CE does not know)."""
        grouped: dict[str, tuple[BatchHost, dict[str, str]]] = {}
        unknown = []
        for reference in references:
            try:
                host, batchID = self._parseReference(reference)
            except UnknownJobReference as exc:
                self.log.warning("%s", exc.message)
                unknown.append(reference)
                continue
            grouped.setdefault(host.name, (host, {}))[1][reference] = batchID
        return grouped, unknown

    def _getJobStatus(self, references: list[str]) -> dict[str, str]:
        grouped, unknown = self._byHost(references)
        statuses = dict.fromkeys(unknown, UNKNOWN)
        for host, ids in grouped.values():
            states = self._ready(host).getStatus(sorted(set(ids.values())))
            for reference, batchID in ids.items():
                state = states.get(batchID, JobState(UNKNOWN))
                statuses[reference] = state.status
                self.statusReasons[reference] = state.reason
        return statuses

    def _getJobOutput(self, reference: str) -> tuple[str, str]:
        host, batchID = self._parseReference(reference)
        files = self._ready(host).outputFiles(batchID)
        return tuple((host.runner.readFile(path) or b"").decode(errors="replace")  # type: ignore[return-value]
                     for path in files)

    def _killJobs(self, references: list[str]) -> None:
        grouped, unknown = self._byHost(references)
        if unknown:
            raise UnknownJobReference(f"CE {self.ceName}: cannot kill unknown pilots {', '.join(unknown)}")
        for host, ids in grouped.values():
            self._ready(host).kill(sorted(set(ids.values())))

    def _getCEStatus(self) -> dict[str, Any]:
        running = waiting = 0
        for host in self._hosts().values():
            hostRunning, hostWaiting = self._ready(host).countJobs()
            running, waiting = running + hostRunning, waiting + hostWaiting
        return {"RunningJobs": running, "WaitingJobs": waiting}

    def close(self) -> None:
        for host in self.hosts.values():
            host.runner.close()


class LocalBatchComputingElement(BatchComputingElement):
    """A batch system on this host (``CEType = Local`` with ``BatchSystem = Slurm``); areas default to WorkingDirectory."""

    ceType = "Local"
    referenceScheme = "local"

    def _defaultSharedArea(self) -> str:
        workingDirectory = self.getParameter("WorkingDirectory")
        if not workingDirectory:
            raise ConfigurationError(f"CE {self.ceName}: set SharedArea or WorkingDirectory (where pilots run)")
        return str(Path(workingDirectory).absolute())

    def _makeHosts(self) -> dict[str, BatchHost]:
        runner = LocalCommandRunner(str(self.ceParameters.get("Preamble") or ""), self.timeout)
        return {"localhost": BatchHost("localhost", runner, self.maxTotalJobs)}
