"""The change gate's rules, table-driven: every rule, its boundaries, and how the answers combine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.gate import (
    CHANGES,
    GateAnswer,
    GateEvidence,
    Lock,
    LoopRollback,
    evidence_to_dict,
    judge_change,
    split_document,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import DecisionError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW, ago, edited, history, snapshot

BURN_OK = GateEvidence(burn_error_rate=0.0, burn_window="1m")  # known burn: no error at all


def answer(
    edits: dict[str, Any] | None = None, change: str = "deploy", evidence: GateEvidence = BURN_OK, **options: Any
) -> GateAnswer:
    return judge_change(snapshot(edits), change, evidence=evidence, **options)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_healthy_quiet_service_may_change_in_every_way() -> None:
    for change in CHANGES:
        result = answer(change=change)
        assert result.allowed and result.denied_by == () and result.retry_after is None, result.reasons
        assert result.reasons[0] == f"allow: no rule denies a {change} of shop/checkout now"
        assert result.to_dict()["rule"] == "allow"


# --- freeze windows: start inclusive, end exclusive, offsets honoured --------------------------------------------

FREEZE = {"start": "2026-03-04T15:10:00Z", "end": "2026-03-04T18:00:00Z", "reason": "release week"}


@pytest.mark.parametrize(
    ("now", "freeze", "allowed", "retry_after"),
    [
        ("2026-03-04T15:10:00Z", FREEZE, False, "2026-03-04T18:00:00Z"),  # the start is inclusive
        ("2026-03-04T15:09:59Z", FREEZE, True, None),
        ("2026-03-04T17:59:59Z", FREEZE, False, "2026-03-04T18:00:00Z"),
        ("2026-03-04T18:00:00Z", FREEZE, True, None),  # the end is exclusive
        # The same instants written in other offsets: 17:10+02:00 is 15:10Z.
        (
            "2026-03-04T10:10:00-05:00",
            {"start": "2026-03-04T17:10:00+02:00", "end": "2026-03-04T20:00:00+02:00"},
            False,
            "2026-03-04T18:00:00Z",
        ),
        (
            "2026-03-04T20:00:00+02:00",
            {"start": "2026-03-04T17:10:00+02:00", "end": "2026-03-04T13:00:00-05:00"},
            True,
            None,
        ),
    ],
)
def test_freeze_windows(now: str, freeze: dict, allowed: bool, retry_after: str | None) -> None:
    result = answer({"now": now, "policy.freeze_windows": [freeze]})
    assert result.allowed is allowed, result.reasons
    assert (result.retry_after and result.retry_after.isoformat()) == (retry_after and at(retry_after).isoformat())
    if not allowed:
        assert result.denied_by == ("freeze",)
        assert result.reasons[0].startswith("freeze: inside the freeze 2026-03-04T15:10:00Z to 2026-03-04T18:00:00Z")
        assert result.evidence["freeze"]["end"] == "2026-03-04T18:00:00Z"


def test_freezes_back_to_back_retry_after_the_last_one() -> None:
    freezes = [
        {"start": "2026-03-04T15:00:00Z", "end": "2026-03-04T16:00:00Z"},
        {"start": "2026-03-04T16:00:00Z", "end": "2026-03-04T16:30:00Z"},
    ]
    result = answer({"policy.freeze_windows": freezes}, change="rollback")
    assert result.denied_by == ("freeze",) and result.retry_after == at("2026-03-04T16:30:00Z")


# --- peak hours --------------------------------------------------------------------------------------------------

BERLIN_PEAK = {"days": ["wed"], "start": "16:00", "end": "18:00", "timezone": "Europe/Berlin"}  # 15:00-17:00Z
NIGHT_NY = {"days": ["wed"], "start": "22:00", "end": "06:00", "timezone": "America/New_York"}  # crosses midnight


@pytest.mark.parametrize(
    ("now", "peak", "block", "allowed", "retry_after"),
    [
        ("2026-03-04T15:10:00Z", BERLIN_PEAK, True, False, "2026-03-04T17:00:00Z"),
        ("2026-03-04T15:10:00Z", BERLIN_PEAK, False, True, None),  # peak hours only block when told to
        ("2026-03-04T15:00:00Z", BERLIN_PEAK, True, False, "2026-03-04T17:00:00Z"),  # start inclusive
        ("2026-03-04T14:59:59Z", BERLIN_PEAK, True, True, None),
        ("2026-03-04T17:00:00Z", BERLIN_PEAK, True, True, None),  # end exclusive
        ("2026-03-05T15:10:00Z", BERLIN_PEAK, True, True, None),  # a Thursday
        ("2026-03-05T04:00:00Z", NIGHT_NY, True, False, "2026-03-05T11:00:00Z"),  # 23:00 Wednesday in New York
        ("2026-03-05T10:59:00Z", NIGHT_NY, True, False, "2026-03-05T11:00:00Z"),  # 05:59 Thursday, Wednesday's window
        ("2026-03-05T11:00:00Z", NIGHT_NY, True, True, None),
    ],
)
def test_peak_hours(now: str, peak: dict, block: bool, allowed: bool, retry_after: str | None) -> None:
    result = answer({"now": now, "policy.peak_hours": peak, "policy.block_changes_during_peak": block})
    assert result.allowed is allowed, result.reasons
    assert result.retry_after == (at(retry_after) if retry_after else None)
    if not allowed:
        assert result.denied_by == ("peak-hours",) and "block_changes_during_peak is true" in result.reasons[0]


def test_peak_hours_end_on_the_wall_clock_across_a_dst_change() -> None:
    # 2026-03-29: Berlin moves from UTC+1 to UTC+2 at 02:00. A Sunday window 00:00-06:00 ends at 04:00Z.
    peak = {"days": ["sun"], "start": "00:00", "end": "06:00", "timezone": "Europe/Berlin"}
    result = answer(
        {"now": "2026-03-28T23:30:00Z", "policy.peak_hours": peak, "policy.block_changes_during_peak": True}
    )
    assert result.denied_by == ("peak-hours",) and result.retry_after == at("2026-03-29T04:00:00Z")


def test_a_freeze_that_ends_inside_blocked_peak_hours_retries_after_both() -> None:
    edits = {
        "policy.freeze_windows": [{"start": "2026-03-04T15:00:00Z", "end": "2026-03-04T16:30:00Z"}],
        "policy.peak_hours": BERLIN_PEAK,
        "policy.block_changes_during_peak": True,
    }
    result = answer(edits)
    assert result.denied_by == ("freeze", "peak-hours") and result.retry_after == at("2026-03-04T17:00:00Z")


# --- impact and burn: fixes pass --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edits", "change", "denied_by"),
    [
        ({"observed.metrics.latency_p99_ms": 480}, "deploy", ("impact",)),
        ({"observed.metrics.latency_p99_ms": 480}, "config", ("impact",)),
        ({"observed.metrics.latency_p99_ms": 480}, "scale", ("impact",)),
        ({"observed.metrics.latency_p99_ms": 480}, "rollback", ()),
        ({"observed.metrics.latency_p99_ms": 480}, "patch", ()),
        ({"observed.metrics.latency_p99_ms": 250}, "deploy", ()),  # equal to the objective is met
        ({"observed.metrics.availability": 99.89}, "deploy", ("impact",)),
        ({"observed.metrics.availability": 99.9}, "deploy", ()),
        ({"observed.metrics.error_rate": 0.51}, "deploy", ("impact",)),
    ],
)
def test_a_breach_denies_every_change_but_a_fix(edits: dict, change: str, denied_by: tuple) -> None:
    result = answer(edits, change)
    assert result.denied_by == denied_by, result.reasons
    if denied_by:
        assert result.retry_after is None  # a breach has no known end
        assert result.reasons[0].startswith("impact: ") and "only a fix (rollback, patch)" in result.reasons[0]


# Objectives availability 99.9 and max_error_rate 0.5: the budget is 0.1 %, so 0.6 % errors burn at exactly 6x.
@pytest.mark.parametrize(
    ("burn_error_rate", "threshold", "change", "denied_by"),
    [
        (0.6, 6.0, "deploy", ("fast-burn",)),  # exactly at the threshold is fast, as the watch judges it
        (0.59, 6.0, "deploy", ()),
        (0.61, 6.0, "config", ("fast-burn",)),
        (0.6, 6.0, "rollback", ()),
        (0.6, 6.0, "patch", ()),
        (0.3, 3.0, "deploy", ("fast-burn",)),
        (0.6, 0.0, "deploy", ()),  # a threshold of 0 turns burn detection off
    ],
)
def test_a_fast_error_budget_burn_denies_every_change_but_a_fix(
    burn_error_rate: float, threshold: float, change: str, denied_by: tuple
) -> None:
    evidence = GateEvidence(burn_error_rate=burn_error_rate, burn_window="1m")
    result = answer(change=change, evidence=evidence, burn_threshold=threshold)
    assert result.denied_by == denied_by, result.reasons
    if denied_by:
        assert result.evidence["burn_rate"] == pytest.approx(burn_error_rate / 0.1)
        assert "over 1m" in result.reasons[0]


@pytest.mark.parametrize(
    ("objectives", "burn_error_rate", "threshold"),
    [
        ({"max_error_rate": 0.1}, 0.6, 6.0),  # 0.6 / 0.1 is 5.999... in floating point
        ({"availability": 99.7}, 0.9, 3.0),  # 100 - 99.7 is 0.30000000000000426
        ({"max_error_rate": 0.3}, 0.7, 7 / 3),
    ],
)
def test_a_burn_exactly_at_the_threshold_is_fast_on_the_numbers_as_written(
    objectives: dict, burn_error_rate: float, threshold: float
) -> None:
    edits = {"intent.objectives": objectives, "observed.metrics.error_rate": 0.0, "observed.metrics.availability": 100}
    result = answer(edits, evidence=GateEvidence(burn_error_rate=burn_error_rate), burn_threshold=threshold)
    assert result.denied_by == ("fast-burn",), result.reasons


def test_a_budget_of_zero_burns_infinitely_fast_at_the_first_error() -> None:
    edits = {"intent.objectives": {"availability": 100}, "observed.metrics.availability": 100}
    result = answer(edits, evidence=GateEvidence(burn_error_rate=0.01))
    assert result.denied_by == ("fast-burn",) and result.evidence["burn_rate"] == "inf"


# --- never blind ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edits", "evidence", "change", "allow_unknown", "denied_by"),
    [
        ({"observed.metrics.latency_p99_ms": None}, BURN_OK, "deploy", False, ("blind",)),
        ({"observed.metrics.latency_p99_ms": None}, BURN_OK, "deploy", True, ()),
        ({"observed.metrics.latency_p99_ms": None}, BURN_OK, "rollback", False, ()),  # fixes need no metrics
        ({}, GateEvidence(), "deploy", False, ("blind",)),  # the burn error rate is unknown
        ({}, GateEvidence(), "scale", True, ()),
        ({"intent.objectives": {"max_latency_ms": 250}}, GateEvidence(), "deploy", False, ()),  # no error budget
        # A breach still denies when the other metrics are unknown; the unknown ones are named as well.
        (
            {"observed.metrics.latency_p99_ms": 480, "observed.metrics.availability": None},
            BURN_OK,
            "deploy",
            False,
            ("impact", "blind"),
        ),
    ],
)
def test_unknown_metrics_deny_unless_allowed(
    edits: dict, evidence: GateEvidence, change: str, allow_unknown: bool, denied_by: tuple
) -> None:
    result = answer(edits, change, evidence, allow_unknown=allow_unknown)
    assert result.denied_by == denied_by, result.reasons
    if "blind" in denied_by:
        assert any("the gate never answers blind" in r for r in result.reasons)
    if allow_unknown:
        assert any(r.startswith("blind: ") and "allow_unknown is true" in r for r in result.reasons)


# --- remediation in progress ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lock", "entries", "change", "denied_by"),
    [
        (Lock("selfheal-remediate/decision-4", NOW + timedelta(minutes=5)), (), "deploy", ("remediation-locked",)),
        (Lock("selfheal-remediate/decision-4", NOW + timedelta(minutes=5)), (), "rollback", ("remediation-locked",)),
        (Lock("selfheal-remediate/decision-4", NOW), (), "deploy", ()),  # expired at this very instant
        (Lock("someone"), (), "deploy", ("remediation-locked",)),  # no known expiry: held
        (None, (("rollback", 3, "pending"),), "deploy", ("remediation-pending",)),
        (None, (("restart", 300, "pending"),), "scale", ("remediation-pending",)),
        (None, (("rollback", 3, "recovered"),), "deploy", ()),
        (None, (("rollback", 3, "not_recovered"),), "deploy", ()),
        (None, (("escalate", 3, "pending"),), "deploy", ()),  # a human was asked: no remediation runs
        (
            Lock("selfheal-remediate/decision-4", NOW + timedelta(minutes=5)),
            (("rollback", 1, "pending"),),
            "patch",
            ("remediation-locked", "remediation-pending"),
        ),
    ],
)
def test_a_remediation_in_progress_denies_every_change(
    lock: Lock | None, entries: tuple, change: str, denied_by: tuple
) -> None:
    evidence = GateEvidence(burn_error_rate=0.0, lock=lock)
    result = answer(history(*entries), change, evidence)
    assert result.denied_by == denied_by, result.reasons
    if denied_by:
        assert result.retry_after is None  # a lock is given back when the run ends, not at a known time


# --- a streak of bad releases -----------------------------------------------------------------------------------


def releases(*minutes_ago: float) -> dict[str, Any]:
    """Deploys of revisions 8, 9, ... ``minutes_ago``; the current revision is 7's ReplicaSet, renumbered."""
    revisions = [
        {"revision": 8 + i, "created": ago(m), "image": f"shop/checkout:1.{42 + i}"} for i, m in enumerate(minutes_ago)
    ]
    current = {"revision": 8 + len(minutes_ago), "created": "2026-03-01T10:00:00Z", "image": "shop/checkout:1.41"}
    return {"observed.workload.revision": current["revision"], "observed.workload.revisions": [*revisions, current]}


def rolled_back(*pairs: tuple[int, float], outcome: str = "recovered") -> GateEvidence:
    rollbacks = tuple(LoopRollback(NOW - timedelta(minutes=m), revision, outcome) for revision, m in pairs)
    return GateEvidence(burn_error_rate=0.0, rollbacks=rollbacks)


@pytest.mark.parametrize(
    ("deploys", "evidence", "change", "denied_by", "retry_in"),
    [
        ((100, 50), rolled_back((8, 90), (9, 40)), "deploy", ("bad-release-streak",), 20),
        ((120, 50), rolled_back((8, 110), (9, 40)), "deploy", ("bad-release-streak",), 0),  # window start inclusive
        ((121, 50), rolled_back((8, 110), (9, 40)), "deploy", (), None),  # only one deploy within 120 min
        ((100, 50), rolled_back((9, 40)), "deploy", (), None),
        ((100, 50), rolled_back((8, 90)), "deploy", (), None),  # the last deploy was not rolled back
        ((100, 50), rolled_back((8, 90), (9, 40), outcome="failed"), "deploy", (), None),  # never rolled back
        ((100, 50), rolled_back((8, 90), (9, 40), outcome="pending"), "deploy", ("bad-release-streak",), 20),
        ((100, 50), rolled_back((8, 90), (9, 40)), "rollback", (), None),  # only deploys are held back
        ((100, 50), rolled_back((8, 90), (9, 40)), "config", (), None),
        ((100, 70, 50), rolled_back((8, 90), (10, 40)), "deploy", (), None),  # 9 was good in between
        ((100, 70, 50), rolled_back((9, 60), (10, 40)), "deploy", ("bad-release-streak",), 50),
    ],
)
def test_two_deploys_in_a_row_rolled_back_by_the_loop_hold_the_next_deploy(
    deploys: tuple, evidence: GateEvidence, change: str, denied_by: tuple, retry_in: float | None
) -> None:
    result = answer(releases(*deploys), change, evidence)
    assert result.denied_by == denied_by, result.reasons
    assert result.retry_after == (NOW + timedelta(minutes=retry_in) if retry_in is not None else None)
    if denied_by:
        assert "were rolled back" in result.reasons[0] and "by the loop at" in result.reasons[0]


def test_a_streak_counts_a_removed_revision_the_workload_no_longer_lists() -> None:
    # The loop's journal still knows revision 8, whose ReplicaSet is gone; revision 9 is still listed.
    rollbacks = (
        LoopRollback(NOW - timedelta(minutes=90), 8, "recovered", deployed_at=NOW - timedelta(minutes=95)),
        LoopRollback(NOW - timedelta(minutes=40), 9, "recovered"),
    )
    edits = releases(70, 50)
    del edits["observed.workload.revisions"][0]
    result = answer(edits, evidence=GateEvidence(burn_error_rate=0.0, rollbacks=rollbacks))
    assert result.denied_by == ("bad-release-streak",), result.reasons
    assert [d["revision"] for d in result.evidence["rolled_back_deploys"]] == [8, 9]


def test_force_with_a_reason_lifts_the_streak_and_only_the_streak() -> None:
    streak = releases(100, 50)
    evidence = rolled_back((8, 90), (9, 40))
    forced = answer(streak, evidence=evidence, force=True, reason="1.44 fixes the leak, reviewed by ana")
    assert forced.allowed and forced.forced, forced.reasons
    assert forced.force_reason == "1.44 fixes the leak, reviewed by ana"
    assert any("overridden by force: 1.44 fixes the leak" in r for r in forced.reasons)
    assert forced.to_dict()["forced"] is True

    frozen = answer({**streak, "policy.freeze_windows": [FREEZE]}, evidence=evidence, force=True, reason="urgent")
    assert not frozen.allowed and frozen.denied_by == ("freeze",) and not frozen.forced
    assert frozen.reasons[-1] == "force only lifts bad-release-streak; it does not override freeze"

    with pytest.raises(ValidationError, match="reason: is required with force"):
        answer(streak, evidence=evidence, force=True, reason="  ")


# --- combinations and bad input ---------------------------------------------------------------------------------


def test_every_denial_is_reported_and_an_open_ended_one_leaves_retry_after_unset() -> None:
    edits = {"policy.freeze_windows": [FREEZE], "observed.metrics.error_rate": 3.0}
    result = answer(edits, evidence=GateEvidence(burn_error_rate=3.0, lock=Lock("x")))
    assert result.denied_by == ("freeze", "impact", "fast-burn", "remediation-locked")
    assert [r.split(":")[0] for r in result.reasons] == list(result.denied_by)
    assert result.retry_after is None
    assert result.to_dict()["rule"] == "freeze"


def test_an_unknown_change_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(
        ValidationError, match="unknown change kind 'migrate'; the kinds are deploy, config, scale, patch, rollback"
    ):
        answer(change="migrate")


def test_a_snapshot_without_an_intent_cannot_be_judged() -> None:
    with pytest.raises(DecisionError, match="needs a parsed Snapshot with an intent"):
        judge_change(parse_snapshot(edited({"intent": None}), "test"), "deploy")


def test_the_gate_block_round_trips_and_is_validated() -> None:
    evidence = GateEvidence(
        burn_error_rate=0.2,
        burn_window="1m",
        lock=Lock("selfheal-remediate/decision-1", NOW),
        rollbacks=(LoopRollback(NOW, 8, "recovered", NOW - timedelta(minutes=3)),),
    )
    document, parsed = split_document({**edited(), "gate": evidence_to_dict(evidence)}, "replay.yml")
    assert parsed == evidence and "gate" not in document
    assert split_document(edited(), "plain")[1] == GateEvidence()
    with pytest.raises(ValidationError, match="replay.yml: gate.burn_error_rate"):
        split_document({**edited(), "gate": {"burn_error_rate": "high"}}, "replay.yml")
