"""Which class carries out each operation type: the built-in handlers, extensions' entry points, the CS.

In order of precedence: ``<agent section>/OperationHandlers/<Type>/Location`` (``package.module:Class``, or
DIRAC's path form ``DIRAC/DataManagementSystem/Agent/RequestOperations/ReplicateAndRegister`` whose last
part names the class too), then the ``dirac.request_operations`` entry points of extensions, then the
built-in ones below. Only names are handled here: nothing is imported until a handler is loaded.
"""

from __future__ import annotations

from dirac.Core.Base.Components import loadClass, pluginClasses
from dirac.Core.Config import gConfig
from dirac.Core.Config.PathFinder import getAgentSection

REQUEST_OPERATIONS = "dirac.request_operations"
AGENT = "RequestManagement/RequestExecutingAgent"
_DMS = "dirac.DataManagementSystem.Agent.RequestOperations"
_BUILTIN = {
    "ForwardDISET": "dirac.RequestManagementSystem.Agent.RequestOperations.ForwardDISET:ForwardDISET",
    **{name: f"{_DMS}.{name}:{name}" for name in ("ReplicateAndRegister", "RemoveFile", "RemoveReplica",
                                                   "PutAndRegister", "RegisterFile", "RegisterReplica")},
}


def handlersSection(agentName: str = AGENT) -> str:
    """Where the handlers' options are: ``<agent section>/OperationHandlers``."""
    return f"{getAgentSection(agentName)}/OperationHandlers"


def _location(value: str) -> str:
    """``module:Class`` of a Location option (DIRAC's ``A/B/C/Name`` means ``A.B.C.Name:Name``)."""
    if ":" in value:
        return value
    parts = [part for part in value.replace(".", "/").split("/") if part]
    if parts and parts[0] == "DIRAC":  # DIRAC's own module paths: ours are under dirac.
        parts[0] = "dirac"
    return f"{'.'.join(parts)}:{parts[-1]}" if parts else ""


def handlerLocations(agentName: str = AGENT) -> dict[str, str]:
    """{operation type: 'module:Class'} of every known handler."""
    locations = pluginClasses(_BUILTIN, REQUEST_OPERATIONS)
    section = handlersSection(agentName)
    sections = gConfig.getSections(section)
    for opType in sections["Value"] if sections["OK"] else []:
        location = gConfig.getValue(f"{section}/{opType}/Location", "")
        if location:
            locations[opType] = _location(location)
    return locations


def knownTypes(agentName: str = AGENT) -> list[str]:
    """The operation types a request may hold (those with a handler)."""
    return sorted(handlerLocations(agentName))


def handlerClass(opType: str, agentName: str = AGENT) -> type:
    """The class handling ``opType`` (ConfigurationError when there is none or it cannot be loaded)."""
    from dirac.Core.Utilities.Exceptions import ConfigurationError

    locations = handlerLocations(agentName)
    if opType not in locations:
        raise ConfigurationError(f"no handler for operation type {opType} (known: {', '.join(sorted(locations))})")
    return loadClass(locations[opType], f"the {opType} operation handler")
