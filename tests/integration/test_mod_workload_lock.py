"""zerotouch.selfheal.workload_lock against the sandbox: a Lease per target, TTL, take-over, races."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.helpers import ROOT, assert_failed, assert_ok, create_namespace, kube_client, run_tasks, task

pytestmark = pytest.mark.sandbox
NS = "mod-lock"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    return kube


def lease(kube: Any, name: str) -> dict[str, Any] | None:
    try:
        return kube.raw(f"{LEASES}/{name}")  # type: ignore[no-any-return]
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_acquire_hold_release(kube: Any, tmp_path: Path) -> None:
    web = {"namespace": NS, "name": "web"}
    checked = run_tasks(
        tmp_path,
        [task("workload_lock", holder="run-a", **web), task("workload_lock", holder="run-a", ttl_seconds=0, **web)],
        check=True,
        diff=True,
    )
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"].startswith(f"would acquire the lock on {NS}/web for run-a until ")
    assert checked[0]["diff"]["before"]["holderIdentity"] is None
    assert checked[0]["diff"]["after"]["holderIdentity"] == "run-a"
    assert_failed(checked[1], "ttl_seconds: must be more than 0, got 0")
    assert lease(kube, "selfheal-web") is None  # check mode created nothing

    run = run_tasks(
        tmp_path,
        [
            task("workload_lock", holder="run-a", ttl_seconds=600, **web),
            task("workload_lock", holder="run-a", ttl_seconds=600, **web),
            task("workload_lock", holder="run-b", **web),
            task("workload_lock", holder="run-b", state="released", **web),
            task("workload_lock", holder="run-a", state="released", **web),
            task("workload_lock", holder="run-a", state="released", **web),
            task("workload_lock", holder="run-b", **web),
        ],
    )
    assert_ok(run[0], changed=True)
    assert (run[0]["acquired"], run[0]["held_by"], run[0]["lease"]) == (True, "run-a", "selfheal-web")
    assert_ok(run[1], changed=False)
    assert run[1]["acquired"] is True and run[1]["expires_at"] == run[0]["expires_at"]  # not extended
    assert_ok(run[2], changed=False)  # held by someone else: not acquired, and not a failure
    assert (run[2]["acquired"], run[2]["held_by"]) == (False, "run-a")
    assert run[2]["msg"] == f"{NS}/web is locked by run-a until {run[0]['expires_at']}"
    assert_ok(run[3], changed=False)
    assert run[3]["msg"] == f"{NS}/web is locked by run-a, not by run-b: left alone"
    assert_ok(run[4], changed=True)
    assert_ok(run[5], changed=False)
    assert_ok(run[6], changed=True)
    current = lease(kube, "selfheal-web")
    assert current is not None
    assert current["spec"]["holderIdentity"] == "run-b"
    assert current["spec"]["leaseDurationSeconds"] == 900


def test_a_stale_lock_is_taken_over(kube: Any, tmp_path: Path) -> None:
    renewed = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    stale = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "selfheal-api"},
        "spec": {
            "holderIdentity": "crashed-run",
            "leaseDurationSeconds": 600,
            "acquireTime": renewed,
            "renewTime": renewed,
            "leaseTransitions": 4,
        },
    }
    kube.raw(LEASES, "POST", stale)
    run = run_tasks(tmp_path, [task("workload_lock", namespace=NS, name="api", holder="run-c")])
    assert_ok(run[0], changed=True)
    assert run[0]["msg"].startswith(f"took over the expired lock of crashed-run on {NS}/api for run-c")
    current = lease(kube, "selfheal-api")
    assert current is not None
    assert (current["spec"]["holderIdentity"], current["spec"]["leaseTransitions"]) == ("run-c", 5)


def test_exactly_one_of_two_racing_runs_gets_the_lock(kube: Any, tmp_path: Path) -> None:
    """Two ansible-playbook processes at once: whoever writes second gets a 409 or sees the lock held."""
    procs = []
    for holder in ("racer-1", "racer-2"):
        out = tmp_path / holder
        out.mkdir()
        code = (
            "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
            "from tests.integration.helpers import run_tasks, task;"
            f"lock = task('workload_lock', namespace='{NS}', name='race', holder='{holder}');"
            "r = run_tasks(Path(sys.argv[2]), [lock]);"
            "print(json.dumps(r.results[0]))"
        )
        procs.append(
            subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(out)], stdout=subprocess.PIPE, text=True)
        )
    results = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert all(not r.get("failed") for r in results), results
    winners = [r for r in results if r["acquired"]]
    assert len(winners) == 1, results
    loser = next(r for r in results if not r["acquired"])
    assert loser["held_by"] == winners[0]["held_by"] and loser["changed"] is False
    current = lease(kube, "selfheal-race")
    assert current is not None and current["spec"]["holderIdentity"] == winners[0]["held_by"]


def test_the_warm_loop_renews_its_short_claim_and_a_dead_loop_is_taken_over_in_seconds(
    sandbox: dict[str, Any], kube: Any, tmp_path: Path
) -> None:
    """The loop claims with a 3 s lease and renews it while it holds it; once it stops (dies), the lease lapses
    and the next run takes the lock over - after the short lease, not the 900 s TTL of a manual run."""
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_lock
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import warm

    client = connect({"kubeconfig": sandbox["kubeconfig"]})
    holder = "selfheal-remediate/decision-1"
    claimed = run_lock(client, {"namespace": NS, "name": "warm", "holder": holder, "ttl_seconds": 3}, False, False)
    assert claimed["acquired"] is True
    intent = {"namespace": NS, "service": "warm"}
    alive, renewals = threading.Event(), []

    def keep() -> None:  # what the live loop does while it acts and verifies
        while not alive.wait(1.0):
            renewals.append(warm.renew_claim(client, intent, holder, 3))

    keeper = threading.Thread(target=keep)
    keeper.start()
    try:
        held = run_tasks(tmp_path, [task("workload_lock", namespace=NS, name="warm", holder="run-next")])
    finally:
        alive.set()
        keeper.join()
    assert held[0]["acquired"] is False and held[0]["held_by"] == holder
    assert renewals and all(renewals)
    renewed = lease(kube, "selfheal-warm")
    assert renewed is not None and renewed["spec"]["holderIdentity"] == holder
    assert renewed["spec"]["acquireTime"] != renewed["spec"]["renewTime"]
    time.sleep(3.5)  # the loop died: nothing renews
    run = run_tasks(tmp_path, [task("workload_lock", namespace=NS, name="warm", holder="run-next")])
    assert_ok(run[0], changed=True)
    assert run[0]["msg"].startswith(f"took over the expired lock of {holder} on {NS}/warm for run-next")
    assert warm.renew_claim(client, intent, holder, 3) is False, (
        "the dead loop's claim is not renewed once another run has it"
    )
