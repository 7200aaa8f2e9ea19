"""compute_drift (shared with the gatherer) and the reconcile plan built on it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.drift import compute_drift, plan_reconcile

SERVICE_DECLARED: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "checkout", "namespace": "shop", "labels": {"app": "checkout"}},
    "spec": {"selector": {"app": "checkout"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
}

SERVICE_LIVE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {
        "name": "checkout",
        "namespace": "shop",
        "uid": "u",
        "resourceVersion": "12",
        "labels": {"app": "checkout"},
        "creationTimestamp": "2026-03-01T00:00:00Z",
    },
    "spec": {
        "type": "ClusterIP",
        "clusterIP": "10.96.0.10",
        "selector": {"app": "checkout"},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    },
    "status": {"loadBalancer": {}},
}

DEPLOYMENT_DECLARED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "checkout", "namespace": "shop"},
    "spec": {
        "replicas": 4,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "checkout",
                        "image": "shop/checkout:1.41",
                        "ports": [{"containerPort": 8080}],
                        "env": [{"name": "LOG_LEVEL", "value": "info"}],
                        "resources": {"requests": {"cpu": 1, "memory": "256Mi"}},
                    }
                ]
            }
        },
    },
}


def live_deployment(**container: Any) -> dict[str, Any]:
    base = {
        "name": "checkout",
        "image": "shop/checkout:1.41",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
    }
    base.update(container)
    sidecar = {"name": "proxy", "image": "envoy:1"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "77", "generation": 3},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [sidecar, base]}},
        },
        "status": {"replicas": 4},
    }


def with_path(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    target = obj
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return obj


def test_no_drift_when_the_live_object_only_adds_server_fields() -> None:
    assert compute_drift(SERVICE_DECLARED, SERVICE_LIVE) == []
    assert compute_drift(DEPLOYMENT_DECLARED, live_deployment()) == []  # cpu 1 == "1", containers by name


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (
            with_path(SERVICE_LIVE, ["spec", "ports", 0, "targetPort"], 9090),
            [{"object": "Service/checkout", "field": "spec.ports[0].targetPort", "declared": 8080, "live": 9090}],
        ),
        (
            with_path(SERVICE_LIVE, ["spec", "selector"], {"app": "other"}),
            [{"object": "Service/checkout", "field": "spec.selector.app", "declared": "checkout", "live": "other"}],
        ),
        (
            with_path(SERVICE_LIVE, ["metadata", "labels"], {}),
            [{"object": "Service/checkout", "field": "metadata.labels.app", "declared": "checkout", "live": None}],
        ),
        (
            None,
            [{"object": "Service/checkout", "field": "(object)", "declared": "present", "live": "absent"}],
        ),
    ],
)
def test_service_drift(live: dict[str, Any] | None, expected: list[dict[str, Any]]) -> None:
    assert compute_drift(SERVICE_DECLARED, live) == expected


@pytest.mark.parametrize(
    ("container", "field", "declared", "live"),
    [
        (
            {"image": "shop/checkout:1.42"},
            "spec.template.spec.containers[1].image",
            "shop/checkout:1.41",
            "shop/checkout:1.42",
        ),
        (
            {"env": [{"name": "LOG_LEVEL", "value": "debug"}]},
            "spec.template.spec.containers[1].env[0].value",
            "info",
            "debug",
        ),
        (
            {"ports": [{"name": "http", "containerPort": 9090}]},
            "spec.template.spec.containers[1].ports[1]",
            {"containerPort": 8080},
            None,
        ),
        (
            {"resources": {"requests": {"cpu": "2", "memory": "256Mi"}}},
            "spec.template.spec.containers[1].resources.requests.cpu",
            1,
            "2",
        ),
    ],
)
def test_deployment_drift_matches_containers_by_name(
    container: dict[str, Any], field: str, declared: Any, live: Any
) -> None:
    (record,) = compute_drift(DEPLOYMENT_DECLARED, live_deployment(**container))
    assert record == {"object": "Deployment/checkout", "field": field, "declared": declared, "live": live}


def test_lists_without_a_merge_key_compare_as_a_whole() -> None:
    declared = with_path(DEPLOYMENT_DECLARED, ["spec", "template", "spec", "containers", 0, "args"], ["--fast"])
    assert compute_drift(declared, live_deployment(args=["--fast"])) == []
    (record,) = compute_drift(declared, live_deployment(args=["--fast", "--debug"]))
    assert record["field"] == "spec.template.spec.containers[1].args"
    assert (record["declared"], record["live"]) == (["--fast"], ["--fast", "--debug"])


def test_annotation_keys_are_quoted_in_the_field_path() -> None:
    declared = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"a.io/b": "1"}}}
    (record,) = compute_drift(declared, {"metadata": {"name": "c"}})
    assert record["field"] == 'metadata.annotations["a.io/b"]'


def test_a_declared_null_means_absent() -> None:
    declared = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"debug": None}}
    (record,) = compute_drift(declared, {"metadata": {"name": "c"}, "data": {"debug": "1", "x": "2"}})
    assert record == {"object": "ConfigMap/c", "field": "data.debug", "declared": None, "live": "1"}
    assert compute_drift(declared, {"metadata": {"name": "c"}, "data": {"x": "2"}}) == []


def test_booleans_are_not_numbers() -> None:
    declared = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"paused": True}}
    assert compute_drift(declared, {"spec": {"paused": 1}}) != []


def test_reconcile_reapplies_only_drifted_fields_on_the_live_object() -> None:
    live = with_path(SERVICE_LIVE, ["spec", "ports", 0, "targetPort"], 9090)
    plan = plan_reconcile([(SERVICE_DECLARED, live)])
    (change,) = plan.changes
    assert (change.verb, change.kind, change.namespace, change.name) == ("replace", "Service", "shop", "checkout")
    assert change.body["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert change.body["spec"]["clusterIP"] == "10.96.0.10"  # untouched fields survive
    assert change.body["metadata"]["resourceVersion"] == "12"  # guarded by what was read
    assert "status" not in change.body
    assert plan.before == {"Service/checkout": {"spec.ports[0].targetPort": 9090}}
    assert plan.after == {"Service/checkout": {"spec.ports[0].targetPort": 8080}}
    assert (
        plan.message
        == "reconciled 1 drifted field in 1 object: Service/checkout spec.ports[0].targetPort: 9090 -> 8080"
    )
    assert compute_drift(SERVICE_DECLARED, change.body) == []  # what it writes has no drift left


def test_reconcile_appends_missing_named_items_and_creates_missing_objects() -> None:
    live = live_deployment(ports=[{"name": "admin", "containerPort": 9090}])
    plan = plan_reconcile([(DEPLOYMENT_DECLARED, live), (SERVICE_DECLARED, None)])
    update, create = plan.changes
    ports = update.body["spec"]["template"]["spec"]["containers"][1]["ports"]
    assert ports == [{"name": "admin", "containerPort": 9090}, {"containerPort": 8080}]
    assert compute_drift(DEPLOYMENT_DECLARED, update.body) == []
    assert (create.verb, create.body) == ("create", SERVICE_DECLARED)
    assert [r["object"] for r in plan.result["drift"]] == ["Deployment/checkout", "Service/checkout"]


def test_reconcile_without_drift_is_a_noop() -> None:
    plan = plan_reconcile([(SERVICE_DECLARED, SERVICE_LIVE), (DEPLOYMENT_DECLARED, live_deployment())])
    assert not plan.changed
    assert plan.message == "no drift in 2 declared objects"
    assert plan.result == {"drift": [], "objects": 2}
