"""Keeps the central configuration up to date in a client process.

Every ``/DIRAC/Configuration/RefreshTime`` seconds (default 300) it asks a Configuration
Server for ``getCompressedDataIfNewer(currentVersion)``: the server answers with only its
version when nothing changed, so a refresh costs one small call. The last configuration
received is cached on disk and used when no server answers at start-up.

A process that forks children which should not each fetch the whole configuration (a fork
server) loads it without the background thread (``start(background=False)``) and refreshes it
before a fork once it is older than the refresh time; a forked child gets a thread of its own,
whose first refresh comes when the data it inherited is due (see ``ConfigurationClient``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from diraccfg import CFG

from dirac.Core.Utilities.Logging import getLogger
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType

if TYPE_CHECKING:
    from dirac.Core.Config.ConfigurationClient import ConfigurationClient

log = getLogger("Config.Refresher")


def cacheFile(servers: list[str]) -> Path:
    """Where the last configuration received from these servers is kept."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dirac"
    key = hashlib.sha256(",".join(sorted(servers)).encode()).hexdigest()[:16]
    return base / f"cs-{key}.cfg"


class Refresher:
    """Background thread refreshing ``gConfig`` from the Configuration Servers."""

    def __init__(self, config: ConfigurationClient, servers: list[str]):
        self.config = config
        self.servers = servers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fetchLock = threading.Lock()
        #: time.monotonic() of the last answer of a Configuration Server (0: none yet)
        self.lastAnswer = 0.0

    @property
    def interval(self) -> float:
        return max(0.2, self.config.getValue("/DIRAC/Configuration/RefreshTime", 300.0))

    @property
    def running(self) -> bool:
        """Whether the background thread refreshes the configuration in this process."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def due(self) -> bool:
        """Whether the configuration is older than the refresh time."""
        return time.monotonic() - self.lastAnswer >= self.interval

    def start(self, background: bool = True) -> None:
        """Fetch once now (falling back to the disk cache), then (``background``) refresh in a thread."""
        result = self.refreshNow()
        if not result["OK"]:
            cached = cacheFile(self.servers)
            if cached.exists():
                log.warning("No Configuration Server answered (%s); using the cache %s", result["Message"], cached)
                self.config.data.setRemote(CFG().loadFromFile(str(cached)))
            else:
                log.error("No Configuration Server answered: %s", result["Message"])
        if background:
            self._startThread(self.interval)

    def _startThread(self, firstDelay: float) -> None:
        self._thread = threading.Thread(target=self._loop, args=(firstDelay,), name="CSRefresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def afterFork(self) -> None:
        """In a forked child: locks of its own, and a thread whose first refresh is when the inherited data is due."""
        self._stop = threading.Event()
        self._fetchLock = threading.Lock()
        self._startThread(max(0.0, self.lastAnswer + self.interval - time.monotonic()))

    def _loop(self, firstDelay: float) -> None:
        delay = firstDelay
        while not self._stop.wait(delay):
            result = self.refreshNow()
            if not result["OK"]:
                log.warning("Configuration refresh failed: %s", result["Message"])
            delay = self.interval

    def refreshNow(self) -> DReturnType[str]:
        """Ask the servers (in random order) for a newer configuration; S_OK(version)."""
        from dirac.Core.Tornado.Client import RPCClient

        with self._fetchLock:
            version = self.config.data.remoteVersion
            errors = []
            for url in random.sample(self.servers, len(self.servers)):
                result = RPCClient(url, timeout=30).getCompressedDataIfNewer(version)
                if not result["OK"]:
                    errors.append(f"{url}: {result['Message']}")
                    continue
                answer = result["Value"]
                self.lastAnswer = time.monotonic()
                if "data" in answer:
                    text = zlib.decompress(base64.b64decode(answer["data"])).decode()
                    cfg = CFG().loadFromBuffer(text)
                    self.config.data.setRemote(cfg)
                    self._writeCache(text)
                    log.info("Configuration updated to version %s from %s", answer["newestVersion"], url)
                return S_OK(answer["newestVersion"])
            return S_ERROR("; ".join(errors) or "no Configuration Server configured")

    def _writeCache(self, text: str) -> None:
        path = cacheFile(self.servers)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        except OSError as exc:
            log.warning("Cannot write the configuration cache %s: %s", path, exc)
