"""Building the snapshot's observed blocks from Kubernetes objects and indicator values."""

from __future__ import annotations

from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather import build as _gather
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model import objects

DEPLOY: dict[str, Any] = {
    "metadata": {"name": "checkout", "uid": "u1", "annotations": {"deployment.kubernetes.io/revision": "8"}},
    "spec": {"replicas": 4},
    "status": {"readyReplicas": 3},
}


def rs(rev: int, image: str, created: str, owner: str = "u1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"checkout-{rev}",
            "creationTimestamp": created,
            "annotations": {"deployment.kubernetes.io/revision": str(rev)},
            "ownerReferences": [{"kind": "Deployment", "name": "checkout", "uid": owner}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }


def pod(name: str, node: str, ready: bool, waiting: str | None = None, phase: str = "Running") -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": name},
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "c", "state": state, "restartCount": 3}],
        },
    }


def test_workload_lists_revisions_oldest_first_and_only_failing_pods() -> None:
    replicasets = [
        rs(8, "shop/checkout:1.42", "2026-03-04T14:55:00Z"),
        rs(6, "shop/checkout:1.40", "2026-02-20T10:00:00Z"),
        rs(7, "shop/checkout:1.41", "2026-03-01T10:00:00Z"),
        rs(3, "other:1", "2026-01-01T00:00:00Z", owner="someone-else"),
    ]
    pods = [pod("a", "node-a", True), pod("b", "node-b", False, "CrashLoopBackOff")]
    out = _gather.observed_workload(DEPLOY, replicasets, pods, restarts_15m={"b": 5.6})
    assert [r["revision"] for r in out["revisions"]] == [6, 7, 8]
    assert out["revisions"][-1] == {"revision": 8, "created": "2026-03-04T14:55:00Z", "image": "shop/checkout:1.42"}
    assert (out["replicas"], out["ready_replicas"], out["revision"]) == (4, 3, 8)
    assert out["pods"] == [
        {
            "name": "b",
            "node": "node-b",
            "phase": "Running",
            "ready": False,
            "reason": "CrashLoopBackOff",
            "restarts_15m": 6,
        }
    ]


def test_unschedulable_pending_pod_reports_the_scheduler_reason() -> None:
    p = pod("c", "", False, phase="Pending")
    p["status"]["containerStatuses"] = []
    p["status"]["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    assert _gather.pod_failure(p) == ("Unschedulable", False)


def test_nodes_only_those_serving_with_latency_when_known() -> None:
    nodes = [
        {"metadata": {"name": "node-a"}, "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {
            "metadata": {"name": "node-b"},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]},
        },
        {"metadata": {"name": "node-z"}, "spec": {}, "status": {}},
    ]
    pods = [pod("a", "node-a", True), pod("b", "node-b", True)]
    out = _gather.observed_nodes(pods, nodes, {"node-a": 118.04})
    assert out == {
        "node-a": {"ready": True, "schedulable": True, "latency_p99_ms": 118.0},
        "node-b": {"ready": False, "schedulable": False},
    }


def test_metrics_leave_unknown_out_instead_of_zero() -> None:
    out = _gather.observed_metrics({"latency_p99_ms": 480.2, "error_rate": None, "availability": 0.0})
    assert out == {"latency_p99_ms": 480.2, "availability": 0.0}


def test_tenants_and_dependencies() -> None:
    ind = {
        "tenant_share": {"acme": 0.71234, "globex": 0.2},
        "dependency_up": {"db": 0.0},
        "dependency_latency_p99_ms": {"db": 900.0, "cache": 2.0},
    }
    assert _gather.observed_tenants(ind) == {"acme": {"share": 0.7123}, "globex": {"share": 0.2}}
    assert _gather.observed_dependencies(ind) == {
        "cache": {"latency_p99_ms": 2.0},
        "db": {"healthy": False, "latency_p99_ms": 900.0},
    }


def test_tenants_carry_their_baseline_share_and_a_new_tenant_starts_at_zero() -> None:
    indicators = {"tenant_share": {"acme": 0.7, "new": 0.3}, "tenant_baseline_share": {"acme": 0.2, "old": 0.8}}
    assert _gather.observed_tenants(indicators) == {
        "acme": {"share": 0.7, "baseline_share": 0.2},
        "new": {"share": 0.3, "baseline_share": 0.0},
    }


def test_tenants_without_any_baseline_leave_it_out() -> None:
    # A young Prometheus has no traffic a baseline window ago: the share alone decides (principle 3).
    assert _gather.observed_tenants({"tenant_share": {"acme": 0.7}, "tenant_baseline_share": {}}) == {
        "acme": {"share": 0.7}
    }


def node_obj(name: str, ready: bool = True, cordoned: bool = False, ours: bool = False) -> dict[str, Any]:
    annotations = {objects.CORDONED_BY: "true"} if ours else {}
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_platform_counts_the_nodes_the_collection_can_count_on() -> None:
    nodes = [
        node_obj("a"),
        node_obj("b", cordoned=True, ours=True),
        node_obj("c", cordoned=True),  # a human's cordon: not ours, and not capacity either
        node_obj("d", ready=False),
        node_obj("e"),
    ]
    assert _gather.observed_platform(12, 3, 1, nodes) == {
        "services_total": 12,
        "services_breaching": 3,
        "remediations_in_progress": 1,
        "nodes_total": 3,
        "nodes_cordoned": 1,
    }
