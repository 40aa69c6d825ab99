"""Clients of the WMS services, named as in DIRAC.

Each is an ``RPCClient`` bound to its service; the methods are the services' exported ones
(``JobManagerClient().submitJob(jdl)``, ``JobMonitoringClient().getJobsStatus([1, 2])``, ...).
"""

from __future__ import annotations

from typing import Any

from dirac.Core.Tornado.Client import RPCClient


class JobManagerClient(RPCClient):
    """WorkloadManagement/JobManager: submit, kill, delete, reschedule."""

    def __init__(self, **kwargs: Any):
        super().__init__(kwargs.pop("url", None) or "WorkloadManagement/JobManager", **kwargs)


class JobMonitoringClient(RPCClient):
    """WorkloadManagement/JobMonitoring: status, attributes, parameters, logging, selections."""

    def __init__(self, **kwargs: Any):
        super().__init__(kwargs.pop("url", None) or "WorkloadManagement/JobMonitoring", **kwargs)


class JobStateUpdateClient(RPCClient):
    """WorkloadManagement/JobStateUpdate: status, parameters and heartbeats from running jobs."""

    def __init__(self, **kwargs: Any):
        super().__init__(kwargs.pop("url", None) or "WorkloadManagement/JobStateUpdate", **kwargs)


class MatcherClient(RPCClient):
    """WorkloadManagement/Matcher: pilots ask for a job fitting their resource."""

    def __init__(self, **kwargs: Any):
        super().__init__(kwargs.pop("url", None) or "WorkloadManagement/Matcher", **kwargs)
