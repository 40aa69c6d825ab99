"""Typed exceptions raised inside the code; the framework turns them into S_ERROR at the edges.

Each exception carries a DErrno code so the S_ERROR the client sees has the same ``Errno``
a DIRAC client expects.
"""

from __future__ import annotations

import errno

from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Utilities.ReturnValues import S_ERROR, DErrorReturnType


class DiracError(Exception):
    """Base of every error the framework knows how to report to a caller."""

    errno: int = DErrno.ERF if hasattr(DErrno, "ERF") else errno.EIO

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        if errno_ is not None:
            self.errno = errno_

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    def toSError(self) -> DErrorReturnType:
        """The S_ERROR that represents this error on the wire."""
        return S_ERROR(self.errno, self.message)


class ConfigurationError(DiracError):
    """A missing or invalid configuration option."""

    errno = DErrno.ECONF


class AuthenticationError(DiracError):
    """The caller could not be identified (no, bad, expired or untrusted credentials)."""

    errno = DErrno.ENOAUTH


class AuthorizationError(DiracError):
    """The caller is known but not allowed to do this."""

    errno = errno.EACCES


class InvalidArgument(DiracError):
    """A call with arguments of the wrong type or value."""

    errno = DErrno.ETYPE


class UnknownMethod(DiracError):
    """A call to a method the service does not export."""

    errno = DErrno.ENOMETH


class NotFound(DiracError):
    """The object asked for does not exist."""

    errno = errno.ENOENT


class SecurityError(DiracError):
    """A certificate, proxy or token problem (parsing, chain, expiry)."""

    errno = DErrno.EX509


class DatabaseError(DiracError):
    """A database operation failed."""

    errno = DErrno.EDB
