"""File: one file of a request's operation, with its status (DIRAC's RMS ``File``).

Statuses: ``Waiting`` (to process), ``Done``, ``Failed`` (with ``Error``), ``Scheduled`` (handed to a
transfer service). ``Attempt`` counts how often a handler tried it. Its operation's status follows
the statuses of its files (see Operation). Standard library and project Core only: jobs use it.
"""

from __future__ import annotations

import re
from typing import Any

from dirac.Core.Utilities.Exceptions import InvalidArgument

WAITING = "Waiting"
DONE = "Done"
FAILED = "Failed"
SCHEDULED = "Scheduled"
ALL_STATES = (WAITING, DONE, FAILED, SCHEDULED)
CHECKSUM_TYPES = ("ADLER32", "MD5", "SHA1")
#: the attributes of a File in DIRAC's JSON, in its order
JSON_ATTRIBUTES = ("FileID", "OperationID", "Status", "LFN", "PFN", "ChecksumType", "Checksum", "GUID", "Attempt",
                   "Size", "Error")
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def normalizeChecksumType(value: str | None) -> str:
    """ADLER32, MD5, SHA1 or '' (DIRAC also writes Adler32 as 'AD')."""
    text = str(value or "").strip().upper()
    if text in ("AD", "ADLER"):
        text = "ADLER32"
    if text and text not in CHECKSUM_TYPES:
        raise InvalidArgument(f"unknown checksum type {value!r} (known: {', '.join(CHECKSUM_TYPES)})")
    return text


class File:
    """A file an operation acts on."""

    def __init__(self, fromDict: dict[str, Any] | None = None, **attributes: Any):
        self.FileID: int | None = None
        self.OperationID: int | None = None
        self._status = WAITING
        self._lfn = ""
        self.PFN = ""
        self._checksumType = ""
        self.Checksum = ""
        self._guid = ""
        self.Attempt = 0
        self.Size = 0
        self.Error = ""
        self._parent: Any = None
        for name, value in {**(fromDict or {}), **attributes}.items():
            if name in JSON_ATTRIBUTES and value not in (None, ""):
                setattr(self, name, value)

    @property
    def Status(self) -> str:
        return self._status

    @Status.setter
    def Status(self, value: str) -> None:
        if value not in ALL_STATES:
            raise InvalidArgument(f"unknown File status {value!r} (known: {', '.join(ALL_STATES)})")
        if value == DONE:
            self.Error = ""
        self._status = value

    @property
    def LFN(self) -> str:
        return self._lfn

    @LFN.setter
    def LFN(self, value: str) -> None:
        if not isinstance(value, str) or not value.startswith("/"):
            raise InvalidArgument(f"LFN should be an absolute path, got {value!r}")
        self._lfn = value

    @property
    def ChecksumType(self) -> str:
        return self._checksumType

    @ChecksumType.setter
    def ChecksumType(self, value: str | None) -> None:
        self._checksumType = normalizeChecksumType(value)

    @property
    def GUID(self) -> str:
        return self._guid

    @GUID.setter
    def GUID(self, value: str | None) -> None:
        if value and not _GUID.match(str(value)):
            raise InvalidArgument(f"{value!r} is not a valid GUID")
        self._guid = str(value or "")

    def fail(self, reason: str) -> None:
        """Failed, saying why."""
        self.Status = FAILED
        self.Error = reason[:255]

    def toDict(self) -> dict[str, Any]:
        """The File as DIRAC's JSON has it."""
        return {name: getattr(self, name) for name in JSON_ATTRIBUTES}

    def __repr__(self) -> str:
        return f"File({self.LFN!r}, {self.Status})"
