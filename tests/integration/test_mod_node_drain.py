"""zerotouch.selfheal.node_drain against the sandbox: cordon, evict through the Eviction API, uncordon.

The shared nodes (node-a/b/c) serve the other tests, so this test brings two nodes of its own, tainted so that
nothing else is scheduled on them, and removes them at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    assert_failed,
    assert_ok,
    create_namespace,
    deployment_manifest,
    in_diff,
    kube_client,
    rolled_out,
    run_tasks,
    task,
    wait_until,
)

pytestmark = pytest.mark.sandbox
NS = "mod-drain"
NODE_1, NODE_2 = "mod-drain-1", "mod-drain-2"
TAINT = {"key": "zerotouch.test/mod-drain", "value": "true", "effect": "NoSchedule"}


def pinned(name: str, replicas: int, node_selector: dict[str, str]) -> dict[str, Any]:
    manifest = deployment_manifest(NS, name, replicas=replicas)
    pod_spec = manifest["spec"]["template"]["spec"]
    pod_spec.update(nodeSelector=node_selector, tolerations=[dict(TAINT, operator="Equal")])
    return manifest


def nodes_of(kube: Any, app: str) -> list[str]:
    return sorted(
        p["spec"].get("nodeName") or "" for p in kube.pods(NS, app) if not p["metadata"].get("deletionTimestamp")
    )


def set_unschedulable(kube: Any, node: str, value: bool) -> None:
    kube.core.patch_node(node, {"spec": {"unschedulable": value or None}}, _content_type="application/merge-patch+json")


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Iterator[Any]:
    """web (2 pods) starts on mod-drain-1 (mod-drain-2 is cordoned meanwhile); guarded (2 pods, a budget that
    allows no disruption) stays pinned to mod-drain-1."""
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    for name in (NODE_1, NODE_2):
        labels = {"kubernetes.io/hostname": name, "zerotouch.test/pool": NS}
        kube.core.create_node({"metadata": {"name": name, "labels": labels}, "spec": {"taints": [TAINT]}})
    set_unschedulable(kube, NODE_2, True)
    kube.apps.create_namespaced_deployment(NS, pinned("web", 2, {"zerotouch.test/pool": NS}))
    kube.apps.create_namespaced_deployment(NS, pinned("guarded", 2, {"kubernetes.io/hostname": NODE_1}))
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded", "namespace": NS},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    kube.raw(f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets", "POST", budget)
    for name in ("web", "guarded"):
        wait_until(lambda name=name: rolled_out(kube, NS, name), what=f"{name} to roll out")
    set_unschedulable(kube, NODE_2, False)
    yield kube
    for name in (NODE_1, NODE_2):
        kube.core.delete_node(name)


def test_drain_then_uncordon(kube: Any, tmp_path: Path) -> None:
    assert nodes_of(kube, "web") == [NODE_1, NODE_1]
    web = {"node": NODE_1, "namespace": NS, "name": "web"}
    checked = run_tasks(
        tmp_path,
        [
            task("node_drain", **web),
            task("node_drain", node="nope", namespace=NS, name="web"),
            task("node_drain", node=NODE_1),
            task("node_drain", node=NODE_1, namespace=NS, name="missing"),
        ],
        check=True,
        diff=True,
    )
    assert_ok(checked[0], changed=True)
    evicted = checked[0]["evicted"]
    assert len(evicted) == 2 and all(p.startswith(f"{NS}/web-") for p in evicted)
    assert checked[0]["msg"] == (
        f"would cordon node {NODE_1} and evict 2 pods of {NS}/web from node {NODE_1} ({', '.join(evicted)})"
    )
    assert checked[0]["diff"]["before"] == {"spec": {"unschedulable": False}, "pods": evicted}
    assert_failed(checked[1], "node nope not found")
    assert_failed(checked[2], "namespace: required to drain the pods of a Deployment (or all_pods)")
    assert_failed(checked[3], f"deployment {NS}/missing not found")
    assert not kube.core.read_node(NODE_1).spec.unschedulable  # check mode changed nothing
    assert nodes_of(kube, "web") == [NODE_1, NODE_1]

    run = run_tasks(tmp_path, [task("node_drain", wait_timeout=10, **web), task("node_drain", **web)], diff=True)
    assert_ok(run[0], changed=True)
    assert run[0]["evicted"] == evicted and run[0]["cordoned"] is True
    assert in_diff(run.stdout, "+", '"unschedulable": true')
    assert_ok(run[1], changed=False)
    assert run[1]["msg"] == f"node {NODE_1} is cordoned and runs no pods of {NS}/web"
    assert kube.core.read_node(NODE_1).spec.unschedulable is True
    # The evicted pods were replaced on the other node; guarded, which was not asked for, stayed.
    wait_until(lambda: nodes_of(kube, "web") == [NODE_2, NODE_2], what="web to move to the other node")
    assert nodes_of(kube, "guarded") == [NODE_1, NODE_1]

    undo = run_tasks(
        tmp_path,
        [
            task("node_drain", node=NODE_1, state="uncordoned", diff=True),
            task("node_drain", node=NODE_1, state="uncordoned"),
        ],
    )
    assert_ok(undo[0], changed=True)
    assert undo[0]["msg"] == f"uncordoned node {NODE_1}"
    assert undo[0]["diff"] == {"before": {"spec": {"unschedulable": True}}, "after": {"spec": {"unschedulable": False}}}
    assert_ok(undo[1], changed=False)
    assert not kube.core.read_node(NODE_1).spec.unschedulable


def test_a_disruption_budget_refusal_is_retried_then_reported(kube: Any, tmp_path: Path) -> None:
    run = run_tasks(tmp_path, [task("node_drain", node=NODE_1, namespace=NS, name="guarded", wait_timeout=2)])
    assert_failed(run[0], f"cannot evict {NS}/guarded-")
    assert run[0]["msg"].endswith(
        f"from node {NODE_1}: Cannot evict pod as it would violate the pod's disruption budget., "
        f"still refused after 2s (done before: cordon node {NODE_1})"
    )
    assert nodes_of(kube, "guarded") == [NODE_1, NODE_1]  # the budget held
    set_unschedulable(kube, NODE_1, False)
