"""Proposals in the journal on both backends: opened with their escalation, answered once (the database decides
which of two racing answers wins), expired, settled, and every attempt journaled."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW

PROPOSING = {
    "action": "escalate",
    "params": {},
    "proposed": "scale_up",
    "proposed_params": {"replicas": 6},
    "rule": "approval",
    "reasons": ["scale_up is listed in require_approval"],
}
TTL = timedelta(minutes=30)


@pytest.fixture
def journal(journal_backend: JournalBackend) -> Any:
    with Journal(journal_backend.target) as j:
        yield j


def propose(journal: Journal, decision: dict[str, Any] = PROPOSING, ttl: timedelta | None = TTL) -> int:
    return journal.record_decision(
        namespace="shop", service="checkout", snapshot={"id": "s"}, decision=decision, at=NOW, approval_ttl=ttl
    )


def answer(journal: Journal, decision_id: int, approve: bool = True, minutes: float = 1, **extra: Any) -> Any:
    return journal.answer_proposal(
        decision_id,
        approve=approve,
        approver=extra.pop("approver", "ana"),
        how=extra.pop("how", "command"),
        expires=NOW + TTL,
        now=NOW + timedelta(minutes=minutes),
    )


def test_an_escalation_proposing_an_action_opens_a_pending_proposal(journal: Journal) -> None:
    decision_id = propose(journal)
    proposal = journal.proposal(decision_id)
    assert proposal is not None
    assert (proposal["state"], proposal["action"], proposal["params"]) == ("pending", "scale_up", {"replicas": 6})
    assert (proposal["created"], proposal["expires"]) == (format_datetime(NOW), format_datetime(NOW + TTL))


@pytest.mark.parametrize(
    "decision",
    [
        {"action": "scale_up", "params": {"replicas": 6}, "proposed": None, "rule": "scale-up"},
        {"action": "escalate", "params": {}, "proposed": None, "rule": "protected"},
        {"action": "none", "params": {}, "proposed": "restart", "rule": "observe"},
    ],
)
def test_other_decisions_open_no_proposal(journal: Journal, decision: dict[str, Any]) -> None:
    assert journal.proposal(propose(journal, decision)) is None


def test_approved_once_then_every_other_answer_is_refused_and_journaled(journal: Journal) -> None:
    decision_id = propose(journal)
    first = answer(journal, decision_id)
    assert (first["result"], first["state"], first["approver"], first["how"]) == (
        "approved",
        "approved",
        "ana",
        "command",
    )
    again = answer(journal, decision_id, approver="bo", how="link")
    deny = answer(journal, decision_id, approve=False)
    assert again["result"] == deny["result"] == "answered"
    assert journal.proposal(decision_id)["approver"] == "ana"  # type: ignore[index]
    attempts = journal.approval_attempts(decision_id)
    assert [(a["answer"], a["result"], a["approver"]) for a in attempts] == [
        ("approve", "approved", "ana"),
        ("approve", "answered", "bo"),
        ("deny", "answered", "ana"),
    ]


def test_denied(journal: Journal) -> None:
    decision_id = propose(journal)
    assert answer(journal, decision_id, approve=False)["result"] == "denied"
    assert answer(journal, decision_id)["result"] == "answered"
    assert journal.proposal(decision_id)["state"] == "denied"  # type: ignore[index]


def test_an_expired_proposal_is_marked_expired_and_never_approved(journal: Journal) -> None:
    decision_id = propose(journal)
    late = answer(journal, decision_id, minutes=31)
    assert (late["result"], late["state"]) == ("expired", "expired")
    assert answer(journal, decision_id, minutes=2)["result"] == "expired"  # even with a clock going back
    assert journal.proposal(decision_id)["state"] == "expired"  # type: ignore[index]


def test_a_decision_journaled_without_ttl_gets_its_proposal_when_answered(journal: Journal) -> None:
    decision_id = propose(journal, ttl=None)
    assert journal.proposal(decision_id) is None
    assert answer(journal, decision_id)["result"] == "approved"


def test_answering_what_proposes_nothing_fails_and_writes_nothing(journal: Journal) -> None:
    plain = propose(journal, {"action": "none", "params": {}, "proposed": None, "rule": "healthy"})
    with pytest.raises(JournalError, match="proposes no action"):
        answer(journal, plain)
    with pytest.raises(JournalError, match="no decision 999"):
        answer(journal, 999)
    with pytest.raises(JournalError, match="how must be one of"):
        answer(journal, plain, how="chat")
    assert journal.proposal(plain) is None
    assert journal.approval_attempts() == []


def test_settle_moves_only_an_approved_proposal(journal: Journal) -> None:
    decision_id = propose(journal)
    with pytest.raises(JournalError, match="not approved"):
        journal.settle_proposal(decision_id, "acted", detail="x")
    answer(journal, decision_id)
    acted = propose(journal, {"action": "scale_up", "params": {"replicas": 6}, "proposed": None, "rule": "scale-up"})
    journal.settle_proposal(decision_id, "acted", detail="scale_up claimed", acted_decision_id=acted)
    assert journal.proposal(decision_id)["acted_decision_id"] == acted  # type: ignore[index]
    with pytest.raises(JournalError, match="not approved"):
        journal.settle_proposal(decision_id, "stale", detail="again")


def test_of_many_racing_approvals_one_wins(journal_backend: JournalBackend) -> None:
    with Journal(journal_backend.target) as journal:
        decision_id = propose(journal)

    def race(n: int) -> str:
        with Journal(journal_backend.target) as own:
            return str(answer(own, decision_id, approver=f"p{n}")["result"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(race, range(8)))
    assert sorted(results) == ["answered"] * 7 + ["approved"]
    with Journal(journal_backend.target) as journal:
        assert len(journal.approval_attempts(decision_id)) == 8
        assert journal.proposals(state="approved")[0]["decision_id"] == decision_id


def test_a_refused_link_is_journaled_without_a_proposal(journal: Journal) -> None:
    journal.record_approval_attempt(None, approver=None, how="link", answer="approve", result="forged", reason="bad")
    assert [a["result"] for a in journal.approval_attempts()] == ["forged"]


def test_approvals_never_settled_are_swept_stale_once_and_nothing_else_moves(journal: Journal) -> None:
    abandoned, recent, pending, acted = (propose(journal) for _ in range(4))
    answer(journal, abandoned, minutes=1)
    answer(journal, recent, minutes=10)
    answer(journal, acted, minutes=1)
    journal.settle_proposal(acted, "acted", detail="claimed", acted_decision_id=pending)
    cutoff = NOW + timedelta(minutes=5)
    assert journal.settle_abandoned_approvals(cutoff, "its approver stopped") == [abandoned]
    states = {d: journal.proposal(d)["state"] for d in (abandoned, recent, pending, acted)}  # type: ignore[index]
    assert states == {abandoned: "stale", recent: "approved", pending: "pending", acted: "acted"}
    assert journal.proposal(abandoned)["detail"] == "its approver stopped"  # type: ignore[index]
    assert journal.settle_abandoned_approvals(cutoff, "again") == [], "a settled proposal is not settled twice"
    with pytest.raises(JournalError, match="not approved"):
        journal.settle_proposal(abandoned, "acted", detail="too late")


def test_two_sweepers_settle_each_abandoned_approval_once(journal_backend: JournalBackend) -> None:
    with Journal(journal_backend.target) as journal:
        ids = [propose(journal) for _ in range(6)]
        for decision_id in ids:
            answer(journal, decision_id)

    def sweep(_: int) -> list[int]:
        with Journal(journal_backend.target) as own:
            return own.settle_abandoned_approvals(NOW + timedelta(hours=1), "swept")

    with ThreadPoolExecutor(2) as pool:
        swept = [d for found in pool.map(sweep, range(2)) for d in found]
    assert sorted(swept) == ids
