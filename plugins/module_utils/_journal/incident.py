# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Close the journal's incident of an alert that resolved: the ``journal_incident`` module's orchestration.

A resolved alert needs no look at the cluster: the decision engine answers ``none`` (rule ``alert-resolved``)
for it whatever the cluster shows. So the snapshot recorded here holds the alert alone, the engine decides on
it as on any other (one implementation of "resolved means nothing to do"), and the journal records that
decision with the alert's fingerprint and status, which is what closes the incident the firing alert opened.

Idempotent: when no incident of that alert is open (already closed, or never opened because nothing was decided
about the firing alert), nothing is recorded and nothing changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._alerts import alert_block, normalize, target_of
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import (
    Journal,
    default_journal_path,
    journal_exists,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot, snapshot_to_dict
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime


def journal_incident_spec() -> dict[str, Any]:
    return {
        "journal": {"type": "path"},
        "alert": {"type": "dict", "required": True},
        "namespace": {"type": "str"},
        "service": {"type": "str"},
    }


def close(
    params: dict[str, Any], check_mode: bool, now: datetime | None = None, journal: Journal | None = None
) -> dict[str, Any]:
    """Close the open incident of a resolved alert; return the module's result. The event sources pass their
    open ``journal``; the module opens the one ``params`` names."""
    alert = params["alert"]
    event = normalize({"alerts": [alert]})[0]
    if event["status"] != "resolved":
        problem = f'must be "resolved" to close an incident, got "{event["status"]}"'
        raise ValidationError("options", "alert.status", problem)
    namespace, service = target_of(alert, params.get("namespace"), params.get("service"))
    fingerprint = event["fingerprint"]
    moment = now or datetime.now(UTC)
    data = {
        "id": f"{namespace}/{service}@{format_datetime(moment)}",
        "now": format_datetime(moment),
        "intent": None,
        "policy": None,
        "alert": alert_block(alert),
    }
    snapshot = parse_snapshot(data, f"{namespace}/{service}")
    decision = decide(snapshot)  # none, rule alert-resolved
    result: dict[str, Any] = {
        "changed": False,
        "incident_id": None,
        "decision_id": None,
        "fingerprint": fingerprint,
        "decision": decision.to_dict(),
    }
    own = journal is None
    if journal is None:
        target = params.get("journal") or None
        if not journal_exists(target):
            result["msg"] = f"no journal at {target or default_journal_path()}: nothing to close"
            return result
        journal = Journal(target)
    try:
        incident = _open_incident(journal, namespace, service, fingerprint)
        if incident is None:
            result["msg"] = f"no open incident of alert {fingerprint} on {namespace}/{service}: nothing to close"
            return result
        result.update(changed=True, incident_id=incident["id"])
        result["diff"] = {"before": {"status": "open"}, "after": {"status": "closed"}}
        if check_mode:
            result["msg"] = f"would close incident {incident['id']} of {namespace}/{service}"
            return result
        result["decision_id"] = journal.record_decision(
            namespace=namespace,
            service=service,
            snapshot=snapshot_to_dict(snapshot),
            decision=decision.to_dict(),
            fingerprint=fingerprint,
            alert_status="resolved",
            at=moment,
        )
        result["msg"] = f"closed incident {incident['id']} of {namespace}/{service}: the alert resolved"
        return result
    finally:
        if own:
            journal.close()


def _open_incident(journal: Journal, namespace: str, service: str, fingerprint: str) -> dict[str, Any] | None:
    for incident in journal.incidents(namespace=namespace, service=service, status="open", limit=1000):
        if incident["fingerprint"] == fingerprint:
            return incident
    return None
