"""The remediation planners of _actions: pure functions from cluster objects to a plan."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import plans as actions
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import SelfHealError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model import objects
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


def deployment(
    replicas: int = 4,
    image: str = "shop/checkout:1.42",
    revision: int | None = 7,
    template_annotations: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    notes = dict(annotations or {})
    if revision is not None:
        notes[objects.REVISION] = str(revision)
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": "checkout"}},
        "spec": {"containers": containers or [{"name": "checkout", "image": image}]},
    }
    if template_annotations:
        template["metadata"]["annotations"] = dict(template_annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "checkout",
            "namespace": "shop",
            "uid": "dep-uid",
            "resourceVersion": "41",
            "annotations": notes,
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "checkout"}}, "template": template},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def replicaset(revision: int, image: str, history: str | None = None, owner: str = "dep-uid") -> dict[str, Any]:
    notes = {objects.REVISION: str(revision)}
    if history:
        notes[objects.REVISION_HISTORY] = history
    return {
        "metadata": {
            "name": f"checkout-{revision}",
            "namespace": "shop",
            "annotations": notes,
            "ownerReferences": [{"kind": "Deployment", "name": "checkout", "uid": owner, "controller": True}],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "checkout", actions.POD_TEMPLATE_HASH: f"h{revision}"}},
                "spec": {"containers": [{"name": "checkout", "image": image}]},
            }
        },
    }


def pod(
    name: str,
    node: str = "node-a",
    ready: bool = True,
    waiting: str | None = None,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
    namespace: str = "shop",
    **meta: Any,
) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": "checkout"}, **meta},
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "checkout", "state": state}],
        },
    }


# --- selectors and failing pods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"app": "checkout"}}, {"app": "checkout", "x": "y"}, True),
        ({"matchLabels": {"app": "checkout"}}, {"app": "catalog"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, {"tier": "web"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, {"tier": "web"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, {"tier": "db"}, False),
        ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, {"canary": ""}, True),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"canary": ""}, False),
        ({}, {"app": "checkout"}, False),  # an empty selector must never mean "every pod"
        (None, {"app": "checkout"}, False),
    ],
)
def test_selector_matches(selector: Any, labels: dict[str, str], expected: bool) -> None:
    assert objects.selector_matches(selector, labels) is expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, None),
        ({"waiting": "CrashLoopBackOff", "ready": False}, "CrashLoopBackOff"),
        ({"waiting": "ImagePullBackOff", "ready": False}, "ImagePullBackOff"),
        ({"waiting": "ContainerCreating", "ready": False, "phase": "Pending"}, None),
        ({"ready": False}, "NotReady"),
        ({"phase": "Failed", "ready": False}, "Failed"),
        ({"ready": False, "phase": "Pending"}, None),
        ({"waiting": "CrashLoopBackOff", "deletionTimestamp": "2026-03-02T14:00:00Z"}, None),
    ],
)
def test_failing_reason(kwargs: dict[str, Any], expected: str | None) -> None:
    assert objects.failing_reason(pod("p", **kwargs)) == expected


@pytest.mark.parametrize(
    ("not_ready_for", "expected"),
    [(timedelta(seconds=10), None), (timedelta(seconds=60), "NotReady"), (timedelta(minutes=10), "NotReady")],
)
def test_a_pod_not_ready_counts_as_failing_only_after_a_grace_period(
    not_ready_for: timedelta, expected: str | None
) -> None:
    starting = pod("p", ready=False)
    starting["status"]["conditions"][0]["lastTransitionTime"] = format_datetime(NOW - not_ready_for)
    assert objects.failing_reason(starting, NOW) == expected
    assert objects.failing_reason(starting) == "NotReady"  # without a clock: any not-ready pod


# --- workload_restart -------------------------------------------------------------------------------------------


def test_restart_stamps_the_template_and_records_the_restart_id() -> None:
    dep = deployment()
    plan = actions.plan_restart(dep, NOW, "fp-1")
    assert plan.changed
    (change,) = plan.changes
    assert (change.verb, change.kind, change.namespace, change.name) == ("replace", "Deployment", "shop", "checkout")
    notes = change.body["spec"]["template"]["metadata"]["annotations"]
    assert notes == {actions.RESTARTED_AT: "2026-03-02T14:05:00Z", actions.RESTART_ID: "fp-1"}
    assert change.body["metadata"]["resourceVersion"] == "41"  # the write is guarded by what was read
    assert dep["spec"]["template"]["metadata"].get("annotations") is None  # the input is not mutated
    assert plan.before["spec"]["template"]["metadata"]["annotations"] == {
        actions.RESTARTED_AT: None,
        actions.RESTART_ID: None,
    }
    assert plan.after["spec"]["template"]["metadata"]["annotations"] == notes
    assert plan.message == "restarted shop/checkout (rollout restart at 2026-03-02T14:05:00Z, restart_id fp-1)"
    assert plan.check_message.startswith("would restart shop/checkout")
    assert plan.result["restarted_at"] == "2026-03-02T14:05:00Z"


def test_restart_with_a_recorded_restart_id_is_a_noop() -> None:
    done = {actions.RESTARTED_AT: "2026-03-02T14:00:00Z", actions.RESTART_ID: "fp-1"}
    plan = actions.plan_restart(deployment(template_annotations=done), NOW, "fp-1")
    assert not plan.changed
    assert plan.message == "shop/checkout was already restarted for restart_id fp-1 (at 2026-03-02T14:00:00Z)"
    assert plan.result["restarted_at"] == "2026-03-02T14:00:00Z"


@pytest.mark.parametrize("restart_id", [None, "fp-2"])
def test_restart_without_or_with_another_restart_id_restarts(restart_id: str | None) -> None:
    done = {actions.RESTARTED_AT: "2026-03-02T14:00:00Z", actions.RESTART_ID: "fp-1"}
    plan = actions.plan_restart(deployment(template_annotations=done), NOW, restart_id)
    assert plan.changed
    notes = plan.changes[0].body["spec"]["template"]["metadata"]["annotations"]
    assert notes[actions.RESTARTED_AT] == "2026-03-02T14:05:00Z"
    assert notes[actions.RESTART_ID] == (restart_id or "fp-1")


PODS = [
    pod("checkout-a"),
    pod("checkout-b", waiting="CrashLoopBackOff", ready=False),
    pod("checkout-c", ready=False),
    pod("checkout-d", waiting="CrashLoopBackOff", ready=False, deletionTimestamp="2026-03-02T14:04:00Z"),
    pod("catalog-a", labels={"app": "catalog"}),
    pod("checkout-x", namespace="other"),
]


@pytest.mark.parametrize(
    ("names", "only_failing", "deleted"),
    [
        (None, True, ["checkout-b", "checkout-c"]),
        (None, False, ["checkout-a", "checkout-b", "checkout-c"]),
        (["checkout-a", "checkout-gone"], False, ["checkout-a"]),
        (["checkout-a", "checkout-b"], True, ["checkout-b"]),
        (["checkout-d"], False, []),  # already being deleted
        (["checkout-gone"], False, []),
    ],
)
def test_delete_pods(names: list[str] | None, only_failing: bool, deleted: list[str]) -> None:
    plan = actions.plan_delete_pods(deployment(), PODS, names, only_failing)
    assert [c.name for c in plan.changes] == deleted
    assert all(c.verb == "delete" and c.kind == "Pod" and c.namespace == "shop" for c in plan.changes)
    assert plan.result["deleted_pods"] == deleted
    assert plan.changed is bool(deleted)


def test_delete_pods_messages() -> None:
    plan = actions.plan_delete_pods(deployment(), PODS, None, True)
    assert plan.message == "deleted 2 pods of shop/checkout: checkout-b (CrashLoopBackOff), checkout-c (NotReady)"
    assert plan.check_message.startswith("would delete 2 pods of shop/checkout")
    healthy = actions.plan_delete_pods(deployment(), [pod("checkout-a")], None, True)
    assert healthy.message == "shop/checkout has no failing pods: nothing to delete"


def test_delete_pods_refuses_a_pod_of_another_workload() -> None:
    with pytest.raises(ValidationError, match="catalog-a not selected by deployment shop/checkout"):
        actions.plan_delete_pods(deployment(), PODS, ["checkout-a", "catalog-a"])


# --- workload_scale ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "replicas", "bounds", "wanted", "clamped", "message"),
    [
        (4, 6, (None, None), 6, False, "scaled shop/checkout from 4 to 6 replicas"),
        (
            4,
            12,
            (1, 10),
            10,
            True,
            "scaled shop/checkout from 4 to 10 replicas (requested 12, clamped to max_replicas 10)",
        ),
        (4, 0, (2, 10), 2, True, "scaled shop/checkout from 4 to 2 replicas (requested 0, clamped to min_replicas 2)"),
        (0, 0, (None, 5), 0, False, "shop/checkout already has 0 replicas"),
        (10, 12, (1, 10), 10, True, "shop/checkout already has 10 replicas (requested 12, clamped to max_replicas 10)"),
    ],
)
def test_scale(
    current: int, replicas: int, bounds: tuple[int | None, int | None], wanted: int, clamped: bool, message: str
) -> None:
    plan = actions.plan_scale(deployment(replicas=current), replicas, *bounds)
    assert plan.message == message
    assert plan.result == {
        "replicas": wanted,
        "previous_replicas": current,
        "requested_replicas": replicas,
        "clamped": clamped,
    }
    assert plan.changed is (wanted != current)
    if plan.changed:
        (change,) = plan.changes
        assert (change.verb, change.subresource, change.body) == ("patch", "scale", {"spec": {"replicas": wanted}})
        assert plan.before == {"spec": {"replicas": current}} and plan.after == {"spec": {"replicas": wanted}}


@pytest.mark.parametrize(
    ("replicas", "bounds", "match"),
    [
        (-1, (None, None), "replicas: must be 0 or more, got -1"),
        (3, (5, 2), "min_replicas: must not exceed max_replicas \\(5 > 2\\)"),
        (3, (-1, None), "min_replicas: must be 0 or more"),
    ],
)
def test_scale_rejects_bad_bounds(replicas: int, bounds: tuple[int | None, int | None], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        actions.plan_scale(deployment(), replicas, *bounds)


@pytest.mark.parametrize(
    ("status", "generation", "replicas", "expected"),
    [
        ({"observedGeneration": 3, "replicas": 6, "readyReplicas": 6}, 3, 6, (True, 6)),
        ({"observedGeneration": 3, "replicas": 6, "readyReplicas": 4}, 3, 6, (False, 4)),
        ({"observedGeneration": 2, "replicas": 6, "readyReplicas": 6}, 3, 6, (False, 6)),  # not seen yet
        ({"observedGeneration": 3, "replicas": 4, "readyReplicas": 4}, 3, 2, (False, 4)),  # still scaling down
        ({"observedGeneration": 3}, 3, 0, (True, 0)),
    ],
)
def test_rollout_progress(status: dict[str, Any], generation: int, replicas: int, expected: tuple[bool, int]) -> None:
    dep = deployment()
    dep["metadata"]["generation"] = generation
    dep["status"] = status
    assert actions.rollout_progress(dep, replicas) == expected


# --- workload_rollback ------------------------------------------------------------------------------------------

HISTORY = [
    replicaset(5, "shop/checkout:1.40"),
    replicaset(6, "shop/checkout:1.41"),
    replicaset(7, "shop/checkout:1.42"),
    replicaset(3, "shop/checkout:0.9", owner="someone-else"),
]


def test_rollback_to_the_previous_revision_copies_its_template_without_the_hash() -> None:
    plan = actions.plan_rollback(deployment(), HISTORY)
    (change,) = plan.changes
    template = change.body["spec"]["template"]
    assert template["spec"]["containers"] == [{"name": "checkout", "image": "shop/checkout:1.41"}]
    assert template["metadata"]["labels"] == {"app": "checkout"}
    assert change.body["metadata"]["annotations"][actions.ROLLED_BACK_TO] == "6"
    assert plan.result == {
        "from_revision": 7,
        "to_revision": 6,
        "from_images": {"checkout": "shop/checkout:1.42"},
        "to_images": {"checkout": "shop/checkout:1.41"},
    }
    assert plan.message == (
        "rolled back shop/checkout from revision 7 to revision 6 (checkout shop/checkout:1.42 -> shop/checkout:1.41)"
    )


def test_rollback_to_a_named_revision() -> None:
    plan = actions.plan_rollback(deployment(), HISTORY, 5)
    assert plan.result["to_images"] == {"checkout": "shop/checkout:1.40"}


def test_rollback_to_a_revision_that_does_not_exist_lists_the_ones_that_do() -> None:
    with pytest.raises(
        SelfHealError, match="revision 3 of deployment shop/checkout not found; available revisions: 5, 6, 7"
    ):
        actions.plan_rollback(deployment(), HISTORY, 3)  # revision 3 belongs to another Deployment


def test_rollback_without_history() -> None:
    with pytest.raises(SelfHealError, match="no earlier revision to roll back to; available revisions: 7"):
        actions.plan_rollback(deployment(), [replicaset(7, "shop/checkout:1.42")])


def test_rollback_already_on_the_template_is_a_noop() -> None:
    plan = actions.plan_rollback(deployment(image="shop/checkout:1.41", revision=6), HISTORY, 6)
    assert not plan.changed
    assert plan.message == "shop/checkout already runs the template of revision 6"


def test_a_second_rollback_does_not_toggle_back() -> None:
    """After 7 -> 6 the controller reuses revision 6's ReplicaSet as revision 8 (history "6")."""
    after = [
        replicaset(5, "shop/checkout:1.40"),
        replicaset(7, "shop/checkout:1.42"),
        replicaset(8, "shop/checkout:1.41", "6"),
    ]
    dep = deployment(image="shop/checkout:1.41", revision=8, annotations={actions.ROLLED_BACK_TO: "6"})
    assert not actions.plan_rollback(dep, after).changed  # previous, as remembered
    assert not actions.plan_rollback(dep, after, 6).changed  # revision 6, found through revision-history
    assert actions.plan_rollback(dep, after, 7).changed  # stepping back further stays possible
    rolled_out_since = deployment(image="shop/checkout:1.43", revision=9, annotations={actions.ROLLED_BACK_TO: "6"})
    plan = actions.plan_rollback(rolled_out_since, [*after, replicaset(9, "shop/checkout:1.43")])
    assert plan.result["to_revision"] == 8  # a new rollout since: previous means the revision before it again


# --- workload_image ---------------------------------------------------------------------------------------------


def test_image_updates_the_first_container_and_records_the_previous_image() -> None:
    plan = actions.plan_image(deployment(), "shop/checkout:1.42.1")
    (change,) = plan.changes
    assert change.body["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/checkout:1.42.1"
    assert change.body["metadata"]["annotations"][actions.PREVIOUS_IMAGE] == "shop/checkout:1.42"
    assert plan.result == {
        "container": "checkout",
        "image": "shop/checkout:1.42.1",
        "previous_image": "shop/checkout:1.42",
    }
    assert plan.before["spec"]["template"]["spec"]["containers"] == [
        {"name": "checkout", "image": "shop/checkout:1.42"}
    ]
    assert plan.after["spec"]["template"]["spec"]["containers"] == [
        {"name": "checkout", "image": "shop/checkout:1.42.1"}
    ]


def test_image_names_a_container() -> None:
    containers = [{"name": "checkout", "image": "a:1"}, {"name": "sidecar", "image": "b:1"}]
    plan = actions.plan_image(deployment(containers=containers), "b:2", "sidecar")
    assert [c["image"] for c in plan.changes[0].body["spec"]["template"]["spec"]["containers"]] == ["a:1", "b:2"]
    with pytest.raises(
        SelfHealError, match="container web not found in deployment shop/checkout; containers: checkout, sidecar"
    ):
        actions.plan_image(deployment(containers=containers), "b:2", "web")


def test_image_already_set_is_a_noop_and_keeps_the_recorded_previous_image() -> None:
    dep = deployment(image="shop/checkout:1.42.1", annotations={actions.PREVIOUS_IMAGE: "shop/checkout:1.42"})
    plan = actions.plan_image(dep, "shop/checkout:1.42.1")
    assert not plan.changed
    assert plan.result["previous_image"] == "shop/checkout:1.42"


# --- node_drain -------------------------------------------------------------------------------------------------


def node(name: str = "node-b", unschedulable: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"unschedulable": True} if unschedulable else {}}


DRAIN_PODS = [
    pod("checkout-a", node="node-b"),
    pod("checkout-b", node="node-a"),
    pod("catalog-a", node="node-b", labels={"app": "catalog"}),
    pod("agent-x", node="node-b", labels={"app": "agent"}, ownerReferences=[{"kind": "DaemonSet", "name": "agent"}]),
    pod("checkout-c", node="node-b", deletionTimestamp="2026-03-02T14:00:00Z"),
    pod("job-1", node="node-b", labels={"app": "job"}, phase="Succeeded"),
]


def test_drain_cordons_then_evicts_the_deployments_pods_only() -> None:
    plan = actions.plan_drain(node(), DRAIN_PODS, deployment())
    assert [(c.verb, c.kind, c.name) for c in plan.changes] == [
        ("patch", "Node", "node-b"),
        ("evict", "Pod", "checkout-a"),
    ]
    assert plan.changes[0].body == {
        "metadata": {"annotations": {objects.CORDONED_BY: "true"}},
        "spec": {"unschedulable": True},
    }
    assert plan.changes[1].body == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "checkout-a", "namespace": "shop"},
    }
    assert plan.result == {"node": "node-b", "cordoned": True, "evicted": ["shop/checkout-a"]}
    assert plan.message == "cordoned node node-b and evicted 1 pod of shop/checkout from node node-b (shop/checkout-a)"
    assert plan.before == {"spec": {"unschedulable": False}, "pods": ["shop/checkout-a"]}
    assert plan.after == {"spec": {"unschedulable": True}, "pods": []}


def test_drain_all_pods_leaves_daemonsets_finished_and_leaving_pods() -> None:
    plan = actions.plan_drain(node(unschedulable=True), DRAIN_PODS)
    assert [c.name for c in plan.changes] == ["catalog-a", "checkout-a"]
    assert plan.message.startswith("evicted 2 pods from node node-b")


def test_drain_of_a_drained_node_is_a_noop() -> None:
    plan = actions.plan_drain(node(unschedulable=True), [pod("checkout-b", node="node-a")], deployment())
    assert not plan.changed
    assert plan.message == "node node-b is cordoned and runs no pods of shop/checkout"


def test_uncordon() -> None:
    plan = actions.plan_uncordon(node(unschedulable=True))
    # Merge patch: remove the field and this collection's marker.
    assert plan.changes[0].body == {
        "metadata": {"annotations": {objects.CORDONED_BY: None}},
        "spec": {"unschedulable": None},
    }
    assert plan.message == "uncordoned node node-b"
    assert not actions.plan_uncordon(node()).changed


@pytest.mark.parametrize(
    ("spec", "annotations", "ours"),
    [
        ({"unschedulable": True}, {objects.CORDONED_BY: "true"}, True),
        ({"unschedulable": True}, {}, False),  # a human cordoned it
        ({}, {objects.CORDONED_BY: "true"}, False),  # uncordoned by hand since
    ],
)
def test_cordoned_by_us(spec: dict[str, Any], annotations: dict[str, str], ours: bool) -> None:
    assert objects.cordoned_by_us({"metadata": {"name": "n", "annotations": annotations}, "spec": spec}) is ours


# --- tenant_limit -----------------------------------------------------------------------------------------------


def limits(data: dict[str, str], expires: dict[str, str] | None = None) -> dict[str, Any]:
    notes = {actions.EXPIRES_PREFIX + t: v for t, v in (expires or {}).items()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "checkout-tenant-limits",
            "namespace": "shop",
            "resourceVersion": "9",
            "annotations": notes,
        },
        "data": data,
    }


def test_tenant_limit_creates_the_configmap_the_service_reads() -> None:
    plan = actions.plan_tenant_limit(None, "shop", "checkout", "acme", 50.0, NOW, 60)
    (change,) = plan.changes
    assert (change.verb, change.kind, change.name) == ("create", "ConfigMap", "checkout-tenant-limits")
    assert change.body["data"] == {"acme": "50"}
    assert change.body["metadata"]["annotations"] == {actions.EXPIRES_PREFIX + "acme": "2026-03-02T15:05:00Z"}
    assert plan.result == {
        "configmap": "checkout-tenant-limits",
        "tenant": "acme",
        "requests_per_second": "50",
        "expires_at": "2026-03-02T15:05:00Z",
    }
    assert plan.message == (
        "limited tenant acme of shop/checkout to 50 requests/s until 2026-03-02T15:05:00Z"
        " (ConfigMap checkout-tenant-limits)"
    )


def test_tenant_limit_updates_one_tenant_and_keeps_the_others() -> None:
    plan = actions.plan_tenant_limit(limits({"globex": "10"}), "shop", "checkout", "acme", 12.5, NOW, None, None)
    (change,) = plan.changes
    assert change.verb == "replace" and change.body["metadata"]["resourceVersion"] == "9"
    assert change.body["data"] == {"globex": "10", "acme": "12.5"}
    assert plan.before["data"] == {"acme": None} and plan.after["data"] == {"acme": "12.5"}


@pytest.mark.parametrize(
    ("existing", "ttl", "changed"),
    [
        (limits({"acme": "50"}, {"acme": "2026-03-02T14:30:00Z"}), 60, False),  # in force: expiry not pushed back
        (limits({"acme": "50"}, {"acme": "2026-03-02T14:00:00Z"}), 60, True),  # expired: renewed
        (limits({"acme": "40"}, {"acme": "2026-03-02T14:30:00Z"}), 60, True),  # another rate
        (limits({"acme": "50"}), None, False),  # permanent and asked permanent
        (limits({"acme": "50"}), 60, True),  # permanent, now with an expiry
        (limits({"acme": "50"}, {"acme": "2026-03-02T14:30:00Z"}), None, True),  # made permanent
    ],
)
def test_tenant_limit_idempotence(existing: dict[str, Any], ttl: int | None, changed: bool) -> None:
    plan = actions.plan_tenant_limit(existing, "shop", "checkout", "acme", 50, NOW, ttl)
    assert plan.changed is changed


@pytest.mark.parametrize(
    ("tenant", "rate", "ttl", "match"),
    [
        ("acme corp", 5, None, "tenant: 'acme corp' is not a valid tenant name"),
        ("acme", -1, None, "requests_per_second: must be 0 or more"),
        ("acme", 5, 0, "ttl_minutes: must be more than 0"),
    ],
)
def test_tenant_limit_rejects_bad_options(tenant: str, rate: float, ttl: int | None, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        actions.plan_tenant_limit(None, "shop", "checkout", tenant, rate, NOW, ttl)


def test_tenant_unlimit() -> None:
    cm = limits({"acme": "50", "globex": "10"}, {"acme": "2026-03-02T14:30:00Z"})
    plan = actions.plan_tenant_unlimit(cm, "shop", "checkout", NOW, "acme")
    assert plan.changes[0].body["data"] == {"globex": "10"}
    assert plan.changes[0].body["metadata"]["annotations"] == {}
    assert plan.result["removed"] == ["acme"]
    assert not actions.plan_tenant_unlimit(cm, "shop", "checkout", NOW, "initech").changed
    assert not actions.plan_tenant_unlimit(None, "shop", "checkout", NOW, "acme").changed


def test_tenant_unlimit_without_tenant_prunes_expired_limits_only() -> None:
    cm = limits(
        {"acme": "50", "globex": "10", "initech": "5"},
        {"acme": "2026-03-02T14:00:00Z", "globex": "2026-03-02T15:00:00Z"},
    )
    plan = actions.plan_tenant_unlimit(cm, "shop", "checkout", NOW)
    assert plan.result["removed"] == ["acme"]
    assert plan.changes[0].body["data"] == {"globex": "10", "initech": "5"}


# --- helpers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T14:05:00Z", NOW),
        ("2026-03-02T14:05:00.000000Z", NOW),
        ("2026-03-02T14:05:00.5Z", NOW + timedelta(milliseconds=500)),
        ("2026-03-02T15:05:00+01:00", NOW),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert objects.parse_time(text) == expected


def test_plans_do_not_mutate_their_inputs() -> None:
    dep, pods, rs = deployment(), copy.deepcopy(PODS), copy.deepcopy(HISTORY)
    snapshot = copy.deepcopy((dep, pods, rs))
    actions.plan_restart(dep, NOW, "x")
    actions.plan_rollback(dep, rs)
    actions.plan_image(dep, "x:1")
    actions.plan_drain(node(), pods, dep)
    assert (dep, pods, rs) == snapshot
