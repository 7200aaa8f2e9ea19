"""Receivers sharing a journal (an HA pair), on both backends: an alert accepted by a loop that died before its
check was journaled is taken over by a peer, once; one whose check was journaled is not; a dead loop's unfinished
action is settled by one loop only."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW

STARTS = "2026-03-04T15:00:00Z"
LEASE = timedelta(seconds=10)
DECISION = {"action": "rollback", "params": {}, "proposed": None, "rule": "rollback", "reasons": ["r"]}


def alert(fp: str) -> dict[str, Any]:
    return {"fingerprint": fp, "status": "firing", "startsAt": STARTS, "namespace": "shop", "service": "cart"}


@pytest.fixture
def journal(journal_backend: JournalBackend) -> Any:
    with Journal(journal_backend.target) as journal:
        yield journal


def accept(journal: Journal, owner: str, fp: str, at: timedelta = timedelta(0)) -> bool:
    return journal.accept_alert(fp, "firing", STARTS, owner=owner, alert=alert(fp), now=NOW + at)


def test_a_live_owner_keeps_what_it_accepted(journal: Journal) -> None:
    journal.renew_instance("a", LEASE, now=NOW)
    journal.renew_instance("b", LEASE, now=NOW)
    assert accept(journal, "a", "fp1") is True
    assert accept(journal, "b", "fp1") is False  # the peer's copy is a duplicate while "a" lives
    assert journal.take_over_alerts("b", now=NOW + timedelta(seconds=5)) == []


def test_a_dead_owners_unchecked_alert_is_taken_over_once(journal: Journal) -> None:
    journal.renew_instance("a", LEASE, now=NOW)
    assert accept(journal, "a", "fp1") is True
    assert accept(journal, "a", "fp2") is True
    later = NOW + LEASE + timedelta(seconds=1)  # "a" did not renew: dead
    journal.renew_instance("b", LEASE, now=later)
    journal.renew_instance("c", LEASE, now=later)
    taken = journal.take_over_alerts("b", now=later)
    assert sorted(a["fingerprint"] for a in taken) == ["fp1", "fp2"]
    assert taken[0] == alert(taken[0]["fingerprint"])  # the alert itself, as accepted
    assert journal.take_over_alerts("c", now=later) == []  # now "b"'s, and "b" lives
    assert journal.take_over_alerts("b", now=later) == []  # taken once, not at every sweep


def test_a_later_copy_takes_over_a_dead_owners_alert(journal: Journal) -> None:
    journal.renew_instance("a", LEASE, now=NOW)
    assert accept(journal, "a", "fp1") is True
    later = LEASE + timedelta(seconds=1)
    journal.renew_instance("b", LEASE, now=NOW + later)
    assert accept(journal, "b", "fp1", later) is True  # e.g. the spool of a restarted receiver, or a re-send
    assert accept(journal, "a", "fp1", later) is False


def test_an_alert_whose_check_was_journaled_is_not_taken_over(
    journal: Journal, journal_backend: JournalBackend
) -> None:
    journal.renew_instance("a", LEASE, now=NOW)
    assert accept(journal, "a", "fp1") is True
    assert accept(journal, "a", "fp2") is True
    assert accept(journal, "a", "fp3") is True
    # "a" checked fp1 (its decision is journaled) and linked fp2 to that decision, then died before saying so.
    decision = journal.record_decision(
        namespace="shop",
        service="cart",
        snapshot={},
        decision=DECISION,
        fingerprint="fp1",
        alert_status="firing",
        at=NOW + timedelta(seconds=1),
    )
    journal.start_action(decision, "rollback", {}, started=NOW + timedelta(seconds=1))  # and claimed its target
    journal.link_alert(decision, alert("fp2"), "came while its service was checked", at=NOW + timedelta(seconds=1))
    later = NOW + LEASE + timedelta(seconds=1)
    journal.renew_instance("b", LEASE, now=later)
    assert accept(journal, "b", "fp1", LEASE + timedelta(seconds=1)) is False
    assert [a["fingerprint"] for a in journal.take_over_alerts("b", now=later)] == ["fp3"]
    handled = journal_backend.execute("SELECT fingerprint FROM alert_dedupe WHERE handled IS NOT NULL ORDER BY 1")
    assert [r[0] for r in handled] == ["fp1", "fp2"]  # marked so by the sweep: not looked at again


def test_what_its_owner_marked_handled_is_never_taken_over(journal: Journal) -> None:
    journal.renew_instance("a", LEASE, now=NOW)
    assert accept(journal, "a", "fp1") is True
    assert accept(journal, "a", "fp2") is True
    assert journal.alerts_handled("a", [("fp1", "firing", STARTS)]) == 1
    assert journal.alerts_handled("b", [("fp2", "firing", STARTS)]) == 0  # only its owner says so
    later = NOW + LEASE + timedelta(seconds=1)
    journal.renew_instance("b", LEASE, now=later)
    assert [a["fingerprint"] for a in journal.take_over_alerts("b", now=later)] == ["fp2"]


def test_an_alert_accepted_without_an_owner_is_handled_at_once(journal: Journal) -> None:
    assert journal.accept_alert("fp1", "firing", STARTS, now=NOW) is True  # the plain dedupe, as before
    assert journal.take_over_alerts("b", now=NOW + timedelta(days=1, seconds=-1)) == []
    assert journal.accept_alert("fp1", "firing", STARTS, owner="b", alert=alert("fp1"), now=NOW) is False


def test_a_retired_instance_is_dead_at_once(journal: Journal) -> None:
    journal.renew_instance("a", LEASE, now=NOW)
    journal.renew_instance("b", LEASE, now=NOW)
    assert accept(journal, "a", "fp1") is True
    journal.retire_instance("a")
    assert [a["fingerprint"] for a in journal.take_over_alerts("b")] == ["fp1"]


def test_one_loop_takes_over_a_dead_loops_action(journal: Journal) -> None:
    decision = journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION, at=NOW)
    action = journal.start_action(decision, "rollback", {}, started=NOW)
    journal.renew_instance("b", LEASE, now=NOW)
    journal.renew_instance("c", LEASE, now=NOW)
    assert journal.take_over_action(action, "b", now=NOW) is True
    assert journal.take_over_action(action, "c", now=NOW) is False  # "b" lives and has it
    assert journal.take_over_action(action, "b", now=NOW) is True  # still its own
    later = NOW + LEASE + timedelta(seconds=1)
    journal.renew_instance("c", LEASE, now=later)
    assert journal.take_over_action(action, "c", now=later) is True  # "b" died meanwhile


def test_concurrent_peers_take_over_each_alert_exactly_once(journal_backend: JournalBackend) -> None:
    keys, peers = 60, 4
    with Journal(journal_backend.target) as journal:
        journal.renew_instance("dead", LEASE, now=NOW)
        for k in range(keys):
            assert accept(journal, "dead", f"fp-{k}")
    later = NOW + LEASE + timedelta(seconds=1)
    start = threading.Barrier(peers)

    def sweep(me: str) -> list[str]:
        with Journal(journal_backend.target, timeout=60) as mine:
            mine.renew_instance(me, LEASE, now=later)
            start.wait()
            taken = [a["fingerprint"] for a in mine.take_over_alerts(me, now=later)]
            # And the copies each peer got of every alert: none of them is accepted again.
            taken += [f"fp-{k}" for k in range(keys) if accept(mine, me, f"fp-{k}", LEASE + timedelta(seconds=1))]
            return taken

    with ThreadPoolExecutor(peers) as pool:
        results = [f.result(timeout=120) for f in [pool.submit(sweep, f"peer-{i}") for i in range(peers)]]
    assert sorted(fp for mine in results for fp in mine) == sorted(f"fp-{k}" for k in range(keys))


def test_a_live_loop_holds_its_actions_against_a_take_over(journal: Journal) -> None:
    first = journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION, at=NOW)
    second = journal.record_decision(namespace="shop", service="web", snapshot={}, decision=DECISION, at=NOW)
    held, other = journal.start_action(first, "rollback", {}), journal.start_action(second, "rollback", {})
    journal.renew_instance("a", LEASE, now=NOW)
    journal.renew_instance("b", LEASE, now=NOW)
    assert journal.hold_actions("a", [first, second], now=NOW) == 2
    assert journal.take_over_action(held, "b", now=NOW) is False  # "a" lives: its claim's lease is beside the point
    finished = journal.record_decision(namespace="shop", service="db", snapshot={}, decision=DECISION, at=NOW)
    journal.finish_action(journal.start_action(finished, "rollback", {}), outcome="recovered")
    assert journal.hold_actions("b", [finished], now=NOW) == 0  # nothing unfinished to hold
    later = NOW + LEASE + timedelta(seconds=1)
    journal.renew_instance("b", LEASE, now=later)
    assert journal.take_over_action(other, "b", now=later) is True  # "a" died
    journal.renew_instance("a", LEASE, now=later)  # ... and one like it came back: what "b" took stays "b"'s
    assert journal.hold_actions("a", [first, second], now=later) == 1


def test_an_acting_decision_its_loop_died_before_claiming_is_no_check(journal: Journal) -> None:
    journal.renew_instance("a", LEASE, now=NOW)
    for fp in ("fp1", "fp2"):
        assert accept(journal, "a", fp) is True
    # "a" decided to act on fp1 and died before it claimed the target: nothing will act on that decision.
    journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=DECISION, fingerprint="fp1", at=NOW)
    # fp2's check decided not to act: complete as journaled.
    none = {**DECISION, "action": "none", "rule": "no-impact"}
    journal.record_decision(namespace="shop", service="cart", snapshot={}, decision=none, fingerprint="fp2", at=NOW)
    later = NOW + LEASE + timedelta(seconds=1)
    journal.renew_instance("b", LEASE, now=later)
    assert [a["fingerprint"] for a in journal.take_over_alerts("b", now=later)] == ["fp1"]
