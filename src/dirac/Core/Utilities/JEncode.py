"""DIRAC's JSON wire encoding (JEncode).

Plain JSON plus three tagged objects, as the DIRAC HTTPS client and server exchange them:
``{"__dCls": "dt", "obj": "YYYY-mm-dd HH:MM:SS"}`` for datetimes (no sub-seconds),
``{"__dCls": "date", "obj": "YYYY-mm-dd"}`` for dates and ``{"__dCls": "b64", "obj": ...}``
for bytes. Tuples travel as lists and non-string dict keys as strings, as in JSON.
Objects carrying any other ``__dCls`` are refused: we never import classes named by a peer.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
from typing import Any

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"


def _datetimeText(o: datetime.datetime) -> str:
    """``o`` as DATETIME_FORMAT (its wall-clock fields, as strftime gives them)."""
    return _naiveText(o) if o.tzinfo is None else _formatted(o)


def _formatted(o: datetime.datetime) -> str:
    if o.year < 1000:  # strftime's %Y does not pad to four digits
        return o.strftime(DATETIME_FORMAT)
    return o.replace(tzinfo=None, microsecond=0).isoformat(" ")  # the same text, several times faster


#: big answers (a catalog listing) carry the same few timestamps thousands of times; only naive
#: datetimes are cached: aware ones equal in UTC may differ in their wall-clock fields
_naiveText = functools.lru_cache(maxsize=4096)(_formatted)


def _parseDatetime(text: str) -> datetime.datetime:
    """DATETIME_FORMAT text as a datetime: fromisoformat when it has exactly that shape, else strptime's checks."""
    if len(text) == 19 and text[4] == "-" and text[10] == " " and text[13] == ":" and text.isascii():
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError:
            pass  # strptime gives the usual error
    return datetime.datetime.strptime(text, DATETIME_FORMAT)


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime):
            return {"__dCls": "dt", "obj": _datetimeText(o)}
        if isinstance(o, datetime.date):
            return {"__dCls": "date", "obj": o.strftime(DATE_FORMAT)}
        if isinstance(o, (bytes, bytearray)):
            return {"__dCls": "b64", "obj": base64.b64encode(o).decode()}
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        return super().default(o)


def _decodeObject(data: dict) -> Any:
    tag = data.get("__dCls")
    if tag is None:
        return data
    if tag == "dt":
        return _parseDatetime(data["obj"])
    if tag == "date":
        return datetime.datetime.strptime(data["obj"], DATE_FORMAT).date()
    if tag == "b64":
        return base64.b64decode(data["obj"])
    raise ValueError(f"refusing to decode an object of class {tag!r}")


def encode(data: Any) -> str:
    """Encode ``data`` as DIRAC JEncoded JSON text."""
    return json.dumps(data, cls=_Encoder)


def decode(text: str | bytes) -> tuple[Any, int]:
    """Decode JEncoded text; returns ``(object, length)`` like DIRAC's ``decode``."""
    return json.loads(text, object_hook=_decodeObject), len(text)


def strToIntDict(inDict: dict) -> dict:
    """Turn the string keys JSON gave back into ints (job IDs, request IDs)."""
    return {int(key): value for key, value in inDict.items()}
