"""The sandbox cluster through the official ``kubernetes`` client, as plain dicts: for the tests, demo and benchmarks.

Deliberately not the collection's own client code, so that tests check the collection against an independent view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from sandbox.kube.__main__ import load_manifests
from sandbox.kube.kubeconfig import SHIPPED_RBAC
from sandbox.wait import wait_until


@dataclass
class Kube:
    core: Any
    apps: Any
    coordination: Any
    api: Any

    def raw(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """One call with a JSON body and answer as plain dicts (for reads, and for writes the typed models refuse)."""
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        request = self.api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        resp = self.api.call_api(*request)
        resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException(status=resp.status, reason=resp.reason, body=resp.data.decode())
        return json.loads(resp.data) if resp.data else None

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return self.raw(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")

    def pods(self, namespace: str, app: str) -> list[dict[str, Any]]:
        items = self.raw(f"/api/v1/namespaces/{namespace}/pods")["items"]
        return [p for p in items if (p["metadata"].get("labels") or {}).get("app") == app]

    def replicasets(self, namespace: str, app: str) -> list[dict[str, Any]]:
        items = self.raw(f"/apis/apps/v1/namespaces/{namespace}/replicasets")["items"]
        return [r for r in items if (r["metadata"].get("labels") or {}).get("app") == app]


def kube_client(sandbox: dict[str, Any], kubeconfig: str = "kubeconfig") -> Kube:
    """A client of the admin (``kubeconfig``) or of the loop's restricted ServiceAccount (``kubeconfig_restricted``)."""
    api = k8s_config.new_client_from_config(config_file=sandbox[kubeconfig])
    return Kube(k8s_client.CoreV1Api(api), k8s_client.AppsV1Api(api), k8s_client.CoordinationV1Api(api), api)


def shipped_rbac(kind: str, name: str) -> dict[str, Any]:
    """One object of docs/deploy/rbac.yml."""
    for doc in load_manifests([SHIPPED_RBAC]):
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(f"{SHIPPED_RBAC} has no {kind} {name}")


def grant_selfheal(kube: Kube, namespace: str) -> None:
    """Let the loop's ServiceAccount heal ``namespace``, as an operator does: the shipped RoleBinding, put there."""
    binding = shipped_rbac("RoleBinding", "zerotouch-selfheal")
    binding["metadata"]["namespace"] = namespace
    try:
        kube.raw(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", "POST", binding)
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_namespace(kube: Kube, name: str) -> None:
    try:
        kube.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def deployment_manifest(
    namespace: str, name: str, replicas: int = 2, image: str = "shop/web:1.0", port: int = 8080
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": name, "image": image, "ports": [{"name": "http", "containerPort": port}]}]
                },
            },
        },
    }


def rolled_out(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    """The Deployment once its controller has caught up and every replica is updated and ready."""
    dep = kube.deployment(namespace, name)
    status, want = dep.get("status") or {}, dep["spec"].get("replicas", 1)
    done = (
        status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == want
        and status.get("readyReplicas", 0) == want
        and status.get("replicas", 0) == want
    )
    return dep if done else None


def create_deployment(kube: Kube, namespace: str, name: str, **kwargs: Any) -> dict[str, Any]:
    kube.apps.create_namespaced_deployment(namespace, deployment_manifest(namespace, name, **kwargs))
    return wait_until(lambda: rolled_out(kube, namespace, name), what=f"deployment {namespace}/{name} to roll out")
