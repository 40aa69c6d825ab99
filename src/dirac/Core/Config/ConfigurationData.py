"""The configuration a process sees: local CFG files and -o overrides merged over the central CS.

Local values win over the central ones, so a host can pin an option (for instance its own
certificate paths) whatever the Configuration Service says.
"""

from __future__ import annotations

import threading
from pathlib import Path

from diraccfg import CFG

from dirac.Core.Utilities.Exceptions import ConfigurationError

VERSION_PATH = "/DIRAC/Configuration/Version"


def splitPath(path: str) -> tuple[str, str]:
    """'/A/B/opt' -> ('/A/B', 'opt')."""
    path = "/" + path.strip("/")
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def setOption(cfg: CFG, path: str, value: str) -> None:
    """Set ``/A/B/opt = value`` in ``cfg``, creating the sections on the way."""
    parent, name = splitPath(path)
    section = getSection(cfg, parent, create=True)
    section.setOption(name, str(value))


def getSection(cfg: CFG, path: str, create: bool = False) -> CFG | None:
    """The CFG object of the section at ``path``; None (or created) when missing."""
    current = cfg
    for part in [p for p in path.strip("/").split("/") if p]:
        if not current.isSection(part):
            if not create:
                return None
            current.createNewSection(part)
        current = current[part]
    return current


class ConfigurationData:
    """Thread-safe holder of the local, remote and merged CFG trees."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._local = CFG()
        self._overrides = CFG()
        self._remote = CFG()
        self._merged: CFG | None = None
        self.localFiles: list[Path] = []
        self._signatures: dict[Path, tuple[int, int]] = {}  # (mtime, size) of each local file when loaded

    # -- loading ---------------------------------------------------------------------------
    def loadLocalFile(self, path: str | Path) -> None:
        """Merge a CFG file into the local layer (nothing to do if it was loaded and has not changed since);
        a file that cannot be parsed is an error."""
        path = Path(path)
        try:
            stat = path.stat()
            signature = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            signature = None
        if signature is not None and self._signatures.get(path) == signature:
            return  # merging the same options again would change nothing, and would undo the merged view
        try:
            cfg = CFG().loadFromFile(str(path))
        except Exception as exc:  # diraccfg raises plain exceptions on bad syntax
            raise ConfigurationError(f"cannot load configuration file {path}: {exc}") from exc
        with self._lock:
            self._local = self._local.mergeWith(cfg)
            self.localFiles.append(path)
            if signature is not None:
                self._signatures[path] = signature
            self._merged = None

    def loadLocalBuffer(self, text: str) -> None:
        with self._lock:
            self._local = self._local.mergeWith(CFG().loadFromBuffer(text))
            self._merged = None

    def setLocalOption(self, path: str, value: str) -> None:
        """An override such as ``-o /DIRAC/Security/UseServerCertificate=yes``."""
        with self._lock:
            setOption(self._overrides, path, value)
            self._merged = None

    def setRemote(self, cfg: CFG) -> None:
        with self._lock:
            self._remote = cfg
            self._merged = None

    def afterFork(self) -> None:
        """In a forked child: a lock of its own (another thread of the parent may have held it)."""
        self._lock = threading.RLock()

    def reset(self) -> None:
        """Forget everything (tests and re-initialisation)."""
        with self._lock:
            self.__init__()

    # -- views -----------------------------------------------------------------------------
    @property
    def remote(self) -> CFG:
        return self._remote

    @property
    def remoteVersion(self) -> str:
        return self._remote.getOption(VERSION_PATH, "0")

    @property
    def merged(self) -> CFG:
        with self._lock:
            if self._merged is None:
                self._merged = self._remote.mergeWith(self._local).mergeWith(self._overrides)
            return self._merged
