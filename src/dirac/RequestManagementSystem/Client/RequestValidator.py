"""Checks a request before it is stored: the attributes each operation type needs (DIRAC's RequestValidator).

The client checks before sending, the ReqManager again before storing; a failure is an
``InvalidArgument`` naming the operation (by its position) and what it lacks, e.g.
``Operation #0 of type 'ReplicateAndRegister' is missing TargetSE attribute.``
"""

from __future__ import annotations

from collections.abc import Iterable

from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.RequestManagementSystem.Client.Request import Request

#: operation type -> (required Operation attributes, required File attributes); a type with no file
#: attribute takes no files (DIRAC's table, with SetFileStatus of the Transformation System)
REQUIRED_ATTRIBUTES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ForwardDISET": (("Arguments",), ()),
    "SetFileStatus": (("Arguments",), ()),
    "PutAndRegister": (("TargetSE",), ("LFN", "PFN")),
    "ReplicateAndRegister": (("TargetSE",), ("LFN",)),
    "PhysicalRemoval": (("TargetSE",), ("LFN",)),
    "RemoveFile": ((), ("LFN",)),
    "RemoveReplica": (("TargetSE",), ("LFN",)),
    "ReTransfer": (("TargetSE",), ("LFN", "PFN")),
    "RegisterFile": ((), ("LFN", "PFN", "ChecksumType", "Checksum", "GUID")),
    "RegisterReplica": (("TargetSE",), ("LFN", "PFN")),
}


def validateRequest(request: Request, knownTypes: Iterable[str] | None = None, requireOwner: bool = True) -> None:
    """Raise InvalidArgument unless ``request`` is complete; with ``knownTypes``, also unless each operation's type
    has a handler (one of them). Clients send requests without an owner (the server takes the caller's):
    ``requireOwner=False``."""
    name = request.RequestName
    if not name:
        raise InvalidArgument("RequestName not set")
    if len(name) > 255:
        raise InvalidArgument(f"RequestName of {len(name)} characters (255 at most)")
    if requireOwner and (not (request.Owner or request.OwnerDN) or not request.OwnerGroup):
        raise InvalidArgument(f"Request '{name}' is missing its Owner or OwnerGroup")
    if request.isEmpty():
        raise InvalidArgument(f"Operations not present in request '{name}'")
    known = set(knownTypes) if knownTypes is not None else None
    for index, operation in enumerate(request):
        where = f"Operation #{index}"
        if not operation.Type:
            raise InvalidArgument(f"{where} in request '{name}' hasn't got Type set")
        if known is not None and operation.Type not in known:
            raise InvalidArgument(f"{where} of type '{operation.Type}': no handler for this type "
                                  f"(known: {', '.join(sorted(known))})")
        opAttributes, fileAttributes = REQUIRED_ATTRIBUTES.get(operation.Type, ((), None))  # type: ignore[arg-type]
        if fileAttributes is not None:
            if fileAttributes and not len(operation):
                raise InvalidArgument(f"{where} of type '{operation.Type}' hasn't got files to process.")
            if not fileAttributes and len(operation):
                raise InvalidArgument(f"{where} of type '{operation.Type}' has got files to process.")
        for attribute in opAttributes:
            if not getattr(operation, attribute):
                raise InvalidArgument(f"{where} of type '{operation.Type}' is missing {attribute} attribute.")
        for opFile in operation:
            for attribute in fileAttributes or ():
                if not getattr(opFile, attribute):
                    raise InvalidArgument(f"{where} of type '{operation.Type}' is missing {attribute} attribute "
                                          f"for file {opFile.LFN or '(no LFN)'}.")
            if bool(opFile.Checksum) != bool(opFile.ChecksumType):
                raise InvalidArgument(f"File {opFile.LFN} in {where} is missing Checksum ({opFile.Checksum!r}) or "
                                      f"ChecksumType ({opFile.ChecksumType!r})")
