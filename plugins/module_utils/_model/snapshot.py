# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Snapshots: everything the decision engine may look at, as of one instant.

The format is the one of ``docs/decisions.md`` (``now``, ``intent``, ``policy``, ``alert``, ``observed``,
``history``). :func:`parse_snapshot` validates a parsed document and returns a typed, immutable
:class:`Snapshot`; a malformed document raises :class:`ValidationError` naming the field. Conventions:

* a metric that is missing or ``null`` is *unknown* (``None``), never 0;
* ``policy`` is resolved for the intent's service (:func:`policy_for`): the snapshot carries effective settings;
* ``expect`` (the answer in acceptance scenarios) is accepted and dropped: nothing downstream can read it;
* ``alert`` is one Alertmanager alert; keys this collection does not use are kept but not checked, since the
  payload format belongs to Alertmanager.

:func:`snapshot_to_dict` is the inverse, for journaling and replays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import (
    INTENT_SCHEMA,
    Intent,
    intent_from_dict,
    intent_problems,
    intent_to_dict,
    intent_with_defaults,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import (
    POLICY_SCHEMA,
    REMEDIATIONS,
    Policy,
    policy_for,
    policy_from_dict,
    policy_problems,
    policy_to_dict,
    policy_with_defaults,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import (
    Schema,
    format_datetime,
    parse_datetime,
    raise_problems,
)

METRICS = (
    "latency_p99_ms",
    "error_rate",
    "availability",
    "cpu_utilization",
    "memory_utilization",
    "requests_per_second",
)
OUTCOMES = ("pending", "recovered", "not_recovered", "failed")
SEVERITIES = ("critical", "high", "medium", "low")

_AMOUNT = {"type": ["number", "null"], "minimum": 0}
_PERCENT = {"type": ["number", "null"], "minimum": 0, "maximum": 100}
_COUNT = {"type": ["integer", "null"], "minimum": 0}
_TEXT = {"type": ["string", "null"]}
_FLAG = {"type": ["boolean", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_SHARE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
# The cluster as a whole at the same instant (principle 7, blast radius); a missing number: its rule does not apply.
PLATFORM = ("services_total", "services_breaching", "remediations_in_progress", "nodes_total", "nodes_cordoned")


def _mapping(properties: dict[str, Any], required: tuple[str, ...] = (), nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": ["object", "null"] if nullable else "object",
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        schema["required"] = list(required)
    return schema


def _embedded(schema: Mapping[str, Any]) -> dict[str, Any]:
    # A sub-document that may also be null (absent); "$schema" belongs to the root only.
    inner = {key: value for key, value in schema.items() if key not in ("$schema", "title")}
    return {**inner, "type": ["object", "null"]}


_WORKLOAD = _mapping(
    {
        "replicas": _COUNT,
        "ready_replicas": _COUNT,
        "revision": {"type": ["integer", "null"], "minimum": 1},
        "revisions": {
            "type": "array",
            "items": _mapping(
                {"revision": {"type": "integer", "minimum": 1}, "created": _TIME, "image": _TEXT},
                required=("revision", "created"),
            ),
        },
        "pods": {
            "type": "array",
            "items": _mapping(
                {
                    "name": {"type": "string", "minLength": 1},
                    "node": _TEXT,
                    "phase": _TEXT,
                    "ready": _FLAG,
                    "reason": _TEXT,
                    "restarts_15m": _COUNT,
                },
                required=("name",),
            ),
        },
        "drift": {
            "type": "array",
            "items": _mapping(
                {
                    "object": {"type": "string", "minLength": 1},
                    "field": {"type": "string", "minLength": 1},
                    "declared": {},
                    "live": {},
                },
                required=("object", "field"),
            ),
        },
    },
    nullable=True,
)

SNAPSHOT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "zerotouch.selfheal snapshot",
    "type": "object",
    "additionalProperties": False,
    "required": ["now"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "now": _TIME,
        "intent": _embedded(INTENT_SCHEMA),
        "policy": _embedded(POLICY_SCHEMA),
        "alert": {
            "type": ["object", "null"],
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["firing", "resolved"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "startsAt": _TIME,
                "fingerprint": {"type": "string"},
            },
        },
        "observed": _mapping(
            {
                "metrics": _mapping(
                    {name: _PERCENT if name in ("error_rate", "availability") else _AMOUNT for name in METRICS},
                    nullable=True,
                ),
                "workload": _WORKLOAD,
                "nodes": {
                    "type": ["object", "null"],
                    "additionalProperties": _mapping({"ready": _FLAG, "schedulable": _FLAG, "latency_p99_ms": _AMOUNT}),
                },
                "tenants": {
                    "type": ["object", "null"],
                    "additionalProperties": _mapping({"share": _SHARE, "baseline_share": _SHARE}),
                },
                "dependencies": {
                    "type": ["object", "null"],
                    "additionalProperties": _mapping({"healthy": _FLAG, "latency_p99_ms": _AMOUNT}),
                },
                "platform": _mapping({name: _COUNT for name in PLATFORM}, nullable=True),
                "patch": _mapping(
                    {
                        "image": {"type": "string", "minLength": 1},
                        "severity": {"type": "string", "enum": list(SEVERITIES)},
                    },
                    required=("image",),
                    nullable=True,
                ),
            },
            nullable=True,
        ),
        "history": {
            "type": ["array", "null"],
            "items": _mapping(
                {
                    "action": {"type": "string", "enum": [*REMEDIATIONS, "escalate", "none"]},
                    "at": _TIME,
                    "outcome": {"type": "string", "enum": list(OUTCOMES)},
                },
                required=("action", "at", "outcome"),
            ),
        },
        # The acceptance answer of a scenario: accepted so scenario files parse, and never kept.
        "expect": {},
    },
}

_SNAPSHOT = Schema(SNAPSHOT_SCHEMA)


# --- typed snapshot ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    status: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: dt.datetime | None = None
    fingerprint: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # Alertmanager keys this collection does not read

    @property
    def name(self) -> str | None:
        return self.labels.get("alertname")

    @property
    def firing(self) -> bool:
        return self.status == "firing"


@dataclass(frozen=True, slots=True)
class Metrics:
    """Service indicators over the last window; ``None`` is unknown."""

    latency_p99_ms: float | None = None
    error_rate: float | None = None
    availability: float | None = None
    cpu_utilization: float | None = None
    memory_utilization: float | None = None
    requests_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class Revision:
    revision: int
    created: dt.datetime
    image: str | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod that is not running cleanly."""

    name: str
    node: str | None = None
    phase: str | None = None
    reason: str | None = None
    restarts_15m: int | None = None
    ready: bool | None = None


@dataclass(frozen=True, slots=True)
class Drift:
    object: str
    field: str
    declared: Any = None
    live: Any = None


@dataclass(frozen=True, slots=True)
class Workload:
    replicas: int | None = None
    ready_replicas: int | None = None
    revision: int | None = None
    revisions: tuple[Revision, ...] = ()
    pods: tuple[Pod, ...] = ()
    drift: tuple[Drift, ...] = ()


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    ready: bool | None = None
    schedulable: bool | None = None
    latency_p99_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    share: float | None = None
    baseline_share: float | None = None  # its share over the policy's tenant_baseline window before the breach


@dataclass(frozen=True, slots=True)
class Dependency:
    name: str
    healthy: bool | None = None
    latency_p99_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Patch:
    image: str
    severity: str | None = None


@dataclass(frozen=True, slots=True)
class Platform:
    """Every service with an intent in the cluster, seen at once; ``None`` is unknown."""

    services_total: int | None = None
    services_breaching: int | None = None  # this service included
    remediations_in_progress: int | None = None  # this collection's actions not yet verified, on any service
    nodes_total: int | None = None
    nodes_cordoned: int | None = None  # nodes this collection cordoned and has not uncordoned


@dataclass(frozen=True, slots=True)
class Observed:
    metrics: Metrics = Metrics()
    workload: Workload | None = None  # None: the workload state is unknown
    nodes: tuple[Node, ...] = ()  # sorted by name
    tenants: tuple[Tenant, ...] = ()  # sorted by name
    dependencies: tuple[Dependency, ...] = ()  # sorted by name
    patch: Patch | None = None
    platform: Platform = Platform()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    action: str
    at: dt.datetime
    outcome: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: dt.datetime
    intent: Intent | None
    policy: Policy
    alert: Alert | None = None
    observed: Observed = Observed()
    history: tuple[HistoryEntry, ...] = ()  # oldest first
    id: str | None = None
    title: str | None = None
    source: str = ""


# --- parsing -----------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Copy a parsed document, writing datetimes (as YAML or Jinja may produce them) as ISO 8601 strings."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime):
        # A naive datetime keeps no offset, so the format check refuses it with a clear message.
        return value.isoformat() if value.tzinfo is None else format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _time(value: str | None) -> dt.datetime | None:
    return parse_datetime(value) if value is not None else None


def _alert(data: Mapping[str, Any] | None) -> Alert | None:
    if data is None:
        return None
    known = ("status", "labels", "annotations", "startsAt", "fingerprint")
    return Alert(
        status=data["status"],
        labels=dict(data.get("labels") or {}),
        annotations=dict(data.get("annotations") or {}),
        starts_at=_time(data.get("startsAt")),
        fingerprint=data.get("fingerprint"),
        extra={key: value for key, value in data.items() if key not in known},
    )


def _workload(data: Mapping[str, Any] | None) -> Workload | None:
    if data is None:
        return None
    revisions = sorted(
        (Revision(r["revision"], parse_datetime(r["created"]), r.get("image")) for r in data.get("revisions") or []),
        key=lambda revision: revision.revision,
    )
    return Workload(
        replicas=data.get("replicas"),
        ready_replicas=data.get("ready_replicas"),
        revision=data.get("revision"),
        revisions=tuple(revisions),
        pods=tuple(
            Pod(p["name"], p.get("node"), p.get("phase"), p.get("reason"), p.get("restarts_15m"), p.get("ready"))
            for p in data.get("pods") or []
        ),
        drift=tuple(Drift(d["object"], d["field"], d.get("declared"), d.get("live")) for d in data.get("drift") or []),
    )


def _observed(data: Mapping[str, Any] | None) -> Observed:
    data = data or {}
    metrics = data.get("metrics") or {}
    nodes = data.get("nodes") or {}
    tenants = data.get("tenants") or {}
    dependencies = data.get("dependencies") or {}
    patch = data.get("patch")
    return Observed(
        metrics=Metrics(**{name: metrics.get(name) for name in METRICS}),
        workload=_workload(data.get("workload")),
        nodes=tuple(
            Node(name, n.get("ready"), n.get("schedulable"), n.get("latency_p99_ms"))
            for name, n in sorted(nodes.items())
        ),
        tenants=tuple(Tenant(name, t.get("share"), t.get("baseline_share")) for name, t in sorted(tenants.items())),
        dependencies=tuple(
            Dependency(name, d.get("healthy"), d.get("latency_p99_ms")) for name, d in sorted(dependencies.items())
        ),
        patch=Patch(patch["image"], patch.get("severity")) if patch else None,
        platform=Platform(**{name: (data.get("platform") or {}).get(name) for name in PLATFORM}),
    )


def _history(entries: list[Mapping[str, Any]] | None) -> tuple[HistoryEntry, ...]:
    history = [HistoryEntry(e["action"], parse_datetime(e["at"]), e["outcome"]) for e in entries or []]
    # Journals write newest last, but the engine must not depend on a writer getting that right.
    return tuple(sorted(history, key=lambda entry: entry.at))


def _check(data: Mapping[str, Any], source: str) -> None:
    _SNAPSHOT.validate(data, source)
    problems: list[tuple[str, str]] = []
    if data.get("intent") is not None:
        problems += intent_problems(intent_with_defaults(data["intent"]), "intent")
    if data.get("policy") is not None:
        problems += policy_problems(data["policy"], "policy")
    if problems:
        raise_problems(source, problems)


def parse_snapshot(data: Mapping[str, Any], source: str = "<snapshot>") -> Snapshot:
    """Validate a parsed snapshot document, apply defaults and return the typed :class:`Snapshot`."""
    data = _plain(data)
    _check(data, source)
    intent = intent_with_defaults(data["intent"]) if data.get("intent") is not None else None
    if intent is not None:
        effective = policy_for(data.get("policy"), intent["namespace"], intent["service"])
    else:
        effective = policy_with_defaults(data.get("policy"))
        effective.pop("overrides", None)
    return Snapshot(
        now=parse_datetime(data["now"]),
        intent=intent_from_dict(intent) if intent is not None else None,
        policy=policy_from_dict(effective),
        alert=_alert(data.get("alert")),
        observed=_observed(data.get("observed")),
        history=_history(data.get("history")),
        id=data.get("id"),
        title=data.get("title"),
        source=source,
    )


# --- back to a document ------------------------------------------------------------------------------------------


def _workload_to_dict(workload: Workload) -> dict[str, Any]:
    return {
        "replicas": workload.replicas,
        "ready_replicas": workload.ready_replicas,
        "revision": workload.revision,
        "revisions": [
            {"revision": r.revision, "created": format_datetime(r.created), "image": r.image}
            for r in workload.revisions
        ],
        "pods": [
            {
                "name": p.name,
                "node": p.node,
                "phase": p.phase,
                "ready": p.ready,
                "reason": p.reason,
                "restarts_15m": p.restarts_15m,
            }
            for p in workload.pods
        ],
        "drift": [
            {"object": d.object, "field": d.field, "declared": d.declared, "live": d.live} for d in workload.drift
        ],
    }


def _observed_to_dict(observed: Observed) -> dict[str, Any]:
    patch = observed.patch
    return {
        "metrics": {name: getattr(observed.metrics, name) for name in METRICS},
        "workload": _workload_to_dict(observed.workload) if observed.workload is not None else None,
        "nodes": {
            n.name: {"ready": n.ready, "schedulable": n.schedulable, "latency_p99_ms": n.latency_p99_ms}
            for n in observed.nodes
        },
        "tenants": {
            t.name: {"share": t.share, **({"baseline_share": t.baseline_share} if t.baseline_share is not None else {})}
            for t in observed.tenants
        },
        "dependencies": {
            d.name: {"healthy": d.healthy, "latency_p99_ms": d.latency_p99_ms} for d in observed.dependencies
        },
        "patch": (
            {"image": patch.image, **({"severity": patch.severity} if patch.severity else {})} if patch else None
        ),
        "platform": {name: getattr(observed.platform, name) for name in PLATFORM},
    }


def _alert_to_dict(alert: Alert) -> dict[str, Any]:
    data: dict[str, Any] = {
        **alert.extra,
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
    }
    if alert.starts_at is not None:
        data["startsAt"] = format_datetime(alert.starts_at)
    if alert.fingerprint is not None:
        data["fingerprint"] = alert.fingerprint
    return data


def snapshot_to_dict(snapshot: Snapshot) -> dict[str, Any]:
    """A JSON-ready document of the snapshot; ``parse_snapshot(snapshot_to_dict(s))`` equals ``s``."""
    data: dict[str, Any] = {}
    if snapshot.id is not None:
        data["id"] = snapshot.id
    if snapshot.title is not None:
        data["title"] = snapshot.title
    data.update(
        {
            "now": format_datetime(snapshot.now),
            "intent": intent_to_dict(snapshot.intent) if snapshot.intent is not None else None,
            "policy": policy_to_dict(snapshot.policy),
            "alert": _alert_to_dict(snapshot.alert) if snapshot.alert is not None else None,
            "observed": _observed_to_dict(snapshot.observed),
            "history": [
                {"action": h.action, "at": format_datetime(h.at), "outcome": h.outcome} for h in snapshot.history
            ],
        }
    )
    return data
