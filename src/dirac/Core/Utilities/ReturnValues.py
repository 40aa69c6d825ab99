"""DIRAC's S_OK/S_ERROR result dictionaries, taken from DIRACCommon so both sides agree."""

from DIRACCommon.Core.Utilities.ReturnValues import (
    S_ERROR,
    S_OK,
    DErrorReturnType,
    DOKReturnType,
    DReturnType,
    SErrorException,
    convertToReturnValue,
    isReturnStructure,
    isSError,
    returnSingleResult,
    returnValueOrRaise,
)

__all__ = [
    "DErrorReturnType",
    "DOKReturnType",
    "DReturnType",
    "S_ERROR",
    "S_OK",
    "SErrorException",
    "convertToReturnValue",
    "isReturnStructure",
    "isSError",
    "returnSingleResult",
    "returnValueOrRaise",
]
