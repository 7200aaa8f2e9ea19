"""Answering a proposal: approve re-checks through the same check and claims the same action, or ends stale;
deny, expiry, a second answer and bad input change nothing (and bad input writes nothing)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import runner as _k8s
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import approve as _approve
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.tests.unit.plugins.module_utils._loop.test_check_claim import INTENT, Locks
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW

POLICY = {"mode": "approve", "require_approval": ["rollback", "scale_up"]}
PROPOSAL = {
    "action": "escalate",
    "params": {},
    "proposed": "scale_up",
    "proposed_params": {"replicas": 6},
    "reasons": ["mode is approve"],
    "evidence": {},
    "rule": "approval",
}


def decision(action: str, params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"action": action, "params": params or {}, "proposed": None, "proposed_params": {}, "reasons": ["r"],
            "evidence": {}, "rule": action, **extra}  # fmt: skip


class Recheck:
    """Stands in for check.evaluate: the decision the service gets now, and the policy it was checked under."""

    def __init__(self, decided: dict[str, Any], target: str = "checkout-api") -> None:
        self.decided = decided
        self.target = target
        self.policies: list[dict[str, Any]] = []
        self.recorded: list[bool] = []

    def __call__(self, request: Any, settings: Any, clients: Any, check_mode: bool = False) -> dict[str, Any]:
        self.policies.append(settings.policy)
        self.recorded.append(clients.record)
        intent = {**INTENT, "target": {"kind": "Deployment", "name": self.target}}
        return {"decision": self.decided, "snapshot": {"id": "now", "intent": intent, "alert": None}}


@pytest.fixture
def journal(tmp_path: Path) -> Any:
    with Journal(tmp_path / "journal.db") as j:
        yield j


@pytest.fixture
def locks(monkeypatch: pytest.MonkeyPatch) -> Locks:
    found = Locks()
    monkeypatch.setattr(_k8s, "run_lock", found)
    return found


def propose(journal: Journal, proposal: dict[str, Any] = PROPOSAL, minutes_ago: float = 1) -> int:
    return journal.record_decision(
        namespace="shop",
        service="checkout",
        snapshot={"id": "then", "intent": INTENT},
        decision=proposal,
        at=NOW - timedelta(minutes=minutes_ago),
        approval_ttl=timedelta(minutes=30),
    )


def answer(journal: Journal, decision_id: int, approve: bool = True, approver: str = "ana", **extra: Any) -> Any:
    return _approve.answer_proposal(
        _approve.Answer(decision_id, approver, extra.pop("how", "command"), approve),
        _check.Settings([INTENT], POLICY, None, 600),
        _check.Clients(lambda: object(), None, journal),
        extra.pop("now", NOW),
    )


def test_approved_and_still_standing_is_claimed_with_refreshed_params(
    journal: Journal, locks: Locks, monkeypatch: pytest.MonkeyPatch
) -> None:
    recheck = Recheck(decision("scale_up", {"replicas": 8}))
    monkeypatch.setattr(_check, "evaluate", recheck)
    proposal_id = propose(journal)
    result = answer(journal, proposal_id)
    assert result["state"] == "acted" and result["claim"]["acquired"]
    # Checked under the same policy with only the gate lifted, and not journaled before it was known to stand.
    assert recheck.policies[0]["mode"] == "auto" and recheck.policies[0]["require_approval"] == ["rollback"]
    assert recheck.recorded == [False]
    acted = journal.decision(result["decision_id"])
    assert acted is not None and (acted["action"], acted["decision"]["params"]) == ("scale_up", {"replicas": 8})
    assert acted["decision"]["reasons"][0] == f"approved by ana (command) from proposal {proposal_id}"
    assert [a["outcome"] for a in acted["actions"]] == ["pending"]
    assert locks.held_by == f"selfheal-remediate/decision-{result['decision_id']}"
    proposal = journal.proposal(proposal_id)
    assert proposal is not None
    assert (proposal["state"], proposal["approver"], proposal["how"], proposal["acted_decision_id"]) == (
        "acted",
        "ana",
        "command",
        result["decision_id"],
    )
    # A second approval does nothing, and says so.
    again = answer(journal, proposal_id, approver="bo", how="link")
    assert again["state"] == "answered" and "answered already: acted by ana (command)" in again["msg"]
    assert result["changed"] is True and again["changed"] is False
    assert len(recheck.policies) == 1 and len(journal.query(namespace="shop")) == 2


@pytest.mark.parametrize(
    ("decided", "target", "why"),
    [
        (decision("none"), "checkout-api", "no longer needs scale_up"),
        (decision("rollback", {"to_revision": 2}), "checkout-api", "now decides rollback, not scale_up"),
        (decision("escalate", rule="cooldown", reasons=["cooldown: restart 3 min ago"]), "checkout-api", "cooldown"),
        (decision("scale_up", {"replicas": 8}), "checkout-v2", "the target changed"),
    ],
)
def test_what_no_longer_stands_is_stale_and_changes_nothing(
    journal: Journal, locks: Locks, monkeypatch: pytest.MonkeyPatch, decided: dict[str, Any], target: str, why: str
) -> None:
    monkeypatch.setattr(_check, "evaluate", Recheck(decided, target))
    proposal_id = propose(journal)
    result = answer(journal, proposal_id)
    assert result["state"] == "stale" and why in result["msg"] and "nothing is changed" in result["msg"]
    assert locks.calls == [] and len(journal.query(namespace="shop")) == 1
    proposal = journal.proposal(proposal_id)
    assert proposal is not None and proposal["state"] == "stale" and why in proposal["detail"]


def test_a_failed_recheck_is_stale(journal: Journal, locks: Locks, monkeypatch: pytest.MonkeyPatch) -> None:
    def blind(*_args: Any, **_kwargs: Any) -> Any:
        raise ValidationError("cluster", "", "unreachable")

    monkeypatch.setattr(_check, "evaluate", blind)
    result = answer(journal, propose(journal))
    assert result["state"] == "stale" and "the re-check failed" in result["msg"] and locks.calls == []


def test_a_locked_target_is_stale(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_k8s, "run_lock", Locks(held_by="someone-else"))
    monkeypatch.setattr(_check, "evaluate", Recheck(decision("scale_up", {"replicas": 6})))
    proposal_id = propose(journal)
    result = answer(journal, proposal_id)
    assert result["state"] == "stale" and "locked by someone-else" in result["msg"]
    assert journal.proposal(proposal_id)["state"] == "stale"  # type: ignore[index]


def test_deny_and_expiry_change_nothing(journal: Journal, locks: Locks, monkeypatch: pytest.MonkeyPatch) -> None:
    recheck = Recheck(decision("scale_up", {"replicas": 6}))
    monkeypatch.setattr(_check, "evaluate", recheck)
    denied = answer(journal, propose(journal), approve=False)
    assert denied["state"] == "denied" and denied["proposal"]["state"] == "denied"
    expired = answer(journal, propose(journal, minutes_ago=31))
    assert expired["state"] == "expired" and "never acted on" in expired["msg"] and not expired["changed"]
    assert denied["changed"] is True
    assert recheck.policies == [] and locks.calls == []


@pytest.mark.parametrize(
    ("make", "approver", "error"),
    [
        (lambda j: 999, "ana", "no decision 999 in the journal"),
        (lambda j: propose(j, decision("scale_up", {"replicas": 6})), "ana", "proposes no action to approve"),
        (lambda j: propose(j, {**decision("none"), "proposed": "restart"}), "ana", "observe-mode dry run"),
        (lambda j: propose(j), "", "approver: is required"),
        (lambda j: propose(j), "  ", "approver: is required"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    journal: Journal, locks: Locks, make: Any, approver: str, error: str
) -> None:
    decision_id = make(journal)
    before = journal.proposal(decision_id) if decision_id != 999 else None
    with pytest.raises(ValidationError, match=error):
        answer(journal, decision_id, approver=approver)
    assert journal.approval_attempts() == [] and locks.calls == []
    assert (journal.proposal(decision_id) if decision_id != 999 else None) == before
