"""zerotouch.selfheal.workload_rollback against the sandbox: kubectl rollout undo, idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    assert_failed,
    assert_ok,
    bad_release,
    in_diff,
    kube_client,
    rolled_out,
    run_tasks,
    task,
    template_of,
    wait_until,
)

pytestmark = pytest.mark.sandbox
NS = "mod-rollback"
REVISION = "deployment.kubernetes.io/revision"


def image_of(deployment: dict[str, Any]) -> str:
    return template_of(deployment)["spec"]["containers"][0]["image"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    """web: revision 1 runs shop/web:1.0, revision 2 (current) shop/web:2.0."""
    kube = kube_client(sandbox)
    bad_release(kube, NS)
    return kube


def test_rollback(kube: Any, tmp_path: Path) -> None:
    web = {"namespace": NS, "name": "web"}
    assert kube.deployment(NS, "web")["metadata"]["annotations"][REVISION] == "2"
    checked = run_tasks(
        tmp_path,
        [
            task("workload_rollback", **web),
            task("workload_rollback", revision=9, **web),
            task("workload_rollback", namespace=NS, name="missing"),
        ],
        check=True,
        diff=True,
    )
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"] == (
        f"would roll back {NS}/web from revision 2 to revision 1 (web shop/web:2.0 -> shop/web:1.0)"
    )
    before, after = checked[0]["diff"]["before"], checked[0]["diff"]["after"]
    assert image_of(before) == "shop/web:2.0" and image_of(after) == "shop/web:1.0"
    assert_failed(checked[1], f"revision 9 of deployment {NS}/web not found; available revisions: 1, 2")
    assert_failed(checked[2], f"deployment {NS}/missing not found")
    assert image_of(kube.deployment(NS, "web")) == "shop/web:2.0"  # check mode changed nothing

    run = run_tasks(
        tmp_path,
        [
            task("workload_rollback", diff=True, **web),
            task("workload_rollback", **web),  # again: already rolled back, does not toggle to revision 2
            task("workload_rollback", revision=1, **web),  # revision 1 now lives on as revision 3
        ],
    )
    assert_ok(run[0], changed=True)
    assert (run[0]["from_revision"], run[0]["to_revision"]) == (2, 1)
    assert (run[0]["from_images"], run[0]["to_images"]) == ({"web": "shop/web:2.0"}, {"web": "shop/web:1.0"})
    assert in_diff(run.stdout, "-", '"image": "shop/web:2.0"') and in_diff(run.stdout, "+", '"image": "shop/web:1.0"')
    assert_ok(run[1], changed=False)
    assert run[1]["msg"] == f"{NS}/web already runs the template of revision 1"
    assert_ok(run[2], changed=False)

    dep = wait_until(lambda: rolled_out(kube, NS, "web"), what="the rollback to roll out")
    assert image_of(dep) == "shop/web:1.0"
    assert "pod-template-hash" not in template_of(dep)["metadata"]["labels"]
    assert dep["metadata"]["annotations"]["selfheal.zerotouch.io/rolled-back-to"] == "1"
    assert dep["metadata"]["annotations"][REVISION] == "3"  # the controller's new revision for the old template

    forward = run_tasks(tmp_path, [task("workload_rollback", revision=2, **web)])
    assert_ok(forward[0], changed=True)  # an explicit revision still moves
    assert image_of(kube.deployment(NS, "web")) == "shop/web:2.0"
