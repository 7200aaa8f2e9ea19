"""Snapshots: validation naming the field, defaults, unknown metrics, the dropped ``expect``, and round trips."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import Recovery
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import (
    SNAPSHOT_SCHEMA,
    Metrics,
    Snapshot,
    parse_snapshot,
    snapshot_to_dict,
)
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import (
    BASELINE,
    DELETE,
    NOW,
    SCENARIOS,
    edited,
)


def parse(edits: dict[str, Any]) -> Snapshot:
    return parse_snapshot(edited(edits), "s.yml")


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SNAPSHOT_SCHEMA)


def test_baseline_parses_to_typed_values() -> None:
    snap = parse({})
    assert snap.now == NOW
    assert snap.intent is not None and snap.intent.key == "shop/checkout"
    assert snap.observed.metrics == Metrics(120, 0.1, 99.98, 40, 50, 800)
    assert [node.name for node in snap.observed.nodes] == ["node-a", "node-b", "node-c"]
    assert snap.alert is not None and snap.alert.name == "HighLatency" and snap.alert.firing


@pytest.mark.parametrize(
    "edits",
    [{"observed.metrics.error_rate": DELETE}, {"observed.metrics.error_rate": None}],
    ids=["absent", "null"],
)
def test_a_missing_metric_is_unknown_never_zero(edits: dict[str, Any]) -> None:
    assert parse(edits).observed.metrics.error_rate is None


def test_absent_blocks_take_defaults() -> None:
    snap = parse_snapshot({"now": "2026-03-04T15:10:00Z", "intent": {"service": "a", "namespace": "b"}}, "s")
    assert snap.intent is not None and snap.intent.recovery == Recovery()
    assert snap.policy.cooldown_minutes == 10 and snap.policy.protected_namespaces == ("kube-system",)
    assert (snap.alert, snap.observed.workload, snap.observed.patch, snap.history) == (None, None, None, ())
    assert snap.observed.metrics == Metrics()


def test_policy_is_resolved_for_the_intents_service() -> None:
    overrides = {"namespaces": {"shop": {"cooldown_minutes": 3}}, "services": {"shop/cart": {"cooldown_minutes": 1}}}
    assert parse({"policy.overrides": overrides}).policy.cooldown_minutes == 3
    assert parse({"policy.overrides": overrides, "intent.service": "cart"}).policy.cooldown_minutes == 1


def test_expect_is_accepted_and_dropped() -> None:
    snap = parse({"expect": {"action": "rollback", "params": {"to_revision": 7}}})
    assert "expect" not in snapshot_to_dict(snap)
    assert not any("expect" in field for field in Snapshot.__dataclass_fields__)
    assert snap == parse({})


def test_history_is_ordered_oldest_first_whatever_the_input_order() -> None:
    history = [
        {"action": "restart", "at": "2026-03-04T15:00:00Z", "outcome": "pending"},
        {"action": "scale_up", "at": "2026-03-04T14:00:00Z", "outcome": "recovered"},
    ]
    assert [h.action for h in parse({"history": history}).history] == ["scale_up", "restart"]


def test_datetimes_from_yaml_loaders_are_accepted() -> None:
    # Ansible's and PyYAML's loaders turn unquoted timestamps into datetime objects.
    data = edited({"now": dt.datetime(2026, 3, 4, 15, 10, tzinfo=dt.UTC)})
    assert parse_snapshot(data, "s").now == NOW


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"^s: now: .*no UTC offset"):
        parse_snapshot(edited({"now": dt.datetime(2026, 3, 4, 15, 10)}), "s")


def test_gatherers_pod_readiness_is_accepted() -> None:
    pods = [{"name": "p1", "node": "n", "phase": "Running", "ready": False, "reason": None}]
    assert parse({"observed.workload.pods": pods}).observed.workload.pods[0].ready is False  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (
            {"observed.metrics.latency_p99_ms": "slow"},
            's.yml: observed.metrics.latency_p99_ms: must be a number >= 0 or null, got "slow"',
        ),
        (
            {"observed.metrics.error_rate": 120},
            "s.yml: observed.metrics.error_rate: must be a number between 0 and 100 or null, got 120",
        ),
        (
            {"observed.metrics.latency_p99": 5},
            "s.yml: observed.metrics: unknown key 'latency_p99' (did you mean 'latency_p99_ms'?)",
        ),
        ({"now": DELETE}, "s.yml: required key 'now' is missing"),
        (
            {"now": "yesterday"},
            "s.yml: now: must be an ISO 8601 date-time with a UTC offset, such as "
            '"2026-03-01T00:00:00Z", got "yesterday" (Invalid isoformat string: \'yesterday\')',
        ),
        (
            {"history": [{"action": "restart", "at": "2026-03-04T15:00:00Z", "outcome": "ok"}]},
            's.yml: history[0].outcome: must be one of [pending, recovered, not_recovered, failed], got "ok"',
        ),
        (
            {"observed.workload.pods": [{"node": "a"}]},
            "s.yml: observed.workload.pods[0]: required key 'name' is missing",
        ),
        (
            {"observed.workload.replicas": -1},
            "s.yml: observed.workload.replicas: must be a whole number >= 0 or null, got -1",
        ),
        (
            {"observed.tenants.acme.share": 72},
            "s.yml: observed.tenants.acme.share: must be a number between 0 and 1 or null, got 72",
        ),
        (
            {"observed.patch": {"image": "x", "severity": "urgent"}},
            's.yml: observed.patch.severity: must be one of [critical, high, medium, low], got "urgent"',
        ),
        ({"alert.status": "firing!"}, 's.yml: alert.status: must be one of [firing, resolved], got "firing!"'),
        (
            {"intent.objectives.max_latency_ms": 0},
            "s.yml: intent.objectives.max_latency_ms: must be a number > 0, got 0",
        ),
        (
            {"intent.recovery.min_replicas": 11},
            "s.yml: intent.recovery.min_replicas: must not exceed max_replicas 10, got 11",
        ),
        (
            {"policy.freeze_windows": [{"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}]},
            "s.yml: policy.freeze_windows[0].end: must be after start 2026-03-02T00:00:00Z, got 2026-03-01T00:00:00Z",
        ),
        ({"observed.workload": []}, "s.yml: observed.workload: must be a mapping or null, got a list"),
        ({"surprise": 1}, "s.yml: unknown key 'surprise'"),
    ],
)
def test_malformed_snapshots_name_the_field(edits: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_snapshot(edited(edits), "s.yml")
    assert str(caught.value) == message


def test_alert_keys_owned_by_alertmanager_are_kept() -> None:
    snap = parse({"alert.generatorURL": "http://prom/graph", "alert.endsAt": "0001-01-01T00:00:00Z"})
    assert snapshot_to_dict(snap)["alert"]["generatorURL"] == "http://prom/graph"


def test_parsing_does_not_modify_or_keep_the_input() -> None:
    data = edited({})
    before = json.dumps(data, sort_keys=True)
    snap = parse_snapshot(data, "s")
    data["observed"]["metrics"]["latency_p99_ms"] = 999
    assert json.dumps(edited({}), sort_keys=True) == before
    assert snap.observed.metrics.latency_p99_ms == 120


def _documents() -> list[dict[str, Any]]:
    docs = [edited({}), edited({"intent": None, "alert": None, "observed.workload": None})]
    if SCENARIOS.is_dir():
        docs += [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(SCENARIOS.glob("*.yml"))]
    return docs


@pytest.mark.parametrize("document", _documents(), ids=lambda d: str(d.get("id")))
def test_snapshot_to_dict_round_trips_through_json(document: dict[str, Any]) -> None:
    snap = parse_snapshot(document, "s")
    text = json.dumps(snapshot_to_dict(snap))
    assert parse_snapshot(json.loads(text), "s") == snap


def test_baseline_is_not_mutated_by_the_factory() -> None:
    edited({"observed.metrics.latency_p99_ms": 1})
    assert BASELINE["observed"]["metrics"]["latency_p99_ms"] == 120
