"""The sandbox's alerting loop: a fault changes the metrics, Prometheus fires, Alertmanager delivers to a webhook."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox import client
from sandbox.wait import wait_until

pytestmark = pytest.mark.sandbox

ERR = (
    "100 * sum(rate(http_requests_total{{namespace='shop',service='{svc}',code=~'5..'}}[10s]))"
    " / sum(rate(http_requests_total{{namespace='shop',service='{svc}'}}[10s]))"
)
# Detection floor: Prometheus' first scrape (~5 s after start) + a 10 s rate window + 1 s evaluation +
# Alertmanager's group_wait 0 s; the bound leaves room for a loaded 2-core CI machine.
FIRE_BOUND_S = 40.0


def test_prometheus_scrapes_the_simulator(sandbox: dict[str, Any]) -> None:
    wait_until(lambda: client.scalar(sandbox, "sum(up{job='workloads'})") == 1.0, 60, "a scrape")
    rate = "sum(rate(http_requests_total{namespace='shop',service='checkout'}[10s]))"
    # The seeded checkout service takes 400 requests/s (sandbox/config/workloads.yml). A rate over a window that
    # is not yet full of samples reads low, so wait for the steady state rather than taking the first value.
    rps = wait_until(lambda: 380 < (client.scalar(sandbox, rate) or 0) < 420, 60, "a steady request rate")
    assert rps
    assert 380 < client.scalar(sandbox, rate) < 420


def test_bad_rollout_fires_high_error_rate_and_clearing_resolves_it(sandbox: dict[str, Any], faults: Any) -> None:
    wait_until(lambda: client.scalar(sandbox, ERR.format(svc="checkout")) is not None, 60, "checkout metrics")
    assert client.scalar(sandbox, ERR.format(svc="checkout")) < 1.0, "checkout must start healthy"
    assert client.delivered(sandbox, "HighErrorRate", "firing", "checkout") is None

    injected_at = time.time()
    fault = faults("bad-rollout", namespace="shop", service="checkout")
    alert = wait_until(
        lambda: client.delivered(sandbox, "HighErrorRate", "firing", "checkout"),
        FIRE_BOUND_S,
        "HighErrorRate firing at the webhook",
    )
    assert alert["received_at"] - injected_at < FIRE_BOUND_S
    assert alert["labels"]["namespace"] == "shop"
    assert alert["labels"]["severity"] == "page"
    assert alert["fingerprint"]
    # The rollout was real: the Deployment moved to a new revision running the new image.
    assert fault["undo"]["image"] == "shop/checkout:1.42"

    client.clear(sandbox, fault["id"])
    resolved = wait_until(
        lambda: client.delivered(sandbox, "HighErrorRate", "resolved", "checkout"), 90, "HighErrorRate resolved"
    )
    assert resolved["fingerprint"] == alert["fingerprint"]
    assert client.scalar(sandbox, ERR.format(svc="checkout")) < 1.0


def test_inject_rejects_unknown_fault_and_missing_deployment(sandbox: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="unknown fault 'meteor'"):
        client.inject(sandbox, "meteor")
    with pytest.raises(RuntimeError, match="no deployment shop/nope"):
        client.inject(sandbox, "crashloop", namespace="shop", service="nope")
    with pytest.raises(RuntimeError, match="needs a node"):
        client.inject(sandbox, "slow-node", namespace="shop", service="catalog")


def test_a_profile_changes_the_tenants_mix_and_bad_ones_are_refused(sandbox: dict[str, Any]) -> None:
    share = "sum(rate(http_requests_total{{namespace='shop',service='catalog',tenant='{t}'}}[3s]))"
    client.set_profile(sandbox, "shop", "catalog", tenants={"acme": 0.9, "globex": 0.1})
    try:
        wait_until(
            lambda: (
                (client.scalar(sandbox, share.format(t="acme")) or 0)
                > 5 * (client.scalar(sandbox, share.format(t="globex")) or 1)
            ),
            60,
            "acme to send nine tenths of the requests",
            1,
        )
    finally:
        client.set_profile(sandbox, "shop", "catalog", tenants={"acme": 0.5, "globex": 0.5})
    with pytest.raises(RuntimeError, match="unknown profile keys \\['colour'\\]"):
        client.set_profile(sandbox, "shop", "catalog", colour="blue")
    with pytest.raises(RuntimeError, match="positive share"):
        client.set_profile(sandbox, "shop", "catalog", tenants={"acme": 0})
