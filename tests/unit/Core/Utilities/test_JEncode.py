"""DIRAC's JEncode wire encoding."""

from __future__ import annotations

import datetime
import json

import pytest

from dirac.Core.Utilities import JEncode


def test_datetime_date_and_bytes_use_dirac_tags():
    text = JEncode.encode([datetime.datetime(2026, 11, 22, 10, 1, 2, 999), datetime.date(2026, 11, 22), b"\x01"])
    assert json.loads(text) == [{"__dCls": "dt", "obj": "2026-11-22 10:01:02"},
                                {"__dCls": "date", "obj": "2026-11-22"},
                                {"__dCls": "b64", "obj": "AQ=="}]


def test_round_trip_drops_microseconds_and_turns_tuples_into_lists():
    value = {"t": (1, "a"), "when": datetime.datetime(2026, 1, 1, 0, 0, 0, 123), "n": None}
    decoded, length = JEncode.decode(JEncode.encode(value))
    assert decoded == {"t": [1, "a"], "when": datetime.datetime(2026, 1, 1), "n": None}
    assert length == len(JEncode.encode(value))


def test_unknown_class_tags_are_refused():
    with pytest.raises(ValueError, match="refusing to decode"):
        JEncode.decode('{"__dCls": "Popen", "__dMod": "subprocess"}')


def test_int_keys_come_back_as_strings_and_can_be_restored():
    decoded = JEncode.decode(JEncode.encode({1: "a", 2: "b"}))[0]
    assert decoded == {"1": "a", "2": "b"}
    assert JEncode.strToIntDict(decoded) == {1: "a", 2: "b"}
