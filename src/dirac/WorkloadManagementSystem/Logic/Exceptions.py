"""Errors of the Workload Management domain, each with the DErrno code a DIRAC client expects."""

from __future__ import annotations

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Utilities.Exceptions import DiracError, InvalidArgument, NotFound


class InvalidJDL(InvalidArgument):
    """A job description that cannot be parsed, has a value of the wrong type or breaks a limit."""

    errno = DErrno.EWMSJDL


class IllegalTransition(InvalidArgument):
    """A job status change the job state machine forbids."""

    errno = DErrno.EWMSSTATUS


class StatusConflict(InvalidArgument):
    """The job is not in the status the caller expected (another process changed it first)."""

    errno = DErrno.EWMSSTATUS


class RescheduleLimitReached(InvalidArgument):
    """The job was rescheduled as many times as allowed and has been set to Failed."""

    errno = DErrno.EWMSRESC


class NoMatchFound(NotFound):
    """No waiting job fits the resource that asked for one."""

    errno = DErrno.EWMSNOMATCH


class JobsNotProcessed(DiracError):
    """Some jobs of a bulk request were not processed; the S_ERROR lists them as DIRAC does.

    ``details`` maps DIRAC's keys (``NonauthorizedJobIDs``, ``InvalidJobIDs``, ``FailedJobIDs``)
    to job IDs; the jobs not listed there were processed.
    """

    errno = DErrno.EWMSSTATUS

    def __init__(self, message: str, details: dict[str, list[int]]):
        super().__init__(message)
        self.details = {key: ids for key, ids in details.items() if ids}

    def toSError(self) -> dict:
        result = super().toSError()
        result.update(self.details)
        return result
