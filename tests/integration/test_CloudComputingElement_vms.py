"""Pilot VMs of the Cloud CE from boot to deletion: the real cloud-init script runs and its pilot ends.

By default against the OpenStack STAND-IN (tests/servers/openstack_standin.py, not OpenStack) in
boot mode: each server's user data is run as a local process (write_files, then runcmd with a
``poweroff`` stand-in), so the CE's ``run-pilot.sh`` really runs the pilot, removes its proxy,
prints the exit code and "powers off".

Against a real OpenStack: source the project's openrc with an application credential (``OS_AUTH_URL``,
``OS_APPLICATION_CREDENTIAL_ID``, ``OS_APPLICATION_CREDENTIAL_SECRET``, ``OS_REGION_NAME``) and set
``DIRAC_TEST_OPENSTACK=1``, ``DIRAC_TEST_OPENSTACK_IMAGE``, ``DIRAC_TEST_OPENSTACK_FLAVOR`` and
optionally ``DIRAC_TEST_OPENSTACK_NETWORKS`` and ``DIRAC_TEST_OPENSTACK_WAIT`` (seconds, 900): the same
tests then boot real VMs (the image needs cloud-init and python3) and delete them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dirac.Resources.Computing.CloudComputingElement import CloudComputingElement
from dirac.Resources.Computing.ComputingElement import getComputingElement

SERVERS = Path(__file__).resolve().parents[1] / "servers"
sys.path.insert(0, str(SERVERS))
import openstack_standin  # noqa: E402

REAL = os.environ.get("DIRAC_TEST_OPENSTACK", "") == "1"
PROXY = b"-----BEGIN CERTIFICATE-----\nthe pilot proxy\n-----END CERTIFICATE-----\n"
PILOT = """#!/usr/bin/env python3
import os, sys
print("hello from pilot", os.environ["DIRAC_PILOT_STAMP"], flush=True)
proxy = open(os.environ["X509_USER_PROXY"]).read()
print("proxy ok" if "the pilot proxy" in proxy else "proxy missing", "cwd", os.getcwd(), flush=True)
{tail}
"""


class Cloud:
    """Where the VMs run: the stand-in in boot mode, or a real OpenStack."""

    def __init__(self, parameters: dict[str, Any], standin: openstack_standin.OpenStackStandIn | None,
                 wait: float, poll: float):
        self.parameters, self.standin, self.wait, self.poll = parameters, standin, wait, poll

    def ce(self, **options: str) -> CloudComputingElement:
        ce = getComputingElement("Cloud", "cloud-test.example.org", {**self.parameters, **options})
        assert isinstance(ce, CloudComputingElement)
        return ce


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    common = {"Queue": "vm", "Site": "CLOUD.Test.org", "MaxTotalJobs": "4", "MaxWaitingJobs": "4",
              "MaxInstances": "4", "InstanceLifetime": "3600"}
    if REAL:
        yield Cloud({**common, "AuthURL": os.environ["OS_AUTH_URL"], "Region": os.environ.get("OS_REGION_NAME",
                                                                                              "RegionOne"),
                     "ApplicationCredentialID": os.environ["OS_APPLICATION_CREDENTIAL_ID"],
                     "ApplicationCredentialSecret": os.environ["OS_APPLICATION_CREDENTIAL_SECRET"],
                     "Image": os.environ["DIRAC_TEST_OPENSTACK_IMAGE"],
                     "Flavor": os.environ["DIRAC_TEST_OPENSTACK_FLAVOR"],
                     "Networks": os.environ.get("DIRAC_TEST_OPENSTACK_NETWORKS", "")}, None,
                    float(os.environ.get("DIRAC_TEST_OPENSTACK_WAIT", "900")), 10.0)
        return
    standin = openstack_standin.OpenStackStandIn(boot=True, root=tmp_path / "vms").start()
    settings = standin.settings()
    try:
        yield Cloud({**common, "AuthURL": settings["OS_AUTH_URL"],
                     "ApplicationCredentialID": settings["OS_APPLICATION_CREDENTIAL_ID"],
                     "ApplicationCredentialSecret": settings["OS_APPLICATION_CREDENTIAL_SECRET"],
                     "Image": "debian12-cloud", "Flavor": "m1.small", "Networks": "pilots-net"}, standin, 60.0, 0.3)
    finally:
        standin.stop()


def waitForStatus(cloud: Cloud, ce: CloudComputingElement, references: list[str], wanted: tuple[str, ...]
                  ) -> dict[str, str]:
    deadline = time.monotonic() + cloud.wait
    while True:
        statuses = ce.getJobStatus(references)
        assert statuses["OK"], statuses
        if all(status in wanted for status in statuses["Value"].values()):
            return statuses["Value"]
        assert time.monotonic() < deadline, f"still {statuses['Value']} after {cloud.wait} s"
        time.sleep(cloud.poll)


def test_a_pilot_vm_runs_its_pilot_powers_off_and_is_deleted_with_the_exit_code_as_status(cloud: Cloud,
                                                                                          tmp_path: Path) -> None:
    ce = cloud.ce()
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(PILOT.format(tail="sys.exit(0)"))
    bad.write_text(PILOT.format(tail="print('pilot fails', flush=True); sys.exit(3)"))
    first = ce.submitJob(str(good), PROXY)
    second = ce.submitJob(str(bad), PROXY)
    assert first["OK"] and second["OK"], (first, second)
    [done], [failed] = first["Value"], second["Value"]
    statuses = waitForStatus(cloud, ce, [done, failed], ("Done", "Failed", "Aborted"))
    assert statuses == {done: "Done", failed: "Failed"}, (statuses, ce.statusReason(done), ce.statusReason(failed))
    assert ce.statusReason(failed) == "pilot exit code 3; VM powered off"
    output = ce.getJobOutput(done)["Value"][0]
    stamp = first["PilotStampDict"][done]
    assert f"hello from pilot {stamp}" in output and "proxy ok cwd " in output, output
    assert "/var/lib/dirac-pilot/work" in output, output
    assert f"dirac-pilot {stamp}: exit code 0" in output
    assert "pilot fails" in ce.getJobOutput(failed)["Value"][0]
    assert ce.getCEStatus()["Value"]["Instances"] == 0, "ended VMs must be deleted"
    if cloud.standin is not None:
        assert not cloud.standin.servers
        vm = cloud.standin.root / done.rsplit("/", 1)[1] / "var/lib/dirac-pilot"
        assert not (vm / "proxy.pem").exists(), "the pilot proxy outlived its pilot"
        assert (vm / "pilot.log").read_text().startswith(f"hello from pilot {stamp}")


def test_killing_a_running_pilot_deletes_its_vm(cloud: Cloud, tmp_path: Path) -> None:
    ce = cloud.ce()
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(PILOT.format(tail="import time; time.sleep(600)"))
    [reference] = ce.submitJob(str(sleeper), PROXY)["Value"]
    assert waitForStatus(cloud, ce, [reference], ("Running",)) == {reference: "Running"}
    if cloud.standin is not None:
        process = cloud.standin.servers[reference.rsplit("/", 1)[1]].process
    assert ce.killJob([reference])["OK"]
    assert ce.getJobStatus([reference])["Value"] == {reference: "Aborted"}
    assert ce.statusReason(reference) == "VM deleted by killJob"
    assert ce.getCEStatus()["Value"]["Instances"] == 0
    if cloud.standin is not None:
        assert process is not None and process.wait(timeout=10) != 0, "the VM's pilot process must be stopped"
