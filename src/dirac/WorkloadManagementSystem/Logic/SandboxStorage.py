"""Where sandbox files live: the storage back-end interface, the local disk back end and the settings.

A back end keeps files under keys, the path part of a sandbox reference
``SB:<LocalSE>|<key>`` (e.g. ``/SandBox/dirac_user/bob/3f/3fa1....tar.bz2``). Writing is in
two steps so the visible step is atomic and short: ``stage`` copies the bytes next to their
final place (slow, outside any database transaction), ``commit`` makes them appear under the
key at once (inside the transaction that registers the sandbox), ``discard`` drops a staged
copy that was not committed. A back end never shows a partial file under a key.

Back ends are chosen by the ``Backend`` option of the SandboxStore service section: ``disk``
(a directory of the service's host) or ``StorageElement`` (the Storage Element named by
``LocalSE``, through the Data Management system's ``StorageElement`` client, so any SE
plug-in: the DIP StorageElement service, a local File SE, ...). Another back end plugs in by
implementing ``SandboxStorage`` and adding itself to ``BACKENDS``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dirac.Core.Config import gConfig
from dirac.Core.Config.PathFinder import getServiceSection
from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument, NotFound
from dirac.Core.Utilities.Logging import getLogger

log = getLogger("WorkloadManagement/SandboxStorage")

SERVICE = "WorkloadManagement/SandboxStore"
MIB = 1 << 20
DEFAULT_LOCAL_SE = "SandboxSE"
DEFAULT_BACKEND = "disk"
DEFAULT_MAX_SANDBOX_MIB = 100
#: written at the root of a disk store when it is created; its absence means the store is not mounted
MARKER = ".dirac-sandbox-store"
STAGING = ".staging"
_KEY = re.compile(r"^(/[A-Za-z0-9_.@-]+)+$")


@dataclass
class StagedFile:
    """A copy of a file waiting to become visible under ``key``."""

    key: str
    location: str
    committed: bool = False


class SandboxStorage(ABC):
    """A place that keeps sandbox files under keys."""

    @abstractmethod
    def stage(self, source: Path, key: str) -> StagedFile:
        """Copy the local file ``source`` towards ``key`` without making it visible yet."""

    @abstractmethod
    def commit(self, staged: StagedFile) -> None:
        """Make a staged file visible under its key in one atomic step (replacing an identical one)."""

    @abstractmethod
    def discard(self, staged: StagedFile) -> None:
        """Drop a staged copy that was not committed (no-op after commit)."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """An open binary file with the bytes under ``key`` (NotFound when there are none)."""

    @abstractmethod
    def remove(self, key: str) -> bool:
        """Delete the file under ``key``; False when there was none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a file is kept under ``key``."""

    @abstractmethod
    def checkAvailable(self) -> None:
        """Raise ConfigurationError when the storage itself is unreachable (so missing files are not believed)."""

    def removeStaleStagedFiles(self, olderThanSeconds: float) -> int:
        """Drop staged copies left by a server that died before commit; how many were removed."""
        return 0

    def put(self, source: Path, key: str) -> None:
        """Store ``source`` under ``key`` (stage and commit)."""
        staged = self.stage(source, key)
        try:
            self.commit(staged)
        finally:
            self.discard(staged)


def checkKey(key: str) -> str:
    """``key`` if it is an absolute path of plain names (no '..', no odd characters); InvalidArgument otherwise."""
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise InvalidArgument(f"{key!r} is not a valid sandbox path")
    return key


class DiskSandboxStorage(SandboxStorage):
    """Sandbox files in a directory tree: ``<basePath>/<key>``; staged copies in ``<basePath>/.staging``."""

    def __init__(self, basePath: str | Path, create: bool = False):
        self.basePath = Path(basePath).expanduser().resolve()
        self.stagingDir = self.basePath / STAGING
        if create:
            self.stagingDir.mkdir(parents=True, exist_ok=True)
            marker = self.basePath / MARKER
            if not marker.exists():
                marker.write_text("Sandboxes of the WorkloadManagement/SandboxStore service; do not remove.\n")
                log.info("created the sandbox store in %s", self.basePath)

    def __repr__(self) -> str:
        return f"DiskSandboxStorage({str(self.basePath)!r})"

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.basePath / checkKey(key).lstrip("/")

    def stage(self, source: Path, key: str) -> StagedFile:
        target = self.path(key)
        self.stagingDir.mkdir(parents=True, exist_ok=True)
        staged = self.stagingDir / f"{target.name}.{uuid.uuid4().hex}"
        # a copy, never a hard link: the stored file must not change if the source is reused
        with open(source, "rb") as data, open(staged, "xb") as out:
            shutil.copyfileobj(data, out, MIB)
            out.flush()
            os.fsync(out.fileno())
        return StagedFile(key, str(staged))

    def commit(self, staged: StagedFile) -> None:
        target = self.path(staged.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.location, target)
        staged.committed = True

    def discard(self, staged: StagedFile) -> None:
        if not staged.committed:
            Path(staged.location).unlink(missing_ok=True)

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise NotFound(f"the file of sandbox {key} is missing from {self.basePath}") from None

    def remove(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def checkAvailable(self) -> None:
        if not (self.basePath / MARKER).is_file():
            raise ConfigurationError(f"the sandbox store {self.basePath} has no {MARKER} file: it is not mounted "
                                     "or not created yet (the SandboxStore service creates it when it starts)")

    def removeStaleStagedFiles(self, olderThanSeconds: float) -> int:
        removed = 0
        limit = time.time() - olderThanSeconds
        try:
            entries = list(os.scandir(self.stagingDir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.is_file() and entry.stat().st_mtime < limit:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class StorageElementSandboxStorage(SandboxStorage):
    """Sandbox files on a Storage Element, under their keys as LFNs.

    A Storage Element writes each file atomically (no partial file is ever visible), but has no
    rename: ``stage`` therefore uploads straight to the key and ``commit`` only records that the
    upload is wanted; ``discard`` removes an upload whose registration did not happen. A staged
    file is thus visible under its key a moment before the sandbox is registered, which nobody
    notices: nobody knows the key until then.
    """

    def __init__(self, seName: str):
        self.seName = seName
        self._se: Any = None

    def __repr__(self) -> str:
        return f"StorageElementSandboxStorage({self.seName!r})"

    @property
    def se(self) -> Any:
        if self._se is None:
            from dirac.Resources.Storage.StorageElement import StorageElement

            self._se = StorageElement(self.seName)
        return self._se

    def _one(self, result: dict[str, Any], key: str) -> Any:
        """The value of ``key`` in a bulk answer; the SE's reason as an exception otherwise."""
        from dirac.Resources.Storage.StorageBase import StorageUnavailable

        if not result["OK"]:
            raise StorageUnavailable(f"storage element {self.seName}: {result['Message']}")
        if key in result["Value"]["Failed"]:
            reason = result["Value"]["Failed"][key]
            raise (NotFound if "no such file" in reason.lower() else StorageUnavailable)(
                f"storage element {self.seName}: {reason}")
        return result["Value"]["Successful"][key]

    def stage(self, source: Path, key: str) -> StagedFile:
        self._one(self.se.putFile({checkKey(key): source}), key)
        return StagedFile(key, key)

    def commit(self, staged: StagedFile) -> None:
        staged.committed = True

    def discard(self, staged: StagedFile) -> None:
        if not staged.committed:
            result = self.se.removeFile(staged.key)
            if not result["OK"] or staged.key in result["Value"]["Failed"]:
                log.warning("upload %s left on %s: %s", staged.key, self.seName,
                            result.get("Message") or result["Value"]["Failed"][staged.key])

    def open(self, key: str) -> BinaryIO:
        directory = tempfile.mkdtemp(prefix="dirac-sandbox-")
        try:
            self._one(self.se.getFile(checkKey(key), directory), key)
            # the open file keeps the bytes after its name is gone: nothing is left to clean up later
            fileObj = open(Path(directory) / Path(key).name, "rb")  # noqa: SIM115 - returned to the caller
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return fileObj

    def remove(self, key: str) -> bool:
        if not self.exists(key):
            return False
        self._one(self.se.removeFile(key), key)
        return True

    def exists(self, key: str) -> bool:
        return bool(self._one(self.se.exists(checkKey(key)), key))

    def checkAvailable(self) -> None:
        for operation in ("ReadAccess", "WriteAccess"):
            valid = self.se.isValid(operation)
            if not valid["OK"]:
                raise ConfigurationError(f"sandbox storage element {self.seName}: {valid['Message']}")


#: back ends by the name the ``Backend`` option uses
BACKENDS: dict[str, type[SandboxStorage]] = {"disk": DiskSandboxStorage, "StorageElement": StorageElementSandboxStorage}


@dataclass(frozen=True)
class SandboxStoreSettings:
    """The options of the SandboxStore service section, checked."""

    localSE: str = DEFAULT_LOCAL_SE
    backend: str = DEFAULT_BACKEND
    basePath: Path = Path(tempfile.gettempdir()) / "sandboxes"
    maxSandboxBytes: int = DEFAULT_MAX_SANDBOX_MIB * MIB

    @classmethod
    def fromCS(cls, section: str | None = None) -> SandboxStoreSettings:
        """Read and check ``/Systems/WorkloadManagement/Services/SandboxStore`` (ConfigurationError naming the option)."""
        section = section or getServiceSection(SERVICE)
        localSE = gConfig.getValue(f"{section}/LocalSE", DEFAULT_LOCAL_SE).strip()
        if not localSE or "|" in localSE:
            raise ConfigurationError(f"{section}/LocalSE must be a storage element name, not {localSE!r}")
        backend = gConfig.getValue(f"{section}/Backend", DEFAULT_BACKEND).strip() or DEFAULT_BACKEND
        if backend not in BACKENDS:
            raise ConfigurationError(f"{section}/Backend = {backend} is not a sandbox back end "
                                     f"(known: {', '.join(sorted(BACKENDS))})")
        basePath = gConfig.getValue(f"{section}/BasePath", "").strip()
        if not basePath:
            instance = gConfig.getValue("/LocalInstallation/InstancePath", "") or str(Path.home() / ".dirac")
            basePath = str(Path(instance).expanduser() / "sandboxes")
        if not Path(basePath).expanduser().is_absolute():
            raise ConfigurationError(f"{section}/BasePath must be an absolute path, not {basePath!r}")
        return cls(localSE, backend, Path(basePath).expanduser(), maxSandboxBytes(section))

    def makeStorage(self, create: bool = False) -> SandboxStorage:
        """The back end these settings name (``create``: make its directory, as the service does at start)."""
        if self.backend == "disk":
            return DiskSandboxStorage(self.basePath, create=create)
        if self.backend == "StorageElement":
            return StorageElementSandboxStorage(self.localSE)
        raise ConfigurationError(f"sandbox back end {self.backend} cannot be built here")


def maxSandboxBytes(section: str | None = None) -> int:
    """The largest sandbox accepted, from ``MaxSandboxSizeMiB`` (read at each upload: it may change live)."""
    section = section or getServiceSection(SERVICE)
    mib = gConfig.getValue(f"{section}/MaxSandboxSizeMiB", float(DEFAULT_MAX_SANDBOX_MIB))
    if mib <= 0:
        log.warning("%s/MaxSandboxSizeMiB = %s is not positive: using %d", section, mib, DEFAULT_MAX_SANDBOX_MIB)
        mib = DEFAULT_MAX_SANDBOX_MIB
    return int(mib * MIB)
