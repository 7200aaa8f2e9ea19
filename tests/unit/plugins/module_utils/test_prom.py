"""The PromQL side of the gatherer: defaults, overrides, one batched query and splitting it back."""

from __future__ import annotations

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils import _prom, _schema
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather import queries


def test_defaults_are_filled_for_the_service() -> None:
    q = _prom.indicator_queries("shop", "checkout", "checkout-api", window="30s")
    assert 'namespace="shop",service="checkout"' in q["error_rate"]
    assert "[30s]" in q["latency_p99_ms"]
    # Pod-level indicators select the workload's pods by name, as cAdvisor and kube-state-metrics label them.
    assert 'pod=~"checkout-api-[a-z0-9]+-[a-z0-9]+"' in q["cpu_utilization"]
    assert "$" not in "".join(q.values())


def test_overrides_replace_one_indicator_and_keep_label_replace_groups() -> None:
    override = 'label_replace(my_p99{app="$service"}, "x", "$1", "y", "(.*)")'
    q = _prom.indicator_queries("shop", "checkout", "checkout", overrides={"latency_p99_ms": override})
    assert q["latency_p99_ms"] == 'label_replace(my_p99{app="checkout"}, "x", "$1", "y", "(.*)")'
    assert q["error_rate"] == _prom.indicator_queries("shop", "checkout", "checkout")["error_rate"]


@pytest.mark.parametrize(
    ("indicators", "window", "tenant_window"),
    [
        ({}, "5m", "1m"),  # a flood that began a minute ago is the majority over 1m, not over 5m
        ({"window": "15s"}, "15s", "15s"),  # never longer than the intent's own window
        ({"window": "2m", "tenant_window": "30s"}, "2m", "30s"),
        ({"window": "1h", "tenant_window": "10m"}, "1h", "10m"),
    ],
)
def test_tenant_shares_are_read_over_a_short_window(indicators: dict, window: str, tenant_window: str) -> None:
    q = queries.service_queries({"service": "checkout", "namespace": "shop", "indicators": indicators})
    assert f"[{window}]" in q["error_rate"]
    assert q["tenant_share"].count(f"[{tenant_window}]") == 2, q["tenant_share"]


def test_shorter_compares_durations_not_text() -> None:
    assert queries.shorter("90s", "1m") == "1m"
    assert queries.shorter("1m", "1h") == "1m"
    assert queries.shorter("500ms", "1s") == "500ms"
    assert _schema.duration_seconds("1h30m") == 5400
    with pytest.raises(ValueError, match="not a Prometheus duration: '5 minutes'"):
        _schema.duration_seconds("5 minutes")


def test_batch_tags_every_query_once() -> None:
    queries = {
        "shop/checkout": {"error_rate": "a", "node_latency_p99_ms": "b"},
        "shop/catalog": {"error_rate": "c"},
    }
    promql = _prom.batch(queries)
    assert promql.count(" or ") == 2
    assert f'"{_prom.INDICATOR_LABEL}", "node_latency_p99_ms"' in promql
    assert f'"{_prom.KEY_LABEL}", "shop/catalog"' in promql


def sample(key: str, name: str, value: str, **labels: str) -> dict:
    metric = {_prom.KEY_LABEL: key, _prom.INDICATOR_LABEL: name, **labels}
    return {"metric": metric, "value": [1700000000.0, value]}


def test_split_keeps_unknown_as_none_and_drops_nan() -> None:
    result = [
        sample("shop/checkout", "error_rate", "2.5"),
        sample("shop/checkout", "latency_p99_ms", "NaN"),
        sample("shop/checkout", "node_latency_p99_ms", "900", node="node-b"),
        sample("shop/checkout", "node_latency_p99_ms", "120", node="node-a"),
        sample("shop/checkout", "tenant_share", "0.7", tenant="acme"),
        sample("elsewhere/x", "error_rate", "99"),
    ]
    out = _prom.split(result, ["shop/checkout", "shop/catalog"])
    checkout = out["shop/checkout"]
    assert checkout["error_rate"] == 2.5
    assert checkout["latency_p99_ms"] is None  # NaN (no traffic in the window) is unknown, not 0
    assert checkout["availability"] is None
    assert checkout["node_latency_p99_ms"] == {"node-b": 900.0, "node-a": 120.0}
    assert checkout["tenant_share"] == {"acme": 0.7}
    assert out["shop/catalog"]["error_rate"] is None
    assert "elsewhere/x" not in out


@pytest.mark.parametrize("value", ["+Inf", "-Inf", "not-a-number"])
def test_split_treats_non_finite_values_as_unknown(value: str) -> None:
    out = _prom.split([sample("a/b", "availability", value)], ["a/b"])
    assert out["a/b"]["availability"] is None


@pytest.mark.parametrize(
    ("breach_age", "offset"),
    [(None, "offset 30m"), (2.0, "offset 5s"), (90.4, "offset 91s"), (7200.0, "offset 7200s")],
)
def test_the_tenant_baseline_ends_when_the_breach_began(breach_age: float | None, offset: str) -> None:
    # A flood older than the service's window must not count as the tenant's usual share (principle 3).
    intent = {"service": "checkout", "namespace": "shop", "indicators": {"window": "5s"}}
    q = queries.service_queries(intent, "30m", breach_age)["tenant_baseline_share"]
    assert q.count(f"[30m] {offset}") == 2, q
