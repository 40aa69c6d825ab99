"""DIRAC's DEncode: the binary encoding DISET used on its wire, still the format of stored RPC calls.

The Request Management System keeps a call to replay later (a ``ForwardDISET`` operation) as the
DEncoded *RPC stub* ``((service, {options}), method, [args])`` in the operation's ``Arguments``:
a DIRAC client writes them so, and reads ours. The format, one prefix character per value:

=========  =========================================================
``i42e``   int (``I...e`` is the old "long", read as int)
``f0.5e``  float (``repr``); DIRAC also reads ``f1.5e+20e``-style exponents
``b1``     bool (``b0``)
``n``      None
``s3:abc`` a string: its UTF-8 length, a colon, the bytes (also bytes)
``l...e``  list;  ``t...e`` tuple
``d...e``  dict: key, value, key, value, ...
``za``     datetime as the tuple (y, m, d, H, M, S, us, tzinfo=None); ``zd`` date; ``zt`` time
=========  =========================================================

Decoding never builds anything but these plain types.
"""

from __future__ import annotations

import datetime
from typing import Any


class DEncodeError(ValueError):
    """Data that is not valid DEncode, or a value DEncode cannot carry."""


def encode(value: Any) -> bytes:
    """The DEncoded bytes of ``value``."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: Any, out: list[bytes]) -> None:
    if value is None:
        out.append(b"n")
    elif isinstance(value, bool):
        out.append(b"b1" if value else b"b0")
    elif isinstance(value, int):
        out += (b"i", str(value).encode(), b"e")
    elif isinstance(value, float):
        out += (b"f", repr(value).encode(), b"e")
    elif isinstance(value, (str, bytes)):
        data = value.encode() if isinstance(value, str) else value
        out += (b"s", str(len(data)).encode(), b":", data)
    elif isinstance(value, datetime.datetime):
        out.append(b"za")
        _encode((value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond,
                 None), out)
    elif isinstance(value, datetime.date):
        out.append(b"zd")
        _encode((value.year, value.month, value.day), out)
    elif isinstance(value, datetime.time):
        out.append(b"zt")
        _encode((value.hour, value.minute, value.second, value.microsecond, None), out)
    elif isinstance(value, (list, tuple)):
        out.append(b"t" if isinstance(value, tuple) else b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        out.append(b"d")
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
        out.append(b"e")
    else:
        raise DEncodeError(f"DEncode cannot carry a {type(value).__name__}")


def decode(data: bytes | str) -> tuple[Any, int]:
    """(the value, the number of bytes read) of DEncoded ``data``, as DIRAC's ``DEncode.decode`` answers."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if not raw:
        raise DEncodeError("nothing to decode")
    try:
        return _decode(raw, 0)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, DEncodeError):
            raise
        raise DEncodeError(f"not DEncode data: {exc}") from exc


def _until(data: bytes, start: int, stop: bytes) -> tuple[str, int]:
    end = data.index(stop, start)
    return data[start:end].decode(), end + 1


def _decode(data: bytes, i: int) -> tuple[Any, int]:
    tag = data[i:i + 1]
    if tag in (b"i", b"I"):
        text, i = _until(data, i + 1, b"e")
        return int(text), i
    if tag == b"f":
        text, i = _until(data, i + 1, b"e")
        if data[i:i + 1] in (b"+", b"-"):  # DIRAC's mantissa e exponent e form
            exponent, i = _until(data, i, b"e")
            return float(text) * 10 ** int(exponent), i
        return float(text), i
    if tag == b"b":
        return data[i + 1:i + 2] == b"1", i + 2
    if tag == b"n":
        return None, i + 1
    if tag == b"s":
        length, i = _until(data, i + 1, b":")
        end = i + int(length)
        if end > len(data):
            raise DEncodeError(f"string of {length} bytes runs past the end of the data")
        return data[i:end].decode(errors="surrogateescape"), end
    if tag in (b"l", b"t"):
        items, i = _items(data, i + 1)
        return (tuple(items) if tag == b"t" else items), i
    if tag == b"d":
        items, i = _items(data, i + 1)
        if len(items) % 2:
            raise DEncodeError("dictionary with a key and no value")
        return dict(zip(items[::2], items[1::2], strict=True)), i
    if tag == b"z":
        kind = data[i + 1:i + 2]
        fields, i = _decode(data, i + 2)
        fields = [field for field in fields if field is not None]  # the tzinfo slot
        if kind == b"a":
            return datetime.datetime(*fields), i
        if kind == b"d":
            return datetime.date(*fields), i
        if kind == b"t":
            return datetime.time(*fields), i
        raise DEncodeError(f"unknown time type {kind!r}")
    raise DEncodeError(f"unknown DEncode type {tag!r} at byte {i}")


def _items(data: bytes, i: int) -> tuple[list[Any], int]:
    items = []
    while data[i:i + 1] != b"e":
        if i >= len(data):
            raise DEncodeError("list or dictionary without its end")
        item, i = _decode(data, i)
        items.append(item)
    return items, i + 1
