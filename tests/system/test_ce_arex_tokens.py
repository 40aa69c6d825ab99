"""A REAL ARC A-REX 6 accepting bearer tokens of the project's REAL OpenID Connect provider.

Two providers run (tests/servers/oidc, access tokens signed RS256: A-REX 6 reads only RSA keys from an
issuer's JWKS); A-REX (tests/servers/arex.sh) trusts the HTTPS CA of both, so it can verify the tokens of
either, and authorises the tokens of the first only (``arex.sh tokens <issuer> dirac``: an ``[authgroup]``
``authtokens`` rule). The AREX CE then authenticates with a token and nothing else (``AuthenticateWithToken``
true, no proxy, no delegation): its pilots run to Done, and the tokens A-REX must refuse (another issuer, another
audience, expired, ES256) are refused, the CE's error naming what the token says of itself. The last test runs
jobs to Done in pilots the SiteDirector of a token-only one-box grid (no pilot certificate) submits through A-REX.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from DIRACCommon.Core.Utilities import DErrno
from gridtools import (
    WMS,
    ceOptions,
    grantClient,
    jdl,
    pilotLogLines,
    pilotsOf,
    runningServer,
    serverScript,
    startedGrid,
    submit,
    tuning,
    waitFor,
    waitForPilot,
)
from idp import Provider, clientCredentialsToken, csOptions, runningProvider
from test_ce_arex import waitForStatuses

from dirac.Core.Security.CA import CertificateAuthority
from dirac.Resources.Computing.AREXComputingElement import AREXComputingElement
from dirac.Resources.Computing.ComputingElement import getComputingElement

pytestmark = pytest.mark.slow
AUDIENCE = "dirac"  # the audience of the provider's access tokens
SITE = "DIRAC.AREXTokens.local"

REPORT = """#!/bin/sh
echo "token=$(cat "$BEARER_TOKEN_FILE")"
[ -e "$X509_USER_PROXY" ] && echo "proxy=present" || echo "proxy=none"
"""


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, Provider]]:
    """The issuer A-REX accepts and another one, both real and RS256."""
    with runningProvider(tmp_path_factory.mktemp("accepted-idp"), accessTokenAlgorithm="RS256") as accepted, \
            runningProvider(tmp_path_factory.mktemp("other-idp"), accessTokenAlgorithm="RS256") as other:
        yield accepted, other


@pytest.fixture(scope="module")
def arex(providers: tuple[Provider, Provider]) -> Iterator[dict[str, str]]:
    accepted, other = providers
    with runningServer("arex") as settings:
        for provider in (accepted, other):  # A-REX can fetch both issuers' keys: only its rules tell them apart
            done = serverScript("arex", "trust", provider.caFile)
            assert done.returncode == 0, done.stderr
        done = serverScript("arex", "tokens", accepted.issuer, AUDIENCE)
        assert done.returncode == 0, done.stderr
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("X509_CERT_DIR", settings["AREX_CERTIFICATES"])  # the CE verifies A-REX's host certificate
            yield settings


def tokenCE(settings: dict[str, str], token: str) -> AREXComputingElement:
    ce = getComputingElement("AREX", settings["AREX_HOST"], {
        "Port": settings["AREX_PORT"], "Queue": settings["AREX_QUEUE"], "Timeout": "30",
        "AuthenticateWithToken": "true"})
    assert isinstance(ce, AREXComputingElement)
    ce.setToken(token)
    return ce


def forged(provider: Provider, keyFile: str, algorithm: str, **changes: object) -> str:
    """A token of ``provider`` signed with one of its real keys, a claim or two changed."""
    key = json.loads((provider.state / keyFile).read_text())
    claims = jwt.decode(clientCredentialsToken(provider), options={"verify_signature": False})
    return jwt.encode({**claims, **changes}, jwt.PyJWK(key).key, algorithm=algorithm,
                      headers={"kid": key["kid"], "typ": "at+jwt"})


def test_a_token_a_rex_accepts_is_the_ces_only_credential_and_its_pilots_run_to_done(
        arex: dict[str, str], providers: tuple[Provider, Provider], tmp_path: Path) -> None:
    token = clientCredentialsToken(providers[0])
    ce = tokenCE(arex, token)
    assert ce.proxy is None and ce.bearerToken == token
    script = tmp_path / "report.sh"
    script.write_text(REPORT)
    script.chmod(0o755)
    submitted = ce.submitJob(str(script), None, numberOfJobs=2)
    assert submitted["OK"], submitted["Message"]
    references = list(submitted["PilotStampDict"])
    assert len(references) == 2 and not ce.delegations, submitted  # no proxy: nothing delegated
    status = ce.getCEStatus()
    assert status["OK"] and status["Value"]["RunningJobs"] + status["Value"]["WaitingJobs"] >= 1, status
    assert set(waitForStatuses(ce, references).values()) == {"Done"}, [ce.statusReason(r) for r in references]
    for reference in references:
        assert ce.statusReason(reference) == "ARC job FINISHED"
        stdout, _ = ce.getJobOutput(reference)["Value"]
        # A-REX names a proxy file in X509_USER_PROXY in any case; with nothing delegated there is none
        assert f"token={token}\n" in stdout and "proxy=none\n" in stdout, stdout
    assert ce.cleanJob(references)["OK"]


@pytest.mark.parametrize("kind", ["another issuer", "another audience", "expired", "ES256"])
def test_a_token_a_rex_must_not_accept_is_refused_with_what_the_token_says(
        arex: dict[str, str], providers: tuple[Provider, Provider], kind: str, tmp_path: Path) -> None:
    accepted, other = providers
    token, reason = {
        "another issuer": (clientCredentialsToken(other), f"issuer {other.issuer}, audience {AUDIENCE}"),
        "another audience": (forged(accepted, "signing-key-rs256.jwk.json", "RS256", aud="another-service"),
                             f"issuer {accepted.issuer}, audience another-service"),
        "expired": (forged(accepted, "signing-key-rs256.jwk.json", "RS256", iat=int(time.time()) - 600,
                           exp=int(time.time()) - 300), f"issuer {accepted.issuer}, audience {AUDIENCE}"),
        # the issuer's own EC key, published in its JWKS: A-REX 6 cannot read EC keys
        "ES256": (forged(accepted, "signing-key.jwk.json", "ES256"), "signed ES256"),
    }[kind]
    assert tokenCE(arex, clientCredentialsToken(accepted)).getCEStatus()["OK"]  # the same call with a good token
    ce = tokenCE(arex, token)
    script = tmp_path / "never.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    for result in (ce.getCEStatus(), ce.submitJob(str(script), None)):
        assert not result["OK"] and result["Errno"] == DErrno.ENOAUTH, result
        assert "refused the token (403: User can't be assigned configuration)" in result["Message"], result
        assert reason in result["Message"], result["Message"]
        assert (re.search(r"expired \d+ s ago", result["Message"]) is not None) == (kind == "expired"), result


def test_jobs_run_to_done_in_token_pilots_the_site_director_submits_through_a_rex(
        arex: dict[str, str], providers: tuple[Provider, Provider], tmp_path: Path) -> None:
    accepted = providers[0]
    grantClient("arex")
    secret = tmp_path / "pilot-client.secret"
    secret.write_text(accepted.secret("dirac-pilot"))
    secret.chmod(0o600)
    tokens = "/Systems/Framework/Services/TokenManager/PilotTokens"
    options = {**tuning("localhost"), **csOptions(accepted),
               **ceOptions(SITE, "localhost", CEType="AREX", Port=arex["AREX_PORT"], Timeout="30",
                           AuthenticateWithToken="true"),
               f"{WMS}/Agents/SiteDirector/PilotTokens": "yes",
               f"{WMS}/Agents/JobAgent/UsePayloadProxy": "no",
               f"{tokens}/IdProvider": "TestIdP", f"{tokens}/client_id": "dirac-pilot",
               f"{tokens}/client_secret_file": str(secret)}
    noCertificate = {f"{WMS}/Agents/SiteDirector/PilotCertificate": "", f"{WMS}/Agents/SiteDirector/PilotKey": ""}
    try:
        with startedGrid(tmp_path, options, serverOptions=noCertificate) as instance:
            CertificateAuthority(arex["AREX_CA_DIR"]).installInCertificatesDir(instance.certificatesDir)
            jobIDs = submit(jdl("/bin/echo", "arex token pilot %s", Site=f'"{SITE}"', Parameters="2"))
            final = waitFor(jobIDs, timeout=240)
            assert {attrs["Status"] for attrs in final.values()} == {"Done"}, final
            references = {ref for jobID in jobIDs for ref in pilotsOf(jobID)}
            assert references and all(ref.startswith("arex://localhost/") for ref in references), references
            info = waitForPilot(sorted(references)[0], timeout=180)
            assert info["Status"] == "Done" and info["StatusReason"] == "localhost says Done: ARC job FINISHED", info
            lines = pilotLogLines(jobIDs[0], "credential: ")
            # A-REX names a proxy file in X509_USER_PROXY that it never wrote: the pilot goes with its token
            assert any("credential: access token in /" in line for line in lines), lines
            log = instance.logFile.read_text()
            assert "new pilot token for group dirac_pilot from TestIdP" in log
            assert "new pilot proxy" not in log and "delegated as" not in log
    finally:
        serverScript("arex", "revoke")
