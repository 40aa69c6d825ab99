"""CloudComputingElement against the OpenStack STAND-IN (tests/servers/openstack_standin.py), not OpenStack.

The stand-in answers libcloud's Keystone v3, Nova, Glance and Neutron calls in OpenStack's formats
and records every request, so these tests assert on the exact exchanges. To run them against a
real OpenStack instead, set OPENSTACK_TEST_AUTH_URL and the other variables documented in
docs/computing-elements.md ("Cloud"): the tests that only read and create servers then use it.
"""

from __future__ import annotations

import base64
import datetime
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.CloudComputingElement import SHUTDOWN_MARGIN, CloudComputingElement
from dirac.Resources.Computing.CloudInit import MAX_USER_DATA, pilotExitCode
from dirac.Resources.Computing.ComputingElement import getComputingElement

SERVERS = Path(__file__).resolve().parents[2] / "servers"
sys.path.insert(0, str(SERVERS))
import openstack_standin  # noqa: E402

CE = "cloud.example.org"
PROXY = b"-----BEGIN CERTIFICATE-----\npilot proxy\n-----END CERTIFICATE-----\n"


@pytest.fixture
def cloud() -> Iterator[openstack_standin.OpenStackStandIn]:
    standin = openstack_standin.OpenStackStandIn(maxServers=5).start()
    yield standin
    standin.stop()


@pytest.fixture
def pilot(tmp_path: Path) -> Path:
    executable = tmp_path / "pilot.py"
    executable.write_text("#!/usr/bin/env python3\nprint('pilot')\n")
    return executable


def makeCE(cloud: openstack_standin.OpenStackStandIn, **options: str) -> CloudComputingElement:
    settings = cloud.settings()
    parameters = {"AuthURL": settings["OS_AUTH_URL"], "ApplicationCredentialID": settings["OS_APPLICATION_CREDENTIAL_ID"],
                  "ApplicationCredentialSecret": settings["OS_APPLICATION_CREDENTIAL_SECRET"],
                  "Image": "alma9-cloud", "Flavor": "m1.large", "Networks": "pilots-net", "KeyName": "ops-key",
                  "Site": "CLOUD.Example.org", "Queue": "vm", "MaxTotalJobs": "10", "MaxWaitingJobs": "10",
                  "MaxInstances": "4", **options}
    ce = getComputingElement("Cloud", CE, parameters)
    assert isinstance(ce, CloudComputingElement)
    return ce


def writtenFiles(userData: str) -> dict[str, tuple[bytes, str]]:
    """{path: (content, permissions)} of a #cloud-config user data."""
    document = openstack_standin.parseCloudConfig(userData)
    return {item["path"]: (openstack_standin.decodeContent(item["content"], item.get("encoding", "")),
                           item["permissions"]) for item in document["write_files"]}


def test_n_pilots_are_n_tagged_servers_whose_user_data_writes_and_runs_the_pilot(cloud, pilot: Path) -> None:
    ce = makeCE(cloud)
    result = ce.submitJob(str(pilot), PROXY, numberOfJobs=3)
    assert result["OK"], result
    references = result["Value"]
    assert len(references) == 3 and all(ref.startswith(f"cloud://{CE}/") for ref in references)
    creations = cloud.calls("POST", "/compute/v2.1/servers")
    assert len(creations) == 3
    for reference, creation in zip(references, creations, strict=True):
        serverID, stamp = reference.rsplit("/", 1)[1], result["PilotStampDict"][reference]
        server = creation["body"]["server"]
        assert server["imageRef"] == openstack_standin.IMAGES[0]["id"]
        assert server["flavorRef"] == "2"  # m1.large
        assert server["networks"] == [{"uuid": openstack_standin.NETWORKS[0]["id"]}]
        assert server["key_name"] == "ops-key" and server["name"] == f"dirac-pilot-{stamp}"
        assert server["metadata"] == {"dirac-ce": CE, "dirac-queue": "vm", "dirac-site": "CLOUD.Example.org",
                                      "dirac-stamp": stamp}
        userData = base64.b64decode(server["user_data"]).decode()
        assert userData == cloud.userData(serverID) and userData.startswith("#cloud-config\n")
        files = writtenFiles(userData)
        assert files["/var/lib/dirac-pilot/pilot.py"] == (pilot.read_bytes(), "0755")
        assert files["/var/lib/dirac-pilot/proxy.pem"] == (PROXY, "0600")
        script = files["/var/lib/dirac-pilot/run-pilot.sh"][0].decode()
        assert f"export DIRAC_PILOT_STAMP={stamp}" in script and 'X509_USER_PROXY="$here/proxy.pem"' in script
        assert f"timeout --signal=TERM --kill-after=60 {172800 - SHUTDOWN_MARGIN} " in script
        assert script.rstrip().endswith("poweroff")
        assert openstack_standin.parseCloudConfig(userData)["runcmd"] == [["/bin/bash",
                                                                           "/var/lib/dirac-pilot/run-pilot.sh"]]
    assert {r["token"] for r in cloud.calls("POST", "/servers")} <= cloud.tokens
    authentications = cloud.calls("POST", "/v3/auth/tokens")
    assert authentications[0]["body"]["auth"]["identity"] == {
        "methods": ["application_credential"],
        "application_credential": {"id": "standin-appcred-id", "secret": "standin-appcred-secret"}}
    # image, flavor and networks are looked up once, not per pilot
    assert len(cloud.calls("GET", "/v2/images")) == 1 and len(cloud.calls("GET", "/flavors/detail")) == 1


def test_a_token_goes_with_the_pilot_and_a_password_credential_is_scoped_to_the_project(cloud, pilot: Path) -> None:
    ce = makeCE(cloud, ApplicationCredentialID="", UserName="pilot-factory", Password="standin-password",
                ProjectName="dirac-pilots", Networks="", KeyName="")
    ce.setToken({"access_token": "eyJ.pilot.token"})
    [reference] = ce.submitJob(str(pilot), None)["Value"]
    files = writtenFiles(cloud.userData(reference.rsplit("/", 1)[1]))
    assert files["/var/lib/dirac-pilot/token"] == (b"eyJ.pilot.token", "0600")
    assert "/var/lib/dirac-pilot/proxy.pem" not in files
    assert 'BEARER_TOKEN_FILE="$here/token"' in files["/var/lib/dirac-pilot/run-pilot.sh"][0].decode()
    server = cloud.calls("POST", "/compute/v2.1/servers")[0]["body"]["server"]
    assert "networks" not in server and "key_name" not in server
    auth = cloud.calls("POST", "/v3/auth/tokens")[0]["body"]["auth"]
    assert auth["identity"]["password"]["user"] == {"name": "pilot-factory", "password": "standin-password",
                                                    "domain": {"name": "Default"}}
    assert auth["scope"] == {"project": {"name": "dirac-pilots", "domain": {"id": "default"}}}


def test_statuses_follow_the_vms_and_ended_vms_are_deleted_with_their_console_kept(cloud, pilot: Path,
                                                                                   tmp_path: Path) -> None:
    ce = makeCE(cloud, WorkingDirectory=str(tmp_path / "work"))
    result = ce.submitJob(str(pilot), PROXY, numberOfJobs=4)
    references = result["Value"]
    ids = [ref.rsplit("/", 1)[1] for ref in references]
    stamps = [result["PilotStampDict"][ref] for ref in references]
    assert ce.getJobStatus(references)["Value"] == dict.fromkeys(references, "Waiting")
    assert ce.statusReason(references[0]) == "VM BUILD"
    cloud.setServer(ids[0], "ACTIVE")
    cloud.setServer(ids[1], "SHUTOFF", console=f"boot\njob output\ndirac-pilot {stamps[1]}: exit code 0\nreboot: "
                                                "Power down\n")
    cloud.setServer(ids[2], "SHUTOFF", console=f"dirac-pilot {stamps[2]}: exit code 3\n")
    cloud.setServer(ids[3], "ERROR", fault="No valid host was found. There are not enough hosts available.")
    statuses = ce.getJobStatus(references)["Value"]
    assert statuses == {references[0]: "Running", references[1]: "Done", references[2]: "Failed",
                        references[3]: "Failed"}
    assert ce.statusReason(references[1]) == "pilot exit code 0; VM powered off"
    assert ce.statusReason(references[2]) == "pilot exit code 3; VM powered off"
    assert ce.statusReason(references[3]) == ("VM in ERROR: No valid host was found. There are not enough hosts "
                                              "available.")
    assert set(cloud.servers) == {ids[0]}, "ended and failed VMs must be deleted"
    assert [c["path"].rsplit("/", 1)[1] for c in cloud.calls("DELETE")] == ids[1:]
    console = cloud.calls("POST", f"/servers/{ids[1]}/action")[0]["body"]
    assert console == {"os-getConsoleOutput": {"length": 1000}}
    assert "job output" in ce.getJobOutput(references[1])["Value"][0]
    # a new CE object (a restarted SiteDirector) on the same directory still knows the ended pilots
    again = makeCE(cloud, WorkingDirectory=str(tmp_path / "work"))
    assert again.getJobStatus(references[1:3])["Value"] == {references[1]: "Done", references[2]: "Failed"}
    assert "job output" in again.getJobOutput(references[1])["Value"][0]
    # a VM powered off without the pilot's line, and one deleted behind the CE's back
    cloud.setServer(ids[0], "SHUTOFF", console="kernel panic\n")
    assert ce.getJobStatus([references[0]])["Value"] == {references[0]: "Aborted"}
    assert "without the pilot's exit code" in ce.statusReason(references[0])
    [other] = ce.submitJob(str(pilot), PROXY)["Value"]
    del cloud.servers[other.rsplit("/", 1)[1]]
    assert ce.getJobStatus([other])["Value"] == {other: "Deleted"}


def test_vms_past_their_lifetime_are_deleted_and_kill_deletes_the_vm(cloud, pilot: Path) -> None:
    ce = makeCE(cloud, InstanceLifetime="3600")
    references = ce.submitJob(str(pilot), PROXY, numberOfJobs=3)["Value"]
    ids = [ref.rsplit("/", 1)[1] for ref in references]
    old = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=3700)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    cloud.setServer(ids[0], "ACTIVE", created=old)
    cloud.setServer(ids[1], "ACTIVE")
    status = ce.getCEStatus()["Value"]  # the SiteDirector's available() retires expired VMs too
    assert (status["RunningJobs"], status["WaitingJobs"], status["Instances"]) == (1, 1, 2)
    assert ids[0] not in cloud.servers
    assert ce.getJobStatus([references[0]])["Value"] == {references[0]: "Aborted"}
    assert ce.statusReason(references[0]) == "VM exceeded its lifetime of 3600 s (running)"
    assert ce.killJob([references[1]])["OK"]
    assert ids[1] not in cloud.servers and cloud.calls("DELETE")[-1]["path"].endswith(ids[1])
    assert ce.getJobStatus([references[1]])["Value"] == {references[1]: "Aborted"}
    assert ce.killJob([references[1]])["OK"], "killing a VM that is already gone is no error"
    assert ce.getJobStatus(["cloud://other.ce/abc"])["Value"] == {"cloud://other.ce/abc": "Unknown"}


def test_max_instances_counts_the_ces_vms_of_every_queue(cloud, pilot: Path) -> None:
    first = makeCE(cloud, MaxInstances="3")
    second = makeCE(cloud, MaxInstances="3", Queue="vm-large")
    assert first.available()["Value"] == 3
    assert len(second.submitJob(str(pilot), PROXY, numberOfJobs=2)["Value"]) == 2
    assert first.available()["Value"] == 1
    refused = first.submitJob(str(pilot), PROXY, numberOfJobs=2)
    assert not refused["OK"] and "MaxInstances 3" in refused["Message"], refused
    assert len(cloud.servers) == 2
    # a VM of another CE in the same project does not count
    other = getComputingElement("Cloud", "other.example.org", {**makeCE(cloud).ceParameters,
                                                                "GridCE": "other.example.org"})
    assert other.submitJob(str(pilot), PROXY)["OK"]
    assert first.available()["Value"] == 1
    assert first.getCEStatus()["Value"]["Instances"] == 2


def test_the_cloud_quota_stops_a_submission_with_novas_message_keeping_the_vms_made(cloud, pilot: Path) -> None:
    ce = makeCE(cloud, MaxInstances="10")
    result = ce.submitJob(str(pilot), PROXY, numberOfJobs=7)
    assert result["OK"] and len(result["Value"]) == 5, result  # the stand-in's quota is 5 instances
    refused = ce.submitJob(str(pilot), PROXY)
    assert not refused["OK"] and "Quota exceeded for instances" in refused["Message"], refused


def test_refused_credentials_and_an_unreachable_cloud_are_clear_errors(cloud, pilot: Path) -> None:
    ce = makeCE(cloud, ApplicationCredentialSecret="wrong")
    for result in (ce.submitJob(str(pilot), PROXY), ce.available(), ce.getJobStatus([f"cloud://{CE}/abc"])):
        assert not result["OK"] and "refused our credentials" in result["Message"], result
        assert cloud.settings()["OS_AUTH_URL"] in result["Message"]
    assert not cloud.calls("POST", "/servers")
    port = cloud.httpd.server_address[1]
    cloud.stop()
    down = makeCE(cloud, AuthURL=f"http://127.0.0.1:{port}/identity", Timeout="5")
    result = down.submitJob(str(pilot), PROXY)
    assert not result["OK"] and "cannot be reached" in result["Message"], result


def test_bad_configuration_is_refused_with_the_option_named(cloud, pilot: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="set Image"):
        makeCE(cloud, Image="")
    with pytest.raises(ConfigurationError, match="ApplicationCredentialID and its secret, or UserName"):
        makeCE(cloud, ApplicationCredentialID="")
    with pytest.raises(ConfigurationError, match="CloudType 'EC2' is not supported"):
        makeCE(cloud, CloudType="EC2")
    secret = tmp_path / "secret"
    secret.write_text("standin-appcred-secret\n")
    assert makeCE(cloud, ApplicationCredentialSecret="", SecretFile=str(secret)).available()["OK"]
    result = makeCE(cloud, Flavor="m9.huge").submitJob(str(pilot), PROXY)
    assert not result["OK"] and "no flavor 'm9.huge' in the cloud (it has: m1.large, m1.small)" in result["Message"]
    big = tmp_path / "big.py"
    big.write_bytes(os.urandom(MAX_USER_DATA))  # does not compress
    result = makeCE(cloud).submitJob(str(big), PROXY)
    assert not result["OK"] and "more than the 65535 Nova accepts" in result["Message"], result


def test_the_exit_code_is_read_from_the_console_for_the_pilots_stamp_only() -> None:
    console = "dirac-pilot 0123456789abcdef: exit code 0\r\ndirac-pilot fedcba9876543210: exit code 2\r\n"
    assert pilotExitCode(console, "fedcba9876543210") == 2
    assert pilotExitCode(console, "0123456789abcdef") == 0
    assert pilotExitCode(console, "1111111111111111") is None


def test_records_of_deleted_vms_are_bounded_in_memory_and_pruned_on_disk(cloud, pilot: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from dirac.Resources.Computing import CloudComputingElement as module

    monkeypatch.setattr(module, "MAX_RECORDS_IN_MEMORY", 2)
    ce = makeCE(cloud, WorkingDirectory=str(tmp_path / "work"))
    references = ce.submitJob(str(pilot), PROXY, numberOfJobs=3)["Value"]
    assert ce.killJob(references)["OK"]
    assert list(ce.ended) == [ref.rsplit("/", 1)[1] for ref in references[1:]]
    failedID = ce.submitJob(str(pilot), PROXY)["Value"][0].rsplit("/", 1)[1]
    cloud.setServer(failedID, "ERROR", fault="boom")
    assert ce.getCEStatus()["OK"]  # retires the failed VM and writes its record
    records = tmp_path / "work" / CE
    assert len(list(records.glob("*.json"))) == 4
    os.utime(records / f"{failedID}.json", (0, 0))
    assert ce.getCEStatus()["OK"] and not (records / f"{failedID}.json").exists(), "an old record must be pruned"
    assert len(list(records.glob("*.json"))) == 3
    assert makeCE(cloud, WorkingDirectory=str(tmp_path / "work")).getJobStatus(references[:1])["Value"] == {
        references[0]: "Aborted"}, "a killed pilot's record outlives the CE object"
