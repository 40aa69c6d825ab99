"""Pausing Python's cyclic garbage collector while a big, cycle-free structure is built."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pause = {"count": 0, "wasEnabled": True}
_lock = threading.Lock()


@contextmanager
def gcPaused() -> Iterator[None]:
    """No cyclic garbage collection inside (building or decoding a big answer: the collector would walk
    every new object again and again to find no cycle); it resumes when the last thread pausing it leaves."""
    with _lock:
        if _pause["count"] == 0:
            _pause["wasEnabled"] = gc.isenabled()
            gc.disable()
        _pause["count"] += 1
    try:
        yield
    finally:
        with _lock:
            _pause["count"] -= 1
            if _pause["count"] == 0 and _pause["wasEnabled"]:
                gc.enable()
