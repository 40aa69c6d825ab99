"""Metadata queries as DIRAC writes them, turned into (field, operator, operand) conditions.

``{"Run": 5}`` (equal), ``{"Run": [5, 6]}`` (in), ``{"Run": "Any"}`` (the field is set),
``{"Run": {">=": 5, "<": 9}}`` (a range: every operator of the dict must hold),
``{"Type": {"in": ["a", "b"]}}``, ``{"Type": {"nin": [...]}}``, ``{"Type": {"!=": "x"}}``.
Conditions on several fields all have to hold. Strings ``Field<op>value`` (the command line
form: ``Run>=5``, ``Type=a,b``, ``Type!=x``) parse with ``parseConditionString``.
"""

from __future__ import annotations

import re
from typing import Any

from dirac.Core.Utilities.Exceptions import InvalidArgument
from dirac.DataManagementSystem.DB.FileCatalogMetadata import Condition

_COMPARISONS = ("=", "!=", "<", ">", "<=", ">=", "in", "nin")
PATH_KEY = "Path"  # a dataset's query keeps where it looks under this key


def parseMetaQuery(metaDict: dict[str, Any]) -> list[Condition]:
    """The conditions of a DIRAC metadata query dict (InvalidArgument when malformed)."""
    if not isinstance(metaDict, dict) or not metaDict:
        raise InvalidArgument("A metadata query is a non-empty dict {field: condition}")
    conditions: list[Condition] = []
    for name, value in metaDict.items():
        if name == PATH_KEY:
            continue
        if isinstance(value, dict):
            if not value:
                raise InvalidArgument(f"Empty condition for {name}")
            for operator, operand in value.items():
                conditions.append(_condition(name, operator, operand))
        elif isinstance(value, (list, tuple)):
            conditions.append(_condition(name, "in", value))
        elif value == "Any":
            conditions.append((name, "exists", None))
        else:
            conditions.append((name, "=", value))
    if not conditions:
        raise InvalidArgument("A metadata query needs at least one condition")
    return conditions


def _condition(name: str, operator: str, operand: Any) -> Condition:
    if operator not in _COMPARISONS:
        raise InvalidArgument(f"Unknown operator {operator!r} for {name}: use one of {' '.join(_COMPARISONS)}")
    isList = isinstance(operand, (list, tuple))
    if operator in ("=", "!=") and isList:
        operator = "in" if operator == "=" else "nin"
    elif operator in ("in", "nin") and not isList:
        operand = [operand]
    elif operator in ("<", ">", "<=", ">=") and isList:
        raise InvalidArgument(f"{name} {operator}: a comparison takes one value, not a list")
    if operator in ("in", "nin"):
        if not operand:
            raise InvalidArgument(f"{name} {operator}: the list of values is empty")
        return name, operator, list(operand)
    return name, operator, operand


_CONDITION_STRING = re.compile(r"^\s*(\w+)\s*(<=|>=|!=|=|<|>)\s*(.+?)\s*$")


def parseConditionString(text: str) -> tuple[str, dict[str, Any]]:
    """('Run', {'>=': '5'}) for 'Run>=5'; comma-separated values give in / nin lists."""
    match = _CONDITION_STRING.match(text)
    if match is None:
        raise InvalidArgument(f"{text!r} is not a condition such as Run=5, Run>=5, Type=a,b or Type!=x")
    name, operator, value = match.groups()
    values = [v.strip() for v in value.split(",")] if "," in value else value
    return name, {operator: values}


def mergeConditions(texts: list[str]) -> dict[str, Any]:
    """A query dict from several condition strings (conditions on one field combine, e.g. a range)."""
    query: dict[str, dict[str, Any]] = {}
    for text in texts:
        name, condition = parseConditionString(text)
        query.setdefault(name, {}).update(condition)
    return query
