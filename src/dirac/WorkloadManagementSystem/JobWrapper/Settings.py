"""The JobWrapper's and Watchdog's options: one typed model, defaults in one place.

Every option lives in ``/Systems/WorkloadManagement/JobWrapper/<Option>`` (the section DIRAC
uses); the pilot's local ``dirac.cfg`` or the central CS set them. A value that is not a number,
or is out of range, stops the wrapper at start with a ``ConfigurationError`` naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import ConfigurationError

SECTION = "/Systems/WorkloadManagement/JobWrapper"


@dataclass(frozen=True)
class JobWrapperSettings:
    """Options of the JobWrapper and its Watchdog (each field is named as its CS option)."""

    #: seconds between two samples of the payload's process tree and checks of its limits
    PollingTime: float = 10.0
    #: seconds between two heartbeats (sendHeartBeat) while the payload runs
    HeartBeatInterval: float = 300.0
    #: percent added to the job's CPU time before the Watchdog kills it
    JobCPULimitMargin: float = 20.0
    #: CPU time (normalised seconds) applied when the JDL has no CPUTime
    DefaultCPUTime: int = 600
    #: seconds over which CPU progress is measured to find a stalled payload (0: never stalled)
    CPUSampleTime: float = 1800.0
    #: a payload using at most this percent of one core over CPUSampleTime is stalled
    MinCPUWallClockRatio: float = 5.0
    #: wall-clock cap in seconds applied to every job, on top of the slot's WallClockLimit (0: none)
    MaxWallClockTime: float = 3 * 24 * 3600.0
    #: MB of free disk in the working directory below which the payload is stopped (0: no check)
    MinDiskSpace: float = 10.0
    #: seconds between SIGTERM and SIGKILL when the payload is stopped
    KillGracePeriod: float = 10.0
    #: last lines of the payload's standard output sent with each heartbeat
    MaxJobPeekLines: int = 20
    #: largest output sandbox in bytes (packed); larger ones fail the upload
    OutputSandboxLimit: int = 10 * 1024 * 1024
    #: seconds the final reports and the sandbox transfers keep being retried while the server cannot be reached
    ReportRetryTime: float = 300.0
    #: first delay in seconds between two attempts to send reports (doubled each time, at most 60 s)
    ReportRetryDelay: float = 5.0

    def __post_init__(self) -> None:
        for name in ("PollingTime", "HeartBeatInterval", "ReportRetryDelay"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{SECTION}/{name} must be positive, not {getattr(self, name)}")
        for item in fields(self):
            if getattr(self, item.name) < 0:
                raise ConfigurationError(f"{SECTION}/{item.name} must not be negative, not {getattr(self, item.name)}")

    @classmethod
    def fromCS(cls) -> JobWrapperSettings:
        """The settings read from the configuration (ConfigurationError for an invalid value)."""
        values = {}
        for item in fields(cls):
            default = item.default
            result = gConfig.getOption(f"{SECTION}/{item.name}", default)
            if not result["OK"]:
                raise ConfigurationError(f"{SECTION}/{item.name}: {result['Message']}")
            values[item.name] = result["Value"]
        return cls(**values)
