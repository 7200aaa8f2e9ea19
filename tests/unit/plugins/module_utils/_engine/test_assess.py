"""The judge of verification: does one snapshot meet its intent (``_engine.assess.assess``), table-driven."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.assess import assess
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import DecisionError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import (
    DELETE,
    crashing,
    edited,
    rollout,
    snapshot,
)

# --- the judge: does one snapshot meet its intent? ----------------------------------------------------------------


def test_a_healthy_snapshot_meets_its_intent_and_says_on_which_numbers() -> None:
    result = assess(snapshot())
    assert result.met is True
    assert result.reasons == (
        "every declared objective is met (p99 latency 120 ms, error rate 0.1%, availability 99.98%) "
        "and 4 of 4 replicas are ready with no pod failing",
    )
    assert result.evidence == {
        "max_latency_ms": 250,
        "latency_p99_ms": 120,
        "max_error_rate": 0.5,
        "error_rate": 0.1,
        "availability": 99.98,
        "replicas": 4,
        "ready_replicas": 4,
    }


@pytest.mark.parametrize(
    ("edits", "reason"),
    [
        pytest.param(
            {"observed.metrics.latency_p99_ms": 480}, "p99 latency 480 ms breaches max_latency_ms 250", id="latency"
        ),
        pytest.param({"observed.metrics.error_rate": 0.6}, "error rate 0.6% breaches max_error_rate 0.5%", id="errors"),
        pytest.param(
            {"observed.metrics.availability": 99.8},
            "availability 99.8% is below the availability objective 99.9%",
            id="availability",
        ),
        pytest.param(
            {"observed.metrics.latency_p99_ms": None},
            "p99 latency is unknown, so max_latency_ms 250 cannot be judged",
            id="unknown-metric",
        ),
        pytest.param({"observed.workload.ready_replicas": 3}, "only 3 of 4 replicas are ready", id="not-ready"),
        pytest.param(
            {"observed.workload.replicas": 0, "observed.workload.ready_replicas": 0},
            "desired replicas is 0: nothing serves the service",
            id="scaled-to-zero",
        ),
        pytest.param(
            crashing("checkout-1"),
            "pods not running cleanly: checkout-1 on node-a (CrashLoopBackOff, 6 restarts in 15 min)",
            id="crash-loop",
        ),
        pytest.param(
            {**crashing("checkout-1"), "observed.workload.ready_replicas": 4},
            "pods not running cleanly: checkout-1 on node-a (CrashLoopBackOff, 6 restarts in 15 min)",
            id="failing-pod-while-ready-equals-desired",
        ),
        pytest.param(
            {**rollout(2), "observed.workload.ready_replicas": 3},
            "3 of 4 replicas ready while the rollout of revision 8 progresses",
            id="rollout-in-progress-is-not-done",
        ),
        pytest.param(
            {"observed.workload.ready_replicas": 5},
            "5 replicas ready for 4 desired: the rollout is not complete",
            id="surge-pods-still-there",
        ),
        pytest.param(
            {"observed.workload.ready_replicas": None},
            "the workload's desired or ready replica count is unknown",
            id="ready-unknown",
        ),
    ],
)
def test_a_snapshot_that_misses_anything_is_not_met_and_says_why(edits: dict[str, Any], reason: str) -> None:
    result = assess(snapshot(edits))
    assert result.met is False
    assert reason in result.reasons


def test_the_judge_is_the_decision_engines_objective_check() -> None:
    # The same breach reads the same in a decision and in a verification: one implementation of the checks.
    edits = {"observed.metrics.latency_p99_ms": 480, "observed.metrics.error_rate": 0.9}
    decision, assessment = decide(snapshot(edits)), assess(snapshot(edits))
    breaches = [r for r in decision.reasons if "breaches" in r]
    assert breaches and all(r in assessment.reasons for r in breaches)


@pytest.mark.parametrize(
    ("objectives", "met"),
    [
        pytest.param({"max_latency_ms": 250}, True, id="only-latency-declared-other-metrics-unknown"),
        pytest.param({}, True, id="no-objective-declared"),
    ],
)
def test_only_declared_objectives_need_to_be_known(objectives: dict[str, Any], met: bool) -> None:
    edits = {
        "intent.objectives": objectives,
        "observed.metrics.error_rate": None,
        "observed.metrics.availability": None,
    }
    result = assess(snapshot(edits))
    assert result.met is met, result.reasons
    if not objectives:
        assert result.reasons[0].startswith("no objective is declared and 4 of 4 replicas are ready")


def test_a_resolved_alert_or_a_recent_rollout_does_not_change_the_verdict() -> None:
    assert assess(snapshot({"alert.status": "resolved", **rollout(1)})).met is True


def test_without_an_intent_there_is_nothing_to_verify_against() -> None:
    with pytest.raises(DecisionError, match="nothing to verify against"):
        assess(parse_snapshot(edited({"intent": None}), "test"))
    with pytest.raises(DecisionError, match="needs a parsed Snapshot"):
        assess(edited())  # type: ignore[arg-type]


def test_an_unknown_workload_is_not_met() -> None:
    result = assess(snapshot({"observed.workload": DELETE}))
    assert result.met is False
    assert "the workload's desired or ready replica count is unknown" in result.reasons
