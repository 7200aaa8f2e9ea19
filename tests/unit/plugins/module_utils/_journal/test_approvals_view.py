"""journal_info's proposal views: the proposals waiting, and the promotion evidence per service and action."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import approvals as _approvals
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW

TTL = timedelta(minutes=30)


def proposing(action: str = "rollback") -> dict[str, Any]:
    return {"action": "escalate", "params": {}, "proposed": action, "proposed_params": {}, "rule": "approval",
            "reasons": [f"{action} needs approval"], "evidence": {"error_rate": 12.5}}  # fmt: skip


@pytest.fixture
def journal(tmp_path: Path) -> Any:
    with Journal(tmp_path / "journal.db") as j:
        yield j


def propose(journal: Journal, minutes_ago: float, service: str = "checkout", action: str = "rollback") -> int:
    return journal.record_decision(
        namespace="shop",
        service=service,
        snapshot={},
        decision=proposing(action),
        at=NOW - timedelta(minutes=minutes_ago),
        approval_ttl=TTL,
    )


def answer(journal: Journal, decision_id: int, approve: bool = True, minutes_ago: float = 0) -> None:
    journal.answer_proposal(
        decision_id,
        approve=approve,
        approver="ana",
        how="command",
        expires=NOW,
        now=NOW - timedelta(minutes=minutes_ago),
    )


def acted(journal: Journal, proposal_id: int, outcome: str) -> None:
    answer(journal, proposal_id)
    decision = {"action": "rollback", "params": {}, "proposed": None, "rule": "rollback", "reasons": ["approved"]}
    acted_id = journal.record_decision(namespace="shop", service="checkout", snapshot={}, decision=decision, at=NOW)
    journal.record_action(acted_id, "rollback", {}, outcome=outcome, ended=NOW if outcome != "pending" else None)
    journal.settle_proposal(proposal_id, "acted", detail="claimed", acted_decision_id=acted_id)


def test_waiting_lists_open_proposals_with_age_and_evidence(journal: Journal) -> None:
    fresh = propose(journal, 5)
    propose(journal, 40)  # expired, never answered
    answer(journal, propose(journal, 10), approve=False)
    (row,) = _approvals.waiting(journal, NOW)
    assert (row["decision_id"], row["age_seconds"], row["evidence"]) == (fresh, 300.0, {"error_rate": 12.5})
    assert row["reasons"] == ["rollback needs approval"]


def test_promotion_counts_each_outcome_and_the_success_rate(journal: Journal) -> None:
    acted(journal, propose(journal, 20), "recovered")
    acted(journal, propose(journal, 19), "recovered")
    acted(journal, propose(journal, 18), "not_recovered")
    answer(journal, propose(journal, 17), approve=False)
    propose(journal, 45)  # expired unanswered
    stale = propose(journal, 16)
    answer(journal, stale)
    journal.settle_proposal(stale, "stale", detail="the service no longer needs rollback: objectives met")
    propose(journal, 1)  # waiting
    propose(journal, 3, service="cart", action="scale_up")
    rows = _approvals.promotion(journal, NOW)
    assert [(r["service"], r["action"]) for r in rows] == [("cart", "scale_up"), ("checkout", "rollback")]
    checkout = rows[1]
    assert {k: checkout[k] for k in _approvals.OUTCOMES} == {
        "approved_recovered": 2,
        "approved_not_recovered": 1,
        "approved_pending": 0,
        "denied": 1,
        "expired": 1,
        "stale": 0,
        "recovered_by_itself": 1,
        "waiting": 1,
    }
    assert checkout["proposals"] == 7 and checkout["success_rate"] == 0.667
    assert rows[0]["success_rate"] is None
    healthy = {"action": "none", "params": {}, "proposed": None, "rule": "no-impact", "reasons": ["met"]}
    late = propose(journal, 50)  # expired, but the service was fine two minutes later
    journal.record_decision(namespace="shop", service="checkout", snapshot={}, decision=healthy,
                            at=NOW - timedelta(minutes=48))  # fmt: skip
    again = {r["service"]: r for r in _approvals.promotion(journal, NOW)}["checkout"]
    assert (again["recovered_by_itself"], again["expired"], again["proposals"]) == (2, 1, 8)
    assert journal.proposal(late) is not None
    report = _approvals.render_markdown(rows)
    assert "| shop/checkout | rollback | 7 | 2 | 1 | 0 | 1 | 1 | 0 | 1 | 1 | 67% |" in report
    assert "| shop/cart | scale_up | 1 |" in report and "n/a |" in report
