"""The Kubernetes adapter and the module orchestration in _k8s, against an in-memory fake of the HTTP layer.

The official client's ApiClient is real (serialisation, auth headers); only its REST layer is replaced, so
these tests pin what goes on the wire and how failures read, without a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.plans import Change, Plan
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ApiError, SelfHealError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import client as _k8s
from kubernetes import client as k8s_client

Handler = Callable[[dict[str, Any]], tuple[int, Any]]


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.reason = {200: "OK", 201: "Created", 404: "Not Found", 409: "Conflict", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        self.data = b"" if body is None else json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}

    def read(self) -> bytes:
        return self.data


def status_body(code: int, message: str, reason: str = "") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeServer:
    """Routes (METHOD, path) to a list of answers, served in order (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.calls: list[dict[str, Any]] = []

    def on(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        self.routes[(method, path)] = list(answers)

    def request(self, method: str, url: str, headers: Any = None, body: Any = None, **_: Any) -> FakeResponse:
        path = url.split("://", 1)[1].split("/", 1)[1]
        call = {"method": method, "path": "/" + path, "headers": dict(headers or {}), "body": body}
        self.calls.append(call)
        answers = self.routes.get((method, call["path"]))
        if not answers:
            return FakeResponse(404, status_body(404, f"no route {method} {call['path']}", "NotFound"))
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return FakeResponse(*answer)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def kube(server: FakeServer) -> _k8s.Kube:
    cfg = k8s_client.Configuration()
    cfg.host = "https://kube.example:6443"
    cfg.api_key = {"authorization": "sekret"}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    api = k8s_client.ApiClient(cfg)
    api.rest_client.request = server.request  # type: ignore[method-assign]
    return _k8s.Kube(api, sleep=lambda _s: None)


DEPLOY_PATH = "/apis/apps/v1/namespaces/shop/deployments/checkout"


def deployment(replicas: int = 4, ready: int = 4) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "3", "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            },
        },
        "status": {"observedGeneration": 2, "replicas": ready, "readyReplicas": ready},
    }


PARAMS = {"namespace": "shop", "name": "checkout"}


# --- plumbing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("v1", "Pod", "shop", "p", "eviction"), "/api/v1/namespaces/shop/pods/p/eviction"),
        (("v1", "Node", None, "node-a"), "/api/v1/nodes/node-a"),
        (("v1", "Pod", None), "/api/v1/pods"),
        (("apps/v1", "Deployment", "shop", "checkout", "scale"), DEPLOY_PATH + "/scale"),
        (("coordination.k8s.io/v1", "Lease", "shop"), "/apis/coordination.k8s.io/v1/namespaces/shop/leases"),
    ],
)
def test_paths(args: tuple[Any, ...], path: str) -> None:
    assert _k8s.Kube.path(*args) == path


def test_unsupported_kind() -> None:
    with pytest.raises(ValidationError, match="unsupported kind example.com/v1 Widget; supported: "):
        _k8s.Kube.path("example.com/v1", "Widget")


def test_get_sends_the_bearer_token_and_returns_a_dict(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (200, deployment()))
    assert kube.get("apps/v1", "Deployment", "shop", "checkout")["spec"]["replicas"] == 4
    assert server.calls[0]["headers"]["authorization"] == "Bearer sekret"


def test_a_missing_object(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (404, status_body(404, 'deployments.apps "checkout" not found', "NotFound")))
    with pytest.raises(ApiError, match="^deployment shop/checkout not found$"):
        kube.get("apps/v1", "Deployment", "shop", "checkout")
    assert kube.get("apps/v1", "Deployment", "shop", "checkout", missing_ok=True) is None


def test_api_errors_carry_the_status_message(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("PATCH", DEPLOY_PATH + "/scale", (403, status_body(403, 'deployments.apps "checkout" is forbidden')))
    change = Change(
        "patch", "apps/v1", "Deployment", "shop", "checkout", {"spec": {"replicas": 2}}, "scale", "scale shop/checkout"
    )
    with pytest.raises(ApiError, match='^cannot scale shop/checkout: deployments.apps "checkout" is forbidden$'):
        kube.apply(change)
    assert server.calls[0]["headers"]["Content-Type"] == "application/merge-patch+json"
    assert server.calls[0]["body"] == {"spec": {"replicas": 2}}


def test_an_answer_without_status_body(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("PUT", DEPLOY_PATH, (502, None))
    with pytest.raises(ApiError, match="^cannot restart shop/checkout: 502 Error$"):
        kube.apply(Change("replace", "apps/v1", "Deployment", "shop", "checkout", {}, what="restart shop/checkout"))


def test_an_unreachable_server(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, urllib3.exceptions.MaxRetryError(None, DEPLOY_PATH, "connection refused"))  # type: ignore[arg-type]
    with pytest.raises(
        ApiError,
        match="cannot read deployment shop/checkout: cannot reach the API server at https://kube.example:6443: "
        "connection refused",
    ):
        kube.get("apps/v1", "Deployment", "shop", "checkout")


def test_check_mode_writes_nothing_and_says_would(server: FakeServer, kube: _k8s.Kube) -> None:
    plan = Plan([Change("delete", "v1", "Pod", "shop", "p")], "deleted p", "would delete p", {"a": 1}, {"a": 2})
    result = kube.execute(plan, check_mode=True, diff=True)
    assert server.calls == []
    assert result == {"changed": True, "msg": "would delete p", "diff": {"before": {"a": 1}, "after": {"a": 2}}}
    assert "diff" not in kube.execute(plan, check_mode=True, diff=False)


# --- orchestration ----------------------------------------------------------------------------------------------


def test_scale_waits_for_ready_replicas(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (200, deployment(4, 4)), (200, deployment(6, 4)), (200, deployment(6, 6)))
    server.on("PATCH", DEPLOY_PATH + "/scale", (200, {}))
    result = _k8s.run_scale(kube, dict(PARAMS, replicas=6, wait=True, wait_timeout=30), False, False)
    assert result["changed"] and result["ready_replicas"] == 6
    assert [c["method"] for c in server.calls] == ["GET", "PATCH", "GET", "GET"]


def test_scale_wait_times_out_clearly(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (200, deployment(4, 4)), (200, deployment(6, 4)))
    server.on("PATCH", DEPLOY_PATH + "/scale", (200, {}))
    with pytest.raises(
        SelfHealError, match=r"timed out after 0s waiting for shop/checkout to have 6 ready replicas \(4 ready\)"
    ):
        _k8s.run_scale(kube, dict(PARAMS, replicas=6, wait=True, wait_timeout=0), False, False)


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
    result = _k8s.run_drain(kube, dict(PARAMS, node="node-b", state="drained", wait_timeout=30), False, False)
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
        _k8s.run_drain(kube, dict(PARAMS, node="node-b", state="drained", wait_timeout=0), False, False)


def test_drain_skips_a_pod_that_is_already_gone(server: FakeServer, kube: _k8s.Kube) -> None:
    drain_setup(server, (404, status_body(404, 'pods "checkout-1" not found')))
    assert _k8s.run_drain(kube, dict(PARAMS, node="node-b", state="drained", wait_timeout=5), False, False)["changed"]


def test_drain_needs_a_deployment_or_all_pods(server: FakeServer, kube: _k8s.Kube) -> None:
    drain_setup(server, (201, {}))
    with pytest.raises(ValidationError, match="namespace: required to drain the pods of a Deployment"):
        _k8s.run_drain(kube, {"node": "node-b", "state": "drained", "namespace": None, "name": None}, False, False)


LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/shop/leases"


def test_lock_race_lost_reports_the_winner(server: FakeServer, kube: _k8s.Kube) -> None:
    winner = {
        "metadata": {"name": "selfheal-checkout"},
        "spec": {"holderIdentity": "run-1", "leaseDurationSeconds": 60, "renewTime": "2099-01-01T00:00:00.000000Z"},
    }
    server.on("GET", LEASE_PATH + "/selfheal-checkout", (404, status_body(404, "not found")), (200, winner))
    server.on("POST", LEASE_PATH, (409, status_body(409, 'leases "selfheal-checkout" already exists', "AlreadyExists")))
    result = _k8s.run_lock(kube, dict(PARAMS, state="acquired", holder="run-2", ttl_seconds=60), False, False)
    assert result["changed"] is False
    assert result["acquired"] is False and result["held_by"] == "run-1"
    assert result["msg"] == "shop/checkout was locked by run-1 first"


def test_lock_other_errors_fail(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", LEASE_PATH + "/selfheal-checkout", (404, status_body(404, "not found")))
    server.on("POST", LEASE_PATH, (403, status_body(403, "leases is forbidden")))
    with pytest.raises(ApiError, match="^cannot lock shop/checkout: leases is forbidden$"):
        _k8s.run_lock(kube, dict(PARAMS, state="acquired", holder="run-2", ttl_seconds=60), False, False)


# --- connection and inputs --------------------------------------------------------------------------------------


def test_connect_with_host_and_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    kube = _k8s.connect({"host": "https://10.0.0.1:6443", "api_key": "tok", "validate_certs": False})
    cfg = kube.api.configuration
    assert cfg.host == "https://10.0.0.1:6443"
    assert cfg.get_api_key_with_prefix("BearerToken", alias="authorization") == "Bearer tok"
    assert cfg.verify_ssl is False


def test_connect_with_a_kubeconfig_and_context(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "a", "cluster": {"server": "http://a:1"}},
                    {"name": "b", "cluster": {"server": "http://b:2"}},
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "a", "context": {"cluster": "a", "user": "u"}},
                    {"name": "b", "context": {"cluster": "b", "user": "u"}},
                ],
                "current-context": "a",
            }
        )
    )
    assert _k8s.connect({"kubeconfig": str(kubeconfig)}).api.configuration.host == "http://a:1"
    assert _k8s.connect({"kubeconfig": str(kubeconfig), "context": "b"}).api.configuration.host == "http://b:2"
    overridden = _k8s.connect(
        {"kubeconfig": str(kubeconfig), "host": "http://c:3", "api_key": "mine"}
    ).api.configuration
    overridden.get_api_key_with_prefix("BearerToken", alias="authorization")  # runs the kubeconfig's refresh hook
    assert overridden.host == "http://c:3"
    assert overridden.get_api_key_with_prefix("BearerToken", alias="authorization") == "Bearer mine"
    with pytest.raises(ApiError, match="^cannot load .*kubeconfig: .*context"):
        _k8s.connect({"kubeconfig": str(kubeconfig), "context": "nope"})


def test_connect_with_a_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match=f"^cannot load {tmp_path}/missing: "):
        _k8s.connect({"kubeconfig": str(tmp_path / "missing")})


def test_read_manifests_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n")
    (tmp_path / "a.yml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n"
    )
    (tmp_path / "notes.txt").write_text("not a manifest")
    docs = _k8s.read_manifests(str(tmp_path))
    declared = _k8s._declared(docs, "shop", str(tmp_path))
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
        _k8s._declared(manifests, namespace, "manifests")


def test_read_manifests_names_the_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("kind: [unclosed\n")
    with pytest.raises(ValidationError, match=f"^{broken}: cannot read manifests"):
        _k8s.read_manifests(str(broken))
    with pytest.raises(ValidationError, match="src: .* does not exist"):
        _k8s.read_manifests(str(tmp_path / "nope"))


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
    assert _k8s.drift(kube, str(tmp_path), "shop") == [  # in document order
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
    result = _k8s.run_image(kube, dict(PARAMS, image="i:2", container=None), False, False)
    assert result["changed"] is True
    puts = [c for c in server.calls if c["method"] == "PUT"]
    assert [p["body"]["metadata"]["resourceVersion"] for p in puts] == ["3", "4"]  # the retry used the fresh read


def test_a_persistent_conflict_fails_clearly(server: FakeServer, kube: _k8s.Kube) -> None:
    server.on("GET", DEPLOY_PATH, (200, deployment()))
    server.on("PUT", DEPLOY_PATH, (409, MODIFIED))
    with pytest.raises(ApiError, match="^cannot set the image of shop/checkout: Operation cannot be fulfilled"):
        _k8s.run_image(kube, dict(PARAMS, image="i:2", container=None), False, False)
    assert len([c for c in server.calls if c["method"] == "PUT"]) == _k8s.CONFLICT_ATTEMPTS


def test_a_race_lost_to_a_writer_that_did_the_same_change_reports_no_change(
    server: FakeServer, kube: _k8s.Kube
) -> None:
    patched = deployment()
    patched["spec"]["template"]["spec"]["containers"][0]["image"] = "i:2"
    server.on("GET", DEPLOY_PATH, (200, deployment()), (200, patched))
    server.on("PUT", DEPLOY_PATH, (409, MODIFIED))
    result = _k8s.run_image(kube, dict(PARAMS, image="i:2", container=None), False, False)
    assert result["changed"] is False and result["msg"] == "container c of shop/checkout already runs i:2"
