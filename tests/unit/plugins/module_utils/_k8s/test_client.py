"""The Kubernetes adapter (_k8s.client), against an in-memory fake of the HTTP layer.

The official client's ApiClient is real (serialisation, auth headers); only its REST layer is replaced, so
these tests pin what goes on the wire and how failures read, without a server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import urllib3
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.plans import Change, Plan
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ApiError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import client as _k8s
from ansible_collections.zerotouch.selfheal.tests.unit.plugins.module_utils._k8s.fake_api import (
    DEPLOY_PATH,
    FakeServer,
    deployment,
    status_body,
)


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
