"""The check's gather: what it asks of Prometheus per check, and the platform view it builds from the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import GatherError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check

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

    def get(self, api: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": namespace, "annotations": {}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {"spec": {}}},
            "status": {"replicas": 2, "readyReplicas": 2},
        }

    def list(self, api: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
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
