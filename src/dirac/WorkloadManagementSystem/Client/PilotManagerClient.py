"""Clients of the pilot services, named as in DIRAC.

``PilotManagerClient().getPilotInfo(ref)``, ``PilotManagerClient().setPilotStatus(ref, "Running")``,
``PilotLoggingClient().getPilotLogs(refOrStamp, sinceSequence)``: the methods are the services'
exported ones (see docs/pilots.md).
"""

from __future__ import annotations

from typing import Any

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Base.Script import EXIT_NOT_FOUND, exitCodeFor
from dirac.Core.Tornado.Client import RPCClient


class PilotManagerClient(RPCClient):
    """WorkloadManagement/PilotManager: pilot references, statuses, jobs, output."""

    def __init__(self, **kwargs: Any):
        super().__init__(kwargs.pop("url", None) or "WorkloadManagement/PilotManager", **kwargs)


class PilotLoggingClient(RPCClient):
    """WorkloadManagement/PilotLogging: log lines streamed by running pilots."""

    def __init__(self, **kwargs: Any):
        super().__init__(kwargs.pop("url", None) or "WorkloadManagement/PilotLogging", **kwargs)


def pilotExitCode(result: dict) -> int:
    """The command exit code of a failed pilot call: 'no such pilot' (EWMSNOPILOT) is not found."""
    if result.get("Errno") == DErrno.EWMSNOPILOT:
        return EXIT_NOT_FOUND
    return exitCodeFor(result)
