"""Label and field selectors: the query-string syntax and the ``LabelSelector`` objects in specs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_CMP = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=|<|>)\s*(?P<value>[-A-Za-z0-9_.]*)\s*$")
_EXISTS = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")
_FIELD = re.compile(r"^\s*(?P<path>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*$")


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector: ``key op values``."""

    key: str
    op: str  # in, notin, exists, !exists, gt, lt
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "in":
            return value in self.values
        if self.op == "notin":
            return value not in self.values
        if self.op == "exists":
            return value is not None
        if self.op == "!exists":
            return value is None
        return _compare(self.op, value, next(iter(self.values)))

    def format(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        if self.op in ("gt", "lt"):
            return f"{self.key}{'>' if self.op == 'gt' else '<'}{next(iter(self.values))}"
        if self.op == "in" and len(self.values) == 1:
            return f"{self.key}={next(iter(self.values))}"
        return f"{self.key} {self.op} ({','.join(sorted(self.values))})"


LabelSelector = tuple[Requirement, ...]


def _compare(op: str, value: str | None, bound: str) -> bool:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return False
    return number is not None and (number > int(bound) if op == "gt" else number < int(bound))


def _split(text: str) -> list[str]:
    """Split on the commas that separate clauses, not the ones inside ``in (a,b)``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _parse_clause(clause: str) -> Requirement:
    if match := _SET.match(clause):
        values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
        return Requirement(match["key"], match["op"], values)
    if match := _CMP.match(clause):
        op = {"=": "in", "==": "in", "!=": "notin", ">": "gt", "<": "lt"}[match["op"]]
        if op in ("gt", "lt") and not match["value"].lstrip("-").isdigit():
            raise ValueError(f"unable to parse requirement: {clause!r}: value must be an integer")
        return Requirement(match["key"], op, frozenset({match["value"]}))
    if match := _EXISTS.match(clause):
        return Requirement(match["key"], "!exists" if match["neg"] else "exists")
    raise ValueError(f"unable to parse requirement: {clause.strip()!r}")


def parse_labels(text: str) -> LabelSelector:
    """Parse ``?labelSelector=``; raises ValueError on bad syntax (the server answers 400)."""
    return tuple(_parse_clause(clause) for clause in _split(text))


def from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """Turn a ``LabelSelector`` object (matchLabels/matchExpressions) into requirements."""
    selector = selector or {}
    result = [Requirement(k, "in", frozenset({str(v)})) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        if expr.get("operator") not in ops:
            raise ValueError(f"{expr.get('operator')!r} is not a valid label selector operator")
        result.append(Requirement(expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or ())))
    return tuple(result)


def matches(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    return all(req.matches(labels or {}) for req in selector)


def format_selector(selector: LabelSelector) -> str:
    """Render requirements in the string form a Scale's ``status.selector`` carries."""
    return ",".join(req.format() for req in sorted(selector, key=lambda req: req.key))


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.path) == self.value) != self.negate


def field_value(obj: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """A field as the server compares it: missing is the empty string, booleans are lowercase."""
    current: Any = obj
    for key in path:
        current = current.get(key) if isinstance(current, Mapping) else None
    if isinstance(current, bool):
        return str(current).lower()
    return "" if current is None else str(current)


def parse_fields(text: str) -> tuple[FieldRequirement, ...]:
    """Parse ``?fieldSelector=`` (``=``, ``==``, ``!=`` on dotted paths such as ``spec.nodeName``)."""
    result = []
    for clause in _split(text):
        match = _FIELD.match(clause)
        if match is None:
            raise ValueError(f"invalid field selector: {clause.strip()!r}")
        result.append(FieldRequirement(tuple(match["path"].split(".")), match["value"], match["op"] == "!="))
    return tuple(result)
