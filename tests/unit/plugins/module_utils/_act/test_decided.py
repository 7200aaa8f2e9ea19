"""The one mapping from a decision to its action module's arguments."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.decided import MODULES, module_args

INTENT = {
    "namespace": "shop",
    "service": "checkout",
    "target": {"kind": "Deployment", "name": "checkout-api"},
    "recovery": {"min_replicas": 2, "max_replicas": 8},
    "manifests": "/etc/selfheal/manifests/checkout",
}
TARGET = {"namespace": "shop", "name": "checkout-api"}


def snapshot(**observed: Any) -> dict[str, Any]:
    return {"intent": INTENT, "observed": observed}


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        ("rollback", {"to_revision": "6"}, {**TARGET, "revision": 6}),
        ("rollback", {}, {**TARGET, "revision": None}),
        ("restart", {}, {**TARGET, "pods": None, "restart_id": "decision-42"}),
        ("restart", {"pods": ["checkout-api-1"]}, {**TARGET, "pods": ["checkout-api-1"], "restart_id": "decision-42"}),
        ("scale_up", {"replicas": 5}, {**TARGET, "replicas": 5, "min_replicas": 2, "max_replicas": 8}),
        ("scale_down", {"replicas": 2}, {**TARGET, "replicas": 2, "min_replicas": 2, "max_replicas": 8}),
        ("patch", {"image": "shop/checkout:1.42.1"}, {**TARGET, "image": "shop/checkout:1.42.1"}),
        ("reroute", {"node": "node-3"}, {**TARGET, "node": "node-3", "state": "drained"}),
        ("reconcile", {}, {"src": "/etc/selfheal/manifests/checkout", "namespace": "shop"}),
        ("escalate", {}, {}),
        ("none", {}, {}),
    ],
)
def test_each_action_gets_its_module_arguments_from_the_decision_and_the_intent(
    action: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert module_args({"action": action, "params": params}, snapshot(), 42) == expected


def test_every_applied_action_has_a_module_and_nothing_else_does() -> None:
    assert set(MODULES) == {
        "restart",
        "scale_up",
        "scale_down",
        "rollback",
        "patch",
        "reroute",
        "isolate_tenant",
        "reconcile",
    }


def test_the_isolated_tenant_keeps_what_the_others_send_together_and_at_least_one_request_a_second() -> None:
    decision = {"action": "isolate_tenant", "params": {"tenant": "acme"}}
    busy = snapshot(metrics={"requests_per_second": 400.0}, tenants={"acme": {"share": 0.85}})
    assert module_args(decision, busy, 1) == {**TARGET, "tenant": "acme", "requests_per_second": 60.0}
    alone = snapshot(metrics={"requests_per_second": 50.0}, tenants={"acme": {"share": 1.0}})
    assert module_args(decision, alone, 1)["requests_per_second"] == 1.0


def test_without_a_decision_id_a_restart_names_no_restart() -> None:
    assert module_args({"action": "restart", "params": {}}, snapshot(), None)["restart_id"] is None
