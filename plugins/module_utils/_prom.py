# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# Prometheus indicators: the default PromQL per indicator, batching into one query, and the query adapter.

"""Service indicators from Prometheus.

Every indicator an intent needs is a PromQL expression; the defaults use the metric names of instrumented
HTTP services (`http_requests_total`, `http_request_duration_seconds`), cAdvisor and kube-state-metrics, and
an intent may override any of them. All indicators of one evaluation go to Prometheus as ONE query: each
expression is tagged with an `indicator` label and joined with `or`, so a gather costs one round trip however
many indicators, nodes or tenants there are. Unknown stays unknown: an indicator with no sample is None.
"""

from __future__ import annotations

import math
from string import Template
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import GatherError

# Placeholders: $namespace, $service, $target (the workload name), $window, $tenant_window, $tenant_baseline and
# $baseline_end (how long ago the baseline window ends).
# `$` is free in PromQL except in label_replace replacements like "$1", which Template.safe_substitute leaves alone.
_REQ = 'namespace="$namespace",service="$service"'
_POD = 'namespace="$namespace",pod=~"$target-[a-z0-9]+-[a-z0-9]+"'
DEFAULT_QUERIES: dict[str, str] = {
    "latency_p99_ms": (
        "1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{"
        + _REQ
        + "}[$window])))"
    ),
    "error_rate": (
        "100 * sum(rate(http_requests_total{" + _REQ + ',code=~"5.."}[$window]))'
        " / sum(rate(http_requests_total{" + _REQ + "}[$window]))"
    ),
    "availability": (
        "100 * sum(rate(http_requests_total{" + _REQ + ',code!~"5.."}[$window]))'
        " / sum(rate(http_requests_total{" + _REQ + "}[$window]))"
    ),
    "requests_per_second": "sum(rate(http_requests_total{" + _REQ + "}[$window]))",
    "cpu_utilization": (
        "100 * avg(sum by (pod) (rate(container_cpu_usage_seconds_total{" + _POD + "}[$window]))"
        " / sum by (pod) (kube_pod_container_resource_requests{" + _POD + ',resource="cpu"}))'
    ),
    "memory_utilization": (
        "100 * max(max by (pod) (container_memory_working_set_bytes{" + _POD + "})"
        " / max by (pod) (kube_pod_container_resource_limits{" + _POD + ',resource="memory"}))'
    ),
    # Vectors: one sample per node / tenant / dependency / pod.
    "node_latency_p99_ms": (
        "1000 * histogram_quantile(0.99, sum by (node, le) "
        "(rate(http_request_duration_seconds_bucket{" + _REQ + "}[$window])))"
    ),
    "tenant_share": (
        "sum by (tenant) (rate(http_requests_total{" + _REQ + "}[$tenant_window]))"
        " / ignoring (tenant) group_left sum(rate(http_requests_total{" + _REQ + "}[$tenant_window]))"
    ),
    # Each tenant's share over the policy's tenant_baseline window that ended before the breach began: the traffic
    # it usually sends (principle 3, the victim tenant).
    "tenant_baseline_share": (
        "sum by (tenant) (rate(http_requests_total{" + _REQ + "}[$tenant_baseline] offset $baseline_end))"
        " / ignoring (tenant) group_left"
        " sum(rate(http_requests_total{" + _REQ + "}[$tenant_baseline] offset $baseline_end))"
    ),
    "dependency_up": "max by (dependency) (dependency_up{" + _REQ + "})",
    "dependency_latency_p99_ms": "1000 * max by (dependency) (dependency_latency_p99_seconds{" + _REQ + "})",
    "pod_restarts_15m": "sum by (pod) (increase(kube_pod_container_status_restarts_total{" + _POD + "}[15m]))",
}
SCALAR_INDICATORS = (
    "latency_p99_ms",
    "error_rate",
    "availability",
    "requests_per_second",
    "cpu_utilization",
    "memory_utilization",
)
# Vector indicators and the label that keys their samples.
VECTOR_INDICATORS = {
    "node_latency_p99_ms": "node",
    "tenant_share": "tenant",
    "tenant_baseline_share": "tenant",
    "dependency_up": "dependency",
    "dependency_latency_p99_ms": "dependency",
    "pod_restarts_15m": "pod",
}
INDICATOR_LABEL = "selfheal_indicator"
KEY_LABEL = "selfheal_key"


def indicator_queries(
    namespace: str,
    service: str,
    target: str,
    window: str = "5m",
    overrides: dict[str, str] | None = None,
    tenant_window: str | None = None,
    tenant_baseline: str = "1h",
    baseline_end: str | None = None,
) -> dict[str, str]:
    """The PromQL of every indicator for one service, defaults overridden by the intent's `indicators`.

    ``tenant_window`` is the rate window of the tenant shares (``$tenant_window``), ``window`` when not given.
    """
    values = {
        "namespace": namespace,
        "service": service,
        "target": target,
        "window": window,
        "tenant_window": tenant_window or window,
        "tenant_baseline": tenant_baseline,
        "baseline_end": baseline_end or window,
    }
    queries = {**DEFAULT_QUERIES, **(overrides or {})}
    return {name: Template(q).safe_substitute(values) for name, q in queries.items()}


def batch(queries: dict[str, dict[str, str]]) -> str:
    """Join many services' indicator queries into one PromQL expression.

    `queries` maps a key (usually "namespace/service") to that service's indicator queries. Every series is
    tagged with the indicator's name and the key, so `or` never drops one (their label sets always differ).
    """
    parts = []
    for key, per_service in queries.items():
        for name, q in per_service.items():
            tagged = f'label_replace(({q}), "{INDICATOR_LABEL}", "{name}", "", "")'
            parts.append(f'label_replace({tagged}, "{KEY_LABEL}", "{_escape(key)}", "", "")')
    return " or ".join(parts)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _value(sample: dict[str, Any]) -> float | None:
    try:
        value = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def split(result: list[dict[str, Any]], keys: list[str]) -> dict[str, dict[str, Any]]:
    """Turn the batched result back into {key: {indicator: value or {label: value}}}, unknown as None."""
    out: dict[str, dict[str, Any]] = {
        key: {**{name: None for name in SCALAR_INDICATORS}, **{name: {} for name in VECTOR_INDICATORS}} for key in keys
    }
    for sample in result:
        metric = sample.get("metric") or {}
        key, name = metric.get(KEY_LABEL), metric.get(INDICATOR_LABEL)
        if key not in out or name is None:
            continue
        value = _value(sample)
        if name in VECTOR_INDICATORS:
            label = metric.get(VECTOR_INDICATORS[name])
            if label is not None and value is not None:
                out[key][name][label] = value
        else:
            out[key][name] = value
    return out


class PromClient:
    """The one place that talks to Prometheus (through prometheus-api-client)."""

    def __init__(self, url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> None:
        try:
            from prometheus_api_client import PrometheusConnect
        except ImportError as exc:  # pragma: no cover - reported as a GatherError, so blind data escalates
            raise GatherError("the Python library prometheus-api-client is required to query Prometheus") from exc
        self.url = url
        self.timeout = timeout
        # POST: a batched query of many services is longer than a GET URL should be.
        self._prom = PrometheusConnect(url=url, headers=headers, method="POST", timeout=timeout)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"time": str(at)} if at is not None else None
        try:
            return self._prom.custom_query(promql, params=params)  # type: ignore[no-any-return]
        except Exception as exc:  # requests and the client raise several unrelated types
            raise GatherError(f"Prometheus at {self.url} did not answer: {_reason(exc)}") from exc

    def indicators(self, queries: dict[str, dict[str, str]], at: float | None = None) -> dict[str, dict[str, Any]]:
        """One round trip for every indicator of every service; a broken query is named in the error."""
        if not queries:
            return {}
        try:
            result = self.query(batch(queries), at)
        except GatherError as exc:
            if "bad_data" not in str(exc) and "400" not in str(exc):
                raise
            self._name_the_bad_query(queries, at)
            raise
        return split(result, list(queries))

    def _name_the_bad_query(self, queries: dict[str, dict[str, str]], at: float | None) -> None:
        for key, per_service in queries.items():
            for name, q in per_service.items():
                try:
                    self.query(q, at)
                except GatherError as exc:
                    raise GatherError(f"{key}: indicator {name}: Prometheus rejected the query {q!r}: {exc}") from exc


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"
