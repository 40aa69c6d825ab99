"""CloudComputingElement (CEType ``Cloud``): each pilot in its own VM on an OpenStack cloud, through apache-libcloud.

One pilot = one Nova server booted from ``Image`` with ``Flavor`` on ``Networks``, named
``dirac-pilot-<stamp>`` and tagged with the metadata ``dirac-ce`` (the CE's name),
``dirac-queue``, ``dirac-site`` and ``dirac-stamp``. Its cloud-init user data (CloudInit.py)
writes the pilot wrapper and the pilot proxy (or token), runs the pilot and powers the VM off
when the pilot ends. References: ``cloud://<CE>/<server id>``.

Options (CS, CE or queue section):

* ``CloudType``: ``OpenStack`` (the only provider so far);
* ``AuthURL``: the Keystone URL, e.g. ``https://keystone.example.org:5000`` (``/v3/auth/tokens``
  is added); ``Region`` (``RegionOne``): the region of the compute, image and network endpoints;
* Keystone v3 credentials, either an application credential (``ApplicationCredentialID`` and
  ``ApplicationCredentialSecret``) or a user (``UserName``, ``Password``, ``ProjectName``,
  ``UserDomainName`` = ``Default``, ``ProjectDomainID`` = ``default``); ``SecretFile``: a file
  (readable by the SiteDirector only) holding the secret or password instead of the CS;
* ``Image``, ``Flavor``: name or ID (required); ``Networks``: names or IDs (none: the cloud's
  default); ``KeyName``: an SSH key pair injected into the VMs (for debugging);
* ``MaxInstances`` (``MaxTotalJobs``): VMs of this CE (all its queues) alive at once;
* ``InstanceLifetime`` (172800 s): a VM older than this is deleted; the pilot inside gets
  ``InstanceLifetime - 600`` seconds (``timeout``) so that it normally ends and powers off first;
* ``ConsoleLines`` (1000): lines of console output kept as the output of an ended pilot;
* ``Timeout`` (60 s): of each API request; ``WorkingDirectory`` (optional): where the statuses
  and outputs of deleted VMs are kept, so that a restarted SiteDirector still finds them.

Statuses: ``BUILD`` -> Waiting; ``ACTIVE`` (and rebooting, resizing, suspended) -> Running;
``SHUTOFF`` -> the pilot ended: Done (exit code 0 in the console), Failed (another exit code) or
Aborted (no exit code: powered off from outside); ``ERROR`` -> Failed with Nova's fault message;
a VM past its lifetime -> Aborted. Ended, failed and expired VMs are deleted as soon as the CE sees
them (status reads and ``available``), after their status and console output are recorded. A
server that no longer exists and was not recorded is Deleted. ``killJob`` deletes the VM.

Liveness: a pilot's heartbeat is the VM's Nova status plus what the pilot itself reports to the
WMS (its jobs' heartbeats); a pilot that hangs is ended by its ``timeout`` and, failing that, its
VM by ``InstanceLifetime``. No credential of the cloud ever goes into a VM.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.CloudInit import pilotExitCode, pilotUserData
from dirac.Resources.Computing.ComputingElement import (
    ABORTED,
    DELETED,
    DONE,
    FAILED,
    PILOT_FINAL_STATES,
    RUNNING,
    UNKNOWN,
    WAITING,
    CEAuthenticationFailed,
    CEUnreachable,
    ComputingElement,
    ComputingElementError,
    NotEnoughSlots,
    SubmissionError,
    UnknownJobReference,
    newStamp,
)

OPTION_DEFAULTS: dict[str, Any] = {
    "CloudType": "OpenStack", "AuthURL": "", "Region": "RegionOne",
    "ApplicationCredentialID": "", "ApplicationCredentialSecret": "", "UserName": "", "Password": "",
    "ProjectName": "", "UserDomainName": "Default", "ProjectDomainID": "default", "SecretFile": "",
    "Image": "", "Flavor": "", "Networks": [], "KeyName": "", "MaxInstances": 0,
    "InstanceLifetime": 172800, "ConsoleLines": 1000, "Timeout": 60.0,
}
#: seconds of its lifetime a VM keeps for powering off after the pilot's timeout
SHUTDOWN_MARGIN = 600
#: records of deleted VMs kept in memory / days their files are kept in WorkingDirectory
MAX_RECORDS_IN_MEMORY = 10000
RECORD_DAYS = 7
TAG_CE, TAG_QUEUE, TAG_SITE, TAG_STAMP = "dirac-ce", "dirac-queue", "dirac-site", "dirac-stamp"
_SERVER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass
class EndedPilot:
    """What the CE recorded of a pilot whose VM it deleted."""

    status: str
    reason: str
    output: str = ""


class CloudComputingElement(ComputingElement):
    """Pilots in VMs of an OpenStack cloud (Keystone v3, Nova, Glance, Neutron) through apache-libcloud."""

    ceType = "Cloud"
    referenceScheme = "cloud"

    def __init__(self, ceName: str, parameters: Mapping[str, Any] | None = None):
        super().__init__(ceName, parameters)
        if str(self.option("CloudType")).lower() != "openstack":
            raise ConfigurationError(f"CE {ceName}: CloudType {self.option('CloudType')!r} is not supported "
                                     "(supported: OpenStack)")
        for name in ("AuthURL", "Image", "Flavor"):
            if not self.option(name):
                raise ConfigurationError(f"CE {ceName}: set {name}")
        if self.maxInstances < 1 or self.lifetime < 2 * SHUTDOWN_MARGIN:
            raise ConfigurationError(f"CE {ceName}: MaxInstances must be at least 1 and InstanceLifetime at least "
                                     f"{2 * SHUTDOWN_MARGIN} s")
        self._credentials()  # a missing credential is a configuration error now, not at the first submission
        workingDirectory = self.getParameter("WorkingDirectory")
        self.recordDirectory = Path(workingDirectory).absolute() / ceName if workingDirectory else None
        self.ended: dict[str, EndedPilot] = {}
        self._driverObject: Any = None
        self._bootArguments: dict[str, Any] | None = None

    # -- options --------------------------------------------------------------------------------------
    def option(self, name: str) -> Any:
        return self.castOption(name, OPTION_DEFAULTS[name])

    @property
    def maxInstances(self) -> int:
        return int(self.option("MaxInstances")) or self.maxTotalJobs

    @property
    def lifetime(self) -> int:
        return int(self.option("InstanceLifetime"))

    def _credentials(self) -> dict[str, Any]:
        """libcloud's driver arguments for the Keystone v3 credentials of the options."""
        secret = ""
        if self.option("SecretFile"):
            try:
                secret = Path(self.option("SecretFile")).read_text().strip()
            except OSError as exc:
                raise ConfigurationError(f"CE {self.ceName}: cannot read SecretFile: {exc}") from exc
        common = {"ex_force_auth_url": str(self.option("AuthURL")).rstrip("/"),
                  "ex_force_service_region": self.option("Region"), "timeout": float(self.option("Timeout"))}
        if self.option("ApplicationCredentialID"):
            secret = secret or self.option("ApplicationCredentialSecret")
            if not secret:
                raise ConfigurationError(f"CE {self.ceName}: set ApplicationCredentialSecret or SecretFile")
            return {"key": self.option("ApplicationCredentialID"), "secret": secret,
                    "ex_force_auth_version": "3.x_appcred", **common}
        secret = secret or self.option("Password")
        if not (self.option("UserName") and secret and self.option("ProjectName")):
            raise ConfigurationError(f"CE {self.ceName}: set ApplicationCredentialID and its secret, or UserName, "
                                     "Password (or SecretFile) and ProjectName")
        return {"key": self.option("UserName"), "secret": secret, "ex_force_auth_version": "3.x_password",
                "ex_tenant_name": self.option("ProjectName"), "ex_domain_name": self.option("UserDomainName"),
                "ex_tenant_domain_id": self.option("ProjectDomainID"), **common}

    # -- talking to the cloud -------------------------------------------------------------------------
    def _driver(self) -> Any:
        if self._driverObject is None:
            from libcloud.compute.providers import Provider, get_driver  # libcloud is loaded only when used

            arguments = self._credentials()
            self._driverObject = get_driver(Provider.OPENSTACK)(arguments.pop("key"), arguments.pop("secret"),
                                                                api_version="2.0", **arguments)
        return self._driverObject

    def close(self) -> None:
        self._driverObject = None
        self._bootArguments = None

    @contextmanager
    def _cloud(self, operation: str, failure: type[ComputingElementError] = ComputingElementError) -> Iterator[None]:
        """Turn libcloud's and the network's errors during ``operation`` into the CE's typed errors."""
        from libcloud.common.exceptions import BaseHTTPError
        from libcloud.common.types import InvalidCredsError, LibcloudError
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import Timeout

        where = f"CE {self.ceName}: {operation} at {self.option('AuthURL')}"
        try:
            yield
        except InvalidCredsError as exc:
            self.close()
            raise CEAuthenticationFailed(f"{where}: the cloud refused our credentials ({exc.value})") from exc
        except (RequestsConnectionError, Timeout, ConnectionError, TimeoutError) as exc:
            self.close()
            raise CEUnreachable(f"{where}: the cloud cannot be reached: {exc}") from exc
        except BaseHTTPError as exc:
            if exc.code == 401:
                self.close()
                raise CEAuthenticationFailed(f"{where}: the cloud refused our credentials ({exc.message})") from exc
            raise failure(f"{where}: HTTP {exc.code}: {exc.message}") from exc
        except LibcloudError as exc:
            raise failure(f"{where}: {exc.value}") from exc

    def _instances(self) -> list[Any]:
        """The live servers tagged for this CE (all its queues)."""
        from libcloud.compute.types import NodeState

        with self._cloud("listing servers"):
            nodes = self._driver().list_nodes()
        return [node for node in nodes if (node.extra.get("metadata") or {}).get(TAG_CE) == self.ceName
                and node.state != NodeState.TERMINATED]

    def _resolve(self, what: str, wanted: str, candidates: list[Any]) -> Any:
        for candidate in candidates:
            if wanted in (candidate.id, candidate.name):
                return candidate
        names = ", ".join(sorted(str(c.name) for c in candidates)[:20])
        raise ConfigurationError(f"CE {self.ceName}: no {what} {wanted!r} in the cloud (it has: {names})")

    def bootArguments(self) -> dict[str, Any]:
        """Image, flavor, networks and key of the pilot VMs, looked up once by name or ID."""
        if self._bootArguments is None:
            driver = self._driver()
            with self._cloud("looking up the image, flavor and networks"):
                image = self._resolve("image", self.option("Image"), driver.list_images())
                flavor = self._resolve("flavor", self.option("Flavor"), driver.list_sizes())
                wanted = self.option("Networks")
                networks = [self._resolve("network", name, driver.ex_list_networks()) for name in wanted] \
                    if wanted else []
            self._bootArguments = {"image": image, "size": flavor, "networks": networks}
            if self.option("KeyName"):
                self._bootArguments["ex_keyname"] = self.option("KeyName")
        return self._bootArguments

    # -- references and records -----------------------------------------------------------------------
    def _serverID(self, reference: str) -> str:
        return self.ownJobID(reference, _SERVER_ID, "<server id>")

    def _reference(self, serverID: str) -> str:
        return f"{self.referenceScheme}://{self.ceName}/{serverID}"

    def _recorded(self, serverID: str) -> EndedPilot | None:
        if serverID not in self.ended and self.recordDirectory is not None:
            path = self.recordDirectory / f"{serverID}.json"
            if path.exists():
                self.ended[serverID] = EndedPilot(**json.loads(path.read_text()))
        return self.ended.get(serverID)

    def _remember(self, serverID: str, record: EndedPilot) -> None:
        """Keep the record of a deleted VM (in memory, and in WorkingDirectory when set)."""
        self.ended[serverID] = record
        if self.recordDirectory is not None:
            writePrivateFile(self.recordDirectory / f"{serverID}.json", json.dumps(record.__dict__).encode())
        while len(self.ended) > MAX_RECORDS_IN_MEMORY:  # the oldest go first; their files stay
            del self.ended[next(iter(self.ended))]

    def pruneRecords(self) -> int:
        """Remove the record files older than RECORD_DAYS days; how many were removed."""
        if self.recordDirectory is None or not self.recordDirectory.is_dir():
            return 0
        limit = datetime.datetime.now().timestamp() - RECORD_DAYS * 86400
        old = [path for path in self.recordDirectory.glob("*.json") if path.stat().st_mtime < limit]
        for path in old:
            path.unlink(missing_ok=True)
        return len(old)

    def _retire(self, node: Any, status: str, reason: str) -> EndedPilot:
        """Record the end of a VM's pilot (status, reason, console output), then delete the VM."""
        output = ""
        try:
            with self._cloud(f"reading the console of server {node.id}"):
                output = self._driver().ex_get_console_output(node, length=int(self.option("ConsoleLines")))["output"]
        except ComputingElementError as exc:
            self.log.warning("%s: no console output: %s", self._reference(node.id), exc.message)
        if status == DONE:  # the console decides: the pilot's own exit code
            code = pilotExitCode(output, (node.extra.get("metadata") or {}).get(TAG_STAMP, ""))
            if code is None:
                status, reason = ABORTED, "VM powered off without the pilot's exit code in its console"
            elif code:
                status, reason = FAILED, f"pilot exit code {code}; VM powered off"
            else:
                reason = "pilot exit code 0; VM powered off"
        record = EndedPilot(status, reason, output)
        self._remember(node.id, record)
        self._delete(node.id)
        self.log.info("%s: %s (%s); VM deleted", self._reference(node.id), status, reason)
        return record

    def _delete(self, serverID: str) -> None:
        from libcloud.compute.base import Node

        with self._cloud(f"deleting server {serverID}"):
            try:
                self._driver().destroy_node(Node(serverID, "", None, [], [], self._driver()))
            except Exception as exc:
                if getattr(exc, "code", None) != 404:  # already gone: nothing to delete
                    raise

    def _followed(self, node: Any) -> tuple[str, str]:
        """(status, reason) of a live server; an ended, failed or expired one is recorded and deleted."""
        from libcloud.compute.types import NodeState

        state = node.state
        age = (datetime.datetime.now(datetime.UTC) - node.created_at).total_seconds() \
            if node.created_at else 0.0
        if state == NodeState.STOPPED:
            record = self._retire(node, DONE, "")
        elif state == NodeState.ERROR:
            fault = (node.extra.get("fault") or {}).get("message") or "no fault message"
            record = self._retire(node, FAILED, f"VM in ERROR: {fault}")
        elif age > self.lifetime:
            record = self._retire(node, ABORTED, f"VM exceeded its lifetime of {self.lifetime} s ({state})")
        elif state == NodeState.PENDING:
            return WAITING, "VM BUILD"
        elif state == NodeState.UNKNOWN:
            return UNKNOWN, "VM in an unknown state"
        else:
            return RUNNING, f"VM {str(node.extra.get('vm_state') or state).upper()}"
        return record.status, record.reason

    # -- the hooks --------------------------------------------------------------------------------------
    def _submitJobs(self, executableFile: str, proxy: bytes | None, numberOfJobs: int, **kwargs: Any
                    ) -> dict[str, str]:
        live = len(self._instances())
        if live + numberOfJobs > self.maxInstances:
            raise NotEnoughSlots(f"CE {self.ceName}: {live} VM(s) of MaxInstances {self.maxInstances} are alive, "
                                 f"no room for {numberOfJobs} more")
        boot = self.bootArguments()
        executable = Path(executableFile).read_bytes()
        references: dict[str, str] = {}
        for _ in range(numberOfJobs):
            stamp = newStamp()
            try:
                userData = pilotUserData(self.ceName, stamp, executable, proxy, self.token,
                                         self.lifetime - SHUTDOWN_MARGIN)
            except ValueError as exc:
                raise SubmissionError(f"CE {self.ceName}: {exc}") from exc
            metadata = {TAG_CE: self.ceName, TAG_QUEUE: str(self.getParameter("Queue")),
                        TAG_SITE: str(self.getParameter("Site")), TAG_STAMP: stamp}
            try:
                with self._cloud("creating a server", SubmissionError):
                    node = self._driver().create_node(name=f"dirac-pilot-{stamp}", ex_userdata=userData,
                                                      ex_metadata=metadata, **boot)
            except SubmissionError as exc:
                if not references:
                    raise
                self.log.warning("CE %s: %d of %d pilot VM(s) created: %s", self.ceName, len(references),
                                 numberOfJobs, exc.message)
                break
            references[self._reference(node.id)] = stamp
            self.log.info("%s: pilot %s booting", self._reference(node.id), stamp)
        return references

    def _getJobStatus(self, references: list[str]) -> dict[str, str]:
        wanted, statuses = self.splitReferences(references, self._serverID)
        nodes = {node.id: node for node in self._instances()} if wanted else {}
        for serverID, reference in wanted.items():
            record = self._recorded(serverID)
            if record is not None:
                statuses[reference], self.statusReasons[reference] = record.status, record.reason
            elif serverID in nodes:
                statuses[reference], self.statusReasons[reference] = self._followed(nodes[serverID])
            else:
                statuses[reference] = DELETED
                self.statusReasons[reference] = "the VM no longer exists (deleted outside this CE)"
        return statuses

    def _getJobOutput(self, reference: str) -> tuple[str, str]:
        serverID = self._serverID(reference)
        record = self._recorded(serverID)
        if record is not None:
            return record.output, ""
        node = next((node for node in self._instances() if node.id == serverID), None)
        if node is None:
            raise UnknownJobReference(f"{reference}: no such VM and no recorded output")
        with self._cloud(f"reading the console of server {serverID}"):
            return self._driver().ex_get_console_output(node, length=int(self.option("ConsoleLines")))["output"], ""

    def _killJobs(self, references: list[str]) -> None:
        for reference in references:
            serverID = self._serverID(reference)
            self._delete(serverID)
            self._remember(serverID, EndedPilot(ABORTED, "VM deleted by killJob"))
            self.log.info("%s: VM deleted (killed)", reference)

    def _getCEStatus(self) -> dict[str, Any]:
        """Counts this queue's VMs; ended, failed and expired VMs of this queue are retired on the way."""
        self.pruneRecords()
        running = waiting = instances = 0
        queue = str(self.getParameter("Queue"))
        for node in self._instances():
            if node.extra["metadata"].get(TAG_QUEUE) != queue:
                instances += 1  # another queue's VM: its own CE object follows it
                continue
            status, _ = self._followed(node)
            if status in PILOT_FINAL_STATES:
                continue
            instances += 1
            running += status == RUNNING
            waiting += status == WAITING
        return {"RunningJobs": running, "WaitingJobs": waiting, "Instances": instances,
                "MaxInstances": self.maxInstances}

    def _freeSlots(self, status: Mapping[str, Any]) -> int:
        return max(0, min(super()._freeSlots(status), self.maxInstances - int(status["Instances"])))
