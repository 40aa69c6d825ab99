"""PoolComputingElement: the JobAgent's inner CE for a multi-core slot, filling its processors with payloads.

``NumberOfProcessors`` is the size of the slot. ``submitJob(wrapper, proxy, numberOfProcessors=n)``
starts the payload at once in its own subprocess (same options and files as the InProcess CE)
and returns ``S_OK([reference])``; it is refused with ``NotEnoughSlots`` when fewer than ``n``
processors are free. A thread per payload waits for it and frees its processors when it ends.
``getCEStatus`` and ``getDescription`` report the free processors (``AvailableProcessors``, and
``NumberOfProcessors`` in the description) so the JobAgent asks the Matcher only for jobs that
fit; ``collectFinishedJobs`` returns the exit codes of the payloads that have ended.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from dirac.Core.Utilities.ReturnValues import DReturnType
from dirac.Resources.Computing.ComputingElement import ComputingElement, NotEnoughSlots
from dirac.Resources.Computing.InProcessComputingElement import InProcessComputingElement


class PoolComputingElement(InProcessComputingElement):
    """Runs several payloads at once, as long as their processors fit in NumberOfProcessors."""

    ceType = "Pool"
    referenceScheme = "pool"

    def submitJob(
        self, executableFile: str, proxy: str | bytes | None = None, numberOfJobs: int = 1, **kwargs: Any
    ) -> DReturnType[list[str]]:
        """Start the payload and return at once: S_OK([reference]); see collectFinishedJobs for its end."""
        return ComputingElement.submitJob(self, executableFile, proxy, numberOfJobs, **kwargs)

    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any) -> list[str]:
        payload = self._startPayload(executableFile, proxy, numberOfJobs, kwargs)
        threading.Thread(target=self._waitForPayload, args=(payload,), name=f"payload-{payload.reference}",
                         daemon=True).start()
        return [payload.reference]

    def _checkRoom(self, processors: int) -> None:
        used = sum(payload.processors for payload in self._running())
        free = self.numberOfProcessors - used
        if processors > free:
            raise NotEnoughSlots(
                f"CE {self.ceName}: the payload needs {processors} processor(s), {free} of {self.numberOfProcessors}"
                " are free"
            )

    def _freeSlots(self, status: Mapping[str, Any]) -> int:
        """Each payload takes at least one processor: the free processors bound the payloads that can start."""
        return int(status["AvailableProcessors"])

    def _describe(self) -> dict[str, Any]:
        status = self._getCEStatus()
        return {
            "NumberOfProcessors": status["AvailableProcessors"],
            "AvailableProcessors": status["AvailableProcessors"],
            "TotalProcessors": self.numberOfProcessors,
        }

    def shutdown(self, timeout: float | None = None) -> DReturnType[dict[str, int]]:
        """Wait up to ``timeout`` s for the running payloads to end; S_OK({reference: exit code}) of the uncollected."""
        with self._lock:
            self._lock.wait_for(lambda: not self._running(), timeout=timeout)
        return self.collectFinishedJobs(0)
