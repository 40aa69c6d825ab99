"""Operator-facing logging: one line per event, UTC timestamps, component name in every line."""

from __future__ import annotations

import logging
import sys
import time

_FORMAT = "%(asctime)s UTC %(name)s %(levelname)s: %(message)s"
_configured = False


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime


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
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_UTCFormatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.propagate = False
    _configured = True


def getLogger(name: str) -> logging.Logger:
    """A logger under the 'dirac' hierarchy, e.g. getLogger('Framework/Server')."""
    return logging.getLogger(name if name.startswith("dirac") else f"dirac.{name}")
