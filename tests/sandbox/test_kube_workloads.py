"""The stand-in's controllers: deployments, replicasets, scheduling, kubelet status, eviction and budgets."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox.kube.resources import REPLICASETS

REVISION = "deployment.kubernetes.io/revision"


def pods_of(kube_core: client.CoreV1Api, selector: str = "app=web") -> list[Any]:
    return kube_core.list_namespaced_pod("default", label_selector=selector).items


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def waiting_reason(pod: Any) -> str | None:
    statuses = pod.status.container_statuses or []
    waiting = statuses[0].state.waiting if statuses else None
    return waiting.reason if waiting else None


def settled(kube_apps: client.AppsV1Api, name: str = "web") -> Any:
    """The deployment once its rollout is complete (what ``kubectl rollout status`` waits for)."""
    deployment = kube_apps.read_namespaced_deployment(name, "default")
    status, replicas = deployment.status, deployment.spec.replicas
    done = (
        status.observed_generation == deployment.metadata.generation
        and (status.updated_replicas or 0) == replicas
        and (status.replicas or 0) == replicas
        and (status.available_replicas or 0) == replicas
    )
    return deployment if done else None


def replicasets(kube_apps: client.AppsV1Api) -> dict[str, Any]:
    return {rs.metadata.name: rs for rs in kube_apps.list_namespaced_replica_set("default").items}


def evict(kube_core: client.CoreV1Api, name: str) -> None:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    kube_core.create_namespaced_pod_eviction(name, "default", body)


def test_deployment_runs_ready_pods_owned_through_a_replicaset(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=3))
    deployment = kube_wait(lambda: settled(kube_apps), what="rollout")
    (rs,) = replicasets(kube_apps).values()
    template_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{template_hash}" and rs.metadata.annotations[REVISION] == "1"
    assert rs.metadata.owner_references[0].uid == deployment.metadata.uid
    assert deployment.metadata.annotations[REVISION] == "1"

    pods = pods_of(kube_core)
    assert len(pods) == 3 and all(ready(pod) and pod.status.phase == "Running" for pod in pods)
    assert len({pod.spec.node_name for pod in pods}) == 3  # spread over the three nodes
    for pod in pods:
        assert (
            pod.metadata.name.startswith(f"{rs.metadata.name}-") and len(pod.metadata.name) == len(rs.metadata.name) + 6
        )
        assert pod.metadata.labels == {"app": "web", "pod-template-hash": template_hash}
        assert (
            pod.metadata.owner_references[0].kind == "ReplicaSet"
            and pod.metadata.owner_references[0].uid == rs.metadata.uid
        )
        (container,) = pod.status.container_statuses
        assert container.ready and container.restart_count == 0 and container.state.running is not None

    conditions = {c.type: c for c in deployment.status.conditions}
    assert conditions["Available"].status == "True"
    assert conditions["Progressing"].reason == "NewReplicaSetAvailable"
    assert deployment.status.ready_replicas == 3 and deployment.status.unavailable_replicas is None


def test_scale_subresource_moves_the_pods(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    scale = kube_apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert scale.spec.replicas == 2 and scale.status.replicas == 2 and scale.status.selector == "app=web"

    kube_apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    kube_wait(lambda: len([p for p in pods_of(kube_core) if ready(p)]) == 4, what="four ready pods")

    scale = kube_apps.read_namespaced_deployment_scale("web", "default")
    scale.spec.replicas = 1
    kube_apps.replace_namespaced_deployment_scale("web", "default", scale)
    kube_wait(lambda: len(pods_of(kube_core)) == 1, what="one pod")
    assert kube_apps.read_namespaced_deployment("web", "default").spec.replicas == 1
    assert kube_wait(lambda: settled(kube_apps), what="scaled down").status.replicas == 1


def test_rollout_restart_creates_the_next_revision(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    before = kube_wait(lambda: settled(kube_apps), what="rollout")
    restart = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}
        }
    }
    kube_apps.patch_namespaced_deployment("web", "default", restart)
    after = kube_wait(lambda: settled(kube_apps), what="restart rollout")
    assert after.metadata.generation == before.metadata.generation + 1
    assert after.metadata.annotations[REVISION] == "2"

    revisions = {rs.metadata.annotations[REVISION]: rs for rs in replicasets(kube_apps).values()}
    assert sorted(revisions) == ["1", "2"]
    assert revisions["1"].spec.replicas == 0 and revisions["2"].spec.replicas == 2
    new_hash = revisions["2"].metadata.labels["pod-template-hash"]
    kube_wait(lambda: len(pods_of(kube_core)) == 2, what="old pods gone")
    assert all(p.metadata.labels["pod-template-hash"] == new_hash for p in pods_of(kube_core))
    assert all(p.metadata.annotations["kubectl.kubernetes.io/restartedAt"] for p in pods_of(kube_core))


def test_rollback_reuses_the_old_replicaset_as_the_next_revision(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    (original,) = replicasets(kube_apps).values()
    image = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}}
    kube_apps.patch_namespaced_deployment("web", "default", image)
    kube_wait(lambda: settled(kube_apps) and len(replicasets(kube_apps)) == 2, what="image rollout")

    # What `kubectl rollout undo` sends: the old ReplicaSet's template, without its hash label.
    template = api_dict(kube_apps, original.spec.template)
    del template["metadata"]["labels"]["pod-template-hash"]
    kube_apps.patch_namespaced_deployment(
        "web", "default", [{"op": "replace", "path": "/spec/template", "value": template}]
    )
    rolled_back = kube_wait(lambda: settled(kube_apps), what="rollback")

    sets = replicasets(kube_apps)
    assert len(sets) == 2  # no third ReplicaSet
    reused = sets[original.metadata.name]
    assert reused.metadata.annotations[REVISION] == "3"
    assert reused.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert sorted(rs.metadata.annotations[REVISION] for rs in sets.values()) == ["2", "3"]
    assert rolled_back.metadata.annotations[REVISION] == "3" and reused.spec.replicas == 2
    kube_wait(lambda: {p.spec.containers[0].image for p in pods_of(kube_core)} == {"nginx:1.25"}, what="old image back")


def api_dict(kube_apps: client.AppsV1Api, model: Any) -> dict[str, Any]:
    return kube_apps.api_client.sanitize_for_serialization(model)


def test_unpullable_image_sticks_in_image_pull_backoff_and_keeps_old_pods(
    kube_core, kube_apps, make_deployment, kube_wait
):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=4))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    bad = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:nonexistent-9"}]}}}}
    kube_apps.patch_namespaced_deployment("web", "default", bad)

    def stuck() -> list[Any]:
        failing = [p for p in pods_of(kube_core) if waiting_reason(p) == "ImagePullBackOff"]
        return failing if len(failing) == 2 else []

    failing = kube_wait(stuck, what="two pods in ImagePullBackOff")
    assert all(not ready(p) and p.status.phase == "Pending" for p in failing)
    assert {p.spec.containers[0].image for p in failing} == {"nginx:nonexistent-9"}
    old_ready = [p for p in pods_of(kube_core) if p.spec.containers[0].image == "nginx:1.25" and ready(p)]
    assert len(old_ready) == 3  # maxUnavailable 25% of 4: the old version keeps serving
    deployment = kube_apps.read_namespaced_deployment("web", "default")
    conditions = {c.type: c for c in deployment.status.conditions}
    assert conditions["Available"].status == "True" and conditions["Progressing"].reason == "ReplicaSetUpdated"
    assert deployment.status.unavailable_replicas == 2 and deployment.status.updated_replicas == 2


def test_progress_deadline_is_reported(kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment(
        "default", make_deployment(image="nginx:nonexistent", progressDeadlineSeconds=1)
    )

    def timed_out() -> bool:
        conditions = {c.type: c for c in kube_apps.read_namespaced_deployment("web", "default").status.conditions or []}
        progressing = conditions.get("Progressing")
        return progressing is not None and progressing.reason == "ProgressDeadlineExceeded"

    kube_wait(timed_out, timeout=4, what="ProgressDeadlineExceeded")
    available = {c.type: c for c in kube_apps.read_namespaced_deployment("web", "default").status.conditions}[
        "Available"
    ]
    assert available.status == "False" and available.reason == "MinimumReplicasUnavailable"


def test_injected_crash_loop_sticks_until_the_pod_is_replaced(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    victim = pods_of(kube_core)[0].metadata.name
    crash = {
        "status": {
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "nginx:1.25",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting"}},
                    "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                }
            ],
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        }
    }
    patched = kube_core.patch_namespaced_pod_status(victim, "default", crash)
    assert patched.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    assert {c.type for c in patched.status.conditions} >= {"Ready", "PodScheduled"}  # conditions merge by type
    kube_wait(
        lambda: kube_apps.read_namespaced_deployment("web", "default").status.ready_replicas == 1, what="one ready"
    )

    time.sleep(0.3)  # six kubelet start-up delays (0.05 s): the simulated kubelet must leave the pod alone
    still = kube_core.read_namespaced_pod(victim, "default").status.container_statuses[0]
    assert still.state.waiting.reason == "CrashLoopBackOff" and still.restart_count == 7
    assert still.last_state.terminated.reason == "OOMKilled"

    kube_core.delete_namespaced_pod(victim, "default")
    kube_wait(lambda: settled(kube_apps), what="healthy replacement")
    pods = pods_of(kube_core)
    assert victim not in {p.metadata.name for p in pods} and all(ready(p) for p in pods)


def test_not_ready_node_gets_no_pods_and_reports_its_pods_not_ready(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=3))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    down = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}}
    kube_core.patch_node_status("node-c", down)
    on_c = [p.metadata.name for p in pods_of(kube_core) if p.spec.node_name == "node-c"]
    assert len(on_c) == 1
    kube_wait(lambda: not ready(kube_core.read_namespaced_pod(on_c[0], "default")), what="pod on node-c not ready")
    kube_wait(lambda: kube_apps.read_namespaced_deployment("web", "default").status.ready_replicas == 2, what="2 ready")

    kube_apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 6}})
    kube_wait(lambda: len([p for p in pods_of(kube_core) if ready(p)]) == 5, what="five ready pods")
    assert [p.metadata.name for p in pods_of(kube_core) if p.spec.node_name == "node-c"] == on_c

    kube_core.patch_node_status("node-c", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    kube_wait(lambda: ready(kube_core.read_namespaced_pod(on_c[0], "default")), what="node-c pod ready again")


def test_cordon_and_evict_moves_the_pod_to_another_node(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    victim = pods_of(kube_core)[0]
    node = victim.spec.node_name
    kube_core.patch_node(node, {"spec": {"unschedulable": True}})
    assert kube_core.read_node(node).spec.unschedulable is True

    evict(kube_core, victim.metadata.name)
    with pytest.raises(ApiException) as caught:
        kube_core.read_namespaced_pod(victim.metadata.name, "default")
    assert caught.value.status == 404
    kube_wait(lambda: settled(kube_apps), what="replacement")
    placement = {p.metadata.name: p.spec.node_name for p in pods_of(kube_core)}
    assert len(placement) == 2 and node not in placement.values()

    kube_core.patch_node(node, {"spec": {"unschedulable": False}})
    assert not kube_core.read_node(node).spec.unschedulable


def test_disruption_budget_blocks_eviction_with_429(kube_api, kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    policy = client.PolicyV1Api(kube_api)
    pdb = {"metadata": {"name": "web"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}
    policy.create_namespaced_pod_disruption_budget("default", pdb)
    kube_wait(lambda: policy.read_namespaced_pod_disruption_budget("web", "default").status.disruptions_allowed == 1)

    first, second = (p.metadata.name for p in pods_of(kube_core))
    evict(kube_core, first)
    with pytest.raises(ApiException) as caught:
        evict(kube_core, second)  # the replacement of the first is not ready yet: the budget is spent
    assert caught.value.status == 429
    status = json.loads(caught.value.body)
    assert status["reason"] == "TooManyRequests"
    assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert kube_core.read_namespaced_pod(second, "default").metadata.name == second

    budget = policy.read_namespaced_pod_disruption_budget("web", "default").status
    assert (budget.expected_pods, budget.desired_healthy) == (2, 1)
    kube_wait(lambda: settled(kube_apps), what="replacement ready")
    evict(kube_core, second)  # allowed again once both pods are healthy


def test_min_available_budget_blocks_every_eviction(kube_api, kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    pdb = {"metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}
    client.PolicyV1Api(kube_api).create_namespaced_pod_disruption_budget("default", pdb)
    with pytest.raises(ApiException) as caught:
        evict(kube_core, pods_of(kube_core)[0].metadata.name)
    assert caught.value.status == 429
    assert len(pods_of(kube_core)) == 2


def test_pods_stay_pending_when_no_node_is_eligible(kube_core, kube_apps, make_deployment, kube_wait):
    for name in ("node-a", "node-b", "node-c"):
        kube_core.patch_node(name, {"spec": {"unschedulable": True}})
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))

    def unschedulable() -> Any:
        pods = pods_of(kube_core)
        conditions = {c.type: c for c in (pods[0].status.conditions or [])} if pods else {}
        scheduled = conditions.get("PodScheduled")
        return scheduled if scheduled is not None and scheduled.reason == "Unschedulable" else None

    condition = kube_wait(unschedulable, what="an unschedulable pod")
    assert condition.status == "False" and "3 node(s) were unschedulable" in condition.message
    assert pods_of(kube_core)[0].status.phase == "Pending" and pods_of(kube_core)[0].spec.node_name is None

    kube_core.patch_node("node-b", {"spec": {"unschedulable": False}})
    assert kube_wait(lambda: settled(kube_apps), what="scheduled after uncordon")
    assert pods_of(kube_core)[0].spec.node_name == "node-b"


def test_replicas_spread_over_nodes_whatever_else_they_run(kube_core, kube_apps, make_deployment, kube_wait):
    kube_core.patch_node("node-a", {"spec": {"unschedulable": True}})
    kube_apps.create_namespaced_deployment("default", make_deployment("ballast", replicas=4))
    kube_wait(lambda: settled(kube_apps, "ballast"), what="ballast on node-b and node-c")
    kube_core.patch_node("node-a", {"spec": {"unschedulable": False}})

    # node-a is the least loaded by far; the replicas still go to three different nodes.
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=3))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    assert sorted(p.spec.node_name for p in pods_of(kube_core)) == ["node-a", "node-b", "node-c"]


def test_deleting_a_deployment_cascades(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    kube_apps.delete_namespaced_deployment("web", "default")
    kube_wait(lambda: not replicasets(kube_apps) and not pods_of(kube_core), what="replicasets and pods gone")


def test_seeded_objects_get_status_through_apply(kube, kube_core):
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-a"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]},
        }
    )
    ready_condition = next(c for c in kube_core.read_node("node-a").status.conditions if c.type == "Ready")
    assert ready_condition.status == "False"
    assert kube_core.read_node("node-b").metadata.labels["kubernetes.io/hostname"] == "node-b"


def test_partial_kubelet_status_reads_back_through_typed_clients(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))
    kube_wait(lambda: settled(kube_apps), what="rollout")
    name = pods_of(kube_core)[0].metadata.name
    status = {
        "status": {
            "containerStatuses": [
                {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {}}}
            ]
        }
    }
    kube_core.patch_namespaced_pod_status(name, "default", status, _content_type="application/merge-patch+json")
    (container,) = kube_core.read_namespaced_pod(name, "default").status.container_statuses
    assert (container.image, container.ready, container.restart_count) == ("nginx:1.25", False, 0)
    assert container.last_state.terminated.exit_code == 0


def test_controllers_find_dependents_by_their_controller_owner(kube, kube_apps, make_deployment, kube_wait):
    # The store indexes objects by their managing owner on every write; the index follows an orphaning.
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    deployment = kube_wait(lambda: settled(kube_apps), what="rollout")
    uid = deployment.metadata.uid
    names = sorted(rs["metadata"]["name"] for rs in kube.sandbox.store.dependents(REPLICASETS, uid))
    assert names == sorted(replicasets(kube_apps)) and len(names) == 1
    kube_apps.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    kube_wait(lambda: all(not rs.metadata.owner_references for rs in replicasets(kube_apps).values()), what="orphan")
    assert kube.sandbox.store.dependents(REPLICASETS, uid) == []
    assert sorted(replicasets(kube_apps)) == names  # orphaned, not deleted


def test_a_settled_workload_is_not_written_again(kube_core, kube_apps, make_deployment, kube_wait):
    # Controller passes keep running (on every write and each second); a status that did not change is not written.
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=2))
    kube_wait(lambda: settled(kube_apps), what="rollout")

    def versions() -> dict[str, str]:
        objects = [kube_apps.read_namespaced_deployment("web", "default")]
        objects += list(replicasets(kube_apps).values()) + pods_of(kube_core)
        return {f"{type(o).__name__}/{o.metadata.name}": o.metadata.resource_version for o in objects}

    before = versions()
    time.sleep(2.5)  # two resyncs at least
    assert versions() == before
