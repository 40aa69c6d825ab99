"""How a job's InputData reach its payload: DIRAC's input data policies, by name.

A policy is a list of steps run in order by the JobWrapper; the files a step could not make available go to
the next one, and those left after the last fail the job (DIRAC's InputDataResolution):

* ``DownloadInputData``: copy the files into the working directory;
* ``InputDataByProtocol``: give the payload a transport URL (TURL) on an SE of its site, download nothing.

A step is named by DIRAC's module path (``DIRAC.WorkloadManagementSystem.Client.InputDataByProtocol``), the
module's name alone, or the short form of ``Job.setInputDataPolicy`` (``Download``, ``Protocol``), in any case.
Where the policy comes from (first found): the JDL's ``InputDataPolicy``, then
``/Operations/<vo>/InputDataPolicy/<Site>``, then ``/Operations/<vo>/InputDataPolicy/Default``, else
``DownloadInputData``. See docs/jobwrapper.md, "Input data by protocol".
"""

from __future__ import annotations

from collections.abc import Iterable

from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Config.Operations import getOperationsValue
from dirac.Core.Utilities.Exceptions import ConfigurationError, InvalidArgument

DOWNLOAD = "DownloadInputData"
PROTOCOL = "InputDataByProtocol"
#: DIRAC's modules, the names DIRAC's JDLs and Operations sections carry
MODULE_PREFIX = "DIRAC.WorkloadManagementSystem.Client."
SHORT_NAMES = {"download": DOWNLOAD, "protocol": PROTOCOL}
POLICY_SECTION = "InputDataPolicy"
#: DIRAC's Operations option: the protocols tried, in order, on the SEs of the job's site
LOCAL_PROTOCOLS_OPTION = f"{POLICY_SECTION}/Protocols/Local"
DEFAULT_LOCAL_PROTOCOLS = ("file", "root", "https")


def policyStep(name: str) -> str:
    """``DOWNLOAD`` or ``PROTOCOL`` for one step's name (InvalidArgument naming the accepted ones)."""
    word = name.strip()
    low = word.lower().removeprefix(MODULE_PREFIX.lower())
    if low in SHORT_NAMES:
        return SHORT_NAMES[low]
    for step in (DOWNLOAD, PROTOCOL):
        if low == step.lower():
            return step
    raise InvalidArgument(f"input data policy {word!r} is not one of Download, Protocol, {MODULE_PREFIX}{DOWNLOAD}, "
                          f"{MODULE_PREFIX}{PROTOCOL}")


def parsePolicy(value: str | Iterable[str]) -> list[str]:
    """The steps of a policy given as a comma-separated string or a list of names (InvalidArgument if unknown)."""
    names = [name for item in ([value] if isinstance(value, str) else value) for name in toList(item)]
    steps = [policyStep(name) for name in names]
    if not steps:
        raise InvalidArgument("the input data policy is empty")
    return list(dict.fromkeys(steps))


def modulePath(step: str) -> str:
    """DIRAC's module path of a step, what a JDL carries."""
    return f"{MODULE_PREFIX}{step}"


def inputDataPolicy(jdlPolicy: list[str], site: str, vo: str) -> tuple[list[str], str]:
    """(the steps for a job, where they come from): the JDL's, else the site's, else the default one."""
    if jdlPolicy:
        return parsePolicy(jdlPolicy), "the JDL"
    for option in ([f"{POLICY_SECTION}/{site}"] if site else []) + [f"{POLICY_SECTION}/Default"]:
        value = getOperationsValue(option, "", vo)
        if value:
            try:
                return parsePolicy(value), f"Operations {option}"
            except InvalidArgument as exc:
                raise ConfigurationError(f"Operations option {option}: {exc.message}") from None
    return [DOWNLOAD], "the default"


def localProtocols(vo: str) -> list[str]:
    """The protocols tried on the site's SEs, in order: DIRAC's Operations ``InputDataPolicy/Protocols/Local``."""
    return getOperationsValue(LOCAL_PROTOCOLS_OPTION, list(DEFAULT_LOCAL_PROTOCOLS), vo) or \
        list(DEFAULT_LOCAL_PROTOCOLS)
