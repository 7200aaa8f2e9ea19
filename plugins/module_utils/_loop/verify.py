# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Verification after an action: did the service recover, and does it stay recovered?

The "verify" step of the loop. After an action, wait ``settle_seconds``; then look at the service every
``interval`` seconds - with the same gatherer the decision used (:func:`._check.gather`), judged by
:func:`._engine.assess.assess` - until its intent has been met at every look for ``window_seconds`` (``recovered``), or
``timeout_seconds`` have passed since verification began (``not_recovered``).

:func:`watch` is that loop, pure: the look, the clock and the sleep are handed in, so it is tested without a
cluster or real time. :func:`run` is the ``intent_verify`` module's orchestration around it.

When verification ends for a journaled action (``action_id``), :func:`run` records how effective it was
(:func:`effectiveness`): recovered or not, the seconds from the action's start to the objectives being met,
whether the alert resolved (the state of the decision's incident), and how far each indicator moved from the
decision's snapshot to the last look. The review (``_journal.review``) is built on these records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils import _prom
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.assess import Assessment, assess
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    JournalError,
    SelfHealError,
    ValidationError,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import find_intent
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import policy_for
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import METRICS, parse_snapshot
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime, parse_datetime

if TYPE_CHECKING:  # the adapter's shape only; the loop connects through the factory it is given
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import KubeApi

RECOVERED = "recovered"
NOT_RECOVERED = "not_recovered"
OPTIONS = "options"


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to wait and watch; every value in seconds."""

    settle_seconds: float
    interval: float
    window_seconds: float
    timeout_seconds: float

    def __post_init__(self) -> None:
        for name in ("settle_seconds", "window_seconds", "timeout_seconds"):
            if getattr(self, name) < 0:
                raise ValidationError(OPTIONS, name, f"must be 0 or more, got {getattr(self, name):g}")
        if self.interval <= 0:
            raise ValidationError(OPTIONS, "interval", f"must be more than 0, got {self.interval:g}")
        if self.settle_seconds + self.window_seconds > self.timeout_seconds:
            raise ValidationError(
                OPTIONS,
                "timeout_seconds",
                f"{self.timeout_seconds:g} leaves no time to settle ({self.settle_seconds:g}s) and then "
                f"hold the objectives for window_seconds ({self.window_seconds:g}s)",
            )


@dataclass(frozen=True, slots=True)
class Look:
    """One look at the service, ``at`` seconds after verification began."""

    at: float
    met: bool
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # what the caller wants to keep (metrics, warnings)

    def to_dict(self) -> dict[str, Any]:
        return {"at": round(self.at, 1), "met": self.met, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome, every look (oldest first), and for how long the intent was met at the end."""

    outcome: str
    looks: tuple[Look, ...]
    met_for: float
    elapsed: float

    @property
    def last(self) -> Look:
        return self.looks[-1]

    def summary(self, settings: Settings) -> str:
        last = self.last
        if self.outcome == RECOVERED:
            return (
                f"recovered: the intent held for {round(self.met_for, 1):g}s (window_seconds "
                f"{settings.window_seconds:g}) after {len(self.looks)} look(s) in {round(self.elapsed, 1):g}s"
            )
        why = "; ".join(last.reasons) or "the intent is not met"
        held = f", met for the last {round(self.met_for, 1):g}s only" if last.met else ""
        return f"not recovered after {round(self.elapsed, 1):g}s (timeout_seconds): {why}{held}"


def watch(
    look: Callable[[], tuple[Assessment, Mapping[str, Any]]],
    settings: Settings,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Settle, then look every ``interval`` until the intent is met for ``window_seconds`` or the time is up.

    ``look()`` returns the assessment of one fresh snapshot and anything to keep with it. The window counts
    from the first of the uninterrupted run of looks that met the intent, so one bad look starts it over. The
    timeout counts from the start, settling included; the last look is taken at the deadline, never after.
    """
    start = clock()
    if settings.settle_seconds > 0:
        sleep(settings.settle_seconds)
    looks: list[Look] = []
    met_since: float | None = None
    while True:
        assessment, extra = look()
        at = clock() - start
        looks.append(Look(at, assessment.met, assessment.reasons, assessment.evidence, extra))
        if not assessment.met:
            met_since = None
        elif met_since is None:
            met_since = at
        met_for = at - met_since if met_since is not None else 0.0
        if met_since is not None and met_for >= settings.window_seconds:
            return Verification(RECOVERED, tuple(looks), met_for, at)
        remaining = settings.timeout_seconds - at
        if remaining <= 0:
            return Verification(NOT_RECOVERED, tuple(looks), met_for, at)
        sleep(min(settings.interval, remaining))


def effectiveness(
    verification: Verification,
    began: datetime,
    action_started: datetime,
    before: Mapping[str, Any],
    incident_status: str | None,
) -> dict[str, Any]:
    """How effective an action was, as journaled when its verification ends.

    ``began`` is when verification began (wall clock), ``action_started`` when the action started, ``before`` the
    indicators of the snapshot the decision was made on, ``incident_status`` the state of the decision's incident
    (``open``/``closed``; ``None`` when no alert was involved). ``seconds_to_objectives_met`` counts from the
    action's start to the first look of the run of looks that met the intent to the end (``None`` when not
    recovered); ``alert_resolved`` is ``None`` without an incident. Each indicator known before or after has
    ``before``, ``after`` and, when both are known, ``moved`` (after minus before).
    """
    recovered = verification.outcome == RECOVERED
    met_at = began + timedelta(seconds=verification.elapsed - verification.met_for)
    after = verification.last.extra.get("metrics") or {}
    indicators: dict[str, dict[str, float | None]] = {}
    for name in METRICS:
        old, new = before.get(name), after.get(name)
        if old is None and new is None:
            continue
        moved = round(float(new) - float(old), 3) if old is not None and new is not None else None
        indicators[name] = {"before": old, "after": new, "moved": moved}
    return {
        "recovered": recovered,
        "outcome": verification.outcome,
        "seconds_to_objectives_met": (
            round(max(0.0, (met_at - action_started).total_seconds()), 1) if recovered else None
        ),
        "alert_resolved": None if incident_status is None else incident_status == "closed",
        "indicators": indicators,
        "looks": len(verification.looks),
        "verified_at": format_datetime(began + timedelta(seconds=verification.elapsed)),
    }


def settings_from(params: Mapping[str, Any]) -> Settings:
    """The module's options (defaults in ``_argspec.intent_verify_spec``) as validated settings."""
    names = ("settle_seconds", "interval", "window_seconds", "timeout_seconds")
    return Settings(*(float(params[name]) for name in names))


def looker(
    intent: Mapping[str, Any], policy: Mapping[str, Any], kube: KubeApi, prom: _prom.PromClient | None
) -> Callable[[], tuple[Assessment, Mapping[str, Any]]]:
    """The ``look`` of :func:`watch` for one service: gather with the decision's own gatherer, then assess.

    The first look must succeed (a missing Deployment fails at once); a later look that cannot gather counts as
    a look that does not meet the intent, so a brief API outage does not abort. Used by ``intent_verify`` and by
    the event sources' warm checker alike."""
    namespace, service = str(intent["namespace"]), str(intent["service"])
    looked = False

    def look() -> tuple[Assessment, Mapping[str, Any]]:
        nonlocal looked
        try:
            data, warnings = _check.gather(dict(intent), dict(policy), None, datetime.now(UTC), kube, prom, None)
        except SelfHealError as exc:
            if not looked:
                raise
            return Assessment(False, (f"cannot gather: {exc}",), {}), {"metrics": {}, "warnings": [str(exc)]}
        looked = True
        snapshot = parse_snapshot(data, f"{namespace}/{service}")
        return assess(snapshot), {"metrics": data["observed"]["metrics"], "warnings": warnings}

    return look


def run(
    params: Mapping[str, Any],
    kube_factory: Callable[[], KubeApi],
    check_mode: bool,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The ``intent_verify`` module: gather and judge until recovered or out of time (one look in check mode).

    Reads only. The first look must succeed (a missing intent or Deployment fails at once); a later look that
    cannot gather counts as a look that does not meet the intent, so a brief API outage does not abort.
    """
    settings = settings_from(params)
    namespace, service = params["namespace"], params["service"]
    intent = find_intent(_check.intents_from(params.get("intents")), namespace, service)
    if intent is None:
        raise ValidationError(OPTIONS, "intents", f"no intent for service {namespace}/{service}: nothing to verify")
    policy = policy_for(_check.policy_from(params.get("policy")), namespace, service)
    prom = _prom.PromClient(params["prometheus_url"]) if params.get("prometheus_url") else None
    look = looker(intent, policy, kube_factory(), prom)
    if check_mode:  # nothing was changed, so there is nothing to wait for: report one look
        settings = Settings(0, settings.interval, 0, 0)
    action_id = params.get("action_id")
    journaled = _journaled_action(params, namespace, service, action_id) if action_id is not None else None
    began = datetime.now(UTC)
    verification = watch(look, settings, clock, sleep)
    last = verification.last
    msg = verification.summary(settings)
    if check_mode:
        msg = "check mode, one look without waiting: " + ("the intent is met" if last.met else msg)
    record = None
    if journaled is not None:
        record = _record(params, int(action_id or 0), journaled, verification, began, check_mode)
    return {
        "changed": record is not None and not check_mode,
        "effectiveness": record,
        "outcome": verification.outcome,
        "recovered": verification.outcome == RECOVERED,
        "msg": msg,
        "reasons": list(last.reasons),
        "evidence": dict(last.evidence),
        "metrics": dict(last.extra.get("metrics") or {}),
        "gather_warnings": list(last.extra.get("warnings") or []),
        "looks": [item.to_dict() for item in verification.looks],
        "met_for_seconds": round(verification.met_for, 1),
        "elapsed_seconds": round(verification.elapsed, 1),
    }


@dataclass(frozen=True, slots=True)
class _Journaled:
    """What the journal holds about the action being verified: when it started, and its decision."""

    started: datetime
    before: Mapping[str, Any]
    incident_id: int | None


def _journaled_action(params: Mapping[str, Any], namespace: str, service: str, action_id: int) -> _Journaled:
    """Find the action (and its decision's snapshot) before waiting, so a wrong ``action_id`` fails at once."""
    with Journal(params.get("journal") or None) as journal:
        for decision in journal.query(namespace=namespace, service=service, limit=_SEARCH_LIMIT):
            action = next((a for a in decision["actions"] if a["id"] == action_id), None)
            if action is None:
                continue
            moment = parse_datetime(decision["time"])
            exact = journal.query(
                namespace=namespace, service=service, since=moment, until=moment, include_snapshot=True
            )
            snapshot: dict[str, Any] = next((d["snapshot"] for d in exact if d["id"] == decision["id"]), {})
            metrics = ((snapshot.get("observed") or {}).get("metrics")) or {}
            return _Journaled(parse_datetime(action["started"]), metrics, decision["incident_id"])
    raise ValidationError(
        OPTIONS, "action_id", f"no action {action_id} of {namespace}/{service} among its last {_SEARCH_LIMIT} decisions"
    )


_SEARCH_LIMIT = 1000


def _record(
    params: Mapping[str, Any],
    action_id: int,
    journaled: _Journaled,
    verification: Verification,
    began: datetime,
    check_mode: bool,
) -> dict[str, Any]:
    """Compute the action's effectiveness when its verification ends, and journal it (not in check mode)."""
    with Journal(params.get("journal") or None) as journal:
        status = None
        if journaled.incident_id is not None:
            found = [
                i
                for i in journal.incidents(namespace=params["namespace"], service=params["service"], limit=1000)
                if i["id"] == journaled.incident_id
            ]
            status = found[0]["status"] if found else None
        record = effectiveness(verification, began, journaled.started, journaled.before, status)
        if not check_mode:
            try:
                journal.record_effectiveness(action_id, record)
            except JournalError as exc:
                raise JournalError(f"verified {params['namespace']}/{params['service']} but {exc}") from exc
    return record
