"""DIRAC's ``/Operations`` section: options of each VO, with defaults shared by all VOs.

``/Operations/<vo>/<option>`` wins over ``/Operations/Defaults/<option>`` (DIRAC's Operations helper,
without its per-setup level).
"""

from __future__ import annotations

from typing import TypeVar

from dirac.Core.Config import gConfig

T = TypeVar("T")

OPERATIONS = "/Operations"


def getOperationsValue(option: str, default: T, vo: str = "") -> T:
    """The option of ``vo``, else of ``Defaults``, cast to the type of ``default``; ``default`` when unset."""
    for section in ([vo] if vo else []) + ["Defaults"]:
        path = f"{OPERATIONS}/{section}/{option}"
        if gConfig.getValue(path) is not None:
            return gConfig.getValue(path, default)
    return default
