# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# Which PromQL the gatherer asks for a service: the defaults, the intent's overrides, the policy's windows.

"""The indicator queries of one intent, and of every intent's objectives at once (the platform view)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils import _prom
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import duration_seconds

# Who floods a service is a question about now: over the intent's whole window (5m by default) a flood that began
# a minute ago is still the minority, and the steady tenant would be the one isolated.
DEFAULT_TENANT_WINDOW = "1m"
DEFAULT_TENANT_BASELINE = "1h"  # the policy's tenant_baseline default
# Objective -> the indicator that judges it.
OBJECTIVE_INDICATORS = {
    "max_latency_ms": "latency_p99_ms",
    "max_error_rate": "error_rate",
    "availability": "availability",
}


def workload_of(intent: Mapping[str, Any]) -> str:
    """The Deployment an intent's service runs as: its target, or the service's own name."""
    return str((intent.get("target") or {}).get("name") or intent["service"])


def key_of(intent: Mapping[str, Any]) -> str:
    return f"{intent['namespace']}/{intent['service']}"


def shorter(first: str, second: str) -> str:
    """The shorter of two Prometheus durations."""
    return first if duration_seconds(first) <= duration_seconds(second) else second


def service_queries(
    intent: Mapping[str, Any], tenant_baseline: str = DEFAULT_TENANT_BASELINE, breach_age: float | None = None
) -> dict[str, str]:
    """The PromQL of every indicator of one intent (defaults, the intent's overrides, its dependency queries).

    ``tenant_baseline`` is the policy's window for the tenants' baseline shares, which ends before the breach began
    (see :func:`baseline_end`); ``breach_age`` is the alert's age in seconds, None without an alert.
    """
    overrides = dict(intent.get("indicators") or {})
    window = overrides.pop("window", None) or "5m"
    tenant_window = overrides.pop("tenant_window", None) or shorter(window, DEFAULT_TENANT_WINDOW)
    if (intent.get("tenants") or {}).get("query"):
        overrides["tenant_share"] = intent["tenants"]["query"]
    return _prom.indicator_queries(
        intent["namespace"],
        intent["service"],
        workload_of(intent),
        window,
        overrides,
        tenant_window,
        tenant_baseline=tenant_baseline,
        baseline_end=baseline_end(window, tenant_baseline, breach_age),
    )


def baseline_end(window: str, tenant_baseline: str, breach_age: float | None) -> str:
    """How long ago the tenants' baseline window ends: when the alert began (at least one window ago). Without an
    alert the breach may be any age, so the baseline is the window before the last one: a flood that began
    within it is not taken for the usual traffic."""
    if breach_age is None:
        return tenant_baseline
    return f"{math.ceil(max(duration_seconds(window), breach_age))}s"


def objective_queries(intents: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Per service with declared objectives, the PromQL of the indicators that judge them (keyed "ns/service")."""
    queries: dict[str, dict[str, str]] = {}
    for intent in intents:
        wanted = {OBJECTIVE_INDICATORS[name] for name in intent.get("objectives") or {} if name in OBJECTIVE_INDICATORS}
        if wanted:
            queries[key_of(intent)] = {n: q for n, q in service_queries(intent).items() if n in wanted}
    return queries
