"""zerotouch.selfheal.approval against the sandbox: check mode writes nothing, an answer is taken once (a second
changes nothing), an approval that no longer stands is stale and changes nothing, and bad input fails clearly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal

from tests.integration.helpers import (
    assert_failed,
    assert_ok,
    create_namespace,
    deployment_manifest,
    kube_client,
    rolled_out,
    run_tasks,
    task,
    wait_until,
)

pytestmark = pytest.mark.sandbox
NS = "mod-approval"
PROPOSING = {"action": "escalate", "params": {}, "proposed": "restart", "proposed_params": {}, "rule": "approval",
             "reasons": ["restart is listed in require_approval"], "evidence": {}}  # fmt: skip


@pytest.fixture(scope="module")
def kube(sandbox: dict[str, Any]) -> Any:
    kube = kube_client(sandbox)
    create_namespace(kube, NS)
    kube.apps.create_namespaced_deployment(NS, deployment_manifest(NS, "web", replicas=2))
    wait_until(lambda: rolled_out(kube, NS, "web"), what=f"{NS}/web to roll out")
    return kube


def propose(journal: Path) -> int:
    with Journal(journal) as j:
        return j.record_decision(
            namespace=NS, service="web", snapshot={}, decision=PROPOSING, approval_ttl=timedelta(minutes=30)
        )


def test_approve_check_mode_then_stale_then_answered(sandbox: dict[str, Any], kube: Any, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    intents = tmp_path / "intents.yml"
    intent = {"service": "web", "namespace": NS, "target": {"kind": "Deployment", "name": "web"},
              "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0}}  # fmt: skip
    intents.write_text(yaml.safe_dump([intent]))
    decision_id = propose(journal)
    answer = {
        "decision_id": decision_id,
        "approver": "ana",
        "journal": str(journal),
        "intents": str(intents),
        "prometheus_url": sandbox["prometheus_url"],
        "kubeconfig": sandbox["kubeconfig"],
    }
    run = run_tasks(tmp_path, [task("approval", check_mode=True, **answer), task("approval", **answer),
                               task("approval", **answer)])  # fmt: skip
    checked, approved, again = run.results
    assert_ok(checked, changed=True)
    assert checked["state"] == "pending" and "would check" in checked["msg"]
    # The healthy service needs no restart now: stale, and nothing is claimed or changed.
    assert_ok(approved, changed=True)
    assert approved["state"] == "stale" and approved["decision_id"] is None, approved["msg"]
    assert_ok(again, changed=False)
    assert again["state"] == "answered" and "answered already: stale" in again["msg"]
    with Journal(journal) as j:
        assert j.proposal(decision_id)["state"] == "stale"  # type: ignore[index]
        assert [a["result"] for a in j.approval_attempts(decision_id)] == ["approved", "answered"]
        assert len(j.query(namespace=NS)) == 1


def test_deny_and_bad_input(kube: Any, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    decision_id = propose(journal)
    common = {"journal": str(journal), "approver": "ana"}
    run = run_tasks(
        tmp_path,
        [
            task("approval", decision_id=decision_id, state="denied", **common),
            task("approval", decision_id=999, state="denied", **common),
            task("approval", decision_id=decision_id, state="denied", journal=str(journal), approver=" "),
            task("approval", decision_id=decision_id, state="denied", journal=str(tmp_path / "none.db"), approver="a"),
        ],
    )
    denied, unknown, nobody, nojournal = run.results
    assert_ok(denied, changed=True)
    assert denied["state"] == "denied"
    assert_failed(unknown, "no decision 999 in the journal")
    assert_failed(nobody, "approver: is required")
    assert_failed(nojournal, "no journal at")
    with Journal(journal) as j:
        assert [a["result"] for a in j.approval_attempts()] == ["denied"]
