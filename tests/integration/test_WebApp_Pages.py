"""The web portal's pages over HTTP: each acts through the services with the signed-in user's own
credentials, so the services' rules decide what is shown and allowed."""

from __future__ import annotations

import io
import re
import tarfile

import pytest

from dirac.ConfigurationSystem.Client.CSAPI import CSAPI
from dirac.Interfaces.API.Dirac import Dirac
from dirac.Interfaces.API.Job import Job

from .conftest import environmentOf
from .idp import deviceLoginTokens
from .portal import PortalSession, runningPortalGrid


@pytest.fixture(scope="module")
def portal(tmp_path_factory, oidcProvider):
    with runningPortalGrid(tmp_path_factory.mktemp("portalpages"), oidcProvider) as started:
        yield started


def submit(portal, login: str, name: str) -> int:
    """A job submitted through the public API with ``login``'s own token (device login at the provider)."""
    token = deviceLoginTokens(portal.provider, login)["access_token"]
    with environmentOf(portal.grid.instance):
        job = Job()
        job.setName(name)
        job.setExecutable("/bin/echo", arguments="hello from the portal test")
        job.setJobGroup("portal-tests")
        result = Dirac(token=token, useCertificates=False).submitJob(job)
    assert result["OK"], result
    return int(result["Value"])


@pytest.fixture(scope="module")
def jobs(portal) -> dict[str, int]:
    return {"alice": submit(portal, "alice", "alice-job"), "bob": submit(portal, "bob", "bob-job")}


@pytest.fixture
def alice(portal):
    with PortalSession(portal) as session:
        session.signIn("alice", "dirac_user")
        yield session


@pytest.fixture
def bob(portal):
    with PortalSession(portal) as session:
        session.signIn("bob")
        yield session


def test_job_monitor_lists_only_the_jobs_the_service_lets_the_user_read(alice, bob, jobs):
    page = alice.page("/jobs")
    assert f'id="job-{jobs["alice"]}"' in page.text
    assert f'id="job-{jobs["bob"]}"' not in page.text  # dirac_user has no JobSharing: own jobs only
    assert f'id="job-{jobs["bob"]}"' in bob.page("/jobs").text


def test_job_monitor_filters_and_pages(alice, jobs):
    assert f'id="job-{jobs["alice"]}"' in alice.page("/jobs", params={"jobgroup": "portal-tests"}).text
    assert f'id="job-{jobs["alice"]}"' not in alice.page("/jobs", params={"status": "Done"}).text
    assert f'id="job-{jobs["alice"]}"' not in alice.page("/jobs", params={"from": "2999-01-01"}).text
    page = alice.page("/jobs", params={"size": "25", "page": "0"})
    assert re.search(r"page 1 of \d+", page.text)
    assert alice.page("/jobs", params={"page": "x"}).status_code == 400


def test_job_page_shows_attributes_jdl_and_history(alice, jobs):
    page = alice.page(f"/jobs/{jobs['alice']}")
    assert page.status_code == 200
    assert "alice-job" in page.text
    assert "/bin/echo" in page.text  # the JDL
    assert 'id="job-history"' in page.text and "Received" in page.text


def test_another_users_job_page_is_refused_by_the_service(alice, jobs):
    page = alice.page(f"/jobs/{jobs['bob']}")
    assert page.status_code in (403, 404)
    assert "bob-job" not in page.text


def test_killing_another_users_job_is_refused_and_the_job_is_untouched(alice, bob, jobs):
    page = alice.post_form("/jobs/action", {"action": "kill", "JobID": str(jobs["bob"])},
                           csrfFrom=alice.page("/jobs"))
    assert "Kill refused" in page.text
    assert re.search(r'id="job-status">(Received|Checking|Waiting)<', bob.page(f"/jobs/{jobs['bob']}").text)


def test_owner_kills_a_job(portal, bob):
    jobID = submit(portal, "bob", "bob-job-to-kill")
    page = bob.post_form("/jobs/action", {"action": "kill", "JobID": str(jobID)}, csrfFrom=bob.page("/jobs"))
    assert f"Kill sent for job(s) {jobID}" in page.text
    assert 'id="job-status">Killed<' in bob.page(f"/jobs/{jobID}").text


def test_plots_are_images_of_the_users_jobs(alice, jobs):
    for fmt, kind in (("png", "image/png"), ("svg", "image/svg+xml")):
        for by in ("status", "site"):
            response = alice.page(f"/jobs/plot.{fmt}", params={"by": by})
            assert response.status_code == 200
            assert response.headers["Content-Type"] == kind
    assert alice.page("/jobs/plot.png", params={"by": "status"}).content.startswith(b"\x89PNG")
    svg = alice.page("/jobs/plot.svg", params={"by": "status"}).text
    assert "Jobs by status" in svg or "<svg" in svg
    assert alice.page("/jobs/plot.png", params={"by": "owner"}).status_code == 400


def test_output_sandbox_of_a_job_without_one_is_a_clear_404(alice, jobs):
    response = alice.page(f"/jobs/{jobs['alice']}/sandbox/Output")
    assert response.status_code == 404
    assert "has no output sandbox" in response.text


def test_output_sandbox_download(portal, alice, jobs, tmp_path):
    from dirac.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient

    (tmp_path / "std.out").write_text("the job's output\n")
    with environmentOf(portal.grid.instance):  # the admin's host-side upload, assigned as alice's output
        uploaded = SandboxStoreClient(proxyLocation=str(portal.grid.proxies["admin"]), useCertificates=False) \
            .uploadFilesAsSandbox([tmp_path / "std.out"], assignTo={f"Job:{jobs['alice']}": "Output"})
    assert uploaded["OK"], uploaded
    response = alice.page(f"/jobs/{jobs['alice']}/sandbox/Output")
    assert response.status_code == 200, response.text[:300]
    assert "attachment" in response.headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        assert tar.extractfile("std.out").read() == b"the job's output\n"


def test_pilot_monitor_page(alice):
    page = alice.page("/pilots")
    assert page.status_code == 200
    assert 'id="pilot-summary"' in page.text and 'id="pilots-table"' in page.text
    missing = alice.page("/pilots/show", params={"ref": "no-such-pilot"})
    assert missing.status_code == 404


def test_file_catalog_browser_and_download(portal, alice, tmp_path):
    from dirac.DataManagementSystem.Client.DataManager import DataManager

    local = tmp_path / "data.txt"
    local.write_text("catalogued bytes\n")
    lfn = "/dirac/user/a/alice/portal/data.txt"
    token = deviceLoginTokens(portal.provider, "alice")["access_token"]
    with environmentOf(portal.grid.instance):
        put = DataManager(token=token, useCertificates=False).putAndRegister(lfn, local, "OneBox-SE")
    assert put["OK"] and lfn in put["Value"]["Successful"], put
    listing = alice.page("/files", params={"path": "/dirac/user/a/alice/portal"})
    assert "data.txt" in listing.text
    page = alice.page("/files", params={"path": lfn})
    assert "OneBox-SE" in page.text  # its replica
    download = alice.page("/files/download", params={"lfn": lfn})
    assert download.status_code == 200
    assert download.content == b"catalogued bytes\n"
    assert alice.page("/files/download", params={"lfn": "/dirac/no/such/file"}).status_code == 404


def test_configuration_browser_reads_and_only_cs_administrators_change(portal, alice, tmp_path):
    page = alice.page("/config", params={"path": "/Registry/Groups"})
    assert "dirac_user" in page.text
    assert 'id="cs-edit"' not in page.text  # dirac_user is no CSAdministrator
    refused = alice.post_form("/config", {"path": "/Registry", "op": "set", "option": "Portal", "value": "x"},
                              csrfFrom=page)
    assert "was refused" in refused.text
    cert, key = portal.grid.ca.issueUserCertificate("/O=DIRAC-Seed/OU=dirac/CN=admin")
    pem = tmp_path / "admin.pem"
    pem.write_bytes(cert + key)
    with PortalSession(portal, cert=str(pem)) as admin:
        login = admin.page("/login")
        admin.post(portal.root + "/login/certificate", data={"_csrf": admin.csrf(login)}, timeout=60)
        admin.post_form("/group", {"group": "dirac_admin", "next": portal.root + "/config"})
        page = admin.page("/config", params={"path": "/Registry"})
        assert 'id="cs-edit"' in page.text
        done = admin.post_form("/config", {"path": "/Registry", "op": "set", "option": "PortalTest",
                                           "value": "set-from-the-portal"}, csrfFrom=page)
        assert "Set /Registry/PortalTest" in done.text
    with environmentOf(portal.grid.instance):
        api = CSAPI(proxyLocation=str(portal.grid.proxies["admin"]), useCertificates=False)
        assert api.initialize()["OK"]
        assert api.getOption("/Registry/PortalTest") == "set-from-the-portal"


def test_certificate_user_downloads_only_through_the_storage_element_service(portal, tmp_path):
    from dirac.DataManagementSystem.Client.DataManager import DataManager

    local = tmp_path / "bob.txt"
    local.write_text("bob's bytes\n")
    lfn = "/dirac/user/b/bob/portal/bob.txt"
    with environmentOf(portal.grid.instance):
        put = DataManager(proxyLocation=str(portal.grid.proxies["bob"]), useCertificates=False) \
            .putAndRegister(lfn, local, "OneBox-SE")
    assert put["OK"] and lfn in put["Value"]["Successful"], put
    cert, key = portal.grid.ca.issueUserCertificate("/O=DIRAC-Seed/OU=dirac/CN=bob")
    pem = tmp_path / "bob.pem"
    pem.write_bytes(cert + key)
    with PortalSession(portal, cert=str(pem)) as bob:
        login = bob.page("/login")
        bob.post(portal.root + "/login/certificate", data={"_csrf": bob.csrf(login)}, timeout=60)
        download = bob.page("/files/download", params={"lfn": lfn})
        assert download.status_code == 200, download.text[:300]
        assert download.content == b"bob's bytes\n"
