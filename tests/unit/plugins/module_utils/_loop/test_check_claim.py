"""intent_check's claim: the lock and the journal entry taken for the decided action, and what happens between."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import Decision
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import runner as _k8s
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend

INTENT = {"service": "checkout", "namespace": "shop", "target": {"kind": "Deployment", "name": "checkout-api"}}
DECISION = Decision("rollback", {"to_revision": 3}, None, ("errors after a rollout",), {})


class Locks:
    """Stands in for _k8s.run_lock: one Lease per target, held by whoever took it first."""

    def __init__(self, held_by: str | None = None) -> None:
        self.held_by = held_by
        self.calls: list[dict[str, Any]] = []

    def __call__(self, kube: Any, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
        self.calls.append(dict(params, check_mode=check_mode))
        if params.get("state") == "released":
            if self.held_by == params["holder"] and not check_mode:
                self.held_by = None
            return {"changed": True, "acquired": False, "held_by": self.held_by, "msg": "released"}
        free = self.held_by in (None, params["holder"])
        if free and not check_mode:
            self.held_by = params["holder"]
        held_by = params["holder"] if free else self.held_by
        return {"changed": free, "acquired": free, "held_by": held_by, "expires_at": None, "msg": "lock"}


def recorded_decision(journal: str) -> int:
    with Journal(journal) as j:
        return j.record_decision(
            namespace="shop", service="checkout", snapshot={}, decision=DECISION.to_dict(), fingerprint=None
        )


def claim(journal: str, decision_id: int | None, check_mode: bool = False) -> dict[str, Any]:
    params = {"journal": journal, "lock_ttl_seconds": 600}
    return _check.claim(object(), params, INTENT, DECISION, decision_id, check_mode)


def test_a_claim_locks_the_target_and_journals_the_start(
    monkeypatch: pytest.MonkeyPatch, journal_backend: JournalBackend
) -> None:
    locks = Locks()
    monkeypatch.setattr(_k8s, "run_lock", locks)
    journal = journal_backend.target
    decision_id = recorded_decision(journal)
    result = claim(journal, decision_id)
    assert result["acquired"] is True and result["changed"] is True
    assert result["holder"] == locks.held_by == f"selfheal-remediate/decision-{decision_id}"
    assert locks.calls[0]["name"] == "checkout-api" and locks.calls[0]["ttl_seconds"] == 600
    with Journal(journal) as j:
        (row,) = j.query(namespace="shop", service="checkout")
    assert [(a["id"], a["action"], a["outcome"]) for a in row["actions"]] == [
        (result["action_id"], "rollback", "pending")
    ]


def test_a_held_target_is_journaled_as_skipped(
    monkeypatch: pytest.MonkeyPatch, journal_backend: JournalBackend
) -> None:
    monkeypatch.setattr(_k8s, "run_lock", Locks(held_by="selfheal-remediate/decision-99"))
    journal = journal_backend.target
    result = claim(journal, recorded_decision(journal))
    assert result["acquired"] is False and result["changed"] is False
    with Journal(journal) as j:
        (row,) = j.query(namespace="shop", service="checkout")
    (action,) = row["actions"]
    assert (action["outcome"], action["detail"]) == ("skipped", "skipped: locked by selfheal-remediate/decision-99")


def test_check_mode_takes_nothing_and_journals_nothing(
    monkeypatch: pytest.MonkeyPatch, journal_backend: JournalBackend
) -> None:
    locks = Locks()
    monkeypatch.setattr(_k8s, "run_lock", locks)
    result = claim(journal_backend.target, None, check_mode=True)
    assert result["acquired"] is True and result["action_id"] is None
    assert result["holder"] == "selfheal-remediate/check-mode" and locks.held_by is None
    assert not journal_backend.created()


def test_a_start_that_cannot_be_journaled_gives_the_lock_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    locks = Locks()
    monkeypatch.setattr(_k8s, "run_lock", locks)

    def broken(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
        raise JournalError("the journal is read-only")

    monkeypatch.setattr(_check, "journal_action", broken)
    with pytest.raises(JournalError, match="read-only"):
        claim(str(tmp_path / "journal.db"), 7)
    assert [c.get("state") for c in locks.calls] == [None, "released"]
    assert locks.held_by is None


def test_claim_needs_a_live_recorded_check() -> None:
    for params in ({"claim": True, "snapshot": {"id": "x"}, "record": True}, {"claim": True, "record": False}):
        with pytest.raises(ValidationError, match="claim: needs a live check that records its decision"):
            _check.check(params, lambda: None, False)


def test_an_action_journaled_after_the_check_read_its_history_makes_the_claim_stand_down(
    monkeypatch: pytest.MonkeyPatch, journal_backend: JournalBackend
) -> None:
    """Another loop's lock lapsed while it worked (a loaded machine) and this check, which read the history before
    that loop's action was journaled, got the lock: it gives the lock back and journals its action skipped."""
    from datetime import UTC, datetime, timedelta

    locks = Locks()
    monkeypatch.setattr(_k8s, "run_lock", locks)
    target = journal_backend.target
    looked_at = datetime.now(UTC) - timedelta(seconds=30)
    with Journal(target) as journal:
        earlier = recorded_decision(target)
        journal.record_action(earlier, "restart", {}, outcome="recovered", started=looked_at - timedelta(minutes=5))
        mine = recorded_decision(target)
        params = {"journal": None, "lock_ttl_seconds": 600}
        stands = _check.claim(object(), params, INTENT, DECISION, mine, False, journal=journal, looked_at=looked_at)
        assert stands["acquired"] is True, "an action from before the check's look is in what it decided on"
        journal.finish_action(stands["action_id"], outcome="recovered", changed=True, detail="done")
        locks.held_by = None

        late = recorded_decision(target)
        other = _check.claim(object(), params, INTENT, DECISION, late, False, journal=journal, looked_at=looked_at)
        assert other["acquired"] is False and locks.held_by is None, "the lock is given back"
        (action,) = journal.decision(late)["actions"]  # type: ignore[index]
    assert action["outcome"] == "skipped"
    assert action["detail"].startswith("skipped: rollback on the service was journaled at "), action["detail"]
