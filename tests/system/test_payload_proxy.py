"""Jobs run with their owner's credentials: real pilots on the one-box site fetch each job owner's limited proxy
from the ProxyManager; a job whose owner uploaded no proxy is rescheduled, then Failed with the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from gridtools import WMS, jdl, run, startedGrid, waitFor

from dirac.Core.Security.CA import CertificateAuthority
from dirac.FrameworkSystem.Logic.Instance import Instance
from dirac.Interfaces.API.Dirac import Dirac
from dirac.WorkloadManagementSystem.Client.WMSClients import JobManagerClient

pytestmark = pytest.mark.slow
USERS = {"bob": "/O=DIRAC-Seed/OU=dirac/CN=bob", "carol": "/O=DIRAC-Seed/OU=dirac/CN=carol"}
OPTIONS = {
    f"{WMS}/Agents/SiteDirector/PollingTime": "1",
    f"{WMS}/Agents/Optimizers/PollingTime": "1",
    f"{WMS}/Agents/JobAgent/PollingTime": "1",
    f"{WMS}/Agents/JobAgent/StopAfterFailedMatches": "3",
    f"{WMS}/JobWrapper/PollingTime": "1",
    f"{WMS}/Databases/JobDB/MaxRescheduling": "1",
    "/Registry/Groups/dirac_user/Users": "admin, bob, carol",
    **{f"/Registry/Users/{name}/DN": dn for name, dn in USERS.items()},
}
# what the payload reports about the proxy it was given
PROBE = "-c 'stat -c mode=%a $X509_USER_PROXY && openssl x509 -noout -subject -in $X509_USER_PROXY'"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with startedGrid(tmp_path_factory.mktemp("payloadproxy"), OPTIONS) as instance:
        yield instance


def proxyOf(site: Instance, name: str, tmp_path: Path, upload: bool) -> Path:
    """``name``'s certificate from the instance CA and a proxy made by dirac-proxy-init (uploaded or not)."""
    cert, key = CertificateAuthority(site.caDir).load().issueUserCertificate(USERS[name])
    (tmp_path / f"{name}cert.pem").write_bytes(cert)
    (tmp_path / f"{name}key.pem").write_bytes(key)
    (tmp_path / f"{name}key.pem").chmod(0o600)
    proxy = tmp_path / f"{name}proxy.pem"
    env = {**os.environ, "X509_USER_PROXY": str(proxy)}
    run("dirac-proxy-init", "-C", str(tmp_path / f"{name}cert.pem"), "-K", str(tmp_path / f"{name}key.pem"),
        "-g", "dirac_user", *([] if upload else ["--no-upload"]), env=env)
    return proxy


def submitAs(proxy: Path, description: str) -> int:
    result = JobManagerClient(proxyLocation=str(proxy), useCertificates=False).submitJob(description)
    assert result["OK"], result
    return int(result["Value"])


def test_a_job_of_bob_runs_with_bobs_limited_proxy(site: Instance, tmp_path: Path) -> None:
    bobProxy = proxyOf(site, "bob", tmp_path, upload=True)
    jobID = submitAs(bobProxy, jdl("/bin/sh", PROBE))
    final = waitFor([jobID], timeout=240)
    assert final[jobID]["Status"] == "Done", final
    fetched = Dirac(proxyLocation=str(bobProxy), useCertificates=False).getOutputSandbox(jobID, str(tmp_path))
    assert fetched["OK"], fetched
    output = (tmp_path / str(jobID) / "std.out").read_text()
    assert "mode=600" in output
    subject = next(line for line in output.splitlines() if line.startswith("subject")).replace(" ", "")
    assert "CN=bob,CN=" in subject and "CN=pilot" not in subject and "CN=admin" not in subject, output
    log = site.logFile.read_text()
    assert "limited proxy of bob@dirac_user" in log and "handed to pilot@dirac_pilot" in log
    assert "PRIVATE KEY" not in log


def test_a_job_whose_owner_uploaded_no_proxy_is_rescheduled_then_failed(site: Instance, tmp_path: Path) -> None:
    carolProxy = proxyOf(site, "carol", tmp_path, upload=False)
    jobID = submitAs(carolProxy, jdl("/bin/echo", "never runs"))
    final = waitFor([jobID], timeout=240)[jobID]
    assert final["Status"] == "Failed" and final["MinorStatus"] == "Maximum of reschedulings reached", final
    assert "Failed to setup proxy" in final["ApplicationStatus"], final
    assert "has no proxy uploaded" in final["ApplicationStatus"], final
    history = Dirac().getJobLoggingInfo(jobID)["Value"]
    assert [row[1] for row in history].count("Going to reschedule job") == 2, history
    assert "Running" not in {row[0] for row in history}, history
