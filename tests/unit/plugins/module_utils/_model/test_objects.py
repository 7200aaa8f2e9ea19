"""Rules about Kubernetes objects, each written once (plugins/module_utils/_model/objects.py), and the stages that
must agree on them: what the gatherer reports, what the engine decides and what the action does."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import plans
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather import build
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model import objects
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import snapshot

SELECTOR = {
    "matchLabels": {"app": "checkout"},
    "matchExpressions": [
        {"key": "track", "operator": "In", "values": ["stable", "canary"]},
        {"key": "legacy", "operator": "DoesNotExist"},
    ],
}


def deployment(selector: dict[str, Any] | None = None, uid: str | None = "dep-uid") -> dict[str, Any]:
    return {
        "metadata": {"name": "checkout", "namespace": "shop", **({"uid": uid} if uid else {})},
        "spec": {"replicas": 2, "selector": SELECTOR if selector is None else selector},
    }


def pod(name: str, labels: dict[str, str], waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"nodeName": "node-a"},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "app", "state": state}],
            "conditions": [{"type": "Ready", "status": "False" if waiting else "True"}],
        },
    }


PODS = [
    pod("stable", {"app": "checkout", "track": "stable"}),
    pod("canary", {"app": "checkout", "track": "canary"}),
    pod("other-track", {"app": "checkout", "track": "dev"}),
    pod("legacy", {"app": "checkout", "track": "stable", "legacy": "yes"}),
    pod("no-track", {"app": "checkout"}),
]


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        (SELECTOR, ["canary", "stable"]),
        ({"matchLabels": {"app": "checkout"}}, ["canary", "legacy", "no-track", "other-track", "stable"]),
        ({"matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["dev"]}]}, None),
        ({"matchExpressions": [{"key": "track", "operator": "Exists"}]}, ["canary", "legacy", "other-track", "stable"]),
        ({}, []),  # an empty selector selects nothing: a remediation never falls back to every pod
    ],
)
def test_which_pods_a_deployment_selects(selector: dict[str, Any], selected: list[str] | None) -> None:
    names = [p["metadata"]["name"] for p in objects.deployment_pods(deployment(selector), PODS)]
    if selected is None:  # NotIn also selects pods without the label
        selected = ["canary", "legacy", "no-track", "stable"]
    assert names == selected


def test_pods_of_another_namespace_are_never_selected() -> None:
    elsewhere = pod("stable", {"app": "checkout", "track": "stable"})
    elsewhere["metadata"]["namespace"] = "other"
    assert objects.deployment_pods(deployment(), [elsewhere]) == []


@pytest.mark.parametrize(
    ("owner_refs", "owner_uid", "owned"),
    [
        ([{"kind": "Deployment", "name": "checkout", "uid": "dep-uid"}], "dep-uid", True),
        ([{"kind": "Deployment", "name": "checkout", "uid": "old-uid"}], "dep-uid", False),  # same name, recreated
        ([{"kind": "Deployment", "name": "checkout"}], "dep-uid", True),  # no uid on the reference: by name
        ([{"kind": "Deployment", "name": "checkout", "uid": "x"}], None, True),  # no uid on the owner: by name
        ([{"kind": "StatefulSet", "name": "checkout", "uid": "dep-uid"}], "dep-uid", False),
        ([], "dep-uid", False),
    ],
)
def test_ownership(owner_refs: list[dict[str, str]], owner_uid: str | None, owned: bool) -> None:
    rs = {"metadata": {"name": "checkout-1", "ownerReferences": owner_refs}}
    assert objects.owned_by(rs, "Deployment", deployment(uid=owner_uid)) is owned


@pytest.mark.parametrize(("annotation", "revision"), [("7", 7), ("x", None), (None, None)])
def test_revision_annotation(annotation: str | None, revision: int | None) -> None:
    notes = {objects.REVISION: annotation} if annotation is not None else {}
    assert objects.revision_of({"metadata": {"annotations": notes}}) == revision


@pytest.mark.parametrize(
    ("reason", "cured"),
    [
        ("CrashLoopBackOff", True),
        ("OOMKilled", True),
        ("NotReady", True),
        ("ImagePullBackOff", False),
        ("ErrImagePull", False),
        ("CreateContainerConfigError", False),
        ("Unschedulable", False),
        (None, False),
    ],
)
def test_restart_cures(reason: str | None, cured: bool) -> None:
    assert objects.restart_cures(reason) is cured


@pytest.mark.parametrize("reason", ["CrashLoopBackOff", "ImagePullBackOff", "CreateContainerConfigError"])
def test_gather_decide_and_restart_agree_on_a_failing_pod(reason: str) -> None:
    """What the gatherer reports of a pod, whether the engine restarts it, and whether the restart deletes it."""
    failing = pod("checkout-a", {"app": "checkout", "track": "stable"}, waiting=reason)
    serving = pod("checkout-b", {"app": "checkout", "track": "stable"})
    observed = build.observed_workload(
        # Only a crash loop restarts the container: an image or configuration failure never starts it.
        {**deployment(), "status": {"readyReplicas": 1}},
        [],
        [failing, serving],
        {"checkout-a": 6} if reason == "CrashLoopBackOff" else {},
    )
    assert [p["name"] for p in observed["pods"]] == ["checkout-a"]
    data = snapshot(
        {
            "observed.workload.replicas": 2,
            "observed.workload.ready_replicas": 1,
            "observed.workload.pods": observed["pods"],
            "observed.metrics.error_rate": 4.0,
            "observed.metrics.availability": 96.0,
        }
    )
    decided_restart = decide(data).action == "restart"
    deleted = plans.plan_delete_pods(deployment(), [failing, serving], None, True).result["deleted_pods"]
    assert decided_restart is objects.restart_cures(reason)
    assert (deleted == ["checkout-a"]) is objects.restart_cures(reason)


def test_the_label_query_narrows_a_list_to_the_match_labels_and_leaves_expressions_to_the_match() -> None:
    assert objects.label_query(SELECTOR) == "app=checkout"
    assert objects.label_query({"matchLabels": {"tier": "web", "app": "shop"}}) == "app=shop,tier=web"
    # Nothing to narrow by: the whole list, filtered by selector_matches after.
    assert objects.label_query({"matchExpressions": SELECTOR["matchExpressions"]}) is None
    assert objects.label_query(None) is None
