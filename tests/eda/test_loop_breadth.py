"""The warm loop under breadth: checks running together share one platform round (the real check, a scripted
Prometheus), and at most ``max_running_actions`` action playbooks are in flight while later claimed decisions
wait in the loop, claimed and renewed, never lost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check_module
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs, warm

from .test_loop import (  # noqa: F401 - harness is a fixture
    INTENT,
    Cluster,
    Harness,
    Script,
    applied,
    fake_playbook,
    firing,
    harness,
    wait_for,
)

SERVICES = ["web", "api", "db", "cart"]


def declare(h: Harness, services: list[str]) -> None:
    """An intent per service, each on its own Deployment."""
    Path(h.loop.config.intents).write_text(
        yaml.safe_dump({"intents": [{**INTENT, "service": s, "target": {"name": s}} for s in services]})
    )


class Prometheus:
    """Healthy indicators for every key; the platform round (more than one key) waits until ``release()`` says so,
    so the test can hold it while the other checks come."""

    def __init__(self, release: Callable[[], bool]) -> None:
        self.release = release
        self.rounds: list[set[str]] = []
        self._lock = threading.Lock()

    def indicators(self, queries: dict[str, dict[str, str]], at: float | None = None) -> dict[str, dict[str, Any]]:
        with self._lock:
            self.rounds.append(set(queries))
        deadline = time.monotonic() + 10
        while len(queries) > 1 and not self.release():
            assert time.monotonic() < deadline, "the other checks never joined the round"
            time.sleep(0.005)
        return {key: {"error_rate": 0.1, "availability": 99.9, "latency_p99_ms": 80.0} for key in queries}


async def test_checks_running_together_share_one_platform_round_and_each_reads_its_own_service(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_evaluate = _check_module.evaluate  # before the harness puts its script there
    h = harness(Script([]), workers=len(SERVICES))
    declare(h, SERVICES)
    monkeypatch.setattr(warm._check, "evaluate", real_evaluate)
    h.loop.clients._kube = Cluster()
    prom = Prometheus(lambda: h.loop.platform.shared == len(SERVICES) - 1)
    h.loop.clients.prom = prom
    done = [await h.loop.offer(firing(service=s, fingerprint=s)) for s in SERVICES]
    await asyncio.wait_for(asyncio.gather(*(d for d in done if d is not None)), timeout=30)
    assert h.loop.stats.checks["none"] == len(SERVICES), h.loop.stats.checks
    platform_rounds = [r for r in prom.rounds if len(r) > 1]
    assert platform_rounds == [{f"shop/{s}" for s in SERVICES}], "one round of every intent's objectives"
    own = sorted(key for r in prom.rounds if len(r) == 1 for key in r)
    assert own == sorted(f"shop/{s}" for s in SERVICES), "each check reads its own service in a round of its own"
    assert "selfheal_loop_platform_rounds_total 1" in h.loop.metrics("selfheal_loop")
    with h.journal() as journal:
        (decision,) = journal.query(namespace="shop", service="db")
        platform = journal.decision(decision["id"])["snapshot"]["observed"]["platform"]  # type: ignore[index]
    assert (platform["services_total"], platform["services_breaching"]) == (len(SERVICES), 0)


async def test_acting_decisions_beyond_max_running_actions_wait_claimed_in_the_loop(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness(Script(["rollback", "rollback"]), max_running_actions=1, lock_lease_seconds=3)
    renewed: list[str] = []
    monkeypatch.setattr(warm, "renew_claim", lambda kube, intent, holder, lease: renewed.append(holder) or True)
    await h.loop.offer(firing(service="web", fingerprint="w"))
    await h.loop.offer(firing(service="api", fingerprint="a"))
    (first,) = await wait_for(lambda: h.emitted)
    await wait_for(lambda: len(h.loop._waiting) == 1)
    assert "selfheal_loop_actions_queued 1" in h.loop.metrics("selfheal_loop")
    waiting = "api" if first["service"] == "web" else "web"
    with h.journal() as journal:
        (queued,) = journal.query(namespace="shop", service=waiting)
    assert [(a["action"], a["outcome"]) for a in queued["actions"]] == [("rollback", "pending")], "claimed"
    holder = f"selfheal-remediate/decision-{queued['id']}"
    await wait_for(lambda: holder in renewed, timeout=5)  # its lease is kept while it waits
    assert len(h.emitted) == 1
    applied(h, first["decision_id"])  # the first playbook reported (and, naming no process, is over)
    (_, second) = await wait_for(lambda: len(h.emitted) == 2 and h.emitted)
    assert second["decision_id"] == queued["id"]
    applied(h, second["decision_id"])
    await wait_for(lambda: h.loop.stats.verifications["recovered"] == 2)
    assert not h.loop._waiting and h.loop.stats.events == 2


async def test_decisions_that_waited_for_a_place_go_to_one_playbook_together(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
) -> None:
    h = harness(Script(["rollback"] * len(SERVICES)), max_running_actions=1, workers=len(SERVICES))
    declare(h, SERVICES)
    for s in SERVICES:
        await h.loop.offer(firing(service=s, fingerprint=s))
    (first,) = await wait_for(lambda: h.emitted)
    await wait_for(lambda: len(h.loop._waiting) == len(SERVICES) - 1)
    applied(h, first["decision_id"])  # the first playbook is over: the place is free
    await wait_for(lambda: len(h.events) == 2)
    burst = h.events[1]["decisions"]
    assert sorted(d["service"] for d in [first, *burst]) == sorted(SERVICES), "each decision once, in one playbook"
    assert h.events[1]["decision_ids"] == [d["decision_id"] for d in burst]
    for decision in burst[:-1]:
        applied(h, decision["decision_id"])
    await wait_for(lambda: h.loop.stats.verifications["recovered"] == len(SERVICES) - 1)
    # The playbook's place is still taken: one of its decisions has not reported.
    assert h.loop._acting.locked()
    applied(h, burst[-1]["decision_id"])
    await wait_for(lambda: h.loop.stats.verifications["recovered"] == len(SERVICES))
    await wait_for(lambda: not h.loop._acting.locked())
    assert h.loop.stats.events == 2


@pytest.mark.parametrize("worker_gone", [False, True], ids=["named-playbook", "named-worker"])
async def test_a_place_is_given_back_when_the_playbook_process_ends_not_at_its_report(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
    tmp_path: Path,
    worker_gone: bool,
) -> None:
    h = harness(Script(["rollback", "rollback"]), max_running_actions=1)
    await h.loop.offer(firing(service="web", fingerprint="w"))
    await h.loop.offer(firing(service="api", fingerprint="a"))
    (first,) = await wait_for(lambda: h.emitted)
    playbook = fake_playbook(tmp_path)
    try:
        run = await wait_for(lambda: runs.this_run(playbook.pid))  # up once /proc shows its argv
        if worker_gone:
            # The first task's module names the worker ansible-playbook forked for it, gone once the task is
            # done; the playbook, its session's leader, lives on.
            worker = subprocess.Popen([sys.executable, "-c", "pass"])
            worker.wait()
            run = {**run, "pid": worker.pid, "start": 0}
        with h.journal() as journal:
            (pending,) = [a for a in journal.decision(first["decision_id"])["actions"] if a["outcome"] == "pending"]
            assert journal.record_run(pending["id"], run)
        applied(h, first["decision_id"])
        # Verified and released while its playbook still runs its last tasks: the place is still its own.
        await wait_for(lambda: h.loop.stats.verifications["recovered"] == 1)
        assert len(h.emitted) == 1 and len(h.loop._waiting) == 1
    finally:
        playbook.kill()
        playbook.wait()
    await wait_for(lambda: len(h.emitted) == 2)


@pytest.mark.parametrize("named", [False, True], ids=["never-named", "named-unreported"])
async def test_a_batch_playbook_that_ends_early_fails_what_it_left_at_once_not_at_the_deadline(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
    tmp_path: Path,
    named: bool,
) -> None:
    # Its playbook applied the batch's first decision, then died: before it took the second up, or after it named
    # itself on it. Nothing will report the second: it is journaled failed and escalated once the playbook is seen
    # gone, well before apply_timeout_seconds, and the playbook's place is free again.
    services = SERVICES[:3]
    h = harness(Script(["rollback"] * 3), max_running_actions=1, workers=3, apply_timeout_seconds=600)
    declare(h, services)
    for s in services:
        await h.loop.offer(firing(service=s, fingerprint=s))
    (first,) = await wait_for(lambda: h.emitted)
    await wait_for(lambda: len(h.loop._waiting) == 2)
    applied(h, first["decision_id"])
    await wait_for(lambda: len(h.events) == 2)
    done, left = h.events[1]["decisions"]
    playbook = fake_playbook(tmp_path)
    try:
        run = await wait_for(lambda: runs.this_run(playbook.pid))
        with h.journal() as journal:
            for decision in (done, left) if named else (done,):
                (pending,) = [
                    a for a in journal.decision(decision["decision_id"])["actions"] if a["outcome"] == "pending"
                ]
                assert journal.record_run(pending["id"], run)
        applied(h, done["decision_id"])
        await wait_for(lambda: h.loop.stats.verifications["recovered"] == 2)
        await asyncio.sleep(0.3)
        assert h.loop.stats.verifications["failed"] == 0, "nothing is failed while the playbook runs"
    finally:
        playbook.kill()
        playbook.wait()
    await wait_for(lambda: h.loop.stats.verifications["failed"] == 1, timeout=10)
    with h.journal() as journal:
        actions = journal.decision(left["decision_id"])["actions"]
    assert [(a["action"], a["outcome"]) for a in actions] == [("rollback", "failed"), ("escalate", "not_recovered")]
    why = "ended without reporting its change" if named else "ended before it took this decision up"
    assert why in actions[0]["detail"]
    assert h.posted[-1]["reasons"][0].endswith(why)
    await wait_for(lambda: not h.loop._acting.locked())


def test_max_running_actions_is_an_option_with_a_bounded_default() -> None:
    base = {"intents": "/dev/null", "prometheus_url": "http://prom:9090"}
    assert warm.parse_options(base).max_running_actions == warm.MAX_RUNNING_ACTIONS
    assert warm.parse_options({**base, "max_running_actions": 7}).max_running_actions == 7
    assert warm.parse_options({**base, "platform_view_seconds": 0}).platform_view_seconds == 0
    for bad in (0, -1, "many"):
        with pytest.raises(ValueError, match="max_running_actions"):
            warm.parse_options({**base, "max_running_actions": bad})
    with pytest.raises(ValueError, match="platform_view_seconds"):
        warm.parse_options({**base, "platform_view_seconds": -1})


async def test_alerts_during_an_action_are_journaled_in_batches_and_acknowledged_once_written(
    harness: Callable[..., Harness],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness(Script(["rollback"]))
    await h.loop.offer(firing(fingerprint="first"))
    (event,) = await wait_for(lambda: h.emitted)
    batches: list[int] = []
    write = h.loop._link_all

    def counted(links: list[tuple[int, dict[str, Any], str]]) -> None:
        batches.append(len(links))
        write(links)

    monkeypatch.setattr(h.loop, "_link_all", counted)
    linked = [await h.loop.offer(firing(fingerprint=f"storm-{i}")) for i in range(50)]
    assert all(isinstance(f, asyncio.Future) for f in linked)
    await asyncio.wait_for(asyncio.gather(*linked), timeout=10)  # the spool lets them go once written
    with h.journal() as journal:
        links = journal.linked_alerts(event["decision_id"])
    assert sorted(link["fingerprint"] for link in links) == sorted(f"storm-{i}" for i in range(50))
    assert sum(batches) == 50 and len(batches) < 5, batches
