# ruff: noqa: F811  (the data fixture imported from test_WMS_JobWrapperData is a parameter here)
"""Input data by protocol in the JobWrapper, with a real DataManager, File Storage Elements and a real File
Catalog in process (the fixtures of test_WMS_JobWrapperData): SE-B is the job's site's SE, SE-A is elsewhere.
The payload reads its files through the URLs it is given; the runs against real XRootD and WebDAV servers are
in tests/integration/test_DMS_XROOT.py and test_DMS_WebDAV.py."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.WorkloadManagementSystem.Client import JobMinorStatus
from dirac.WorkloadManagementSystem.Client.InputDataPolicy import DOWNLOAD, PROTOCOL, parsePolicy
from dirac.WorkloadManagementSystem.JobWrapper.JobWrapper import EXIT_DONE, EXIT_FAILED
from tests.unit.DataManagementSystem.test_DMS_DataManager import ALICE

from .test_WMS_JobWrapperData import HOME, SITE, data, runJob  # noqa: F401

pytestmark = pytest.mark.timeout(120)

LFN = f"{HOME}/in/in.dat"
#: reads every input file through the URL input_data.txt gives (a local path for file:// URLs and copies)
READ_BY_URL = """#!/bin/sh
set -e
while read -r lfn url; do
  case "$url" in file://*) cat "${url#file://}" ;; *) cat "$url" ;; esac
done < "$DIRAC_INPUT_DATA_LIST" > out.dat
test "$DIRAC_INPUT_DATA_JSON" = "$PWD/input_data.json" && test -f "$DIRAC_INPUT_DATA_CATALOG"
"""


def listed(tmp_path: Path) -> list[dict]:
    return json.loads((tmp_path / "node" / "input_data.json").read_text())["Files"]


def test_policy_names_are_diracs_modules_their_names_or_the_short_forms() -> None:
    assert parsePolicy("DIRAC.WorkloadManagementSystem.Client.InputDataByProtocol") == [PROTOCOL]
    assert parsePolicy("protocol, DownloadInputData") == [PROTOCOL, DOWNLOAD]
    assert parsePolicy(["Download"]) == [DOWNLOAD]
    with pytest.raises(InvalidArgument, match="'LHCbDIRAC.Stream' is not one of Download, Protocol"):
        parsePolicy("LHCbDIRAC.Stream")


@pytest.mark.parametrize(("jdlPolicy", "options"), [
    ("Protocol", {}),
    ("DIRAC.WorkloadManagementSystem.Client.InputDataByProtocol", {}),
    (None, {f"/Operations/Defaults/InputDataPolicy/{SITE}": "InputDataByProtocol",
            "/Operations/Defaults/InputDataPolicy/Default": "DownloadInputData"}),
])
def test_protocol_policy_gives_the_payload_turls_on_the_site_se_and_downloads_nothing(tmp_path, data, jdlPolicy,
                                                                                       options) -> None:
    gConfig.initialize(cfgFiles=[], fetchRemote=False, options=options)
    data.put(LFN, b"input data\n", tmp_path, "SE-A", "SE-B")
    data.reads.clear()
    code, jobState = runJob(tmp_path, data, READ_BY_URL, InputData=[LFN],
                            **({"InputDataPolicy": jdlPolicy} if jdlPolicy else {}))
    assert code == EXIT_DONE, jobState.parameters.get("Error Message")
    node = tmp_path / "node"
    assert (node / "out.dat").read_text() == "input data\n"
    assert data.reads == [] and not (node / "in.dat").exists(), "nothing downloaded"
    turl = f"file://{data.stored('SE-B', LFN)}"
    guid = data.fc.getFileMetadata(ALICE, [LFN])["Successful"][LFN]["GUID"]
    assert listed(tmp_path) == [{"LFN": LFN, "URL": turl, "SE": "SE-B", "Protocol": "file", "GUID": guid,
                                 "Size": 11, "Checksum": data.fc.getFileMetadata(ALICE, [LFN])["Successful"][LFN][
                                     "Checksum"], "Downloaded": False, "Path": str(data.stored("SE-B", LFN))}]
    assert (node / "input_data.txt").read_text() == f"{LFN} {turl}\n"
    pool = ET.parse(node / "pool_xml_catalog.xml").getroot()
    assert pool.tag == "POOLFILECATALOG"
    entry = pool.find("File")
    assert entry.get("ID") == guid and entry.find("logical/lfn").get("name") == LFN
    assert entry.find("physical/pfn").attrib == {"filetype": "ROOT_All", "name": turl, "se": "SE-B"}
    assert jobState.parameters["InputDataByProtocol"] == f"Resolved 1 LFN(s) by protocol:\n{LFN}: SE-B (file)"
    assert "DownloadInputData" not in jobState.parameters


def test_a_file_with_no_replica_at_the_site_fails_the_job_with_its_reason_before_the_payload_runs(tmp_path,
                                                                                                   data) -> None:
    data.put(LFN, b"input data\n", tmp_path, "SE-A")
    code, jobState = runJob(tmp_path, data, READ_BY_URL, InputData=[LFN], InputDataPolicy="Protocol")
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.INPUT_DATA_RESOLUTION)
    reason = "no replica on the site's SEs (SE-B); replicas on SE-A"
    assert jobState.parameters["Error Message"] == (f"1 input file(s) not made available by InputDataByProtocol: "
                                                    f"{LFN}: {reason}")
    assert jobState.parameters["ProblematicTURLs"] == f"Failed to obtain TURL for {LFN}: {reason}"
    assert not (tmp_path / "node" / "std.out").exists() and not (tmp_path / "node" / "in.dat").exists()
    assert data.reads == []


def test_protocol_then_download_downloads_only_the_files_without_a_turl(tmp_path, data) -> None:
    other = f"{HOME}/in/elsewhere.dat"
    data.put(LFN, b"input data\n", tmp_path, "SE-B")
    data.put(other, b"from afar\n", tmp_path, "SE-A")
    data.reads.clear()
    code, jobState = runJob(tmp_path, data, READ_BY_URL, InputData=[other, LFN],
                            InputDataPolicy="Protocol, Download")
    assert code == EXIT_DONE, jobState.parameters.get("Error Message")
    node = tmp_path / "node"
    assert (node / "out.dat").read_text() == "from afar\ninput data\n"
    assert data.reads == ["SE-A"] and (node / "elsewhere.dat").exists() and not (node / "in.dat").exists()
    files = {item["LFN"]: item for item in listed(tmp_path)}
    assert files[other]["Downloaded"] and files[other]["URL"] == files[other]["Path"] == str(node / "elsewhere.dat")
    assert files[LFN]["Protocol"] == "file" and not files[LFN]["Downloaded"]
    assert "Successfully downloaded 1 LFN(s) (0 with a replica at the site)" in jobState.parameters["DownloadInputData"]
    assert jobState.parameters["ProblematicTURLs"].startswith(f"Failed to obtain TURL for {other}: no replica")


@pytest.mark.parametrize(("protocols", "stored", "reason"), [
    ("root, https", b"input data\n", "SE-B gives no transport URL in root, https (it is read with file (File))"),
    ("root, file", b"input", "SE-B has 5 bytes of it, the catalog 11"),
])
def test_a_site_se_serving_none_of_the_configured_protocols_or_a_truncated_copy_gives_no_turl(
        tmp_path, data, protocols, stored, reason) -> None:
    gConfig.initialize(cfgFiles=[], fetchRemote=False, options={
        "/Operations/dirac/InputDataPolicy/Protocols/Local": protocols})
    data.put(LFN, b"input data\n", tmp_path, "SE-B")
    data.stored("SE-B", LFN).write_bytes(stored)
    code, jobState = runJob(tmp_path, data, READ_BY_URL, InputData=[LFN], InputDataPolicy="Protocol")
    assert code == EXIT_FAILED
    message = jobState.parameters["Error Message"]
    assert message.startswith(f"1 input file(s) not made available by InputDataByProtocol: {LFN}: ") and reason in message


def test_an_unknown_policy_in_the_jdl_is_an_illegal_jdl(tmp_path, data) -> None:
    data.put(LFN, b"input data\n", tmp_path, "SE-B")
    code, jobState = runJob(tmp_path, data, READ_BY_URL, InputData=[LFN], InputDataPolicy="Stream")
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.ILLEGAL_JOB_JDL)
    assert "JDL InputDataPolicy: input data policy 'Stream' is not one of" in jobState.parameters["Error Message"]


def test_an_unknown_policy_in_the_cs_fails_the_job_naming_the_option(tmp_path, data) -> None:
    gConfig.initialize(cfgFiles=[], fetchRemote=False, options={"/Operations/Defaults/InputDataPolicy/Default": "Stream"})
    data.put(LFN, b"input data\n", tmp_path, "SE-B")
    code, jobState = runJob(tmp_path, data, READ_BY_URL, InputData=[LFN])
    assert code == EXIT_FAILED
    assert jobState.trail()[-1] == ("Failed", JobMinorStatus.INPUT_DATA_RESOLUTION)
    assert jobState.parameters["Error Message"].startswith(
        "Operations option InputDataPolicy/Default: input data policy 'Stream' is not one of")
