"""AREXComputingElement against a REAL ARC CE: NorduGrid A-REX 6 (Debian's nordugrid-arc-arex) with the fork back end.

tests/servers/arex.sh runs A-REX on 127.0.0.1 (host certificate from the project's CA, REST
interface, jobs run as its user ``diracarc``). This module makes its own CA and pilot identity,
has A-REX trust the CA and authorise the identity (``arex.sh trust``/``allow``), and drives the
CE through every REST exchange: delegation, submission (xRSL and ADL), status, output, kill,
clean. The pilots of all tests are submitted at once by a module fixture so that their waits
overlap (A-REX publishes job states through its information provider, every 10 s here). The last
test runs real jobs to Done in pilots the SiteDirector of a one-box grid submits through A-REX.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from DIRACCommon.Core.Utilities import DErrno
from gridtools import (
    ceOptions,
    grantClient,
    jdl,
    pilotsOf,
    runningServer,
    serverScript,
    startedGrid,
    submit,
    tuning,
    waitFor,
    waitForPilot,
)

from dirac.Core.Security.CA import CertificateAuthority
from dirac.Core.Security.X509Certificate import X509Certificate
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Resources.Computing.AREXComputingElement import AREXComputingElement
from dirac.Resources.Computing.ComputingElement import getComputingElement

pytestmark = pytest.mark.slow
PILOT_DN = "/O=DIRAC-Seed/OU=arex/CN=pilot factory"
FINAL = ("Done", "Failed", "Aborted")

REPORT = """#!/bin/sh
echo "stamp=$DIRAC_PILOT_STAMP"
openssl x509 -in "$X509_USER_PROXY" -noout -issuer
echo "to stderr" >&2
"""

TOKEN_REPORT = """#!/bin/sh
cd /
echo "token file=$BEARER_TOKEN_FILE"
echo "token=$(cat "$BEARER_TOKEN_FILE")"
"""


@dataclass
class Arex:
    settings: dict[str, str]
    root: Path
    ca: CertificateAuthority
    user: X509Chain
    proxy: bytes
    submitted: dict[str, tuple[AREXComputingElement, dict[str, str]]] = field(default_factory=dict)

    def ce(self, **options: str) -> AREXComputingElement:
        ce = getComputingElement("AREX", self.settings["AREX_HOST"], {
            "Port": self.settings["AREX_PORT"], "Queue": self.settings["AREX_QUEUE"], "MaxTotalJobs": "20",
            "MaxWaitingJobs": "20", "Timeout": "30", **options})
        assert isinstance(ce, AREXComputingElement)
        return ce

    def script(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        path.chmod(0o755)
        return str(path)

    def submit(self, name: str, ce: AREXComputingElement, script: str, number: int = 1) -> None:
        result = ce.submitJob(script, self.proxy, numberOfJobs=number)
        assert result["OK"], result["Message"]
        self.submitted[name] = (ce, result["PilotStampDict"])


def waitForStatuses(ce: AREXComputingElement, references: list[str], wanted: tuple[str, ...] = FINAL,
                    timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        result = ce.getJobStatus(references)
        assert result["OK"], result["Message"]
        if all(status in wanted for status in result["Value"].values()):
            return result["Value"]
        assert time.monotonic() < deadline, f"still {result['Value']} after {timeout} s"
        time.sleep(2)


@pytest.fixture(scope="module")
def arex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arex]:
    root = tmp_path_factory.mktemp("arex")
    with runningServer("arex") as settings:
        ca = CertificateAuthority(root / "ca")
        ca.create(subject="/O=DIRAC-Seed/CN=AREX test client CA")
        ca.installInCertificatesDir(root / "certificates")
        for action, argument in (("trust", str(root / "certificates")), ("allow", PILOT_DN)):
            done = serverScript("arex", action, argument)
            assert done.returncode == 0, done.stderr
        cert, key = ca.issueUserCertificate(PILOT_DN)
        user = X509Chain.fromPEM(cert + key)
        proxy = user.generateProxy(7200, group="dirac_pilot").toPEM()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("X509_CERT_DIR", settings["AREX_CERTIFICATES"])  # A-REX's CA and ours
            yield Arex(settings, root, ca, user, proxy)


@pytest.fixture(scope="module")
def submitted(arex: Arex) -> Arex:
    """Every test's pilots, submitted before the first test waits."""
    xrslCE = arex.ce()
    arex.submit("report", xrslCE, arex.script("report.sh", REPORT), number=2)
    arex.submit("fail", xrslCE, arex.script("fail.sh", "#!/bin/sh\necho failing\nexit 3\n"))
    arex.submit("sleep", xrslCE, arex.script("sleep.sh", "#!/bin/sh\nsleep 600\n"))
    arex.submit("adl", arex.ce(JobDescriptionLanguage="ADL"), arex.script("report-adl.sh", REPORT))
    for language in ("xRSL", "ADL"):  # a token for the pilots, the CE itself with its proxy
        tokenCE = arex.ce(JobDescriptionLanguage=language, AuthenticateWithToken="false")
        tokenCE.setProxy(arex.proxy)
        tokenCE.setToken(f"pilot-token-{language}")
        arex.submit(f"token-{language}", tokenCE, arex.script("token.sh", TOKEN_REPORT))
    return arex


def test_pilots_run_to_done_with_their_stamps_and_a_proxy_delegated_from_the_pilot_proxy(submitted: Arex) -> None:
    ce, stamps = submitted.submitted["report"]
    assert len(stamps) == 2 and all(ref.startswith("arex://localhost/") for ref in stamps)
    assert len(ce.delegations) == 1  # one delegation for every pilot of the proxy
    assert set(waitForStatuses(ce, list(stamps)).values()) == {"Done"}
    for reference, stamp in stamps.items():
        assert ce.statusReason(reference) == "ARC job FINISHED"
        output = ce.getJobOutput(reference)
        assert output["OK"], output["Message"]
        stdout, stderr = output["Value"]
        assert f"stamp={stamp}\n" in stdout, stdout
        # the job's proxy was signed by our pilot proxy: its issuer is the pilot proxy's subject
        assert "CN = pilot factory, CN = " in stdout, stdout
        assert stderr == "to stderr\n"


def test_an_adl_pilot_runs_to_done_as_well(submitted: Arex) -> None:
    ce, stamps = submitted.submitted["adl"]
    [(reference, stamp)] = stamps.items()
    assert waitForStatuses(ce, [reference]) == {reference: "Done"}
    stdout, _ = ce.getJobOutput(reference)["Value"]
    assert f"stamp={stamp}\n" in stdout and "CN = pilot factory, CN = " in stdout, stdout


@pytest.mark.parametrize("language", ["xRSL", "ADL"])
def test_a_token_set_on_the_ce_goes_with_its_pilots_as_an_absolute_bearer_token_file(submitted: Arex,
                                                                                     language: str) -> None:
    ce, stamps = submitted.submitted[f"token-{language}"]
    [reference] = stamps
    assert waitForStatuses(ce, [reference]) == {reference: "Done"}, ce.statusReason(reference)
    stdout, stderr = ce.getJobOutput(reference)["Value"]
    assert f"token=pilot-token-{language}\n" in stdout, (stdout, stderr)
    tokenFile = stdout.split("token file=", 1)[1].split("\n", 1)[0]
    assert tokenFile.startswith("/") and tokenFile.endswith("/pilot.token"), stdout


def test_a_pilot_exiting_non_zero_is_failed_with_the_arc_error(submitted: Arex) -> None:
    ce, stamps = submitted.submitted["fail"]
    [reference] = stamps
    assert waitForStatuses(ce, [reference]) == {reference: "Failed"}
    reason = ce.statusReason(reference)
    assert reason.startswith("ARC job FAILED: ") and "exit code" in reason, reason
    assert ce.getJobOutput(reference)["Value"][0] == "failing\n"


def test_a_killed_pilot_is_aborted_and_a_cleaned_one_is_gone(submitted: Arex) -> None:
    ce, stamps = submitted.submitted["sleep"]
    [reference] = stamps
    waitForStatuses(ce, [reference], wanted=("Running",))
    status = ce.getCEStatus()
    assert status["OK"] and status["Value"]["RunningJobs"] >= 1, status
    assert ce.killJob(reference)["OK"]
    assert waitForStatuses(ce, [reference]) == {reference: "Aborted"}
    reason = ce.statusReason(reference)  # KILLING until A-REX has seen the process end, then KILLED
    assert reason.startswith("ARC job KILL") and "canceled by external request" in reason, reason
    assert ce.cleanJob(reference)["OK"]
    deadline = time.monotonic() + 60  # A-REX removes the job once it has ended
    while "does not know the job" not in ce.statusReason(reference):
        assert time.monotonic() < deadline, ce.statusReason(reference)
        time.sleep(2)
        assert ce.getJobStatus([reference])["Value"] == {reference: "Aborted"}
    output = ce.getJobOutput(reference)
    assert not output["OK"] and output["Errno"] == DErrno.ERESUNK, output


def test_a_new_pilot_proxy_renews_the_delegation_of_its_identity_and_another_group_gets_its_own(arex: Arex
                                                                                                 ) -> None:
    ce = arex.ce()
    ce.setProxy(arex.proxy)
    first = ce.delegate(arex.proxy)
    newer = arex.user.generateProxy(7200, group="dirac_pilot").toPEM()
    assert ce.delegate(newer) == first
    held = X509Chain.fromPEM(ce.request("POST", f"delegations/{first}", action="get").text)
    assert held.certs[1] == X509Chain.fromPEM(newer).leaf  # what A-REX holds is signed by the newer proxy
    assert ce.delegate(arex.user.generateProxy(7200, group="dirac_user").toPEM()) != first


def test_pilots_a_rex_refuses_are_a_submission_error_with_its_reason(arex: Arex) -> None:
    script = arex.script("never.sh", "#!/bin/sh\ntrue\n")
    for options, reason in (({"Queue": "nosuchqueue"}, "500 Requested queue nosuchqueue is not allowed"),
                            ({"XRSLExtraString": "(broken"}, "500 nordugrid:xrsl parsing error")):
        result = arex.ce(**options).submitJob(script, arex.proxy)
        assert not result["OK"] and result["Errno"] == DErrno.EWMSSUBM, result
        assert f"no pilot accepted: {reason}" in result["Message"], result["Message"]


def test_an_identity_a_rex_does_not_authorise_is_refused(arex: Arex) -> None:
    cert, key = arex.ca.issueUserCertificate("/O=DIRAC-Seed/OU=arex/CN=stranger")
    stranger = X509Chain.fromPEM(cert + key).generateProxy(3600).toPEM()
    ce = arex.ce()
    ce.setProxy(stranger)
    result = ce.submitJob(arex.script("never.sh", "#!/bin/sh\ntrue\n"), stranger)
    assert not result["OK"] and result["Errno"] == DErrno.ENOAUTH, result
    assert "403" in result["Message"]


def test_a_token_replaces_the_proxy_and_a_token_a_rex_does_not_accept_is_refused(arex: Arex) -> None:
    ce = arex.ce()
    ce.setProxy(arex.proxy)
    assert ce.getCEStatus()["OK"]
    ce.setToken("not-a-token-a-rex-knows")
    result = ce.getCEStatus()
    assert not result["OK"] and result["Errno"] == DErrno.ENOAUTH, result
    result = ce.submitJob(arex.script("never.sh", "#!/bin/sh\ntrue\n"), None)  # a token pilot: no delegation
    assert not result["OK"] and result["Errno"] == DErrno.ENOAUTH and "403" in result["Message"], result


def test_a_ce_that_does_not_answer_is_unreachable(arex: Arex) -> None:
    ce = getComputingElement("AREX", "localhost", {"Port": "1", "Queue": "default"})
    ce.setProxy(arex.proxy)
    result = ce.getCEStatus()
    assert not result["OK"] and "cannot be reached" in result["Message"], result


# -- pilots of a one-box grid through A-REX --------------------------------------------------------------
SITE = "DIRAC.AREX.local"


def test_jobs_run_to_done_in_pilots_the_site_director_submits_through_a_rex(arex: Arex,
                                                                           tmp_path: Path) -> None:
    grantClient("arex")
    options = {**tuning("localhost"),
               **ceOptions(SITE, "localhost", CEType="AREX", Port=arex.settings["AREX_PORT"], Timeout="30")}
    try:
        with startedGrid(tmp_path, options) as instance:
            # A-REX trusts the grid's CA and lets the pilot identity in; the grid trusts A-REX's CA
            trusted = serverScript("arex", "trust", str(instance.certificatesDir))
            assert trusted.returncode == 0, trusted.stderr
            allowed = serverScript("arex", "allow", X509Certificate.fromFile(instance.pilotCert).subjectDN)
            assert allowed.returncode == 0, allowed.stderr
            CertificateAuthority(arex.settings["AREX_CA_DIR"]).installInCertificatesDir(instance.certificatesDir)
            jobIDs = submit(jdl("/bin/echo", "arex %s", Site=f'"{SITE}"', Parameters="2"))
            final = waitFor(jobIDs, timeout=240)
            assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
            references = {ref for jobID in jobIDs for ref in pilotsOf(jobID)}
            assert references and all(ref.startswith("arex://localhost/") for ref in references), references
            info = waitForPilot(sorted(references)[0], timeout=180)
            assert info["Status"] == "Done" and info["StatusReason"] == "localhost says Done: ARC job FINISHED", info
    finally:
        serverScript("arex", "revoke")
