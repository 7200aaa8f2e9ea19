"""zerotouch.selfheal.workload_reconcile against the sandbox: re-apply only what drifted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.integration.helpers import (
    assert_failed,
    assert_ok,
    create_deployment,
    create_namespace,
    deployment_manifest,
    in_diff,
    kube_client,
    run_tasks,
    task,
)

pytestmark = pytest.mark.sandbox
NS = "mod-reconcile"
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
}
SETTINGS = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "web-settings"},
    "data": {"LOG_LEVEL": "info"},
}
SERVICE_PATH = f"/api/v1/namespaces/{NS}/services/web"


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    """web as declared, then drifted: its Service targets port 9090 (no container listens there)."""
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    create_deployment(kube, NS, "web", replicas=1)
    kube.raw(f"/api/v1/namespaces/{NS}/services", "POST", SERVICE)
    patch = {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090}]}}
    kube.core.patch_namespaced_service("web", NS, patch)
    return kube


@pytest.fixture
def declared(tmp_path: Path) -> Path:
    """The declared manifests as files: the Deployment and Service in one file, a ConfigMap in another."""
    src = tmp_path / "manifests"
    src.mkdir()
    deployment = deployment_manifest(NS, "web", replicas=1)
    (src / "10-web.yml").write_text(yaml.safe_dump_all([deployment, SERVICE]))
    (src / "20-settings.yaml").write_text(yaml.safe_dump(SETTINGS))
    return src


def test_reconcile_drift(kube: Any, tmp_path: Path, declared: Path) -> None:
    service_before = kube.raw(SERVICE_PATH)
    deployment_generation = kube.deployment(NS, "web")["metadata"]["generation"]
    expected_drift = [
        {"object": "Service/web", "field": "spec.ports[0].targetPort", "declared": 8080, "live": 9090},
        {"object": "ConfigMap/web-settings", "field": "(object)", "declared": "present", "live": "absent"},
    ]
    checked = run_tasks(
        tmp_path,
        [
            task("workload_reconcile", src=str(declared), namespace=NS),
            task("workload_reconcile", src=str(tmp_path / "nowhere")),
            task(
                "workload_reconcile",
                manifests=[{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}],
            ),
            task("workload_reconcile", manifests=[SETTINGS]),
        ],
        check=True,
        diff=True,
    )
    assert_ok(checked[0], changed=True)
    assert checked[0]["drift"] == expected_drift
    assert checked[0]["objects"] == 3
    assert checked[0]["diff"]["before"]["Service/web"] == {"spec.ports[0].targetPort": 9090}
    assert_failed(checked[1], "nowhere does not exist")
    assert_failed(checked[2], "unsupported kind example.com/v1 Widget")
    assert_failed(checked[3], "ConfigMap/web-settings: metadata.namespace is not set and no namespace option is given")
    assert kube.raw(SERVICE_PATH)["spec"]["ports"][0]["targetPort"] == 9090  # check mode changed nothing
    with pytest.raises(ApiException):
        kube.core.read_namespaced_config_map("web-settings", NS)

    run = run_tasks(
        tmp_path,
        [
            task("workload_reconcile", src=str(declared), namespace=NS),
            task("workload_reconcile", src=str(declared), namespace=NS),
        ],
        diff=True,
    )
    assert_ok(run[0], changed=True)
    assert run[0]["drift"] == expected_drift
    assert run[0]["msg"] == (
        "reconciled 2 drifted fields in 2 objects: Service/web spec.ports[0].targetPort: 9090 -> 8080; "
        "ConfigMap/web-settings (object): 'absent' -> 'present'"
    )
    assert in_diff(run.stdout, "-", '"spec.ports[0].targetPort": 9090')
    assert_ok(run[1], changed=False)
    assert run[1]["msg"] == "no drift in 3 declared objects" and run[1]["drift"] == []

    service = kube.raw(SERVICE_PATH)
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    assert service["spec"]["clusterIP"] == service_before["spec"]["clusterIP"]  # fields not declared are kept
    assert kube.core.read_namespaced_config_map("web-settings", NS).data == {"LOG_LEVEL": "info"}
    assert kube.deployment(NS, "web")["metadata"]["generation"] == deployment_generation  # no drift: not written


def test_reconcile_inline_manifests(kube: Any, tmp_path: Path) -> None:
    kube.core.patch_namespaced_service("web", NS, {"metadata": {"labels": {"app": "other"}}})
    declared = dict(SERVICE, metadata={"name": "web", "labels": {"app": "web"}})
    run = run_tasks(
        tmp_path,
        [
            task("workload_reconcile", manifests=[declared], namespace=NS),
            task("workload_reconcile", manifests=[declared], namespace=NS),
        ],
    )
    assert_ok(run[0], changed=True)
    assert run[0]["drift"] == [
        {"object": "Service/web", "field": "metadata.labels.app", "declared": "web", "live": "other"}
    ]
    assert_ok(run[1], changed=False)
    assert kube.raw(SERVICE_PATH)["metadata"]["labels"] == {"app": "web"}
