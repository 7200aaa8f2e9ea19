"""zerotouch.selfheal.workload_restart against the sandbox: rollout restart and deleting failing pods."""

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
NS = "mod-restart"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_ID = "selfheal.zerotouch.io/restart-id"


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    create_deployment(kube, NS, "web", replicas=2)
    create_deployment(kube, NS, "api", replicas=3)
    return kube


def test_rollout_restart_once_per_restart_id(kube: Any, tmp_path: Path) -> None:
    web = {"namespace": NS, "name": "web"}
    replicasets_before = {r["metadata"]["name"] for r in kube.replicasets(NS, "web")}
    checked = run_tasks(
        tmp_path,
        [
            task("workload_restart", restart_id="alert-1", check_mode=True, diff=True, **web),
            task("workload_restart", namespace=NS, name="missing"),
        ],
    )
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"].startswith(f"would restart {NS}/web (rollout restart at ")
    assert checked[0]["diff"]["before"]["spec"]["template"]["metadata"]["annotations"] == {
        RESTARTED_AT: None,
        RESTART_ID: None,
    }
    assert checked[0]["diff"]["after"]["spec"]["template"]["metadata"]["annotations"][RESTART_ID] == "alert-1"
    assert_failed(checked[1], f"deployment {NS}/missing not found")
    assert "annotations" not in template_of(kube.deployment(NS, "web"))["metadata"]  # check mode changed nothing
    assert {r["metadata"]["name"] for r in kube.replicasets(NS, "web")} == replicasets_before

    run = run_tasks(
        tmp_path,
        [
            task("workload_restart", restart_id="alert-1", **web),
            task("workload_restart", restart_id="alert-1", **web),
        ],
        diff=True,
    )
    assert_ok(run[0], changed=True)
    assert run[0]["msg"] == f"restarted {NS}/web (rollout restart at {run[0]['restarted_at']}, restart_id alert-1)"
    assert in_diff(run.stdout, "+", f'"{RESTART_ID}": "alert-1"')  # what --diff prints
    assert_ok(run[1], changed=False)
    assert run[1]["msg"] == f"{NS}/web was already restarted for restart_id alert-1 (at {run[0]['restarted_at']})"

    notes = template_of(kube.deployment(NS, "web"))["metadata"]["annotations"]
    assert notes == {RESTARTED_AT: run[0]["restarted_at"], RESTART_ID: "alert-1"}
    # The restart rolled out a new ReplicaSet that replaced every pod.
    wait_until(lambda: rolled_out(kube, NS, "web"), what="the restart to roll out")
    (new_rs,) = [r for r in kube.replicasets(NS, "web") if r["metadata"]["name"] not in replicasets_before]
    new_hash = new_rs["metadata"]["labels"]["pod-template-hash"]

    def pod_hashes() -> set[str]:
        return {p["metadata"]["labels"]["pod-template-hash"] for p in kube.pods(NS, "web")}

    wait_until(lambda: pod_hashes() == {new_hash}, what="every pod to come from the new ReplicaSet")


def inject_crashloop(kube: Any, pod: dict[str, Any]) -> None:
    """Report the pod crash-looping, as a kubelet would (the sandbox's kubelet then leaves it alone)."""
    name = pod["metadata"]["name"]
    path = f"/api/v1/namespaces/{NS}/pods/{name}/status"
    current = kube.raw(path)
    status = current["status"]
    status["containerStatuses"] = [
        dict(cs, ready=False, restartCount=6, state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}})
        for cs in status["containerStatuses"]
    ]
    status["conditions"] = [
        dict(c, status="False") if c["type"] in ("Ready", "ContainersReady") else c for c in status["conditions"]
    ]
    kube.raw(path, "PUT", current)


def test_only_failing_deletes_just_the_crash_looping_pod(kube: Any, tmp_path: Path) -> None:
    api = {"namespace": NS, "name": "api"}
    pods = kube.pods(NS, "api")
    sick = pods[0]["metadata"]["name"]
    inject_crashloop(kube, pods[0])
    healthy = {p["metadata"]["name"] for p in pods[1:]}

    checked = run_tasks(
        tmp_path,
        [
            task("workload_restart", only_failing=True, **api),
            task("workload_restart", pods=[kube.pods(NS, "web")[0]["metadata"]["name"]], **api),
        ],
        check=True,
        diff=True,
    )
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"] == f"would delete 1 pod of {NS}/api: {sick} (CrashLoopBackOff)"
    assert checked[0]["deleted_pods"] == [sick]
    assert checked[0]["diff"] == {"before": {"pods": [sick]}, "after": {"pods": []}}
    assert_failed(checked[1], f"not selected by deployment {NS}/api")
    assert sick in {p["metadata"]["name"] for p in kube.pods(NS, "api")}  # check mode deleted nothing

    run = run_tasks(
        tmp_path,
        [task("workload_restart", only_failing=True, **api), task("workload_restart", only_failing=True, **api)],
    )
    assert_ok(run[0], changed=True)
    assert run[0]["deleted_pods"] == [sick]
    assert_ok(run[1], changed=False)
    assert run[1]["msg"] == f"{NS}/api has no failing pods: nothing to delete"

    def replaced() -> bool:
        names = {p["metadata"]["name"] for p in kube.pods(NS, "api") if not p["metadata"].get("deletionTimestamp")}
        return sick not in names and healthy <= names and len(names) == 3

    wait_until(replaced, what="the ReplicaSet to replace the deleted pod")
    assert wait_until(lambda: rolled_out(kube, NS, "api"), what="api to be ready again")
