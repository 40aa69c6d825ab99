"""SSH computing elements: pilots started on remote hosts over SSH, as plain processes or batch jobs.

``SSHComputingElement`` (``CEType = SSH``) drives one host; ``SSHBatchComputingElement``
(``CEType = SSHBatch``) spreads pilots over several (``SSHHost = host1/4, host2:2222/8``: each
host with an optional port and its number of slots, MaxTotalJobs when omitted), the hosts with
the most free slots first; a host that cannot be reached is skipped while others take pilots.
Connection options: ``SSHHost``, ``SSHPort`` (22), ``SSHUser`` (this process's user), ``SSHKey``
(private key file), ``SSHTunnel`` (jump host, ``gateway[:port]``), ``SSHKnownHosts`` (host keys;
default ``~/.ssh/known_hosts``), ``SSHStrictHostKeyChecking`` (default true: unknown hosts are
refused), ``Timeout``. The batch side (``BatchSystem``, areas, ``Preamble``) is described in
``BatchComputingElement``.
"""

from __future__ import annotations

from dirac.Core.Config.ConfigurationClient import castValue, toList
from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.Resources.Computing.BatchComputingElement import BatchComputingElement, BatchHost
from dirac.Resources.Computing.SSHCommandRunner import DEFAULT_SSH_PORT, SSHCommandRunner, parseHostPort


class SSHComputingElement(BatchComputingElement):
    """Pilots on one remote host over SSH, run by its batch system (``BatchSystem``: Host or Slurm)."""

    ceType = "SSH"
    referenceScheme = "ssh"

    def _hostSpecifications(self) -> list[tuple[str, int, int]]:
        """[(host, port, slots)] from SSHHost ('host[:port][/slots]', comma-separated)."""
        hosts = toList(self.ceParameters.get("SSHHost") or "")
        if not hosts:
            raise ConfigurationError(f"CE {self.ceName}: option SSHHost is not set (the host pilots are started on)")
        defaultPort = int(self._number("SSHPort", DEFAULT_SSH_PORT))
        specifications = []
        for entry in hosts:
            address, _, slots = entry.partition("/")
            try:
                host, port = parseHostPort(address, defaultPort)
                count = int(slots) if slots else self.maxTotalJobs
            except ValueError as exc:
                raise ConfigurationError(f"CE {self.ceName}: invalid SSHHost entry {entry!r}: {exc}") from exc
            specifications.append((host, port, count))
        return specifications

    def _runner(self, host: str, port: int) -> SSHCommandRunner:
        strict = self.ceParameters.get("SSHStrictHostKeyChecking", True)
        return SSHCommandRunner(
            host, port, user=str(self.ceParameters.get("SSHUser") or ""), key=str(self.ceParameters.get("SSHKey") or ""),
            tunnel=str(self.ceParameters.get("SSHTunnel") or ""),
            knownHosts=str(self.ceParameters.get("SSHKnownHosts") or ""),
            strictHostKeyChecking=castValue(strict, True) if isinstance(strict, str) else bool(strict),
            preamble=str(self.ceParameters.get("Preamble") or ""), timeout=self.timeout,
            connectTimeout=min(self.timeout, self._number("SSHConnectTimeout", 20.0)),
        )

    def _makeHosts(self) -> dict[str, BatchHost]:
        specifications = self._hostSpecifications()
        if len(specifications) > 1:
            raise ConfigurationError(f"CE {self.ceName}: SSHHost names {len(specifications)} hosts: use "
                                     "CEType = SSHBatch for several hosts")
        host, port, _ = specifications[0]
        return {host: BatchHost(host, self._runner(host, port), self.maxTotalJobs)}


class SSHBatchComputingElement(SSHComputingElement):
    """Pilots spread over several remote hosts over SSH; references carry the host: ``sshbatchhost://CE/host/id``."""

    ceType = "SSHBatch"
    referenceScheme = "sshbatch"
    multiHost = True

    def _makeHosts(self) -> dict[str, BatchHost]:
        hosts = {}
        for host, port, slots in self._hostSpecifications():
            name = host if port == int(self._number("SSHPort", DEFAULT_SSH_PORT)) else f"{host}:{port}"
            hosts[name] = BatchHost(name, self._runner(host, port), slots)
        return hosts
