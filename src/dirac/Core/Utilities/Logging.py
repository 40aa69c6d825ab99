"""Operator-facing logging: one line per event, UTC timestamps, component name in every line."""

from __future__ import annotations

import logging
import sys
import time

_FORMAT = "%(asctime)s UTC %(name)s %(levelname)s: %(message)s"
_configured = False


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime

    def __init__(self, fmt: str, datefmt: str):
        super().__init__(fmt, datefmt)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's second, formatted once per second (a server logs every call)."""
        second = int(record.created)
        if second != self._second[0]:
            self._second = (second, time.strftime(self.datefmt or "%Y-%m-%d %H:%M:%S", self.converter(second)))
        return self._second[1]


def setupLogging(level: str | int = "INFO", stream=None) -> None:
    """Configure the root 'dirac' logger once (idempotent); later calls only change the level."""
    global _configured
    root = logging.getLogger("dirac")
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            level = logging.INFO
    root.setLevel(level)
    if _configured:
        return
    # Our lines name no source file, thread or process: skip gathering them for every record
    # (the logging HOWTO's "Optimization" settings), which a busy server pays per call.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_UTCFormatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.propagate = False
    _configured = True


def getLogger(name: str) -> logging.Logger:
    """A logger under the 'dirac' hierarchy, e.g. getLogger('Framework/Server')."""
    return logging.getLogger(name if name.startswith("dirac") else f"dirac.{name}")
