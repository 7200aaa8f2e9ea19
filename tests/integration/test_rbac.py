"""The shipped RBAC (docs/deploy/rbac.yml) against the sandbox: the loop's modules run as its ServiceAccount, the
ServiceAccount is refused what the loop does not need, and a permission taken away fails the module by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException

from sandbox.cluster import grant_selfheal, shipped_rbac
from tests.integration.helpers import (
    assert_failed,
    assert_ok,
    create_namespace,
    deployment_manifest,
    kube_client,
    rolled_out,
    run_tasks,
    task,
    wait_until,
)

pytestmark = pytest.mark.sandbox
SA_USER = "system:serviceaccount:zerotouch-selfheal:zerotouch-selfheal"
RBAC_API = "/apis/rbac.authorization.k8s.io/v1"
WORKLOADS = "zerotouch-selfheal-workloads"
NODES = "zerotouch-selfheal-nodes"
NODE = "mod-rbac-node"
TAINT = {"key": "zerotouch.test/mod-rbac", "value": "true", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def admin(sandbox: dict[str, Any]) -> Iterator[Any]:
    """The admin client, with a node of this module's own (tainted: nothing else lands on it)."""
    kube = kube_client(sandbox)
    labels = {"kubernetes.io/hostname": NODE}
    kube.core.create_node({"metadata": {"name": NODE, "labels": labels}, "spec": {"taints": [TAINT]}})
    yield kube
    kube.core.delete_node(NODE)


def workload(admin: Any, namespace: str) -> None:
    """Namespace (healed by the loop: the shipped RoleBinding) with a Deployment web pinned to this module's node."""
    create_namespace(admin, namespace)
    grant_selfheal(admin, namespace)
    manifest = deployment_manifest(namespace, "web", replicas=2)
    pod_spec = manifest["spec"]["template"]["spec"]
    pod_spec.update(nodeSelector={"kubernetes.io/hostname": NODE}, tolerations=[dict(TAINT, operator="Equal")])
    admin.apps.create_namespaced_deployment(namespace, manifest)
    wait_until(lambda: rolled_out(admin, namespace, "web"), what=f"{namespace}/web to roll out")


def test_the_loop_modules_run_as_either_identity(
    admin: Any, sandbox: dict[str, Any], kube_identity: str, tmp_path: Path
) -> None:
    namespace = f"mod-rbac-{kube_identity}"
    workload(admin, namespace)
    web = {"namespace": namespace, "name": "web"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "service.yml").write_text(yaml.safe_dump(service))
    intent = {
        "service": "web",
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": "web"},
        "objectives": {"availability": 99.0},
        "manifests": str(tmp_path / "manifests"),
    }
    moved = {**service, "spec": {**service["spec"], "ports": [{"name": "http", "port": 80, "targetPort": 9090}]}}
    pod = admin.pods(namespace, "web")[0]["metadata"]["name"]
    audit = Path(sandbox["kube_audit_log"])
    audited_before = audit.stat().st_size if audit.exists() else 0
    run = run_tasks(
        tmp_path,
        [
            task("intent_check", intents=[intent], service="web", namespace=namespace, record=False),
            task("workload_lock", holder="rbac-test", **web),
            task("workload_restart", pods=[pod], **web),
            task("workload_scale", replicas=3, **web),
            task("workload_restart", **web),
            task("workload_image", image="shop/web:1.1", **web),
            task("workload_rollback", **web),
            task("tenant_limit", tenant="acme", requests_per_second=5, **web),
            task("tenant_limit", tenant="globex", requests_per_second=7, **web),
            task("workload_reconcile", manifests=[service]),
            task("workload_reconcile", manifests=[moved]),
            task("node_drain", node=NODE, wait_timeout=10, **web),
            task("node_drain", node=NODE, state="uncordoned"),
            task("workload_lock", holder="rbac-test", state="released", **web),
            task("workload_scale", namespace="default", name="web", replicas=1),  # a namespace the loop does not heal
        ],
    )
    check = run[0]
    assert not check.get("failed"), check.get("msg")
    observed = check["snapshot"]["observed"]
    assert observed["workload"]["replicas"] == 2 and observed["nodes"][NODE]["schedulable"] is True
    assert observed["workload"]["drift"] == [
        {"object": "Service/web", "field": "(object)", "declared": "present", "live": "absent"}
    ]
    for result in run.results[1:-1]:
        assert_ok(result, changed=True)
    if kube_identity == "admin":
        assert_failed(run[-1], "deployment default/web not found")
    else:
        assert_failed(
            run[-1], f'cannot read deployment default/web: deployments.apps "web" is forbidden: User "{SA_USER}"'
        )
    assert run[11]["msg"].startswith(f"cordoned node {NODE} and evicted 3 pods of {namespace}/web")
    assert admin.deployment(namespace, "web")["spec"]["replicas"] == 3
    assert admin.core.read_node(NODE).spec.unschedulable is None
    assert admin.core.read_namespaced_config_map("web-tenant-limits", namespace).data == {"acme": "5", "globex": "7"}
    assert admin.core.read_namespaced_service("web", namespace).spec.ports[0].target_port == 9090
    if kube_identity == "restricted":  # least privilege: every permission the shipped RBAC grants was used
        with audit.open(encoding="utf-8") as log:
            log.seek(audited_before)
            used = {
                (entry["apiGroup"], entry["resource"], entry["verb"])
                for entry in map(json.loads, log)
                if entry["user"] == SA_USER and entry["allowed"] and entry.get("namespace") in (namespace, "")
            }
        assert used == granted_permissions()


def granted_permissions() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule of the shipped ClusterRoles."""
    rules = [rule for name in (WORKLOADS, NODES) for rule in shipped_rbac("ClusterRole", name)["rules"]]
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize(
    ("path", "method", "message"),
    [
        (
            "/apis/apps/v1/namespaces/shop/deployments/checkout",
            "DELETE",
            f'deployments.apps "checkout" is forbidden: User "{SA_USER}" cannot delete resource "deployments" in API '
            'group "apps" in the namespace "shop"',
        ),
        (
            "/api/v1/namespaces/shop/secrets",
            "GET",
            f'secrets is forbidden: User "{SA_USER}" cannot list resource "secrets" in API group "" in the namespace '
            '"shop"',
        ),
        (
            "/api/v1/namespaces/default/pods",
            "GET",
            f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" in the namespace '
            '"default"',
        ),
        (
            "/api/v1/nodes/node-a",
            "DELETE",
            f'nodes "node-a" is forbidden: User "{SA_USER}" cannot delete resource "nodes" in API group "" at the '
            "cluster scope",
        ),
    ],
)
def test_the_restricted_identity_is_refused_what_the_loop_does_not_need(
    sandbox: dict[str, Any], path: str, method: str, message: str
) -> None:
    restricted = kube_client(sandbox, "kubeconfig_restricted")
    with pytest.raises(ApiException) as refused:
        restricted.raw(path, method)
    assert refused.value.status == 403
    status = json.loads(refused.value.body)
    assert (status["reason"], status["message"]) == ("Forbidden", message)
    assert restricted.deployment("shop", "checkout")["metadata"]["name"] == "checkout"  # what it needs, it gets


def test_a_permission_taken_from_the_role_fails_the_module_naming_it(
    admin: Any, sandbox: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = "mod-rbac-revoked"
    workload(admin, namespace)
    shipped = shipped_rbac("ClusterRole", WORKLOADS)["rules"]
    assert (
        admin.raw(f"{RBAC_API}/clusterroles/{WORKLOADS}")["rules"] == shipped
    )  # the live ClusterRole is the shipped one
    without = [rule for rule in shipped if rule["resources"] != ["deployments/scale"]]
    assert len(without) == len(shipped) - 1
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", sandbox["kubeconfig_restricted"])
    roles = RbacAuthorizationV1Api(admin.api)
    roles.patch_cluster_role(WORKLOADS, {"rules": without})
    try:
        run = run_tasks(tmp_path, [task("workload_scale", namespace=namespace, name="web", replicas=3)])
    finally:
        roles.patch_cluster_role(WORKLOADS, {"rules": shipped})
    assert_failed(
        run[0],
        f'cannot scale {namespace}/web: deployments.apps "web" is forbidden: User "{SA_USER}" cannot patch resource '
        f'"deployments/scale" in API group "apps" in the namespace "{namespace}"',
    )
    assert admin.deployment(namespace, "web")["spec"]["replicas"] == 2
    restored = run_tasks(tmp_path, [task("workload_scale", namespace=namespace, name="web", replicas=3)])
    assert_ok(restored[0], changed=True)
