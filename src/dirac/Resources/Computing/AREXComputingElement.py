"""AREXComputingElement: pilots submitted to an ARC CE (A-REX 6.x/7) through its REST interface.

The CE's name is the A-REX host; the interface is ``https://<CE>:<Port>/arex/rest/<RESTVersion>``.
The exchanges (all with ``Accept: application/json``):

* delegation: ``POST /delegations?action=new`` answers a PKCS#10 request (PEM) and its URL in
  ``Location`` (the delegation id is its last part); we sign a proxy for that request with the
  pilot proxy (``X509Chain.generateChainFromRequest``) and ``PUT /delegations/<id>`` the chain
  (``Content-Type: application/x-pem-file``). One delegation per identity (DN and group): a new
  pilot proxy renews it (``POST /delegations/<id>?action=renew`` answers a new request), so that
  the pilots already running get the new proxy as well.
* submission: ``POST /jobs?action=new`` with the xRSL (``application/rsl``, all pilots of a call in
  one multi-request) or one ADL document per pilot (``application/xml``), the xRSL naming the
  delegation (``delegationid``); the answer is ``{"job": {...}}`` or ``{"job": [{...}, ...]}``
  with ``status-code``, ``reason``, ``id`` per job; then the executable is pushed with
  ``PUT /jobs/<id>/session/<name>``.
* statuses: ``POST /jobs?action=status`` with ``{"job": [{"id": ...}, ...]}``; ``state`` per job,
  ``None`` with ``status-code`` 404 for a job A-REX does not know. The reason of a failed or
  killed job comes from ``POST /jobs?action=info`` (``ComputingActivity.Error``).
* output: ``GET /jobs/<id>/session/pilot.out`` and ``pilot.err`` (the session directory).
* kill and clean: ``POST /jobs?action=kill`` / ``action=clean`` with the same job list.
* CE status: ``GET /jobs`` (the jobs of our identity) and their statuses; none while the CE has no
  credential yet (the SiteDirector hands its pilot proxy over with the first submission).

Credentials: with a token (``setToken``) every request carries ``Authorization: Bearer <token>``
and no client certificate (with ``AuthenticateWithToken = False`` the CE keeps using its proxy);
otherwise TLS with the CE's proxy (``setProxy``), else the last pilot proxy given to ``submitJob``,
else ``$X509_USER_PROXY``. The server is verified against the CA directory (``$X509_CERT_DIR`` or
``/DIRAC/Security/CALocation``). The pilot proxy given to ``submitJob`` is always delegated, token
or not: it is the pilots' credential. A token set on the CE also goes with each pilot
(``pilot.token`` in the session directory, ``BEARER_TOKEN_FILE`` set by a small wrapper that runs
the pilot), as with the other CEs. A token A-REX refuses (401/403) is an authentication failure whose
message says what the token says of itself (issuer, audience, subject, algorithm, expiry): A-REX
itself answers only "403 User can't be assigned configuration".

Options: ``Port`` (443), ``RESTVersion`` (1.0), ``JobDescriptionLanguage`` (``xRSL`` or ``ADL``),
``XRSLExtraString`` (appended to each xRSL relation, e.g. ``(runtimeenvironment="ENV/SINGULARITY")``),
``Timeout`` (seconds per request, 60), ``AuthenticateWithToken`` (true). The ARC queue is the CS
queue's name (``nordugrid-<lrms>-<queue>`` names, DIRAC's convention, are cut to ``<queue>``).
References: ``arex://<CE>/<ARC job id>``.

ARC states -> pilot statuses: ACCEPTING, ACCEPTED, PREPARING, PREPARED, SUBMITTING, QUEUING, HELD ->
Waiting; RUNNING, EXITINGLRMS, EXECUTED, FINISHING, OTHER -> Running; FINISHED -> Done; FAILED ->
Failed; KILLING, KILLED, WIPED and jobs the CE no longer knows -> Aborted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import requests
from requests.adapters import HTTPAdapter

from dirac.Core.Security import Locations
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Security.Tokens import accessTokenClaims
from dirac.Core.Security.X509Chain import X509Chain
from dirac.Core.Utilities.Exceptions import ConfigurationError, DiracError
from dirac.Resources.Computing import AREXJobDescription as descriptions
from dirac.Resources.Computing.ComputingElement import (
    ABORTED,
    DONE,
    FAILED,
    RUNNING,
    UNKNOWN,
    WAITING,
    CEAuthenticationFailed,
    CEUnreachable,
    ComputingElement,
    ComputingElementError,
    SubmissionError,
    UnknownJobReference,
    edgeMethod,
    newStamp,
)
from dirac.Resources.Computing.ProcessUtilities import readCredential

DEFAULT_PORT = 443
ARC_STATES = {
    **dict.fromkeys(("ACCEPTING", "ACCEPTED", "PREPARING", "PREPARED", "SUBMITTING", "QUEUING", "HELD"), WAITING),
    **dict.fromkeys(("RUNNING", "EXITINGLRMS", "EXECUTED", "FINISHING", "OTHER"), RUNNING),
    "FINISHED": DONE,
    "FAILED": FAILED,
    **dict.fromkeys(("KILLING", "KILLED", "WIPED", "NONE"), ABORTED),
}
_ARC_ID = re.compile(r"^[A-Za-z0-9_-]+$")


class _ContextAdapter(HTTPAdapter):
    """An HTTPS adapter using our SSL context (the client certificate loaded from memory-held PEM)."""

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self.context
        super().init_poolmanager(*args, **kwargs)


def jobEntries(payload: Any) -> list[dict[str, Any]]:
    """The per-job entries of an A-REX answer: ``{"job": {...}}`` or ``{"job": [...]}`` (one or many)."""
    if not isinstance(payload, Mapping) or "job" not in payload:
        raise ComputingElementError(f"unexpected A-REX answer (no 'job'): {str(payload)[:200]}")
    entries = payload["job"]
    return [entries] if isinstance(entries, Mapping) else list(entries)


def describeToken(token: str) -> str:
    """What a refused token says of itself (unverified): issuer, audience, subject, algorithm and expiry."""
    claims = accessTokenClaims({"access_token": token})
    if not claims:
        return "the token is not a JWT"
    try:
        algorithm = jwt.get_unverified_header(token).get("alg", "?")
    except jwt.PyJWTError:
        algorithm = "?"
    audience = claims.get("aud")
    parts = [f"issuer {claims.get('iss', '(none)')}",
             f"audience {', '.join(audience) if isinstance(audience, list) else audience or '(none)'}",
             f"subject {claims.get('sub', '(none)')}", f"signed {algorithm}"]
    if isinstance(claims.get("exp"), int | float):
        left = int(claims["exp"] - time.time())
        parts.append(f"expired {-left} s ago" if left < 0 else f"valid {left} s more")
    return ", ".join(parts)


def arcStatus(entry: Mapping[str, Any]) -> tuple[str, str]:
    """(pilot status, reason) of one entry of an ``action=status`` answer."""
    state = str(entry.get("state") or "None").upper()
    if str(entry.get("status-code")) == "404" or state == "NONE":
        return ABORTED, f"the ARC CE does not know the job ({entry.get('reason') or 'Job not found'})"
    return ARC_STATES.get(state, UNKNOWN), f"ARC job {state}"


class AREXComputingElement(ComputingElement):
    """Pilots as ARC jobs through A-REX's REST interface (ADL or xRSL, proxy delegation, bearer tokens)."""

    ceType = "AREX"
    referenceScheme = "arex"

    def __init__(self, ceName: str, parameters: Mapping[str, Any] | None = None):
        super().__init__(ceName, parameters)
        language = str(self.ceParameters.get("JobDescriptionLanguage") or "xRSL")
        matching = [known for known in descriptions.LANGUAGES if known.lower() == language.lower()]
        if not matching:
            raise ConfigurationError(f"CE {ceName}: JobDescriptionLanguage={language!r} is not one of "
                                     f"{', '.join(descriptions.LANGUAGES)}")
        self.language = matching[0]
        self._session: requests.Session | None = None
        self._sessionKey: tuple[str, str] | None = None
        self._submitProxy: bytes | None = None
        self.delegations: dict[str, str] = {}  # sha256 of a pilot proxy -> its delegation id on the CE
        self.identityDelegations: dict[tuple[str, str], str] = {}  # (DN, group) -> delegation id

    # -- options ----------------------------------------------------------------------------------------
    @property
    def baseURL(self) -> str:
        version = str(self.ceParameters.get("RESTVersion") or "1.0")
        return f"https://{self.ceName}:{int(self.castOption('Port', DEFAULT_PORT))}/arex/rest/{version}"

    @property
    def timeout(self) -> float:
        return float(self.castOption("Timeout", 60.0))

    @property
    def arcQueue(self) -> str:
        queue = str(self.getParameter("Queue") or "")
        if queue.startswith("nordugrid-") and queue.count("-") >= 2:
            return queue.split("-", 2)[2]
        return queue

    # -- HTTP -------------------------------------------------------------------------------------------
    @property
    def bearerToken(self) -> str | None:
        """The token the CE authenticates with (None: TLS with a proxy); ``AuthenticateWithToken = False``
        keeps the token for the pilots only."""
        return self.token if self.token and self.castOption("AuthenticateWithToken", True) else None

    def _credential(self) -> bytes | None:
        if self.bearerToken:
            return None
        if self.proxy is not None:
            return self.proxy
        if self._submitProxy is not None:
            return self._submitProxy
        location = Locations.getProxyLocation()
        if os.path.isfile(location):
            return readCredential(location)
        raise CEAuthenticationFailed(f"CE {self.ceName}: no credential: set a token or a proxy, or submit with one")

    def _sslContext(self, credential: bytes | None) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies; trusts only the CA directory (session.verify)
        if credential is not None:  # load_cert_chain reads files only: a private file that lives for this call
            handle, name = tempfile.mkstemp(prefix="arex-", suffix=".pem")
            os.close(handle)
            try:
                writePrivateFile(Path(name), credential)
                context.load_cert_chain(name)
            except ssl.SSLError as exc:
                raise CEAuthenticationFailed(f"CE {self.ceName}: the proxy cannot be used for TLS: {exc}") from exc
            finally:
                os.unlink(name)
        return context

    def session(self) -> requests.Session:
        """The HTTPS session for the current credential (made again when the credential changes)."""
        credential = self._credential()
        key = (hashlib.sha256(credential).hexdigest() if credential else "", self.bearerToken or "")
        if self._session is None or key != self._sessionKey:
            self.close()
            session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment must not apply
            session.verify = Locations.getCAsLocation()
            session.mount("https://", _ContextAdapter(self._sslContext(credential)))
            session.headers["Accept"] = "application/json"
            if self.bearerToken:
                session.headers["Authorization"] = f"Bearer {self.bearerToken}"
            self._session, self._sessionKey = session, key
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session, self._sessionKey = None, None

    def request(self, method: str, path: str, *, action: str = "", data: bytes | str | None = None,
                contentType: str = "", allowed: tuple[int, ...] = ()) -> requests.Response:
        """One REST call (``path`` under the base URL); typed errors for transport, authentication and HTTP errors."""
        url = f"{self.baseURL}/{path}"
        headers = {"Content-Type": contentType} if contentType else {}
        try:
            response = self.session().request(method, url, params={"action": action} if action else None, data=data,
                                              headers=headers, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise CEAuthenticationFailed(f"CE {self.ceName}: TLS with {url} failed (certificate refused or "
                                         f"untrusted): {exc}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise CEUnreachable(f"CE {self.ceName}: {url} cannot be reached: {exc}") from exc
        if response.status_code in (401, 403) and self.bearerToken:
            raise CEAuthenticationFailed(
                f"CE {self.ceName}: {method} {url} refused the token ({response.status_code}: {response.reason}); "
                f"the token: {describeToken(self.bearerToken)}; A-REX accepts the tokens of the issuers and audiences "
                f"its [authgroup] authtokens rules name, with keys it fetches from the issuer over HTTPS "
                f"(RSA keys only in ARC 6)")
        if response.status_code in (401, 403):
            raise CEAuthenticationFailed(f"CE {self.ceName}: {method} {url} refused ({response.status_code}): "
                                         f"{response.reason} {response.text[:200]}".rstrip())
        if response.status_code >= 400 and response.status_code not in allowed:
            raise ComputingElementError(f"CE {self.ceName}: {method} {url}{'?action=' + action if action else ''} "
                                        f"failed ({response.status_code} {response.reason}): {response.text[:300]}")
        return response

    def _jobsAction(self, action: str, arcIDs: list[str]) -> list[dict[str, Any]]:
        body = json.dumps({"job": [{"id": arcID} for arcID in arcIDs]})
        response = self.request("POST", "jobs", action=action, data=body, contentType="application/json")
        try:
            return jobEntries(response.json())
        except ValueError as exc:
            raise ComputingElementError(f"CE {self.ceName}: action={action} answered no JSON: {exc}") from exc

    # -- delegation -------------------------------------------------------------------------------------
    def delegate(self, proxy: bytes) -> str:
        """The id of a delegation on the CE holding a proxy signed with ``proxy``.

        One delegation per identity (DN and group): a new proxy of an identity already delegated
        renews that delegation (``action=renew``), so the pilots already running get the new proxy too.
        """
        digest = hashlib.sha256(proxy).hexdigest()
        if digest in self.delegations:
            return self.delegations[digest]
        chain = X509Chain.fromPEM(proxy)
        if not chain.hasKey:
            raise SubmissionError(f"CE {self.ceName}: the pilot proxy has no private key: it cannot be delegated")
        identity = (chain.identityDN, chain.diracGroup or "")
        delegationID = self.identityDelegations.get(identity, "")
        if delegationID:
            try:
                response = self.request("POST", f"delegations/{delegationID}", action="renew")
            except ComputingElementError as exc:  # e.g. removed by the CE: make a new one
                self.log.warning("CE %s: delegation %s cannot be renewed: %s", self.ceName, delegationID, exc.message)
                delegationID = ""
        if not delegationID:
            response = self.request("POST", "delegations", action="new")
            location = response.headers.get("Location", "")
            delegationID = location.rstrip("/").rsplit("/", 1)[-1]
            if not location or not _ARC_ID.match(delegationID):
                raise ComputingElementError(f"CE {self.ceName}: unexpected answer to a new delegation: Location "
                                            f"{location!r}")
        if "BEGIN CERTIFICATE REQUEST" not in response.text:
            raise ComputingElementError(f"CE {self.ceName}: delegation {delegationID}: no certificate request in the "
                                        f"answer: {response.text[:100]!r}")
        signed = chain.generateChainFromRequest(response.text, max(chain.remainingSeconds, 0))
        self.request("PUT", f"delegations/{delegationID}", data=signed.certificatesPEM(),
                     contentType="application/x-pem-file")
        self.log.info("CE %s: proxy of %s delegated as %s (valid %d s)", self.ceName, chain.identityDN, delegationID,
                      signed.remainingSeconds)
        self.delegations[digest] = self.identityDelegations[identity] = delegationID
        return delegationID

    # -- references ---------------------------------------------------------------------------------------
    def _arcID(self, reference: str) -> str:
        return self.ownJobID(reference, _ARC_ID, "<ARC job id>")

    # -- the hooks ----------------------------------------------------------------------------------------
    def _pushedFiles(self, executable: Path) -> dict[str, bytes]:
        """{name in the session directory: content} of each pilot; the first is the job's executable."""
        if not self.token:
            return {executable.name: executable.read_bytes()}
        if executable.name in (descriptions.WRAPPER, descriptions.TOKEN_FILE):
            raise SubmissionError(f"CE {self.ceName}: the executable may not be called {executable.name}")
        return {descriptions.WRAPPER: descriptions.tokenWrapper(executable.name).encode(),
                executable.name: executable.read_bytes(), descriptions.TOKEN_FILE: self.token.encode()}

    def _pilots(self, files: list[str], numberOfJobs: int, delegationID: str) -> list[descriptions.PilotDescription]:
        return [descriptions.PilotDescription(
            executable=files[0], stamp=newStamp(), queue=self.arcQueue, processors=self.numberOfProcessors,
            memoryMB=int(self.getParameter("MaxRAM")), cpuTimeMinutes=(self.cpuTime() + 59) // 60,
            delegationID=delegationID, inputs=files[1:], executables=files[1:2]) for _ in range(numberOfJobs)]

    def _createJobs(self, pilots: list[descriptions.PilotDescription]) -> list[dict[str, Any]]:
        if self.language == "xRSL":
            extra = str(self.ceParameters.get("XRSLExtraString") or "")
            documents = [(descriptions.xrslBulk(pilots, extra), "application/rsl")]
        else:
            documents = [(descriptions.adl(pilot), "application/xml") for pilot in pilots]
        entries: list[dict[str, Any]] = []
        for document, contentType in documents:
            try:
                response = self.request("POST", "jobs", action="new", data=document, contentType=contentType)
                entries += jobEntries(response.json())
            except (CEAuthenticationFailed, CEUnreachable):
                raise
            except ComputingElementError as exc:
                if not entries:
                    raise SubmissionError(exc.message) from exc
                self.log.warning("CE %s: %s", self.ceName, exc.message)  # keep the pilots already created
                break
            except ValueError as exc:
                raise SubmissionError(f"CE {self.ceName}: action=new answered no JSON: {exc}") from exc
        return entries

    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any
                    ) -> dict[str, str]:
        if proxy is not None:
            self._submitProxy = proxy
        delegationID = self.delegate(proxy) if proxy is not None else ""
        files = self._pushedFiles(Path(executableFile))
        pilots = self._pilots(list(files), numberOfJobs, delegationID)
        entries = self._createJobs(pilots)
        references: dict[str, str] = {}
        refused = []
        for pilot, entry in zip(pilots, entries, strict=False):
            arcID = str(entry.get("id") or "")
            if int(str(entry.get("status-code") or 0)) >= 400 or not _ARC_ID.match(arcID):
                refused.append(f"{entry.get('status-code')} {entry.get('reason')}")
                continue
            reference = f"{self.referenceScheme}://{self.ceName}/{arcID}"
            try:
                for name, content in files.items():
                    self.request("PUT", f"jobs/{arcID}/session/{name}", data=content,
                                 contentType="application/octet-stream")
            except DiracError as exc:
                refused.append(f"{arcID}: {name} could not be uploaded: {exc.message}")
                self._forget([arcID])
                continue
            references[reference] = pilot.stamp
            self.log.info("%s: pilot submitted to %s (stamp %s)", reference, self.ceName, pilot.stamp)
        if not references:
            raise SubmissionError(f"CE {self.ceName}: no pilot accepted: {'; '.join(refused) or 'no job in the answer'}")
        if refused:
            self.log.warning("CE %s: %d pilot(s) refused: %s", self.ceName, len(refused), "; ".join(refused))
        return references

    def _forget(self, arcIDs: list[str]) -> None:
        """Kill and clean jobs we will not follow (e.g. whose executable could not be uploaded)."""
        for action in ("kill", "clean"):
            try:
                self._jobsAction(action, arcIDs)
            except DiracError as exc:
                self.log.warning("CE %s: %s of %s failed: %s", self.ceName, action, arcIDs, exc.message)

    def _getJobStatus(self, references: list[str]) -> dict[str, str]:
        ids, statuses = self.splitReferences(references, self._arcID)
        if not ids:
            return statuses
        failed = []
        for entry in self._jobsAction("status", list(ids)):
            reference = ids.get(str(entry.get("id")))
            if reference is None:
                continue
            statuses[reference], self.statusReasons[reference] = arcStatus(entry)
            if statuses[reference] in (FAILED, ABORTED) and str(entry.get("status-code")) != "404":
                failed.append(str(entry["id"]))
        for reference in ids.values():
            if reference not in statuses:
                statuses[reference] = UNKNOWN
                self.statusReasons[reference] = "missing from the ARC CE's answer"
        if failed:
            self._addErrors(failed, ids)
        return statuses

    def _addErrors(self, arcIDs: list[str], ids: Mapping[str, str]) -> None:
        """Append A-REX's error text (ComputingActivity.Error) to the reasons of failed or killed jobs."""
        try:
            entries = self._jobsAction("info", arcIDs)
        except DiracError as exc:
            self.log.warning("CE %s: no error details for %s: %s", self.ceName, arcIDs, exc.message)
            return
        for entry in entries:
            activity = (entry.get("info_document") or {}).get("ComputingActivity") or {}
            errors = activity.get("Error")
            if errors and str(entry.get("id")) in ids:
                text = "; ".join(errors) if isinstance(errors, list) else str(errors)
                reference = ids[str(entry["id"])]
                self.statusReasons[reference] += f": {text}"

    def _getJobOutput(self, reference: str) -> tuple[str, str]:
        arcID = self._arcID(reference)
        texts = []
        for name in (descriptions.STDOUT, descriptions.STDERR):
            response = self.request("GET", f"jobs/{arcID}/session/{name}", allowed=(404,))
            if response.status_code == 404 and name == descriptions.STDOUT:
                listing = self.request("GET", f"jobs/{arcID}/session", allowed=(404,))
                if listing.status_code == 404:
                    raise UnknownJobReference(f"CE {self.ceName}: {reference}: the ARC CE does not know the job")
            texts.append(response.text if response.status_code == 200 else "")
        return texts[0], texts[1]

    def _killJobs(self, references: list[str]) -> None:
        self._act("kill", references)

    @edgeMethod
    def cleanJob(self, jobIDList: list[str] | str) -> None:
        """Remove the jobs and their session directories from the ARC CE (``action=clean``)."""
        self._act("clean", [jobIDList] if isinstance(jobIDList, str) else list(jobIDList))

    def _act(self, action: str, references: list[str]) -> None:
        ids = {self._arcID(reference): reference for reference in references}
        if not ids:
            return
        problems = [f"{ids.get(str(entry.get('id')), entry.get('id'))}: {entry.get('status-code')} "
                    f"{entry.get('reason')}" for entry in self._jobsAction(action, list(ids))
                    if int(str(entry.get("status-code") or 0)) >= 400]
        if problems:
            raise ComputingElementError(f"CE {self.ceName}: {action} refused for {'; '.join(problems)}")

    def _getCEStatus(self) -> dict[str, Any]:
        if not self.bearerToken and self.proxy is None and self._submitProxy is None \
                and not os.path.isfile(Locations.getProxyLocation()):
            # the SiteDirector gives its pilot proxy with the first submission only: until then our jobs on
            # the CE cannot be listed, and its own pilot counts (MaxTotalJobs, MaxWaitingJobs) are the limit
            self.log.info("CE %s: no credential yet to count our jobs on it: counted as none", self.ceName)
            return {"RunningJobs": 0, "WaitingJobs": 0}
        listing = self.request("GET", "jobs")
        arcIDs = [str(entry.get("id")) for entry in jobEntries(listing.json())] if listing.text.strip() else []
        counts = {RUNNING: 0, WAITING: 0}
        if arcIDs:
            for entry in self._jobsAction("status", arcIDs):
                status, _ = arcStatus(entry)
                if status in counts:
                    counts[status] += 1
        return {"RunningJobs": counts[RUNNING], "WaitingJobs": counts[WAITING]}
