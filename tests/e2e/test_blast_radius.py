"""Principles 3 and 7 through the real loop: the victim tenant is left alone, a shared outage is escalated.

A platform of its own: seven services, each with an intent, in namespaces of their own, and one
``zerotouch.selfheal.remediate`` rulebook over them, with the sandbox's Alertmanager routed to it.

- ``victim``: a steady majority tenant (``anchor``, 70 % of the requests every day) and a traffic surge that
  saturates the service. During the breach ``anchor`` still sends most of the requests, which is the majority the
  engine once took for a noisy tenant; its share has not grown past 1.5 x its baseline, so the loop scales out and
  never limits it.
- ``mass``: six of the seven services break at once (three crash loops, two surges, one bad release). More than
  half of the platform breaching is a shared cause: the loop escalates instead of restarting and scaling service by
  service, and still rolls back the service whose own release broke it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal, journal_exists

from sandbox import client
from sandbox.cluster import grant_selfheal
from sandbox.rulebook import Rulebook, route_alerts, unroute_alerts
from tests.integration.helpers import create_namespace, deployment_manifest, kube_client, rolled_out, wait_until

JAVA_HOME = Path(os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64")
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not (JAVA_HOME / "bin" / "java").exists(), reason="ansible-rulebook needs Java 17"),
]

WINDOW = "15s"
VERIFY = {"verify_settle_seconds": 5, "verify_interval": 3, "verify_window_seconds": 15, "verify_timeout_seconds": 90}
VICTIM = "br-victim"
CRASHED = ("br-crash-1", "br-crash-2", "br-crash-3")
SURGED = ("br-surge-1", "br-surge-2")
RELEASED = "br-release"
SERVICES = (VICTIM, *CRASHED, *SURGED, RELEASED)
TENANTS = {"anchor": 0.7, "retail": 0.3}
TIMEOUT = 240
GROUP_WAIT = "15s"


@dataclass
class Platform:
    state: dict[str, Any]
    rulebook: Rulebook
    kube: Any

    def decisions(self, namespace: str) -> list[dict[str, Any]]:
        if not journal_exists(str(self.rulebook.journal)):
            return []
        with Journal(self.rulebook.journal) as journal:
            return journal.query(namespace=namespace, limit=1000)

    def finished(self, namespace: str, action: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The first decision of ``namespace`` whose ``action`` has finished, with that action's entry."""
        for decision in self.decisions(namespace):
            for entry in decision["actions"]:
                if entry["action"] == action and entry["outcome"] not in ("pending", "skipped"):
                    return decision, entry
        return None

    def wait_for(self, namespace: str, action: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return wait_until(lambda: self.finished(namespace, action), TIMEOUT, f"{action} of {namespace}", 1, self.detail)

    def changes(self, namespace: str) -> list[str]:
        """What the loop changed in ``namespace``, in order (escalations change nothing)."""
        return [
            entry["action"]
            for decision in reversed(self.decisions(namespace))
            for entry in decision["actions"]
            if entry["action"] != "escalate"
        ]

    def detail(self) -> str:
        lines = [
            f"{ns}: {d['action']} ({d['rule']}) {[e['action'] + ':' + e['outcome'] for e in d['actions']]}"
            f" {d['decision']['reasons'][-1:]}"
            for ns in SERVICES
            for d in reversed(self.decisions(ns))
        ]
        return "decisions:\n" + "\n".join(lines) + "\nansible-rulebook output:\n" + self.rulebook.output(3000)


def intent(namespace: str) -> dict[str, Any]:
    return {
        "service": "web",
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": "web"},
        "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
        "recovery": {"min_replicas": 2, "max_replicas": 8},
        "indicators": {"window": WINDOW},
    }


def write_inputs(base: Path) -> tuple[Path, Path]:
    intents = base / "intents.yml"
    intents.write_text(yaml.safe_dump({"intents": [intent(ns) for ns in SERVICES]}, sort_keys=False))
    policy = base / "policy.yml"
    # Deployments made minutes ago are recent changes; only the bad release's rollout should count as one, so that
    # a restart or a scale-up is what the engine would choose for the others without the blast radius.
    overrides = {ns: {"recent_change_minutes": 0} for ns in (*CRASHED, *SURGED, VICTIM)}
    policy.write_text(
        yaml.safe_dump(
            {
                "recent_change_minutes": 30,
                "cooldown_minutes": 10,
                "max_actions_per_hour": 5,
                "overrides": {"namespaces": overrides},
            },
            sort_keys=False,
        )
    )
    return intents, policy


def create_workload(kube: Any, namespace: str) -> None:
    create_namespace(kube, namespace)
    manifest = deployment_manifest(namespace, "web", replicas=2, image="acme/web:2.0")
    pod_spec = manifest["spec"]["template"]["spec"]
    pod_spec["containers"][0]["resources"] = {"requests": {"cpu": "500m"}, "limits": {"memory": "256Mi"}}
    pod_spec["nodeSelector"] = {"kubernetes.io/hostname": "node-c"}  # off the node another module slows
    kube.apps.create_namespaced_deployment(namespace, manifest)
    grant_selfheal(kube, namespace)


@pytest.fixture(scope="module")
def platform(sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("blast-radius")
    intents, policy = write_inputs(base)
    kube = kube_client(sandbox)
    # The victim's tenants from the start, so their usual shares fill the baseline window before anything breaks.
    client.set_profile(sandbox, VICTIM, "web", tenants=TENANTS)
    for namespace in SERVICES:
        create_workload(kube, namespace)
    for namespace in SERVICES:
        wait_until(lambda ns=namespace: rolled_out(kube, ns, "web"), 60, f"{namespace}/web")
    served = f"count(sum by (namespace) (rate(http_requests_total{{namespace=~'br-.*',code='200'}}[{WINDOW}])) > 90)"
    wait_until(lambda: (client.scalar(sandbox, served) or 0) >= len(SERVICES), 90, "a full window of metrics")
    rulebook = Rulebook(
        sandbox, run_dir=base, intents=intents, policy=policy, extra_vars={**VERIFY, "recheck_settle_seconds": 10}
    )
    rulebook.start()
    try:
        route_alerts(sandbox, rulebook.url, rulebook.token, group_wait=GROUP_WAIT)
        yield Platform(sandbox, rulebook, kube)
    finally:
        for cleanup in (lambda: unroute_alerts(sandbox), rulebook.stop):
            try:
                cleanup()
            except Exception as exc:  # every cleanup runs; the test's own error is the one that counts
                print(f"cleanup failed: {exc}")


def page_alerts(state: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    return [a for a in client.active_alerts(state, namespace=namespace) if a["labels"].get("severity") == "page"]


def test_a_steady_majority_tenant_is_not_taken_for_the_cause(platform: Platform, faults: Any) -> None:
    share = f"sum(rate(http_requests_total{{namespace='{VICTIM}',tenant='anchor'}}[{WINDOW}]))"
    total = f"sum(rate(http_requests_total{{namespace='{VICTIM}'}}[{WINDOW}]))"
    faults("traffic-surge", namespace=VICTIM, service="web", factor=2.5)
    decision, entry = platform.wait_for(VICTIM, "scale_up")
    assert entry["outcome"] == "recovered", entry
    # The surge came from every tenant alike: anchor was the majority all through the breach, and stayed one.
    anchor, everything = client.scalar(platform.state, share), client.scalar(platform.state, total)
    assert anchor and everything and anchor / everything > 0.5, (anchor, everything)
    # The engine saw the majority and judged it against the baseline, on the journaled decision itself.
    judged = [d for d in platform.decisions(VICTIM) if "tenant_baseline_share" in d["decision"].get("evidence", {})]
    assert judged, [d["decision"]["reasons"] for d in platform.decisions(VICTIM)]
    assert judged[0]["decision"]["evidence"]["tenant_baseline_share"] == pytest.approx(TENANTS["anchor"], abs=0.1)
    assert any("usual traffic" in reason for reason in judged[0]["decision"]["reasons"])
    assert "isolate_tenant" not in platform.changes(VICTIM)
    limits = platform.kube.core.list_namespaced_config_map(VICTIM).items
    assert not [cm for cm in limits if cm.metadata.name.endswith("-tenant-limits")], "a tenant was limited"
    wait_until(lambda: not page_alerts(platform.state, VICTIM), 120, f"the page alerts of {VICTIM} to resolve", 1)


def test_more_than_half_of_the_platform_breaking_is_escalated(platform: Platform, faults: Any) -> None:
    breaks = [("crashloop", ns, {}) for ns in CRASHED]
    breaks += [("traffic-surge", ns, {"factor": 3.0}) for ns in SURGED]
    breaks += [("bad-rollout", RELEASED, {})]
    # At once: injected one after the other, the first service would break alone for seconds on this machine.
    with ThreadPoolExecutor(len(breaks)) as pool:
        list(pool.map(lambda b: faults(b[0], namespace=b[1], service="web", **b[2]), breaks))

    decision, entry = platform.wait_for(RELEASED, "rollback")
    assert entry["outcome"] == "recovered", entry
    assert any("own recent rollout" in reason for reason in decision["decision"]["reasons"])
    for namespace in (*CRASHED, *SURGED):
        decision, _ = platform.wait_for(namespace, "escalate")
        assert decision["rule"] == "correlated-breach", (namespace, decision["rule"], decision["decision"]["reasons"])
        evidence = decision["decision"]["evidence"]
        assert evidence["services_breaching"] * 2 > evidence["services_total"] == len(SERVICES), evidence
    # Give a late check the time to act, then: no wave of restarts and scale-ups, only the rollback.
    time.sleep(15)
    assert {ns: platform.changes(ns) for ns in (*CRASHED, *SURGED)} == {ns: [] for ns in (*CRASHED, *SURGED)}
    assert platform.changes(RELEASED) == ["rollback"]
    sent = [json.dumps(r["payload"]) for r in client.received(platform.state) if "alerts" not in r["payload"]]
    for namespace in (*CRASHED, *SURGED):
        assert any(namespace in body and "shared cause" in body for body in sent), namespace
