"""The master copy of the central configuration: versioned commits with their history.

The master CFG lives in one file; every commit gets a new version (the UTC time of the
commit, ``YYYY-mm-dd HH:MM:SS.ffffff``, stored at ``/DIRAC/Configuration/Version``, so
versions sort as strings), and the previous content is kept in the history directory with
who committed what and when. A commit made from an old version is refused, so two admins
cannot silently overwrite each other.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import zlib
from pathlib import Path

from diraccfg import CFG

from dirac.Core.Config.ConfigurationData import VERSION_PATH, setOption
from dirac.Core.Utilities.Exceptions import DiracError, InvalidArgument, NotFound

HISTORY_LOG = "commits.jsonl"


class VersionConflict(DiracError):
    """The configuration changed since the committer read it."""


def newVersion(after: str = "") -> str:
    """A version string later than ``after``."""
    version = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return version if version > after else f"{after}1"


def compress(text: str) -> str:
    """The wire form of configuration data: base64 of zlib-compressed CFG text."""
    return base64.b64encode(zlib.compress(text.encode(), 9)).decode()


def decompress(data: str | bytes) -> str:
    try:
        return zlib.decompress(base64.b64decode(data)).decode()
    except (ValueError, zlib.error) as exc:
        raise InvalidArgument(f"configuration data is not base64 zlib-compressed CFG: {exc}") from None


class MasterConfiguration:
    """The writable central configuration held by the master Configuration Server."""

    def __init__(self, path: str | Path, historyDir: str | Path | None = None):
        self.path = Path(path)
        self.historyDir = Path(historyDir) if historyDir else self.path.parent / "history"
        self._lock = threading.Lock()
        self.cfg = CFG()
        self._compressed = ""
        self.load()

    def load(self) -> None:
        """Read the master file, giving it a version if it has none."""
        cfg = CFG().loadFromFile(str(self.path)) if self.path.exists() else CFG()
        if not cfg.getOption(VERSION_PATH):
            setOption(cfg, VERSION_PATH, newVersion())
            self._write(cfg)
        self._setCurrent(cfg)

    @property
    def version(self) -> str:
        return self.cfg.getOption(VERSION_PATH)

    @property
    def compressedData(self) -> str:
        return self._compressed

    def _setCurrent(self, cfg: CFG) -> None:
        self.cfg = cfg
        self._compressed = compress(str(cfg))

    def _write(self, cfg: CFG) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(cfg))
        tmp.replace(self.path)

    def commit(self, text: str, author: str, fromVersion: str | None = None) -> str:
        """Make ``text`` the new configuration; returns the new version."""
        try:
            cfg = CFG().loadFromBuffer(text)
        except Exception as exc:  # diraccfg raises bare exceptions on syntax errors
            raise InvalidArgument(f"the new configuration is not valid CFG: {exc}") from None
        with self._lock:
            current = self.version
            base = fromVersion if fromVersion is not None else cfg.getOption(VERSION_PATH, "")
            if base != current:
                raise VersionConflict(f"the configuration changed since you read it (your version {base or 'none'}, "
                                      f"current {current}): reload and apply your change again")
            self._archive(current)
            version = newVersion(current)
            setOption(cfg, VERSION_PATH, version)
            self._write(cfg)
            self._setCurrent(cfg)
            self._log(version, current, author)
            return version

    def _archive(self, version: str) -> None:
        self.historyDir.mkdir(parents=True, exist_ok=True)
        (self.historyDir / f"{_fileName(version)}.cfg").write_text(str(self.cfg))

    def _log(self, version: str, previous: str, author: str) -> None:
        entry = {"version": version, "previous": previous, "author": author,
                 "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        with open(self.historyDir / HISTORY_LOG, "a") as log:
            log.write(json.dumps(entry) + "\n")

    def history(self, limit: int = 100) -> list[list[str]]:
        """[[version, author], ...] newest first, as DIRAC's getCommitHistory returns."""
        logFile = self.historyDir / HISTORY_LOG
        if not logFile.exists():
            return []
        entries = [json.loads(line) for line in logFile.read_text().splitlines() if line.strip()]
        return [[e["version"], e["author"]] for e in reversed(entries)][:limit]

    def versionContents(self, version: str) -> str:
        """The CFG text of ``version`` (the current one or an archived one)."""
        if version == self.version:
            return str(self.cfg)
        archived = self.historyDir / f"{_fileName(version)}.cfg"
        if not archived.exists():
            raise NotFound(f"no configuration version {version}")
        return archived.read_text()

    def rollback(self, version: str, author: str) -> str:
        """Commit the content of an older version as the newest one."""
        return self.commit(self.versionContents(version), author, fromVersion=self.version)


def _fileName(version: str) -> str:
    return version.replace(" ", "_").replace(":", "-")
