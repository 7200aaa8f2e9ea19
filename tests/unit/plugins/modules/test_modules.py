"""The module shells: argument wiring and error mapping only (the behaviour is tested on the planners)."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    ApiError,
    MissingLibraryError,
    ValidationError,
)

K8S_MODULES = {
    "workload_restart": ("run_restart", {"namespace": "shop", "name": "checkout"}),
    "workload_scale": ("run_scale", {"namespace": "shop", "name": "checkout", "replicas": 3}),
    "workload_rollback": ("run_rollback", {"namespace": "shop", "name": "checkout"}),
    "workload_image": ("run_image", {"namespace": "shop", "name": "checkout", "image": "a:1"}),
    "node_drain": ("run_drain", {"node": "node-b"}),
    "tenant_limit": (
        "run_tenant_limit",
        {"namespace": "shop", "name": "checkout", "tenant": "acme", "requests_per_second": 5},
    ),
    "workload_reconcile": ("run_reconcile", {"manifests": []}),
    "workload_lock": ("run_lock", {"namespace": "shop", "name": "checkout", "holder": "me"}),
}


def run_module(name: str, args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    module = importlib.import_module(f"ansible_collections.zerotouch.selfheal.plugins.modules.{name}")
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def patch_runner(monkeypatch: pytest.MonkeyPatch, name: str, runner: str, behaviour: Any) -> list[Any]:
    module = importlib.import_module(f"ansible_collections.zerotouch.selfheal.plugins.modules.{name}")
    seen: list[Any] = []
    monkeypatch.setattr(module, "connect", lambda params: "kube")

    def fake(kube: Any, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
        seen.append((kube, params, check_mode, diff))
        if isinstance(behaviour, Exception):
            raise behaviour
        return dict(behaviour)

    monkeypatch.setattr(module, runner, fake)
    return seen


@pytest.mark.parametrize("name", sorted(K8S_MODULES))
def test_module_passes_options_and_modes_to_its_orchestration(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, args = K8S_MODULES[name]
    seen = patch_runner(monkeypatch, name, runner, {"changed": True, "msg": "done"})
    result = run_module(name, dict(args, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert result["changed"] is True and result["msg"] == "done"
    ((kube, params, check_mode, diff),) = seen
    assert (kube, check_mode, diff) == ("kube", True, True)
    assert {k: params[k] for k in args} == args


@pytest.mark.parametrize(
    "error", [ApiError("cannot scale shop/checkout: boom"), ValidationError("options", "replicas", "must be 0 or more")]
)
@pytest.mark.parametrize("name", sorted(K8S_MODULES))
def test_module_maps_the_base_error_to_a_failure(
    name: str, error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, args = K8S_MODULES[name]
    patch_runner(monkeypatch, name, runner, error)
    result = run_module(name, args, capsys)
    assert result["failed"] is True and result["msg"] == str(error)


def test_a_missing_kubernetes_library_is_reported_with_missing_required_lib(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module("ansible_collections.zerotouch.selfheal.plugins.modules.workload_scale")

    def no_library(params: dict[str, Any]) -> Any:
        raise MissingLibraryError("kubernetes", "Traceback: ImportError")

    monkeypatch.setattr(module, "connect", no_library)
    result = run_module("workload_scale", K8S_MODULES["workload_scale"][1], capsys)
    assert result["failed"] is True
    assert "Failed to import the required Python library (kubernetes)" in result["msg"]


def test_k8s_auth_options_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/tmp/kc")
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "ctx")
    monkeypatch.setenv("K8S_AUTH_HOST", "https://h")
    monkeypatch.setenv("K8S_AUTH_API_KEY", "tok")
    seen = patch_runner(monkeypatch, "workload_image", "run_image", {"changed": False, "msg": "ok"})
    run_module("workload_image", K8S_MODULES["workload_image"][1], capsys)
    params = seen[0][1]
    assert (params["kubeconfig"], params["context"], params["host"], params["api_key"]) == (
        "/tmp/kc",
        "ctx",
        "https://h",
        "tok",
    )


@pytest.mark.parametrize(
    ("name", "args", "match"),
    [
        (
            "tenant_limit",
            {"namespace": "shop", "name": "checkout"},
            "state is present but all of the following are missing",
        ),
        ("workload_reconcile", {}, "one of the following is required: manifests, src"),
        ("workload_reconcile", {"manifests": [], "src": "/x"}, "parameters are mutually exclusive: manifests|src"),
        ("escalation", {"url": "http://x"}, "one of the following is required: decision, reasons, summary"),
    ],
)
def test_option_rules(name: str, args: dict[str, Any], match: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(name, args, capsys)
    assert result["failed"] is True and match in result["msg"]
