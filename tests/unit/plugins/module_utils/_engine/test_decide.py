"""The decision engine: public scenarios, then every rule and guardrail on variants the scenarios do not list."""

from __future__ import annotations

import dataclasses
import math
import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import ACTIONS, _ceil_ratio, decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import DecisionError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import load_yaml
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import (
    DELETE,
    NOW,
    SCENARIOS,
    ago,
    crashing,
    decision,
    history,
    rollout,
    snapshot,
)

SLOW = {"observed.metrics.latency_p99_ms": 480}
ERRORS = {"observed.metrics.error_rate": 4.0, "observed.metrics.availability": 96.0}
HOT = {"observed.metrics.cpu_utilization": 90}
UNKNOWN = {f"observed.metrics.{m}": None for m in ("latency_p99_ms", "error_rate", "availability")}


def merge(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    return out


# --- the public scenarios ----------------------------------------------------------------------------------------


def _scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.yml")) if SCENARIOS.is_dir() else []


@pytest.mark.skipif(not SCENARIOS.is_dir(), reason=f"public scenarios not found at {SCENARIOS}")
@pytest.mark.parametrize("path", _scenario_files(), ids=lambda p: p.stem)
def test_public_scenario(path: Path) -> None:
    document = load_yaml(path.read_text(encoding="utf-8"), str(path))
    expect = document["expect"]
    result = decide(parse_snapshot(document, str(path)))
    assert result.action == expect["action"], result.reasons
    for key, value in (expect.get("params") or {}).items():
        assert result.params.get(key) == value, (key, result.params)
    assert result.proposed == expect.get("proposed")


@pytest.mark.skipif(not SCENARIOS.is_dir(), reason=f"public scenarios not found at {SCENARIOS}")
def test_public_scenarios_are_all_there() -> None:
    # Guards the parametrised test above against silently testing nothing.
    assert len(_scenario_files()) >= 24


@pytest.mark.skipif(not SCENARIOS.is_dir(), reason=f"public scenarios not found at {SCENARIOS}")
def test_expect_block_cannot_steer_the_decision() -> None:
    path = _scenario_files()[0]
    document = load_yaml(path.read_text(encoding="utf-8"), str(path))
    tampered = {**document, "expect": {"action": "patch", "params": {"image": "x"}, "proposed": "restart"}}
    assert decide(parse_snapshot(tampered, "t")) == decide(parse_snapshot(document, "t"))


# --- one table per principle -------------------------------------------------------------------------------------

Row = tuple[str, dict[str, Any], str, dict[str, Any], str]  # id, edits, action, params (exactly), rule

SCOPE_AND_IMPACT: list[Row] = [
    ("healthy", {}, "none", {}, "no-impact"),
    ("resolved-alert-despite-breach", merge(SLOW, HOT, {"alert.status": "resolved"}), "none", {}, "alert-resolved"),
    ("no-intent", merge(SLOW, {"intent": None}), "none", {}, "no-intent"),
    ("no-alert-periodic-check-healthy", {"alert": None}, "none", {}, "no-impact"),
    ("no-alert-periodic-check-breach", merge(SLOW, HOT, {"alert": None}), "scale_up", {"replicas": 6}, "scale-up"),
    ("cpu-alert-alone", {"observed.metrics.cpu_utilization": 97}, "none", {}, "no-impact"),
    ("latency-equal-to-objective-is-met", {"observed.metrics.latency_p99_ms": 250}, "none", {}, "no-impact"),
    ("availability-equal-to-objective-is-met", {"observed.metrics.availability": 99.9}, "none", {}, "no-impact"),
    ("error-rate-equal-to-objective-is-met", {"observed.metrics.error_rate": 0.5}, "none", {}, "no-impact"),
    ("no-objectives-declared", merge(SLOW, {"intent.objectives": {}}), "none", {}, "no-impact"),
    (
        "no-objectives-but-crashing-pods",
        merge(crashing("p1"), {"intent.objectives": {}}),
        "restart",
        {"pods": ["p1"]},
        "restart",
    ),
    ("ready-below-desired-unexplained", {"observed.workload.ready_replicas": 3}, "escalate", {}, "no-known-cause"),
    (
        "pod-ready-again-after-one-oom",
        {
            "observed.workload.pods": [
                {"name": "p1", "phase": "Running", "ready": True, "reason": "OOMKilled", "restarts_15m": 1}
            ]
        },
        "none",
        {},
        "no-impact",
    ),
]

NEVER_BLIND: list[Row] = [
    ("all-unknown-healthy-workload", UNKNOWN, "escalate", {}, "blind"),
    ("metrics-block-absent", {"observed.metrics": DELETE}, "escalate", {}, "blind"),
    ("one-unknown-others-met", {"observed.metrics.error_rate": None}, "escalate", {}, "blind"),
    (
        "unknown-but-other-objective-breached",
        merge(SLOW, HOT, {"observed.metrics.error_rate": None}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "unknown-metric-of-undeclared-objective",
        {"observed.metrics.error_rate": None, "intent.objectives.max_error_rate": DELETE},
        "none",
        {},
        "no-impact",
    ),
    ("unknown-but-pods-crash", merge(UNKNOWN, crashing("p1", "p2")), "restart", {"pods": ["p1", "p2"]}, "restart"),
    (
        "unknown-and-scaled-to-zero",
        merge(UNKNOWN, {"observed.workload.replicas": 0, "observed.workload.ready_replicas": 0}),
        "scale_up",
        {"replicas": 2},
        "scale-to-min",
    ),
    ("workload-unknown-metrics-met", {"observed.workload": None}, "none", {}, "no-impact"),
    ("workload-unknown-breach", merge(SLOW, HOT, {"observed.workload": None}), "escalate", {}, "no-known-cause"),
    (
        "breach-but-cpu-unknown",
        merge(SLOW, {"observed.metrics.cpu_utilization": None}),
        "escalate",
        {},
        "no-known-cause",
    ),
]

ROLLBACK: list[Row] = [
    ("latency-after-rollout", merge(SLOW, rollout(15)), "rollback", {"to_revision": 7}, "rollback"),
    ("errors-after-rollout", merge(ERRORS, rollout(2)), "rollback", {"to_revision": 7}, "rollback"),
    ("rollout-exactly-at-the-limit", merge(SLOW, rollout(30)), "rollback", {"to_revision": 7}, "rollback"),
    ("rollout-just-too-old", merge(SLOW, rollout(31)), "escalate", {}, "no-known-cause"),
    (
        "longer-recent-window",
        merge(SLOW, rollout(45), {"policy.recent_change_minutes": 60}),
        "rollback",
        {"to_revision": 7},
        "rollback",
    ),
    (
        "new-pods-fail-objectives-met",
        merge(rollout(20), crashing("p1", reason="ImagePullBackOff", restarts=0, phase="Pending")),
        "rollback",
        {"to_revision": 7},
        "rollback",
    ),
    ("new-pods-crash-objectives-met", merge(rollout(5), crashing("p1")), "rollback", {"to_revision": 7}, "rollback"),
    (
        "rollout-still-progressing",
        merge(
            rollout(3),
            {
                "observed.workload.ready_replicas": 3,
                "observed.workload.pods": [{"name": "p9", "phase": "Pending", "reason": "ContainerCreating"}],
            },
        ),
        "none",
        {},
        "no-impact",
    ),
    (
        "revision-gaps",
        merge(
            SLOW,
            {
                "observed.workload.revision": 12,
                "observed.workload.revisions": [
                    {"revision": 3, "created": "2026-01-01T00:00:00Z"},
                    {"revision": 9, "created": "2026-02-01T00:00:00Z"},
                    {"revision": 12, "created": ago(4)},
                ],
            },
        ),
        "rollback",
        {"to_revision": 9},
        "rollback",
    ),
    (
        "revisions-listed-out-of-order",
        merge(
            SLOW,
            {
                "observed.workload.revision": 8,
                "observed.workload.revisions": [
                    {"revision": 8, "created": ago(4)},
                    {"revision": 6, "created": "2026-01-01T00:00:00Z"},
                    {"revision": 7, "created": "2026-02-01T00:00:00Z"},
                ],
            },
        ),
        "rollback",
        {"to_revision": 7},
        "rollback",
    ),
    (
        "first-revision-nothing-to-return-to",
        merge(
            SLOW,
            HOT,
            {"observed.workload.revision": 1, "observed.workload.revisions": [{"revision": 1, "created": ago(5)}]},
        ),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "rollback-forbidden-next-cause",
        merge(SLOW, HOT, rollout(10), {"intent.recovery.rollback_on_regression": False}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "rollback-forbidden-nothing-else",
        merge(SLOW, rollout(10), {"intent.recovery.rollback_on_regression": False}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "rollback-already-failed-this-hour",
        merge(SLOW, rollout(28), history(("rollback", 20, "not_recovered"))),
        "escalate",
        {},
        "no-known-cause",
    ),
    ("rollout-in-the-future-clock-skew", merge(SLOW, rollout(-2)), "rollback", {"to_revision": 7}, "rollback"),
    (
        "recent-revision-is-our-own-rollback",
        merge(SLOW, rollout(20), history(("rollback", 20, "recovered"))),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "human-rollout-after-our-rollback",
        merge(SLOW, rollout(5), history(("rollback", 40, "recovered"))),
        "rollback",
        {"to_revision": 7},
        "rollback",
    ),
    (
        "rollback-beats-drift",
        merge(
            ERRORS,
            rollout(5),
            {
                "observed.workload.drift": [
                    {"object": "Service/checkout", "field": "spec.ports[0].targetPort", "declared": 8080, "live": 9090}
                ]
            },
        ),
        "rollback",
        {"to_revision": 7},
        "rollback",
    ),
]

DRIFT = {
    "observed.workload.drift": [
        {"object": "Service/checkout", "field": "spec.ports[0].targetPort", "declared": 8080, "live": 9090},
        {"object": "ConfigMap/checkout", "field": "data.POOL", "declared": "20", "live": "2"},
    ]
}
RECONCILE_AND_MIN: list[Row] = [
    (
        "drift-and-breach",
        merge(ERRORS, DRIFT),
        "reconcile",
        {
            "objects": ["ConfigMap/checkout", "Service/checkout"],
            "fields": [
                {"object": "Service/checkout", "field": "spec.ports[0].targetPort"},
                {"object": "ConfigMap/checkout", "field": "data.POOL"},
            ],
        },
        "reconcile",
    ),
    ("drift-without-breach", DRIFT, "none", {}, "no-impact"),
    (
        "drift-beats-saturation",
        merge(SLOW, HOT, {"observed.workload.drift": DRIFT["observed.workload.drift"][:1]}),
        "reconcile",
        {
            "objects": ["Service/checkout"],
            "fields": [{"object": "Service/checkout", "field": "spec.ports[0].targetPort"}],
        },
        "reconcile",
    ),
    (
        "below-min-with-breach",
        merge(ERRORS, {"observed.workload.replicas": 1, "observed.workload.ready_replicas": 1}),
        "scale_up",
        {"replicas": 2},
        "scale-to-min",
    ),
    (
        "below-min-without-impact",
        {"observed.workload.replicas": 1, "observed.workload.ready_replicas": 1},
        "none",
        {},
        "no-impact",
    ),
    (
        "scaled-to-zero-higher-min",
        {"observed.workload.replicas": 0, "observed.workload.ready_replicas": 0, "intent.recovery.min_replicas": 3},
        "scale_up",
        {"replicas": 3},
        "scale-to-min",
    ),
    (
        "scaled-to-zero-autoscale-forbidden",
        {
            "observed.workload.replicas": 0,
            "observed.workload.ready_replicas": 0,
            "intent.recovery.allow_autoscale": False,
        },
        "escalate",
        {},
        "no-known-cause",
    ),
]

RESTART: list[Row] = [
    ("some-pods-crash", merge(ERRORS, crashing("p2", "p1")), "restart", {"pods": ["p1", "p2"]}, "restart"),
    ("every-pod-crashes", merge(ERRORS, crashing("p1", "p2", "p3", "p4")), "restart", {}, "restart"),
    (
        "stuck-not-ready",
        {
            "observed.workload.ready_replicas": 3,
            "observed.workload.pods": [{"name": "p1", "node": "node-a", "phase": "Running", "ready": False}],
        },
        "restart",
        {"pods": ["p1"]},
        "restart",
    ),
    (
        "restarts-without-reason",
        merge(ERRORS, {"observed.workload.pods": [{"name": "p1", "phase": "Running", "restarts_15m": 4}]}),
        "restart",
        {"pods": ["p1"]},
        "restart",
    ),
    ("memory-high", merge(ERRORS, {"observed.metrics.memory_utilization": 92}), "restart", {}, "restart"),
    ("memory-exactly-90", merge(ERRORS, {"observed.metrics.memory_utilization": 90}), "restart", {}, "restart"),
    (
        "memory-just-below-90",
        merge(ERRORS, {"observed.metrics.memory_utilization": 89.9}),
        "escalate",
        {},
        "no-known-cause",
    ),
    ("memory-high-without-breach", {"observed.metrics.memory_utilization": 95}, "none", {}, "no-impact"),
    (
        "crash-after-rollout-rollback-forbidden",
        merge(crashing("p1"), rollout(5), {"intent.recovery.rollback_on_regression": False}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "image-pull-without-rollout",
        crashing("p1", reason="ImagePullBackOff", restarts=0, phase="Pending"),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "config-error",
        crashing("p1", reason="CreateContainerConfigError", restarts=0, phase="Pending"),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "unschedulable",
        crashing("p1", reason="Unschedulable", restarts=0, phase="Pending"),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "restart-forbidden",
        merge(crashing("p1"), {"intent.recovery.allow_restart": False}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "restart-failed-this-hour",
        merge(crashing("p1"), history(("restart", 30, "failed"))),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "restart-pending-past-its-cooldown",
        merge(crashing("p1"), history(("restart", 20, "pending"))),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "restart-failed-over-an-hour-ago",
        merge(crashing("p1"), history(("restart", 61, "failed"))),
        "restart",
        {"pods": ["p1"]},
        "restart",
    ),
    (
        "restart-recovered-earlier-crash-again",
        merge(crashing("p1"), history(("restart", 30, "recovered"))),
        "restart",
        {"pods": ["p1"]},
        "restart",
    ),
]

SLOW_NODE = {"observed.nodes.node-b.latency_p99_ms": 900}
REROUTE_AND_TENANT: list[Row] = [
    ("one-slow-node", merge(SLOW, SLOW_NODE), "reroute", {"node": "node-b"}, "reroute"),
    ("one-slow-node-saturated-too", merge(SLOW, HOT, SLOW_NODE), "reroute", {"node": "node-b"}, "reroute"),
    (
        "two-slow-nodes",
        merge(SLOW, SLOW_NODE, {"observed.nodes.node-c.latency_p99_ms": 700}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "slow-node-but-another-unknown",
        merge(SLOW, SLOW_NODE, {"observed.nodes.node-c.latency_p99_ms": None}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "single-node-nowhere-to-go",
        merge(SLOW, {"observed.nodes": {"node-a": {"ready": True, "latency_p99_ms": 900}}}),
        "escalate",
        {},
        "no-known-cause",
    ),
    ("node-not-ready", merge(ERRORS, {"observed.nodes.node-c.ready": False}), "reroute", {"node": "node-c"}, "reroute"),
    (
        "two-nodes-not-ready",
        merge(ERRORS, {"observed.nodes.node-c.ready": False, "observed.nodes.node-a.ready": False}),
        "escalate",
        {},
        "no-known-cause",
    ),
    ("node-not-ready-no-impact", {"observed.nodes.node-c.ready": False}, "none", {}, "no-impact"),
    ("slow-node-error-breach-only", merge(ERRORS, SLOW_NODE), "escalate", {}, "no-known-cause"),
    (
        "reroute-forbidden",
        merge(SLOW, HOT, SLOW_NODE, {"intent.recovery.allow_reroute": False}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "noisy-tenant",
        merge(SLOW, {"observed.tenants": {"acme": {"share": 0.72}, "globex": {"share": 0.28}}}),
        "isolate_tenant",
        {"tenant": "acme"},
        "isolate-tenant",
    ),
    (
        "tenant-exactly-half",
        merge(ERRORS, {"observed.tenants": {"a": {"share": 0.5}, "b": {"share": 0.3}}}),
        "isolate_tenant",
        {"tenant": "a"},
        "isolate-tenant",
    ),
    (
        "tenant-just-below-half",
        merge(SLOW, HOT, {"observed.tenants": {"a": {"share": 0.49}, "b": {"share": 0.51}}}),
        "isolate_tenant",
        {"tenant": "b"},
        "isolate-tenant",
    ),
    (
        "no-majority-tenant",
        merge(SLOW, HOT, {"observed.tenants": {"a": {"share": 0.49}, "b": {"share": 0.21}}}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "two-tenants-at-half",
        merge(SLOW, {"observed.tenants": {"a": {"share": 0.5}, "b": {"share": 0.5}}}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "only-tenant-is-all-traffic",
        merge(SLOW, {"observed.tenants": {"a": {"share": 1.0}}}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "majority-tenant-no-breach",
        {"observed.tenants": {"a": {"share": 0.9}, "b": {"share": 0.1}}},
        "none",
        {},
        "no-impact",
    ),
    (
        "isolation-forbidden",
        merge(
            SLOW,
            HOT,
            {
                "observed.tenants": {"a": {"share": 0.8}, "b": {"share": 0.2}},
                "intent.recovery.allow_tenant_isolation": False,
            },
        ),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
]

SCALE_UP: list[Row] = [
    ("saturated", merge(SLOW, HOT), "scale_up", {"replicas": 6}, "scale-up"),
    (
        "cpu-at-target-adds-one",
        merge(SLOW, {"observed.metrics.cpu_utilization": 60}),
        "scale_up",
        {"replicas": 5},
        "scale-up",
    ),
    (
        "exact-arithmetic",
        merge(
            SLOW,
            {
                "observed.metrics.cpu_utilization": 66,
                "observed.workload.replicas": 10,
                "observed.workload.ready_replicas": 10,
                "intent.recovery.max_replicas": 20,
            },
        ),
        "scale_up",
        {"replicas": 11},
        "scale-up",
    ),
    (
        "float-rounding-would-add-one",
        merge(SLOW, {"observed.metrics.cpu_utilization": 99.9, "intent.recovery.target_cpu_utilization": 66.6}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "fractional-cpu",
        merge(
            SLOW,
            {
                "observed.metrics.cpu_utilization": 70.5,
                "observed.workload.replicas": 3,
                "observed.workload.ready_replicas": 3,
            },
        ),
        "scale_up",
        {"replicas": 4},
        "scale-up",
    ),
    (
        "capped",
        merge(
            SLOW,
            {
                "observed.metrics.cpu_utilization": 95,
                "observed.workload.replicas": 8,
                "observed.workload.ready_replicas": 8,
            },
        ),
        "scale_up",
        {"replicas": 10},
        "scale-up",
    ),
    (
        "higher-cap",
        merge(
            SLOW,
            {
                "observed.metrics.cpu_utilization": 95,
                "observed.workload.replicas": 10,
                "observed.workload.ready_replicas": 10,
                "intent.recovery.max_replicas": 20,
            },
        ),
        "scale_up",
        {"replicas": 16},
        "scale-up",
    ),
    (
        "other-target",
        merge(SLOW, {"observed.metrics.cpu_utilization": 90, "intent.recovery.target_cpu_utilization": 45}),
        "scale_up",
        {"replicas": 8},
        "scale-up",
    ),
    (
        "at-cap",
        merge(
            SLOW,
            {
                "observed.metrics.cpu_utilization": 95,
                "observed.workload.replicas": 10,
                "observed.workload.ready_replicas": 10,
            },
        ),
        "escalate",
        {},
        "scale-up-at-cap",
    ),
    ("cpu-below-target", merge(SLOW, {"observed.metrics.cpu_utilization": 59}), "escalate", {}, "no-known-cause"),
    ("errors-not-latency", merge(ERRORS, HOT), "escalate", {}, "no-known-cause"),
    (
        "autoscale-forbidden",
        merge(SLOW, HOT, {"intent.recovery.allow_autoscale": False}),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "scale-up-failed-this-hour",
        merge(SLOW, HOT, history(("scale_up", 25, "not_recovered"))),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "saturation-ranks-above-dependency",
        merge(SLOW, HOT, {"observed.dependencies.payments-db.healthy": False}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "dependency-down",
        merge(SLOW, {"observed.dependencies.payments-db.healthy": False}),
        "escalate",
        {},
        "dependency",
    ),
    ("dependency-down-no-breach", {"observed.dependencies.payments-db.healthy": False}, "none", {}, "no-impact"),
    (
        "dependency-health-unknown",
        merge(SLOW, {"observed.dependencies.payments-db.healthy": None}),
        "escalate",
        {},
        "no-known-cause",
    ),
]

GUARDRAILS: list[Row] = [
    (
        "protected-namespace",
        merge(SLOW, HOT, {"intent.namespace": "kube-system"}),
        "escalate",
        {},
        "protected-namespace",
    ),
    (
        "custom-protected-namespace",
        merge(SLOW, HOT, {"policy.protected_namespaces": ["shop"]}),
        "escalate",
        {},
        "protected-namespace",
    ),
    ("protected-but-healthy", {"intent.namespace": "kube-system"}, "none", {}, "no-impact"),
    ("cooldown-pending", merge(SLOW, HOT, history(("scale_up", 5, "pending"))), "none", {}, "cooldown"),
    ("cooldown-recovered", merge(SLOW, HOT, history(("restart", 5, "recovered"))), "none", {}, "cooldown"),
    ("cooldown-boundary-inclusive", merge(SLOW, HOT, history(("restart", 10, "recovered"))), "none", {}, "cooldown"),
    ("cooldown-over", merge(SLOW, HOT, history(("restart", 11, "recovered"))), "scale_up", {"replicas": 6}, "scale-up"),
    (
        "cooldown-zero",
        merge(SLOW, HOT, history(("restart", 1, "recovered")), {"policy.cooldown_minutes": 0}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "not-recovered-overrides-cooldown",
        merge(SLOW, HOT, history(("restart", 3, "not_recovered"))),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "failed-overrides-cooldown-same-kind-skipped",
        merge(SLOW, HOT, history(("scale_up", 3, "failed"))),
        "escalate",
        {},
        "no-known-cause",
    ),
    (
        "escalations-are-not-actions",
        merge(SLOW, HOT, history(("escalate", 2, "pending"))),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    ("future-entry-counts-as-now", merge(SLOW, HOT, history(("restart", -3, "recovered"))), "none", {}, "cooldown"),
    (
        "breaker",
        merge(
            SLOW,
            HOT,
            history(("scale_up", 50, "recovered"), ("restart", 30, "recovered"), ("reroute", 15, "recovered")),
        ),
        "escalate",
        {},
        "circuit-breaker",
    ),
    (
        "breaker-counts-failures",
        merge(
            SLOW,
            HOT,
            history(("restart", 50, "failed"), ("reroute", 40, "failed"), ("isolate_tenant", 30, "not_recovered")),
        ),
        "escalate",
        {},
        "circuit-breaker",
    ),
    (
        "breaker-oldest-outside-hour",
        merge(
            SLOW,
            HOT,
            history(("scale_up", 61, "recovered"), ("restart", 30, "recovered"), ("reroute", 15, "recovered")),
        ),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "breaker-higher-limit",
        merge(
            SLOW,
            HOT,
            history(("scale_up", 50, "recovered"), ("restart", 30, "recovered"), ("reroute", 15, "recovered")),
            {"policy.max_actions_per_hour": 4},
        ),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "breaker-zero-means-never",
        merge(SLOW, HOT, {"policy.max_actions_per_hour": 0}),
        "escalate",
        {},
        "circuit-breaker",
    ),
    (
        "history-written-newest-first",
        merge(
            SLOW,
            HOT,
            {
                "history": [
                    {"action": "restart", "at": ago(3), "outcome": "pending"},
                    {"action": "scale_up", "at": ago(40), "outcome": "recovered"},
                ]
            },
        ),
        "none",
        {},
        "cooldown",
    ),
]


def _check(edits: dict[str, Any], action: str, params: dict[str, Any], rule: str) -> None:
    result = decision(edits)
    assert (result.action, result.rule) == (action, rule), result.reasons
    assert dict(result.params) == params, result.reasons
    if action != "escalate":
        assert result.proposed is None


DAY = 24 * 60
SURGE = {"observed.tenants": {"acme": {"share": 0.6, "baseline_share": 0.4}, "globex": {"share": 0.4}}}
PLATFORM = "observed.platform"
LEARNING_AND_BLAST_RADIUS: list[Row] = [
    # The victim tenant (principle 3): a majority share is the cause only when it grew to 1.5 x its baseline.
    ("tenant-share-exactly-1.5x-baseline", merge(SLOW, SURGE), "isolate_tenant", {"tenant": "acme"}, "isolate-tenant"),
    (
        "tenant-share-just-under-1.5x-baseline",
        merge(SLOW, HOT, {"observed.tenants.acme.baseline_share": 0.41}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "tenant-new-since-baseline",
        merge(SLOW, {"observed.tenants": {"acme": {"share": 0.7, "baseline_share": 0.0}}}),
        "isolate_tenant",
        {"tenant": "acme"},
        "isolate-tenant",
    ),
    (
        "majority-tenant-usual-traffic-nothing-else",
        merge(SLOW, {"observed.tenants": {"acme": {"share": 0.7, "baseline_share": 0.65}}}),
        "escalate",
        {},
        "no-known-cause",
    ),
    # Learning (principle 4): failures within learning_window_days reaching max_failed_attempts skip the action.
    (
        "restart-failed-exactly-max-times",
        merge(
            SLOW,
            HOT,
            {"observed.metrics.memory_utilization": 95},
            history(("restart", 3 * DAY, "failed"), ("restart", 2 * DAY, "not_recovered")),
        ),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "restart-failed-once-below-max",
        merge(SLOW, {"observed.metrics.memory_utilization": 95}, history(("restart", 2 * DAY, "failed"))),
        "restart",
        {},
        "restart",
    ),
    (
        "one-failure-older-than-the-window",
        merge(
            SLOW,
            {"observed.metrics.memory_utilization": 95},
            history(("restart", 7 * DAY + 1, "failed"), ("restart", 2 * DAY, "failed")),
        ),
        "restart",
        {},
        "restart",
    ),
    (
        "failure-exactly-at-the-window-edge-counts",
        merge(
            SLOW,
            HOT,
            {"observed.metrics.memory_utilization": 95},
            history(("restart", 7 * DAY, "failed"), ("restart", 2 * DAY, "failed")),
        ),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "recovered-attempts-do-not-count",
        merge(
            SLOW,
            {"observed.metrics.memory_utilization": 95},
            history(("restart", 3 * DAY, "recovered"), ("restart", 2 * DAY, "recovered")),
        ),
        "restart",
        {},
        "restart",
    ),
    (
        "learning-limit-from-policy",
        merge(
            SLOW,
            {"observed.metrics.memory_utilization": 95, "policy.max_failed_attempts": 3},
            history(("restart", 3 * DAY, "failed"), ("restart", 2 * DAY, "failed")),
        ),
        "restart",
        {},
        "restart",
    ),
    (
        "learned-and-nothing-else-escalates",
        merge(
            SLOW,
            {"observed.metrics.memory_utilization": 95},
            history(("restart", 3 * DAY, "failed"), ("restart", 2 * DAY, "failed")),
        ),
        "escalate",
        {},
        "no-known-cause",
    ),
    # Blast radius (principle 7).
    (
        "concurrent-remediations-below-limit",
        merge(SLOW, HOT, {PLATFORM: {"remediations_in_progress": 4}}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "exactly-half-of-the-services-breach",
        merge(SLOW, HOT, {PLATFORM: {"services_total": 10, "services_breaching": 5}}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "most-of-three-services-breach-says-nothing",
        merge(SLOW, HOT, {PLATFORM: {"services_total": 3, "services_breaching": 3}}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "correlated-breach-own-rollback-proceeds",
        merge(SLOW, rollout(10), {PLATFORM: {"services_total": 4, "services_breaching": 3}}),
        "rollback",
        {"to_revision": 7},
        "rollback",
    ),
    (
        "two-nodes-reroute-would-leave-one",
        merge(
            SLOW,
            HOT,
            {"observed.nodes": {"node-a": {"ready": True, "latency_p99_ms": 100}, "node-b": {"ready": False}}},
            {PLATFORM: {"nodes_total": 2, "nodes_cordoned": 0}},
        ),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "three-nodes-reroute-leaves-two",
        merge(SLOW, SLOW_NODE, {PLATFORM: {"nodes_total": 3, "nodes_cordoned": 0}}),
        "reroute",
        {"node": "node-b"},
        "reroute",
    ),
    (
        "cordon-limit-reached",
        merge(SLOW, HOT, SLOW_NODE, {PLATFORM: {"nodes_total": 6, "nodes_cordoned": 1}}),
        "scale_up",
        {"replicas": 6},
        "scale-up",
    ),
    (
        "cordon-limit-raised",
        merge(SLOW, SLOW_NODE, {PLATFORM: {"nodes_total": 6, "nodes_cordoned": 1}, "policy.max_cordoned_nodes": 2}),
        "reroute",
        {"node": "node-b"},
        "reroute",
    ),
    (
        "unknown-platform-numbers-apply-no-rule",
        merge(SLOW, SLOW_NODE, {PLATFORM: {"services_total": None, "nodes_cordoned": None}}),
        "reroute",
        {"node": "node-b"},
        "reroute",
    ),
]

RULES: list[Row] = [
    *SCOPE_AND_IMPACT,
    *NEVER_BLIND,
    *ROLLBACK,
    *RECONCILE_AND_MIN,
    *RESTART,
    *REROUTE_AND_TENANT,
    *SCALE_UP,
    *GUARDRAILS,
    *LEARNING_AND_BLAST_RADIUS,
]


@pytest.mark.parametrize(("edits", "action", "params", "rule"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(edits: dict[str, Any], action: str, params: dict[str, Any], rule: str) -> None:
    _check(edits, action, params, rule)


@pytest.mark.parametrize(
    ("edits", "proposed", "rule"),
    [
        (merge(SLOW, HOT, {PLATFORM: {"remediations_in_progress": 5}}), "scale_up", "concurrency-limit"),
        (merge(ERRORS, crashing("p1"), {PLATFORM: {"remediations_in_progress": 9}}), "restart", "concurrency-limit"),
        (
            merge(SLOW, HOT, {PLATFORM: {"services_total": 10, "services_breaching": 6}}),
            "scale_up",
            "correlated-breach",
        ),
        (merge(SLOW, HOT, {PLATFORM: {"services_total": 4, "services_breaching": 3}}), "scale_up", "correlated-breach"),
        (merge(SLOW, HOT, {"policy.mode": "approve"}), "scale_up", "approval"),
        (merge(SLOW, rollout(10), {"policy.mode": "approve"}), "rollback", "approval"),
    ],
)
def test_blast_radius_and_approve_mode_propose(edits: dict[str, Any], proposed: str, rule: str) -> None:
    result = decision(edits)
    assert (result.action, result.proposed, result.rule) == ("escalate", proposed, rule), result.reasons
    assert result.params == {}


def test_learning_names_the_failed_attempts() -> None:
    failures = history(("restart", 3 * DAY, "failed"), ("restart", 2 * DAY, "not_recovered"))
    result = decision(merge(SLOW, HOT, {"observed.metrics.memory_utilization": 95}, failures))
    text = " ".join(result.reasons)
    assert ago(3 * DAY) in text and ago(2 * DAY) in text and "max_failed_attempts 2" in text


def test_victim_tenant_is_named_as_usual_traffic() -> None:
    result = decision(merge(SLOW, HOT, {"observed.tenants": {"acme": {"share": 0.64, "baseline_share": 0.62}}}))
    assert result.action == "scale_up"
    assert any("acme" in r and "usual traffic" in r for r in result.reasons), result.reasons


@pytest.mark.parametrize(
    ("edits", "proposed"),
    [
        (merge(SLOW, rollout(10)), "rollback"),
        (merge(SLOW, HOT), "scale_up"),
        (merge(ERRORS, crashing("p1")), "restart"),
        ({"observed.metrics.cpu_utilization": 10}, "scale_down"),
    ],
)
def test_observe_mode_proposes_and_changes_nothing(edits: dict[str, Any], proposed: str) -> None:
    result = decision(merge(edits, {"policy.mode": "observe"}))
    assert (result.action, result.proposed, result.rule) == ("none", proposed, "observe"), result.reasons
    assert result.params == {}


@pytest.mark.parametrize(
    ("edits", "rule"),
    [
        (merge(SLOW, {"observed.metrics.cpu_utilization": 20}), "no-known-cause"),
        (merge(SLOW, HOT, {"policy.require_approval": ["scale_up"]}), "approval"),
        (merge(SLOW, HOT, {"intent.namespace": "kube-system"}), "protected-namespace"),
    ],
)
def test_observe_mode_keeps_escalations(edits: dict[str, Any], rule: str) -> None:
    result = decision(merge(edits, {"policy.mode": "observe"}))
    assert (result.action, result.rule) == ("escalate", rule), result.reasons


@pytest.mark.parametrize(
    ("overrides", "action"),
    [
        ({"namespaces": {"shop": {"mode": "observe"}}}, "none"),
        ({"services": {"shop/checkout": {"mode": "approve"}}}, "escalate"),
        ({"namespaces": {"shop": {"mode": "observe"}}, "services": {"shop/checkout": {"mode": "auto"}}}, "scale_up"),
        ({"namespaces": {"other": {"mode": "observe"}}}, "scale_up"),
    ],
)
def test_mode_overrides_per_namespace_and_service(overrides: dict[str, Any], action: str) -> None:
    result = decision(merge(SLOW, HOT, {"policy.overrides": overrides}))
    assert result.action == action, result.reasons


def test_scale_down_waits_out_a_correlated_breach() -> None:
    quiet = {"observed.metrics.cpu_utilization": 10}
    assert decision(quiet).action == "scale_down"
    result = decision(merge(quiet, {PLATFORM: {"services_total": 10, "services_breaching": 8}}))
    assert (result.action, result.rule) == ("none", "no-impact"), result.reasons


@pytest.mark.parametrize(
    ("approve", "edits", "proposed", "proposed_params"),
    [
        (["rollback"], merge(SLOW, rollout(10)), "rollback", {"to_revision": 7}),
        (["scale_up"], merge(SLOW, HOT), "scale_up", {"replicas": 6}),
        (["restart", "patch"], merge(ERRORS, crashing("p1")), "restart", {"pods": ["p1"]}),
        (["reroute"], merge(SLOW, SLOW_NODE), "reroute", {"node": "node-b"}),
    ],
)
def test_approval_escalates_with_the_proposal(
    approve: list[str], edits: dict[str, Any], proposed: str, proposed_params: dict[str, Any]
) -> None:
    result = decision(merge(edits, {"policy.require_approval": approve}))
    assert (result.action, result.proposed, dict(result.proposed_params)) == ("escalate", proposed, proposed_params)
    assert result.params == {}


def test_approval_of_another_action_does_not_apply() -> None:
    result = decision(merge(SLOW, HOT, {"policy.require_approval": ["rollback"]}))
    assert (result.action, result.proposed) == ("scale_up", None)


def test_breaker_wins_over_approval_and_proposes_nothing() -> None:
    busy = history(("scale_up", 50, "recovered"), ("restart", 30, "recovered"), ("reroute", 15, "recovered"))
    result = decision(merge(SLOW, HOT, busy, {"policy.require_approval": ["scale_up"]}))
    assert (result.action, result.proposed, result.rule) == ("escalate", None, "circuit-breaker")


def test_protected_namespace_explains_the_diagnosis_but_proposes_nothing() -> None:
    result = decision(merge(SLOW, HOT, {"intent.namespace": "kube-system"}))
    assert result.proposed is None
    assert any("diagnosis" in reason and "scale up" in reason for reason in result.reasons)


def test_service_override_of_policy_reaches_the_engine() -> None:
    overrides = {
        "services": {"shop/checkout": {"require_approval": ["scale_up"]}},
        "namespaces": {"other": {"require_approval": ["restart"]}},
    }
    result = decision(merge(SLOW, HOT, {"policy.overrides": overrides}))
    assert (result.action, result.proposed) == ("escalate", "scale_up")


# --- patches (principle 5) ---------------------------------------------------------------------------------------

WEEKEND_NIGHTS = [{"days": ["sat", "sun"], "start": "02:00", "end": "05:00", "timezone": "UTC"}]
SATURDAY_3AM = "2026-03-07T03:00:00Z"
IMAGE = {"image": "shop/checkout:1.41.1"}


def _patch(severity: str = "high", **edits: Any) -> dict[str, Any]:
    base = {
        "observed.patch": {"image": "shop/checkout:1.41.1", "severity": severity},
        "policy.maintenance_windows": WEEKEND_NIGHTS,
        "now": SATURDAY_3AM,
    }
    return {**base, **{key.replace("__", "."): value for key, value in edits.items()}}


PATCHES: list[Row] = [
    ("in-window", _patch(), "patch", IMAGE, "patch"),
    ("outside-window", _patch(now="2026-03-04T15:10:00Z"), "none", {}, "patch-deferred"),
    ("window-end-is-exclusive", _patch(now="2026-03-07T05:00:00Z"), "none", {}, "patch-deferred"),
    ("window-start-is-inclusive", _patch(now="2026-03-07T02:00:00Z"), "patch", IMAGE, "patch"),
    ("critical-outside-window", _patch("critical", now="2026-03-04T15:10:00Z"), "patch", IMAGE, "patch"),
    ("critical-without-any-window", _patch("critical", policy__maintenance_windows=[]), "patch", IMAGE, "patch"),
    ("high-without-any-window", _patch(policy__maintenance_windows=[]), "none", {}, "patch-deferred"),
    (
        "critical-in-freeze",
        _patch("critical", policy__freeze_windows=[{"start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z"}]),
        "none",
        {},
        "patch-deferred",
    ),
    (
        "in-window-but-frozen",
        _patch(
            policy__freeze_windows=[{"start": "2026-03-07T00:00:00Z", "end": "2026-03-07T12:00:00Z", "reason": "sale"}]
        ),
        "none",
        {},
        "patch-deferred",
    ),
    (
        "freeze-end-is-exclusive",
        _patch(policy__freeze_windows=[{"start": "2026-03-06T00:00:00Z", "end": SATURDAY_3AM}]),
        "patch",
        IMAGE,
        "patch",
    ),
    (
        "freeze-with-offset",
        _patch(policy__freeze_windows=[{"start": "2026-03-07T03:30:00+01:00", "end": "2026-03-07T06:00:00+01:00"}]),
        "none",
        {},
        "patch-deferred",
    ),
    (
        "critical-during-blocked-peak",
        _patch(
            "critical",
            now="2026-03-04T15:10:00Z",
            policy__block_changes_during_peak=True,
            policy__peak_hours={"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"},
        ),
        "none",
        {},
        "patch-deferred",
    ),
    (
        "critical-during-unblocked-peak",
        _patch(
            "critical",
            now="2026-03-04T15:10:00Z",
            policy__peak_hours={"days": ["wed"], "start": "09:00", "end": "18:00"},
        ),
        "patch",
        IMAGE,
        "patch",
    ),
    ("patch-waits-for-breach-fix", merge(_patch(), SLOW, HOT), "scale_up", {"replicas": 6}, "scale-up"),
    ("patch-never-blind", merge(_patch(), {"observed.metrics.error_rate": None}), "escalate", {}, "blind"),
    (
        "patch-already-running",
        _patch(observed__patch={"image": "shop/checkout:1.41", "severity": "high"}),
        "none",
        {},
        "patch-applied",
    ),
    ("patch-in-protected-namespace", _patch(intent__namespace="kube-system"), "escalate", {}, "protected-namespace"),
    (
        "patch-in-cooldown",
        merge(_patch(), {"history": [{"action": "restart", "at": "2026-03-07T02:55:00Z", "outcome": "recovered"}]}),
        "none",
        {},
        "cooldown",
    ),
    (
        "patch-failed-this-hour",
        merge(_patch(), {"history": [{"action": "patch", "at": "2026-03-07T02:30:00Z", "outcome": "failed"}]}),
        "escalate",
        {},
        "already-tried",
    ),
    (
        "overnight-window-after-midnight",
        _patch(policy__maintenance_windows=[{"days": ["fri"], "start": "23:00", "end": "04:00"}]),
        "patch",
        IMAGE,
        "patch",
    ),
    (
        "overnight-window-wrong-start-day",
        _patch(policy__maintenance_windows=[{"days": ["sat"], "start": "23:00", "end": "04:00"}]),
        "none",
        {},
        "patch-deferred",
    ),
    (
        "window-in-local-time",
        _patch(
            policy__maintenance_windows=[
                {"days": ["sat"], "start": "03:30", "end": "05:00", "timezone": "Europe/Paris"}
            ]
        ),
        "patch",
        IMAGE,
        "patch",
    ),
    (
        "window-in-local-time-not-yet",
        _patch(
            policy__maintenance_windows=[
                {"days": ["sat"], "start": "04:30", "end": "05:00", "timezone": "Europe/Paris"}
            ]
        ),
        "none",
        {},
        "patch-deferred",
    ),
    (
        "window-days-default-to-every-day",
        _patch(now="2026-03-04T03:00:00Z", policy__maintenance_windows=[{"start": "02:00", "end": "05:00"}]),
        "patch",
        IMAGE,
        "patch",
    ),
]


@pytest.mark.parametrize(("edits", "action", "params", "rule"), [r[1:] for r in PATCHES], ids=[r[0] for r in PATCHES])
def test_patches(edits: dict[str, Any], action: str, params: dict[str, Any], rule: str) -> None:
    _check(edits, action, params, rule)


def test_patch_needing_approval_is_proposed() -> None:
    result = decision(merge(_patch(), {"policy.require_approval": ["patch"]}))
    assert (result.action, result.proposed, dict(result.proposed_params)) == (
        "escalate",
        "patch",
        {"image": "shop/checkout:1.41.1"},
    )


# --- scale down (the quiet path) ---------------------------------------------------------------------------------

IDLE = {"observed.metrics.cpu_utilization": 20, "observed.workload.replicas": 8, "observed.workload.ready_replicas": 8}
SCALE_DOWN: list[Row] = [
    ("idle", IDLE, "scale_down", {"replicas": 3}, "scale-down"),
    ("exactly-half-of-target", {"observed.metrics.cpu_utilization": 30}, "scale_down", {"replicas": 2}, "scale-down"),
    ("just-above-half", {"observed.metrics.cpu_utilization": 31}, "none", {}, "no-impact"),
    (
        "never-below-min",
        merge(IDLE, {"observed.metrics.cpu_utilization": 5, "intent.recovery.min_replicas": 4}),
        "scale_down",
        {"replicas": 4},
        "scale-down",
    ),
    ("already-at-min", merge(IDLE, {"intent.recovery.min_replicas": 8}), "none", {}, "no-impact"),
    ("autoscale-forbidden", merge(IDLE, {"intent.recovery.allow_autoscale": False}), "none", {}, "no-impact"),
    (
        "peak-hours",
        merge(IDLE, {"policy.peak_hours": {"days": ["wed"], "start": "09:00", "end": "18:00"}}),
        "none",
        {},
        "no-impact",
    ),
    (
        "outside-peak-hours",
        merge(IDLE, {"policy.peak_hours": {"days": ["wed"], "start": "09:00", "end": "15:00"}}),
        "scale_down",
        {"replicas": 3},
        "scale-down",
    ),
    ("after-a-scale-up-this-hour", merge(IDLE, history(("scale_up", 45, "recovered"))), "none", {}, "no-impact"),
    (
        "hours-after-a-scale-up",
        merge(IDLE, history(("scale_up", 180, "recovered"))),
        "scale_down",
        {"replicas": 3},
        "scale-down",
    ),
    ("protected", merge(IDLE, {"intent.namespace": "kube-system"}), "none", {}, "no-impact"),
    ("rollout-in-progress", merge(IDLE, rollout(3)), "none", {}, "no-impact"),
    (
        "metric-unknown-is-blind-not-idle",
        merge(IDLE, {"observed.metrics.latency_p99_ms": None}),
        "escalate",
        {},
        "blind",
    ),
    ("cpu-unknown", merge(IDLE, {"observed.metrics.cpu_utilization": None}), "none", {}, "no-impact"),
]


@pytest.mark.parametrize(
    ("edits", "action", "params", "rule"), [r[1:] for r in SCALE_DOWN], ids=[r[0] for r in SCALE_DOWN]
)
def test_scale_down(edits: dict[str, Any], action: str, params: dict[str, Any], rule: str) -> None:
    _check(edits, action, params, rule)


def test_scale_down_needing_approval_is_proposed() -> None:
    result = decision(merge(IDLE, {"policy.require_approval": ["scale_down"]}))
    assert (result.action, result.proposed, dict(result.proposed_params)) == ("escalate", "scale_down", {"replicas": 3})


# --- explanations ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edits", "sentence"),
    [
        (SLOW, "p99 latency 480 ms breaches max_latency_ms 250"),
        (ERRORS, "error rate 4% breaches max_error_rate 0.5%"),
        (ERRORS, "availability 96% is below the availability objective 99.9%"),
        ({"observed.metrics.error_rate": None}, "error rate is unknown, so max_error_rate 0.5% cannot be judged"),
        (
            merge(SLOW, rollout(15)),
            "rollout to revision 8 (shop/checkout:1.42) 15 min before now is a recent change "
            "(recent_change_minutes 30) and the service breaches: roll back to revision 7 (shop/checkout:1.41)",
        ),
        (
            merge(SLOW, HOT),
            "p99 latency breaches and CPU 90% is at or above target_cpu_utilization 60%: scale up from "
            "4 to ceil(4 x 90 / 60) = 6 replicas",
        ),
        (
            merge(SLOW, {"observed.dependencies.payments-db.healthy": False}),
            "dependency payments-db (p99 12 ms) is unhealthy: scaling or restarting checkout will not help",
        ),
        (
            merge(SLOW, HOT, history(("scale_up", 4, "pending"))),
            f"scale_up at {ago(4)} (4 min before now, outcome pending) is within cooldown_minutes 10: wait while it is "
            "verified",
        ),
    ],
)
def test_reasons_name_objective_evidence_and_rule(edits: dict[str, Any], sentence: str) -> None:
    assert sentence in decision(edits).reasons


def test_evidence_holds_the_numbers_used() -> None:
    evidence = decision(merge(SLOW, HOT)).evidence
    assert {
        k: evidence[k]
        for k in (
            "latency_p99_ms",
            "max_latency_ms",
            "cpu_utilization",
            "target_cpu_utilization",
            "replicas",
            "max_replicas",
        )
    } == {
        "latency_p99_ms": 480,
        "max_latency_ms": 250,
        "cpu_utilization": 90,
        "target_cpu_utilization": 60,
        "replicas": 4,
        "max_replicas": 10,
    }


def test_every_breached_objective_is_explained() -> None:
    reasons = " | ".join(decision(merge(SLOW, ERRORS, HOT)).reasons)
    assert "max_latency_ms" in reasons and "max_error_rate" in reasons and "availability objective" in reasons


# --- determinism, purity and invariants over many random situations ----------------------------------------------


def test_decide_refuses_raw_documents() -> None:
    with pytest.raises(DecisionError, match="parsed Snapshot"):
        decide({"now": "x"})  # type: ignore[arg-type]


def test_same_snapshot_same_decision() -> None:
    snap = snapshot(merge(SLOW, HOT, history(("restart", 30, "recovered"))))
    assert decide(snap) == decide(snap) == decide(snapshot(merge(SLOW, HOT, history(("restart", 30, "recovered")))))


def _random_edits(rng: random.Random) -> dict[str, Any]:
    def maybe(value: Any, p: float = 0.15) -> Any:
        return None if rng.random() < p else value

    replicas = rng.choice([0, 1, 2, 4, 8, 10])
    edits: dict[str, Any] = {
        "observed.metrics.latency_p99_ms": maybe(rng.choice([100, 250, 251, 480, 900])),
        "observed.metrics.error_rate": maybe(rng.choice([0.1, 0.5, 2.0, 35.0])),
        "observed.metrics.availability": maybe(rng.choice([99.99, 99.9, 98.0, 0])),
        "observed.metrics.cpu_utilization": maybe(rng.choice([10, 30, 59, 60, 90, 120])),
        "observed.metrics.memory_utilization": maybe(rng.choice([40, 89, 90, 97])),
        "observed.workload.replicas": replicas,
        "observed.workload.ready_replicas": rng.randint(0, replicas),
        "observed.nodes.node-b.latency_p99_ms": rng.choice([100, 900]),
        "observed.nodes.node-c.ready": rng.random() > 0.2,
        "observed.tenants": {"a": {"share": rng.choice([0.2, 0.5, 0.8])}, "b": {"share": 0.2}},
        "observed.dependencies.payments-db.healthy": rng.random() > 0.2,
        "alert.status": rng.choice(["firing"] * 5 + ["resolved"]),
        "intent.namespace": rng.choice(["shop"] * 5 + ["kube-system"]),
        "policy.require_approval": rng.sample(["rollback", "scale_up", "restart", "patch"], rng.randint(0, 2)),
        "policy.freeze_windows": rng.choice([[], [{"start": ago(60), "end": ago(-60)}]]),
        "observed.patch": rng.choice([None, {"image": "x:2", "severity": rng.choice(["critical", "low"])}]),
    }
    if rng.random() < 0.3:
        edits.update(rollout(rng.choice([2, 29, 45])))
    if rng.random() < 0.3:
        edits.update(crashing("p1", reason=rng.choice(["CrashLoopBackOff", "ImagePullBackOff"])))
    entries = [
        (
            rng.choice(["restart", "scale_up", "rollback"]),
            rng.choice([3, 12, 40, 70]),
            rng.choice(["pending", "recovered", "not_recovered", "failed"]),
        )
        for _ in range(rng.randint(0, 3))
    ]
    edits.update(history(*sorted(entries, key=lambda e: -e[1])))
    return edits


PARAM_KEYS = {
    "none": set(),
    "escalate": set(),
    "rollback": {"to_revision"},
    "scale_up": {"replicas"},
    "scale_down": {"replicas"},
    "reroute": {"node"},
    "isolate_tenant": {"tenant"},
    "patch": {"image"},
    "restart": {"pods"},
    "reconcile": {"objects", "fields"},
}


@pytest.mark.parametrize("seed", range(300))
def test_invariants_hold_for_random_situations(seed: int) -> None:
    edits = _random_edits(random.Random(seed))
    snap = snapshot(edits)
    result = decide(snap)
    assert result == decide(snap)  # deterministic
    assert result.action in ACTIONS and result.reasons
    assert set(result.params) <= PARAM_KEYS[result.action]
    assert result.proposed is None or (result.action == "escalate" and result.proposed in PARAM_KEYS)
    acting = result.action not in ("none", "escalate")
    if edits["alert.status"] == "resolved":
        assert result.action == "none"
    if edits["intent.namespace"] == "kube-system":
        assert not acting and result.proposed is None
    if acting:
        assert result.action not in snap.policy.require_approval
        assert sum(1 for h in snap.history if (NOW - h.at).total_seconds() <= 3600) < 3
        last = snap.history[-1] if snap.history else None
        if last is not None and (NOW - last.at).total_seconds() <= 600:
            assert last.outcome in ("not_recovered", "failed")
    if result.action == "scale_up":
        assert snap.intent is not None
        assert result.params["replicas"] <= snap.intent.recovery.max_replicas
        assert snap.observed.workload is not None and result.params["replicas"] > (snap.observed.workload.replicas or 0)
    if result.action == "patch":
        assert not edits["policy.freeze_windows"]
    if result.action == "rollback":
        assert result.params["to_revision"] < (snap.observed.workload.revision or 0)  # type: ignore[union-attr]


def test_times_after_now_count_as_now() -> None:
    result = decision(merge(SLOW, rollout(-2)))
    assert result.evidence["rollout_age_minutes"] == 0
    assert "0 min before now" in " ".join(result.reasons)


def test_replica_sizing_is_exact_on_the_numbers_as_written() -> None:
    rng = random.Random(7)
    for _ in range(20000):
        replicas, cpu, target = rng.randint(1, 50), rng.randint(1, 20000) / 100, rng.randint(10, 1000) / 10
        assert _ceil_ratio(replicas, cpu, target) == math.ceil(replicas * Fraction(str(cpu)) / Fraction(str(target)))


def test_decision_round_trips_to_a_plain_dict() -> None:
    result = decision(merge(SLOW, HOT, {"policy.require_approval": ["scale_up"]}))
    assert result.to_dict() == {
        "action": "escalate",
        "params": {},
        "proposed": "scale_up",
        "proposed_params": {"replicas": 6},
        "reasons": list(result.reasons),
        "evidence": dict(result.evidence),
        "rule": "approval",
    }
    assert dataclasses.replace(result) == result
