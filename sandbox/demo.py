"""The demo behind `make demo`: the sandbox, a fault, and the alert it causes, narrated as a timeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sandbox import cli, client
from sandbox.wait import wait_until


class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)


def delivered(state: dict[str, Any], alertname: str, status: str, service: str) -> dict[str, Any] | None:
    """The first alert of that name and status the webhook received for the service, if any."""
    for record in client.received(state):
        for alert in record["payload"].get("alerts", []):
            labels = alert.get("labels", {})
            if (labels.get("alertname"), alert.get("status"), labels.get("service")) == (alertname, status, service):
                return {"received_at": record["received_at"], **alert}
    return None


def run(run_dir: Path, keep: bool = False) -> int:
    tl = Timeline()
    tl.say("starting the sandbox: Kubernetes stand-in, workload simulator, Prometheus, Alertmanager")
    state = cli.up_detached(run_dir, webhook_url=None)
    try:
        tl.say(f"sandbox up (Prometheus {state['prometheus_url']}, Alertmanager {state['alertmanager_url']})")
        err = (
            "100 * sum(rate(http_requests_total{service='checkout',code=~'5..'}[10s])) / "
            "sum(rate(http_requests_total{service='checkout'}[10s]))"
        )
        wait_until(lambda: client.scalar(state, err) is not None, 60, "Prometheus to scrape the workloads")
        tl.say(f"shop/checkout is healthy: 5xx rate {client.scalar(state, err):.2f}%")
        fault = client.inject(state, "bad-rollout", namespace="shop", service="checkout")
        tl.say(
            f"fault injected: bad-rollout (shop/checkout now runs {fault.get('undo', {}).get('image', 'a bad image')})"
        )
        wait_until(lambda: (client.scalar(state, err) or 0) > 1, 60, "the error rate to rise")
        tl.say(f"Prometheus sees the regression: 5xx rate {client.scalar(state, err):.2f}%")
        alert = wait_until(
            lambda: delivered(state, "HighErrorRate", "firing", "checkout"), 90, "HighErrorRate to reach the webhook"
        )
        tl.say(f"Alertmanager delivered HighErrorRate (firing) to the webhook: {alert['annotations'].get('summary')}")
        client.clear(state, fault["id"])
        tl.say("fault cleared (the release is fixed)")
        wait_until(lambda: delivered(state, "HighErrorRate", "resolved", "checkout"), 120, "HighErrorRate to resolve")
        tl.say("Alertmanager delivered HighErrorRate (resolved): the loop from fault to alert works end to end")
        return 0
    finally:
        if not keep:
            cli.down(run_dir)
            tl.say("sandbox stopped; no process left behind")
