"""The change gate's orchestration without a cluster: the loop's rollbacks read from a real journal, a replayed
gate snapshot judged and journaled, and the errors that give no answer."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.gate import GateEvidence, evidence_to_dict
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.gate import gate, loop_rollbacks
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW, ago, edited

INTENT = {"namespace": "shop", "service": "checkout"}


def params(**options: Any) -> dict[str, Any]:
    """The module's options with their defaults (``_argspec.change_gate_spec``)."""
    return {
        "change": "deploy",
        "force": False,
        "reason": None,
        "allow_unknown": False,
        "burn_window": "1m",
        "burn_rate": 6.0,
        "record": True,
        "requested_by": None,
        "change_id": None,
        **options,
    }


def decided(journal: Journal, rule: str, minutes_ago: float, revision: int, outcome: str | None) -> None:
    """A rollback decision of ``rule`` journaled ``minutes_ago``, and its action unless ``outcome`` is None."""
    at = NOW - timedelta(minutes=minutes_ago)
    decision = {
        "action": "rollback",
        "rule": rule,
        "params": {"to_revision": revision - 1},
        "evidence": {"revision": revision, "rollout_age_minutes": 4.0},
    }
    decision_id = journal.record_decision(namespace="shop", service="checkout", snapshot={}, decision=decision, at=at)
    if outcome is not None:
        journal.record_action(decision_id, "rollback", {}, outcome=outcome, started=at, ended=at)


def test_the_loop_s_rollbacks_come_from_its_decisions_that_ran(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.db") as journal:
        decided(journal, "rollback", 90, 8, "recovered")
        decided(journal, "manual", 60, 9, "recovered")  # a person rolled back: not the loop
        decided(journal, "rollback", 50, 10, None)  # decided, never run
        decided(journal, "rollback", 40, 11, "skipped")
        decided(journal, "rollback", 300, 7, "recovered")  # before the window
        found = loop_rollbacks(journal, INTENT, NOW - timedelta(minutes=120), NOW)
    assert [(r.revision, r.outcome) for r in found] == [(11, "skipped"), (8, "recovered")]
    eight = found[1]
    assert eight.at == NOW - timedelta(minutes=90) and eight.deployed_at == NOW - timedelta(minutes=94)
    assert loop_rollbacks(None, INTENT, NOW - timedelta(minutes=120), NOW) == []


def test_a_replayed_gate_snapshot_is_judged_and_journaled_with_the_pipeline_s_words(tmp_path: Path) -> None:
    revisions = [
        {"revision": 8, "created": ago(100), "image": "shop/checkout:1.42"},
        {"revision": 9, "created": ago(50), "image": "shop/checkout:1.43"},
        {"revision": 10, "created": "2026-03-01T10:00:00Z", "image": "shop/checkout:1.41"},
    ]
    with Journal(tmp_path / "journal.db") as journal:
        decided(journal, "rollback", 90, 8, "recovered")
        decided(journal, "rollback", 40, 9, "recovered")
        rollbacks = loop_rollbacks(journal, INTENT, NOW - timedelta(minutes=120), NOW)
    block = evidence_to_dict(GateEvidence(burn_error_rate=0.0, burn_window="1m", rollbacks=tuple(rollbacks)))
    document = {
        **edited({"observed.workload.revision": 10, "observed.workload.revisions": revisions}),
        "gate": block,
    }
    journal_path = str(tmp_path / "journal.db")
    opts = {"snapshot": document, "journal": journal_path, "requested_by": "{{ ci }}", "change_id": "mr!17"}
    denied = gate(params(**opts), lambda: pytest.fail("a replay needs no cluster"), check_mode=False)
    assert denied["allowed"] is False and denied["denied_by"] == ["bad-release-streak"], denied["reasons"]
    assert denied["retry_after"] == "2026-03-04T15:30:00Z"  # revision 8 leaves the 120-minute window
    assert denied["msg"] == "deploy of shop/checkout denied by bad-release-streak; retry after 2026-03-04T15:30:00Z"
    forced = gate(params(**opts, force=True, reason="1.44 fixes it"), lambda: None, check_mode=False)
    assert forced["allowed"] is True and forced["forced"] is True
    dry = gate(params(**opts, change="rollback"), lambda: None, check_mode=True)
    assert dry["allowed"] is True and dry["gate_id"] is None
    with Journal(journal_path) as journal:
        answers = journal.gate_answers(service="checkout", include_snapshot=True)
    assert [(a["id"], a["allowed"], a["rule"], a["forced"]) for a in answers] == [
        (forced["gate_id"], True, "allow", True),
        (denied["gate_id"], False, "bad-release-streak", False),
    ]
    assert {(a["requested_by"], a["change_id"]) for a in answers} == {("{{ ci }}", "mr!17")}
    assert answers[0]["answer"]["force_reason"] == "1.44 fixes it"
    assert answers[1]["snapshot"]["gate"]["rollbacks"] == block["rollbacks"]  # what it was judged on, replayable


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"change": "migrate", "snapshot": {}}, "unknown change kind 'migrate'; the kinds are deploy, config, scale"),
        ({"force": True, "snapshot": {}}, "options: reason: is required with force"),
        ({"snapshot": {**edited(), "intent": None}}, "snapshot: intent: is required"),
        ({"namespace": "shop", "service": "nope", "intents": [edited()["intent"]]}, "no intent for service shop/nope"),
    ],
)
def test_what_cannot_be_answered_fails_and_journals_nothing(tmp_path: Path, options: dict, message: str) -> None:
    journal = tmp_path / "journal.db"
    with pytest.raises(ValidationError, match=message):
        gate(params(**options, journal=str(journal)), lambda: pytest.fail("no cluster needed"), check_mode=False)
    if journal.exists():
        with Journal(journal) as reader:
            assert reader.gate_answers() == []
