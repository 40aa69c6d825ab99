"""DIRAC's DEncode, as ForwardDISET operations store RPC calls: known bytes both ways, and bad data refused."""

from __future__ import annotations

import datetime

import pytest

from dirac.Core.Utilities import DEncode
from dirac.Core.Utilities.DEncode import DEncodeError

#: an RPC stub as a DIRAC JobReport stores it (setJobStatusBulk of job 12), written out by hand from the format
STUB = (("WorkloadManagement/JobStateUpdate", {}), "setJobStatusBulk",
        [12, {"2026-01-01 10:00:00.000001": {"Status": "Done", "Source": "JobWrapper"}}, False])
STUB_BYTES = (b"tts33:WorkloadManagement/JobStateUpdatedees16:setJobStatusBulkli12e"
              b"ds26:2026-01-01 10:00:00.000001ds6:Statuss4:Dones6:Sources10:JobWrapperee" b"b0ee")


def test_an_rpc_stub_encodes_to_dirac_bytes_and_back() -> None:
    assert DEncode.encode(STUB) == STUB_BYTES
    assert DEncode.decode(STUB_BYTES) == (STUB, len(STUB_BYTES))


@pytest.mark.parametrize(("value", "data"), [
    (-7, b"i-7e"), (0.25, b"f0.25e"), (True, b"b1"), (None, b"n"), ("é", b"s2:\xc3\xa9"), ([], b"le"),
    ({1: [2, (3,)]}, b"di1eli2eti3eeee"),
    (datetime.datetime(2026, 3, 4, 5, 6, 7, 8), b"zati2026ei3ei4ei5ei6ei7ei8ene"),
    (datetime.date(2026, 3, 4), b"zdti2026ei3ei4ee"),
])
def test_each_type_has_dirac_s_form(value: object, data: bytes) -> None:
    assert DEncode.encode(value) == data
    assert DEncode.decode(data)[0] == value


def test_dirac_s_old_long_and_exponent_floats_are_read() -> None:
    assert DEncode.decode(b"I12345678901234e")[0] == 12345678901234
    assert DEncode.decode(b"f2.0e+20e")[0] == pytest.approx(2.0e20)
    assert DEncode.decode("s3:abc")[0] == "abc"  # text as DIRAC's JSON carries Arguments


@pytest.mark.parametrize("data", [b"", b"x1", b"s10:abc", b"li1e", b"di1ee", b"zqti1ee"])
def test_bad_data_is_refused_with_a_clear_error(data: bytes) -> None:
    with pytest.raises(DEncodeError):
        DEncode.decode(data)


def test_objects_dencode_cannot_carry_are_refused() -> None:
    with pytest.raises(DEncodeError, match="cannot carry a set"):
        DEncode.encode({1, 2})
