# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""What the journal says about proposals: the ones waiting for an answer, and the promotion evidence.

The promotion evidence tells a team whether a service can move from ``mode: approve`` to ``auto``: for each
service and proposed action, what became of its proposals - approved and recovered, approved and not recovered,
denied, expired, stale, recovered by itself (the service no longer needed the action when it was approved) or
still waiting - and the success rate: the share of approved actions that recovered the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import parse_datetime

OUTCOMES = (
    "approved_recovered",
    "approved_not_recovered",
    "approved_pending",
    "denied",
    "expired",
    "stale",
    "recovered_by_itself",
    "waiting",
)
SELF_RECOVERED = "the service no longer needs"  # how a stale proposal's reason begins when nothing was needed
HEALTHY_RULES = ("no-impact", "alert-resolved")  # a later decision that found nothing to do
RECOVERED_WITHIN = timedelta(minutes=30)


def waiting(journal: Journal, now: datetime, **filters: Any) -> list[dict[str, Any]]:
    """Proposals still open (pending, not expired), newest first, with their age and their decision's evidence."""
    out = []
    for row in journal.proposals(state="pending", **filters):
        if parse_datetime(row["expires"]) <= now:
            continue
        found = journal.decision(int(row["decision_id"])) or {}
        decision = found.get("decision") or {}
        out.append(
            {
                **row,
                "age_seconds": round((now - parse_datetime(row["created"])).total_seconds(), 1),
                "reasons": decision.get("reasons") or [],
                "evidence": decision.get("evidence") or {},
            }
        )
    return out


def outcome(row: Mapping[str, Any], acted: Mapping[str, Any] | None, now: datetime) -> str:
    """What became of one proposal (one of :data:`OUTCOMES`)."""
    state = row["state"]
    if state == "pending":
        return "expired" if parse_datetime(row["expires"]) <= now else "waiting"
    if state == "stale":
        return "recovered_by_itself" if str(row.get("detail") or "").startswith(SELF_RECOVERED) else "stale"
    if state in ("acted", "approved"):
        outcomes = [a["outcome"] for a in (acted or {}).get("actions", []) if a["action"] == row["action"]]
        if "recovered" in outcomes:
            return "approved_recovered"
        if any(o in ("not_recovered", "failed", "skipped") for o in outcomes):
            return "approved_not_recovered"
        return "approved_pending"
    return str(state)  # denied, expired


def recovered_alone(journal: Journal, row: Mapping[str, Any], within: timedelta) -> bool:
    """Whether a later check of the service found nothing to do within ``within`` of the proposal."""
    created = parse_datetime(row["created"])
    later = journal.query(namespace=row["namespace"], service=row["service"], since=created, until=created + within)
    return any(d["rule"] in HEALTHY_RULES and d["id"] > row["decision_id"] for d in later)


def promotion(
    journal: Journal,
    now: datetime,
    since: datetime | None = None,
    within: timedelta = RECOVERED_WITHIN,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Per service and proposed action: the count of each outcome and the success rate, sorted by service. A
    proposal never acted on (expired, stale, waiting) whose service a later check found healthy within ``within``
    counts as recovered by itself; a denied one stays denied (the human's answer is the evidence)."""
    table: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in journal.proposals(since=since, limit=100_000, **filters):
        acted = journal.decision(int(row["acted_decision_id"])) if row.get("acted_decision_id") else None
        found = outcome(row, acted, now)
        if found in ("expired", "stale", "waiting") and recovered_alone(journal, row, within):
            found = "recovered_by_itself"
        key = (row["namespace"], row["service"], row["action"])
        entry = table.setdefault(
            key,
            {"namespace": key[0], "service": key[1], "action": key[2], "proposals": 0, **dict.fromkeys(OUTCOMES, 0)},
        )
        entry["proposals"] += 1
        entry[found] += 1
    for entry in table.values():
        done = entry["approved_recovered"] + entry["approved_not_recovered"]
        entry["success_rate"] = round(entry["approved_recovered"] / done, 3) if done else None
    return [table[k] for k in sorted(table)]


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The promotion evidence as a Markdown table."""
    heads = ["service", "action", "proposals", *OUTCOMES, "success rate"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        rate = "n/a" if r["success_rate"] is None else f"{100 * r['success_rate']:.0f}%"
        cells = [f"{r['namespace']}/{r['service']}", r["action"], str(r["proposals"])]
        lines.append("| " + " | ".join([*cells, *(str(r[o]) for o in OUTCOMES), rate]) + " |")
    return "\n".join(lines) + "\n"


def query(params: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """``journal_info`` with ``view=proposals`` (waiting) or ``view=promotion``."""
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import journal_exists

    now = now or datetime.now(UTC)
    target = params.get("journal") or None
    filters = {"namespace": params.get("namespace"), "service": params.get("service")}
    if not journal_exists(target):
        return {"proposals": []} if params["view"] == "proposals" else {"promotion": [], "report": render_markdown([])}
    since = parse_datetime(params["since"]) if params.get("since") else None
    with Journal(target) as journal:
        if params["view"] == "proposals":
            return {"proposals": waiting(journal, now, **filters)}
        within = timedelta(minutes=float(params.get("recovered_within_minutes") or 30))
        rows = promotion(journal, now, since, within, **filters)
    return {"promotion": rows, "report": render_markdown(rows)}
