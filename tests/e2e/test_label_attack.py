"""Prometheus label values are outside text too: the attack table as tenant names, through the real loop.

The simulator serves a service whose tenants are named by the attack table (``tests/attacks.py``), and one of them
floods it. The tenant names reach the loop only through Prometheus, as label values of the series its queries
return, and from there the decision's reasons and the escalation a human reads. The intent allows neither tenant
isolation nor autoscaling, so the check in ansible-rulebook's process escalates, naming the flooding tenant.
Nothing may run (no marker file), and the journal and the escalation must hold the names verbatim.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal

from sandbox import client
from sandbox.rulebook import Rulebook, route_alerts, unroute_alerts
from tests.attacks import attack_strings
from tests.e2e.test_blast_radius import Platform, create_workload
from tests.integration.helpers import kube_client, rolled_out, wait_until

JAVA_HOME = Path(os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64")
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not (JAVA_HOME / "bin" / "java").exists(), reason="ansible-rulebook needs Java 17"),
]

NAMESPACE = "la-tenants"
TENANTS = 8  # of the attack table's strings, the first of which floods the service


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("markers")


@pytest.fixture(scope="module")
def names(markers: Path) -> list[str]:
    return attack_strings(markers, generated=2)[:TENANTS]


@pytest.fixture(scope="module")
def platform(sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, names: list[str]) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("label-attack")
    intent = {
        "service": "web",
        "namespace": NAMESPACE,
        "target": {"kind": "Deployment", "name": "web"},
        "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
        "recovery": {"min_replicas": 2, "max_replicas": 8, "allow_autoscale": False, "allow_tenant_isolation": False},
        "indicators": {"window": "5s", "tenant_window": "3s"},
    }
    (base / "intents.yml").write_text(yaml.safe_dump({"intents": [intent]}, sort_keys=False))
    (base / "policy.yml").write_text(yaml.safe_dump({"recent_change_minutes": 0}, sort_keys=False))
    kube = kube_client(sandbox)
    client.set_profile(sandbox, NAMESPACE, "web", tenants={name: 0.5 / TENANTS for name in names})
    create_workload(kube, NAMESPACE)
    wait_until(lambda: rolled_out(kube, NAMESPACE, "web"), 60, f"{NAMESPACE}/web")
    served = f"sum(rate(http_requests_total{{namespace='{NAMESPACE}',code='200'}}[5s]))"
    wait_until(lambda: (client.scalar(sandbox, served) or 0) > 40, 90, "a window of metrics")
    rulebook = Rulebook(
        sandbox,
        run_dir=base,
        intents=base / "intents.yml",
        policy=base / "policy.yml",
        extra_vars={"recheck_settle_seconds": 10},
    )
    rulebook.start()
    try:
        # The alert rules fire on the first breaching second; as a real route's group_wait does, hold the first
        # notification until the tenants' window (3s) holds the flood, or the check sees a breach with no cause yet.
        route_alerts(sandbox, rulebook.url, rulebook.token, group_wait="5s")
        yield Platform(sandbox, rulebook, kube)
    finally:
        for cleanup in (lambda: unroute_alerts(sandbox), rulebook.stop):
            try:
                cleanup()
            except Exception as exc:  # every cleanup runs; the test's own error is the one that counts
                print(f"cleanup failed: {exc}")


def test_tenant_names_from_prometheus_are_kept_verbatim_and_run_nothing(
    platform: Platform, faults: Any, names: list[str], markers: Path
) -> None:
    # Prometheus holds the names as they were served, escapes and all: the loop reads them from there.
    found = {
        s["metric"].get("tenant")
        for s in client.query(platform.state, f"http_requests_total{{namespace='{NAMESPACE}'}}")
    }
    assert set(names) <= found, sorted(set(names) - found)
    flood = names[0]
    faults("noisy-tenant", namespace=NAMESPACE, service="web", tenant=flood, factor=4.0)
    decision, entry = platform.wait_for(NAMESPACE, "escalate")
    reasons = decision["decision"]["reasons"]
    assert any(flood in reason and "allow_tenant_isolation is false" in reason for reason in reasons), seen(platform)
    assert platform.changes(NAMESPACE) == [], "nothing may change: the intent allows no isolation, no scaling"
    sent = [r["payload"] for r in client.received(platform.state) if "alerts" not in r["payload"]]
    mine = [p for p in sent if json.dumps(NAMESPACE) in json.dumps(p)]
    assert mine, "the escalation did not reach the human webhook"
    assert any(flood in reason for p in mine for reason in p.get("reasons", [])), mine[-1]
    assert sorted(p.name for p in markers.iterdir()) == [], "a tenant name ran as a template"


def seen(platform: Platform) -> str:
    """What each decision of the namespace was made on (the alert, the tenants' shares): a failure's explanation."""
    lines = []
    with Journal(platform.rulebook.journal) as journal:
        for summary in reversed(journal.query(namespace=NAMESPACE, limit=1000, include_snapshot=True)):
            snapshot = summary.get("snapshot") or {}
            alert = snapshot.get("alert") or {}
            observed = snapshot.get("observed") or {}
            lines.append(
                f"{summary['id']} {summary['time']} {summary['action']} ({summary['rule']})"
                f" alert {(alert.get('labels') or {}).get('alertname')} {alert.get('status')} {alert.get('startsAt')}"
                f" tenants {observed.get('tenants')} reasons {summary['decision']['reasons']}"
            )
    return "\n".join(lines)
