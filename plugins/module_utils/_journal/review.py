# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The post-incident review: journal records in, one review per service out. Pure: no I/O, no clock.

:func:`build_review` takes what the journal returns (``Journal.query(..., include_snapshot=True)`` decisions with
their actions, and ``Journal.incidents()``) for a period and works out, for each service:

- its incidents (alert fingerprints), with the **time to action** (incident opened -> first action started) and
  the **time to recovery** (incident opened -> objectives met, from the action's effectiveness record written when
  its verification ended; else -> the alert resolved; ``None`` while neither happened);
- the actions taken and, per kind, their **success rate** (recovered / verified attempts; pending ones have no
  verdict yet and skipped ones did not run);
- escalations (the policy chose ``escalate``, or an action did not recover) and approval requests (rule
  ``approval``), each approval with the manual run of the proposed action that followed it, if any;
- the **time spent in breach**: the union of its incidents' open intervals within the period;
- the indicators seen at each decision and after each verification, next to the intent's objectives (the plots);
- **suggestions** drawn from the record, each naming its evidence (journal ids), see :data:`SUGGESTION_RULES`.

Statistics (median, mean) come from Python's :mod:`statistics`.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import parse_datetime

#: Objective -> the indicator it is judged on, and how it is shown.
OBJECTIVE_INDICATORS: dict[str, tuple[str, str, str]] = {
    "max_latency_ms": ("latency_p99_ms", "p99 latency", " ms"),
    "max_error_rate": ("error_rate", "error rate", "%"),
    "availability": ("availability", "availability", "%"),
}
VERDICTS = ("recovered", "not_recovered", "failed")
MIN_ATTEMPTS = 2  # an action kind is judged ineffective from this many verified attempts on
MIN_REPEATS = 2  # a pattern (breach at the cap, blind escalation ...) is worth a suggestion from this many on
CORRELATION_SECONDS = 600  # escalations of several services closer than this to each other look correlated
MIN_CORRELATED = 3  # that many correlated escalations (of at least two services) suggest a shared cause
APPROVAL_FOLLOW_UP = timedelta(hours=24)  # a manual run of the proposed action this soon answers an approval
MANUAL_RULE = "manual"
SUGGESTION_RULES = (
    "ineffective-action",  # an action did not recover the same alert in most of its verified attempts
    "breach-at-cap",  # scale_up was wanted but the service was already at max_replicas
    "correlated-escalations",  # several services escalated together: one shared cause rather than many
    "blind",  # escalated because an objective's indicator was unknown
    "circuit-breaker",  # too many actions in an hour
    "always-approved",  # every approval request for an action was followed by a manual run of it
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Something to change, in words, with the journal records it is drawn from (``action 12``, ``decision 40``)."""

    rule: str
    text: str
    evidence: tuple[str, ...]
    service: str | None = None  # ``namespace/service``; None for one across services


@dataclass(frozen=True, slots=True)
class IncidentReview:
    id: int
    fingerprint: str
    alert: str
    opened: datetime
    closed: datetime | None
    actions: tuple[str, ...]
    time_to_action: float | None  # seconds
    time_to_recovery: float | None  # seconds


@dataclass(frozen=True, slots=True)
class ActionStats:
    action: str
    attempts: int
    recovered: int
    not_recovered: int
    failed: int
    pending: int
    median_seconds_to_met: float | None

    @property
    def verified(self) -> int:
        return self.recovered + self.not_recovered + self.failed

    @property
    def success_rate(self) -> float | None:
        """Recovered / verified attempts; None when none was verified."""
        return self.recovered / self.verified if self.verified else None


@dataclass(frozen=True, slots=True)
class Escalation:
    at: datetime
    decision_id: int
    action_id: int | None
    why: str


@dataclass(frozen=True, slots=True)
class Approval:
    at: datetime
    decision_id: int
    proposed: str
    params: Mapping[str, Any]
    followed_by: int | None  # the manual decision that ran the proposed action, if any


@dataclass(frozen=True, slots=True)
class DeniedChange:
    """A change the change gate refused (docs/gate.md), with the pipeline's identity as it gave it."""

    at: datetime
    gate_id: int
    change: str
    rule: str
    requested_by: str | None
    change_id: str | None


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator over the period, with the objective it is judged against."""

    name: str
    label: str
    unit: str
    objective: float
    objective_name: str
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class ServiceReview:
    namespace: str
    service: str
    decisions: int
    incidents: tuple[IncidentReview, ...]
    actions: tuple[ActionStats, ...]
    escalations: tuple[Escalation, ...]
    approvals: tuple[Approval, ...]
    breach_seconds: float
    indicators: tuple[Indicator, ...]
    suggestions: tuple[Suggestion, ...]
    median_time_to_action: float | None
    median_time_to_recovery: float | None
    mean_time_to_recovery: float | None
    denied_changes: tuple[DeniedChange, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.service}"


@dataclass(frozen=True, slots=True)
class Review:
    since: datetime
    until: datetime
    services: tuple[ServiceReview, ...]
    suggestions: tuple[Suggestion, ...]  # across services
    truncated: bool = False  # the journal held more decisions than were read

    @property
    def all_suggestions(self) -> tuple[Suggestion, ...]:
        return tuple(s for svc in self.services for s in svc.suggestions) + self.suggestions


# --- inputs --------------------------------------------------------------------------------------------------------


def parse_since(value: str, now: datetime) -> datetime:
    """``7d``, ``36h``, ``90m``, ``2w``, ``600s`` before ``now``, or an ISO 8601 time with a UTC offset."""
    text = str(value).strip()
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    try:
        return parse_datetime(text)  # type: ignore[no-any-return]
    except (ValueError, ValidationError) as exc:
        raise ValidationError(
            "options", "since", f"must be a duration such as 7d, 24h or 30m, or an ISO 8601 time, got {text!r}"
        ) from exc


def describe_period(since: datetime, until: datetime) -> str:
    """``in the last 7 days`` and the like, for suggestions."""
    seconds = (until - since).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size < 1:
            count = round(seconds / size)
            return f"in the last {count} {unit}{'s' if count != 1 else ''}"
    return f"between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M} UTC"


# --- the review ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Service:
    namespace: str
    service: str
    decisions: list[Mapping[str, Any]] = field(default_factory=list)
    incidents: list[Mapping[str, Any]] = field(default_factory=list)
    gates: list[Mapping[str, Any]] = field(default_factory=list)


def build_review(
    decisions: Iterable[Mapping[str, Any]],
    incidents: Iterable[Mapping[str, Any]],
    since: datetime,
    until: datetime,
    truncated: bool = False,
    gates: Iterable[Mapping[str, Any]] = (),
) -> Review:
    """The review of ``[since, until]`` from journal records (any order; records outside the period are ignored)."""
    if until < since:
        raise ValidationError("options", "until", "must not be before since")
    services: dict[tuple[str, str], _Service] = {}

    def entry(record: Mapping[str, Any]) -> _Service:
        key = (str(record["namespace"]), str(record["service"]))
        return services.setdefault(key, _Service(*key))

    for decision in sorted(decisions, key=lambda d: (_time(d["time"]), d["id"])):
        if since <= _time(decision["time"]) <= until:
            entry(decision).decisions.append(decision)
    for incident in sorted(incidents, key=lambda i: (_time(i["opened"]), i["id"])):
        closed = _time(incident["closed"]) if incident.get("closed") else None
        if _time(incident["opened"]) <= until and (closed is None or closed >= since):
            entry(incident).incidents.append(incident)
    for answer in sorted(gates, key=lambda g: (_time(g["time"]), g["id"])):
        if not answer["allowed"] and since <= _time(answer["time"]) <= until:
            entry(answer).gates.append(answer)
    reviews = tuple(_service_review(services[key], since, until) for key in sorted(services))
    across = tuple(_correlated_escalations(reviews))
    return Review(since, until, reviews, across, truncated)


def _service_review(svc: _Service, since: datetime, until: datetime) -> ServiceReview:
    name = f"{svc.namespace}/{svc.service}"
    incidents = tuple(_incident_review(i, svc.decisions) for i in svc.incidents)
    actions = _action_stats(svc.decisions)
    escalations = _escalations(svc.decisions)
    approvals = _approvals(svc.decisions)
    to_action = [i.time_to_action for i in incidents if i.time_to_action is not None]
    to_recovery = [i.time_to_recovery for i in incidents if i.time_to_recovery is not None]
    suggestions = (
        _ineffective_actions(name, svc.decisions, since, until)
        + _breaches_at_cap(name, svc.decisions)
        + _repeated_rule(name, svc.decisions, "blind")
        + _repeated_rule(name, svc.decisions, "circuit-breaker")
        + _always_approved(name, approvals)
    )
    return ServiceReview(
        namespace=svc.namespace,
        service=svc.service,
        decisions=len(svc.decisions),
        incidents=incidents,
        actions=actions,
        escalations=escalations,
        approvals=approvals,
        breach_seconds=_breach_seconds(svc.incidents, since, until),
        indicators=_indicators(svc.decisions),
        suggestions=tuple(suggestions),
        median_time_to_action=statistics.median(to_action) if to_action else None,
        median_time_to_recovery=statistics.median(to_recovery) if to_recovery else None,
        mean_time_to_recovery=statistics.fmean(to_recovery) if to_recovery else None,
        denied_changes=tuple(
            DeniedChange(_time(g["time"]), int(g["id"]), g["change"], g["rule"], g["requested_by"], g["change_id"])
            for g in svc.gates
        ),
    )


def _time(value: str | datetime) -> datetime:
    return parse_datetime(value)  # type: ignore[no-any-return]


def _ran(decisions: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(decision, action) for every action that ran (not skipped), oldest first."""
    pairs = [(d, a) for d in decisions for a in d.get("actions") or [] if a.get("outcome") != "skipped"]
    return sorted(pairs, key=lambda pair: (_time(pair[1]["started"]), pair[1]["id"]))


def _alert_name(decision: Mapping[str, Any]) -> str:
    alert = (decision.get("snapshot") or {}).get("alert") or {}
    return str((alert.get("labels") or {}).get("alertname") or "")


def _met_at(action: Mapping[str, Any]) -> datetime | None:
    record = action.get("effectiveness") or {}
    seconds = record.get("seconds_to_objectives_met")
    if not record.get("recovered") or seconds is None:
        return None
    return _time(action["started"]) + timedelta(seconds=float(seconds))


def _incident_review(incident: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]]) -> IncidentReview:
    opened = _time(incident["opened"])
    closed = _time(incident["closed"]) if incident.get("closed") else None
    mine = [d for d in decisions if d.get("incident_id") == incident["id"]]
    ran = _ran(mine)
    alert = next((name for d in mine if (name := _alert_name(d))), "")
    first = _time(ran[0][1]["started"]) if ran else None
    met = [m for _d, a in ran if (m := _met_at(a)) is not None]
    recovered_at = min(met) if met else closed
    return IncidentReview(
        id=int(incident["id"]),
        fingerprint=str(incident["fingerprint"]),
        alert=alert,
        opened=opened,
        closed=closed,
        actions=tuple(str(a["action"]) for _d, a in ran),
        time_to_action=(first - opened).total_seconds() if first else None,
        time_to_recovery=max(0.0, (recovered_at - opened).total_seconds()) if recovered_at else None,
    )


def _action_stats(decisions: Sequence[Mapping[str, Any]]) -> tuple[ActionStats, ...]:
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for _decision, action in _ran(decisions):
        by_kind.setdefault(str(action["action"]), []).append(action)
    stats = []
    for kind in sorted(by_kind):
        runs = by_kind[kind]
        outcomes = [str(a["outcome"]) for a in runs]
        to_met = [
            float(seconds)
            for a in runs
            if (a.get("effectiveness") or {}).get("recovered")
            and (seconds := (a.get("effectiveness") or {}).get("seconds_to_objectives_met")) is not None
        ]
        stats.append(
            ActionStats(
                action=kind,
                attempts=len(runs),
                recovered=outcomes.count("recovered"),
                not_recovered=outcomes.count("not_recovered"),
                failed=outcomes.count("failed"),
                pending=outcomes.count("pending"),
                median_seconds_to_met=statistics.median(to_met) if to_met else None,
            )
        )
    return tuple(stats)


def _conclusion(decision: Mapping[str, Any]) -> str:
    """The last of a decision's reasons: the rule's conclusion."""
    reasons = (decision.get("decision") or {}).get("reasons") or []
    return str(reasons[-1]) if reasons else ""


def _escalations(decisions: Sequence[Mapping[str, Any]]) -> tuple[Escalation, ...]:
    found: list[Escalation] = []
    for decision in decisions:
        sent = [a for a in decision.get("actions") or [] if a["action"] == "escalate" and a["outcome"] != "skipped"]
        if decision["action"] == "escalate":
            why = f"{decision.get('rule') or 'escalate'}: {_conclusion(decision)}".rstrip(": ")
            found.append(Escalation(_time(decision["time"]), int(decision["id"]), sent[0]["id"] if sent else None, why))
            continue
        for action in sent:
            tried = [a for a in decision.get("actions") or [] if a["action"] != "escalate"]
            why = (
                f"after {tried[0]['action']} ended {tried[0]['outcome']}"
                if tried
                else "after the action did not recover"
            )
            found.append(Escalation(_time(action["started"]), int(decision["id"]), int(action["id"]), why))
    return tuple(sorted(found, key=lambda e: (e.at, e.decision_id)))


def _approvals(decisions: Sequence[Mapping[str, Any]]) -> tuple[Approval, ...]:
    found = []
    for decision in decisions:
        if decision.get("rule") != "approval":
            continue
        at, proposed = _time(decision["time"]), str(decision.get("proposed") or "")
        follow = next(
            (
                d
                for d in decisions
                if d.get("rule") == MANUAL_RULE
                and d["action"] == proposed
                and at <= _time(d["time"]) <= at + APPROVAL_FOLLOW_UP
            ),
            None,
        )
        params = (decision.get("decision") or {}).get("proposed_params") or {}
        found.append(Approval(at, int(decision["id"]), proposed, params, int(follow["id"]) if follow else None))
    return tuple(found)


def _breach_seconds(incidents: Sequence[Mapping[str, Any]], since: datetime, until: datetime) -> float:
    """The union of the incidents' open intervals within ``[since, until]``, in seconds."""
    spans = sorted(
        (max(since, _time(i["opened"])), min(until, _time(i["closed"]) if i.get("closed") else until))
        for i in incidents
    )
    total, end = 0.0, since
    for start, stop in spans:
        start = max(start, end)
        if stop > start:
            total += (stop - start).total_seconds()
            end = stop
    return total


def _indicators(decisions: Sequence[Mapping[str, Any]]) -> tuple[Indicator, ...]:
    """Each declared objective's indicator: at every decision, and after every verification."""
    objectives: dict[str, Any] = {}
    for decision in decisions:  # the latest intent wins
        intent = (decision.get("snapshot") or {}).get("intent") or {}
        objectives = dict(intent.get("objectives") or {}) or objectives
    found = []
    for objective, (name, label, unit) in OBJECTIVE_INDICATORS.items():
        if objectives.get(objective) is None:
            continue
        points: list[tuple[datetime, float]] = []
        for decision in decisions:
            value = (((decision.get("snapshot") or {}).get("observed") or {}).get("metrics") or {}).get(name)
            if value is not None:
                points.append((_time(decision["time"]), float(value)))
            for action in decision.get("actions") or []:
                record = action.get("effectiveness") or {}
                after = (record.get("indicators") or {}).get(name, {}).get("after")
                if after is not None and record.get("verified_at"):
                    points.append((_time(record["verified_at"]), float(after)))
        found.append(Indicator(name, label, unit, float(objectives[objective]), objective, tuple(sorted(points))))
    return tuple(found)


# --- suggestions ---------------------------------------------------------------------------------------------------


def _ids(kind: str, ids: Iterable[Any]) -> tuple[str, ...]:
    return tuple(f"{kind} {i}" for i in ids)


def _ineffective_actions(
    name: str, decisions: Sequence[Mapping[str, Any]], since: datetime, until: datetime
) -> list[Suggestion]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for decision, action in _ran(decisions):
        if action["action"] != "escalate" and action["outcome"] in VERDICTS:
            groups.setdefault((str(action["action"]), _alert_name(decision)), []).append(action)
    found = []
    for (kind, alert), runs in sorted(groups.items()):
        failed = [a for a in runs if a["outcome"] != "recovered"]
        if len(runs) >= MIN_ATTEMPTS and len(failed) * 2 > len(runs):
            what = f"{name}'s {alert}" if alert else name
            text = (
                f"{kind} did not recover {what} in {len(failed)} of {len(runs)} attempts "
                f"{describe_period(since, until)}: find the cause, or remove {kind} from its recovery"
            )
            found.append(Suggestion("ineffective-action", text, _ids("action", (a["id"] for a in failed)), name))
    return found


def _breaches_at_cap(name: str, decisions: Sequence[Mapping[str, Any]]) -> list[Suggestion]:
    capped = [d for d in decisions if d.get("rule") == "scale-up-at-cap"]
    if len(capped) < MIN_REPEATS:
        return []
    cap = (capped[-1].get("decision") or {}).get("evidence", {}).get("max_replicas")
    at = f" {cap}" if cap is not None else ""
    text = (
        f"{name} breached {len(capped)} times with scale_up at max_replicas{at}: raise max_replicas or its "
        "limits (or make each replica cheaper)"
    )
    return [Suggestion("breach-at-cap", text, _ids("decision", (d["id"] for d in capped)), name)]


_RULE_ADVICE = {
    "blind": (
        "was escalated {n} times because an objective's indicator was unknown: fix its Prometheus queries or the "
        "intent's indicators, so that it can be healed unattended"
    ),
    "circuit-breaker": (
        "hit the circuit breaker {n} times (max_actions_per_hour): its actions do not hold, find the cause"
    ),
}


def _repeated_rule(name: str, decisions: Sequence[Mapping[str, Any]], rule: str) -> list[Suggestion]:
    hits = [d for d in decisions if d.get("rule") == rule]
    if len(hits) < MIN_REPEATS:
        return []
    text = f"{name} " + _RULE_ADVICE[rule].format(n=len(hits))
    return [Suggestion(rule, text, _ids("decision", (d["id"] for d in hits)), name)]


def _always_approved(name: str, approvals: Sequence[Approval]) -> list[Suggestion]:
    found = []
    for proposed in sorted({a.proposed for a in approvals}):
        asked = [a for a in approvals if a.proposed == proposed]
        if len(asked) >= MIN_REPEATS and all(a.followed_by is not None for a in asked):
            text = (
                f"{name} asked a human to approve {proposed} {len(asked)} times and each time it was run by hand: "
                f"consider taking {proposed} off require_approval"
            )
            evidence = _ids("decision", (i for a in asked for i in (a.decision_id, a.followed_by)))
            found.append(Suggestion("always-approved", text, evidence, name))
    return found


def _correlated_escalations(services: Sequence[ServiceReview]) -> list[Suggestion]:
    """Escalations of at least two services, each within CORRELATION_SECONDS of the previous one."""
    escalations = sorted((e.at, e.decision_id, svc.name) for svc in services for e in svc.escalations)
    runs: list[list[tuple[datetime, int, str]]] = []
    for item in escalations:
        if runs and (item[0] - runs[-1][-1][0]).total_seconds() <= CORRELATION_SECONDS:
            runs[-1].append(item)
        else:
            runs.append([item])
    found = []
    for run in runs:
        names = sorted({svc for _at, _id, svc in run})
        if len(run) < MIN_CORRELATED or len(names) < 2:
            continue
        start, end = run[0][0], run[-1][0]
        text = (
            f"the policy escalated {len(run)} correlated breaches of {len(names)} services ({', '.join(names)}) on "
            f"{start:%A %Y-%m-%d} between {start:%H:%M} and {end:%H:%M} UTC: look for a shared cause"
        )
        found.append(Suggestion("correlated-escalations", text, _ids("decision", sorted({i for _a, i, _s in run}))))
    return found
