# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""What a snapshot shows, computed once: the facts the decision (:mod:`._engine.decide`), the verifier and the
watch (:mod:`._engine.assess`) judge alike.

An objective is breached when its metric is known and on the wrong side of it (equal is met); the workload proves
a failure by itself (zero desired replicas, failing pods, too few ready replicas unless a recent rollout explains
the gap). reasons and evidence accumulate as rules look at the facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import Intent
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.objects import RESTART_CANNOT_CURE
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import REMEDIATIONS, Policy
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import (
    HistoryEntry,
    Pod,
    Revision,
    Snapshot,
    Workload,
)

CRASH_RESTARTS_15M = 3  # this many restarts in 15 minutes is a crash loop even without the reason

# Pod reasons, grouped by what a restart can do about them.
_CRASHING = frozenset({"CrashLoopBackOff", "OOMKilled", "Error", "Evicted"})
_NOT_READY = frozenset({"Unhealthy", "ReadinessProbeFailed", "NotReady", "ContainersNotReady"})
_STARTING = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(slots=True)
class Facts:
    """What the snapshot shows, computed once; ``reasons``/``evidence`` accumulate as rules look at it."""

    snapshot: Snapshot
    intent: Intent
    policy: Policy
    now: datetime
    workload: Workload
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    breached: list[str] = field(default_factory=list)  # objective names
    unknown: list[str] = field(default_factory=list)  # objective names whose metric is unknown
    failing_pods: list[tuple[Pod, str]] = field(default_factory=list)  # (pod, state)
    workload_failed: bool = False
    rollout: Revision | None = None  # the current revision, when it is a recent change
    rollout_age: float | None = None
    actions: list[HistoryEntry] = field(default_factory=list)  # remediations in the history, oldest first


def num(value: float | int) -> str:
    """480.0 -> "480", 0.5 -> "0.5": numbers as a person writes them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def minutes_before(now: datetime, then: datetime) -> float:
    # Entries after now (clock skew between writers) count as now: the safe side for every guardrail.
    return max(0.0, (now - then).total_seconds() / 60)


def ago(minutes: float) -> str:
    return num(round(minutes, 1))


def pod_state(pod: Pod) -> str:
    """crashing | not_ready | starting | unfixable | other - what a restart can do about this pod."""
    reason = pod.reason or ""
    crash_looping = (pod.restarts_15m or 0) >= CRASH_RESTARTS_15M
    if pod.ready is True and not crash_looping:
        return "starting"  # serving again (e.g. after one OOM kill): nothing to fix
    if reason in _CRASHING or crash_looping or pod.phase == "Failed":
        return "crashing"
    if reason in RESTART_CANNOT_CURE:
        return "unfixable"
    if reason in _STARTING or (pod.phase in ("Pending", None) and not reason):
        return "starting"
    if reason in _NOT_READY or (pod.phase == "Running" and not reason):
        return "not_ready"
    return "other" if pod.phase != "Running" else "not_ready"


def pod_text(pod: Pod) -> str:
    details = [pod.reason or pod.phase or "not ready"]
    if pod.restarts_15m:
        details.append(f"{pod.restarts_15m} restarts in 15 min")
    where = f" on {pod.node}" if pod.node else ""
    return f"{pod.name}{where} ({', '.join(details)})"


def judge_objectives(facts: Facts) -> None:
    objectives, metrics = facts.intent.objectives, facts.snapshot.observed.metrics
    # (objective, limit, indicator, observed value, label, unit of the value, unit of the limit)
    checks = (
        (
            "max_latency_ms",
            objectives.max_latency_ms,
            "latency_p99_ms",
            metrics.latency_p99_ms,
            "p99 latency",
            " ms",
            "",
        ),
        ("max_error_rate", objectives.max_error_rate, "error_rate", metrics.error_rate, "error rate", "%", "%"),
        ("availability", objectives.availability, "availability", metrics.availability, "availability", "%", "%"),
    )
    for objective, limit, indicator, value, label, unit, limit_unit in checks:
        if limit is None:
            continue
        facts.evidence[objective] = limit
        if value is None:
            facts.unknown.append(objective)
            facts.reasons.append(f"{label} is unknown, so {objective} {num(limit)}{limit_unit} cannot be judged")
            continue
        facts.evidence[indicator] = value
        if not breaches(objective, limit, value):
            continue
        facts.breached.append(objective)
        if objective == "availability":
            facts.reasons.append(f"availability {num(value)}% is below the availability objective {num(limit)}%")
        else:
            facts.reasons.append(f"{label} {num(value)}{unit} breaches {objective} {num(limit)}{limit_unit}")


def breaches(objective: str, limit: float, value: float) -> bool:
    """Principle 1: availability below its objective, latency or errors above theirs; equal is met."""
    return value < limit if objective == "availability" else value > limit


def find_rollout(facts: Facts) -> None:
    workload = facts.workload
    current = next((r for r in workload.revisions if r.revision == workload.revision), None)
    if current is None:
        return
    age = minutes_before(facts.now, current.created)
    if age <= facts.policy.recent_change_minutes:
        facts.rollout, facts.rollout_age = current, age
        facts.evidence.update(revision=current.revision, rollout_age_minutes=round(age, 1))


def judge_workload(facts: Facts) -> None:
    workload = facts.workload
    facts.failing_pods = [(pod, state) for pod in workload.pods if (state := pod_state(pod)) != "starting"]
    if workload.replicas is not None:
        facts.evidence["replicas"] = workload.replicas
    if workload.replicas == 0:
        facts.workload_failed = True
        facts.reasons.append("desired replicas is 0: nothing serves the service")
    if facts.failing_pods:
        facts.workload_failed = True
        facts.evidence["failing_pods"] = len(facts.failing_pods)
        facts.reasons.append(f"pods not running cleanly: {'; '.join(pod_text(p) for p, _why in facts.failing_pods)}")
    ready, desired = workload.ready_replicas, workload.replicas
    if ready is not None and desired is not None and ready < desired:
        facts.evidence["ready_replicas"] = ready
        if facts.rollout is not None and not facts.failing_pods:
            facts.reasons.append(
                f"{ready} of {desired} replicas ready while the rollout of revision {facts.rollout.revision} progresses"
            )
        else:
            facts.workload_failed = True
            facts.reasons.append(f"only {ready} of {desired} replicas are ready")


def build_facts(snapshot: Snapshot, intent: Intent) -> Facts:
    facts = Facts(
        snapshot=snapshot,
        intent=intent,
        policy=snapshot.policy,
        now=snapshot.now,
        workload=snapshot.observed.workload or Workload(),
        actions=[entry for entry in snapshot.history if entry.action in REMEDIATIONS],
    )
    judge_objectives(facts)
    find_rollout(facts)
    judge_workload(facts)
    return facts
