"""The CE base class: parameters from the CS, resource description, slot arithmetic, credentials, factory, errors."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from DIRACCommon.Core.Utilities import DErrno

from dirac.Core.Base import Components
from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument
from dirac.Resources.Computing.ComputingElement import (
    PILOT_FINAL_STATES,
    PILOT_STATES,
    ComputingElement,
    UnknownJobReference,
    getComputingElement,
    splitReference,
    splitStamp,
)
from dirac.Resources.Computing.PoolComputingElement import PoolComputingElement


class CountingCE(ComputingElement):
    """A CE whose counters the test sets."""

    ceType = "Counting"
    referenceScheme = "counting"
    running = 0
    waiting = 0

    def _getCEStatus(self) -> dict[str, Any]:
        return {"RunningJobs": self.running, "WaitingJobs": self.waiting}


def test_cs_strings_are_cast_to_the_option_types() -> None:
    ce = CountingCE("ce.example.org", {"MaxTotalJobs": "10", "MaxWaitingJobs": "4", "NumberOfProcessors": "8",
                                       "Tag": "GPU, WholeNode", "MaxRAM": "16000", "KillGracePeriod": "2.5"})
    assert (ce.maxTotalJobs, ce.maxWaitingJobs, ce.numberOfProcessors) == (10, 4, 8)
    assert ce.getParameter("Tag") == ["GPU", "WholeNode"] and ce.killGracePeriod == 2.5
    assert ce.getParameter("CEType") == "Counting" and ce.getParameter("GridCE") == "ce.example.org"


@pytest.mark.parametrize("option, value", [("MaxTotalJobs", "many"), ("NumberOfProcessors", "0"),
                                           ("MaxWaitingJobs", "-1")])
def test_invalid_option_is_a_configuration_error_naming_it(option: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"ce.example.org: option {option}"):
        CountingCE("ce.example.org", {option: value})


def test_description_for_the_matcher() -> None:
    ce = CountingCE("ce.example.org", {"Site": "DIRAC.Example.org", "Queue": "long", "Platform": "x86_64-el9",
                                       "Tag": "GPU", "RequiredTag": "VO_A", "NumberOfProcessors": "4",
                                       "MaxRAM": "8000", "maxCPUTime": "2880"})
    assert ce.getDescription()["Value"] == {
        "Site": "DIRAC.Example.org", "GridCE": "ce.example.org", "CEType": "Counting", "Queue": "long",
        "Platform": "x86_64-el9", "Tag": ["GPU", "MultiProcessor"], "RequiredTag": ["VO_A"],
        "NumberOfProcessors": 4, "MaxRAM": 8000, "CPUTime": 2880 * 60,
    }
    assert CountingCE("ce", {"CPUTime": "3600", "maxCPUTime": "1"}).getDescription()["Value"]["CPUTime"] == 3600


@pytest.mark.parametrize("running, waiting, expected", [(0, 0, 4), (3, 0, 4), (8, 0, 2), (6, 3, 1), (5, 5, 0),
                                                        (12, 0, 0)])
def test_available_slots_respect_max_total_and_max_waiting_jobs(running: int, waiting: int, expected: int) -> None:
    ce = CountingCE("ce", {"MaxTotalJobs": "10", "MaxWaitingJobs": "4"})
    ce.running, ce.waiting = running, waiting
    assert ce.available()["Value"] == expected
    assert ce.getCEStatus()["Value"] == {"SubmittedJobs": 0, "RunningJobs": running, "WaitingJobs": waiting,
                                         "AvailableProcessors": 1}


def test_tokens_and_proxies_for_the_ce_itself(tmp_path: Path) -> None:
    ce = CountingCE("ce")
    ce.setToken({"access_token": "abc", "token_type": "Bearer"})
    assert ce.token == "abc"
    ce.setToken("xyz")
    assert ce.token == "xyz"
    ce.setToken(None)
    assert ce.token is None
    with pytest.raises(InvalidArgument, match="access_token"):
        ce.setToken({"refresh_token": "r"})
    proxy = tmp_path / "proxy"
    proxy.write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    ce.setProxy(str(proxy))
    assert ce.proxy == proxy.read_bytes()
    with pytest.raises(InvalidArgument, match="no PEM block"):
        ce.setProxy(b"garbage")


def test_references() -> None:
    assert splitReference("htcondorce://ce.example.org/1234.0") == "1234.0"
    assert splitReference("pool://h/0123456789abcdef:::0123456789abcdef") == "0123456789abcdef"
    assert splitStamp("local://host.example.org/0123456789abcdef") == "0123456789abcdef"
    with pytest.raises(UnknownJobReference):
        splitStamp("local://host/../../etc")
    with pytest.raises(UnknownJobReference):
        splitReference("local://host/..")
    assert set(PILOT_FINAL_STATES) < set(PILOT_STATES)


def test_edge_errors_carry_derrno_codes(tmp_path: Path) -> None:
    ce = CountingCE("ce")
    missing = ce.submitJob(str(tmp_path / "nothing.sh"))
    assert not missing["OK"] and missing["Errno"] == DErrno.ETYPE and "does not exist" in missing["Message"]
    assert ce.submitJob(str(tmp_path), numberOfJobs=0)["Errno"] == DErrno.ETYPE


def test_factory_knows_the_builtin_types_and_refuses_unknown_ones() -> None:
    assert type(getComputingElement("Pool", "pool", {"NumberOfProcessors": "2"})) is PoolComputingElement
    with pytest.raises(ConfigurationError, match="no Computing Element of type 'Nope'.*Local"):
        getComputingElement("Nope", "ce")


def test_factory_loads_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    points = {"MyPool": "dirac.Resources.Computing.PoolComputingElement:PoolComputingElement",
              "Broken": "dirac.Resources.Computing.NoSuchModule:NoSuchCE",
              "NotACE": "pathlib:Path"}

    def fakeEntryPoints(group: str) -> list[EntryPoint]:
        assert group == "dirac.computing_elements"
        return [EntryPoint(name, value, group) for name, value in points.items()]

    monkeypatch.setattr(Components, "entry_points", fakeEntryPoints)
    ce = getComputingElement("MyPool", "pool", {})
    assert isinstance(ce, PoolComputingElement) and ce.getParameter("CEType") == "MyPool"
    with pytest.raises(ConfigurationError, match="cannot load"):
        getComputingElement("Broken", "ce")
    with pytest.raises(ConfigurationError, match="is not a ComputingElement"):
        getComputingElement("NotACE", "ce")
