"""Registration rules and argument checks of exported methods (no network)."""

from __future__ import annotations

from typing import Any

import pytest

from dirac.Core.Tornado.RequestHandler import AUTHENTICATED, ExportedMethod, RequestHandler, authorize
from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument


class Sample(RequestHandler):
    auth_typed = [AUTHENTICATED]

    def export_typed(self, n: int, name: str, ratio: float = 1.0, tags: list[str] | None = None) -> None:
        pass

    @authorize("JobAdministrator", "NormalUser")
    def export_guarded(self, ids: list[int] | int, extra: dict[str, Any] | None = None) -> None:
        pass

    types_legacy = [str, (int, list)]
    auth_legacy = [AUTHENTICATED]

    def export_legacy(self, a, b):  # noqa: ANN001 - DIRAC-style types_ declaration
        pass


def method(name: str) -> ExportedMethod:
    return ExportedMethod.fromHandler(Sample, name)


@pytest.mark.parametrize("args", [[1, "x"], [1, "x", 2], [1, "x", 2.5, ["a"]], [1, "x", 1.0, None]])
def test_accepted_arguments(args):
    method("typed").checkArguments(args)


@pytest.mark.parametrize("args, message", [
    (["1", "x"], "argument 1 (n) should be int, got str"),
    ([True, "x"], "argument 1 (n) should be int, got bool"),
    ([1, 2], "argument 2 (name) should be str, got int"),
    ([1, "x", "fast"], "argument 3 (ratio) should be float"),
    ([1, "x", 1.0, ["a", 2]], "argument 4 (tags)"),
    ([1], "takes 2 to 4 arguments, 1 given"),
    ([1, "x", 1.0, [], 5], "takes 2 to 4 arguments, 5 given"),
])
def test_refused_arguments_name_the_problem(args, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        method("typed").checkArguments(args)


def test_unions_and_dicts():
    guarded = method("guarded")
    guarded.checkArguments([5])
    guarded.checkArguments([[1, 2]])
    guarded.checkArguments([[1], {"a": [1]}])
    with pytest.raises(InvalidArgument):
        guarded.checkArguments(["5"])


def test_legacy_types_declaration():
    legacy = method("legacy")
    legacy.checkArguments(["a", 1])
    legacy.checkArguments(["a", [1]])
    with pytest.raises(InvalidArgument):
        legacy.checkArguments([1, 1])


def test_authorization_by_property():
    guarded = method("guarded")
    guarded.checkAuthorization({"properties": ["NormalUser"]}, "/Systems/T/Services/S")
    with pytest.raises(AuthorizationError, match="needs one of the properties JobAdministrator, NormalUser"):
        guarded.checkAuthorization({"username": "u", "group": "g", "properties": ["GenericPilot"]},
                                   "/Systems/T/Services/S")


def test_cs_overrides_the_declared_rule():
    from dirac.Core.Config import gConfig

    gConfig.initialize(options={"/Systems/T/Services/S/Authorization/guarded": "GenericPilot"}, fetchRemote=False)
    method("guarded").checkAuthorization({"properties": ["GenericPilot"]}, "/Systems/T/Services/S")
    with pytest.raises(AuthorizationError):
        method("guarded").checkAuthorization({"properties": ["NormalUser"]}, "/Systems/T/Services/S")


def test_a_changed_cs_rule_applies_to_the_next_call():
    from dirac.Core.Config import gConfig

    gConfig.initialize(options={"/Systems/T/Services/S/Authorization/guarded": "GenericPilot"}, fetchRemote=False)
    guarded = method("guarded")
    guarded.checkAuthorization({"properties": ["GenericPilot"]}, "/Systems/T/Services/S")
    gConfig.data.setLocalOption("/Systems/T/Services/S/Authorization/guarded", "NormalUser")
    guarded.checkAuthorization({"properties": ["NormalUser"]}, "/Systems/T/Services/S")
    with pytest.raises(AuthorizationError):
        guarded.checkAuthorization({"properties": ["GenericPilot"]}, "/Systems/T/Services/S")


def test_a_method_without_authorization_rule_is_refused_at_registration():
    class Careless(RequestHandler):
        def export_open(self) -> None:
            pass

    with pytest.raises(TypeError, match="declares no authorization rule"):
        ExportedMethod.fromHandler(Careless, "open")
