"""Files of a Storage Element kept in a local directory tree: ``<root>/<lfn>``.

Used by the ``File`` plug-in (a directory the client reaches itself) and by the
DataManagement/StorageElement service (the directory the server keeps). A file is written to
``<root>/.staging/`` while its size and Adler32 are computed, and renamed into place only when
both are what the writer announced: a file name never shows a partial or corrupt file.
A full disk (ENOSPC, EDQUOT) is a ``StorageFull`` error and leaves nothing behind.
"""

from __future__ import annotations

import datetime
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from dirac.Core.Utilities.Adler import copyWithAdler32, fileAdler32, normalizeAdler32
from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.Core.Utilities.Logging import getLogger
from dirac.Resources.Storage.StorageBase import ChecksumMismatch, SizeMismatch, StorageError, StorageFull

log = getLogger("Storage/DiskArea")

STAGING = ".staging"
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def checkPath(path: str) -> str:
    """``path`` if it is an absolute path without '.', '..', empty or control-character components."""
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise InvalidArgument(f"{path!r} is not an absolute path")
    parts = path.split("/")[1:]
    if path != "/" and any(part in ("", ".", "..") or any(ord(c) < 32 for c in part) for part in parts):
        raise InvalidArgument(f"{path!r} is not a valid storage path (empty, '.' or '..' component)")
    if parts and parts[0] == STAGING:
        raise InvalidArgument(f"{path!r} is reserved")
    return path


class DiskArea:
    """A directory tree holding the files of one Storage Element (or one space token of it)."""

    def __init__(self, root: str | Path, name: str = ""):
        self.root = Path(root).expanduser().resolve()
        self.name = name or str(self.root)

    def __repr__(self) -> str:
        return f"DiskArea({str(self.root)!r})"

    def local(self, path: str) -> Path:
        """The local file of a storage path."""
        return self.root / checkPath(path).lstrip("/")

    def available(self) -> bool:
        return self.root.is_dir()

    # -- files ----------------------------------------------------------------------------------------
    def put(self, source: BinaryIO, path: str, size: int | None = None, checksum: str | None = None
            ) -> dict[str, Any]:
        """Store the bytes of ``source`` as ``path``, checked against ``size`` and ``checksum`` when given."""
        target = self.local(path)
        expected = normalizeAdler32(checksum) if checksum else None
        if size is not None:
            self._checkSpace(size)
        staging = self.root / STAGING
        staged = staging / f"{target.name}.{uuid.uuid4().hex}"
        try:
            staging.mkdir(parents=True, exist_ok=True)
            with open(staged, "xb") as out:
                written, adler = copyWithAdler32(source, out)
                out.flush()
                os.fsync(out.fileno())
            if size is not None and written != size:
                raise SizeMismatch(f"{path}: {written} bytes received, {size} announced")
            if expected is not None and adler != expected:
                raise ChecksumMismatch(f"{path}: Adler32 of the bytes received is {adler}, {expected} announced")
            if target.is_dir():
                raise StorageError(f"{path} is a directory", errno.EISDIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        except OSError as exc:
            raise self._osError(exc, path) from None
        finally:
            staged.unlink(missing_ok=True)
        log.info("%s: stored %s (%d bytes, adler32 %s)", self.name, path, written, adler)
        return {"Size": written, "Checksum": adler}

    def _checkSpace(self, size: int) -> None:
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            return
        if size > free:
            raise StorageFull(f"no space left on {self.name}: {free} bytes free, {size} needed")

    def _osError(self, exc: OSError, path: str) -> StorageError:
        if exc.errno in FULL_ERRNOS:
            return StorageFull(f"no space left on {self.name} while writing {path} ({exc.strerror})")
        if exc.errno == errno.ENOENT and not self.root.is_dir():
            return StorageError(f"{self.name} is not available: {self.root} is missing", errno.EHOSTDOWN)
        return StorageError(f"{path}: {exc.strerror or exc}", exc.errno or errno.EIO)

    def open(self, path: str) -> BinaryIO:
        """The file ``path`` opened for reading (NotFound when absent)."""
        local = self.local(path)
        if not local.is_file():
            raise NotFound(f"{path}: no such file on {self.name}")
        return open(local, "rb")

    def remove(self, path: str) -> bool:
        try:
            self.local(path).unlink()
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            raise StorageError(f"{path} is a directory", errno.EISDIR) from None
        log.info("%s: removed %s", self.name, path)
        return True

    def exists(self, path: str) -> bool:
        return self.local(path).exists()

    def metadata(self, path: str, withChecksum: bool = True) -> dict[str, Any]:
        """{Size, Checksum, ChecksumType, ModificationDate, File, Directory} of ``path``."""
        local = self.local(path)
        try:
            info = local.stat()
        except FileNotFoundError:
            raise NotFound(f"{path}: no such file or directory on {self.name}") from None
        isFile = local.is_file()
        result: dict[str, Any] = {"Size": info.st_size if isFile else 0, "File": isFile, "Directory": not isFile,
                                  "ModificationDate": datetime.datetime.fromtimestamp(info.st_mtime, datetime.UTC)}
        if isFile and withChecksum:
            result.update(Checksum=fileAdler32(local), ChecksumType="Adler32")
        return result

    # -- directories ------------------------------------------------------------------------------------
    def listDirectory(self, path: str) -> dict[str, dict[str, Any]]:
        local = self.local(path)
        if not local.is_dir():
            raise NotFound(f"{path}: no such directory on {self.name}")
        files: dict[str, Any] = {}
        subDirs: dict[str, Any] = {}
        for entry in sorted(os.scandir(local), key=lambda e: e.name):
            if entry.name == STAGING:
                continue
            child = f"{path.rstrip('/')}/{entry.name}"
            if entry.is_dir():
                subDirs[child] = {}
            else:
                stat = entry.stat()
                files[child] = {"Size": stat.st_size, "File": True, "Directory": False,
                                "ModificationDate": datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC)}
        return {"Files": files, "SubDirs": subDirs}

    def createDirectory(self, path: str) -> None:
        try:
            self.local(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._osError(exc, path) from None

    def removeDirectory(self, path: str, recursive: bool = False) -> dict[str, int]:
        local = self.local(path)
        if path == "/" or not local.is_dir():
            raise NotFound(f"{path}: no such directory on {self.name}")
        files = [p for p in local.rglob("*") if p.is_file()] if recursive else []
        removed = {"FilesRemoved": len(files), "SizeRemoved": sum(p.stat().st_size for p in files)}
        try:
            if recursive:
                shutil.rmtree(local)
            else:
                local.rmdir()
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise StorageError(f"{path}: directory not empty", errno.ENOTEMPTY) from None
            raise self._osError(exc, path) from None
        return removed
