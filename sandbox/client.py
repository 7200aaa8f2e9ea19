"""Talk to a running sandbox: its state file, fault injection, Prometheus and Alertmanager queries.

Used by the sandbox CLI, the demo and the tests; never by the collection itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def state_path(run_dir: Path) -> Path:
    return Path(run_dir) / "sandbox.json"


def load_state(run_dir: Path, missing_ok: bool = False) -> dict[str, Any]:
    path = state_path(run_dir)
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise RuntimeError(f"the sandbox is not running ({path} is missing): run 'make sandbox-up'") from None


def _request(url: str, method: str = "GET", body: Any = None, timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"{method} {url} failed with {exc.code}: {detail}") from None


# Injecting a fault reads the cluster, writes to it and reads it again through the stand-in, each call allowed
# the simulator's own 30 s on a loaded machine: a fault must not fail because the stand-in is busy.
FAULT_TIMEOUT_S = 100


def inject(state: dict[str, Any], fault: str, **fields: Any) -> dict[str, Any]:
    body = {"fault": fault, **{k: v for k, v in fields.items() if v is not None}}
    return _request(state["simulator_url"] + "/faults", "POST", body, FAULT_TIMEOUT_S)  # type: ignore[no-any-return]


def clear(state: dict[str, Any], fault_id: str | None = None) -> Any:
    suffix = f"/faults/{fault_id}" if fault_id else "/faults"
    return _request(state["simulator_url"] + suffix, "DELETE", timeout=FAULT_TIMEOUT_S)


def set_profile(state: dict[str, Any], namespace: str, service: str, **profile: Any) -> dict[str, Any]:
    """Change how the simulator serves a service from now on (``tenants``, ``base_rps``, ...)."""
    url = f"{state['simulator_url']}/profiles/{namespace}/{service}"
    return _request(url, "PUT", profile)  # type: ignore[no-any-return]


def faults(state: dict[str, Any]) -> list[dict[str, Any]]:
    return _request(state["simulator_url"] + "/faults")  # type: ignore[no-any-return]


def query(state: dict[str, Any], promql: str) -> list[dict[str, Any]]:
    """An instant PromQL query; returns Prometheus' result vector."""
    url = state["prometheus_url"] + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    return _request(url)["data"]["result"]  # type: ignore[no-any-return]


def scalar(state: dict[str, Any], promql: str) -> float | None:
    result = query(state, promql)
    return float(result[0]["value"][1]) if result else None


def prometheus_alerts(state: dict[str, Any]) -> list[dict[str, Any]]:
    return _request(state["prometheus_url"] + "/api/v1/alerts")["data"]["alerts"]  # type: ignore[no-any-return]


def received(state: dict[str, Any], **filters: str) -> list[dict[str, Any]]:
    """What the built-in webhook recorder has received so far, filtered by ``path`` or by alert (``alertname``,
    ``status``, ``service``: notifications that carry a matching alert)."""
    url = state["webhook_url"].rsplit("/", 1)[0] + "/received"
    return _request(url + ("?" + urllib.parse.urlencode(filters) if filters else ""))  # type: ignore[no-any-return]


def query_range(
    state: dict[str, Any], promql: str, start: float, end: float, step: float = 1.0
) -> list[tuple[float, float]]:
    """A range query of one series: [(unix time, value)], empty when Prometheus has no sample."""
    args = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    result = _request(state["prometheus_url"] + "/api/v1/query_range?" + urllib.parse.urlencode(args))["data"]["result"]
    return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


def active_alerts(state: dict[str, Any], **labels: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds active now, filtered by exact label values."""
    filters = [("filter", f'{name}="{value}"') for name, value in labels.items()]
    url = state["alertmanager_url"] + "/api/v2/alerts?" + urllib.parse.urlencode([("active", "true"), *filters])
    return _request(url)  # type: ignore[no-any-return]


def delivered(state: dict[str, Any], alertname: str, status: str, service: str) -> dict[str, Any] | None:
    """The first alert of that name and status the webhook recorder received for the service, if any."""
    for record in received(state, alertname=alertname, status=status, service=service):
        for alert in record["payload"].get("alerts", []):
            labels = alert.get("labels", {})
            if (labels.get("alertname"), alert.get("status"), labels.get("service")) == (alertname, status, service):
                return {"received_at": record["received_at"], **alert}
    return None
