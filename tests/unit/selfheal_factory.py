"""Builders for decision-engine tests: a healthy baseline snapshot and edits by dotted path.

The baseline is a service meeting every objective with no recent change, so each test row states only what
makes its situation different (``{"observed.metrics.latency_p99_ms": 480}``).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import Decision, decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import Snapshot, parse_snapshot

NOW = datetime(2026, 3, 4, 15, 10, tzinfo=UTC)  # a Wednesday
SCENARIOS = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios" / "public"

BASELINE: dict[str, Any] = {
    "id": "baseline",
    "now": "2026-03-04T15:10:00Z",
    "intent": {
        "service": "checkout",
        "namespace": "shop",
        "target": {"kind": "Deployment", "name": "checkout"},
        "objectives": {"availability": 99.9, "max_latency_ms": 250, "max_error_rate": 0.5},
        "recovery": {"min_replicas": 2, "max_replicas": 10, "target_cpu_utilization": 60},
    },
    "policy": {},
    "alert": {
        "status": "firing",
        "labels": {"alertname": "HighLatency", "service": "checkout", "namespace": "shop"},
        "startsAt": "2026-03-04T15:06:00Z",
        "fingerprint": "9f1c2e7a",
    },
    "observed": {
        "metrics": {
            "latency_p99_ms": 120,
            "error_rate": 0.1,
            "availability": 99.98,
            "cpu_utilization": 40,
            "memory_utilization": 50,
            "requests_per_second": 800,
        },
        "workload": {
            "replicas": 4,
            "ready_replicas": 4,
            "revision": 7,
            "revisions": [
                {"revision": 6, "created": "2026-02-20T10:00:00Z", "image": "shop/checkout:1.40"},
                {"revision": 7, "created": "2026-03-01T10:00:00Z", "image": "shop/checkout:1.41"},
            ],
            "pods": [],
            "drift": [],
        },
        "nodes": {
            "node-a": {"ready": True, "schedulable": True, "latency_p99_ms": 118},
            "node-b": {"ready": True, "schedulable": True, "latency_p99_ms": 121},
            "node-c": {"ready": True, "schedulable": True, "latency_p99_ms": 117},
        },
        "tenants": {"acme": {"share": 0.3}, "globex": {"share": 0.3}, "initech": {"share": 0.4}},
        "dependencies": {"payments-db": {"healthy": True, "latency_p99_ms": 12}},
    },
    "history": [],
}

DELETE = object()  # an edit value that removes the key


def ago(minutes: float, now: datetime = NOW) -> str:
    """An ISO 8601 time ``minutes`` before ``now`` (negative: after)."""
    return (now - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def edited(edits: dict[str, Any] | None = None, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of ``base`` (the baseline) with ``{"a.b.c": value}`` edits applied in order."""
    data = copy.deepcopy(BASELINE if base is None else base)
    for dotted, value in (edits or {}).items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[int(key)]
        if value is DELETE:
            node.pop(last, None)
        elif isinstance(node, list):
            node[int(last)] = copy.deepcopy(value)
        else:
            node[last] = copy.deepcopy(value)
    return data


def snapshot(edits: dict[str, Any] | None = None) -> Snapshot:
    return parse_snapshot(edited(edits), "test")


def decision(edits: dict[str, Any] | None = None) -> Decision:
    return decide(snapshot(edits))


def rollout(minutes_ago: float, image: str = "shop/checkout:1.42", revision: int = 8) -> dict[str, Any]:
    """Edits for a rollout to ``revision`` made ``minutes_ago`` before NOW."""
    revisions = copy.deepcopy(BASELINE["observed"]["workload"]["revisions"])
    revisions.append({"revision": revision, "created": ago(minutes_ago), "image": image})
    return {"observed.workload.revision": revision, "observed.workload.revisions": revisions}


def crashing(
    *names: str, reason: str = "CrashLoopBackOff", restarts: int = 6, phase: str = "Running"
) -> dict[str, Any]:
    """Edits for pods failing with ``reason`` (ready replicas reduced accordingly)."""
    pods = [
        {"name": name, "node": "node-a", "phase": phase, "reason": reason, "restarts_15m": restarts} for name in names
    ]
    return {"observed.workload.pods": pods, "observed.workload.ready_replicas": 4 - len(names)}


def history(*entries: tuple[str, float, str]) -> dict[str, Any]:
    """Edits for a history of (action, minutes ago, outcome), oldest first."""
    return {"history": [{"action": a, "at": ago(m), "outcome": o} for a, m, o in entries]}
