# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Guardrail policy: how often and when the platform may act on its own.

A policy file is one mapping of settings (every key optional; :data:`POLICY_DEFAULTS` fills the gaps) plus
``overrides`` per namespace and per service::

    cooldown_minutes: 10
    overrides:
      namespaces: {shop: {max_actions_per_hour: 2}}
      services: {"shop/checkout": {require_approval: [rollback]}}

:func:`policy_for` resolves the effective settings of one service: defaults, then the top level, then the
namespace override, then the service override, key by key (a list in an override replaces the list above it).
``protected_namespaces`` cannot be overridden: a namespace must not be able to lift its own protection.

Window helpers: :func:`in_window` (weekly windows such as maintenance windows and peak hours, evaluated in their
own time zone, possibly crossing midnight) and :func:`active_freeze` (absolute ISO 8601 freezes).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import (
    DURATION_PATTERN,
    END_TIME_PATTERN,
    NAME_PATTERN,
    SERVICE_KEY_PATTERN,
    TIME_PATTERN,
    Schema,
    format_datetime,
    get_zone,
    join_path,
    load_yaml,
    parse_datetime,
    raise_problems,
)

# Everything the platform can do on its own to a service (``none`` and ``escalate`` are not actions on it).
REMEDIATIONS = ("restart", "scale_up", "scale_down", "rollback", "reroute", "isolate_tenant", "patch", "reconcile")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

POLICY_DEFAULTS: dict[str, Any] = {
    "recent_change_minutes": 30,
    "cooldown_minutes": 10,
    "max_actions_per_hour": 3,
    "require_approval": [],
    "freeze_windows": [],
    "maintenance_windows": [],
    "peak_hours": None,
    "block_changes_during_peak": False,
    "protected_namespaces": ["kube-system"],
    "mode": "auto",
    "max_failed_attempts": 2,
    "learning_window_days": 7,
    "max_concurrent_remediations": 5,
    "max_cordoned_nodes": 1,
    "tenant_baseline": "1h",
    "approval_ttl": "30m",
    "observe_notify": False,
}
# The trust ladder (docs/decisions.md, principle 4): act alone, ask first, or only say what would be done.
MODES = ("auto", "approve", "observe")

_WINDOW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["start", "end"],
    "properties": {
        "days": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "enum": list(DAYS)},
        },
        "start": {"type": "string", "pattern": TIME_PATTERN},
        "end": {"type": "string", "pattern": END_TIME_PATTERN},
        "timezone": {"type": "string", "format": "timezone"},
    },
}
_FREEZE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["start", "end"],
    "properties": {
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "reason": {"type": "string"},
    },
}
_MINUTES = {"type": "number", "minimum": 0}
_SETTINGS: dict[str, Any] = {
    "recent_change_minutes": _MINUTES,
    "cooldown_minutes": _MINUTES,
    "max_actions_per_hour": {"type": "integer", "minimum": 0},
    "require_approval": {"type": "array", "uniqueItems": True, "items": {"type": "string", "enum": list(REMEDIATIONS)}},
    "freeze_windows": {"type": "array", "items": _FREEZE},
    "maintenance_windows": {"type": "array", "items": _WINDOW},
    "peak_hours": {**_WINDOW, "type": ["object", "null"]},
    "block_changes_during_peak": {"type": "boolean"},
    "protected_namespaces": {
        "type": "array",
        "uniqueItems": True,
        "items": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 63},
    },
    "mode": {"type": "string", "enum": list(MODES)},
    "max_failed_attempts": {"type": "integer", "minimum": 1},
    "learning_window_days": {"type": "number", "exclusiveMinimum": 0},
    "max_concurrent_remediations": {"type": "integer", "minimum": 1},
    "max_cordoned_nodes": {"type": "integer", "minimum": 0},
    "tenant_baseline": {"type": "string", "pattern": DURATION_PATTERN},
    # How long a proposal can be approved (docs/approvals.md); the engine never reads it.
    "approval_ttl": {"type": "string", "pattern": DURATION_PATTERN},
    # In mode observe, tell the escalation webhook what would have been done (marked as a dry run).
    "observe_notify": {"type": "boolean"},
}
_OVERRIDE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {key: schema for key, schema in _SETTINGS.items() if key != "protected_namespaces"},
}

POLICY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "zerotouch.selfheal guardrail policy",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **_SETTINGS,
        "overrides": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "namespaces": {
                    "type": "object",
                    "propertyNames": {"type": "string", "pattern": NAME_PATTERN},
                    "additionalProperties": _OVERRIDE,
                },
                "services": {
                    "type": "object",
                    "propertyNames": {"type": "string", "pattern": SERVICE_KEY_PATTERN},
                    "additionalProperties": _OVERRIDE,
                },
            },
        },
    },
}

_POLICY = Schema(POLICY_SCHEMA)


# --- typed view --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly window: on ``days`` (0 = Monday) from ``start`` to ``end`` minutes after local midnight.

    ``end <= start`` means the window crosses midnight; it then belongs to the day it starts on.
    """

    days: frozenset[int]
    start: int
    end: int
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class FreezeWindow:
    start: datetime
    end: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    recent_change_minutes: float = 30
    cooldown_minutes: float = 10
    max_actions_per_hour: int = 3
    require_approval: tuple[str, ...] = ()
    freeze_windows: tuple[FreezeWindow, ...] = ()
    maintenance_windows: tuple[Window, ...] = ()
    peak_hours: Window | None = None
    block_changes_during_peak: bool = False
    protected_namespaces: tuple[str, ...] = ("kube-system",)
    mode: str = "auto"
    max_failed_attempts: int = 2
    learning_window_days: float = 7
    max_concurrent_remediations: int = 5
    max_cordoned_nodes: int = 1
    tenant_baseline: str = "1h"


# --- defaults, overrides and checks ------------------------------------------------------------------------------


def policy_with_defaults(policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a copy of a (schema-valid) policy with every absent top-level setting at its default."""
    return copy.deepcopy({**POLICY_DEFAULTS, **(policy or {})})


def policy_for(policy: Mapping[str, Any] | None, namespace: str, service: str) -> dict[str, Any]:
    """The effective settings for ``namespace/service``: defaults < top level < namespace < service override."""
    complete = policy_with_defaults(policy)
    overrides = complete.pop("overrides", None) or {}
    for layer in (
        (overrides.get("namespaces") or {}).get(namespace),
        (overrides.get("services") or {}).get(f"{namespace}/{service}"),
    ):
        complete.update(copy.deepcopy(layer or {}))
    return complete


def _window_problems(window: Mapping[str, Any], parts: list[str | int]) -> list[tuple[str, str]]:
    if window["start"] == window["end"]:
        return [(join_path("", [*parts, "end"]), 'must differ from start (a whole day is "00:00" to "24:00")')]
    return []


def _freeze_problems(freeze: Mapping[str, Any], parts: list[str | int]) -> list[tuple[str, str]]:
    if parse_datetime(freeze["end"]) <= parse_datetime(freeze["start"]):
        return [(join_path("", [*parts, "end"]), f"must be after start {freeze['start']}, got {freeze['end']}")]
    return []


def _settings_problems(settings: Mapping[str, Any], parts: list[str | int]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for index, freeze in enumerate(settings.get("freeze_windows") or []):
        problems += _freeze_problems(freeze, [*parts, "freeze_windows", index])
    for index, window in enumerate(settings.get("maintenance_windows") or []):
        problems += _window_problems(window, [*parts, "maintenance_windows", index])
    if settings.get("peak_hours"):
        problems += _window_problems(settings["peak_hours"], [*parts, "peak_hours"])
    return problems


def policy_problems(policy: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Checks JSON Schema cannot express (a freeze that ends before it starts ...) on a schema-valid policy."""
    problems = _settings_problems(policy, [])
    overrides = policy.get("overrides") or {}
    for group in ("namespaces", "services"):
        for key, settings in (overrides.get(group) or {}).items():
            problems += _settings_problems(settings, ["overrides", group, key])
    if prefix:
        problems = [(f"{prefix}.{path}" if path else prefix, problem) for path, problem in problems]
    return problems


def validate_policy(policy: Any, source: str, prefix: str = "") -> dict[str, Any]:
    """Validate a policy document and return it with defaults (overrides kept, unresolved)."""
    if policy is None:
        policy = {}
    _POLICY.validate(policy, source, prefix)
    problems = policy_problems(policy, prefix)
    if problems:
        raise_problems(source, problems)
    return policy_with_defaults(policy)


def load_policy(path: str | Path | None) -> dict[str, Any]:
    """Read and validate a policy file; no path (or an empty file) means every default."""
    if path is None:
        return policy_with_defaults(None)
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(source, "", f"cannot be read: {exc.strerror or exc}") from exc
    return validate_policy(load_yaml(text, source), source)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def window_from_dict(window: Mapping[str, Any]) -> Window:
    days = window.get("days") or DAYS
    return Window(
        days=frozenset(DAYS.index(day) for day in days),
        start=_minutes(window["start"]),
        end=_minutes(window["end"]),
        timezone=window.get("timezone") or "UTC",
    )


def window_to_dict(window: Window) -> dict[str, Any]:
    return {
        "days": [day for index, day in enumerate(DAYS) if index in window.days],
        "start": f"{window.start // 60:02d}:{window.start % 60:02d}",
        "end": f"{window.end // 60:02d}:{window.end % 60:02d}",
        "timezone": window.timezone,
    }


def policy_from_dict(effective: Mapping[str, Any]) -> Policy:
    """Build the typed view of effective settings (the output of :func:`policy_for`)."""
    peak = effective.get("peak_hours")
    return Policy(
        recent_change_minutes=effective["recent_change_minutes"],
        cooldown_minutes=effective["cooldown_minutes"],
        max_actions_per_hour=effective["max_actions_per_hour"],
        require_approval=tuple(effective["require_approval"]),
        freeze_windows=tuple(
            FreezeWindow(parse_datetime(f["start"]), parse_datetime(f["end"]), f.get("reason"))
            for f in effective["freeze_windows"]
        ),
        maintenance_windows=tuple(window_from_dict(w) for w in effective["maintenance_windows"]),
        peak_hours=window_from_dict(peak) if peak else None,
        block_changes_during_peak=effective["block_changes_during_peak"],
        protected_namespaces=tuple(effective["protected_namespaces"]),
        mode=effective["mode"],
        max_failed_attempts=effective["max_failed_attempts"],
        learning_window_days=effective["learning_window_days"],
        max_concurrent_remediations=effective["max_concurrent_remediations"],
        max_cordoned_nodes=effective["max_cordoned_nodes"],
        tenant_baseline=effective["tenant_baseline"],
    )


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """The dict form of typed effective settings (the inverse of :func:`policy_from_dict`)."""
    freezes = []
    for freeze in policy.freeze_windows:
        item: dict[str, Any] = {"start": format_datetime(freeze.start), "end": format_datetime(freeze.end)}
        if freeze.reason is not None:
            item["reason"] = freeze.reason
        freezes.append(item)
    return {
        "recent_change_minutes": policy.recent_change_minutes,
        "cooldown_minutes": policy.cooldown_minutes,
        "max_actions_per_hour": policy.max_actions_per_hour,
        "require_approval": list(policy.require_approval),
        "freeze_windows": freezes,
        "maintenance_windows": [window_to_dict(w) for w in policy.maintenance_windows],
        "peak_hours": window_to_dict(policy.peak_hours) if policy.peak_hours else None,
        "block_changes_during_peak": policy.block_changes_during_peak,
        "protected_namespaces": list(policy.protected_namespaces),
        "mode": policy.mode,
        "max_failed_attempts": policy.max_failed_attempts,
        "learning_window_days": policy.learning_window_days,
        "max_concurrent_remediations": policy.max_concurrent_remediations,
        "max_cordoned_nodes": policy.max_cordoned_nodes,
        "tenant_baseline": policy.tenant_baseline,
    }


# --- windows -----------------------------------------------------------------------------------------------------


def in_window(window: Window, now: datetime) -> bool:
    """Whether ``now`` falls inside the weekly window, judged on the window's own wall clock."""
    local = now.astimezone(get_zone(window.timezone))
    second = local.hour * 3600 + local.minute * 60 + local.second
    start, end = window.start * 60, window.end * 60
    if start < end:
        return local.weekday() in window.days and start <= second < end
    # Crossing midnight: the evening part belongs to today, the morning part to the window that began yesterday.
    if second >= start:
        return local.weekday() in window.days
    return second < end and (local.weekday() - 1) % 7 in window.days


def active_window(windows: Iterable[Window], now: datetime) -> Window | None:
    """The first of ``windows`` that contains ``now``."""
    return next((window for window in windows if in_window(window, now)), None)


def active_freeze(freezes: Iterable[FreezeWindow], now: datetime) -> FreezeWindow | None:
    """The first freeze that contains ``now`` (start inclusive, end exclusive)."""
    return next((freeze for freeze in freezes if freeze.start <= now < freeze.end), None)
