"""Alertmanager webhook payloads (version 4) as Alertmanager sends them, for the tests, the demo and the benchmarks.

One builder, so every test and benchmark speaks the same dialect; the real thing is exercised separately through
the sandbox's Alertmanager.
"""

from __future__ import annotations

from typing import Any

STARTS_AT = "2026-03-01T10:00:00.000Z"
ENDS_AT = "2026-03-01T10:05:00.000Z"
NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert


def alert(
    name: str = "HighLatency",
    status: str = "firing",
    fingerprint: str = "c0ffee0000000001",
    *,
    namespace: str = "shop",
    service: str = "checkout",
    summary: str | None = None,
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One alert of a notification; ``labels`` add to (or override) alertname, namespace and service."""
    return {
        "status": status,
        "labels": {"alertname": name, "namespace": namespace, "service": service, **labels},
        "annotations": annotations if annotations is not None else {"summary": summary or f"{name} on {service}"},
        "startsAt": STARTS_AT,
        "endsAt": NEVER if status == "firing" else ENDS_AT,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A webhook notification of ``alerts``, grouped by the first alert's service; ``fields`` override the rest."""
    service = alerts[0]["labels"].get("service", "checkout") if alerts else "checkout"
    return {
        "version": "4",
        "groupKey": f'{{}}:{{service="{service}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a.get("status") == "firing" for a in alerts) or not alerts else "resolved",
        "receiver": "selfheal",
        "groupLabels": {"service": service},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
        **fields,
    }
