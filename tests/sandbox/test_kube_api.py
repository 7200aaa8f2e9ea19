"""The stand-in's API semantics, through the official ``kubernetes`` client over HTTP."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient


def status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == exc.status
    return body


def names(items: list[Any]) -> list[str]:
    return sorted(item.metadata.name for item in items)


def rolled_out(deployment: Any) -> Any:
    status = deployment.status
    counts = (status.replicas, status.updated_replicas, status.available_replicas)
    done = status.observed_generation == deployment.metadata.generation and counts == (1, 1, 1)
    return deployment if done else None


def test_deployment_create_read_list_patch_replace_delete(kube_apps, make_deployment, kube_wait):
    created = kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.metadata.creation_timestamp is not None
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted by the server

    fetched = kube_apps.read_namespaced_deployment("web", "default")
    assert fetched.metadata.uid == created.metadata.uid
    assert names(
        kube_apps.list_namespaced_deployment("default", label_selector="app=web,tier in (frontend)").items
    ) == ["web"]
    assert kube_apps.list_namespaced_deployment("default", label_selector="tier!=frontend").items == []

    strategic = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "DEBUG", "value": "1"}]}]}}}
    }
    patched = kube_apps.patch_namespaced_deployment("web", "default", strategic)
    container = patched.spec.template.spec.containers[0]
    assert [env.name for env in container.env] == ["MODE", "DEBUG"]  # merged by name, not replaced
    assert container.image == "nginx:1.25" and container.ports[0].container_port == 8080
    assert patched.metadata.generation == 2

    merged = kube_apps.patch_namespaced_deployment(
        "web",
        "default",
        {"metadata": {"labels": {"tier": None, "team": "a"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"app": "web", "team": "a"}
    assert merged.metadata.generation == 2  # metadata changes do not bump generation

    # The controllers write the deployment while it rolls out; a read-modify-write waits until they are done.
    body = kube_wait(lambda: rolled_out(kube_apps.read_namespaced_deployment("web", "default")), what="rollout")
    body.spec.replicas = 3
    replaced = kube_apps.replace_namespaced_deployment("web", "default", body)
    assert replaced.spec.replicas == 3 and replaced.metadata.generation == 3

    kube_apps.delete_namespaced_deployment("web", "default")
    with pytest.raises(ApiException) as caught:
        kube_apps.read_namespaced_deployment("web", "default")
    assert caught.value.status == 404


def test_resource_version_moves_forward_on_every_write(kube_core):
    body = {"metadata": {"name": "settings"}, "data": {"a": "1"}}
    versions = [int(kube_core.create_namespaced_config_map("default", body).metadata.resource_version)]
    versions.append(
        int(
            kube_core.patch_namespaced_config_map("settings", "default", {"data": {"b": "2"}}).metadata.resource_version
        )
    )
    other = kube_core.create_namespaced_config_map("default", {"metadata": {"name": "other"}})
    versions.append(int(other.metadata.resource_version))
    current = kube_core.read_namespaced_config_map("settings", "default")
    current.data["c"] = "3"
    versions.append(
        int(kube_core.replace_namespaced_config_map("settings", "default", current).metadata.resource_version)
    )
    assert versions == sorted(versions) and len(set(versions)) == len(versions)

    unchanged = kube_core.patch_namespaced_config_map("settings", "default", {"data": {"c": "3"}})
    assert int(unchanged.metadata.resource_version) == versions[-1]  # a no-op write is not a write


def test_missing_object_is_404_with_a_status_naming_it(kube_apps):
    with pytest.raises(ApiException) as caught:
        kube_apps.read_namespaced_deployment("ghost", "default")
    status = status_of(caught.value)
    assert caught.value.status == 404 and status["reason"] == "NotFound"
    assert status["details"] == {"name": "ghost", "group": "apps", "kind": "deployments"}
    assert status["message"] == 'deployments.apps "ghost" not found'


def test_creating_in_a_missing_namespace_is_404(kube_core):
    with pytest.raises(ApiException) as caught:
        kube_core.create_namespaced_config_map("nowhere", {"metadata": {"name": "c"}})
    assert caught.value.status == 404
    assert status_of(caught.value)["details"] == {"name": "nowhere", "kind": "namespaces"}

    kube_core.create_namespace({"metadata": {"name": "somewhere"}})
    assert (
        kube_core.create_namespaced_config_map("somewhere", {"metadata": {"name": "c"}}).metadata.namespace
        == "somewhere"
    )
    assert kube_core.read_namespace("somewhere").status.phase == "Active"


def test_duplicate_create_and_stale_replace_are_409(kube_apps, make_deployment):
    kube_apps.create_namespaced_deployment("default", make_deployment())
    with pytest.raises(ApiException) as caught:
        kube_apps.create_namespaced_deployment("default", make_deployment())
    assert caught.value.status == 409 and status_of(caught.value)["reason"] == "AlreadyExists"

    stale = kube_apps.read_namespaced_deployment("web", "default")
    kube_apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"touched": "yes"}}})
    stale.spec.replicas = 5
    with pytest.raises(ApiException) as caught:
        kube_apps.replace_namespaced_deployment("web", "default", stale)
    status = status_of(caught.value)
    assert caught.value.status == 409 and status["reason"] == "Conflict"
    assert status["details"]["name"] == "web"


def test_lease_lock_conflicts_on_stale_resource_version(kube_api):
    leases = client.CoordinationV1Api(kube_api)
    body = {"metadata": {"name": "remediation"}, "spec": {"holderIdentity": "runner-1", "leaseDurationSeconds": 30}}
    lease = leases.create_namespaced_lease("default", body)
    assert lease.spec.holder_identity == "runner-1"

    lease.spec.holder_identity = "runner-2"
    taken = leases.replace_namespaced_lease("remediation", "default", lease)
    assert taken.spec.holder_identity == "runner-2"

    lease.spec.holder_identity = "runner-3"  # still carries the resourceVersion read before runner-2 took it
    with pytest.raises(ApiException) as caught:
        leases.replace_namespaced_lease("remediation", "default", lease)
    assert caught.value.status == 409
    assert leases.read_namespaced_lease("remediation", "default").spec.holder_identity == "runner-2"

    with pytest.raises(ApiException) as caught:
        leases.create_namespaced_lease("default", body)
    assert caught.value.status == 409


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["a", "b"]),
        ("env==prod,tier=web", ["a"]),
        ("env!=prod", ["c", "d"]),
        ("env in (prod, dev)", ["a", "b", "c"]),
        ("env notin (prod)", ["c", "d"]),
        ("tier", ["a", "c"]),
        ("!tier", ["b", "d"]),
        ("env in (prod),!tier", ["b"]),
    ],
)
def test_label_selectors(kube_core, selector, expected):
    labels = {"a": {"env": "prod", "tier": "web"}, "b": {"env": "prod"}, "c": {"env": "dev", "tier": "db"}, "d": {}}
    for name, value in labels.items():
        kube_core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": value}})
    assert names(kube_core.list_namespaced_config_map("default", label_selector=selector).items) == expected


def test_bad_label_selector_is_400(kube_core):
    with pytest.raises(ApiException) as caught:
        kube_core.list_namespaced_config_map("default", label_selector="env in prod")
    assert caught.value.status == 400 and status_of(caught.value)["reason"] == "BadRequest"


def test_field_selectors(kube_core, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=3))

    def running() -> list[Any]:
        pods = kube_core.list_namespaced_pod("default").items
        return pods if sum(pod.status.phase == "Running" for pod in pods) == 3 else []

    pods = kube_wait(running, what="three running pods")
    first = pods[0]
    by_node = kube_core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={first.spec.node_name}").items
    assert names(by_node) == [first.metadata.name]
    assert names(
        kube_core.list_namespaced_pod("default", field_selector=f"metadata.name={first.metadata.name}").items
    ) == [first.metadata.name]
    assert len(kube_core.list_namespaced_pod("default", field_selector="status.phase=Running").items) == 3
    assert kube_core.list_namespaced_pod("default", field_selector="status.phase!=Running").items == []
    assert kube_core.list_pod_for_all_namespaces(field_selector="metadata.namespace=kube-system").items == []


def test_json_patch_and_failed_test_operation(kube_apps, make_deployment):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))
    operations = [
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/labels/owner", "value": "sre"},
    ]
    patched = kube_apps.patch_namespaced_deployment("web", "default", operations)
    assert patched.spec.replicas == 2 and patched.metadata.labels["owner"] == "sre"

    with pytest.raises(ApiException) as caught:
        kube_apps.patch_namespaced_deployment("web", "default", [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert caught.value.status == 422


def test_strategic_merge_directives(kube_apps, make_deployment):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))
    add_sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1.30"}]}}}}
    patched = kube_apps.patch_namespaced_deployment("web", "default", add_sidecar)
    assert [c.name for c in patched.spec.template.spec.containers] == ["app", "sidecar"]

    drop_env = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "MODE", "$patch": "delete"}]}]}}}
    }
    assert (
        kube_apps.patch_namespaced_deployment("web", "default", drop_env).spec.template.spec.containers[0].env is None
    )

    drop_sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    patched = kube_apps.patch_namespaced_deployment("web", "default", drop_sidecar)
    assert [c.name for c in patched.spec.template.spec.containers] == ["app"]

    replace_env = [{"name": "A", "value": "1"}, {"$patch": "replace"}]
    body = {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": replace_env}]}}}}
    env = kube_apps.patch_namespaced_deployment("web", "default", body).spec.template.spec.containers[0].env
    assert [(e.name, e.value) for e in env] == [("A", "1")]


def test_service_ports_merge_by_port_and_get_defaults(kube_core):
    spec = {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    service = kube_core.create_namespaced_service("default", {"metadata": {"name": "web"}, "spec": spec})
    assert service.spec.cluster_ip and service.spec.type == "ClusterIP"
    assert service.spec.ports[0].protocol == "TCP"

    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"name": "metrics", "port": 9100}]}}
    patched = kube_core.patch_namespaced_service("web", "default", patch)
    assert [(p.name, p.port, p.target_port) for p in patched.spec.ports] == [
        ("http", 80, 9090),
        ("metrics", 9100, 9100),
    ]


def test_list_kind_pagination_and_dry_run(kube_core):
    for index in range(5):
        kube_core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{index}"}})
    first = kube_core.list_namespaced_config_map("default", limit=2)
    assert first.kind == "ConfigMapList" and first.api_version == "v1"
    assert names(first.items) == ["cm-0", "cm-1"] and first.metadata.remaining_item_count == 3
    rest = kube_core.list_namespaced_config_map("default", limit=10, _continue=first.metadata._continue)
    assert names(rest.items) == ["cm-2", "cm-3", "cm-4"] and rest.metadata._continue is None

    kube_core.create_namespaced_config_map("default", {"metadata": {"name": "dry"}}, dry_run="All")
    with pytest.raises(ApiException):
        kube_core.read_namespaced_config_map("dry", "default")


def test_dynamic_client_discovers_lists_and_patches(kube_api, kube_apps, make_deployment, kube_wait):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))
    dynamic = DynamicClient(kube_api)
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and "patch" in deployments.verbs
    assert deployments.subresources["scale"].kind == "Scale"
    listed = deployments.get(namespace="default")
    assert listed.kind == "DeploymentList" and [item.metadata.name for item in listed.items] == ["web"]

    restart = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}
    deployments.patch(name="web", namespace="default", body=restart)
    replicasets = dynamic.resources.get(api_version="apps/v1", kind="ReplicaSet")
    kube_wait(lambda: len(replicasets.get(namespace="default").items) == 2, what="a second replicaset")
    pods = dynamic.resources.get(api_version="v1", kind="Pod")
    assert pods.subresources["eviction"].kind == "Eviction"
    nodes = dynamic.resources.get(api_version="v1", kind="Node")
    assert not nodes.namespaced and len(nodes.get().items) == 3
    for api_version, kind in [("coordination.k8s.io/v1", "Lease"), ("policy/v1", "PodDisruptionBudget")]:
        assert dynamic.resources.get(api_version=api_version, kind=kind).namespaced


def test_watch_streams_existing_and_new_objects(kube_core):
    kube_core.create_namespaced_config_map("default", {"metadata": {"name": "before", "labels": {"w": "yes"}}})

    def write_later() -> None:
        kube_core.create_namespaced_config_map("default", {"metadata": {"name": "ignored"}})
        kube_core.create_namespaced_config_map("default", {"metadata": {"name": "after", "labels": {"w": "yes"}}})
        kube_core.patch_namespaced_config_map("after", "default", {"data": {"k": "v"}})

    seen = []
    stream = watch.Watch()
    writer = threading.Timer(0.2, write_later)
    writer.start()
    for event in stream.stream(
        kube_core.list_namespaced_config_map, "default", label_selector="w=yes", timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "MODIFIED":
            stream.stop()
    writer.join()
    assert seen == [("ADDED", "before"), ("ADDED", "after"), ("MODIFIED", "after")]


def test_namespace_deletion_removes_its_objects(kube_core, kube_wait):
    kube_core.create_namespace({"metadata": {"name": "team"}})
    kube_core.create_namespaced_config_map("team", {"metadata": {"name": "c"}})
    kube_core.delete_namespace("team")
    kube_wait(lambda: not kube_core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=team").items)
    with pytest.raises(ApiException) as caught:
        kube_core.read_namespace("team")
    assert caught.value.status == 404


def get_json(kube, path: str, accept: str = "application/json") -> Any:
    request = urllib.request.Request(kube.sandbox.url + path, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_discovery_describes_kinds_and_subresources_like_a_server(kube):
    core = {entry["name"]: entry for entry in get_json(kube, "/api/v1")["resources"]}
    assert core["pods"]["kind"] == "Pod" and core["pods"]["namespaced"] and "watch" in core["pods"]["verbs"]
    assert (core["pods/eviction"]["group"], core["pods/eviction"]["kind"]) == ("policy", "Eviction")
    assert core["pods/eviction"]["verbs"] == ["create"]
    assert core["nodes"]["namespaced"] is False and core["nodes/status"]["verbs"] == ["get", "patch", "update"]
    apps = {entry["name"]: entry for entry in get_json(kube, "/apis/apps/v1")["resources"]}
    assert (apps["deployments/scale"]["group"], apps["deployments/scale"]["kind"]) == ("autoscaling", "Scale")
    groups = {group["name"] for group in get_json(kube, "/apis")["groups"]}
    assert {"apps", "coordination.k8s.io", "policy"} <= groups
    assert get_json(kube, "/version")["gitVersion"].startswith("v1.")


def test_kubectl_style_table_output(kube, kube_core):
    kube_core.create_namespaced_config_map("default", {"metadata": {"name": "flags"}, "data": {"a": "1", "b": "2"}})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = get_json(kube, "/api/v1/namespaces/default/configmaps", accept)
    assert table["kind"] == "Table" and [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["flags", 2]
    nodes = get_json(kube, "/api/v1/nodes/node-a", accept)
    assert nodes["rows"][0]["cells"][:2] == ["node-a", "Ready"]


def test_typed_clients_can_read_fresh_objects_of_every_kind(kube_api, kube_core, kube_apps, make_deployment):
    template = make_deployment()["spec"]
    body = {"metadata": {"name": "bare"}, "spec": {**template, "replicas": 0}}
    assert kube_apps.create_namespaced_replica_set("default", body).status.replicas == 0
    pdb = {"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}}
    assert (
        client.PolicyV1Api(kube_api).create_namespaced_pod_disruption_budget("default", pdb).status.expected_pods == 0
    )
    service = kube_core.create_namespaced_service(
        "default", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert service.spec.ports[0].target_port == 80
    assert kube_core.read_node("node-a").status.node_info.kubelet_version
    assert kube_core.list_namespaced_event("default").items == []


def test_watch_sees_pods_come_and_go(kube_core, kube_apps, make_deployment):
    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))
    events: list[tuple[str, str]] = []
    stream = watch.Watch()
    threading.Timer(
        0.2, lambda: kube_apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 0}})
    ).start()
    for event in stream.stream(kube_core.list_namespaced_pod, "default", timeout_seconds=5):
        events.append((event["type"], event["object"].status.phase))
        if event["type"] == "DELETED":
            stream.stop()
    assert events[0][0] == "ADDED" and events[-1][0] == "DELETED"


def test_finalizers_hold_deletion_and_orphaning_keeps_dependents(kube_core, kube_apps, make_deployment, kube_wait):
    kube_core.create_namespaced_config_map("default", {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
    kube_core.delete_namespaced_config_map("held", "default")
    assert kube_core.read_namespaced_config_map("held", "default").metadata.deletion_timestamp is not None
    kube_core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as caught:
        kube_core.read_namespaced_config_map("held", "default")
    assert caught.value.status == 404

    kube_apps.create_namespaced_deployment("default", make_deployment(replicas=1))
    kube_wait(lambda: kube_apps.list_namespaced_replica_set("default").items, what="a replicaset")
    kube_apps.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    (orphan,) = kube_apps.list_namespaced_replica_set("default").items
    assert orphan.metadata.owner_references is None
