# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Judging a snapshot without deciding: assess (does the service meet its intent? the verifier's judge) and
``check_objectives`` (the objectives alone, on Prometheus' numbers: the intent watch's and the gate's judge).

Both read the same facts as :func:`._engine.decide.decide` (:mod:`._engine.facts`), so what verifies a
remediation and what the decision saw cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.facts import (
    Facts,
    build_facts,
    judge_objectives,
    num,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import DecisionError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import Snapshot, Workload


@dataclass(frozen=True, slots=True)
class Assessment:
    """Whether one snapshot meets its intent, why (``reasons``) and on which numbers (``evidence``)."""

    met: bool
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"met": self.met, "reasons": list(self.reasons), "evidence": dict(self.evidence)}


def assess(snapshot: Snapshot) -> Assessment:
    """Does the service meet its intent now? The judge of verification after an action.

    Met means: every declared objective is known and met (the same checks :func:`decide` applies), and the
    workload is healthy - desired replicas above zero, exactly that many ready, and no pod failing. Unlike
    :func:`decide`, a rollout in progress does not excuse replicas that are not ready yet: a remediation is
    verified only once its rollout is complete.
    """
    if not isinstance(snapshot, Snapshot):
        raise DecisionError(f"assess() needs a parsed Snapshot, got {type(snapshot).__name__}")
    if snapshot.intent is None:
        raise DecisionError("assess() needs a snapshot with an intent: there is nothing to verify against")
    facts = build_facts(snapshot, snapshot.intent)
    ready, desired = facts.workload.ready_replicas, facts.workload.replicas
    facts.evidence.update(replicas=desired, ready_replicas=ready)
    if desired is None or ready is None:
        facts.reasons.append("the workload's desired or ready replica count is unknown")
    elif ready > desired:
        facts.reasons.append(f"{ready} replicas ready for {desired} desired: the rollout is not complete")
    healthy = bool(desired) and ready == desired and not facts.failing_pods
    met = healthy and not facts.breached and not facts.unknown
    if met:
        judged = [
            f"{label} {num(value)}{unit}"
            for indicator, label, unit in (
                ("latency_p99_ms", "p99 latency", " ms"),
                ("error_rate", "error rate", "%"),
                ("availability", "availability", "%"),
            )
            if (value := facts.evidence.get(indicator)) is not None
        ]
        objectives = f"every declared objective is met ({', '.join(judged)})" if judged else "no objective is declared"
        facts.reasons.insert(0, f"{objectives} and {ready} of {desired} replicas are ready with no pod failing")
    return Assessment(met=met, reasons=tuple(facts.reasons), evidence=dict(facts.evidence))


@dataclass(frozen=True, slots=True)
class ObjectivesCheck:
    """Which declared objectives a snapshot's metrics breach and which cannot be judged, why, on which numbers."""

    breached: tuple[str, ...]
    unknown: tuple[str, ...]
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any]

    @property
    def met(self) -> bool:
        """Every declared objective is known and met (vacuously true when none is declared)."""
        return not self.breached and not self.unknown


def check_objectives(snapshot: Snapshot) -> ObjectivesCheck:
    """Judge the intent's objectives on the snapshot's metrics alone, exactly as :func:`decide` does (principle 1).

    For watchers that read Prometheus only: the workload, the history and the alert are not looked at.
    """
    if not isinstance(snapshot, Snapshot) or snapshot.intent is None:
        raise DecisionError("check_objectives() needs a parsed Snapshot with an intent")
    facts = Facts(
        snapshot=snapshot, intent=snapshot.intent, policy=snapshot.policy, now=snapshot.now, workload=Workload()
    )
    judge_objectives(facts)
    return ObjectivesCheck(tuple(facts.breached), tuple(facts.unknown), tuple(facts.reasons), dict(facts.evidence))
