"""The modules' orchestration (_k8s.runner), against the same in-memory fake of the HTTP layer as the client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ApiError, SelfHealError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import client as _k8s
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import runner
from ansible_collections.zerotouch.selfheal.tests.unit.plugins.module_utils._k8s.fake_api import (
    DEPLOY_PATH,
    PARAMS,
    FakeServer,
    deployment,
    status_body,
)


def test_scale_waits_for_ready_replicas(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (200, deployment(4, 4)), (200, deployment(6, 4)), (200, deployment(6, 6)))
    server.on("PATCH", DEPLOY_PATH + "/scale", (200, {}))
    result = runner.run_scale(kube, dict(PARAMS, replicas=6, wait=True, wait_timeout=30), False, False)
    assert result["changed"] and result["ready_replicas"] == 6
    assert [c["method"] for c in server.calls] == ["GET", "PATCH", "GET", "GET"]


def test_scale_wait_times_out_clearly(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (200, deployment(4, 4)), (200, deployment(6, 4)))
    server.on("PATCH", DEPLOY_PATH + "/scale", (200, {}))
    with pytest.raises(
        SelfHealError, match=r"timed out after 0s waiting for shop/checkout to have 6 ready replicas \(4 ready\)"
    ):
        runner.run_scale(kube, dict(PARAMS, replicas=6, wait=True, wait_timeout=0), False, False)


NODE_PATH = "/api/v1/nodes/node-b"
EVICT_PATH = "/api/v1/namespaces/shop/pods/checkout-1/eviction"
PDB_REFUSAL = status_body(429, "Cannot evict pod as it would violate the pod's disruption budget.", "TooManyRequests")


def drain_setup(server: FakeServer, *evictions: tuple[int, Any]) -> None:
    server.on("GET", NODE_PATH, (200, {"metadata": {"name": "node-b"}, "spec": {}}))
    server.on("GET", DEPLOY_PATH, (200, deployment()))
    pod = {
        "metadata": {"name": "checkout-1", "namespace": "shop", "labels": {"app": "checkout"}},
        "spec": {"nodeName": "node-b"},
        "status": {"phase": "Running"},
    }
    server.on("GET", "/api/v1/namespaces/shop/pods", (200, {"items": [pod]}))
    server.on("PATCH", NODE_PATH, (200, {}))
    server.on("POST", EVICT_PATH, *evictions)


def test_drain_retries_an_eviction_a_budget_refuses(server: FakeServer, kube: _k8s.Kube) -> None:
    drain_setup(server, (429, PDB_REFUSAL), (429, PDB_REFUSAL), (201, {}))
    result = runner.run_drain(kube, dict(PARAMS, node="node-b", state="drained", wait_timeout=30), False, False)
    assert result["evicted"] == ["shop/checkout-1"]
    assert [c["path"] for c in server.calls if c["method"] == "POST"] == [EVICT_PATH] * 3
    assert server.calls[-1]["body"]["kind"] == "Eviction"


def test_drain_gives_up_after_the_timeout_and_says_what_was_done(server: FakeServer, kube: _k8s.Kube) -> None:
    drain_setup(server, (429, PDB_REFUSAL))
    with pytest.raises(
        ApiError,
        match=r"^cannot evict shop/checkout-1 from node node-b: Cannot evict pod as it would violate the pod's "
        r"disruption budget\., still refused after 0s \(done before: cordon node node-b\)$",
    ):
        runner.run_drain(kube, dict(PARAMS, node="node-b", state="drained", wait_timeout=0), False, False)


def test_drain_skips_a_pod_that_is_already_gone(server: FakeServer, kube: _k8s.Kube) -> None:
    drain_setup(server, (404, status_body(404, 'pods "checkout-1" not found')))
    assert runner.run_drain(kube, dict(PARAMS, node="node-b", state="drained", wait_timeout=5), False, False)["changed"]


def test_drain_needs_a_deployment_or_all_pods(server: FakeServer, kube: _k8s.Kube) -> None:
    drain_setup(server, (201, {}))
    with pytest.raises(ValidationError, match="namespace: required to drain the pods of a Deployment"):
        runner.run_drain(kube, {"node": "node-b", "state": "drained", "namespace": None, "name": None}, False, False)


LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/shop/leases"


def test_lock_race_lost_reports_the_winner(server: FakeServer, kube: _k8s.Kube) -> None:
    winner = {
        "metadata": {"name": "selfheal-checkout"},
        "spec": {"holderIdentity": "run-1", "leaseDurationSeconds": 60, "renewTime": "2099-01-01T00:00:00.000000Z"},
    }
    server.on("GET", LEASE_PATH + "/selfheal-checkout", (404, status_body(404, "not found")), (200, winner))
    server.on("POST", LEASE_PATH, (409, status_body(409, 'leases "selfheal-checkout" already exists', "AlreadyExists")))
    result = runner.run_lock(kube, dict(PARAMS, state="acquired", holder="run-2", ttl_seconds=60), False, False)
    assert result["changed"] is False
    assert result["acquired"] is False and result["held_by"] == "run-1"
    assert result["msg"] == "shop/checkout was locked by run-1 first"


def test_lock_other_errors_fail(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", LEASE_PATH + "/selfheal-checkout", (404, status_body(404, "not found")))
    server.on("POST", LEASE_PATH, (403, status_body(403, "leases is forbidden")))
    with pytest.raises(ApiError, match="^cannot lock shop/checkout: leases is forbidden$"):
        runner.run_lock(kube, dict(PARAMS, state="acquired", holder="run-2", ttl_seconds=60), False, False)


def test_read_manifests_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n")
    (tmp_path / "a.yml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n"
    )
    (tmp_path / "notes.txt").write_text("not a manifest")
    docs = runner.read_manifests(str(tmp_path))
    declared = runner._declared(docs, "shop", str(tmp_path))
    assert [(d["kind"], d["metadata"]["namespace"]) for d in declared] == [("ConfigMap", "shop"), ("Service", "shop")]


@pytest.mark.parametrize(
    ("manifests", "namespace", "match"),
    [
        (
            [{"kind": "Service", "metadata": {"name": "s"}}],
            "shop",
            r"\[0\]: a manifest needs apiVersion, kind and metadata.name",
        ),
        (
            [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}],
            None,
            "Service/s: metadata.namespace is not set",
        ),
        ([{"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"}}], "shop", "unsupported kind x/v1 Widget"),
        (["text"], "shop", "a manifest must be a mapping"),
    ],
)
def test_declared_manifests_are_checked(manifests: list[Any], namespace: str | None, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        runner._declared(manifests, namespace, "manifests")


def test_read_manifests_names_the_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("kind: [unclosed\n")
    with pytest.raises(ValidationError, match=f"^{broken}: cannot read manifests"):
        runner.read_manifests(str(broken))
    with pytest.raises(ValidationError, match="src: .* does not exist"):
        runner.read_manifests(str(tmp_path / "nope"))


def test_drift_for_the_gatherer_reads_manifests_and_live_objects(
    server: FakeServer, kube: _k8s.Kube, tmp_path: Path
) -> None:
    (tmp_path / "svc.yml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: checkout}\n"
        "spec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n"
    )
    live = {"metadata": {"name": "checkout"}, "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090}]}}
    server.on("GET", "/api/v1/namespaces/shop/services/checkout", (200, live))
    assert runner.drift(kube, str(tmp_path), "shop") == [  # in document order
        {"object": "Service/checkout", "field": "spec.ports[0].targetPort", "declared": 8080, "live": 9090},
        {"object": "ConfigMap/settings", "field": "(object)", "declared": "present", "live": "absent"},
    ]


MODIFIED = status_body(
    409,
    'Operation cannot be fulfilled on deployments.apps "checkout": the object has been modified; '
    "please apply your changes to the latest version and try again",
    "Conflict",
)


def test_a_write_that_loses_a_race_is_planned_again_from_a_fresh_read(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on(
        "GET",
        DEPLOY_PATH,
        (200, deployment()),
        (200, dict(deployment(), metadata={**deployment()["metadata"], "resourceVersion": "4"})),
    )
    server.on("PUT", DEPLOY_PATH, (409, MODIFIED), (200, {}))
    result = runner.run_image(kube, dict(PARAMS, image="i:2", container=None), False, False)
    assert result["changed"] is True
    puts = [c for c in server.calls if c["method"] == "PUT"]
    assert [p["body"]["metadata"]["resourceVersion"] for p in puts] == ["3", "4"]  # the retry used the fresh read


def test_a_persistent_conflict_fails_clearly(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (200, deployment()))
    server.on("PUT", DEPLOY_PATH, (409, MODIFIED))
    with pytest.raises(ApiError, match="^cannot set the image of shop/checkout: Operation cannot be fulfilled"):
        runner.run_image(kube, dict(PARAMS, image="i:2", container=None), False, False)
    assert len([c for c in server.calls if c["method"] == "PUT"]) == _k8s.CONFLICT_ATTEMPTS


def test_a_race_lost_to_a_writer_that_did_the_same_change_reports_no_change(
    server: FakeServer, kube: _k8s.Kube
) -> None:
    patched = deployment()
    patched["spec"]["template"]["spec"]["containers"][0]["image"] = "i:2"
    server.on("GET", DEPLOY_PATH, (200, deployment()), (200, patched))
    server.on("PUT", DEPLOY_PATH, (409, MODIFIED))
    result = runner.run_image(kube, dict(PARAMS, image="i:2", container=None), False, False)
    assert result["changed"] is False and result["msg"] == "container c of shop/checkout already runs i:2"
