"""RBAC in the stand-in, through the official client: the shipped docs/deploy/rbac.yml lets the loop's
ServiceAccount do what the modules do, and nothing else; the RBAC objects are API objects like any other."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from sandbox.cluster import Kube
from sandbox.kube import write_kubeconfig
from sandbox.kube.__main__ import load_manifests
from sandbox.kube.kubeconfig import RESTRICTED_TOKEN, SHIPPED_RBAC
from tests.sandbox.conftest import RunningKube

SA_USER = "system:serviceaccount:zerotouch-selfheal:zerotouch-selfheal"
WORKLOADS = "zerotouch-selfheal-workloads"


@pytest.fixture
def granted(kube: RunningKube, kube_core: Any, kube_apps: Any, make_deployment: Callable[..., Any]) -> RunningKube:
    """The stand-in with namespaces shop (bound by the shipped RoleBinding) and payments (not bound)."""
    for name in ("shop", "payments"):
        kube_core.create_namespace({"metadata": {"name": name}})
        kube_apps.create_namespaced_deployment(name, make_deployment("web", replicas=2))
    for manifest in load_manifests([SHIPPED_RBAC]):
        kube.apply(manifest)
    return kube


@pytest.fixture
def restricted(granted: RunningKube, tmp_path: Path) -> Iterator[kubernetes.client.ApiClient]:
    path = write_kubeconfig(tmp_path / "kubeconfig-restricted", granted.sandbox.url, token=RESTRICTED_TOKEN)
    client = kubernetes.config.new_client_from_config(config_file=str(path))
    yield client
    client.close()


def forbidden(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 403, caught.value.body
    return json.loads(caught.value.body)  # type: ignore[no-any-return]


def restart(apps: Any) -> None:
    """A rollout restart as workload_restart does it: PUT of the Deployment read, again if the controller wrote."""
    for _attempt in range(5):
        deployment = apps.read_namespaced_deployment("web", "shop")
        deployment.spec.template.metadata.annotations = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
        try:
            apps.replace_namespaced_deployment("web", "shop", deployment)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise AssertionError("the Deployment kept changing under the restart")


def test_the_shipped_rbac_lets_the_loop_do_what_its_modules_do(
    restricted: Any, kube_core: Any, kube_wait: Callable[..., Any]
) -> None:
    core, apps = kubernetes.client.CoreV1Api(restricted), kubernetes.client.AppsV1Api(restricted)
    coordination = kubernetes.client.CoordinationV1Api(restricted)
    # gather
    assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 2
    assert apps.list_namespaced_replica_set("shop").items

    def both_pods() -> list[Any] | None:
        items = core.list_namespaced_pod("shop").items
        return items if len(items) == 2 else None

    pods = kube_wait(both_pods, what="the pods of shop/web")
    assert [node.metadata.name for node in core.list_node().items] == ["node-a", "node-b", "node-c"]
    # act: evict a pod, delete a pod, scale, rollout restart (PUT of the Deployment), cordon
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pods[0].metadata.name}}
    core.create_namespaced_pod_eviction(pods[0].metadata.name, "shop", eviction)
    core.delete_namespaced_pod(pods[1].metadata.name, "shop")
    apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 3}})
    restart(apps)
    core.patch_node("node-a", {"spec": {"unschedulable": True}})
    assert core.read_node("node-a").spec.unschedulable is True
    # the lock, the tenant limits, a reconciled Service
    lease = {"metadata": {"name": "selfheal-web"}, "spec": {"holderIdentity": "me"}}
    coordination.create_namespaced_lease("shop", lease)
    lease = coordination.read_namespaced_lease("selfheal-web", "shop")
    lease.spec.holder_identity = "someone"
    coordination.replace_namespaced_lease("selfheal-web", "shop", lease)
    core.create_namespaced_config_map("shop", {"metadata": {"name": "web-tenant-limits"}, "data": {"acme": "5"}})
    configmap = core.read_namespaced_config_map("web-tenant-limits", "shop")
    configmap.data = {"acme": "10"}
    core.replace_namespaced_config_map("web-tenant-limits", "shop", configmap)
    service = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    core.create_namespaced_service("shop", service)
    live = core.read_namespaced_service("web", "shop")
    live.spec.ports[0].target_port = 8080
    core.replace_namespaced_service("web", "shop", live)
    assert kube_core.read_namespaced_config_map("web-tenant-limits", "shop").data == {"acme": "10"}


@pytest.mark.parametrize(
    ("attempt", "message"),
    [
        (
            lambda core, apps: apps.delete_namespaced_deployment("web", "shop"),
            f'deployments.apps "web" is forbidden: User "{SA_USER}" cannot delete resource "deployments" in API group '
            '"apps" in the namespace "shop"',
        ),
        (
            lambda core, apps: core.list_namespaced_secret("shop"),
            f'secrets is forbidden: User "{SA_USER}" cannot list resource "secrets" in API group "" in the namespace '
            '"shop"',
        ),
        (
            lambda core, apps: core.read_namespaced_secret("token", "shop"),
            f'secrets "token" is forbidden: User "{SA_USER}" cannot get resource "secrets" in API group "" in the '
            'namespace "shop"',
        ),
        (  # a namespace without the RoleBinding grants nothing
            lambda core, apps: apps.read_namespaced_deployment("web", "payments"),
            f'deployments.apps "web" is forbidden: User "{SA_USER}" cannot get resource "deployments" in API group '
            '"apps" in the namespace "payments"',
        ),
        (  # nor does a read across all namespaces
            lambda core, apps: core.list_pod_for_all_namespaces(),
            f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" at the cluster scope',
        ),
        (
            lambda core, apps: core.delete_node("node-a"),
            f'nodes "node-a" is forbidden: User "{SA_USER}" cannot delete resource "nodes" in API group "" at the '
            "cluster scope",
        ),
        (  # the scale subresource grants patch only
            lambda core, apps: apps.read_namespaced_deployment_scale("web", "shop"),
            f'deployments.apps "web" is forbidden: User "{SA_USER}" cannot get resource "deployments/scale" in API '
            'group "apps" in the namespace "shop"',
        ),
        (  # the status subresource is not the object
            lambda core, apps: apps.patch_namespaced_deployment_status("web", "shop", {"status": {}}),
            f'deployments.apps "web" is forbidden: User "{SA_USER}" cannot patch resource "deployments/status" in API '
            'group "apps" in the namespace "shop"',
        ),
        (
            lambda core, apps: core.list_namespaced_service_account("zerotouch-selfheal"),
            f'serviceaccounts is forbidden: User "{SA_USER}" cannot list resource "serviceaccounts" in API group "" in '
            'the namespace "zerotouch-selfheal"',
        ),
    ],
)
def test_the_loop_is_refused_what_it_does_not_need(
    restricted: Any, attempt: Callable[[Any, Any], Any], message: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(restricted), kubernetes.client.AppsV1Api(restricted)
    status = forbidden(lambda: attempt(core, apps))
    assert (status["kind"], status["status"], status["reason"], status["code"]) == (
        "Status",
        "Failure",
        "Forbidden",
        403,
    )
    assert status["message"] == message


def test_the_forbidden_status_names_the_object(restricted: Any) -> None:
    status = forbidden(lambda: kubernetes.client.AppsV1Api(restricted).delete_namespaced_deployment("web", "shop"))
    assert status["details"] == {"group": "apps", "kind": "deployments", "name": "web"}


def test_the_loop_cannot_grant_itself_more(restricted: Any) -> None:
    rbac_api = kubernetes.client.RbacAuthorizationV1Api(restricted)
    forbidden(
        lambda: rbac_api.patch_cluster_role(
            WORKLOADS, {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
        )
    )
    forbidden(lambda: rbac_api.list_role_binding_for_all_namespaces())


def test_discovery_and_version_are_open_to_every_authenticated_user(restricted: Any) -> None:
    kube = Kube(None, None, None, restricted)
    assert kube.raw("/version")["major"]
    assert "rbac.authorization.k8s.io" in [group["name"] for group in kube.raw("/apis")["groups"]]
    assert "deployments/scale" in [entry["name"] for entry in kube.raw("/apis/apps/v1")["resources"]]


def test_rbac_objects_are_api_objects_and_changes_take_effect_at_once(
    granted: RunningKube, kube_api: Any, restricted: Any
) -> None:
    admin = kubernetes.client.RbacAuthorizationV1Api(kube_api)
    apps = kubernetes.client.AppsV1Api(restricted)
    shipped = admin.read_cluster_role(WORKLOADS)
    names = [item.metadata.name for item in admin.list_cluster_role().items]
    assert {WORKLOADS, "zerotouch-selfheal-nodes", "system:discovery"} <= set(names)
    assert [b.metadata.name for b in admin.list_namespaced_role_binding("shop").items] == ["zerotouch-selfheal"]

    rules = kube_api.sanitize_for_serialization(shipped)["rules"]
    without = [r for r in rules if r["resources"] != ["deployments/scale"]]
    assert len(without) == len(rules) - 1
    admin.patch_cluster_role(WORKLOADS, {"rules": without})
    forbidden(lambda: apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 1}}))
    admin.patch_cluster_role(WORKLOADS, {"rules": rules})
    apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 1}})

    # a Role of its own, bound in payments, grants there
    role = {
        "metadata": {"name": "read-deployments"},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"], "resourceNames": ["web"]}],
    }
    admin.create_namespaced_role("payments", role)
    binding = {
        "metadata": {"name": "selfheal-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-deployments"},
        "subjects": [{"kind": "ServiceAccount", "name": "zerotouch-selfheal", "namespace": "zerotouch-selfheal"}],
    }
    admin.create_namespaced_role_binding("payments", binding)
    assert apps.read_namespaced_deployment("web", "payments").metadata.name == "web"
    forbidden(lambda: apps.list_namespaced_deployment("payments"))  # resourceNames: that object only
    admin.delete_namespaced_role("read-deployments", "payments")
    status = forbidden(lambda: apps.read_namespaced_deployment("web", "payments"))
    assert status["message"].endswith(': RBAC: role.rbac.authorization.k8s.io "read-deployments" not found')
    admin.delete_namespaced_role_binding("selfheal-reads", "payments")


def test_a_binding_keeps_its_role_ref(granted: RunningKube, kube_api: Any) -> None:
    admin = kubernetes.client.RbacAuthorizationV1Api(kube_api)
    with pytest.raises(ApiException) as caught:
        admin.patch_namespaced_role_binding("zerotouch-selfheal", "shop", {"roleRef": {"name": "cluster-admin"}})
    assert caught.value.status == 422
    assert "cannot change roleRef" in json.loads(caught.value.body)["message"]
    crb = {
        "metadata": {"name": "bad"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"},
        "subjects": [],
    }
    with pytest.raises(ApiException) as caught:
        admin.create_cluster_role_binding(crb)
    assert caught.value.status == 422


def test_the_audit_log_records_each_decision_for_the_restricted_identity_only(
    granted: RunningKube, restricted: Any, kube_apps: Any, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    granted.sandbox.emulator.audit_log = audit
    apps = kubernetes.client.AppsV1Api(restricted)
    apps.read_namespaced_deployment("web", "shop")
    forbidden(lambda: apps.delete_namespaced_deployment("web", "shop"))
    kube_apps.read_namespaced_deployment("web", "shop")  # the admin: not audited
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    common = {"user": SA_USER, "apiGroup": "apps", "resource": "deployments", "namespace": "shop", "name": "web"}
    assert entries == [{**common, "verb": "get", "allowed": True}, {**common, "verb": "delete", "allowed": False}]
