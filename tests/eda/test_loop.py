"""The sources' control loop (_loop/warm.py) with a real journal and a scripted check, look and webhook.

The check itself (``_check.evaluate``) is the module's and is tested with it; here it is replaced by a script that
journals like it does (decision, claimed pending action), so what is under test is the loop's own logic: what
reaches the rule engine, coalescing per service, the settle after a decision not to act, the hand-over to the
playbook through the journal, verification, escalation and the lock given back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.assess import Assessment
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ApiError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import runner as _k8s
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs, warm
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import verify as _verify

from sandbox.payloads import alert, notification

INTENT = {
    "service": "web",
    "namespace": "shop",
    "target": {"kind": "Deployment", "name": "web"},
    "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
}


def firing(service: str = "web", fingerprint: str = "f1", **labels: str) -> dict[str, Any]:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._alerts import normalize

    body = notification(alert(service=service, namespace="shop", fingerprint=fingerprint, **labels))
    return normalize(body)[0]  # type: ignore[no-any-return]


class Script:
    """Stands in for _check.evaluate: answers the scripted actions in turn, journaling as evaluate does."""

    def __init__(self, actions: list[str], delay: float = 0.0) -> None:
        self.actions = list(actions)
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any, settings: Any, clients: Any, check_mode: bool = False) -> dict[str, Any]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            action = self.actions.pop(0) if self.actions else "none"
        try:
            time.sleep(self.delay)
            self.calls.append({"service": request.service, "alert": request.alert})
            if action == "fail":
                raise ApiError("cannot list pods: connection refused")
            decision = {"action": action, "params": {}, "reasons": [f"scripted {action}"], "rule": action}
            intent = {**INTENT, "service": request.service}
            alert_block = {k: request.alert[k] for k in ("status", "labels", "annotations", "fingerprint")}
            with clients.phases.timing("record"):
                decision_id = clients.journal.record_decision(
                    namespace="shop",
                    service=request.service,
                    snapshot={"id": "x", "intent": intent, "alert": alert_block},
                    decision=decision,
                    fingerprint=request.alert.get("fingerprint"),
                    alert_status="firing",
                )
            snapshot = {"intent": intent, "alert": alert_block}
            result: dict[str, Any] = {"decision": decision, "decision_id": decision_id, "snapshot": snapshot}
            if action != "none":
                action_id = clients.journal.record_action(decision_id, action, {}, outcome="pending")
                holder = f"selfheal-remediate/decision-{decision_id}"
                result["claim"] = {"acquired": True, "holder": holder, "action_id": action_id}
            return result
        finally:
            with self._lock:
                self.running -= 1


class Harness:
    """A loop with a fake rule engine: ``events`` as emitted, ``emitted`` each decision they hand over, in order."""

    def __init__(
        self,
        loop: warm.Loop,
        events: list[dict[str, Any]],
        emitted: list[dict[str, Any]],
        posted: list[dict[str, Any]],
    ) -> None:
        self.loop, self.events, self.emitted, self.posted = loop, events, emitted, posted

    def journal(self) -> Journal:
        return Journal(self.loop.config.journal)


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., Harness]]:
    intents = tmp_path / "intents.yml"
    intents.write_text(yaml.safe_dump({"intents": [INTENT, {**INTENT, "service": "api"}]}))
    released: list[dict[str, Any]] = []
    monkeypatch.setattr(_k8s, "run_lock", lambda kube, params, check, diff: released.append(params) or {})
    made: list[warm.Loop] = []

    def make(script: Script, looks: list[bool] | None = None, **options: Any) -> Harness:
        monkeypatch.setattr(warm._check, "evaluate", script)
        answers = list(looks or [True])

        def looker(intent: Any, policy: Any, kube: Any, prom: Any) -> Any:
            def look() -> tuple[Assessment, dict[str, Any]]:
                met = answers.pop(0) if len(answers) > 1 else answers[0]
                return Assessment(met, () if met else ("p99 latency 900 ms breaches max_latency_ms 250",), {}), {}

            return look

        monkeypatch.setattr(_verify, "looker", looker)
        events: list[dict[str, Any]] = []
        emitted: list[dict[str, Any]] = []
        posted: list[dict[str, Any]] = []

        async def emit(event: dict[str, Any]) -> None:
            assert event["decision_ids"] == [d["decision_id"] for d in event["decisions"]]
            events.append(event)
            emitted.extend(event["decisions"])

        def post(url: str, payload: Any) -> int:
            posted.append(json.loads(json.dumps(payload)))
            return 200

        args = {
            "intents": str(intents),
            "prometheus_url": "http://127.0.0.1:9",
            "journal": str(tmp_path / "journal.db"),
            "escalation_url": "http://hooks.example/selfheal",
            "verify_settle_seconds": 0,
            "verify_interval": 0.01,
            "verify_window_seconds": 0,
            "verify_timeout_seconds": 0.05,
            "recheck_settle_seconds": 0.3,
            **options,
        }
        config = dataclasses.replace(warm.parse_options(args), poll_seconds=0.02)
        loop = warm.Loop(config, emit, kube_factory=object, post=post)
        loop.released = released  # type: ignore[attr-defined]
        made.append(loop)
        return Harness(loop, events, emitted, posted)

    yield make
    for loop in made:
        await loop.stop()


async def wait_for(probe: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
    return found


async def killed_with_two_claims(harness: Callable[..., Harness]) -> tuple[Harness, dict[str, dict[str, Any]]]:
    """A loop that rolled web back and scaled api, then died before verifying either; web's playbook reported its
    change (its report came late), api's did not. Returns the dead loop's harness and its events by service."""
    first = harness(Script(["rollback", "scale_up"], delay=0.05), workers=1)  # web is checked first
    await first.loop.offer(firing(service="web", fingerprint="w"))
    await first.loop.offer(firing(service="api", fingerprint="a"))
    await wait_for(lambda: len(first.emitted) == 2)
    by_service = {e["service"]: e for e in first.emitted}
    await first.loop.stop()  # the process dies: nothing was verified
    applied(first, by_service["web"]["decision_id"])
    return first, by_service


def fake_playbook(tmp_path: Path, seconds: int = 60) -> subprocess.Popen[bytes]:
    """A process that /proc shows as ``ansible-playbook``, in a session of its own as ansible-runner starts one."""
    fake = tmp_path / "ansible-playbook"
    fake.write_text(f"import time\ntime.sleep({seconds})\n")
    return subprocess.Popen([sys.executable, str(fake)], start_new_session=True)


async def name_run(h: Harness, decision_id: int, playbook: subprocess.Popen[bytes]) -> None:
    """What the remediate playbook does first: name its process on the decision's pending action."""
    deadline = time.monotonic() + 10
    while (run := runs.this_run(playbook.pid)) is None:  # the stand-in is up once /proc shows its argv
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    with h.journal() as journal:
        (pending,) = [a for a in journal.decision(decision_id)["actions"] if a["outcome"] == "pending"]
        assert journal.record_run(pending["id"], run)


def applied(h: Harness, decision_id: int) -> None:
    """What the remediate playbook does once its role has changed the cluster."""
    with h.journal() as journal:
        (pending,) = [a for a in journal.decision(decision_id)["actions"] if a["outcome"] == "pending"]
        journal.mark_applied(pending["id"], changed=True, detail="rolled back shop/web")


async def test_a_decision_not_to_act_starts_nothing_and_the_next_alert_is_checked_after_the_settle(
    harness: Callable[..., Harness],
) -> None:
    """The blind throttle, gone: a warning decided 'none', then the page within the settle still remediates."""
    script = Script(["none", "rollback"])
    h = harness(script)
    await h.loop.offer(firing(fingerprint="warn", severity="warning"))
    await wait_for(lambda: h.loop.stats.checks["none"] == 1)
    started = time.monotonic()
    await h.loop.offer(firing(fingerprint="page", severity="page"))  # during the settle: waits, is not dropped
    assert h.emitted == [] and len(script.calls) == 1
    event = await wait_for(lambda: h.emitted and h.emitted[0])
    assert 0.25 < time.monotonic() - started < 2.0, "checked again once recheck_settle_seconds had passed"
    assert h.events == [{"kind": "remediate", "decision_ids": [event["decision_id"]], "decisions": [event]}]
    assert set(event) == {"decision_id", "namespace", "service", "action"}
    assert (event["namespace"], event["service"], event["action"]) == ("shop", "web", "rollback")
    assert [c["alert"]["fingerprint"] for c in script.calls] == ["warn", "page"]
    with h.journal() as journal:
        first = journal.query(namespace="shop", action="none")[0]
        assert [link["alert"]["fingerprint"] for link in journal.linked_alerts(first["id"])] == ["page"]
    assert h.loop.stats.checks["none"] == 1 and h.loop.stats.events == 1


async def test_alerts_during_a_check_and_an_action_are_linked_to_its_decision_and_check_nothing(
    harness: Callable[..., Harness],
) -> None:
    script = Script(["rollback"], delay=0.2)
    h = harness(script)
    await h.loop.offer(firing(fingerprint="a"))
    await h.loop.offer(firing(fingerprint="b", alertname="HighErrorRate"))  # while checked
    event = await wait_for(lambda: h.emitted and h.emitted[0])
    await h.loop.offer(firing(fingerprint="c", alertname="LowAvailability"))  # while acting
    applied(h, event["decision_id"])
    await wait_for(lambda: h.loop.stats.verifications["recovered"] == 1)
    assert len(script.calls) == 1 and len(h.emitted) == 1
    with h.journal() as journal:
        links = journal.linked_alerts(event["decision_id"])
        decision = journal.decision(event["decision_id"])
    assert sorted(link["fingerprint"] for link in links) == ["b", "c"]
    assert {link["incident_id"] for link in links} == {decision["incident_id"]}
    assert h.loop.stats.coalesced == 2


async def test_an_alert_that_comes_while_the_check_links_the_others_is_linked_before_it_is_acknowledged(
    harness: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(Script(["rollback"], delay=0.2))
    linking, slow = threading.Event(), h.loop._link_all

    def link(links: list[tuple[int, dict[str, Any], str]]) -> None:
        linking.set()
        time.sleep(0.3)  # a slow journal write: the service is still being checked
        slow(links)

    monkeypatch.setattr(h.loop, "_link_all", link)
    await h.loop.offer(firing(fingerprint="a"))
    first = await h.loop.offer(firing(fingerprint="b", alertname="HighErrorRate"))  # while checked
    await wait_for(linking.is_set)
    late = await h.loop.offer(firing(fingerprint="c", alertname="LowAvailability"))  # while b is linked
    assert late is first is not None
    await asyncio.wait_for(late, timeout=5)  # acknowledged (the spool lets it go) ...
    (event,) = h.emitted
    with h.journal() as journal:  # ... only once it is journaled
        assert sorted(link["fingerprint"] for link in journal.linked_alerts(event["decision_id"])) == ["b", "c"]


async def test_the_source_verifies_what_the_playbook_applied_journals_it_and_gives_the_lock_back(
    harness: Callable[..., Harness],
) -> None:
    h = harness(Script(["rollback"]), looks=[False, True])
    await h.loop.offer(firing())
    event = await wait_for(lambda: h.emitted and h.emitted[0])
    await asyncio.sleep(0.1)
    assert h.loop.services["shop/web"].phase == "acting", "nothing is verified before the change is applied"
    applied(h, event["decision_id"])
    await wait_for(lambda: h.loop.stats.verifications["recovered"] == 1)
    with h.journal() as journal:
        (action,) = journal.decision(event["decision_id"])["actions"]
    assert action["outcome"] == "recovered" and action["detail"].startswith("rolled back shop/web; recovered")
    assert h.loop.released == [
        {
            "namespace": "shop",
            "name": "web",
            "holder": f"selfheal-remediate/decision-{event['decision_id']}",
            "state": "released",
        }
    ]
    assert h.posted == []


async def test_what_does_not_recover_is_escalated_from_the_source(harness: Callable[..., Harness]) -> None:
    h = harness(Script(["rollback"]), looks=[False])
    await h.loop.offer(firing())
    event = await wait_for(lambda: h.emitted and h.emitted[0])
    applied(h, event["decision_id"])
    await wait_for(lambda: h.loop.stats.verifications["not_recovered"] == 1)
    await wait_for(lambda: h.loop.released)
    with h.journal() as journal:
        actions = journal.decision(event["decision_id"])["actions"]
    assert [(a["action"], a["outcome"]) for a in actions] == [
        ("rollback", "not_recovered"),
        ("escalate", "not_recovered"),
    ]
    (payload,) = h.posted
    assert payload["summary"] == "rollback of shop/web did not recover web"
    assert payload["reasons"] == ["p99 latency 900 ms breaches max_latency_ms 250"]


async def test_an_action_the_playbook_could_not_apply_is_escalated_from_the_source_with_its_reason(
    harness: Callable[..., Harness],
) -> None:
    h = harness(Script(["rollback"]))
    await h.loop.offer(firing())
    event = await wait_for(lambda: h.emitted and h.emitted[0])
    with h.journal() as journal:  # what decision_apply journals when the change cannot be made
        (pending,) = journal.decision(event["decision_id"])["actions"]
        journal.finish_action(pending["id"], outcome="failed", detail="rollback failed: 403 Forbidden")
    await wait_for(lambda: h.loop.stats.verifications["failed"] == 1)
    await wait_for(lambda: h.loop.released)
    with h.journal() as journal:
        actions = journal.decision(event["decision_id"])["actions"]
    assert [(a["action"], a["outcome"]) for a in actions] == [("rollback", "failed"), ("escalate", "not_recovered")]
    (payload,) = h.posted
    assert payload["summary"] == "rollback of shop/web failed"
    assert payload["reasons"] == ["rollback failed: 403 Forbidden"]
    assert h.loop.released[-1]["holder"] == f"selfheal-remediate/decision-{event['decision_id']}"


async def test_escalate_decisions_and_failed_checks_are_posted_journaled_and_never_reach_the_rule_engine(
    harness: Callable[..., Harness],
) -> None:
    h = harness(Script(["escalate", "fail"]), workers=1)  # one worker: web is checked first
    await h.loop.offer(firing(service="web"))
    await h.loop.offer(firing(service="api", fingerprint="f2"))
    await wait_for(lambda: len(h.posted) == 2)
    await wait_for(lambda: h.loop.stats.checks["error"] == 1 and h.loop.stats.checks["escalate"] == 1)
    assert h.emitted == []
    with h.journal() as journal:
        failed = journal.query(namespace="shop", service="api")[0]
        escalated = journal.query(namespace="shop", service="web")[0]
    assert failed["rule"] == "check-failed" and "connection refused" in failed["decision"]["reasons"][0]
    assert failed["fingerprint"] == "f2", "the failed check's alert keeps its incident"
    assert [(a["action"], a["outcome"]) for a in escalated["actions"]] == [("escalate", "not_recovered")]
    assert h.loop.released and h.loop.released[0]["holder"].endswith(f"decision-{escalated['id']}")


async def test_loops_on_one_journal_page_a_human_once_per_service_within_the_settle(
    harness: Callable[..., Harness],
) -> None:
    # Two receivers of one Alertmanager, each given another of the same fault's alerts: the second escalation
    # about the service finds the first in the journal and is not sent.
    script = Script(["escalate", "escalate", "escalate"])
    first, second = harness(script, recheck_settle_seconds=30), harness(script, recheck_settle_seconds=30)
    await first.loop.offer(firing(fingerprint="f1", alertname="HighErrorRate"))
    await wait_for(lambda: first.loop.stats.checks["escalate"] == 1)
    await second.loop.offer(firing(fingerprint="f2", alertname="LowAvailability"))
    await wait_for(lambda: second.loop.stats.checks["escalate"] == 1)
    assert len(first.posted) == 1 and second.posted == []
    assert second.loop.stats.escalations == {"sent": 0, "failed": 0, "held": 1}
    with first.journal() as journal:
        decisions = sorted(journal.query(namespace="shop", service="web"), key=lambda d: d["id"])
    assert [[(a["action"], a["outcome"]) for a in d["actions"]] for d in decisions] == [
        [("escalate", "not_recovered")],
        [("escalate", "skipped")],
    ]
    assert "a human was told about this service at" in decisions[1]["actions"][0]["detail"]
    # Another service is its own page.
    await second.loop.offer(firing(service="api", fingerprint="f3"))
    await wait_for(lambda: len(second.posted) == 1)


async def test_the_worker_pool_bounds_checks_and_holds_the_intake_when_full(harness: Callable[..., Harness]) -> None:
    script = Script(["none"] * 3, delay=0.3)
    h = harness(script, workers=1)
    await h.loop.offer(firing(service="web"))
    began = time.monotonic()
    await h.loop.offer(firing(service="api", fingerprint="f2"))  # waits for the one worker
    assert time.monotonic() - began > 0.2
    await wait_for(lambda: h.loop.stats.checks["none"] == 2)
    assert script.most_at_once == 1
    text = h.loop.metrics("selfheal_test")
    assert 'selfheal_test_checks_total{decision="none"} 2' in text
    assert 'selfheal_test_check_cpu_seconds{quantile="0.99"}' in text
    # Where the checks' time went, by phase: journaling each decision took some; nothing read the cluster.
    phases = {
        line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if "check_phase_seconds{" in line
    }
    assert phases['selfheal_test_check_phase_seconds{phase="record",quantile="0.5"}'] > 0
    assert phases['selfheal_test_check_phase_seconds{phase="cluster",quantile="0.5"}'] == 0


async def test_a_resolved_alert_closes_its_incident_in_the_source(harness: Callable[..., Harness]) -> None:
    h = harness(Script(["none"]))
    await h.loop.offer(firing(fingerprint="r1"))
    await wait_for(lambda: h.loop.stats.checks["none"] == 1)
    resolved = {**firing(fingerprint="r1"), "status": "resolved"}
    await h.loop.offer(resolved)
    assert h.loop.stats.closed == 1
    with h.journal() as journal:
        (incident,) = journal.incidents(namespace="shop")
    assert incident["status"] == "closed"
    assert h.emitted == []


async def test_after_a_restart_what_was_applied_is_verified_and_what_never_started_is_released_and_checked_again(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    _first, by_service = await killed_with_two_claims(harness)

    again = harness(Script(["none"]))
    again.loop.clients._kube = Leases()  # the dead loop's leases are gone
    await again.loop.recover()
    await wait_for(lambda: again.loop.stats.verifications["recovered"] == 1)
    await wait_for(lambda: again.loop.stats.checks["none"] == 1)
    with again.journal() as journal:
        web = journal.decision(by_service["web"]["decision_id"])["actions"]
        api = journal.decision(by_service["api"]["decision_id"])["actions"]
    assert [(a["action"], a["outcome"]) for a in web] == [("rollback", "recovered")]
    assert [(a["action"], a["outcome"]) for a in api] == [("scale_up", "skipped")]
    assert "restarted" in api[0]["detail"]
    holders = [p["holder"] for p in again.loop.released]  # type: ignore[attr-defined]
    assert f"selfheal-remediate/decision-{by_service['api']['decision_id']}" in holders
    assert again.emitted == [], "the re-check of api decided none this time"


async def test_two_loops_restarted_on_one_journal_settle_each_unfinished_action_once(
    harness: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The intent watch's and the alertmanager source's rulebooks share one journal file and restart together.
    first, by_service = await killed_with_two_claims(harness)  # web's playbook reported its change: verify it
    playbook = fake_playbook(tmp_path)
    try:  # api's playbook started, named itself, and died before it reported: run it again
        await name_run(first, by_service["api"]["decision_id"], playbook)
    finally:
        playbook.kill()
        playbook.wait()

    watch, remediate = harness(Script(["none"])), harness(Script(["none"]))
    monkeypatch.setattr(
        _k8s,
        "run_lock",
        lambda kube, params, check, diff: {"acquired": params.get("state") != "released", "held_by": params["holder"]},
    )
    for h in (watch, remediate):
        h.loop.clients._kube = Leases()
    await asyncio.gather(watch.loop.recover(), remediate.loop.recover())
    both = (watch.loop, remediate.loop)
    await wait_for(lambda: watch.emitted or remediate.emitted)
    await wait_for(lambda: sum(lp.stats.verifications["recovered"] for lp in both) == 1)
    await asyncio.sleep(0.5)  # time for the other loop to settle the same actions again, were it let
    assert watch.emitted + remediate.emitted == [by_service["api"]], "api's action is run again once, not twice"
    assert sum(lp.stats.verifications["recovered"] for lp in both) == 1, "web's rollback is verified once"
    with watch.journal() as journal:
        web = journal.decision(by_service["web"]["decision_id"])["actions"]
    assert [(a["action"], a["outcome"]) for a in web] == [("rollback", "recovered")]


async def test_a_restarted_loop_settles_what_a_killed_loop_held_once_the_killed_loops_name_lapses(
    harness: Callable[..., Harness],
) -> None:
    first, by_service = await killed_with_two_claims(harness)
    with first.journal() as journal:  # killed, not stopped: its name in the journal lives a moment more
        journal.renew_instance(first.loop.instance, timedelta(seconds=1.5))
        assert journal.hold_actions(first.loop.instance, [e["decision_id"] for e in first.emitted]) == 2

    again = harness(Script(["none"]), lock_lease_seconds=3)
    again.loop.clients._kube = Leases()
    await again.loop.recover()
    await wait_for(lambda: again.loop.stats.verifications["recovered"] == 1, timeout=10)
    await wait_for(lambda: again.loop.stats.checks["none"] >= 1, timeout=10)
    with again.journal() as journal:
        api = journal.decision(by_service["api"]["decision_id"])["actions"]
    assert [(a["action"], a["outcome"]) for a in api] == [("scale_up", "skipped")]


async def test_an_alert_leaves_the_spool_only_once_its_check_is_journaled(tmp_path: Path) -> None:
    import runpy

    from tests.eda.conftest import SOURCE_FILE

    source = runpy.run_path(str(SOURCE_FILE))
    spool = source["Spool"](tmp_path / "spool")
    spool.open()
    outbox = source["Outbox"](10, spool, [])
    journaled: list[asyncio.Future[None]] = []

    async def sink(alert: dict[str, Any]) -> asyncio.Future[None]:
        journaled.append(asyncio.get_running_loop().create_future())
        return journaled[-1]

    outbox.add([{"fingerprint": "x1"}, {"fingerprint": "x2"}])
    drain = asyncio.create_task(outbox.drain_into(sink))
    await wait_for(lambda: len(journaled) == 2)
    assert spool.pending == 2, "handed to the loop is not journaled"
    journaled[1].set_result(None)
    await asyncio.sleep(0.01)
    assert spool.pending == 2, "acknowledged in order: x1 is not journaled yet"
    journaled[0].set_result(None)
    await asyncio.sleep(0.01)
    assert spool.pending == 0
    drain.cancel()
    spool.close()


class Leases:
    """The Lease of each target, as a cluster keeps it: enough of the Kubernetes client for the loop's renewals."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.renewals: list[str] = []

    def get(self, api: str, kind: str, namespace: str, name: str, missing_ok: bool = False) -> Any:
        return self.leases.get((namespace, name))

    def converge(self, make_plan: Callable[[], Any], check: bool, diff: bool) -> dict[str, Any]:
        plan = make_plan()
        for change in plan.changes:
            self.leases[(change.namespace, change.name)] = change.body
            self.renewals.append(change.body["spec"]["renewTime"])
        return {**plan.result, "changed": plan.changed, "msg": plan.message}


async def test_the_loop_renews_its_claim_while_it_verifies_and_stops_once_it_is_given_back(
    harness: Callable[..., Harness],
) -> None:
    h = harness(Script(["rollback"]), lock_lease_seconds=3, verify_window_seconds=2.4, verify_timeout_seconds=5)
    leases = Leases()
    h.loop.clients._kube = leases
    await h.loop.offer(firing())
    (event,) = await wait_for(lambda: h.emitted)
    holder = f"selfheal-remediate/decision-{event['decision_id']}"
    leases.leases[("shop", "selfheal-web")] = {
        "metadata": {"name": "selfheal-web", "namespace": "shop"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3, "renewTime": "2026-01-01T00:00:00.000000Z"},
    }
    applied(h, event["decision_id"])
    await wait_for(lambda: len(leases.renewals) >= 2, timeout=10)  # every second while it is verified
    await wait_for(lambda: h.loop.stats.verifications["recovered"] == 1, timeout=10)
    renewed = len(leases.renewals)
    await asyncio.sleep(1.5)
    assert len(leases.renewals) == renewed, "a finished claim is not renewed"
    assert leases.leases[("shop", "selfheal-web")]["spec"]["leaseDurationSeconds"] == 3


async def test_a_claim_taken_over_is_not_renewed(harness: Callable[..., Harness]) -> None:
    h = harness(Script(["rollback"]), lock_lease_seconds=3)
    leases = Leases()
    leases.leases[("shop", "selfheal-web")] = {
        "metadata": {"name": "selfheal-web"},
        "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3},
    }
    h.loop.clients._kube = leases
    result = {"snapshot": {"intent": INTENT}, "claim": {"holder": "selfheal-remediate/decision-1"}}
    assert await asyncio.to_thread(h.loop._renew, result) is False
    assert leases.renewals == []


async def test_after_a_restart_the_playbooks_the_loop_before_started_are_stopped_first(
    harness: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ansible-runner starts each playbook in its own session, so it outlives a kill of ansible-rulebook's group.
    The loop that starts next stops the ones the journal names. The one that applied its change is verified; the
    one that started but did not report may have changed the cluster, so the same decision runs again (still
    holding its lock) and is verified, never decided afresh; one that no playbook took up is skipped and decided
    again, and a playbook that comes too late for it acts on nothing."""
    first = harness(Script(["rollback", "scale_up", "restart"], delay=0.05), workers=1)
    for service, fingerprint in (("web", "w"), ("api", "a"), ("db", "d")):
        await first.loop.offer(firing(service=service, fingerprint=fingerprint))
    await wait_for(lambda: len(first.emitted) == 3)
    by_service = {e["service"]: e for e in first.emitted}
    await first.loop.stop()  # killed: the playbooks it started go on

    playbooks = {service: fake_playbook(tmp_path, 120) for service in ("web", "api")}
    try:
        for service, proc in playbooks.items():
            await name_run(first, by_service[service]["decision_id"], proc)
        applied(first, by_service["web"]["decision_id"])  # web's playbook reported its change; api's did not

        again = harness(Script(["none"]))
        released = again.loop.released  # type: ignore[attr-defined]
        taken: list[dict[str, Any]] = []

        def locks(kube: Any, params: dict[str, Any], check: bool, diff: bool) -> dict[str, Any]:
            (released if params.get("state") == "released" else taken).append(params)
            return {"acquired": params.get("state") != "released", "held_by": params["holder"], "msg": "lock"}

        monkeypatch.setattr(_k8s, "run_lock", locks)
        again.loop.clients._kube = Leases()
        await again.loop.recover()
        for proc in playbooks.values():
            await wait_for(lambda p=proc: p.poll() is not None, timeout=10)
            assert proc.returncode == -9, "stopped by the loop that started again"
        api_id = by_service["api"]["decision_id"]
        await wait_for(lambda: again.emitted)
        assert again.emitted == [by_service["api"]], "api's decision is handed over again, not decided afresh"
        assert [t["holder"] for t in taken] == [f"selfheal-remediate/decision-{api_id}"]
        applied(again, api_id)  # the second playbook finishes what the first one began
        await wait_for(lambda: again.loop.stats.verifications["recovered"] == 2)
        await wait_for(lambda: again.loop.stats.checks["none"] == 1)
        with again.journal() as journal:
            web, api, db = (journal.decision(by_service[s]["decision_id"])["actions"] for s in ("web", "api", "db"))
            assert [(a["action"], a["outcome"]) for a in web] == [("rollback", "recovered")]
            assert [(a["action"], a["outcome"]) for a in api] == [("scale_up", "recovered")]
            assert [(a["action"], a["outcome"]) for a in db] == [("restart", "skipped")]
            assert "restarted" in db[0]["detail"] and "stopped" not in db[0]["detail"]
            assert journal.record_run(db[0]["id"], {"pid": os.getpid()}) is False, "db's late playbook acts on nothing"
        holders = [p["holder"] for p in released]
        for service in ("api", "db", "web"):
            assert f"selfheal-remediate/decision-{by_service[service]['decision_id']}" in holders
    finally:
        for proc in playbooks.values():
            proc.kill()
            proc.wait()


class Cluster:
    """A cluster that serves one healthy Deployment (two ready pods), for the real check."""

    def get(self, api: str, kind: str, namespace: str, name: str, missing_ok: bool = False) -> Any:
        return {
            "metadata": {"name": name, "namespace": namespace, "generation": 1, "annotations": {}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {"spec": {}}},
            "status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "observedGeneration": 1},
        }

    def list(self, api: str, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Any]:
        return []


async def test_a_prometheus_that_hangs_ends_the_check_at_its_timeout_in_an_escalation_and_intake_goes_on(
    harness: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real check against a Prometheus that accepts and never answers: the check's timeout bounds it, the
    indicators are unknown, and the loop escalates (blind) instead of acting; alerts of other services are
    still taken meanwhile."""
    import socket

    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check_module

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # accepts connections (the kernel does), answers nothing
    real_evaluate = _check_module.evaluate
    h = harness(Script([]), timeout=0.5, workers=1)
    monkeypatch.setattr(warm._check, "evaluate", real_evaluate)
    lock = {"changed": True, "acquired": True, "expires_at": None, "msg": "locked"}
    monkeypatch.setattr(_k8s, "run_lock", lambda kube, params, check, diff: {**lock, "held_by": params["holder"]})
    h.loop.clients._kube = Cluster()
    h.loop.clients.prom = warm._prom.PromClient(f"http://127.0.0.1:{hung.getsockname()[1]}", timeout=0.5)
    try:
        journaled = await h.loop.offer(firing(service="web", fingerprint="w"))
        assert journaled is not None
        await asyncio.wait_for(journaled, timeout=30)  # bounded: never the 10 s default, nor forever
        assert h.loop.stats.checks["escalate"] == 1 and h.emitted == []
        with h.journal() as journal:
            (decision,) = journal.query(namespace="shop", service="web")
        assert decision["action"] == "escalate" and decision["rule"] == "blind"
        assert [a["action"] for a in decision["actions"]] == ["escalate"]
        assert any("unknown" in reason for reason in decision["decision"]["reasons"])
        assert h.posted and h.posted[0]["decision"]["rule"] == "blind"
        # The intake is not held by the hung check's service: another service's alert is taken and checked.
        other = await h.loop.offer(firing(service="api", fingerprint="a"))
        assert other is not None
        await asyncio.wait_for(other, timeout=30)
        assert h.loop.stats.checks["escalate"] == 2 and h.loop.stats.checks["error"] == 0
    finally:
        hung.close()


async def test_a_kubernetes_api_that_hangs_ends_the_check_at_its_timeout_in_an_escalation_and_intake_goes_on(
    harness: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real check and the loop's own Kubernetes client against an API server that accepts and never answers:
    the loop's timeout bounds each API call (not the client's 30 s default), nothing is decided on a cluster it
    could not read, and the loop escalates instead of acting; the intake keeps taking alerts meanwhile."""
    import socket

    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check_module

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # accepts connections (the kernel does), answers nothing
    real_evaluate = _check_module.evaluate
    h = harness(Script([]), timeout=0.5, workers=1)
    monkeypatch.setattr(warm._check, "evaluate", real_evaluate)
    monkeypatch.setenv("K8S_AUTH_HOST", f"http://127.0.0.1:{hung.getsockname()[1]}")
    monkeypatch.setenv("K8S_AUTH_API_KEY", "token")
    h.loop.clients._kube_factory = h.loop.clients._connect  # the loop's own client, as in ansible-rulebook
    try:
        started = time.monotonic()
        journaled = await h.loop.offer(firing(service="web", fingerprint="w"))
        assert journaled is not None
        await asyncio.wait_for(journaled, timeout=20)
        assert time.monotonic() - started < 10, "bounded by the loop's timeout, not the client's default"
        assert h.emitted == [], "nothing acts on a cluster it could not read"
        with h.journal() as journal:
            (decision,) = journal.query(namespace="shop", service="web")
        # A check that could not read the cluster is journaled as a failed check (an escalation with its reason)
        # and told to a human; no action row, because nothing was decided about the service itself.
        assert (decision["action"], decision["rule"], decision["actions"]) == ("escalate", warm.FAILED_RULE, [])
        (reason,) = decision["decision"]["reasons"]
        assert "cannot read deployment shop/web" in reason and "timed out" in reason, reason
        assert [p["decision"]["rule"] for p in h.posted] == [warm.FAILED_RULE]
        other = await h.loop.offer(firing(service="api", fingerprint="a"))
        assert other is not None
        await asyncio.wait_for(other, timeout=20)
        assert h.loop.stats.checks["error"] == 2 and h.loop.stats.checks["act"] == 0
    finally:
        hung.close()


async def test_a_restarted_loop_leaves_claims_whose_lease_is_renewed_alone_until_it_lapses(
    harness: Callable[..., Harness],
) -> None:
    """Another loop on the same journal (the other source, a second receiver) renews its claims: the journal's
    unfinished action is its, not the dead loop's, and is settled only once nobody renews its lease."""
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.plans import micro_time

    first = harness(Script(["rollback"]))
    await first.loop.offer(firing())
    (event,) = await wait_for(lambda: first.emitted)
    await first.loop.stop()
    holder = f"selfheal-remediate/decision-{event['decision_id']}"
    leases = Leases()

    def renewed_now() -> None:  # what the live loop does every lease / 3
        leases.leases[("shop", "selfheal-web")] = {
            "metadata": {"name": "selfheal-web"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3, "renewTime": micro_time(datetime.now(UTC))},
        }

    renewed_now()
    again = harness(Script(["none"]), lock_lease_seconds=3)
    again.loop.clients._kube = leases
    await again.loop.recover()
    for _ in range(3):
        await asyncio.sleep(1)
        renewed_now()
    with again.journal() as journal:
        (action,) = journal.decision(event["decision_id"])["actions"]
    assert action["outcome"] == "pending", "a claim that is renewed belongs to a live loop"
    assert again.loop.services["shop/web"].phase == "acting"  # its alerts are linked to it meanwhile
    await wait_for(lambda: again.loop.stats.checks["none"] == 1, timeout=10)  # lapsed: settled, checked again
    with again.journal() as journal:
        (action,) = journal.decision(event["decision_id"])["actions"]
    assert action["outcome"] == "skipped"
