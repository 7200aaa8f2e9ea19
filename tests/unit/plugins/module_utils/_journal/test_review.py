"""The post-incident review model (``_journal.review``) and its rendering (``_journal.review_render``).

Records are built in the shape ``Journal.query(include_snapshot=True)`` and ``Journal.incidents()`` return, so
each row states only the history that makes its case.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import review_render
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.review import (
    build_review,
    describe_period,
    parse_since,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # a Tuesday
SINCE, UNTIL = T0 - timedelta(days=1), T0 + timedelta(days=6)  # 7 days
OBJECTIVES = {"max_latency_ms": 250, "max_error_rate": 0.5}


class Records:
    """A journal's worth of records, built in order."""

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.ids = count(1)
        self.action_ids = count(1)

    def incident(self, service: str, opened: float, closed: float | None) -> int:
        iid = len(self.incidents) + 1
        self.incidents.append(
            {
                "id": iid,
                "namespace": "shop",
                "service": service,
                "fingerprint": f"fp{iid}",
                "opened": _at(opened),
                "closed": _at(closed) if closed is not None else None,
                "status": "closed" if closed is not None else "open",
                "decisions": 1,
            }
        )
        return iid

    def decision(
        self,
        service: str,
        minutes: float,
        action: str,
        *,
        rule: str = "",
        incident: int | None = None,
        alert: str = "",
        metrics: dict[str, float] | None = None,
        actions: list[dict[str, Any]] = (),  # type: ignore[assignment]
        proposed: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> int:
        did = next(self.ids)
        self.decisions.append(
            {
                "id": did,
                "time": _at(minutes),
                "namespace": "shop",
                "service": service,
                "fingerprint": None,
                "incident_id": incident,
                "action": action,
                "proposed": proposed,
                "rule": rule or action,
                "decision": {
                    "action": action,
                    "reasons": [f"{rule or action} because"],
                    "evidence": evidence or {},
                    "proposed_params": {},
                },
                "snapshot": {
                    "intent": {"objectives": OBJECTIVES},
                    "alert": {"labels": {"alertname": alert}} if alert else None,
                    "observed": {"metrics": metrics or {}},
                },
                "actions": list(actions),
            }
        )
        return did

    def action(
        self,
        kind: str,
        minutes: float,
        outcome: str,
        met_after: float | None = None,
        after: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        record = None
        if outcome in ("recovered", "not_recovered"):
            record = {
                "recovered": outcome == "recovered",
                "seconds_to_objectives_met": met_after,
                "indicators": {k: {"before": None, "after": v, "moved": None} for k, v in (after or {}).items()},
                "verified_at": _at(minutes + 5),
            }
        return {
            "id": next(self.action_ids),
            "action": kind,
            "params": {},
            "started": _at(minutes),
            "ended": _at(minutes + 5),
            "changed": True,
            "outcome": outcome,
            "detail": "",
            "effectiveness": record,
        }

    def review(self, since: datetime = SINCE, until: datetime = UNTIL) -> Any:
        return build_review(self.decisions, self.incidents, since, until)


def _at(minutes: float) -> str:
    return format_datetime(T0 + timedelta(minutes=minutes))


def _crash_loops(records: Records, outcomes: list[str]) -> None:
    for n, outcome in enumerate(outcomes):
        start = n * 300.0
        iid = records.incident("checkout", start, start + 20)
        act = records.action("restart", start + 1, outcome, met_after=120.0 if outcome == "recovered" else None)
        records.decision("checkout", start, "restart", incident=iid, alert="KubePodCrashLooping", actions=[act])


# --- incidents, times and rates ------------------------------------------------------------------------------------


def test_an_incident_gets_its_time_to_action_and_to_recovery_from_the_effectiveness_record() -> None:
    records = Records()
    iid = records.incident("checkout", 0, 30)
    act = records.action("rollback", 2, "recovered", met_after=180.0)
    records.decision("checkout", 0, "rollback", incident=iid, alert="HighErrorRate", actions=[act])
    (svc,) = records.review().services
    (incident,) = svc.incidents
    assert (incident.alert, incident.actions) == ("HighErrorRate", ("rollback",))
    assert incident.time_to_action == 120.0
    assert incident.time_to_recovery == 120.0 + 180.0  # opened -> action start -> objectives met
    assert svc.breach_seconds == 30 * 60


@pytest.mark.parametrize(
    ("outcome", "closed", "expected"),
    [
        ("not_recovered", 45.0, 45 * 60.0),  # not recovered by the action: the alert resolving ends it
        ("not_recovered", None, None),  # neither: no time to recovery
        ("pending", 10.0, 10 * 60.0),
    ],
)
def test_without_a_recovered_action_the_time_to_recovery_is_the_alert_resolving(
    outcome: str, closed: float | None, expected: float | None
) -> None:
    records = Records()
    iid = records.incident("checkout", 0, closed)
    records.decision("checkout", 0, "restart", incident=iid, actions=[records.action("restart", 1, outcome)])
    (incident,) = records.review().services[0].incidents
    assert incident.time_to_recovery == expected


def test_success_rate_counts_verified_attempts_only_and_medians_come_from_statistics() -> None:
    records = Records()
    outcomes = [("recovered", 60.0), ("recovered", 100.0), ("recovered", 300.0), ("not_recovered", None)]
    for n, (outcome, met) in enumerate(outcomes):
        records.decision("checkout", n * 10, "scale_up", actions=[records.action("scale_up", n * 10, outcome, met)])
    records.decision("checkout", 50, "scale_up", actions=[records.action("scale_up", 50, "pending")])
    records.decision("checkout", 60, "scale_up", actions=[records.action("scale_up", 60, "skipped")])
    (stats,) = records.review().services[0].actions
    assert (stats.attempts, stats.recovered, stats.not_recovered, stats.pending) == (5, 3, 1, 1)
    assert stats.success_rate == 0.75
    assert stats.median_seconds_to_met == 100.0


def test_breach_time_is_the_union_of_incidents_within_the_period() -> None:
    records = Records()
    records.incident("checkout", 0, 60)
    records.incident("checkout", 30, 90)  # overlaps the first: counted once
    records.incident("checkout", -24 * 60 - 30, -24 * 60 + 10)  # opened before the period: its last 10 minutes
    records.incident("checkout", 6 * 24 * 60 - 5, None)  # still open at the end: its first 5 minutes
    svc = records.review().services[0]
    assert svc.breach_seconds == (90 + 10 + 5) * 60


def test_escalations_and_approvals_with_the_manual_run_that_answered() -> None:
    records = Records()
    records.decision("checkout", 0, "escalate", rule="blind", actions=[records.action("escalate", 0, "not_recovered")])
    failed = records.action("restart", 10, "not_recovered")
    records.decision("checkout", 10, "restart", actions=[failed, records.action("escalate", 20, "not_recovered")])
    asked = records.decision("checkout", 30, "escalate", rule="approval", proposed="rollback")
    answer = records.decision("checkout", 40, "rollback", rule="manual")
    svc = records.review().services[0]
    assert [e.why for e in svc.escalations] == [
        "blind: blind because",
        "after restart ended not_recovered",
        "approval: approval because",
    ]
    (approval,) = svc.approvals
    assert (approval.decision_id, approval.proposed, approval.followed_by) == (asked, "rollback", answer)


def test_indicators_are_plotted_at_decisions_and_after_verification_next_to_the_objective() -> None:
    records = Records()
    act = records.action("scale_up", 1, "recovered", 60.0, after={"latency_p99_ms": 180.0})
    records.decision("checkout", 0, "scale_up", metrics={"latency_p99_ms": 480.0, "error_rate": 0.1}, actions=[act])
    latency, errors = records.review().services[0].indicators
    assert (latency.name, latency.objective, latency.points) == (
        "latency_p99_ms",
        250.0,
        ((T0, 480.0), (T0 + timedelta(minutes=6), 180.0)),
    )
    assert (errors.objective_name, [v for _t, v in errors.points]) == ("max_error_rate", [0.1])


def test_records_outside_the_period_are_left_out() -> None:
    records = Records()
    records.decision("checkout", -3 * 24 * 60, "restart", actions=[records.action("restart", -3 * 24 * 60, "failed")])
    records.incident("payments", -3 * 24 * 60, -3 * 24 * 60 + 10)
    assert records.review().services == ()


# --- suggestions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "suggested"),
    [
        (["not_recovered", "not_recovered", "failed"], "3 of 3"),
        (["not_recovered", "recovered", "not_recovered"], "2 of 3"),
        (["not_recovered", "recovered"], None),  # half: not most
        (["not_recovered"], None),  # one attempt is no pattern
        (["recovered", "recovered", "not_recovered"], None),
    ],
)
def test_an_action_that_mostly_does_not_recover_the_same_alert_is_named_with_its_attempts(
    outcomes: list[str], suggested: str | None
) -> None:
    records = Records()
    _crash_loops(records, outcomes)
    found = [s for s in records.review().all_suggestions if s.rule == "ineffective-action"]
    if suggested is None:
        assert found == []
        return
    (suggestion,) = found
    assert suggestion.text == (
        f"restart did not recover shop/checkout's KubePodCrashLooping in {suggested} attempts in the last 7 days: "
        "find the cause, or remove restart from its recovery"
    )
    failed_ids = [
        a["id"] for d in records.decisions for a in d["actions"] if a["outcome"] in ("not_recovered", "failed")
    ]
    assert suggestion.evidence == tuple(f"action {i}" for i in failed_ids)
    assert suggestion.service == "shop/checkout"


@pytest.mark.parametrize(
    ("rule", "times", "expected"),
    [
        ("scale-up-at-cap", 4, "shop/payments breached 4 times with scale_up at max_replicas 8: raise max_replicas"),
        ("scale-up-at-cap", 1, None),
        ("blind", 2, "shop/payments was escalated 2 times because an objective's indicator was unknown"),
        ("circuit-breaker", 3, "shop/payments hit the circuit breaker 3 times"),
        ("no-known-cause", 5, None),
    ],
)
def test_repeated_escalation_rules_become_suggestions_naming_their_decisions(
    rule: str, times: int, expected: str | None
) -> None:
    records = Records()
    ids = [
        records.decision("payments", n * 60, "escalate", rule=rule, evidence={"max_replicas": 8}) for n in range(times)
    ]
    named = {"scale-up-at-cap": "breach-at-cap"}.get(rule, rule)
    found = [s for s in records.review().services[0].suggestions if s.rule == named]
    if expected is None:
        assert found == []
        return
    (suggestion,) = found
    assert suggestion.text.startswith(expected)
    assert suggestion.evidence == tuple(f"decision {i}" for i in ids)


@pytest.mark.parametrize(
    ("spacing_minutes", "services", "expected"),
    [
        (2, ["checkout", "payments", "cart", "search", "checkout"], 5),
        (2, ["checkout", "checkout", "checkout"], None),  # one service: not a shared cause
        (30, ["checkout", "payments", "cart"], None),  # too far apart
        (2, ["checkout", "payments"], None),  # too few
    ],
)
def test_escalations_of_several_services_close_together_suggest_a_shared_cause(
    spacing_minutes: float, services: list[str], expected: int | None
) -> None:
    records = Records()
    ids = [
        records.decision(name, 14 * 60 + n * spacing_minutes, "escalate", rule="no-known-cause")
        for n, name in enumerate(services)
    ]
    found = records.review().suggestions
    if expected is None:
        assert found == ()
        return
    (suggestion,) = found
    assert suggestion.rule == "correlated-escalations"
    assert suggestion.text.startswith(f"the policy escalated {expected} correlated breaches of 4 services")
    assert "on Tuesday 2026-03-03 between 23:00 and 23:08 UTC: look for a shared cause" in suggestion.text
    assert suggestion.evidence == tuple(f"decision {i}" for i in ids)


def test_an_approval_always_answered_by_hand_suggests_taking_it_off_require_approval() -> None:
    records = Records()
    ids = []
    for n in range(2):
        ids.append(records.decision("checkout", n * 120, "escalate", rule="approval", proposed="scale_down"))
        ids.append(records.decision("checkout", n * 120 + 5, "scale_down", rule="manual"))
    (suggestion,) = [s for s in records.review().services[0].suggestions if s.rule == "always-approved"]
    assert "approve scale_down 2 times" in suggestion.text
    assert suggestion.evidence == tuple(f"decision {i}" for i in ids)


# --- inputs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", T0 - timedelta(days=7)),
        ("36h", T0 - timedelta(hours=36)),
        ("90m", T0 - timedelta(minutes=90)),
        ("2w", T0 - timedelta(weeks=2)),
        ("2026-03-01T00:00:00Z", datetime(2026, 3, 1, tzinfo=UTC)),
    ],
)
def test_since_is_a_duration_or_a_time(text: str, expected: datetime) -> None:
    assert parse_since(text, T0) == expected


@pytest.mark.parametrize("text", ["seven days", "7 parsecs", "2026-03-01T00:00:00"])
def test_a_bad_since_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValidationError, match="since: must be a duration"):
        parse_since(text, T0)


def test_periods_read_as_words() -> None:
    assert describe_period(SINCE, UNTIL) == "in the last 7 days"
    assert describe_period(T0 - timedelta(hours=1), T0) == "in the last 1 hour"


# --- through the real journal --------------------------------------------------------------------------------------


def test_the_review_reads_what_the_journal_holds_including_effectiveness(tmp_path: Any) -> None:
    with Journal(tmp_path / "j.db") as journal:
        did = journal.record_decision(
            namespace="shop",
            service="checkout",
            snapshot={"intent": {"objectives": OBJECTIVES}, "observed": {"metrics": {"error_rate": 9.0}}},
            decision={"action": "rollback", "rule": "rollback", "reasons": ["bad release"]},
            fingerprint="abc",
            alert_status="firing",
            at=T0,
        )
        aid = journal.start_action(did, "rollback", {"to_revision": 6}, started=T0 + timedelta(seconds=30))
        journal.finish_action(aid, outcome="recovered", ended=T0 + timedelta(seconds=200))
        journal.record_effectiveness(aid, {"recovered": True, "seconds_to_objectives_met": 90.0})
        (action,) = journal.query()[0]["actions"]
        assert action["params"] == {"to_revision": 6}  # the record is not one of the action's parameters
        assert action["effectiveness"] == {"recovered": True, "seconds_to_objectives_met": 90.0}
        review = build_review(journal.query(include_snapshot=True), journal.incidents(), SINCE, UNTIL)
    (incident,) = review.services[0].incidents
    assert (incident.time_to_action, incident.time_to_recovery) == (30.0, 120.0)


# --- rendering -----------------------------------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) a|b"


def _hostile_review() -> Any:
    records = Records()
    _crash_loops(records, ["not_recovered", "not_recovered"])
    for d in records.decisions:
        d["snapshot"]["alert"]["labels"]["alertname"] = HOSTILE
        d["snapshot"]["observed"]["metrics"] = {"latency_p99_ms": 300.0, "error_rate": 2.0}
    return records.review()


def test_html_escapes_journal_text_and_fetches_nothing() -> None:
    page = review_render.render_html(_hostile_review())
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror=alert(2)" in page  # as text, inside an escaped tag
    assert not re.search(r"https?://", page)
    assert page.count("<svg") == 3  # two indicators and the recovery times


def test_markdown_escapes_journal_text_so_no_markup_or_link_survives() -> None:
    text = review_render.render_markdown(_hostile_review())
    assert _cells_of(text) and not re.search(r"(?<!\\)[<>\[\]|]", _cells_of(text))  # no bare markup character
    assert r"\<script\>alert(1)\</script\>" in text and r"\<img src=x onerror=alert(2)\>" in text
    assert not re.search(r"(?<!\\)\]\(javascript:", text)  # no link: its bracket is escaped
    assert r"\[x\](javascript:alert(3))" in text
    row = next(line for line in text.splitlines() if line.startswith(r"| \#1 "))
    assert row.count(" | ") == 6  # the alert's | is escaped: seven cells, as the header has
    assert r"a\|b" in row


def _cells_of(text: str) -> str:
    """The journal's text as rendered in the table rows of incidents (what sits between the cell bars)."""
    rows = [line for line in text.splitlines() if line.startswith(r"| \#")]
    return "".join(re.split(r"(?<!\\)\|", row)[2] for row in rows)


def test_markdown_shows_counts_rates_and_suggestions() -> None:
    records = Records()
    _crash_loops(records, ["not_recovered", "recovered", "not_recovered"])
    text = review_render.render_markdown(records.review())
    assert "| restart | 3 | 1 | 2 | 0 | 0 | 33% | 2m 00s |" in text
    assert "restart did not recover shop/checkout's KubePodCrashLooping in 2 of 3 attempts" in text
    assert "(evidence: action 1, action 3)" in text


def test_without_pygal_a_plot_names_the_missing_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_pygal(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pygal"):
            raise ImportError("No module named 'pygal'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pygal)
    with pytest.raises(Exception, match="the Python library 'pygal' is required") as caught:
        review_render.render_html(_hostile_review())
    assert type(caught.value).__name__ == "MissingLibraryError"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "\u2014"), (45, "45s"), (200, "3m 20s"), (3900, "1h 05m"), (183600, "2d 03h")],
)
def test_durations_read_as_words(seconds: float | None, text: str) -> None:
    assert review_render.duration(seconds) == text


def test_the_review_lists_the_changes_the_gate_denied(tmp_path: Any) -> None:
    with Journal(tmp_path / "j.db") as journal:
        for allowed, rule, change_id in (
            (False, "freeze", HOSTILE),
            (True, "allow", "ci-2"),
            (False, "impact", "ci-3"),
        ):
            journal.record_gate(
                namespace="shop",
                service="checkout",
                answer={"change": "deploy", "allowed": allowed, "rule": rule},
                snapshot={},
                requested_by="github-actions",
                change_id=change_id,
                at=T0,
            )
        gates = journal.gate_answers(since=SINCE)
    review = build_review([], [], SINCE, UNTIL, gates=gates)
    (svc,) = review.services
    assert [(d.rule, d.change_id) for d in svc.denied_changes] == [("freeze", HOSTILE), ("impact", "ci-3")]
    page = review_render.render_html(review)
    assert "Changes the gate denied" in page and "ci-3" in page and "github-actions" in page
    assert "<script>" not in page  # the pipeline's words are data
    markdown = review_render.render_markdown(review)
    assert "Changes the gate denied" in markdown and "ci-2" not in markdown
