# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Service intents: what a service must deliver and what the platform may do on its own to keep it so.

An intent file holds one intent, a list of intents, or ``{intents: [...]}``; a directory holds ``*.yml`` and
``*.yaml`` intent files (not recursive, read in name order). Validation errors name the file, then a dotted path
that starts with the service name (``checkout.objectives.max_latency_ms``), then the problem.

The loaders return plain dicts with every default filled in by :func:`intent_with_defaults` (the one function
that knows the defaults; the snapshot parser uses it too). :func:`intent_from_dict` turns such a dict into the
typed :class:`Intent` the decision engine reads.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._prom import DEFAULT_QUERIES
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import (
    DURATION_PATTERN,
    NAME_PATTERN,
    OBJECT_NAME_PATTERN,
    Schema,
    join_path,
    load_yaml,
    raise_problems,
)

TARGET_KINDS = ("Deployment",)

RECOVERY_DEFAULTS: dict[str, Any] = {
    "rollback_on_regression": True,
    "allow_autoscale": True,
    "allow_restart": True,
    "allow_reroute": True,
    "allow_tenant_isolation": True,
    "min_replicas": 1,
    "max_replicas": 10,
    "target_cpu_utilization": 60,
}

# Indicators whose PromQL an intent may override: exactly those the Prometheus adapter queries, so an override
# can never silently miss.
INDICATORS = tuple(DEFAULT_QUERIES)

_PROMQL = {"type": "string", "minLength": 1}
_OPTIONAL_PROMQL = {"type": ["string", "null"], "minLength": 1}  # null: not set, the gatherer's default
_K8S_NAME = {"type": "string", "pattern": NAME_PATTERN, "maxLength": 63}
_BOOLEAN = {"type": "boolean"}

INTENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "zerotouch.selfheal service intent",
    "type": "object",
    "additionalProperties": False,
    "required": ["service", "namespace"],
    "properties": {
        "service": _K8S_NAME,
        "namespace": _K8S_NAME,
        "target": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "kind": {"type": "string", "enum": list(TARGET_KINDS)},
                "name": {"type": "string", "pattern": OBJECT_NAME_PATTERN, "maxLength": 253},
            },
        },
        "objectives": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "availability": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "max_latency_ms": {"type": "number", "exclusiveMinimum": 0},
                "max_error_rate": {"type": "number", "minimum": 0, "maximum": 100},
            },
        },
        "recovery": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "rollback_on_regression": _BOOLEAN,
                "allow_autoscale": _BOOLEAN,
                "allow_restart": _BOOLEAN,
                "allow_reroute": _BOOLEAN,
                "allow_tenant_isolation": _BOOLEAN,
                # At least one replica: an intent declares a service that must serve.
                "min_replicas": {"type": "integer", "minimum": 1},
                "max_replicas": {"type": "integer", "minimum": 1},
                "target_cpu_utilization": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "indicators": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{name: _PROMQL for name in INDICATORS},
                "window": {"type": "string", "pattern": DURATION_PATTERN},
                "tenant_window": {"type": "string", "pattern": DURATION_PATTERN},
            },
        },
        "manifests": {"type": ["string", "null"], "minLength": 1},
        "dependencies": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}, "query": _OPTIONAL_PROMQL},
            },
        },
        "tenants": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": ["query"],
            "properties": {"query": _PROMQL},
        },
    },
}

_INTENT = Schema(INTENT_SCHEMA)


# --- typed view --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Objectives:
    """Service level objectives; ``None`` means the owners did not declare that one."""

    availability: float | None = None
    max_latency_ms: float | None = None
    max_error_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Recovery:
    rollback_on_regression: bool = True
    allow_autoscale: bool = True
    allow_restart: bool = True
    allow_reroute: bool = True
    allow_tenant_isolation: bool = True
    min_replicas: int = 1
    max_replicas: int = 10
    target_cpu_utilization: float = 60


@dataclass(frozen=True, slots=True)
class DependencySpec:
    name: str
    query: str | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    service: str
    namespace: str
    target: Target
    objectives: Objectives = Objectives()
    recovery: Recovery = Recovery()
    indicators: Mapping[str, str] = field(default_factory=dict)
    manifests: str | None = None
    dependencies: tuple[DependencySpec, ...] = ()
    tenants_query: str | None = None

    @property
    def key(self) -> str:
        """``namespace/service``, the key used by policy overrides and the journal."""
        return f"{self.namespace}/{self.service}"


# --- defaults and checks -----------------------------------------------------------------------------------------


def intent_with_defaults(intent: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a (schema-valid) intent with every absent key set to its default."""
    data = copy.deepcopy(dict(intent))
    target = dict(data.get("target") or {})
    target.setdefault("kind", TARGET_KINDS[0])
    target.setdefault("name", data["service"])
    return {
        "service": data["service"],
        "namespace": data["namespace"],
        "target": target,
        "objectives": dict(data.get("objectives") or {}),
        "recovery": {**RECOVERY_DEFAULTS, **(data.get("recovery") or {})},
        "indicators": dict(data.get("indicators") or {}),
        "manifests": data.get("manifests"),
        "dependencies": [{"query": None, **dep} for dep in data.get("dependencies") or []],
        "tenants": data.get("tenants"),
    }


def intent_problems(intent: Mapping[str, Any], prefix: str) -> list[tuple[str, str]]:
    """Checks that span several fields (JSON Schema cannot say them); ``intent`` has its defaults applied."""
    problems: list[tuple[str, str]] = []
    recovery = intent["recovery"]
    if recovery["min_replicas"] > recovery["max_replicas"]:
        problems.append(
            (
                join_path(prefix, ["recovery", "min_replicas"]),
                f"must not exceed max_replicas {recovery['max_replicas']}, got {recovery['min_replicas']}",
            )
        )
    seen: set[str] = set()
    for index, dependency in enumerate(intent["dependencies"]):
        if dependency["name"] in seen:
            problems.append(
                (
                    join_path(prefix, ["dependencies", index, "name"]),
                    f"dependency {dependency['name']!r} is listed twice",
                )
            )
        seen.add(dependency["name"])
    return problems


def intent_prefix(intent: Any, fallback: str) -> str:
    """The path prefix of an intent in messages: its service name when it is a valid one."""
    if isinstance(intent, Mapping):
        service = intent.get("service")
        if isinstance(service, str) and re.fullmatch(NAME_PATTERN, service):
            return service
    return fallback


def _all_problems(intent: Any, prefix: str) -> list[tuple[str, str]]:
    problems = _INTENT.problems(intent, prefix)
    return problems or intent_problems(intent_with_defaults(intent), prefix)


def validate_intent(intent: Any, source: str, prefix: str | None = None) -> dict[str, Any]:
    """Validate one intent and return it with defaults; raise ValidationError naming ``source`` and the path."""
    problems = _all_problems(intent, intent_prefix(intent, "") if prefix is None else prefix)
    if problems:
        raise_problems(source, problems)
    return intent_with_defaults(intent)


def intent_from_dict(intent: Mapping[str, Any]) -> Intent:
    """Build the typed view of an intent that :func:`intent_with_defaults` completed."""
    objectives = intent["objectives"]
    recovery = intent["recovery"]
    tenants = intent.get("tenants") or {}
    return Intent(
        service=intent["service"],
        namespace=intent["namespace"],
        target=Target(kind=intent["target"]["kind"], name=intent["target"]["name"]),
        objectives=Objectives(
            availability=objectives.get("availability"),
            max_latency_ms=objectives.get("max_latency_ms"),
            max_error_rate=objectives.get("max_error_rate"),
        ),
        recovery=Recovery(**recovery),
        indicators=dict(intent.get("indicators") or {}),
        manifests=intent.get("manifests"),
        dependencies=tuple(DependencySpec(d["name"], d.get("query")) for d in intent.get("dependencies") or []),
        tenants_query=tenants.get("query"),
    )


def intent_to_dict(intent: Intent) -> dict[str, Any]:
    """The complete dict form of a typed intent (the inverse of :func:`intent_from_dict`)."""
    objectives = {
        name: value
        for name in ("availability", "max_latency_ms", "max_error_rate")
        if (value := getattr(intent.objectives, name)) is not None
    }
    return {
        "service": intent.service,
        "namespace": intent.namespace,
        "target": {"kind": intent.target.kind, "name": intent.target.name},
        "objectives": objectives,
        "recovery": {name: getattr(intent.recovery, name) for name in RECOVERY_DEFAULTS},
        "indicators": dict(intent.indicators),
        "manifests": intent.manifests,
        "dependencies": [{"name": dep.name, "query": dep.query} for dep in intent.dependencies],
        "tenants": {"query": intent.tenants_query} if intent.tenants_query else None,
    }


# --- loaders -----------------------------------------------------------------------------------------------------


def intents_from_document(document: Any, source: str) -> list[dict[str, Any]]:
    """Validate the intents of one parsed file: an intent, a list of intents, or ``{intents: [...]}``."""
    if isinstance(document, Mapping) and "service" not in document and set(document) == {"intents"}:
        document = document["intents"]
    if isinstance(document, Mapping):
        return [validate_intent(document, source)]
    if document is None:
        raise ValidationError(source, "", "contains no intent")
    if not isinstance(document, list):
        raise ValidationError(source, "", "must hold an intent, a list of intents or {intents: [...]}")
    # Report the problems of every intent in the file at once, not one intent per run.
    problems = [p for i, item in enumerate(document) for p in _all_problems(item, intent_prefix(item, f"intents[{i}]"))]
    if problems:
        raise_problems(source, problems)
    intents = [intent_with_defaults(item) for item in document]
    _check_unique([(source, intent) for intent in intents])
    return intents


def load_intent_file(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate one intent file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(source, "", f"cannot be read: {exc.strerror or exc}") from exc
    intents = intents_from_document(load_yaml(text, source), source)
    # A relative manifests directory means "next to this intent file", wherever the check runs from.
    for intent in intents:
        if intent.get("manifests") and not Path(intent["manifests"]).is_absolute():
            intent["manifests"] = os.path.normpath(Path(path).resolve().parent / intent["manifests"])
    return intents


def intent_files(path: str | Path) -> list[Path]:
    """The intent files at ``path``: the file itself, or the ``*.yml``/``*.yaml`` files of a directory."""
    root = Path(path)
    if root.is_dir():
        return sorted(p for p in root.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    if not root.exists():
        raise ValidationError(str(path), "", "no such file or directory")
    return [root]


def load_intents_with_sources(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """Like :func:`load_intents`, each intent paired with the file that declares it."""
    loaded = [(str(file), intent) for file in intent_files(path) for intent in load_intent_file(file)]
    _check_unique(loaded)
    return loaded


def load_intents(path: str | Path) -> list[dict[str, Any]]:
    """Load every intent in a file or a directory; the same namespace/service twice is an error."""
    return [intent for _source, intent in load_intents_with_sources(path)]


def find_intent(intents: list[dict[str, Any]], namespace: str, service: str) -> dict[str, Any] | None:
    """The intent of ``namespace/service``, or None when the service has none."""
    return next((i for i in intents if i["namespace"] == namespace and i["service"] == service), None)


def _check_unique(loaded: list[tuple[str, dict[str, Any]]]) -> None:
    first_seen: dict[tuple[str, str], str] = {}
    for source, intent in loaded:
        key = (intent["namespace"], intent["service"])
        if key in first_seen:
            where = "earlier in this file" if first_seen[key] == source else f"in {first_seen[key]}"
            problem = f"duplicate intent for {key[0]}/{key[1]}: already declared {where}"
            raise ValidationError(source, intent["service"], problem)
        first_seen[key] = source
