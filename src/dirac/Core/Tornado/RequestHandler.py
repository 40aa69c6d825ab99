"""The base of every service: ``<Name>Handler(RequestHandler)`` with ``export_<method>`` methods.

A service author writes::

    class JobManagerHandler(RequestHandler):
        @classmethod
        def initializeHandler(cls, serviceInfo):      # once, at server start
            cls.jobDB = JobDB()

        auth_killJob = [Properties.NormalUser, Properties.JobAdministrator]
        def export_killJob(self, jobIDs: list[int] | int) -> dict:
            ...

Rules the framework enforces (see ``ExportedMethod``):

* every ``export_`` method declares who may call it with an ``auth_<method>`` list (or the
  ``@authorize`` decorator): ``"authenticated"`` for any authenticated caller, otherwise the
  caller's properties must include one of those listed; a method without a rule makes the
  service fail at registration. The CS may override a rule with
  ``/Systems/<System>/Services/<Service>/Authorization/<method>``.
* argument types come from the method's type hints (or DIRAC's ``types_<method>`` list);
  a call with the wrong types gets an S_ERROR naming the argument, never a traceback.
* a method returns an S_OK/S_ERROR dict or a plain value (sent as S_OK(value)), and raises
  ``DiracError`` subclasses for errors; any other exception is logged with its traceback
  and the caller gets a generic S_ERROR.
* methods run in the server's thread pool (``async def`` methods run on the IOLoop).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dirac.Core.Config import gConfig
from dirac.Core.Config.ConfigurationClient import toList
from dirac.Core.Config.PathFinder import getServiceSection
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument
from dirac.Core.Utilities.Logging import getLogger

AUTHENTICATED = "authenticated"


def authorize(*rule: str) -> Callable[[Callable], Callable]:
    """Declare who may call an exported method: properties, or ``"authenticated"``."""

    def decorate(func: Callable) -> Callable:
        func.authRule = list(rule)  # type: ignore[attr-defined]
        return func

    return decorate


@dataclass
class ServiceInfo:
    """What a service knows about itself at start-up."""

    name: str  # "System/Service"
    url: str
    section: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.section = self.section or getServiceSection(self.name)

    def getOption(self, option: str, default: Any = None) -> Any:
        return gConfig.getValue(f"{self.section}/{option}", default)


# -- argument checking ---------------------------------------------------------------------

def _accepts(expected: Any, value: Any) -> bool:
    """Does ``value`` (decoded from JSON) match the annotation ``expected``?"""
    if expected is Any or expected is inspect.Parameter.empty:
        return True
    if expected is None or expected is type(None):
        return value is None
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(option, value) for option in typing.get_args(expected))
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if origin is not None:
        return _accepts(origin, value) and _acceptsItems(origin, typing.get_args(expected), value)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected in (tuple, list):
        return isinstance(value, (list, tuple))  # tuples travel as JSON lists
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True


def _acceptsItems(origin: Any, args: tuple, value: Any) -> bool:
    if not args:
        return True
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return all(_accepts(args[0], item) for item in value)
    if origin is tuple:
        return len(value) == len(args) and all(_accepts(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        keyType, valueType = args
        # JSON turns every key into a string; int-keyed dicts arrive with string keys
        return all(_accepts(valueType, v) for v in value.values())
    return True


def _typeName(expected: Any) -> str:
    if isinstance(expected, type):
        return expected.__name__
    return str(expected).replace("typing.", "")


@dataclass
class ExportedMethod:
    """One ``export_`` method with its checked signature and authorization rule."""

    name: str
    func: Callable
    authRule: list[str]
    params: list[inspect.Parameter]
    hints: dict[str, Any]
    varArgs: bool
    isAsync: bool
    #: (the configuration read, the service section, the rule found): re-read only when the CS changed
    _rule: tuple[Any, str, list[str]] | None = field(default=None, repr=False)

    @classmethod
    def fromHandler(cls, handler: type[RequestHandler], name: str) -> ExportedMethod:
        func = getattr(handler, f"export_{name}")
        rule = getattr(handler, f"auth_{name}", None) or getattr(func, "authRule", None)
        if not rule:
            raise TypeError(f"{handler.__name__}.export_{name} declares no authorization rule "
                            f"(set auth_{name} or use @authorize)")
        signature = inspect.signature(func)
        params = [p for p in list(signature.parameters.values())[1:]
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        varArgs = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
        hints = typing.get_type_hints(func)
        legacy = getattr(handler, f"types_{name}", None)
        if legacy is not None:  # DIRAC's types_<method> = [str, (int, list), ...]
            hints = {p.name: (t if not isinstance(t, tuple) else typing.Union[t])  # noqa: UP007
                     for p, t in zip(params, legacy, strict=False)}
        return cls(name, func, list(rule), params, hints, varArgs, inspect.iscoroutinefunction(func))

    def effectiveRule(self, serviceSection: str) -> list[str]:
        """The authorization rule, the CS one taking precedence over the declared one."""
        cfg = gConfig.cfg  # a new object whenever the configuration changes
        if self._rule is None or self._rule[0] is not cfg or self._rule[1] != serviceSection:
            override = gConfig.getValue(f"{serviceSection}/Authorization/{self.name}", "")
            self._rule = (cfg, serviceSection, toList(override) or self.authRule)
        return self._rule[2]

    def checkAuthorization(self, credDict: dict, serviceSection: str) -> None:
        rule = self.effectiveRule(serviceSection)
        if AUTHENTICATED in rule or "all" in rule or "any" in rule:
            return
        if set(rule) & set(credDict.get("properties", [])):
            return
        who = credDict.get("username") or credDict.get("hostname") or credDict.get("DN")
        raise AuthorizationError(f"{who} (group {credDict.get('group')}) may not call {self.name}: "
                                 f"it needs one of the properties {', '.join(rule)}")

    def checkArguments(self, args: list) -> None:
        required = [p for p in self.params if p.default is inspect.Parameter.empty]
        if len(args) < len(required) or (len(args) > len(self.params) and not self.varArgs):
            expected = (f"{len(required)}" if len(required) == len(self.params)
                        else f"{len(required)} to {len(self.params)}")
            raise InvalidArgument(f"{self.name} takes {expected} arguments, {len(args)} given")
        for position, (param, value) in enumerate(zip(self.params, args, strict=False)):
            expected = self.hints.get(param.name, Any)
            if not _accepts(expected, value):
                raise InvalidArgument(f"{self.name}: argument {position + 1} ({param.name}) should be "
                                      f"{_typeName(expected)}, got {type(value).__name__}")


class RequestHandler:
    """Base class of services; one instance serves one request."""

    serviceInfo: ClassVar[ServiceInfo]
    exportedMethods: ClassVar[dict[str, ExportedMethod]]
    log: ClassVar[Any] = getLogger("Service")

    auth_ping = [AUTHENTICATED]
    auth_echo = [AUTHENTICATED]
    auth_whoami = [AUTHENTICATED]

    def __init__(self, credDict: dict, clientVO: str | None = None):
        self.credDict = credDict
        self.clientVO = clientVO

    # -- set-up, called by the server ------------------------------------------------------
    @classmethod
    def setUp(cls, serviceInfo: ServiceInfo) -> None:
        """Register the exported methods (checking their rules), then ``initializeHandler``."""
        cls.serviceInfo = serviceInfo
        cls.log = getLogger(serviceInfo.name)
        cls.exportedMethods = {
            name[len("export_"):]: ExportedMethod.fromHandler(cls, name[len("export_"):])
            for name in dir(cls) if name.startswith("export_") and callable(getattr(cls, name))
        }
        cls.initializeHandler(serviceInfo)

    @classmethod
    def initializeHandler(cls, serviceInfo: ServiceInfo) -> None:
        """Override to open DBs and read options once per server start."""

    # -- helpers for exported methods --------------------------------------------------------
    def getRemoteCredentials(self) -> dict:
        """The caller's credentials: DN, username, group, properties, ..."""
        return self.credDict

    @classmethod
    def getCSOption(cls, option: str, default: Any = None) -> Any:
        return cls.serviceInfo.getOption(option, default)

    # -- methods every service exports -------------------------------------------------------
    def export_ping(self) -> dict:
        """Liveness and basic facts about the service."""
        import platform
        import time

        from dirac import __version__

        return {"name": self.serviceInfo.name, "version": __version__, "time": time.time(),
                "python": platform.python_version(), "host": platform.node()}

    def export_echo(self, data: Any) -> Any:
        """Return what was sent (wire checks)."""
        return data

    def export_whoami(self) -> dict:
        """The credentials the server sees for the caller."""
        return dict(self.credDict)
