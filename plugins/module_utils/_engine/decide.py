# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The decision engine: ``decide(snapshot) -> Decision``, pure and deterministic.

Rules, applied in this order (the principles of ``docs/decisions.md``; each step names its ``rule`` id):

0. **Scope.** No intent for the service (``no-intent``) or a resolved alert (``alert-resolved``) -> ``none``.
1. **Impact.** An objective is breached when its metric is known and on the wrong side of the objective
   (``availability`` below, ``max_latency_ms``/``max_error_rate`` above; equal is met). The workload proves a
   failure by itself when it has zero desired replicas, pods failing (crash-looping, stuck not ready, image or
   config errors, unschedulable ...), or fewer ready than desired replicas - unless a recent rollout explains
   the gap (new pods still starting, none failing).
2. **Never blind.** No proven impact but a declared objective's metric is unknown -> ``escalate`` (``blind``).
   No impact at all -> the quiet path: a pending patch (step 5), else a careful ``scale_down``, else ``none``.
3. **Guardrails that stop any action.** Protected namespace -> ``escalate`` without ``proposed``
   (``protected-namespace``; the diagnosis is still explained). An action within ``cooldown_minutes`` of the
   last one -> ``none`` (``cooldown``) unless that one is recorded ``not_recovered`` or ``failed``.
4. **Cause ranking**, first match wins: ``rollback`` (rollout within ``recent_change_minutes`` and a breach or
   failing pods; to the highest earlier revision; never when that rollout is our own rollback) >
   ``reconcile`` (drift and a breach) > ``scale_up`` to ``min_replicas`` (desired below it) >
   ``restart`` (crash-looping / stuck pods without a recent rollout, or memory >= 90 % of the limit) >
   ``reroute`` (one node not ready, or the only node whose p99 is above ``max_latency_ms``) >
   ``isolate_tenant`` (one tenant sends at least half the requests during a breach) > ``scale_up`` (latency
   breached and CPU >= target: ``ceil(replicas x cpu / target)``, at least one more, capped at ``max_replicas``;
   already at the cap -> ``escalate``) > unhealthy dependency -> ``escalate`` > otherwise ``escalate``.
   A cause is skipped when the intent does not allow its kind, when the same kind was tried on the service
   within the last hour and did not recover it (``not_recovered``, ``failed``, or still ``pending`` after its
   cooldown while the service still breaches), when it failed ``max_failed_attempts`` times within
   ``learning_window_days`` (learning), and (reroute) when one more cordon would widen the blast radius. A
   majority tenant is isolated only when its share grew to 1.5 x its ``baseline_share`` (when known).
5. **Guardrails on the chosen action.** ``max_actions_per_hour`` actions in the last hour -> ``escalate``
   (``circuit-breaker``); the blast radius (``observed.platform``): too many remediations unverified
   (``concurrency-limit``) or more than half of the services breaching (``correlated-breach``, a rollback of the
   service's own rollout excepted) -> ``escalate`` proposing the action; the action listed in ``require_approval``,
   or ``mode: approve`` -> ``escalate`` with ``proposed`` set to it and ``proposed_params`` to its parameters
   (``approval``); ``mode: observe`` -> ``none`` proposing it (``observe``).
6. **Patches** (quiet path only, so a breach is fixed first): never inside a freeze, never in peak hours when
   ``block_changes_during_peak``; ``critical`` may start outside a maintenance window, anything else waits for
   one; otherwise ``none`` (deferred). A due patch then meets the guardrails of steps 3 and 5 (protected
   namespace -> ``escalate``; cooldown -> ``none``; failed this hour -> ``escalate``; breaker; approval).
7. **Scale down** (quiet path, no patch to apply): only when every declared objective is known and met, CPU is at
   most half of ``target_cpu_utilization``, replicas exceed ``min_replicas``, autoscaling is allowed, it is not
   peak hours, and nothing was done to the service in the last hour (no flapping after a scale-up). Size:
   ``max(min_replicas, ceil(replicas x cpu / target))``, which keeps projected CPU at or below the target.

Parameters per action: ``rollback {to_revision}``, ``scale_up``/``scale_down {replicas}``, ``reroute {node}``,
``isolate_tenant {tenant}``, ``patch {image}``, ``reconcile {objects, fields: [{object, field}]}``, ``restart {}``
(a rolling restart of the workload) or ``restart {pods: [...]}`` when only some pods fail and the others serve
(replace just those); ``none`` and ``escalate`` take none.

Rule ids (``Decision.rule``): ``no-intent``, ``alert-resolved``, ``blind``, ``no-impact``, ``protected-namespace``,
``cooldown``, ``rollback``, ``reconcile``, ``scale-to-min``, ``restart``, ``reroute``, ``isolate-tenant``,
``scale-up``, ``scale-up-at-cap``, ``dependency``, ``no-known-cause``, ``circuit-breaker``, ``approval``, ``patch``,
``patch-deferred``, ``patch-applied`` (already running), ``already-tried`` (a patch that failed this hour),
``learned`` (a patch that failed too often lately), ``concurrency-limit``, ``correlated-breach``, ``observe``,
``scale-down``.

Every decision carries human ``reasons`` (objective, evidence, rule) and ``evidence`` (the numbers used).
Time windows ("within the last hour", cooldown, recent change) are closed intervals ending at ``now``; history
entries dated after ``now`` (clock skew) count as happening at ``now``. Never special-cased: scenario ids,
titles, alert names - the alert only decides whether to look (firing) or not (resolved).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.facts import (
    Facts,
    ago,
    build_facts,
    minutes_before,
    num,
    pod_text,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import DecisionError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import (
    REMEDIATIONS,
    active_freeze,
    active_window,
    in_window,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import (
    HistoryEntry,
    Revision,
    Snapshot,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime

ACTIONS = ("none", *REMEDIATIONS, "escalate")

MEMORY_RESTART_PERCENT = 90  # memory at or above this share of its limit -> restart (principle 3)
TENANT_MAJORITY = 0.5  # a tenant sending at least this share of requests is "noisy"...
TENANT_GROWTH = Fraction(3, 2)  # ... when its share is at least this multiple of its baseline share
CORRELATED_MIN_SERVICES = 4  # below this many services, "more than half breach" says nothing about a shared cause
MIN_SCHEDULABLE_NODES = 2  # a reroute never leaves fewer schedulable nodes than this
DAY_MINUTES = 24 * 60
SCALE_DOWN_CPU_DIVISOR = 2  # scale down only when CPU is at most the target divided by this
HOUR_MINUTES = 60
OWN_ROLLOUT_MINUTES = 5  # a revision created this close to one of our rollbacks is that rollback

# Which intent switch allows which action; actions not listed (reconcile, patch) are always allowed.
ALLOWED_BY = {
    "rollback": "rollback_on_regression",
    "scale_up": "allow_autoscale",
    "scale_down": "allow_autoscale",
    "restart": "allow_restart",
    "reroute": "allow_reroute",
    "isolate_tenant": "allow_tenant_isolation",
}
NOT_RECOVERED = ("not_recovered", "failed")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do, why, and on which numbers.

    ``params`` belong to ``action``; with ``escalate`` they are empty and ``proposed``/``proposed_params`` carry
    the action a human is asked to approve, if any. ``rule`` is the id of the rule that decided (see module doc).
    """

    action: str
    params: Mapping[str, Any]
    proposed: str | None
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any]
    proposed_params: Mapping[str, Any] = field(default_factory=dict)
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "params": dict(self.params),
            "proposed": self.proposed,
            "proposed_params": dict(self.proposed_params),
            "reasons": list(self.reasons),
            "evidence": dict(self.evidence),
            "rule": self.rule,
        }


@dataclass(slots=True)
class _Candidate:
    action: str
    params: dict[str, Any]
    rule: str
    reason: str


# --- small helpers -----------------------------------------------------------------------------------------------


def _ceil_ratio(replicas: int, cpu: float, target: float) -> int:
    """``ceil(replicas x cpu / target)`` without float error: 4 x 99.9 / 66.6 is 6, not 7."""
    ratio = replicas * cpu / target
    if abs(ratio - round(ratio)) > 1e-9:
        return math.ceil(ratio)
    # Near a whole number the float may be a hair off: decide exactly, on the numbers as written.
    return math.ceil(replicas * Fraction(str(cpu)) / Fraction(str(target)))


def _decision(facts: Facts, action: str, rule: str, params: Mapping[str, Any] | None = None, **extra: Any) -> Decision:
    return Decision(
        action=action,
        params=dict(params or {}),
        proposed=extra.get("proposed"),
        reasons=tuple(facts.reasons),
        evidence=dict(facts.evidence),
        proposed_params=dict(extra.get("proposed_params") or {}),
        rule=rule,
    )


def _plain_decision(action: str, rule: str, reason: str) -> Decision:
    return Decision(action=action, params={}, proposed=None, reasons=(reason,), evidence={}, rule=rule)


# --- principle 1 and 2: impact -----------------------------------------------------------------------------------


# --- principle 4: history-based guardrails -----------------------------------------------------------------------


def _cooldown(facts: Facts) -> Decision | None:
    actions = facts.actions
    if not actions:
        return None
    last = actions[-1]
    age = minutes_before(facts.now, last.at)
    if age > facts.policy.cooldown_minutes or last.outcome in NOT_RECOVERED:
        return None
    facts.evidence.update(last_action_minutes_ago=round(age, 1), cooldown_minutes=facts.policy.cooldown_minutes)
    facts.reasons.append(
        f"{last.action} at {format_datetime(last.at)} ({ago(age)} min before now, outcome {last.outcome}) is within "
        f"cooldown_minutes {num(facts.policy.cooldown_minutes)}: wait while it is verified"
    )
    return _decision(facts, "none", "cooldown")


def _tried(facts: Facts, action: str) -> HistoryEntry | None:
    """The latest attempt of ``action`` within the last hour that did not recover the service, if any."""
    for entry in reversed(facts.actions):
        age = minutes_before(facts.now, entry.at)
        if entry.action != action or age > HOUR_MINUTES:
            continue
        stale_pending = entry.outcome == "pending" and age > facts.policy.cooldown_minutes
        if entry.outcome in NOT_RECOVERED or stale_pending:
            return entry
    return None


def _actions_last_hour(facts: Facts) -> int:
    return sum(1 for entry in facts.actions if minutes_before(facts.now, entry.at) <= HOUR_MINUTES)


# --- principle 3: causes, most specific first --------------------------------------------------------------------


def _rollback(facts: Facts) -> _Candidate | None:
    rollout = facts.rollout
    if rollout is None or not (facts.breached or facts.failing_pods):
        return None
    for entry in facts.actions:
        if entry.action == "rollback" and abs((rollout.created - entry.at).total_seconds()) <= OWN_ROLLOUT_MINUTES * 60:
            # Rolling back our own rollback would reinstate the revision we removed.
            facts.reasons.append(
                f"revision {rollout.revision} is the rollback made at {format_datetime(entry.at)}: "
                "not rolling back again"
            )
            return None
    previous = max(
        (r for r in facts.workload.revisions if r.revision < rollout.revision), default=None, key=lambda r: r.revision
    )
    if previous is None:
        facts.reasons.append(f"revision {rollout.revision} is recent but there is no earlier revision to return to")
        return None
    facts.evidence["to_revision"] = previous.revision
    what = "the service breaches" if facts.breached else "its new pods fail"
    reason = (
        f"rollout to revision {rollout.revision}{_image(rollout)} {ago(facts.rollout_age or 0)} min before now is "
        f"a recent change (recent_change_minutes {num(facts.policy.recent_change_minutes)}) and {what}: "
        f"roll back to revision {previous.revision}{_image(previous)}"
    )
    return _Candidate("rollback", {"to_revision": previous.revision}, "rollback", reason)


def _image(revision: Revision) -> str:
    return f" ({revision.image})" if revision.image else ""


def _reconcile(facts: Facts) -> _Candidate | None:
    drift = facts.workload.drift
    if not drift or not facts.breached:
        return None
    facts.evidence["drifted_fields"] = len(drift)
    details = "; ".join(f"{d.object} {d.field} is {d.live!r} live but {d.declared!r} declared" for d in drift)
    params = {
        "objects": sorted({d.object for d in drift}),
        "fields": [{"object": d.object, "field": d.field} for d in drift],
    }
    return _Candidate("reconcile", params, "reconcile", f"{details}: reconcile with the declared manifests")


def _scale_to_min(facts: Facts) -> _Candidate | None:
    replicas, minimum = facts.workload.replicas, facts.intent.recovery.min_replicas
    if replicas is None or replicas >= minimum:
        return None
    facts.evidence["min_replicas"] = minimum
    reason = f"desired replicas {replicas} is below min_replicas {minimum}: scale up to {minimum}"
    return _Candidate("scale_up", {"replicas": minimum}, "scale-to-min", reason)


def _restart(facts: Facts) -> _Candidate | None:
    restartable = [pod for pod, state in facts.failing_pods if state in ("crashing", "not_ready")]
    unfixable = [pod for pod, state in facts.failing_pods if state in ("unfixable", "other")]
    if unfixable:
        facts.reasons.append(f"a restart will not fix {', '.join(pod_text(p) for p in unfixable)}")
    if restartable and facts.rollout is not None:
        facts.reasons.append(
            f"pods fail {ago(facts.rollout_age or 0)} min after a rollout: a restart would not fix a bad revision"
        )
        restartable = []
    memory = facts.snapshot.observed.metrics.memory_utilization
    high_memory = memory is not None and memory >= MEMORY_RESTART_PERCENT
    if memory is not None:
        facts.evidence["memory_utilization"] = memory
    if high_memory:
        reason = f"memory at {num(memory or 0)}% of its limit (at or above {MEMORY_RESTART_PERCENT}%): restart the pods"
        return _Candidate("restart", {}, "restart", reason)
    if not restartable:
        return None
    names = sorted(pod.name for pod in restartable)
    replicas = facts.workload.replicas
    # Only some pods fail and the others serve: replace just those. All failing: a rolling restart of the workload.
    params: dict[str, Any] = {"pods": names} if replicas is not None and len(names) < replicas else {}
    reason = (
        f"{len(names)} pod(s) crash-looping or stuck not ready with no rollout in the last "
        f"{num(facts.policy.recent_change_minutes)} min: restart {', '.join(names) if params else 'the workload'}"
    )
    return _Candidate("restart", params, "restart", reason)


def _reroute(facts: Facts) -> _Candidate | None:
    nodes = facts.snapshot.observed.nodes
    if len(nodes) < 2:
        return None  # nowhere else to send the traffic
    down = [node for node in nodes if node.ready is False]
    if len(down) == 1 and (facts.breached or facts.workload_failed):
        reason = f"node {down[0].name} is not ready while the other nodes are: reroute away from {down[0].name}"
        return _Candidate("reroute", {"node": down[0].name}, "reroute", reason)
    limit = facts.intent.objectives.max_latency_ms
    if limit is None or "max_latency_ms" not in facts.breached or down:
        return None
    latencies = [(node.name, node.latency_p99_ms) for node in nodes]
    if any(value is None for _node, value in latencies):
        return None  # cannot tell the breach is local without every node's latency
    slow = [(name, value) for name, value in latencies if value is not None and value > limit]
    if len(slow) != 1:
        return None
    name, value = slow[0]
    worst_other = max(v for n, v in latencies if n != name and v is not None)
    facts.evidence.update(node_latency_p99_ms=value, other_nodes_max_latency_p99_ms=worst_other)
    reason = (
        f"node {name} p99 latency {num(value or 0)} ms is above max_latency_ms {num(limit)} while every other "
        f"node's is at most {num(worst_other)} ms: the breach is local, reroute away from {name}"
    )
    return _Candidate("reroute", {"node": name}, "reroute", reason)


def _isolate_tenant(facts: Facts) -> _Candidate | None:
    if not facts.breached:
        return None
    tenants = sorted(
        ((t.share, t.name) for t in facts.snapshot.observed.tenants if t.share is not None), key=lambda x: (-x[0], x[1])
    )
    if not tenants or tenants[0][0] < TENANT_MAJORITY:
        return None
    share, name = tenants[0]
    if len(tenants) > 1 and tenants[1][0] >= TENANT_MAJORITY:
        return None  # two tenants at exactly one half each: no single noisy tenant
    if share >= 1:
        facts.reasons.append(f"tenant {name} sends all requests: isolating it would cut the service off")
        return None
    facts.evidence["tenant_share"] = share
    sends = f"tenant {name} sends {_percent(share)} of requests (at least half) while the service breaches"
    baseline = next(t.baseline_share for t in facts.snapshot.observed.tenants if t.name == name)
    if baseline is not None:
        facts.evidence["tenant_baseline_share"] = baseline
        window = facts.policy.tenant_baseline
        # Exact: 0.3 is 1.5 x 0.2, which floats would put a hair above.
        if Fraction(str(share)) < TENANT_GROWTH * Fraction(str(baseline)):
            facts.reasons.append(
                f"{sends}, but its share over the last {window} was {_percent(baseline)}: it has not grown to "
                f"{num(float(TENANT_GROWTH))} x its baseline, so it is the service's usual traffic, not the cause"
            )
            return None
        sends += f", up from {_percent(baseline)} over the last {window}"
    return _Candidate("isolate_tenant", {"tenant": name}, "isolate-tenant", f"{sends}: isolate {name}")


def _percent(share: float) -> str:
    return f"{num(round(share * 100, 1))}%"


def _scale_up(facts: Facts) -> _Candidate | None:
    if "max_latency_ms" not in facts.breached:
        return None
    cpu = facts.snapshot.observed.metrics.cpu_utilization
    replicas = facts.workload.replicas
    recovery = facts.intent.recovery
    target = recovery.target_cpu_utilization
    if cpu is None or not replicas:
        facts.reasons.append("CPU or replica count unknown: cannot judge saturation")
        return None
    facts.evidence.update(cpu_utilization=cpu, target_cpu_utilization=target, max_replicas=recovery.max_replicas)
    if cpu < target:
        return None
    if replicas >= recovery.max_replicas:
        reason = (
            f"CPU {num(cpu)}% is at or above target_cpu_utilization {num(target)}% but replicas {replicas} are "
            f"already at max_replicas {recovery.max_replicas}: more replicas are not allowed"
        )
        return _Candidate("escalate", {}, "scale-up-at-cap", reason)
    sized = _ceil_ratio(replicas, cpu, target)
    wanted = max(replicas + 1, sized)
    replicas_to = min(wanted, recovery.max_replicas)
    capped = f", capped at max_replicas {recovery.max_replicas}" if replicas_to < wanted else ""
    reason = (
        f"p99 latency breaches and CPU {num(cpu)}% is at or above target_cpu_utilization {num(target)}%: "
        f"scale up from {replicas} to ceil({replicas} x {num(cpu)} / {num(target)}) = {sized} replicas{capped}"
    )
    return _Candidate("scale_up", {"replicas": replicas_to}, "scale-up", reason)


def _dependency(facts: Facts) -> _Candidate | None:
    down = [dep for dep in facts.snapshot.observed.dependencies if dep.healthy is False]
    if not down:
        return None
    names = ", ".join(
        f"{dep.name}" + (f" (p99 {num(dep.latency_p99_ms)} ms)" if dep.latency_p99_ms is not None else "")
        for dep in down
    )
    reason = f"dependency {names} is unhealthy: scaling or restarting {facts.intent.service} will not help"
    return _Candidate("escalate", {}, "dependency", reason)


def _cordon_limit(facts: Facts) -> str | None:
    """Why one more cordon would widen the blast radius (principle 7), or None when the numbers allow it."""
    platform = facts.snapshot.observed.platform
    cordoned, limit = platform.nodes_cordoned, facts.policy.max_cordoned_nodes
    if cordoned is not None and cordoned >= limit:
        facts.evidence.update(nodes_cordoned=cordoned, max_cordoned_nodes=limit)
        return f"{cordoned} node(s) already cordoned by this collection reach max_cordoned_nodes {limit}"
    total = platform.nodes_total
    if total is not None and total - (cordoned or 0) - 1 < MIN_SCHEDULABLE_NODES:
        facts.evidence.update(nodes_total=total, nodes_cordoned=cordoned or 0)
        return (
            f"cordoning one more of {total} node(s) ({cordoned or 0} cordoned) would leave fewer than "
            f"{MIN_SCHEDULABLE_NODES} schedulable"
        )
    return None


_CAUSES = (_rollback, _reconcile, _scale_to_min, _restart, _reroute, _isolate_tenant, _scale_up, _dependency)


def _choose(facts: Facts) -> _Candidate:
    """The first cause that matches, skipping kinds the intent forbids, that already failed this hour, that failed
    too often lately (learning), or that would widen the blast radius."""
    for cause in _CAUSES:
        candidate = cause(facts)
        if candidate is None or candidate.action == "escalate":
            if candidate is not None:
                return candidate
            continue
        skipped = _skip(facts, candidate)
        if skipped is not None:
            facts.reasons.append(f"{candidate.reason}; but {skipped}")
            continue
        return candidate
    return _Candidate("escalate", {}, "no-known-cause", "no known cause matches the evidence: a human must look")


def _skip(facts: Facts, candidate: _Candidate) -> str | None:
    """Why a matching cause's action may not be taken on its own here, or None."""
    switch = ALLOWED_BY.get(candidate.action)
    if switch and not getattr(facts.intent.recovery, switch):
        return f"{switch} is false, so {candidate.action} is skipped"
    tried = _tried(facts, candidate.action)
    if tried is not None:
        return (
            f"{tried.action} was tried at {format_datetime(tried.at)} and is recorded {tried.outcome}: not tried "
            "again within the hour"
        )
    learned = _learned(facts, candidate.action)
    if learned is not None:
        return learned
    if candidate.action == "reroute":
        limit = _cordon_limit(facts)
        if limit is not None:
            return f"{limit}: reroute is skipped"
    return None


def _learned(facts: Facts, action: str) -> str | None:
    """Principle 4, learning: an action that failed the service too often lately is not chosen on its own."""
    days, limit = facts.policy.learning_window_days, facts.policy.max_failed_attempts
    failures = [
        entry
        for entry in facts.actions
        if entry.action == action
        and entry.outcome in NOT_RECOVERED
        and minutes_before(facts.now, entry.at) <= days * DAY_MINUTES
    ]
    if len(failures) < limit:
        return None
    facts.evidence.update({f"{action}_failures": len(failures), "max_failed_attempts": limit})
    attempts = ", ".join(f"{format_datetime(e.at)} ({e.outcome})" for e in failures)
    return (
        f"{action} failed to recover {facts.intent.key} {len(failures)} time(s) within learning_window_days "
        f"{num(days)} ({attempts}), reaching max_failed_attempts {limit}: it is not chosen automatically"
    )


def _blast_radius(facts: Facts, candidate: _Candidate) -> tuple[str, str] | None:
    """Principle 7 on a chosen action: (rule, why) no new automatic change is made across the platform now."""
    platform, policy = facts.snapshot.observed.platform, facts.policy
    running, limit = platform.remediations_in_progress, policy.max_concurrent_remediations
    if running is not None and running >= limit:
        facts.evidence.update(remediations_in_progress=running, max_concurrent_remediations=limit)
        return "concurrency-limit", (
            f"{running} remediation(s) are still unverified across the platform, reaching "
            f"max_concurrent_remediations {limit}: no new automatic change until they are verified"
        )
    total, breaching = platform.services_total, platform.services_breaching
    if total is None or breaching is None or total < CORRELATED_MIN_SERVICES or breaching * 2 <= total:
        return None
    facts.evidence.update(services_total=total, services_breaching=breaching)
    if candidate.rule == "rollback":
        facts.reasons.append(
            f"{breaching} of {total} services breach at once, but rolling back this service's own recent rollout "
            "is safe whatever the shared cause"
        )
        return None
    return "correlated-breach", (
        f"{breaching} of {total} services breach at once: a shared cause is likely (network, a shared dependency, "
        f"the platform), and changing services one by one adds risk"
    )


def _guard(facts: Facts, candidate: _Candidate) -> Decision:
    """Principle 4 on a chosen action: circuit breaker, then approval."""
    facts.reasons.append(candidate.reason)
    if candidate.action == "escalate":
        return _decision(facts, "escalate", candidate.rule)
    done = _actions_last_hour(facts)
    limit = facts.policy.max_actions_per_hour
    facts.evidence.update(actions_last_hour=done, max_actions_per_hour=limit)
    if done >= limit:
        facts.reasons.append(
            f"{done} action(s) on {facts.intent.key} in the last hour reach max_actions_per_hour {limit}: "
            f"the circuit breaker stops automatic actions"
        )
        return _decision(facts, "escalate", "circuit-breaker")
    return _final(facts, candidate)


def _final(facts: Facts, candidate: _Candidate) -> Decision:
    """The guardrails every chosen action meets last: the blast radius, approval, and the mode (principles 4, 7)."""
    proposal: dict[str, Any] = {"proposed": candidate.action, "proposed_params": candidate.params}
    radius = _blast_radius(facts, candidate)
    if radius is not None:
        rule, why = radius
        facts.reasons.append(f"{why}: ask a human to approve {candidate.action}")
        return _decision(facts, "escalate", rule, **proposal)
    mode = facts.policy.mode
    if candidate.action in facts.policy.require_approval or mode == "approve":
        why = "mode is approve" if mode == "approve" else f"{candidate.action} is listed in require_approval"
        facts.reasons.append(f"{why}: ask a human to approve it")
        return _decision(facts, "escalate", "approval", **proposal)
    if mode == "observe":
        facts.reasons.append(f"mode is observe: {candidate.action} is what would be done; nothing is changed")
        return _decision(facts, "none", "observe", **proposal)
    return _decision(facts, candidate.action, candidate.rule, candidate.params)


# --- principle 5 and the quiet path ------------------------------------------------------------------------------


def _patch(facts: Facts) -> Decision | None:
    patch = facts.snapshot.observed.patch
    if patch is None:
        return None
    policy, now = facts.policy, facts.now
    current = next((r for r in facts.workload.revisions if r.revision == facts.workload.revision), None)
    if current is not None and current.image == patch.image:
        facts.reasons.append(f"patch {patch.image} is already running")
        return _decision(facts, "none", "patch-applied")
    severity = patch.severity or "unknown"
    deferral = _patch_deferral(facts, severity)
    if deferral:
        facts.reasons.append(f"patch {patch.image} (severity {severity}) deferred: {deferral}")
        return _decision(facts, "none", "patch-deferred")
    window = active_window(policy.maintenance_windows, now)
    why = "inside a maintenance window" if window else "critical, so it need not wait for a maintenance window"
    return _guard_quiet(
        facts,
        _Candidate("patch", {"image": patch.image}, "patch", f"patch to {patch.image} (severity {severity}): {why}"),
    )


def _patch_deferral(facts: Facts, severity: str) -> str | None:
    policy, now = facts.policy, facts.now
    freeze = active_freeze(policy.freeze_windows, now)
    if freeze is not None:
        why = f" ({freeze.reason})" if freeze.reason else ""
        return f"inside the freeze {format_datetime(freeze.start)} to {format_datetime(freeze.end)}{why}"
    if policy.block_changes_during_peak and policy.peak_hours and in_window(policy.peak_hours, now):
        return "peak hours and block_changes_during_peak is true"
    if severity != "critical" and active_window(policy.maintenance_windows, now) is None:
        if not policy.maintenance_windows:
            return "no maintenance window is declared and only critical patches start outside one"
        return "outside every maintenance window"
    return None


def _guard_quiet(facts: Facts, candidate: _Candidate) -> Decision:
    """Guardrails for an action taken while every objective is met (a patch)."""
    if facts.intent.namespace in facts.policy.protected_namespaces:
        facts.reasons.append(
            f"{candidate.reason}; but namespace {facts.intent.namespace} is protected: never acted on automatically"
        )
        return _decision(facts, "escalate", "protected-namespace")
    cooldown = _cooldown(facts)
    if cooldown is not None:
        return cooldown
    tried = _tried(facts, candidate.action)
    if tried is not None:
        facts.reasons.append(
            f"{candidate.action} was tried at {format_datetime(tried.at)} and is recorded "
            f"{tried.outcome}: not tried again within the hour"
        )
        return _decision(facts, "escalate", "already-tried")
    learned = _learned(facts, candidate.action)
    if learned is not None:
        facts.reasons.append(f"{candidate.reason}; but {learned}")
        return _decision(facts, "escalate", "learned")
    return _guard(facts, candidate)


def _scale_down(facts: Facts) -> Decision | None:
    recovery, workload = facts.intent.recovery, facts.workload
    cpu = facts.snapshot.observed.metrics.cpu_utilization
    replicas = workload.replicas
    target = recovery.target_cpu_utilization
    if cpu is None or replicas is None or replicas <= recovery.min_replicas or not recovery.allow_autoscale:
        return None
    if facts.rollout is not None or workload.ready_replicas != replicas:
        return None  # a rollout in progress or pods not all ready: capacity is not idle
    if cpu * SCALE_DOWN_CPU_DIVISOR > target:
        return None
    if facts.intent.namespace in facts.policy.protected_namespaces or _actions_last_hour(facts):
        return None  # an optimisation never overrides protection, and never follows another action within the hour
    peak = facts.policy.peak_hours
    if peak is not None and in_window(peak, facts.now):
        return None
    size = max(recovery.min_replicas, _ceil_ratio(replicas, cpu, target))
    facts.evidence.update(cpu_utilization=cpu, target_cpu_utilization=target, min_replicas=recovery.min_replicas)
    reason = (
        f"every objective is met and CPU {num(cpu)}% is at most half of target_cpu_utilization {num(target)}%: "
        f"scale down from {replicas} to max(min_replicas {recovery.min_replicas}, ceil({replicas} x {num(cpu)} / "
        f"{num(target)})) = {size} replicas"
    )
    candidate = _Candidate("scale_down", {"replicas": size}, "scale-down", reason)
    if _learned(facts, "scale_down") is not None or _blast_radius(facts, candidate) is not None:
        return None  # an optimisation waits out any sign of trouble rather than asking a human
    facts.reasons.append(reason)
    return _final(facts, candidate)


def _quiet(facts: Facts) -> Decision:
    """Nothing is wrong: apply a due patch, trim idle capacity, or do nothing."""
    replicas, minimum = facts.workload.replicas, facts.intent.recovery.min_replicas
    if replicas is not None and replicas < minimum:
        facts.reasons.append(
            f"desired replicas {replicas} is below min_replicas {minimum}, but without user impact that is not acted on"
        )
    if facts.workload.drift:
        facts.reasons.append(
            f"{len(facts.workload.drift)} field(s) drift from the declared manifests, but without a "
            "breach that is not acted on"
        )
    facts.reasons.insert(0, "every declared objective is met and the workload is healthy")
    decision = _patch(facts) or _scale_down(facts)
    if decision is not None:
        return decision
    facts.reasons.append("no user impact: nothing to do")
    return _decision(facts, "none", "no-impact")


# --- entry point -------------------------------------------------------------------------------------------------


def _act(facts: Facts) -> Decision:
    """Impact is proven: guardrails that stop everything, then the cause ladder, then guardrails on the action."""
    if facts.intent.namespace in facts.policy.protected_namespaces:
        candidate = _choose(facts)
        facts.reasons.append(f"diagnosis: {candidate.reason}")
        facts.reasons.append(f"namespace {facts.intent.namespace} is protected: never acted on automatically")
        return _decision(facts, "escalate", "protected-namespace")
    cooldown = _cooldown(facts)
    if cooldown is not None:
        return cooldown
    return _guard(facts, _choose(facts))


def decide(snapshot: Snapshot) -> Decision:
    """Decide what to do about one snapshot (see the module docstring for the rule order)."""
    if not isinstance(snapshot, Snapshot):
        raise DecisionError(f"decide() needs a parsed Snapshot, got {type(snapshot).__name__}")
    alert = snapshot.alert
    if alert is not None and not alert.firing:
        return _plain_decision(
            "none", "alert-resolved", f"alert {alert.name or '(unnamed)'} is resolved: nothing to do"
        )
    if snapshot.intent is None:
        labels = alert.labels if alert is not None else {}
        who = "/".join(str(labels[k]) for k in ("namespace", "service") if labels.get(k)) or "(unnamed)"
        return _plain_decision("none", "no-intent", f"no intent for service {who}: nothing to check it against")
    facts = build_facts(snapshot, snapshot.intent)
    if facts.breached or facts.workload_failed:
        return _act(facts)
    if facts.unknown:
        facts.reasons.append(
            "no breach is proven and the workload shows no failure, but the metrics needed to "
            "judge the objectives are unknown: never act blind"
        )
        return _decision(facts, "escalate", "blind")
    return _quiet(facts)
