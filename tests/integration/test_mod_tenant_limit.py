"""zerotouch.selfheal.tenant_limit against the sandbox: the ConfigMap the service reads its tenant limits from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.helpers import assert_failed, assert_ok, create_namespace, kube_client, run_tasks, task

pytestmark = pytest.mark.sandbox
NS = "mod-tenant"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps/web-tenant-limits"
EXPIRES = "selfheal.zerotouch.io/expires-"


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    return kube


def configmap(kube: Any) -> dict[str, Any] | None:
    try:
        return kube.raw(CM_PATH)  # type: ignore[no-any-return]
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_limit_a_tenant_then_lift_it(kube: Any, tmp_path: Path) -> None:
    web = {"namespace": NS, "name": "web"}
    checked = run_tasks(
        tmp_path,
        [
            task("tenant_limit", tenant="acme", requests_per_second=50, ttl_minutes=60, **web),
            task("tenant_limit", tenant="acme corp", requests_per_second=50, **web),
            task("tenant_limit", tenant="acme", **web),
            task("tenant_limit", tenant="acme", requests_per_second=5, namespace="mod-tenant-missing", name="web"),
        ],
        check=True,
        diff=True,
    )
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"].startswith(f"would limit tenant acme of {NS}/web to 50 requests/s until ")
    assert checked[0]["diff"]["before"]["data"] == {"acme": None}
    assert checked[0]["diff"]["after"]["data"] == {"acme": "50"}
    assert_failed(checked[1], "tenant: 'acme corp' is not a valid tenant name")
    assert_failed(checked[2], "state is present but all of the following are missing: requests_per_second")
    assert_ok(checked[3], changed=True)  # check mode does not write, so it cannot know the namespace is missing
    assert configmap(kube) is None  # check mode created nothing

    started = datetime.now(UTC).replace(microsecond=0)
    run = run_tasks(
        tmp_path,
        [
            task("tenant_limit", tenant="acme", requests_per_second=50, ttl_minutes=60, **web),
            task("tenant_limit", tenant="acme", requests_per_second=50, ttl_minutes=60, **web),
            task("tenant_limit", tenant="globex", requests_per_second=12.5, **web),
            task("tenant_limit", tenant="acme", requests_per_second=5, namespace="mod-tenant-missing", name="web"),
        ],
        diff=True,
    )
    assert_ok(run[0], changed=True)
    assert run[0]["configmap"] == "web-tenant-limits" and run[0]["requests_per_second"] == "50"
    assert_ok(run[1], changed=False)
    assert run[1]["msg"] == f"tenant acme of {NS}/web is already limited to 50 requests/s until {run[0]['expires_at']}"
    assert_ok(run[2], changed=True)
    assert_failed(run[3], "cannot limit tenant acme of mod-tenant-missing/web: ")
    cm = configmap(kube)
    assert cm is not None
    assert cm["data"] == {"acme": "50", "globex": "12.5"}  # what the service reads: tenant -> requests/s
    expiry = parse(cm["metadata"]["annotations"][EXPIRES + "acme"])
    assert started + timedelta(minutes=59) <= expiry <= datetime.now(UTC) + timedelta(minutes=60)
    assert EXPIRES + "globex" not in cm["metadata"]["annotations"]

    lifted = run_tasks(
        tmp_path,
        [
            task("tenant_limit", tenant="acme", state="absent", **web),
            task("tenant_limit", tenant="acme", state="absent", **web),
        ],
    )
    assert_ok(lifted[0], changed=True)
    assert lifted[0]["removed"] == ["acme"]
    assert_ok(lifted[1], changed=False)
    cm = configmap(kube)
    assert cm is not None and cm["data"] == {"globex": "12.5"}
    assert not any(k.startswith(EXPIRES) for k in cm["metadata"].get("annotations") or {})


def test_expired_limits_are_pruned(kube: Any, tmp_path: Path) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "api-tenant-limits", "annotations": {EXPIRES + "old": past, EXPIRES + "new": future}},
        "data": {"old": "1", "new": "2", "forever": "3"},
    }
    kube.raw(f"/api/v1/namespaces/{NS}/configmaps", "POST", body)
    api = {"namespace": NS, "name": "api", "state": "absent"}
    run = run_tasks(
        tmp_path,
        [
            task("tenant_limit", **api),
            task("tenant_limit", **api),
            task("tenant_limit", tenant="old", requests_per_second=1, ttl_minutes=5, namespace=NS, name="api"),
        ],
    )
    assert_ok(run[0], changed=True)
    assert run[0]["removed"] == ["old"]
    assert_ok(run[1], changed=False)
    assert_ok(run[2], changed=True)  # an expired limit set again is renewed, not left alone
    cm = kube.raw(f"/api/v1/namespaces/{NS}/configmaps/api-tenant-limits")
    assert cm["data"] == {"new": "2", "forever": "3", "old": "1"}
    assert parse(cm["metadata"]["annotations"][EXPIRES + "old"]) > datetime.now(UTC)
