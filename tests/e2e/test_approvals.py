"""The trust ladder in the sandbox: observe changes nothing and journals the proposal; in approve mode an escalation
proposes a rollback, and approve.yml acts on it (re-checked, rolled back, verified) or denies it; a second
approval does nothing; a fault cleared before the approval makes it stale. Through the real rulebook, the
escalation carries signed links: the approve link acts once (the rule engine runs the remediation, the loop
verifies), a reused or an expired link gets 403. One namespace per outcome, a bad release in each, all set up once
for the module; one rulebook serves the link tests.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import parse_datetime

from sandbox import client
from sandbox.payloads import alert, notification
from sandbox.rulebook import Rulebook
from tests.e2e.test_remediate import (
    VERIFY,
    await_decision,
    image,
    intent,
    journaled,
    start_playbook,
    template,
)
from tests.integration.helpers import create_namespace, deployment_manifest, kube_client, rolled_out, wait_until

pytestmark = pytest.mark.sandbox

NAMESPACES = ("ap-observe", "ap-command", "ap-deny", "ap-stale", "ap-link", "ap-expired")
POLICY = {
    "mode": "approve",
    "overrides": {"namespaces": {"ap-observe": {"mode": "observe"}, "ap-expired": {"approval_ttl": "3s"}}},
}
SECRET = "e2e-approval-secret-0123456789"


@pytest.fixture(scope="module")
def loop(sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Deployment per namespace, rolled out to a bad release (revision 2), the intents and the policy."""
    files = tmp_path_factory.mktemp("approvals")
    (files / "intents").mkdir()
    intents = [intent(ns) for ns in NAMESPACES]
    (files / "intents.yml").write_text(yaml.safe_dump(intents))
    for one in intents:
        (files / "intents" / f"{one['namespace']}.yml").write_text(yaml.safe_dump([one]))
    (files / "policy.yml").write_text(yaml.safe_dump(POLICY))
    kube = kube_client(sandbox)
    for namespace in NAMESPACES:
        create_namespace(kube, namespace)
        kube.apps.create_namespaced_deployment(
            namespace, deployment_manifest(namespace, "web", replicas=2, image=image(namespace))
        )
    for namespace in NAMESPACES:
        wait_until(lambda ns=namespace: rolled_out(kube, ns, "web"), what=f"{namespace}/web to roll out")
    injected = {ns: client.inject(sandbox, "bad-rollout", namespace=ns, service="web") for ns in NAMESPACES}
    state = {**sandbox, "intents": files / "intents.yml", "policy": files / "policy.yml", "kube": kube}
    try:
        yield {**state, "faults": injected}
    finally:
        active = {fault["id"] for fault in client.faults(sandbox)}
        for fault in injected.values():
            if fault["id"] in active:
                client.clear(sandbox, fault["id"])


@pytest.fixture(scope="module")
def rulebook(loop: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rulebook]:
    """zerotouch.selfheal.remediate with approval links; alerts are posted to it directly (no Alertmanager)."""
    base = tmp_path_factory.mktemp("approvals-rulebook")
    extra = {**VERIFY, "approval_secret": SECRET}
    running = Rulebook(loop, run_dir=base, intents=loop["intents"], policy=loop["policy"], extra_vars=extra)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def escalated(loop: dict[str, Any], rulebook: Rulebook, namespace: str) -> dict[str, Any]:
    """Post the namespace's alert to the rulebook; return the approval block of the escalation it sends."""
    body = notification(alert("ErrorRate", namespace=namespace, service="web", fingerprint=f"{namespace}-fp"))
    request = urllib.request.Request(
        rulebook.url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {rulebook.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200

    def sent() -> dict[str, Any] | None:
        for record in client.received(loop):
            payload = record["payload"]
            if (payload.get("service") or {}).get("namespace") == namespace and payload.get("approval"):
                return payload["approval"]  # type: ignore[no-any-return]
        return None

    return wait_until(sent, timeout=90, interval=1, what=f"the escalation of {namespace}")


def link(url: str, approver: str | None = None) -> tuple[int, str]:
    """GET a link (approver None) or POST its form, as a browser does."""
    data = urllib.parse.urlencode({"approver": approver}).encode() if approver is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def revision(loop: dict[str, Any], namespace: str) -> str:
    return str(
        loop["kube"].deployment(namespace, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    )


def propose(loop: dict[str, Any], namespace: str, journal: Path) -> dict[str, Any]:
    """remediate.yml once the check proposes the rollback: the escalation, journaled with its proposal."""
    chosen = await_decision(loop, namespace, "escalate")
    assert (chosen["rule"], chosen["proposed"]) == ("approval", "rollback"), chosen["reasons"]
    start_playbook(loop, "remediate", journal, namespace=namespace, service="web").wait()
    (entry,) = journaled(journal, namespace)
    assert (entry["action"], entry["proposed"]) == ("escalate", "rollback")
    return entry


def approve(loop: dict[str, Any], journal: Path, decision_id: int, *args: str, **extra: Any) -> str:
    return start_playbook(loop, "approve", journal, *args, decision=decision_id, approver="ana", **extra).wait()


def proposal(journal: Path, decision_id: int) -> dict[str, Any]:
    with Journal(journal) as j:
        found = j.proposal(decision_id)
    assert found is not None
    return found


def test_observe_changes_nothing_and_journals_the_proposal(loop: dict[str, Any], tmp_path: Path) -> None:
    ns, journal = "ap-observe", tmp_path / "journal.db"
    await_decision(loop, ns, "none")
    before = template(loop, ns)
    start_playbook(loop, "remediate", journal, namespace=ns, service="web").wait()
    (entry,) = journaled(journal, ns)
    assert (entry["action"], entry["proposed"], entry["rule"]) == ("none", "rollback", "observe")
    assert entry["actions"] == [] and template(loop, ns) == before and revision(loop, ns) == "2"
    refused = start_playbook(loop, "approve", journal, decision=entry["id"], approver="ana")
    refused.proc.wait(timeout=300)
    assert refused.proc.returncode != 0 and "observe-mode dry run" in refused.log.read_text()


def test_approve_by_command_acts_once_and_verifies(loop: dict[str, Any], tmp_path: Path) -> None:
    ns, journal = "ap-command", tmp_path / "journal.db"
    entry = propose(loop, ns, journal)
    assert revision(loop, ns) == "2"
    sent = [r["payload"] for r in client.received(loop) if (r["payload"].get("service") or {}).get("namespace") == ns]
    assert [p["approval"]["command"] for p in sent] == [
        f"ansible-playbook zerotouch.selfheal.approve -e decision={entry['id']} -e approver=<your name>"
    ]
    output = approve(loop, journal, entry["id"])
    assert "the check still decides it" in output
    first, acted = journaled(journal, ns)
    assert acted["action"] == "rollback" and acted["decision"]["reasons"][0].startswith("approved by ana (command)")
    (done,) = acted["actions"]
    assert (done["action"], done["outcome"], done["changed"]) == ("rollback", "recovered", True), done["detail"]
    assert template(loop, ns)["spec"]["containers"][0]["image"] == image(ns)  # the first release's again
    answered = proposal(journal, entry["id"])
    assert (answered["state"], answered["approver"], answered["how"], answered["acted_decision_id"]) == (
        "acted",
        "ana",
        "command",
        acted["id"],
    )
    template_after = template(loop, ns)
    again = approve(loop, journal, entry["id"])
    assert "answered already: acted by ana (command)" in again
    assert len(journaled(journal, ns)) == 2 and template(loop, ns) == template_after


def test_deny_changes_nothing(loop: dict[str, Any], tmp_path: Path) -> None:
    ns, journal = "ap-deny", tmp_path / "journal.db"
    entry = propose(loop, ns, journal)
    before = template(loop, ns)
    assert "denied rollback" in approve(loop, journal, entry["id"], deny="true")
    assert proposal(journal, entry["id"])["state"] == "denied"
    assert template(loop, ns) == before and revision(loop, ns) == "2" and len(journaled(journal, ns)) == 1


def test_a_fault_cleared_before_the_approval_makes_it_stale(loop: dict[str, Any], tmp_path: Path) -> None:
    ns, journal = "ap-stale", tmp_path / "journal.db"
    entry = propose(loop, ns, journal)
    client.clear(loop, loop["faults"][ns]["id"])
    await_decision(loop, ns, "none")
    before = template(loop, ns)
    output = approve(loop, journal, entry["id"])
    assert "it is stale: the service no longer needs rollback" in output
    assert proposal(journal, entry["id"])["state"] == "stale"
    assert template(loop, ns) == before and len(journaled(journal, ns)) == 1


def test_bad_input_prints_the_usage_or_a_clear_error(loop: dict[str, Any], tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    Journal(journal).close()
    usage = start_playbook(loop, "approve", journal, decision=1)
    usage.proc.wait(timeout=300)
    assert usage.proc.returncode != 0 and "usage: ansible-playbook zerotouch.selfheal.approve" in usage.log.read_text()
    unknown = start_playbook(loop, "approve", journal, decision=999, approver="ana")
    unknown.proc.wait(timeout=300)
    assert unknown.proc.returncode != 0 and "no decision 999 in the journal" in unknown.log.read_text()
    with Journal(journal) as j:
        assert j.approval_attempts() == []


def test_approve_by_link_acts_once_through_the_rulebook(loop: dict[str, Any], rulebook: Rulebook) -> None:
    ns = "ap-link"
    await_decision(loop, ns, "escalate")
    approval = escalated(loop, rulebook, ns)
    assert approval["command"].startswith("ansible-playbook zerotouch.selfheal.approve -e decision=")
    status, page = link(approval["approve_url"])  # a preview: the confirm page, nothing changes
    assert status == 200 and "Approve rollback" in page and revision(loop, ns) == "2"
    status, page = link(approval["approve_url"], approver="bo")
    assert status == 200 and "the check still decides it" in page, page

    def recovered() -> dict[str, Any] | None:
        for entry in journaled(Path(rulebook.journal), ns):
            if entry["action"] == "rollback" and [a["outcome"] for a in entry["actions"]] == ["recovered"]:
                return entry
        return None

    acted = wait_until(recovered, timeout=180, interval=2, what="the approved rollback to be verified")
    assert acted["decision"]["reasons"][0].startswith("approved by bo (link)")
    assert template(loop, ns)["spec"]["containers"][0]["image"] == image(ns)
    status, page = link(approval["deny_url"], approver="bo")  # reused: the proposal is answered
    assert status == 403 and "answered already" in page
    with Journal(Path(rulebook.journal)) as j:
        results = [a["result"] for a in j.approval_attempts(approval["decision_id"])]
    assert results == ["approved", "reused"]


def test_an_expired_link_is_403_and_changes_nothing(loop: dict[str, Any], rulebook: Rulebook) -> None:
    ns = "ap-expired"
    await_decision(loop, ns, "escalate")
    approval = escalated(loop, rulebook, ns)
    before = template(loop, ns)
    wait_until(lambda: time.time() > parse_datetime(approval["expires"]).timestamp(), timeout=30, what="expiry")
    status, page = link(approval["approve_url"], approver="bo")
    assert status == 403 and "expired" in page
    assert template(loop, ns) == before
    with Journal(Path(rulebook.journal)) as j:
        assert [a["result"] for a in j.approval_attempts(approval["decision_id"])] == ["expired"]
