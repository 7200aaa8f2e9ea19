# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The change gate: may a pipeline change a service now? ``judge_change(snapshot, change, ...) -> GateAnswer``.

Pure and deterministic, like :func:`._engine.decide.decide`, and judged on the same snapshot, with the same
objective checks (:func:`check_objectives`), the same policy windows (:func:`active_freeze`, :func:`in_window`)
and the same error-budget burn as the intent watch (:mod:`._engine.objectives`). What the snapshot cannot
carry - the burn error rate, the remediation lock, the loop's rollbacks - comes in as :class:`GateEvidence`
(the ``gate`` block of a recorded gate snapshot, see :func:`split_document`).

The rules (``docs/decisions.md``, "The change gate"); every one is looked at and every denial is reported:

* ``freeze`` - inside a freeze window (start inclusive, end exclusive) -> deny any change;
* ``peak-hours`` - inside ``peak_hours`` when ``block_changes_during_peak`` -> deny any change;
* ``impact`` - an objective is breached -> deny, unless the change is a fix (``rollback``, ``patch``);
* ``fast-burn`` - the error budget burns at least ``burn_threshold`` times as fast as allowed (the watch's
  fast burn, the threshold itself included) -> deny, unless the change is a fix;
* ``blind`` - a metric those two rules need is unknown -> deny, unless ``allow_unknown`` (or a fix, which they
  do not judge): the gate never answers blind;
* ``remediation-locked`` - a remediation holds the service's lock (a Lease not yet expired) -> deny any change;
* ``remediation-pending`` - a remediation of the service is journaled ``pending`` (started, not yet verified)
  -> deny any change;
* ``bad-release-streak`` - the last two deploys within ``recent_change_minutes x 4`` were both rolled back by the
  loop -> deny a ``deploy``, unless ``force`` with a ``reason`` (a human vouches for the next release);
* otherwise ``allow``.

``retry_after`` is set when every denial ends at a known time (a freeze, peak hours, a streak leaving its
window): the first instant at which none of them denies any more. A denial with no known end (a breach, a lock,
a pending verification) leaves it unset.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.assess import check_objectives
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.objectives import (
    FAST_BURN_RATE,
    burn_rate,
    error_budget,
    is_fast_burn,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import DecisionError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import intent_to_dict
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import (
    REMEDIATIONS,
    Policy,
    Window,
    active_freeze,
    in_window,
    window_to_dict,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import Snapshot
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import (
    Schema,
    format_datetime,
    get_zone,
    parse_datetime,
)

CHANGES = ("deploy", "config", "scale", "patch", "rollback")
FIXES = ("rollback", "patch")  # changes that repair a breach: the impact, burn and blind rules let them through
RELEASES = ("deploy",)  # changes the bad-release streak holds back
STREAK = 2  # this many deploys in a row rolled back by the loop is a streak of bad releases
STREAK_WINDOW_FACTOR = 4  # ... counted within recent_change_minutes x this
ROLLED_BACK = ("pending", "recovered", "not_recovered")  # a loop rollback that ran (failed/skipped did not)
RULES = (
    "freeze",
    "peak-hours",
    "impact",
    "fast-burn",
    "blind",
    "remediation-locked",
    "remediation-pending",
    "bad-release-streak",
)
_MAX_WINDOW_STEPS = 64  # freezes and peak hours chained back to back, looked through for retry_after


# --- what the snapshot does not carry -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lock:
    """Who holds the service's remediation lock and until when (None: no expiry known, so held)."""

    holder: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LoopRollback:
    """A rollback the loop decided (rule ``rollback``): when it started, which revision it removed, its outcome."""

    at: datetime
    revision: int | None
    outcome: str
    deployed_at: datetime | None = None  # when the removed revision was rolled out, as the decision saw it


@dataclass(frozen=True, slots=True)
class GateEvidence:
    """The gate's inputs beyond the snapshot: the burn error rate (percent over ``burn_window``; None unknown),
    the lock, and the loop's rollbacks of the service (any order)."""

    burn_error_rate: float | None = None
    burn_window: str | None = None
    lock: Lock | None = None
    rollbacks: tuple[LoopRollback, ...] = ()


@dataclass(frozen=True, slots=True)
class GateAnswer:
    """Whether ``change`` may go ahead, why (``reasons``, each naming its rule), on which numbers (``evidence``).

    ``denied_by`` lists the rules that deny (empty when allowed); ``forced`` says that ``force`` lifted a
    ``bad-release-streak`` denial; ``retry_after`` is the first instant the windows that deny have all ended.
    """

    allowed: bool
    change: str
    reasons: tuple[str, ...]
    denied_by: tuple[str, ...]
    evidence: Mapping[str, Any]
    retry_after: datetime | None = None
    forced: bool = False
    force_reason: str | None = None

    @property
    def rule(self) -> str:
        return "allow" if self.allowed else self.denied_by[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "change": self.change,
            "rule": self.rule,
            "reasons": list(self.reasons),
            "denied_by": list(self.denied_by),
            "evidence": dict(self.evidence),
            "retry_after": format_datetime(self.retry_after) if self.retry_after else None,
            "forced": self.forced,
            "force_reason": self.force_reason,
        }


# --- the gate block of a recorded gate snapshot ---------------------------------------------------------------

_TIME = {"type": "string", "format": "date-time"}
GATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "burn_error_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
        "burn_window": {"type": ["string", "null"]},
        "lock": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": ["holder"],
            "properties": {
                "holder": {"type": "string", "minLength": 1},
                "expires_at": {**_TIME, "type": ["string", "null"]},
            },
        },
        "rollbacks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["at", "outcome"],
                "properties": {
                    "at": _TIME,
                    "revision": {"type": ["integer", "null"], "minimum": 1},
                    "outcome": {"type": "string"},
                    "deployed_at": {**_TIME, "type": ["string", "null"]},
                },
            },
        },
    },
}
_GATE = Schema(GATE_SCHEMA)


def _time(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def split_document(data: Mapping[str, Any], source: str) -> tuple[dict[str, Any], GateEvidence]:
    """A recorded gate snapshot -> (the snapshot document, the gate evidence of its ``gate`` block).

    A plain snapshot (no ``gate`` block) has no evidence: its burn is unknown, nothing holds a lock, the loop
    rolled nothing back.
    """
    document = dict(data)
    block = document.pop("gate", None) or {}
    _GATE.validate(block, source, "gate")
    lock = block.get("lock")
    evidence = GateEvidence(
        burn_error_rate=block.get("burn_error_rate"),
        burn_window=block.get("burn_window"),
        lock=Lock(lock["holder"], _time(lock.get("expires_at"))) if lock else None,
        rollbacks=tuple(
            LoopRollback(parse_datetime(r["at"]), r.get("revision"), r["outcome"], _time(r.get("deployed_at")))
            for r in block.get("rollbacks") or []
        ),
    )
    return document, evidence


def evidence_to_dict(evidence: GateEvidence) -> dict[str, Any]:
    """The ``gate`` block of a gate snapshot (the inverse of :func:`split_document`)."""
    lock = evidence.lock
    return {
        "burn_error_rate": evidence.burn_error_rate,
        "burn_window": evidence.burn_window,
        "lock": (
            {"holder": lock.holder, "expires_at": format_datetime(lock.expires_at) if lock.expires_at else None}
            if lock
            else None
        ),
        "rollbacks": [
            {
                "at": format_datetime(r.at),
                "revision": r.revision,
                "outcome": r.outcome,
                "deployed_at": format_datetime(r.deployed_at) if r.deployed_at else None,
            }
            for r in evidence.rollbacks
        ],
    }


def check_change(change: str) -> str:
    """The change kind, or a ValidationError naming the kinds that exist."""
    if change not in CHANGES:
        raise ValidationError(
            "options", "change", f"unknown change kind {change!r}; the kinds are {', '.join(CHANGES)}"
        )
    return change


# --- the rules ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Verdict:
    denials: list[tuple[str, str]] = field(default_factory=list)  # (rule, reason)
    passes: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    ends: list[datetime] = field(default_factory=list)  # when fixed-time denials end (a streak)
    open_ended: bool = False  # a denial with no known end

    def deny(self, rule: str, reason: str, *, ends: datetime | None = None) -> None:
        self.denials.append((rule, f"{rule}: {reason}"))
        if ends is not None:
            self.ends.append(ends)
        elif rule not in ("freeze", "peak-hours"):
            self.open_ended = True


def _num(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "infinite"
    rounded = round(float(value), 3)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


def _peak_blocks(policy: Policy) -> Window | None:
    return policy.peak_hours if policy.block_changes_during_peak and policy.peak_hours is not None else None


def _windows(verdict: _Verdict, policy: Policy, now: datetime) -> None:
    freeze = active_freeze(policy.freeze_windows, now)
    if freeze is not None:
        why = f" ({freeze.reason})" if freeze.reason else ""
        verdict.evidence["freeze"] = {
            "start": format_datetime(freeze.start),
            "end": format_datetime(freeze.end),
            "reason": freeze.reason,
        }
        verdict.deny(
            "freeze",
            f"inside the freeze {format_datetime(freeze.start)} to {format_datetime(freeze.end)}{why}; "
            f"it ends at {format_datetime(freeze.end)}",
        )
    else:
        verdict.passes.append("freeze: no freeze window is active")
    peak = _peak_blocks(policy)
    if peak is not None and in_window(peak, now):
        verdict.evidence["peak_hours"] = window_to_dict(peak)
        verdict.deny(
            "peak-hours",
            f"inside peak hours {_window_text(peak)} and block_changes_during_peak is true; they end at "
            f"{format_datetime(window_end(peak, now))}",
        )
    elif peak is not None:
        verdict.passes.append(f"peak-hours: outside peak hours {_window_text(peak)}")


def _window_text(window: Window) -> str:
    data = window_to_dict(window)
    return f"{','.join(data['days'])} {data['start']}-{data['end']} {data['timezone']}"


def window_end(window: Window, at: datetime) -> datetime:
    """The end of the occurrence of a weekly window that contains ``at`` (a wall-clock time in its own zone)."""
    zone = get_zone(window.timezone)
    local = at.astimezone(zone)
    day = local.date()
    if window.end <= window.start and local.hour * 60 + local.minute >= window.start:
        day += timedelta(days=1)  # the evening part of a window that crosses midnight ends tomorrow
    # Wall-clock arithmetic on an aware datetime: midnight + 17h is 17:00 local, whatever DST did that day.
    end = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=window.end)
    return end.astimezone(UTC)


def _objectives(
    verdict: _Verdict, snapshot: Snapshot, change: str, evidence: GateEvidence, threshold: float
) -> list[str]:
    """Impact and burn; returns what is unknown among what those rules need."""
    if change in FIXES:
        verdict.passes.append(f"impact: a {change} is a fix, let through whatever the objectives show")
        return []
    check = check_objectives(snapshot)
    verdict.evidence.update(check.evidence)
    unknown = list(check.unknown)
    if check.breached:
        breaches = [r for r in check.reasons if " is unknown, so " not in r]
        verdict.deny("impact", f"{'; '.join(breaches)}: only a fix (rollback, patch) may change the service now")
    elif not check.unknown:
        verdict.passes.append("impact: every declared objective is met")
    objectives = intent_to_dict(snapshot.intent).get("objectives") or {} if snapshot.intent else {}
    if threshold <= 0 or error_budget(objectives) is None:
        verdict.passes.append("fast-burn: not judged (no objective bounds errors, or burn_threshold is 0)")
        return unknown
    burn = burn_rate(objectives, evidence.burn_error_rate)
    verdict.evidence.update(burn_threshold=threshold, burn_error_rate=evidence.burn_error_rate)
    window = f" over {evidence.burn_window}" if evidence.burn_window else ""
    if burn is None:
        unknown.append("burn_rate")
        return unknown
    verdict.evidence["burn_rate"] = burn if math.isfinite(burn) else "inf"
    text = (
        f"the error budget burns {_num(burn)} times as fast as the objectives allow (error rate "
        f"{_num(evidence.burn_error_rate or 0)}%{window}; fast from {_num(threshold)}x)"
    )
    if is_fast_burn(burn, threshold):
        verdict.deny("fast-burn", f"{text}: only a fix (rollback, patch) may change the service now")
    else:
        verdict.passes.append(f"fast-burn: {text}")
    return unknown


def _blind(verdict: _Verdict, unknown: list[str], allow_unknown: bool) -> None:
    if not unknown:
        return
    verdict.evidence["unknown"] = list(unknown)
    what = ", ".join(unknown)
    if allow_unknown:
        verdict.passes.append(f"blind: {what} unknown, judged without them because allow_unknown is true")
    else:
        verdict.deny("blind", f"{what} unknown, so the change cannot be judged: the gate never answers blind")


def _remediation(verdict: _Verdict, snapshot: Snapshot, lock: Lock | None) -> None:
    now = snapshot.now
    if lock is not None and (lock.expires_at is None or lock.expires_at > now):
        until = f" until {format_datetime(lock.expires_at)}" if lock.expires_at else ""
        verdict.evidence["lock"] = {
            "holder": lock.holder,
            "expires_at": format_datetime(lock.expires_at) if lock.expires_at else None,
        }
        verdict.deny("remediation-locked", f"{lock.holder} holds the remediation lock{until}")
    else:
        verdict.passes.append("remediation-locked: no remediation holds the lock")
    pending = [h for h in snapshot.history if h.outcome == "pending" and h.action in REMEDIATIONS]
    if pending:
        verdict.evidence["pending"] = [{"action": h.action, "at": format_datetime(h.at)} for h in pending]
        started = ", ".join(f"{h.action} started at {format_datetime(h.at)}" for h in pending)
        verdict.deny("remediation-pending", f"{started}: still waiting for verification")
    else:
        verdict.passes.append("remediation-pending: no remediation waits for verification")


@dataclass(frozen=True, slots=True)
class _Deploy:
    revision: int
    at: datetime
    image: str | None = None


def _deploys(snapshot: Snapshot, rollbacks: Sequence[LoopRollback], since: datetime) -> list[_Deploy]:
    """The deploys within [since, now], oldest first: revisions rolled out then, and those the loop removed."""
    now = snapshot.now
    found: dict[int, _Deploy] = {}
    workload = snapshot.observed.workload
    for revision in workload.revisions if workload is not None else ():
        found[revision.revision] = _Deploy(revision.revision, revision.created, revision.image)
    for rollback in rollbacks:
        if rollback.revision is not None and rollback.revision not in found:
            found[rollback.revision] = _Deploy(rollback.revision, rollback.deployed_at or rollback.at)
    return sorted((d for d in found.values() if since <= min(d.at, now) <= now), key=lambda d: (d.at, d.revision))


def _streak(
    verdict: _Verdict,
    snapshot: Snapshot,
    change: str,
    rollbacks: Sequence[LoopRollback],
    force: bool,
    reason: str | None,
) -> bool:
    """The bad-release streak; returns whether ``force`` lifted it."""
    if change not in RELEASES:
        return False
    window = timedelta(minutes=snapshot.policy.recent_change_minutes * STREAK_WINDOW_FACTOR)
    since = snapshot.now - window
    ran = [r for r in rollbacks if r.outcome in ROLLED_BACK and r.revision is not None]
    deploys = _deploys(snapshot, ran, since)
    last = deploys[-STREAK:]
    rolled_back = {r.revision: r for r in ran}
    minutes = _num(window.total_seconds() / 60)
    if len(last) < STREAK or not all(d.revision in rolled_back and rolled_back[d.revision].at >= d.at for d in last):
        verdict.passes.append(
            f"bad-release-streak: the last {STREAK} deploys within {minutes} min were not all rolled back"
        )
        return False
    verdict.evidence["rolled_back_deploys"] = [
        {
            "revision": d.revision,
            "deployed": format_datetime(d.at),
            "rolled_back": format_datetime(rolled_back[d.revision].at),
        }
        for d in last
    ]
    text = "; ".join(
        f"revision {d.revision}{f' ({d.image})' if d.image else ''} deployed at {format_datetime(d.at)} was rolled "
        f"back by the loop at {format_datetime(rolled_back[d.revision].at)}"
        for d in last
    )
    why = (
        f"the last {STREAK} deploys within recent_change_minutes x {STREAK_WINDOW_FACTOR} ({minutes} min) were "
        f"rolled back: {text}"
    )
    if force:
        verdict.passes.append(f"bad-release-streak: {why}; overridden by force: {reason}")
        return True
    verdict.deny(
        "bad-release-streak",
        f"{why}; a human may vouch for the next release with force and a reason",
        ends=last[0].at + window,
    )
    return False


def _retry_after(policy: Policy, now: datetime, ends: Iterable[datetime]) -> datetime:
    """The first instant from ``now`` on, and not before ``ends``, outside every freeze and blocked peak hours."""
    moment = max([now, *ends])
    peak = _peak_blocks(policy)
    for _step in range(_MAX_WINDOW_STEPS):
        freeze = active_freeze(policy.freeze_windows, moment)
        if freeze is not None:
            moment = freeze.end
        elif peak is not None and in_window(peak, moment):
            later = window_end(peak, moment)
            moment = later if later > moment else moment + timedelta(minutes=1)
        else:
            return moment
    return moment


def judge_change(
    snapshot: Snapshot,
    change: str,
    *,
    force: bool = False,
    reason: str | None = None,
    allow_unknown: bool = False,
    evidence: GateEvidence | None = None,
    burn_threshold: float = FAST_BURN_RATE,
) -> GateAnswer:
    """May ``change`` go ahead on the service of ``snapshot`` now? (see the module docstring for the rules)."""
    if not isinstance(snapshot, Snapshot) or snapshot.intent is None:
        raise DecisionError("judge_change() needs a parsed Snapshot with an intent")
    check_change(change)
    if force and not (reason or "").strip():
        raise ValidationError("options", "reason", "is required with force: say why the gate may be overridden")
    evidence = evidence or GateEvidence()
    verdict = _Verdict()
    verdict.evidence.update(change=change, service=snapshot.intent.key, now=format_datetime(snapshot.now))
    _windows(verdict, snapshot.policy, snapshot.now)
    unknown = _objectives(verdict, snapshot, change, evidence, burn_threshold)
    _blind(verdict, unknown, allow_unknown)
    _remediation(verdict, snapshot, evidence.lock)
    forced = _streak(verdict, snapshot, change, evidence.rollbacks, force, reason)
    denied_by = tuple(dict.fromkeys(rule for rule, _text in verdict.denials))
    if denied_by:
        reasons = tuple(text for _rule, text in verdict.denials)
        if force:
            reasons += (f"force only lifts bad-release-streak; it does not override {', '.join(denied_by)}",)
        retry = None if verdict.open_ended else _retry_after(snapshot.policy, snapshot.now, verdict.ends)
        return GateAnswer(False, change, reasons, denied_by, verdict.evidence, retry, False, reason if force else None)
    head = f"allow: no rule denies a {change} of {snapshot.intent.key} now"
    return GateAnswer(
        True, change, (head, *verdict.passes), (), verdict.evidence, None, forced, reason if force else None
    )
