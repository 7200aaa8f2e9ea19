"""zerotouch.selfheal.workload_image against the sandbox: the patch action, and its undo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    assert_failed,
    assert_ok,
    create_deployment,
    create_namespace,
    in_diff,
    kube_client,
    rolled_out,
    run_tasks,
    task,
    template_of,
    wait_until,
)

pytestmark = pytest.mark.sandbox
NS = "mod-image"
PREVIOUS = "selfheal.zerotouch.io/previous-image"


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    create_deployment(kube, NS, "web", replicas=2, image="shop/web:1.0")
    return kube


def test_set_image_then_undo(kube: Any, tmp_path: Path) -> None:
    web = {"namespace": NS, "name": "web"}
    checked = run_tasks(
        tmp_path,
        [
            task("workload_image", image="shop/web:1.1", **web),
            task("workload_image", image="shop/web:1.1", container="sidecar", **web),
            task("workload_image", image="shop/web:1.1", namespace=NS, name="missing"),
        ],
        check=True,
        diff=True,
    )
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"] == f"would update container web of {NS}/web from shop/web:1.0 to shop/web:1.1"
    assert checked[0]["diff"]["after"]["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "shop/web:1.1"}
    ]
    assert_failed(checked[1], f"container sidecar not found in deployment {NS}/web; containers: web")
    assert_failed(checked[2], f"deployment {NS}/missing not found")
    dep = kube.deployment(NS, "web")
    assert template_of(dep)["spec"]["containers"][0]["image"] == "shop/web:1.0"  # check mode changed nothing
    assert PREVIOUS not in (dep["metadata"].get("annotations") or {})

    run = run_tasks(
        tmp_path,
        [
            task("workload_image", image="shop/web:1.1", container="web", **web),
            task("workload_image", image="shop/web:1.1", container="web", **web),
        ],
        diff=True,
    )
    assert_ok(run[0], changed=True)
    assert (run[0]["image"], run[0]["previous_image"], run[0]["container"]) == ("shop/web:1.1", "shop/web:1.0", "web")
    assert in_diff(run.stdout, "-", '"image": "shop/web:1.0"') and in_diff(run.stdout, "+", '"image": "shop/web:1.1"')
    assert_ok(run[1], changed=False)
    assert run[1]["previous_image"] == "shop/web:1.0"  # what was recorded for undo
    dep = wait_until(lambda: rolled_out(kube, NS, "web"), what="the new image to roll out")
    assert template_of(dep)["spec"]["containers"][0]["image"] == "shop/web:1.1"
    assert dep["metadata"]["annotations"][PREVIOUS] == "shop/web:1.0"
    assert {p["spec"]["containers"][0]["image"] for p in kube.pods(NS, "web")} == {"shop/web:1.1"}

    undo = run_tasks(tmp_path, [task("workload_image", image=run[1]["previous_image"], **web)])
    assert_ok(undo[0], changed=True)
    dep = kube.deployment(NS, "web")
    assert template_of(dep)["spec"]["containers"][0]["image"] == "shop/web:1.0"
    assert dep["metadata"]["annotations"][PREVIOUS] == "shop/web:1.1"
