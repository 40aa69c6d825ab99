"""The xRSL and ADL the AREX CE writes, and the checks on its options (no server needed).

What A-REX does with these documents is tested against a real A-REX in tests/system/test_ce_arex.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument
from dirac.Resources.Computing.AREXComputingElement import arcStatus, jobEntries
from dirac.Resources.Computing.AREXJobDescription import (
    ADL_NAMESPACE,
    NORDUGRID_ADL_NAMESPACE,
    PilotDescription,
    adl,
    tokenWrapper,
    xrsl,
    xrslBulk,
)
from dirac.Resources.Computing.ComputingElement import ABORTED, DONE, FAILED, RUNNING, WAITING, getComputingElement


def pilot(**extra) -> PilotDescription:
    return PilotDescription(**{"executable": "pilot.py", "stamp": "0123456789abcdef", "queue": "grid",
                               "delegationID": "d3l39", **extra})


def test_xrsl_pushes_the_executable_keeps_the_outputs_and_names_the_delegation() -> None:
    text = xrsl(pilot(processors=8, memoryMB=2000, cpuTimeMinutes=90), extra='(runtimeenvironment="ENV/X")')
    assert text.startswith('&(executable="pilot.py")(inputFiles=("pilot.py" ""))')
    for part in ('(stdout="pilot.out")(stderr="pilot.err")', '(outputFiles=("pilot.out" "")("pilot.err" ""))',
                 '(environment=("DIRAC_PILOT_STAMP" "0123456789abcdef"))', '(queue="grid")',
                 "(count=8)(countpernode=8)", "(memory=2000)", "(cputime=90)", '(delegationid="d3l39")'):
        assert part in text, part
    assert text.endswith('(runtimeenvironment="ENV/X")')


def test_with_a_token_the_wrapper_runs_the_pilot_pushed_beside_it_with_the_token() -> None:
    withToken = pilot(executable="dirac-arex-pilot.sh", inputs=["pilot.py", "pilot.token"], executables=["pilot.py"])
    text = xrsl(withToken)
    assert '(executable="dirac-arex-pilot.sh")' in text
    assert '(inputFiles=("dirac-arex-pilot.sh" "")("pilot.py" "")("pilot.token" ""))' in text
    assert '(executables="pilot.py")' in text
    root = ET.fromstring(adl(withToken).split("\n", 1)[1])
    ns = {"adl": ADL_NAMESPACE}
    assert [(i.findtext("adl:Name", namespaces=ns), i.findtext("adl:IsExecutable", namespaces=ns))
            for i in root.findall("adl:DataStaging/adl:InputFile", namespaces=ns)] == [
        ("dirac-arex-pilot.sh", "true"), ("pilot.py", "true"), ("pilot.token", "false")]
    wrapper = tokenWrapper("pilot.py")
    assert wrapper.startswith("#!/bin/sh\n") and 'BEARER_TOKEN_FILE="$PWD/pilot.token"' in wrapper
    assert 'exec "./pilot.py" "$@"' in wrapper


def test_several_pilots_make_one_xrsl_multi_request_and_one_pilot_a_plain_relation() -> None:
    one = xrslBulk([pilot()])
    assert one.startswith("&(") and not one.startswith("+")
    two = xrslBulk([pilot(stamp="a" * 16), pilot(stamp="b" * 16)])
    assert two.startswith("+(&(") and two.count("(&(executable=") == 2 and '"aaaaaaaaaaaaaaaa"' in two


def test_a_value_that_would_break_the_xrsl_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="queue"):
        xrsl(pilot(queue='grid")(executable="/bin/rm'))


def test_adl_is_an_activity_description_with_the_same_pilot() -> None:
    root = ET.fromstring(adl(pilot(processors=4, memoryMB=1)).split("\n", 1)[1])
    ns = {"adl": ADL_NAMESPACE}
    assert root.tag == f"{{{ADL_NAMESPACE}}}ActivityDescription"
    assert root.findtext("adl:Application/adl:Executable/adl:Path", namespaces=ns) == "pilot.py"
    assert root.findtext("adl:Application/adl:Output", namespaces=ns) == "pilot.out"
    assert root.findtext("adl:Application/adl:Environment/adl:Value", namespaces=ns) == "0123456789abcdef"
    assert root.findtext("adl:Resources/adl:QueueName", namespaces=ns) == "grid"
    assert root.findtext("adl:Resources/adl:SlotRequirement/adl:NumberOfSlots", namespaces=ns) == "4"
    assert root.findtext("adl:Resources/adl:IndividualPhysicalMemory", namespaces=ns) == str(1024 * 1024)
    inputs = root.findall("adl:DataStaging/adl:InputFile", namespaces=ns)
    assert [(i.findtext("adl:Name", namespaces=ns), i.findtext("adl:IsExecutable", namespaces=ns))
            for i in inputs] == [("pilot.py", "true")]
    assert not root.findall(".//adl:Source", namespaces=ns)  # pushed by the client, not fetched by A-REX
    assert root.findtext(f"adl:DataStaging/{{{NORDUGRID_ADL_NAMESPACE}}}DelegationID", namespaces=ns) == "d3l39"


@pytest.mark.parametrize(("state", "status"), [("ACCEPTING", WAITING), ("QUEUING", WAITING), ("RUNNING", RUNNING),
                                               ("FINISHING", RUNNING), ("FINISHED", DONE), ("FAILED", FAILED),
                                               ("KILLED", ABORTED), ("WIPED", ABORTED)])
def test_arc_states_map_to_pilot_states_with_the_state_as_reason(state: str, status: str) -> None:
    assert arcStatus({"status-code": "200", "id": "x", "state": state}) == (status, f"ARC job {state}")


def test_a_job_the_ce_does_not_know_is_aborted_with_its_reason() -> None:
    status, reason = arcStatus({"status-code": "404", "reason": "Job not found", "id": "x", "state": "None"})
    assert status == ABORTED and "does not know" in reason and "Job not found" in reason


def test_answers_with_one_or_several_jobs_give_a_list_and_others_are_an_error() -> None:
    assert jobEntries({"job": {"id": "a"}}) == [{"id": "a"}]
    assert jobEntries({"job": [{"id": "a"}, {"id": "b"}]}) == [{"id": "a"}, {"id": "b"}]
    with pytest.raises(Exception, match="no 'job'"):
        jobEntries({"jobs": []})


def test_options_are_checked_and_nordugrid_queue_names_are_cut_to_the_arc_queue() -> None:
    with pytest.raises(ConfigurationError, match="JobDescriptionLanguage"):
        getComputingElement("AREX", "arc.example.org", {"JobDescriptionLanguage": "JDL"})
    ce = getComputingElement("AREX", "arc.example.org", {"Queue": "nordugrid-slurm-long", "Port": "8443",
                                                         "JobDescriptionLanguage": "adl"})
    assert ce.arcQueue == "long" and ce.language == "ADL"
    assert ce.baseURL == "https://arc.example.org:8443/arex/rest/1.0"


def test_a_reference_of_another_ce_is_unknown_without_asking_the_server() -> None:
    ce = getComputingElement("AREX", "arc.example.org", {"Port": "1"})  # nothing listens on port 1
    result = ce.getJobStatus(["arex://other.example.org/abc", "htcondorce://arc.example.org/1.0"])
    assert result["OK"] and set(result["Value"].values()) == {"Unknown"}
