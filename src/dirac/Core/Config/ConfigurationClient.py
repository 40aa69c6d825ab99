"""``gConfig``: typed getters over the merged configuration, loaded lazily on first use.

The first read loads the local CFG files (``--cfg`` files, then ``$DIRACSYSCONFIG``, else
``~/.dirac/dirac.cfg``); when ``/DIRAC/Configuration/Servers`` is set, it also fetches the
central configuration and starts a background refresher (see ``Refresher``).

Forking: a process that forks children (a fork server) calls ``loadForForking()``: the
configuration is loaded and merged once, without a refresher thread, and refreshed just before a
fork when it is due. A forked child gets new locks and a refresher thread of its own (``os.fork``
handlers registered with ``gConfig``), so it starts with its parent's configuration and keeps it
fresh as a process of its own would.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, TypeVar

from diraccfg import CFG

from dirac.Core.Config.ConfigurationData import ConfigurationData, getSection
from dirac.Core.Utilities.Logging import getLogger
from dirac.Core.Utilities.ReturnValues import S_ERROR, S_OK, DReturnType

T = TypeVar("T")
log = getLogger("Config")

_TRUE = {"yes", "true", "y", "1", "on"}
_FALSE = {"no", "false", "n", "0", "off", ""}


def toList(value: str | list | tuple | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] (CFG lists are comma separated)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def castValue(value: str, default: Any) -> Any:
    """Convert a CFG string to the type of ``default``; raises ValueError when it cannot."""
    if default is None or isinstance(default, str):
        return value
    if isinstance(default, bool):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{value!r} is not a boolean")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, (list, tuple)):
        return toList(value)
    return value


def defaultConfigFiles() -> list[Path]:
    """The local configuration files used when none is given on the command line."""
    env = os.environ.get("DIRACSYSCONFIG")
    if env:
        return [Path(p) for p in env.replace(":", ",").split(",") if p.strip()]
    home = Path.home() / ".dirac" / "dirac.cfg"
    return [home] if home.exists() else []


class ConfigurationClient:
    """The process-wide configuration accessor (DIRAC's ``gConfig``)."""

    def __init__(self) -> None:
        self.data = ConfigurationData()
        self._lock = threading.RLock()
        self._localLoaded = False
        self._remoteStarted = False
        self._ready = False  # local files read and the central configuration fetched once
        self._background = True  # whether the refresher runs in a thread (not in a fork server)
        self.refresher = None

    # -- initialisation ----------------------------------------------------------------------
    def initialize(self, cfgFiles: list[str | Path] | None = None, options: dict[str, str] | None = None,
                   fetchRemote: bool = True) -> None:
        """Load local files and overrides now (scripts call this once, before the first read)."""
        with self._lock:
            for path in (cfgFiles or []) + ([] if cfgFiles else defaultConfigFiles()):
                self.data.loadLocalFile(path)
            for path, value in (options or {}).items():
                self.data.setLocalOption(path, value)
            self._localLoaded = True
            if not fetchRemote:
                self._remoteStarted = self._ready = True

    def reset(self) -> None:
        """Drop all loaded configuration and stop the refresher (tests)."""
        with self._lock:
            if self.refresher:
                self.refresher.stop()
            self.__init__()

    def useAsMaster(self, cfg: CFG) -> None:
        """In the Configuration Server process: serve ``cfg`` as the central configuration."""
        with self._lock:
            self._ensureLocal()
            self._remoteStarted = self._ready = True
            self.data.setRemote(cfg)

    def _ensureLocal(self) -> None:
        if not self._localLoaded:
            self.initialize()

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:  # other threads wait here until the first fetch is done
            self._ensureLocal()
            if self._remoteStarted:  # done, or this thread is fetching (the fetch itself reads options)
                return
            self._remoteStarted = True
            servers = toList(self.data.merged.getOption("/DIRAC/Configuration/Servers", ""))
            if servers:
                from dirac.Core.Config.Refresher import Refresher

                self.refresher = Refresher(self, servers)
                self.refresher.start(background=self._background)
            self._ready = True

    def loadForForking(self) -> None:
        """Load and merge the whole configuration now, with no refresher thread: this process forks children."""
        with self._lock:
            self._background = False
        self._ensure()
        self.data.merged  # noqa: B018 - merged once here rather than in every child

    def beforeFork(self) -> None:
        """(``os.fork`` handler) In a process without a refresher thread, refresh a configuration that is due."""
        refresher = self.refresher
        if refresher is not None and not refresher.running and refresher.due:
            result = refresher.refreshNow()
            if not result["OK"]:
                log.warning("Configuration refresh before a fork failed: %s", result["Message"])

    def afterForkInChild(self) -> None:
        """(``os.fork`` handler) In the child: locks of its own and, if the parent had a refresher, a running one."""
        self._lock = threading.RLock()
        self.data.afterFork()
        self._background = True
        if self.refresher is not None:
            self.refresher.afterFork()

    @property
    def cfg(self) -> CFG:
        self._ensure()
        return self.data.merged

    # -- getters -----------------------------------------------------------------------------
    def getValue(self, path: str, default: T = None) -> T:  # type: ignore[assignment]
        """The option at ``path`` cast to the type of ``default``; ``default`` when unset or invalid."""
        raw = self.cfg.getOption(path)
        if raw is None or isinstance(raw, CFG):
            return default
        try:
            return castValue(raw, default)
        except ValueError:
            log.warning("Option %s=%r is not of type %s, using default %r", path, raw, type(default).__name__,
                        default)
            return default

    def getOption(self, path: str, default: Any = None) -> DReturnType[Any]:
        """S_OK(value) or S_ERROR when the option is missing and no default is given."""
        raw = self.cfg.getOption(path)
        if raw is None or isinstance(raw, CFG):
            if default is None:
                return S_ERROR(f"Path {path} does not exist or it's not an option")
            return S_OK(default)
        try:
            return S_OK(castValue(raw, default))
        except ValueError as exc:
            return S_ERROR(f"Option {path}: {exc}")

    def getSections(self, path: str) -> DReturnType[list[str]]:
        section = getSection(self.cfg, path)
        if section is None:
            return S_ERROR(f"Path {path} does not exist or it's not a section")
        return S_OK(section.listSections())

    def getOptions(self, path: str) -> DReturnType[list[str]]:
        section = getSection(self.cfg, path)
        if section is None:
            return S_ERROR(f"Path {path} does not exist or it's not a section")
        return S_OK(section.listOptions())

    def getOptionsDict(self, path: str) -> DReturnType[dict[str, str]]:
        section = getSection(self.cfg, path)
        if section is None:
            return S_ERROR(f"Path {path} does not exist or it's not a section")
        return S_OK({name: section[name] for name in section.listOptions()})

    def getSectionTree(self, path: str) -> CFG | None:
        """A copy of the section at ``path`` (None when missing)."""
        section = getSection(self.cfg, path)
        return section.clone() if section is not None else None

    def isSection(self, path: str) -> bool:
        return getSection(self.cfg, path) is not None

    def getVersion(self) -> str:
        self._ensure()
        return self.data.remoteVersion

    def forceRefresh(self) -> DReturnType[str]:
        """Fetch the central configuration now (S_OK(version))."""
        self._ensure()
        if not self.refresher:
            return S_OK(self.data.remoteVersion)
        return self.refresher.refreshNow()
