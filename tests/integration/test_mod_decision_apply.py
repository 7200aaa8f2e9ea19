"""zerotouch.selfheal.decision_apply against the sandbox: claimed decisions read by id, applied, journaled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal

from tests.integration.helpers import (
    assert_failed,
    assert_ok,
    bad_release,
    in_diff,
    kube_client,
    run_tasks,
    task,
    template_of,
)

pytestmark = pytest.mark.sandbox
NS = "mod-decision-apply"


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    """web: revision 1 runs shop/web:1.0, revision 2 (current, the bad release) shop/web:2.0."""
    kube = kube_client(sandbox)
    bad_release(kube, NS)
    return kube


def claimed(journal: Path, deployment: str) -> tuple[int, int]:
    """A rollback decision as the event source leaves it: recorded with its snapshot, its action pending."""
    intent = {"namespace": NS, "service": deployment, "target": {"kind": "Deployment", "name": deployment}}
    decision = {"action": "rollback", "params": {"to_revision": 1}, "proposed": None, "reasons": ["errors"]}
    with Journal(str(journal)) as j:
        decision_id = j.record_decision(
            namespace=NS, service=deployment, snapshot={"intent": intent}, decision=decision, fingerprint=None
        )
        return decision_id, j.start_action(decision_id, "rollback", {"to_revision": 1})


def action(journal: Path, action_id: int) -> dict[str, Any]:
    with Journal(str(journal)) as j:
        return j.action(action_id)  # type: ignore[return-value]


def test_a_claimed_rollback_is_applied_by_id_and_reported_to_the_loop(kube: Any, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    decision_id, action_id = claimed(journal, "web")
    apply = task("decision_apply", decision_ids=[decision_id], journal=str(journal))

    dry = run_tasks(tmp_path, [apply], check=True, diff=True)
    assert_ok(dry[0], changed=True)
    assert dry[0]["msg"].startswith(f"decision {decision_id}: would roll back {NS}/web from revision 2 to revision 1")
    assert in_diff(dry.stdout, "+", "shop/web:1.0")
    assert template_of(kube.deployment(NS, "web"))["spec"]["containers"][0]["image"] == "shop/web:2.0"
    untouched = action(journal, action_id)
    assert (untouched["applied"], untouched["run"]) == (None, None), "check mode journals nothing"

    done = run_tasks(tmp_path, [apply])
    assert_ok(done[0], changed=True)
    assert [(d["decision_id"], d["action"], d["changed"]) for d in done[0]["decisions"]] == [
        (decision_id, "rollback", True)
    ]
    assert template_of(kube.deployment(NS, "web"))["spec"]["containers"][0]["image"] == "shop/web:1.0"
    reported = action(journal, action_id)
    assert reported["outcome"] == "pending", "the loop verifies it and journals the outcome"
    assert reported["applied"] is not None and reported["changed"] is True
    assert reported["run"]["pid"] is not None, "the playbook named its process on the action"


def test_a_rollback_that_cannot_be_made_is_journaled_failed_for_the_loop_to_escalate(kube: Any, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    decision_id, action_id = claimed(journal, "gone")
    (result,) = run_tasks(tmp_path, [task("decision_apply", decision_ids=str(decision_id), journal=str(journal))])
    assert_failed(result, f"decision {decision_id}: rollback failed:")
    failed = action(journal, action_id)
    assert failed["outcome"] == "failed" and "gone" in failed["detail"]
    (again,) = run_tasks(tmp_path, [task("decision_apply", decision_ids=[decision_id], journal=str(journal))])
    assert_failed(again, f"decision {decision_id} (rollback) has no claimed, pending action")
