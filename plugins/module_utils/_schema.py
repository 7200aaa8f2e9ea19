# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Parsing helpers shared by the intent, policy and snapshot loaders.

* :func:`load_yaml` reads YAML the way people write intents: ``start: 18:00`` stays the string ``"18:00"``
  (PyYAML's YAML 1.1 resolver would turn it into the integer 1080), timestamps stay strings, and a key written
  twice in one mapping is an error instead of silently keeping the last value.
* :class:`Schema` validates a document with JSON Schema (Draft 2020-12) and turns jsonschema's messages into
  plain words that name the file, the dotted path and the problem.
* :func:`parse_datetime`, :func:`format_datetime` and :func:`get_zone` are the one place where times are read
  and written.

jsonschema is imported under a guard: modules must report a missing library with ``missing_required_lib``, so
validating without it raises :class:`MissingLibraryError` instead of failing at import time.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    MissingLibraryError,
    ValidationError,
)

try:
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError:  # pragma: no cover - exercised by Ansible's import sanity test, not by the unit tests
    HAS_JSONSCHEMA = False
    JSONSCHEMA_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_JSONSCHEMA = True
    JSONSCHEMA_IMPORT_ERROR = None

# Patterns shared by the schemas; PATTERN_HINTS says in words what each one accepts.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SERVICE_KEY_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
END_TIME_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """A Prometheus duration (``1h30m``, ``90s``, ``500ms``) in seconds; ValueError if it is not one."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _DURATION_UNITS[unit] for n, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text))


PATTERN_HINTS = {
    NAME_PATTERN: "a Kubernetes name (lowercase letters, digits and '-', at most 63 characters)",
    OBJECT_NAME_PATTERN: "a Kubernetes object name (lowercase letters, digits, '-' and '.')",
    SERVICE_KEY_PATTERN: 'written "namespace/service"',
    TIME_PATTERN: 'a time of day "HH:MM" (24-hour clock)',
    END_TIME_PATTERN: 'a time of day "HH:MM" (24-hour clock, or "24:00")',
    DURATION_PATTERN: 'a Prometheus duration such as "5m"',
}
FORMAT_HINTS = {
    "date-time": 'an ISO 8601 date-time with a UTC offset, such as "2026-03-01T00:00:00Z"',
    "timezone": 'an IANA time zone such as "UTC" or "Europe/Paris"',
}


# --- times -------------------------------------------------------------------------------------------------------


def parse_datetime(value: str | datetime) -> datetime:
    """Read an ISO 8601 date-time that carries a UTC offset; return it in UTC.

    A time without an offset is refused: "15:10" in which zone is exactly the ambiguity that makes replays lie.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"expected a date-time string, got {type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("no UTC offset: add Z or +HH:MM")
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """Write a date-time in UTC with a ``Z`` suffix (fractions only when present)."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


@functools.lru_cache(maxsize=64)
def get_zone(name: str) -> tzinfo:
    """Return the time zone called ``name``; UTC works even on hosts without a time zone database."""
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


# --- YAML --------------------------------------------------------------------------------------------------------


@functools.cache
def _loader() -> Any:
    """SafeLoader without YAML 1.1's sexagesimal numbers and timestamps, refusing duplicate keys.

    Built on first use: PyYAML is imported here, so a host without it gets MissingLibraryError, not an ImportError
    while the module loads.
    """
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - exercised by Ansible's import sanity test
        raise MissingLibraryError("PyYAML", traceback.format_exc()) from exc

    class Loader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]  # PyYAML ships no type hints
        pass

    def construct_mapping(loader: Any, node: Any) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} in one mapping", key_node.start_mark
                )
            mapping[key] = loader.construct_object(value_node, deep=True)
        return mapping

    Loader.yaml_implicit_resolvers = _plain_resolvers(yaml.SafeLoader.yaml_implicit_resolvers)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def _plain_resolvers(base: Mapping[Any, list[tuple[str, re.Pattern[str]]]]) -> dict[Any, list[tuple[str, Any]]]:
    # Drop the int/float/timestamp resolvers, then re-add int and float without their base-60 forms.
    dropped = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
    resolvers = {
        first: [(tag, regexp) for tag, regexp in entries if tag not in dropped] for first, entries in base.items()
    }
    int_re = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
    float_re = re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    )
    for tag, regexp, firsts in (
        ("tag:yaml.org,2002:int", int_re, "-+0123456789"),
        ("tag:yaml.org,2002:float", float_re, "-+0123456789."),
    ):
        for first in firsts:
            resolvers.setdefault(first, []).append((tag, regexp))
    return resolvers


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document; a syntax error becomes a ValidationError naming the file and line."""
    loader = _loader()
    import yaml  # present: _loader() succeeded

    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - the loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValidationError(source, "", f"not valid YAML{where}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ValidationError(source, "", f"not valid YAML: {exc}") from exc


# --- JSON Schema -------------------------------------------------------------------------------------------------


def join_path(prefix: str, parts: Iterable[str | int]) -> str:
    """``join_path("checkout", ["objectives", "max_latency_ms"])`` -> ``checkout.objectives.max_latency_ms``."""
    path = prefix
    for part in parts:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def render(value: Any) -> str:
    """Show a value the way the user wrote it in YAML: strings quoted, containers by kind."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _format_checker() -> Any:
    checker = FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_is_datetime)
    checker.checks("timezone", raises=ValueError)(_is_timezone)
    return checker


def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        parse_datetime(value)
    return True


def _is_timezone(value: object) -> bool:
    if isinstance(value, str):
        get_zone(value)
    return True


def _bounds(schema: Mapping[str, Any]) -> str:
    if "minimum" in schema and "maximum" in schema:
        return f" between {schema['minimum']} and {schema['maximum']}"
    limits = (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"), ("maximum", "<="))
    parts = [f"{op} {schema[key]}" for key, op in limits if key in schema]
    return f" {' and '.join(parts)}" if parts else ""


def expected(schema: Mapping[str, Any]) -> str:
    """Describe in words what a (sub)schema accepts: ``a number > 0``, ``true or false``, ``a mapping`` ..."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    nullable = "null" in types
    types = [kind for kind in types if kind != "null"]
    if "enum" in schema:
        values = [str(value) for value in schema["enum"]]
        text = values[0] if len(values) == 1 else f"one of [{', '.join(values)}]"
    elif types and set(types) <= {"number", "integer"}:
        text = ("a whole number" if types == ["integer"] else "a number") + _bounds(schema)
    elif types == ["boolean"]:
        text = "true or false"
    elif types == ["string"]:
        hint = PATTERN_HINTS.get(schema.get("pattern", "")) or FORMAT_HINTS.get(schema.get("format", ""))
        text = hint or ("a non-empty string" if schema.get("minLength") else "a string")
    elif types == ["object"]:
        text = "a mapping"
    elif types == ["array"]:
        text = "a list"
    else:
        text = " or ".join(types) or "valid"
    return f"{text} or null" if nullable else text


def _unknown_key_problem(key: str, allowed: Sequence[str]) -> str:
    problem = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f"{problem} (did you mean {close[0]!r}?)" if close else problem


def _problems(error: Any) -> list[tuple[list[str | int], str]]:
    """Translate one jsonschema error into (path parts, problem) pairs in plain words.

    An unknown key is reported at its parent's path; :func:`_sort_key` still places it where the key sits.
    """
    parts: list[str | int] = list(error.absolute_path)
    schema, instance, kind = error.schema, error.instance, error.validator
    if "propertyNames" in error.schema_path:
        return [(parts, f"key {render(instance)} must be {expected(schema)}")]
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        patterns = [re.compile(pattern) for pattern in schema.get("patternProperties", {})]
        extras = [key for key in instance if key not in allowed and not any(p.search(str(key)) for p in patterns)]
        return [(parts, _unknown_key_problem(str(key), allowed)) for key in extras]
    if kind == "required":
        return [(parts, f"required key {key!r} is missing") for key in error.validator_value if key not in instance]
    if kind in ("minItems", "minLength", "minProperties") and error.validator_value == 1:
        return [(parts, "must not be empty")]
    if kind == "uniqueItems":
        return [(parts, "must not list the same item twice")]
    problem = f"must be {expected(schema)}, got {render(instance)}"
    if kind == "format" and error.cause is not None:
        problem = f"{problem} ({error.cause})"
    if (
        kind == "type"
        and schema.get("pattern") in (TIME_PATTERN, END_TIME_PATTERN)
        and isinstance(instance, int)
        and not isinstance(instance, bool)
    ):
        # YAML 1.1 reads an unquoted 18:00 as 18*60+0; say how to write it.
        problem = f'{problem}: quote times in YAML ("{instance // 60:02d}:{instance % 60:02d}")'
    return [(parts, problem)]


def _sort_key(error: Any, instance: Any, parts: list[str | int], problem: str) -> tuple[int, ...]:
    if error.validator == "additionalProperties":
        key = next((k for k in error.instance if problem.startswith(f"unknown key {str(k)!r}")), None)
        if key is not None:
            return _document_order(instance, [*parts, key])
    if error.validator == "required" and isinstance(error.instance, Mapping):
        # A missing key comes after the keys that are there: a misspelt one explains it better.
        return (*_document_order(instance, parts), len(error.instance))
    return _document_order(instance, parts)


def _document_order(instance: Any, parts: Sequence[str | int]) -> tuple[int, ...]:
    # Report problems in the order a reader meets them in the file, not in schema order.
    order: list[int] = []
    node = instance
    for part in parts:
        if isinstance(node, Mapping):
            keys = list(node)
            order.append(keys.index(part) if part in keys else len(keys))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            order.append(part)
            node = node[part] if part < len(node) else None
        else:
            break
    return tuple(order)


_PRIORITY = {"additionalProperties": 0, "type": 1, "required": 2}


class Schema:
    """A compiled JSON Schema (Draft 2020-12) whose failures become :class:`ValidationError`."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._validator: Any = None

    def _compiled(self) -> Any:
        if not HAS_JSONSCHEMA:
            raise MissingLibraryError("jsonschema", JSONSCHEMA_IMPORT_ERROR)
        if self._validator is None:
            self._validator = Draft202012Validator(self.schema, format_checker=_format_checker())
        return self._validator

    def problems(self, instance: Any, prefix: str = "") -> list[tuple[str, str]]:
        """Every problem as (dotted path, problem), in document order; empty when the instance is valid."""
        found: list[tuple[tuple[int, ...], int, str, str]] = []
        seen: set[tuple[str, str]] = set()
        for error in self._compiled().iter_errors(instance):
            # At one place, an unknown key comes first: a misspelt key also makes a required one "missing".
            priority = _PRIORITY.get(error.validator, len(_PRIORITY))
            for parts, problem in _problems(error):
                path = join_path(prefix, parts)
                if (path, problem) not in seen:
                    seen.add((path, problem))
                    found.append((_sort_key(error, instance, parts, problem), priority, path, problem))
        found.sort(key=lambda item: item[:2])
        return [(path, problem) for _order, _rank, path, problem in found]

    def validate(self, instance: Any, source: str, prefix: str = "") -> None:
        """Raise ValidationError for the first problem (all of them in ``problems``)."""
        problems = self.problems(instance, prefix)
        if problems:
            raise_problems(source, problems)


def raise_problems(source: str, problems: Sequence[tuple[str, str]]) -> None:
    """Raise one ValidationError for a list of (path, problem) pairs; the first one is the message."""
    path, problem = problems[0]
    formatted = tuple(": ".join(part for part in (source, p, q) if part) for p, q in problems)
    raise ValidationError(source, path, problem, formatted)
