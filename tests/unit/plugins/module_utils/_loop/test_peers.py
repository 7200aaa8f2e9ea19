"""Two receivers on one journal (both backends): each alert is checked by one of them; what a receiver that died
accepted and never checked is checked by the other; a dead loop's unfinished action is settled once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import peers as _peers
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import warm as _warm
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend

DECISION = {"action": "rollback", "params": {}, "proposed": None, "rule": "rollback", "reasons": ["r"]}
NONE = {**DECISION, "action": "none", "rule": "no-impact"}  # what FakeLoop's checks decide


def alert(fp: str, service: str = "cart") -> dict[str, Any]:
    return {
        "fingerprint": fp,
        "status": "firing",
        "startsAt": "2026-03-04T15:00:00Z",
        "namespace": "shop",
        "service": service,
        "labels": {"alertname": "HighErrorRate"},
    }


class FakeLoop:
    """The parts of _warm.Loop that Peers uses; ``offer`` journals a decision for each alert (its check), unless
    ``checks`` is False (a loop that dies before its checks are journaled)."""

    def __init__(self, target: str, checks: bool = True) -> None:
        self.config = replace(_warm.Config(intents="unused"), journal=target, lock_lease_seconds=3)
        self.db = Journal(target)
        self.clients = self
        self.checks = checks
        self.offered: list[str] = []
        self.services: dict[str, _warm.Service] = {}
        self.unfinished: list[dict[str, Any]] = []
        self.lease_left: float | None = None
        self.recovered: list[int] = []
        self.instance = _warm.instance_id()
        self._heartbeat: asyncio.Task[None] | None = None

    # The real liveness: the heartbeat, the lease and the actions it follows, the retirement.
    renew = _warm.Loop.renew
    following = _warm.Loop.following
    stay_alive = _warm.Loop.stay_alive
    _stay_alive = _warm.Loop._stay_alive
    retire = _warm.Loop.retire

    async def offer(self, alert: dict[str, Any]) -> asyncio.Future[None] | None:
        self.offered.append(alert["fingerprint"])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.checks:
            self.db.record_decision(
                namespace="shop", service="cart", snapshot={}, decision=NONE, fingerprint=alert["fingerprint"]
            )
            done.set_result(None)
        return done

    def journal(self) -> Journal:
        return self.db

    async def _in_pool(self, work: Any, *args: Any) -> Any:
        return work(*args)

    def _unfinished(self) -> list[dict[str, Any]]:
        return self.unfinished

    def _lease_left(self, result: dict[str, Any]) -> float | None:
        return self.lease_left

    def _spawn(self, work: Any) -> None:
        asyncio.ensure_future(work)

    async def _recover_one(self, state: _warm.Service, result: dict[str, Any]) -> None:
        self.recovered.append(int(result["claim"]["action_id"]))
        state.phase = "idle"

    async def _settle_abandoned_approvals(self, started: Any) -> None:
        self.approvals_swept = started


@pytest.fixture
def target(journal_backend: JournalBackend) -> str:
    Journal(journal_backend.target).close()
    return journal_backend.target


def pair(target: str, a_checks: bool = True) -> tuple[FakeLoop, _peers.Peers, FakeLoop, _peers.Peers]:
    a, b = FakeLoop(target, a_checks), FakeLoop(target)
    return a, _peers.Peers(a, "a"), b, _peers.Peers(b, "b")  # type: ignore[arg-type]


def test_only_a_postgresql_journal_is_shared() -> None:
    assert _peers.shared(replace(_warm.Config(intents="x"), journal="postgresql://h/db"))
    assert not _peers.shared(replace(_warm.Config(intents="x"), journal="/var/lib/journal.db"))


def test_each_alert_is_checked_by_one_receiver_of_two(target: str) -> None:
    a, pa, b, pb = pair(target)

    async def run() -> None:
        await pa.start()
        await pb.start()
        for n in range(10):  # Alertmanager posts each alert to both, in either order
            first, second = (pa, pb) if n % 2 else (pb, pa)
            await first.offer(alert(f"fp{n}"))
            await second.offer(alert(f"fp{n}"))
        await pa.sweep()
        await pb.sweep()
        await pa.stop()
        await pb.stop()

    asyncio.run(run())
    assert sorted(a.offered + b.offered) == sorted(f"fp{n}" for n in range(10))
    assert pa.counts["duplicates"] + pb.counts["duplicates"] == 10
    assert a.db.query(limit=100) and len(a.db.query(limit=100)) == 10  # one decision per alert


def test_a_dead_receivers_unchecked_alerts_are_checked_by_its_peer(target: str) -> None:
    a, pa, b, pb = pair(target, a_checks=False)
    pa.lease = timedelta(seconds=1)  # a short life, as a loop killed at once

    async def run() -> None:
        await pa.start()
        await pb.start()
        for n in range(5):
            await pa.offer(alert(f"fp{n}"))  # accepted, never checked (its loop is stuck, then killed)
            await pb.offer(alert(f"fp{n}"))  # the peer's copy: a duplicate for now
        for task in [*pa._tasks, a._heartbeat]:  # kill -9: no renewal, no retirement
            task.cancel()
        await asyncio.sleep(1.2)
        await pb.sweep()
        await pb.sweep()  # taken over once
        await pb.stop()

    asyncio.run(run())
    assert a.offered == [f"fp{n}" for n in range(5)]
    assert b.offered == [f"fp{n}" for n in range(5)]
    assert pb.counts["taken_over"] == 5
    assert {d["fingerprint"] for d in b.db.query(limit=100)} == {f"fp{n}" for n in range(5)}


def test_what_a_receiver_checked_before_it_died_is_not_checked_again(target: str) -> None:
    a, pa, b, pb = pair(target)
    pa.lease = timedelta(seconds=1)

    async def run() -> None:
        await pa.start()
        await pb.start()
        for n in range(5):
            await pa.offer(alert(f"fp{n}"))
            await pb.offer(alert(f"fp{n}"))
        for task in [*pa._tasks, a._heartbeat]:  # killed before it marked anything handled: the journal tells
            task.cancel()
        await asyncio.sleep(1.2)
        await pb.sweep()
        await pb.stop()

    asyncio.run(run())
    assert (len(a.offered), b.offered, pb.counts["taken_over"]) == (5, [], 0)


def test_a_dead_loops_action_is_settled_by_one_peer_once(target: str) -> None:
    journal = Journal(target)
    decision = journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION)
    action = journal.start_action(decision, "rollback", {})
    result = {
        "decision_id": decision,
        "snapshot": {"intent": {"namespace": "shop", "service": "cart"}},
        "claim": {"action_id": action},
    }
    a, pa, b, pb = pair(target)
    for loop in (a, b):
        loop.unfinished = [result]

    async def run() -> None:
        await pa.start()
        await pb.start()
        a.lease_left = b.lease_left = 2.0  # its claim is still renewed: its loop lives
        await pa.sweep()
        a.lease_left = b.lease_left = None  # lapsed
        await pa.sweep()
        await pb.sweep()
        await pa.sweep()  # once, not at every sweep
        await asyncio.sleep(0)
        await pa.stop()
        await pb.stop()

    asyncio.run(run())
    assert (a.recovered, b.recovered) == ([action], [])


def test_a_busy_service_waits_for_the_next_sweep(target: str) -> None:
    journal = Journal(target)
    decision = journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION)
    action = journal.start_action(decision, "rollback", {})
    result = {
        "decision_id": decision,
        "snapshot": {"intent": {"namespace": "shop", "service": "cart"}},
        "claim": {"action_id": action},
    }
    a, pa, _b, _pb = pair(target)
    a.unfinished = [result]
    a.services["shop/cart"] = _warm.Service(phase="checking")

    async def run() -> None:
        await pa.start()
        await pa.sweep()
        assert a.recovered == []
        a.services["shop/cart"].phase = "idle"
        await pa.sweep()
        await asyncio.sleep(0)
        await pa.stop()

    asyncio.run(run())
    assert a.recovered == [action]


def test_an_alert_of_a_service_a_peer_acts_on_is_linked_to_its_decision(target: str) -> None:
    journal = Journal(target)
    decision = journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION)
    journal.start_action(decision, "rollback", {})  # claimed by the other receiver, not finished
    b = FakeLoop(target)
    pb = _peers.Peers(b, "b")  # type: ignore[arg-type]
    resolved = {**alert("fp2"), "status": "resolved"}

    async def run() -> None:
        await pb.start()
        assert await pb.offer(alert("fp1")) is None
        await pb.offer(alert("fp3", service="web"))  # another service: checked
        await pb.offer(resolved)  # a resolution closes its incident: the loop's
        await pb.stop()

    asyncio.run(run())
    assert b.offered == ["fp3", "fp2"]
    assert [(link["fingerprint"], link["reason"]) for link in journal.linked_alerts(decision)] == [
        ("fp1", "came while another receiver acted on its service")
    ]
    assert pb.counts["linked_to_peer"] == 1


def test_an_alert_is_checked_when_no_claim_is_open(target: str) -> None:
    journal = Journal(target)
    decision = journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION)
    action = journal.start_action(decision, "rollback", {})
    journal.finish_action(action, outcome="recovered")
    escalated = journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION)
    journal.start_action(escalated, "escalate", {})  # an escalation's pending action claims nothing to follow
    assert journal.claimed_decision("shop", "cart") is None
    b = FakeLoop(target)
    pb = _peers.Peers(b, "b")  # type: ignore[arg-type]

    async def run() -> None:
        await pb.start()
        await pb.offer(alert("fp1"))
        await pb.stop()

    asyncio.run(run())
    assert b.offered == ["fp1"]


def test_a_receiver_starts_while_its_journal_does_not_answer(target: str) -> None:
    """The source must serve (and park alerts) during an outage: start logs and goes on; the renewals retry."""
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalUnavailable

    class Unreachable(FakeLoop):
        def journal(self) -> Journal:
            raise JournalUnavailable("cannot open the journal postgresql://db: connection refused")

    loop = Unreachable(target)
    peers = _peers.Peers(loop, "a")  # type: ignore[arg-type]

    async def run() -> None:
        await peers.start()
        await asyncio.sleep(0)  # the spawned sweep of abandoned approvals runs
        await peers.stop()

    asyncio.run(run())
    assert getattr(loop, "approvals_swept", None) is not None, "the approvals a dead loop left are swept too"
