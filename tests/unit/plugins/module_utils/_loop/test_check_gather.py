"""The check's gather: what it asks of Prometheus per check, and the platform view it builds from the answer."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import GatherError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.platform import SharedPlatform

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def intent(namespace: str) -> dict[str, Any]:
    return {
        "service": "web",
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": "web"},
        "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
    }


INTENTS = [intent(f"ns-{i}") for i in range(5)]


class Cluster:
    """Answers the reads of a gather: one healthy Deployment per namespace, no pods, one node."""

    def __init__(self) -> None:
        self.selectors: dict[str, str | None] = {}

    def get(self, api: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": namespace, "annotations": {}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {"spec": {}}},
            "status": {"replicas": 2, "readyReplicas": 2},
        }

    def list(
        self, api: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.selectors[kind] = label_selector
        if kind == "Node":
            return [
                {
                    "metadata": {"name": "node-a"},
                    "spec": {},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }
            ]
        return []


class Prometheus:
    """Records each round trip; answers every service's indicators, ``breaching`` ones with 50% errors."""

    def __init__(self, breaching: set[str], down: bool = False) -> None:
        self.rounds: list[dict[str, dict[str, str]]] = []
        self.breaching, self.down = breaching, down

    def indicators(self, queries: dict[str, dict[str, str]], at: float | None = None) -> dict[str, dict[str, Any]]:
        self.rounds.append(queries)
        if self.down:
            raise GatherError("Prometheus at http://prom did not answer: connection refused")
        return {
            key: {
                "error_rate": 50.0 if key in self.breaching else 0.1,
                "availability": 99.9,
                "latency_p99_ms": 80.0,
            }
            for key in queries
        }


def gather(prom: Prometheus, platform: list[dict[str, Any]] | None = INTENTS) -> tuple[dict[str, Any], list[str]]:
    return _check.gather(INTENTS[0], {}, None, NOW, Cluster(), prom, None, platform_intents=platform)  # type: ignore[arg-type]


def test_one_prometheus_round_per_check_holds_every_intents_objectives() -> None:
    prom = Prometheus(breaching={"ns-0/web", "ns-2/web", "ns-3/web"})
    snapshot, warnings = gather(prom)
    assert len(prom.rounds) == 1, "the platform view must ride on the service's own round trip"
    assert set(prom.rounds[0]) == {f"ns-{i}/web" for i in range(5)}
    platform = snapshot["observed"]["platform"]
    assert (platform["services_total"], platform["services_breaching"]) == (5, 3)
    assert warnings == []


def test_without_other_intents_the_round_holds_the_service_alone() -> None:
    prom = Prometheus(breaching=set())
    snapshot, _ = gather(prom, platform=None)
    assert [set(r) for r in prom.rounds] == [{"ns-0/web"}]
    assert "platform" not in snapshot["observed"]


def test_prometheus_down_leaves_the_breach_count_unknown_and_says_why() -> None:
    prom = Prometheus(breaching=set(), down=True)
    snapshot, warnings = gather(prom)
    assert len(prom.rounds) == 1
    assert snapshot["observed"]["platform"].get("services_breaching") is None
    assert snapshot["observed"]["metrics"] == {}
    assert any("connection refused" in w for w in warnings), warnings


class SlowPrometheus(Prometheus):
    def indicators(self, queries: dict[str, dict[str, str]], at: float | None = None) -> dict[str, dict[str, Any]]:
        time.sleep(0.05)
        return super().indicators(queries, at)


def test_the_gather_lists_only_what_the_deployments_labels_select() -> None:
    cluster = Cluster()
    _check.gather(INTENTS[0], {}, None, NOW, cluster, Prometheus(set()), None)  # type: ignore[arg-type]
    assert cluster.selectors == {"ReplicaSet": "app=web", "Pod": "app=web", "Node": None}


def test_the_phases_say_where_the_time_of_a_check_went() -> None:
    phases = _check.Phases()
    _check.gather(INTENTS[0], {}, None, NOW, Cluster(), SlowPrometheus(set()), None, phases=phases)  # type: ignore[arg-type]
    assert set(phases.seconds) == {"cluster", "prometheus", "history"}
    assert phases.seconds["prometheus"] >= 0.05 > phases.seconds["cluster"]


# --- the warm loop's shared platform view (_loop/platform.py) -----------------------------------------------------


def shared_gather(
    prom: Prometheus, reader: Any, platform: list[dict[str, Any]] | None = INTENTS
) -> tuple[dict[str, Any], list[str]]:
    return _check.gather(INTENTS[0], {}, None, NOW, Cluster(), prom, None, platform_intents=platform, platform=reader)  # type: ignore[arg-type]


def test_with_a_shared_view_the_own_round_holds_the_service_alone_and_the_count_is_the_same() -> None:
    prom = Prometheus(breaching={"ns-0/web", "ns-2/web", "ns-3/web"})
    shared = SharedPlatform(max_age=5, wait=1)
    snapshot, warnings = shared_gather(prom, shared.reader(1, prom))
    assert [set(r) for r in prom.rounds] == [{f"ns-{i}/web" for i in range(5)}, {"ns-0/web"}]
    alone, _ = gather(Prometheus(breaching={"ns-0/web", "ns-2/web", "ns-3/web"}))
    assert snapshot["observed"] == alone["observed"] and warnings == []
    # A second check within the age reads its own service only.
    shared_gather(prom, shared.reader(1, prom))
    assert [set(r) for r in prom.rounds[2:]] == [{"ns-0/web"}]


def test_the_services_own_indicators_come_from_its_fresh_round_not_the_shared_one() -> None:
    prom = Prometheus(breaching=set())
    stale = {f"ns-{i}/web": {"error_rate": 50.0, "availability": 99.9, "latency_p99_ms": 80.0} for i in range(5)}
    snapshot, _ = shared_gather(prom, lambda intents: stale)
    assert snapshot["observed"]["metrics"]["error_rate"] == 0.1
    assert snapshot["observed"]["platform"]["services_breaching"] == 4  # the four others, as the shared round saw


def failing(intents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    raise GatherError("Prometheus at http://prom did not answer: connection refused")


def partial(intents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {"ns-1/web": {"error_rate": 0.1}}


@pytest.mark.parametrize("reader", [failing, partial], ids=["failed", "partial"])
def test_a_failed_or_partial_shared_view_leaves_the_check_as_blind_as_prometheus_down(reader: Any) -> None:
    prom = Prometheus(breaching=set())
    snapshot, warnings = shared_gather(prom, reader)
    assert prom.rounds == [], "nothing is read of a service whose platform view is unknown"
    down, _ = gather(Prometheus(breaching=set(), down=True))
    assert snapshot["observed"] == down["observed"]
    assert snapshot["observed"]["metrics"] == {} and snapshot["observed"]["platform"]["services_breaching"] is None
    assert any("indicators unknown" in w for w in warnings), warnings


@pytest.mark.parametrize("reader", [failing, partial], ids=["failed", "partial"])
def test_a_check_with_an_unknown_platform_view_decides_as_with_prometheus_down(reader: Any) -> None:
    alert = {"status": "firing", "labels": {"alertname": "HighErrorRate", "namespace": "ns-0", "service": "web"}}
    request = _check.Request("ns-0", "web", alert, NOW)
    settings = _check.Settings(INTENTS, {})

    def decided(prom: Prometheus, reader: Any) -> dict[str, Any]:
        clients = _check.Clients(Cluster, prom, None, record=False, platform=reader)  # type: ignore[arg-type]
        return _check.evaluate(request, settings, clients)["decision"]  # type: ignore[no-any-return]

    shared = decided(Prometheus(breaching={"ns-0/web"}), reader)
    down = decided(Prometheus(breaching={"ns-0/web"}, down=True), None)
    assert shared == down and (shared["action"], shared["rule"]) == ("escalate", "blind"), shared
    assert decided(Prometheus(breaching={"ns-0/web"}), None) != down, "the check can tell a known breach apart"
