"""Running several copies of a component at once in threads, for the tests that prove they do not collide."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


def runAtOnce(functions: Iterable[Callable[[], Any]], timeout: float = 120) -> None:
    """Start every function in its own thread at the same moment (a barrier), wait for all; re-raise the first
    error any of them raised."""
    functions = list(functions)
    start = threading.Barrier(len(functions))
    errors: list[BaseException] = []

    def run(function: Callable[[], Any]) -> None:
        try:
            start.wait()
            function()
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(function,)) for function in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"{sum(thread.is_alive() for thread in threads)} thread(s) still running after {timeout} s")
    if errors:
        raise errors[0]
