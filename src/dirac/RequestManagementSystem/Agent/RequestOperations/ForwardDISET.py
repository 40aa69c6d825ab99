"""ForwardDISET: replay an RPC call that could not be made when it was wanted (DIRAC's handler of that name).

The operation's ``Arguments`` are DIRAC's DEncoded RPC stub ``((service, {options}), method, [args])``,
as ``RPCClient`` results carry it in ``rpcStub`` (a JobWrapper's status reports the JobStateUpdate did not
answer). The call is made again with the agent's host certificate *on behalf of the request's owner*
(DIRAC's ``extraCredentials``: the server applies the owner's rights, not the host's). Done when the
service accepts it; retried while the service cannot be reached; Failed when it refuses (a second try
would be refused too) or the stub cannot be read.
"""

from __future__ import annotations

from typing import Any

from dirac.Core.Config import Registry
from dirac.Core.Tornado.Client import RPCClient, isTransient
from dirac.Core.Utilities import DEncode
from dirac.RequestManagementSystem.Agent.OperationHandlerBase import OperationHandlerBase
from dirac.RequestManagementSystem.Client import Operation as OperationStatus


def serviceOf(target: str) -> str:
    """'System/Service' (or an https URL) of a stub's service; DIRAC's dips://host:port/System/Service too."""
    if target.startswith("dips://"):
        return "/".join(target.split("/")[3:5])
    return target


def readStub(arguments: str) -> tuple[str, dict[str, Any], str, list[Any]]:
    """(service, options, method, args) of a DEncoded stub; ValueError saying why it is not one."""
    stub, _ = DEncode.decode(arguments)
    if isinstance(stub, dict):
        raise ValueError("a DiracX stub (a dictionary) cannot be replayed here")
    try:
        (service, options), method, args = stub
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an RPC stub ((service, options), method, args): {stub!r}"[:300]) from exc
    if not isinstance(service, str) or not isinstance(method, str) or not isinstance(args, (list, tuple)):
        raise ValueError(f"not an RPC stub: service {service!r}, method {method!r}")
    return serviceOf(service), dict(options or {}), method, list(args)


class ForwardDISET(OperationHandlerBase):
    """Replays the stored RPC call as the request's owner."""

    def execute(self) -> None:
        try:
            service, options, method, args = readStub(self.operation.Arguments)
        except ValueError as exc:
            self.operation.fail(f"cannot read the stored call: {exc}")
            self.log.error("%s: %s", self.where, self.operation.Error)
            return
        dns = Registry.getDNsForUsername(self.request.Owner)
        extra = (dns[0], self.request.OwnerGroup) if dns else None
        client = RPCClient(service, timeout=options.get("timeout"), extraCredentials=extra)
        result = client.executeRPC(method, *args)
        if result["OK"]:
            self.operation.Status = OperationStatus.DONE
            self.log.info("%s: %s.%s replayed for %s@%s", self.where, service, method, self.request.Owner,
                          self.request.OwnerGroup)
        elif isTransient(result):
            self.operation.Error = f"{service}.{method}: {result['Message']}"[:255]
            self.log.info("%s: %s, to retry", self.where, self.operation.Error)
        else:
            self.operation.fail(f"{service}.{method} refused: {result['Message']}")
            self.log.error("%s: %s", self.where, self.operation.Error)
