"""Batch-system plug-ins behind the local and SSH computing elements: Host (plain processes) and Slurm.

``getBatchSystemClass(name)`` finds a plug-in by its ``BatchSystem`` option value, case-insensitively
(DIRAC writes ``SLURM``), among the built-in ones and the ``dirac.batch_systems`` entry points.
"""

from __future__ import annotations

from dirac.Core.Base.Components import loadClass, pluginClasses
from dirac.Core.Utilities.Exceptions import ConfigurationError

BATCH_SYSTEMS = "dirac.batch_systems"
_BUILTIN_BATCH_SYSTEMS = {
    "Host": "dirac.Resources.Computing.BatchSystems.Host:Host",
    "Slurm": "dirac.Resources.Computing.BatchSystems.Slurm:Slurm",
}


def batchSystemClasses() -> dict[str, str]:
    """{name: 'module:Class'} of every installed batch system."""
    return pluginClasses(_BUILTIN_BATCH_SYSTEMS, BATCH_SYSTEMS)


def getBatchSystemClass(name: str) -> type:
    """The plug-in class of batch system ``name`` (ConfigurationError when none is installed under that name)."""
    classes = {key.lower(): value for key, value in batchSystemClasses().items()}
    if name.lower() not in classes:
        raise ConfigurationError(f"no batch system {name!r} (known: {', '.join(sorted(batchSystemClasses()))})")
    return loadClass(classes[name.lower()], f"batch system {name}")
