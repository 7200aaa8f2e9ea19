"""zerotouch.selfheal.workload_scale against the sandbox: check mode, real run, idempotence, diff, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
NS = "mod-scale"


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    create_deployment(kube, NS, "web", replicas=2)
    create_deployment(kube, NS, "api", replicas=3)
    return kube


def test_scale_check_mode_then_real_run_then_idempotent(kube: Any, tmp_path: Path) -> None:
    target = {"namespace": NS, "name": "web"}
    checked = run_tasks(tmp_path, [task("workload_scale", replicas=4, **target)], check=True, diff=True)
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"] == f"would scale {NS}/web from 2 to 4 replicas"
    assert checked[0]["diff"] == {"before": {"spec": {"replicas": 2}}, "after": {"spec": {"replicas": 4}}}
    assert kube.deployment(NS, "web")["spec"]["replicas"] == 2  # check mode changed nothing

    run = run_tasks(
        tmp_path,
        [
            task("workload_scale", replicas=4, wait=True, wait_timeout=30, diff=True, **target),
            task("workload_scale", replicas=4, **target),
        ],
    )
    assert_ok(run[0], changed=True)
    assert run[0]["msg"] == f"scaled {NS}/web from 2 to 4 replicas"
    assert (run[0]["replicas"], run[0]["previous_replicas"], run[0]["clamped"]) == (4, 2, False)
    assert run[0]["ready_replicas"] == 4  # waited for the new replicas
    assert run[0]["diff"]["after"] == {"spec": {"replicas": 4}}
    assert in_diff(run.stdout, "-", '"replicas": 2') and in_diff(run.stdout, "+", '"replicas": 4')  # --diff output
    assert_ok(run[1], changed=False)
    assert run[1]["msg"] == f"{NS}/web already has 4 replicas"
    dep = kube.deployment(NS, "web")
    assert dep["spec"]["replicas"] == 4 and dep["status"]["readyReplicas"] == 4


def test_scale_is_clamped_to_the_bounds(kube: Any, tmp_path: Path) -> None:
    target = {"namespace": NS, "name": "api"}
    run = run_tasks(
        tmp_path,
        [
            task("workload_scale", replicas=50, min_replicas=1, max_replicas=5, **target),
            task("workload_scale", replicas=50, min_replicas=1, max_replicas=5, **target),
            task("workload_scale", replicas=0, min_replicas=2, max_replicas=5, **target),
        ],
    )
    assert_ok(run[0], changed=True)
    assert run[0]["msg"] == f"scaled {NS}/api from 3 to 5 replicas (requested 50, clamped to max_replicas 5)"
    assert run[0]["clamped"] is True and run[0]["replicas"] == 5
    assert_ok(run[1], changed=False)
    assert_ok(run[2], changed=True)
    assert run[2]["msg"] == f"scaled {NS}/api from 5 to 2 replicas (requested 0, clamped to min_replicas 2)"
    assert kube.deployment(NS, "api")["spec"]["replicas"] == 2


def test_scale_failures(kube: Any, tmp_path: Path) -> None:
    kube.apps.create_namespaced_deployment(
        NS, deployment_manifest(NS, "stuck", replicas=1, image="shop/web:nonexistent")
    )
    run = run_tasks(
        tmp_path,
        [
            task("workload_scale", namespace=NS, name="missing", replicas=2),
            task("workload_scale", namespace=NS, name="web", replicas=3, min_replicas=5, max_replicas=2),
            task("workload_scale", namespace=NS, name="stuck", replicas=2, wait=True, wait_timeout=2),
            task("workload_scale", namespace=NS, name="web", replicas=2, host="http://127.0.0.1:9"),
        ],
    )
    assert_failed(run[0], f"deployment {NS}/missing not found")
    assert_failed(run[1], "min_replicas: must not exceed max_replicas (5 > 2)")
    assert_failed(run[2], f"timed out after 2s waiting for {NS}/stuck to have 2 ready replicas (0 ready)")
    assert_failed(run[3], f"cannot read deployment {NS}/web: cannot reach the API server at http://127.0.0.1:9")
    assert kube.deployment(NS, "web")["spec"]["replicas"] == 4  # nothing changed by the failures
