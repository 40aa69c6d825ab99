"""Pilots in cloud VMs started by the SiteDirector through the Cloud CE: real jobs to Done, refused credentials.

The cloud is the OpenStack STAND-IN (tests/servers/openstack_standin.py, not OpenStack) in boot
mode: it answers libcloud's Keystone/Nova/Glance/Neutron calls and "boots" each server by running
its cloud-init user data as a local process with a fresh environment, so the CE's
``run-pilot.sh`` runs the real pilot wrapper with the proxy the user data carries, the pilot
matches and runs the job, and the VM powers off. Two CEs: ``cloud.standin`` (good application
credential, MaxInstances 2) and ``cloud.badcred`` (a secret the cloud refuses).
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from gridtools import SERVERS, ceOptions, jdl, pilotsOf, startedGrid, submit, tuning, waitFor, waitForLog, waitForPilot

from dirac.FrameworkSystem.Logic.Instance import Instance
from dirac.WorkloadManagementSystem.Client.PilotManagerClient import PilotManagerClient

sys.path.insert(0, str(SERVERS))
import openstack_standin  # noqa: E402

pytestmark = pytest.mark.slow
SITES = {"cloud.standin": "CLOUD.Standin.local", "cloud.badcred": "CLOUD.BadCredential.local"}


@dataclass
class CloudSite:
    instance: Instance
    cloud: openstack_standin.OpenStackStandIn


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudSite]:
    root = tmp_path_factory.mktemp("cloudsite")
    cloud = openstack_standin.OpenStackStandIn(boot=True, root=root / "vms").start()
    settings = cloud.settings()
    common = {"CEType": "Cloud", "AuthURL": settings["OS_AUTH_URL"],
              "ApplicationCredentialID": settings["OS_APPLICATION_CREDENTIAL_ID"],
              "ApplicationCredentialSecret": settings["OS_APPLICATION_CREDENTIAL_SECRET"],
              "Image": "debian12-cloud", "Flavor": "m1.small", "Networks": "pilots-net", "MaxInstances": "2",
              "InstanceLifetime": "3600", "WorkingDirectory": str(root / "cloud-records")}
    options = {
        **tuning("cloud.standin, cloud.badcred"),
        **ceOptions(SITES["cloud.standin"], "cloud.standin", **common),
        **ceOptions(SITES["cloud.badcred"], "cloud.badcred", **{**common, "ApplicationCredentialSecret": "wrong"}),
    }
    try:
        with startedGrid(root, options) as instance:
            yield CloudSite(instance, cloud)
    finally:
        cloud.stop()


def test_jobs_run_to_done_in_pilot_vms_that_power_off_and_are_deleted(site: CloudSite) -> None:
    jobIDs = submit(jdl("/bin/echo", "hello from a cloud VM", Site=f'"{SITES["cloud.standin"]}"', Parameters="2"))
    final = waitFor(jobIDs, timeout=240)
    assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
    references = {ref for jobID in jobIDs for ref in pilotsOf(jobID)}
    assert references and all(ref.startswith("cloud://cloud.standin/") for ref in references), references
    reference = sorted(references)[0]
    info = waitForPilot(reference, timeout=120)
    assert info["Status"] == "Done", info
    assert info["StatusReason"] == "cloud.standin says Done: pilot exit code 0; VM powered off", info
    output = PilotManagerClient().getPilotOutput(reference)
    assert output["OK"] and "JobAgent" in output["Value"]["StdOut"], output
    serverID = reference.rsplit("/", 1)[1]
    creation = next(c for c in site.cloud.calls("POST", "/compute/v2.1/servers")
                    if c["body"]["server"]["metadata"]["dirac-stamp"] == info["PilotStamp"])
    assert creation["body"]["server"]["metadata"]["dirac-ce"] == "cloud.standin"
    userData = base64.b64decode(creation["body"]["server"]["user_data"]).decode()
    files = {item["path"] for item in openstack_standin.parseCloudConfig(userData)["write_files"]}
    assert "/var/lib/dirac-pilot/proxy.pem" in files
    deadline = time.monotonic() + 60
    while any(s.body["metadata"]["dirac-ce"] == "cloud.standin" for s in list(site.cloud.servers.values())):
        assert time.monotonic() < deadline, "the ended pilot VMs were not deleted"
        time.sleep(1)
    assert not (site.cloud.root / serverID / "var/lib/dirac-pilot/proxy.pem").exists()


def test_refused_cloud_credentials_back_the_queue_off_without_registering_pilots(site: CloudSite) -> None:
    since = len(site.instance.logFile.read_text(errors="replace"))
    [jobID] = submit(jdl("/bin/echo", "never runs", Site=f'"{SITES["cloud.badcred"]}"'))
    waitForLog(site.instance, "queue cloud.badcred/default", since=since)
    log = site.instance.logFile.read_text(errors="replace")[since:]
    failure = next(line for line in log.splitlines() if "queue cloud.badcred/default" in line)
    assert "refused our credentials" in failure and site.cloud.authURL in failure, failure
    assert "leaving it alone" in failure, failure
    assert PilotManagerClient().countPilots({"DestinationSite": "cloud.badcred"})["Value"] == 0
    assert waitFor([jobID], done=("Waiting",), timeout=5)[jobID]["Status"] == "Waiting"
    assert not any(c["body"]["server"]["metadata"]["dirac-ce"] == "cloud.badcred"
                   for c in site.cloud.calls("POST", "/compute/v2.1/servers"))
