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


def test_datetimes_encode_as_strftime_would_aware_or_naive_cached_or_not():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    cases = [datetime.datetime(2026, 3, 4, 5, 6, 7, 890), datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=paris),
             datetime.datetime(2026, 3, 4, 4, 6, 7, tzinfo=datetime.UTC),  # the same instant, other wall clock
             datetime.datetime(999, 1, 2, 3, 4, 5)]
    for _ in range(2):  # the second time from the cache of naive ones
        encoded = json.loads(JEncode.encode(cases))
        assert [item["obj"] for item in encoded] == [d.strftime(JEncode.DATETIME_FORMAT) for d in cases]


def test_datetime_text_of_another_shape_is_refused_as_strptime_refuses_it():
    assert JEncode.decode('{"__dCls": "dt", "obj": "2026-03-04 05:06:07"}')[0] == datetime.datetime(2026, 3, 4, 5, 6, 7)
    for bad in ("2026-03-04T05:06:07", "2026-03-04 05:06:07.5", "2026-02-30 05:06:07", "2026-03-04 25:06:07"):
        with pytest.raises(ValueError):
            JEncode.decode(json.dumps({"__dCls": "dt", "obj": bad}))


def test_encodeCompact_means_what_encode_means_whichever_encoder_writes_it():
    import enum
    import math
    import uuid

    class Colour(enum.Enum):
        RED = "red"

    when = datetime.datetime(2026, 3, 4, 5, 6, 7, 890)
    plain = {"Successful": {"/dirac/f": {"MetaData": {"Size": 7, "CreationDate": when, "Mode": 0o644,
                                                      "Day": datetime.date(2026, 3, 4), "Ratio": 0.1,
                                                      "Big": 1e16, "Neg": -0.0, "Flags": [True, False]}}},
             "Failed": {}, "Pair": (1, "a"), "Raw": b"\x00\xff", "Set": {3, 1}, "Id": uuid.UUID(int=5),
             "Colour": Colour.RED, "Aware": datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)}
    compact = JEncode.encodeCompact(plain)
    assert b", " not in compact and b": " not in compact  # orjson wrote it
    assert JEncode.decode(compact)[0] == JEncode.decode(JEncode.encode(plain))[0]
    assert json.loads(compact) == json.loads(JEncode.encode(plain))  # as a DIRAC client's json reads it

    # where orjson would write something else, the text is encode's
    for value in ({1: "int key"}, {"n": None}, {"x": float("nan"), "y": float("inf")}, {"big": 2**70},
                  {"text": "caf\u00e9 \ud800"}, {"name": "a null inside"}):
        assert JEncode.encodeCompact(value) == JEncode.encode(value).encode()
    nan = JEncode.decode(JEncode.encodeCompact({"x": float("nan")}))[0]["x"]
    assert math.isnan(nan)


def test_encodeCompact_refuses_what_encode_refuses():
    for value in ({"x": object()}, {"t": datetime.time(1, 2)}, {"k": {(1, 2): "tuple key"}}):
        for encoder in (JEncode.encode, JEncode.encodeCompact):
            with pytest.raises(TypeError):
                encoder(value)


def test_big_texts_decode_the_same_with_the_collector_paused():
    import gc

    value = {"Files": {f"/dirac/f{i}": {"Size": i, "When": datetime.datetime(2026, 1, 1)} for i in range(5000)}}
    text = JEncode.encode(value)
    assert len(text) > JEncode._BIG_TEXT
    assert JEncode.decode(text)[0] == value and JEncode.decode(JEncode.encodeCompact(value))[0] == value
    assert gc.isenabled()
