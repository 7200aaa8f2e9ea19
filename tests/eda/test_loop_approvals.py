"""The warm loop's side of approvals: a proposing escalation carries the command and signed links, and an
approval from a link acts like a fresh acting decision (an event to the rule engine, verified by the loop)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import runner as _k8s
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import links as _links
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import warm
from ansible_collections.zerotouch.selfheal.tests.unit.plugins.module_utils._loop.test_check_claim import Locks

from .test_loop import INTENT, Harness, applied, firing, harness, wait_for  # noqa: F401 - harness is a fixture

SECRET = "loop-approval-secret-42"


class Proposing:
    """Stands in for _check.evaluate: first a rollback proposed for approval (journaled and claimed as the loop's
    check does), then - the re-check of the approval - the rollback itself, not journaled (record=False)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: Any, settings: Any, clients: Any, check_mode: bool = False) -> dict[str, Any]:
        self.calls += 1
        snapshot = {"id": "x", "intent": INTENT, "alert": None}
        if self.calls > 1:
            assert clients.record is False
            decision = {"action": "rollback", "params": {"to_revision": 1}, "proposed": None, "reasons": ["r"]}
            return {"decision": decision, "snapshot": snapshot, "decision_id": None}
        decision = {"action": "escalate", "params": {}, "proposed": "rollback", "proposed_params": {"to_revision": 1},
                    "reasons": ["mode is approve"], "rule": "approval"}  # fmt: skip
        decision_id = clients.journal.record_decision(
            namespace="shop", service="web", snapshot=snapshot, decision=decision, approval_ttl=timedelta(minutes=30)
        )
        action_id = clients.journal.record_action(decision_id, "escalate", {}, outcome="pending")
        claim = {"acquired": True, "holder": f"selfheal-remediate/decision-{decision_id}", "action_id": action_id}
        return {"decision": decision, "decision_id": decision_id, "snapshot": snapshot, "claim": claim}


async def test_a_link_approval_is_handed_to_the_rule_engine_and_verified(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness(Proposing(), approval_secret=SECRET, approval_url="https://loop.example:5000")
    monkeypatch.setattr(_k8s, "run_lock", Locks())
    await h.loop.offer(firing())
    (payload,) = await wait_for(lambda: h.posted)
    approval = payload["approval"]
    proposal_id = approval["decision_id"]
    assert (
        approval["command"]
        == f"ansible-playbook zerotouch.selfheal.approve -e decision={proposal_id} -e approver=<your name>"
    )
    split = urlsplit(approval["approve_url"])
    assert split.netloc == "loop.example:5000" and split.path == f"/approvals/{proposal_id}/approve"
    assert _links.verify(SECRET, str(proposal_id), "approve", dict(parse_qsl(split.query)), warm.datetime.now(warm.UTC))
    assert h.emitted == []

    result = await h.loop.answer(proposal_id, "ana", True)
    assert result["state"] == "acted"
    (event,) = h.emitted
    assert event == {"decision_id": result["decision_id"], "namespace": "shop", "service": "web", "action": "rollback"}
    applied(h, event["decision_id"])
    await wait_for(lambda: h.loop.stats.verifications["recovered"] == 1)
    with h.journal() as journal:
        assert journal.proposal(proposal_id)["state"] == "acted"  # type: ignore[index]
        (action,) = journal.decision(event["decision_id"])["actions"]  # type: ignore[index]
    assert (action["action"], action["outcome"]) == ("rollback", "recovered")
    again = await h.loop.answer(proposal_id, "bo", True)
    assert again["state"] == "answered" and len(h.emitted) == 1


async def test_without_a_secret_the_escalation_carries_the_command_only(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
) -> None:
    h = harness(Proposing())
    await h.loop.offer(firing())
    (payload,) = await wait_for(lambda: h.posted)
    assert set(payload["approval"]) == {"decision_id", "expires", "command"}


@pytest.mark.parametrize("secret", ["short", " "])
def test_a_weak_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="approval_secret"):
        warm.parse_options({"intents": "/i", "prometheus_url": "http://p", "approval_secret": secret})


class Observing:
    """Stands in for _check.evaluate in mode observe: the rollback that would be done, as a decision none."""

    def __call__(self, request: Any, settings: Any, clients: Any, check_mode: bool = False) -> dict[str, Any]:
        decision = {"action": "none", "params": {}, "proposed": "rollback", "proposed_params": {"to_revision": 1},
                    "reasons": ["mode is observe: rollback is what would be done"], "rule": "observe"}  # fmt: skip
        return {"decision": decision, "decision_id": None, "snapshot": {"intent": INTENT, "alert": None}}


@pytest.mark.parametrize("notify", [True, False])
async def test_observe_notifies_a_dry_run_only_when_the_policy_asks(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
    tmp_path: Any,
    notify: bool,
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(f"mode: observe\nobserve_notify: {str(notify).lower()}\n")
    h = harness(Observing(), policy=str(policy))
    await h.loop.offer(firing())
    await wait_for(lambda: h.loop.stats.checks["none"] == 1)
    if not notify:
        assert h.posted == []
        return
    (payload,) = await wait_for(lambda: h.posted)
    assert payload["summary"].startswith('Dry run (mode observe): would rollback {"to_revision": 1} on shop/web')
    assert payload["approval_required"] is False and "approval" not in payload
    assert h.emitted == []


async def test_a_restarted_loop_settles_an_approval_whose_re_check_never_ended(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
) -> None:
    """The process that approved a proposal died before its re-check ended: the proposal stays approved with
    nothing acting on it. The next loop settles it stale after its grace, and leaves one still pending alone."""
    first = harness(Proposing())
    await first.loop.offer(firing())
    (payload,) = await wait_for(lambda: first.posted)
    abandoned = payload["approval"]["decision_id"]
    with first.journal() as journal:
        journal.answer_proposal(
            abandoned,
            approve=True,
            approver="ana",
            how="link",
            expires=warm.datetime.now(warm.UTC) + timedelta(minutes=5),
        )
        proposing_restart = {"action": "escalate", "params": {}, "proposed": "restart", "reasons": ["r"]}
        pending = journal.record_decision(
            namespace="shop",
            service="api",
            snapshot={"id": "y"},
            decision=proposing_restart,
            approval_ttl=timedelta(minutes=30),
        )
    await first.loop.stop()

    again = harness(Proposing())
    again.loop.approval_grace_seconds = 0.05
    await again.loop.recover()
    with again.journal() as journal:
        await wait_for(lambda: journal.proposal(abandoned)["state"] == "stale")  # type: ignore[index]
        assert "stopped before its re-check" in journal.proposal(abandoned)["detail"]  # type: ignore[index]
        assert journal.proposal(pending)["state"] == "pending"  # type: ignore[index]
    assert again.emitted == [], "an abandoned approval is settled, never acted on unchecked"
