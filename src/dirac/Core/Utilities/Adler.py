"""Adler32 checksums as DIRAC writes them: eight lower-case hexadecimal digits, zero-padded.

Files are read (or written) in chunks, never held whole in memory.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
HEX_DIGITS = set("0123456789abcdef")


def formatAdler32(value: int) -> str:
    """The DIRAC text form of an Adler32 value: '0000ad12'."""
    return f"{value & 0xFFFFFFFF:08x}"


def normalizeAdler32(checksum: str | int) -> str:
    """``checksum`` in DIRAC's form (ValueError when it is not up to eight hexadecimal digits)."""
    if isinstance(checksum, int):
        return formatAdler32(checksum)
    text = str(checksum).strip().lower()
    if not text or len(text) > 8 or not set(text) <= HEX_DIGITS:
        raise ValueError(f"invalid Adler32 checksum {checksum!r}: up to 8 hexadecimal digits")
    return text.zfill(8)


def sameAdler32(first: str | int | None, second: str | int | None) -> bool:
    """Whether two checksums are the same Adler32 value (False when either is missing or malformed)."""
    if first in (None, "") or second in (None, ""):
        return False
    try:
        return normalizeAdler32(first) == normalizeAdler32(second)  # type: ignore[arg-type]
    except ValueError:
        return False


def fileAdler32(path: str | Path) -> str:
    """The Adler32 of the file at ``path``."""
    value = 1
    with open(path, "rb") as data:
        while chunk := data.read(CHUNK):
            value = zlib.adler32(chunk, value)
    return formatAdler32(value)


def copyWithAdler32(source: BinaryIO, target: BinaryIO) -> tuple[int, str]:
    """Copy ``source`` to ``target`` chunk by chunk; (bytes copied, Adler32 of them)."""
    value, size = 1, 0
    while chunk := source.read(CHUNK):
        target.write(chunk)
        value = zlib.adler32(chunk, value)
        size += len(chunk)
    return size, formatAdler32(value)


__all__ = ["copyWithAdler32", "fileAdler32", "formatAdler32", "normalizeAdler32", "sameAdler32"]
