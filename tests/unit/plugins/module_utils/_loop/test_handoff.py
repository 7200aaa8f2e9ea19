"""decision_apply's core: claimed decisions read by id, applied in one process, journaled for the loop."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ApiError, SelfHealError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import handoff
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend

INTENT = {"service": "checkout", "namespace": "shop", "target": {"kind": "Deployment", "name": "checkout-api"}}
RUN = {"host": "h", "boot": "b", "pid": 4242, "start": 99, "session": 4242}


def claimed(journal: str, action: str = "rollback", params: dict[str, Any] | None = None, **intent: Any) -> int:
    """A decision as the loop leaves it for the playbook: recorded, its action started (pending), no run named."""
    params = {"to_revision": 3} if params is None else params
    decision = {"action": action, "params": params, "proposed": None, "reasons": ["why"], "evidence": {}}
    with Journal(journal) as j:
        decision_id = j.record_decision(
            namespace="shop",
            service=intent.get("service", "checkout"),
            snapshot={"intent": {**INTENT, **intent}},
            decision=decision,
            fingerprint=None,
        )
        j.start_action(decision_id, action, params)
    return decision_id


def pending(journal: str, decision_id: int) -> dict[str, Any]:
    with Journal(journal) as j:
        (action,) = j.decision(decision_id)["actions"]  # type: ignore[index]
        return j.action(action["id"])  # type: ignore[return-value]


class Runner:
    """Stands in for one action module's runner; fails for the Deployments named in ``failing``."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[dict[str, Any], bool]] = []
        self.failing = failing

    def __call__(self, kube: Any, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
        self.calls.append((params, check_mode))
        if params["name"] in self.failing:
            raise ApiError(f"cannot patch shop/{params['name']}: 403 Forbidden")
        return {"changed": True, "msg": f"rolled back shop/{params['name']}"}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Runner:
    fake = Runner()
    monkeypatch.setattr(handoff, "runners", lambda: {module: fake for module in handoff.MODULES.values()})
    monkeypatch.setattr(handoff._runs, "this_run", lambda: RUN)
    return fake


def apply(journal: str, ids: list[int], check_mode: bool = False, **params: Any) -> dict[str, Any]:
    connected: list[object] = []
    result = handoff.apply(
        {"journal": journal, "decision_ids": ids, **params},
        lambda: connected.append(object()) or connected[-1],
        check_mode,
        False,
    )
    assert len(connected) <= 1, "one connection for the whole burst"
    return result


def test_a_burst_of_decisions_is_applied_in_one_run_each_named_and_reported_applied(
    runner: Runner, journal_backend: JournalBackend
) -> None:
    journal = journal_backend.target
    ids = [claimed(journal, service=s, target={"kind": "Deployment", "name": s}) for s in ("web", "api", "cart")]
    result = apply(journal, ids)
    assert [c[0]["name"] for c in runner.calls] == ["web", "api", "cart"]
    assert runner.calls[0][0] == {"namespace": "shop", "name": "web", "revision": 3}
    assert [d["decision_id"] for d in result["decisions"]] == ids and result["changed"] is True
    for decision_id in ids:
        action = pending(journal, decision_id)
        assert action["outcome"] == "pending", "the loop verifies and finishes it"
        assert action["applied"] is not None and action["run"] == RUN and action["changed"] is True


def test_an_action_that_fails_is_journaled_failed_with_its_reason_and_the_others_still_apply(
    runner: Runner, journal_backend: JournalBackend
) -> None:
    journal = journal_backend.target
    runner.failing = ("api",)
    web, api = (claimed(journal, service=s, target={"kind": "Deployment", "name": s}) for s in ("web", "api"))
    with pytest.raises(SelfHealError, match=f"decision {api}: rollback failed: cannot patch shop/api: 403 Forbidden"):
        apply(journal, [api, web])
    failed = pending(journal, api)
    assert failed["outcome"] == "failed" and "403 Forbidden" in failed["detail"] and failed["applied"] is None
    assert pending(journal, web)["applied"] is not None


def test_a_decision_settled_meanwhile_or_unknown_is_not_acted_on(
    runner: Runner, journal_backend: JournalBackend
) -> None:
    journal = journal_backend.target
    settled, live = claimed(journal), claimed(journal)
    with Journal(journal) as j:
        assert j.settle_unstarted(pending(journal, settled)["id"], "skipped: the loop restarted") is True
    with pytest.raises(SelfHealError) as failure:
        apply(journal, [settled, 9999, live])
    assert f"decision {settled} (rollback) has no claimed, pending action" in str(failure.value)
    assert "no decision 9999 in the journal" in str(failure.value)
    assert len(runner.calls) == 1, "only the live decision is acted on"
    assert pending(journal, live)["applied"] is not None


def test_check_mode_names_no_run_and_journals_nothing(runner: Runner, tmp_path: Any) -> None:
    journal = str(tmp_path / "journal.db")
    decision_id = claimed(journal)
    result = apply(journal, [decision_id], check_mode=True)
    assert runner.calls[0][1] is True and result["decisions"][0]["changed"] is True
    action = pending(journal, decision_id)
    assert action["run"] is None and action["applied"] is None and action["outcome"] == "pending"


def test_the_operators_tenant_options_and_the_rulebook_defaults_reach_the_module(runner: Runner, tmp_path: Any) -> None:
    journal = str(tmp_path / "journal.db")
    tenant = claimed(journal, "isolate_tenant", {"tenant": "acme"})
    scale = claimed(journal, "scale_up", {"replicas": 4})
    apply(journal, [tenant, scale], tenant_limit_rps=12.5, tenant_limit_ttl_minutes=0)
    (limited, _), (scaled, _) = runner.calls
    assert (limited["tenant"], limited["requests_per_second"], limited["ttl_minutes"]) == ("acme", 12.5, None)
    assert limited["state"] == "present"
    assert scaled["replicas"] == 4 and scaled["wait"] is False, "the loop verifies: the playbook does not wait"


def test_bad_input_is_refused_with_a_reason(runner: Runner, tmp_path: Any) -> None:
    with pytest.raises(ValidationError, match="no journal at"):
        apply(str(tmp_path / "missing.db"), [1])
    journal = str(tmp_path / "journal.db")
    escalation = claimed(journal, "escalate", {})
    with pytest.raises(SelfHealError, match=f"decision {escalation}: escalate failed: .*escalate is not applied"):
        apply(journal, [escalation])
    with pytest.raises(ValidationError, match="no decision to apply"):
        apply(journal, [])


def test_a_bug_in_an_action_is_journaled_failed_and_raised_with_its_traceback(
    runner: Runner, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    journal = str(tmp_path / "journal.db")
    broken, fine = claimed(journal), claimed(journal, service="web", target={"kind": "Deployment", "name": "web"})

    def buggy(kube: Any, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
        if params["name"] == "checkout-api":
            raise KeyError("status")
        return runner(kube, params, check_mode, diff)

    monkeypatch.setattr(handoff, "runners", lambda: {module: buggy for module in handoff.MODULES.values()})
    with pytest.raises(KeyError):
        apply(journal, [broken, fine])
    failed = pending(journal, broken)
    assert failed["outcome"] == "failed" and "KeyError('status')" in failed["detail"]
    assert pending(journal, fine)["applied"] is not None, "the next decision was still applied"
