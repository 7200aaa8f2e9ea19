"""intent_check against the sandbox: gather from the real Prometheus and the Kubernetes stand-in, then decide.

Each test owns a namespace and a Deployment, so faults and rollouts of one test never bleed into another.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import client
from tests.integration.helpers import (
    assert_failed,
    create_deployment,
    create_namespace,
    kube_client,
    run_tasks,
    task,
    wait_until,
)

pytestmark = pytest.mark.sandbox
WINDOW = "15s"  # the sandbox scrapes every second; a short window keeps the tests fast


def intent(namespace: str, service: str = "web", **objectives: Any) -> dict[str, Any]:
    return {
        "service": service,
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": service},
        "objectives": objectives or {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
        "recovery": {"min_replicas": 2, "max_replicas": 10},
        "indicators": {"window": WINDOW},
    }


NAMESPACES = {"ic-healthy": 3, "ic-journal": 2, "ic-rollout": 3, "ic-slow": 3, "ic-blind": 2, "ic-claim": 2}


@pytest.fixture(scope="module")
def workloads(sandbox: dict[str, Any]) -> dict[str, Any]:
    """A Deployment `web` per test namespace, serving, each with a full rate window of metrics in Prometheus.

    Created together so that the tests wait for Prometheus' window once, not once each.
    """
    kube = kube_client(sandbox)
    for namespace, replicas in NAMESPACES.items():
        create_namespace(kube, namespace)
        create_deployment(kube, namespace, "web", replicas=replicas, image="acme/web:2.0")
    # The default workload profile serves 100 requests/s each; a window that is not yet full reads low.
    # Only this module's namespaces: other tests leave Deployments named web behind, some deliberately broken.
    series = f"http_requests_total{{namespace=~'ic-.*',service='web',code='200'}}[{WINDOW}]"
    rate = f"min(sum by (namespace) (rate({series})))"
    count = f"count(sum by (namespace) (rate({series})) > 90)"
    wait_until(lambda: (client.scalar(sandbox, count) or 0) >= len(NAMESPACES), timeout=90, what="metrics")
    assert (client.scalar(sandbox, rate) or 0) > 90
    return sandbox


def check(sandbox: dict[str, Any], tmp_path: Path, namespace: str, **options: Any) -> dict[str, Any]:
    options.setdefault("intents", [intent(namespace)])
    options.setdefault("prometheus_url", sandbox["prometheus_url"])
    options.setdefault("journal", str(tmp_path / "journal.db"))
    options.setdefault("service", "web")
    run = run_tasks(tmp_path, [task("intent_check", namespace=namespace, **options)])
    return run[0]


def test_healthy_service_needs_nothing_and_the_snapshot_shows_the_cluster(workloads: dict, tmp_path: Path) -> None:
    sandbox = workloads
    result = check(sandbox, tmp_path, "ic-healthy")
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["decision"]["action"] == "none", result["decision"]["reasons"]
    observed = result["snapshot"]["observed"]
    assert 0 <= observed["metrics"]["error_rate"] < 1
    assert observed["metrics"]["availability"] > 99
    assert 50 < observed["metrics"]["latency_p99_ms"] < 250
    assert observed["workload"]["replicas"] == observed["workload"]["ready_replicas"] == 3
    assert observed["workload"]["revisions"][-1]["image"] == "acme/web:2.0"
    assert set(observed["nodes"]) <= {"node-a", "node-b", "node-c"} and observed["nodes"]
    assert result["decision_id"] is not None
    assert result["gather_warnings"] == []


def test_check_mode_records_nothing_and_a_real_run_is_queryable(workloads: dict, tmp_path: Path) -> None:
    sandbox = workloads
    journal = tmp_path / "journal.db"
    opts = {
        "namespace": "ic-journal",
        "service": "web",
        "intents": [intent("ic-journal")],
        "prometheus_url": sandbox["prometheus_url"],
        "journal": str(journal),
    }
    run = run_tasks(
        tmp_path,
        [
            task("intent_check", check_mode=True, **opts),
            task("intent_check", **opts),
            task("journal_info", journal=str(journal), namespace="ic-journal"),
        ],
    )
    assert run[0]["decision_id"] is None
    assert run[1]["decision_id"] is not None
    decisions = run[2]["decisions"]
    assert [d["id"] for d in decisions] == [run[1]["decision_id"]]
    assert decisions[0]["service"] == "web" and decisions[0]["action"] == "none"
    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1


def test_bad_rollout_is_rolled_back_to_the_previous_revision(workloads: dict, tmp_path: Path, faults: Any) -> None:
    sandbox = workloads
    faults("bad-rollout", namespace="ic-rollout", service="web")
    err = (
        f"100 * sum(rate(http_requests_total{{namespace='ic-rollout',code=~'5..'}}[{WINDOW}])) / "
        f"sum(rate(http_requests_total{{namespace='ic-rollout'}}[{WINDOW}]))"
    )
    wait_until(lambda: (client.scalar(sandbox, err) or 0) > 2, timeout=60, what="errors from the bad release")
    alert = {
        "status": "firing",
        "labels": {"alertname": "HighErrorRate", "namespace": "ic-rollout", "service": "web"},
        "annotations": {"summary": "5xx above objective"},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": "f00d",
    }
    result = check(sandbox, tmp_path, "ic-rollout", alert=alert)
    decision, workload_seen = result["decision"], result["snapshot"]["observed"]["workload"]
    assert decision["action"] == "rollback", decision["reasons"]
    assert decision["params"] == {"to_revision": 1}
    assert workload_seen["revision"] == 2
    assert workload_seen["revisions"][-1]["image"] == "acme/web:2.1"
    assert result["snapshot"]["observed"]["metrics"]["error_rate"] > 1
    assert result["snapshot"]["alert"]["fingerprint"] == "f00d"


def test_latency_on_one_slow_node_is_rerouted_away_from_it(workloads: dict, tmp_path: Path, faults: Any) -> None:
    sandbox = workloads
    faults("slow-node", node="node-b", namespace="ic-slow", service="web")
    node_lat = (
        f"1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
        f"{{namespace='ic-slow',node='node-b'}}[{WINDOW}])))"
    )
    wait_until(lambda: (client.scalar(sandbox, node_lat) or 0) > 400, timeout=60, what="node-b to slow down")
    result = check(sandbox, tmp_path, "ic-slow")
    assert result["decision"]["action"] == "reroute", result["decision"]["reasons"]
    assert result["decision"]["params"] == {"node": "node-b"}
    nodes = result["snapshot"]["observed"]["nodes"]
    assert nodes["node-b"]["latency_p99_ms"] > 250 > nodes["node-a"]["latency_p99_ms"]


def test_prometheus_unreachable_means_unknown_metrics_and_escalation(workloads: dict, tmp_path: Path) -> None:
    sandbox = workloads
    alert = {"status": "firing", "labels": {"alertname": "HighLatency", "namespace": "ic-blind", "service": "web"}}
    result = check(sandbox, tmp_path, "ic-blind", alert=alert, prometheus_url="http://127.0.0.1:9")
    assert result["decision"]["action"] == "escalate", result["decision"]["reasons"]
    metrics = result["snapshot"]["observed"]["metrics"]
    assert metrics and all(value is None for value in metrics.values()), metrics  # unknown, never 0
    assert any("did not answer" in w for w in result["gather_warnings"])


def test_claim_locks_the_target_and_journals_the_start_or_the_skip(workloads: dict, tmp_path: Path) -> None:
    sandbox = workloads
    kube = kube_client(sandbox)
    journal = tmp_path / "journal.db"
    # Prometheus unreachable: the decision is to escalate, an action like any other for the lock.
    opts = {**common_options(sandbox, journal, "ic-claim"), "prometheus_url": "http://127.0.0.1:9", "claim": True}
    run = run_tasks(
        tmp_path,
        [
            task("intent_check", check_mode=True, **opts),
            task("intent_check", **opts),
            task("intent_check", **opts),
        ],
    )
    dry, first, second = run[0], run[1], run[2]
    assert dry["claim"]["acquired"] is True and dry["claim"]["action_id"] is None, dry
    assert first["decision"]["action"] == "escalate" and first["changed"] is True
    holder = f"selfheal-remediate/decision-{first['decision_id']}"
    assert first["claim"]["holder"] == first["claim"]["held_by"] == holder
    assert second["changed"] is False
    assert second["claim"]["acquired"] is False and second["claim"]["held_by"] == holder
    lease = kube.coordination.read_namespaced_lease("selfheal-web", "ic-claim")
    assert lease.spec.holder_identity == holder
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT id, decision_id, action, outcome, detail FROM actions ORDER BY id").fetchall()
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 2  # check mode recorded nothing
    assert rows == [
        (first["claim"]["action_id"], first["decision_id"], "escalate", "pending", None),
        (second["claim"]["action_id"], second["decision_id"], "escalate", "skipped", f"skipped: locked by {holder}"),
    ]
    released = run_tasks(
        tmp_path, [task("workload_lock", namespace="ic-claim", name="web", holder=holder, state="released")]
    )[0]
    assert released["changed"] is True and released["held_by"] is None, released

    replay = run_tasks(tmp_path, [task("intent_check", snapshot={"id": "x"}, claim=True)])[0]
    assert_failed(replay, "claim: needs a live check that records its decision")


def common_options(sandbox: dict[str, Any], journal: Path, namespace: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "service": "web",
        "intents": [intent(namespace)],
        "prometheus_url": sandbox["prometheus_url"],
        "journal": str(journal),
    }


def test_intents_from_a_directory_and_a_service_without_intent(sandbox: dict, tmp_path: Path) -> None:
    intents = tmp_path / "intents"
    intents.mkdir()
    (intents / "shop.yml").write_text(yaml.safe_dump([intent("ic-dir")]))
    alert = {"status": "firing", "labels": {"alertname": "HighLatency", "namespace": "ic-dir", "service": "nope"}}
    result = check(sandbox, tmp_path, "ic-dir", intents=str(intents), service=None, alert=alert)
    assert result["decision"]["action"] == "none"
    assert "no intent for service ic-dir/nope" in result["decision"]["reasons"][0]


def test_invalid_intent_and_missing_deployment_fail_clearly(sandbox: dict, tmp_path: Path) -> None:
    intents = tmp_path / "bad"
    intents.mkdir()
    bad = intent("ic-bad")
    bad["objectives"]["max_latency_ms"] = "fast"
    (intents / "shop.yml").write_text(yaml.safe_dump([bad]))
    result = check(sandbox, tmp_path, "ic-bad", intents=str(intents))
    assert_failed(result, f'{intents / "shop.yml"}: web.objectives.max_latency_ms: must be a number > 0, got "fast"')

    create_namespace(kube_client(sandbox), "ic-ghost")
    result = check(sandbox, tmp_path, "ic-ghost")
    assert_failed(result, "deployment ic-ghost/web not found")
