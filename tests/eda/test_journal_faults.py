"""The warm loop on a PostgreSQL journal that goes away: a real server, stopped and started again mid-test.

The check is the scripted stand-in of test_loop.py, reading the service's history first as the intent check does
(the guardrails' input) and deciding like a cooldown would: act when the journal shows no action on the service,
else nothing. Alerts come through the alertmanager source's own outbox and spool, so "nothing accepted is lost"
is read where a restarted source would read it: the spool's files. The loops take a 2 s timeout: a journal call
waits at most that for one of the pool's connections, so an outage shows within it (10 s by default).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import postgres as _pg
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal

from sandbox import postgres, procs
from tests.eda.test_loop import INTENT, Harness, firing, harness, wait_for

__all__ = ["harness"]  # the fixture, shared with test_loop.py


class Server:
    """The sandbox's PostgreSQL, which a test may stop (a fast shutdown, sessions cut) and start again on the same
    data directory and port."""

    def __init__(self, run_dir: Path) -> None:
        self.pg = postgres.start_postgres(run_dir)
        self.argv = Path(f"/proc/{self.pg.proc.pid}/cmdline").read_bytes().split(b"\0")[:-1]

    def stop(self) -> None:
        self.pg.proc.send_signal(signal.SIGINT)
        self.pg.proc.wait(timeout=30)

    def start(self) -> None:
        """Start it again (call from the main thread: the death signal the launcher sets fires when the thread that
        started the server ends)."""
        user = postgres._server_user()
        self.pg.proc = procs.spawn(
            [a.decode() for a in self.argv],
            self.pg.log,
            cwd=self.pg.base,
            user=user.pw_uid,
            group=user.pw_gid,
            death_signal=signal.SIGINT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.pg.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("postgres"))
    previous = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(running.pg.passfile)
    try:
        yield running
    finally:
        if previous is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = previous
        _pg.close_pools()
        running.pg.stop()


@pytest.fixture
def dsn(server: Server) -> Iterator[str]:
    name = f"faults_{uuid.uuid4().hex[:12]}"
    found = server.pg.create_database(name)
    try:
        yield found
    finally:
        if server.pg.proc.poll() is not None:
            server.start()  # a test that failed with the server stopped
        server.pg.drop_database(name)


class Guarded:
    """Stands in for _check.evaluate (journaling as it does, like test_loop.Script): reads the service's last hour
    of history first (the guardrails' input) and acts only when it shows no action, so a check that acted again on
    a service would be a duplicate remediation."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def __call__(self, request: Any, settings: Any, clients: Any, check_mode: bool = False) -> dict[str, Any]:
        journal = clients.journal
        history = journal.history(request.service, "shop", since=request.now - timedelta(hours=1), until=request.now)
        time.sleep(self.delay)
        self.calls += 1
        action = "none" if history else "rollback"
        decision = {"action": action, "params": {}, "reasons": [f"history: {len(history)}"], "rule": action}
        intent = {**INTENT, "service": request.service}
        block = {k: request.alert[k] for k in ("status", "labels", "annotations", "fingerprint")}
        snapshot = {"intent": intent, "alert": block}
        decision_id = journal.record_decision(
            namespace="shop",
            service=request.service,
            snapshot={"id": "x", **snapshot},
            decision=decision,
            fingerprint=request.alert.get("fingerprint"),
            alert_status="firing",
        )
        result: dict[str, Any] = {"decision": decision, "decision_id": decision_id, "snapshot": snapshot}
        if action != "none":
            action_id = journal.record_action(decision_id, action, {}, outcome="pending")
            holder = f"selfheal-remediate/decision-{decision_id}"
            result["claim"] = {"acquired": True, "holder": holder, "action_id": action_id}
        return result


class Intake:
    """The alertmanager source's outbox and spool, drained into the loop as the source does."""

    def __init__(self, source: dict[str, Any], directory: Path, loop: Any) -> None:
        self.directory = directory
        self.spool = source["Spool"](directory)
        self.spool.open()
        self.outbox = source["Outbox"](100_000, self.spool, [])
        self.drain = asyncio.ensure_future(self.outbox.drain_into(loop.offer))

    def accept(self, alerts: list[dict[str, Any]]) -> None:
        self.outbox.add(alerts)

    def spooled(self) -> list[str]:
        """The fingerprints a source restarted now would read back (the spool's own files: lines after the count
        of those delivered)."""
        delivered = int((self.directory / "delivered").read_text().strip() or 0)
        lines = (self.directory / "events.jsonl").read_text().split("\n")[delivered:-1]
        return [json.loads(line)["fingerprint"] for line in lines]

    async def close(self) -> None:
        self.drain.cancel()
        await asyncio.gather(self.drain, return_exceptions=True)
        self.spool.close()


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Callable[[Any], Intake]]:
    import runpy

    from tests.eda.conftest import SOURCE_FILE

    source = runpy.run_path(str(SOURCE_FILE))
    made: list[Intake] = []

    def make(loop: Any) -> Intake:
        made.append(Intake(source, tmp_path / f"spool{len(made)}", loop))
        return made[-1]

    yield make
    for one in made:
        await one.close()


def accounted(journal: Journal, namespace: str = "shop") -> dict[str, int]:
    """Every alert the journal holds, by fingerprint: the alert a decision was made on, or one linked to one."""
    seen: dict[str, int] = {}
    for decision in journal.query(namespace=namespace, limit=100_000):
        fingerprint = decision["fingerprint"]
        if fingerprint and decision["rule"] != "journal-unreachable":
            seen[fingerprint] = seen.get(fingerprint, 0) + 1
        for link in journal.linked_alerts(int(decision["id"])):
            seen[link["alert"]["fingerprint"]] = seen.get(link["alert"]["fingerprint"], 0) + 1
    return seen


async def test_without_its_journal_the_loop_acts_on_nothing_escalates_once_and_keeps_every_alert_spooled(
    harness: Callable[..., Harness], intake: Callable[[Any], Intake], server: Server, dsn: str
) -> None:
    script = Guarded()
    h = harness(script, journal=dsn, recheck_settle_seconds=3600, timeout=2)
    h.loop.probe_seconds = 0.2
    feed = intake(h.loop)
    feed.accept([firing(service="web", fingerprint="w1")])
    await wait_for(lambda: feed.spooled() == [] and h.emitted)  # journal up: checked, acted, journaled
    assert h.emitted[0]["service"] == "web"
    posted_before = len(h.posted)

    await asyncio.to_thread(server.stop)
    feed.accept([firing(service="api", fingerprint="a1"), firing(service="api", fingerprint="a2")])
    feed.accept([{**firing(service="web", fingerprint="w1"), "status": "resolved"}])
    feed.accept([firing(service="cart", fingerprint="c1")])
    await wait_for(lambda: len(h.posted) - posted_before == 2, timeout=15)  # api and cart, once each
    await asyncio.sleep(0.5)  # more probes fail meanwhile; a third escalation would show up here
    down = h.posted[posted_before:]
    assert len(down) == 2, "one escalation per service and outage, not one per alert"
    assert all("guardrails unknown: journal unreachable" in json.dumps(p) for p in down)
    assert len(h.emitted) == 1, "nothing acted on while the guardrails are unknown"
    assert feed.spooled() == ["a1", "a2", "w1", "c1"], "every accepted alert stays in the spool"
    assert h.loop.stats.checks["journal_down"] == 1, "a1's check found the journal gone; the rest were not checked"

    server.start()  # not from a worker thread: the server dies with the thread that started it
    await wait_for(lambda: feed.spooled() == [], timeout=15)
    with h.journal() as journal:
        seen = accounted(journal)
        blind = [d for d in journal.query(namespace="shop") if d["rule"] == "journal-unreachable"]
        web = journal.query(namespace="shop", service="web")
        incidents = journal.incidents(namespace="shop", service="web")
    assert {"a1", "a2", "c1"} <= set(seen), "each alert that waited was checked (or linked) once the journal was back"
    assert sorted(d["service"] for d in blind) == ["api", "cart"], "the escalations sent while down are journaled"
    assert all(d["action"] == "escalate" and "escalation sent (HTTP 200)" in d["decision"]["reasons"] for d in blind)
    assert [i["status"] for i in incidents] == ["closed"], "the resolved alert closed its incident once journaled"
    assert len([d for d in web if d["action"] == "rollback"]) == 1
    assert [e["service"] for e in h.emitted].count("api") == 1 and [e["service"] for e in h.emitted].count("cart") == 1


async def test_postgresql_restarted_mid_storm_the_loop_resumes_with_no_alert_lost_and_no_duplicate_action(
    harness: Callable[..., Harness], intake: Callable[[Any], Intake], server: Server, dsn: str
) -> None:
    services = [f"svc{n}" for n in range(10)]
    script = Guarded(delay=0.005)
    h = harness(script, journal=dsn, recheck_settle_seconds=3600, workers=4, timeout=2)
    h.loop.probe_seconds = 0.2
    feed = intake(h.loop)

    async def playbook() -> None:
        """Reports each emitted action applied, as the remediate playbook does (retrying while the journal is
        down, as its module would be retried)."""
        done = 0
        while True:
            while done < len(h.emitted):
                decision_id = h.emitted[done]["decision_id"]
                try:
                    await asyncio.to_thread(mark_applied, dsn, decision_id)
                    done += 1
                except Exception:  # noqa: BLE001 - the journal is down: try again
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.02)

    runner = asyncio.ensure_future(playbook())
    sent: list[str] = []

    def burst(count: int) -> None:
        alerts = [firing(service=services[n % len(services)], fingerprint=f"s{len(sent) + n}") for n in range(count)]
        sent.extend(a["fingerprint"] for a in alerts)
        feed.accept(alerts)

    try:
        for _ in range(5):
            burst(20)
            await asyncio.sleep(0.05)
        await asyncio.to_thread(server.stop)
        for _ in range(5):
            burst(20)
            await asyncio.sleep(0.1)
        # Down until the loop has seen it: a journal call waits up to the timeout for a pooled connection, so a
        # shorter outage would pass unseen (as it should).
        await wait_for(lambda: h.loop.outage.down, timeout=20)
        server.start()  # not from a worker thread: the server dies with the thread that started it
        for _ in range(5):
            burst(20)
            await asyncio.sleep(0.05)

        def settled() -> bool:
            if feed.spooled():
                return False
            with Journal(dsn) as journal:
                seen = accounted(journal)
                pending = [a for a in journal.unfinished_actions() if a["action"] != "escalate"]
            return set(sent) <= set(seen) and not pending

        await wait_for(settled, timeout=60)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert len(sent) == 300
    # The loop saw the restart (awaited above). An alert checked meanwhile is escalated, saying why; one that came
    # while its service was acted on waits to be linked instead, so how many are escalated is a matter of timing.
    assert all("journal unreachable" in json.dumps(p) for p in h.posted), h.posted
    with Journal(dsn) as journal:
        seen = accounted(journal)
        acted = {
            service: [
                a
                for d in journal.query(namespace="shop", service=service)
                for a in d["actions"]
                if a["action"] == "rollback"
            ]
            for service in services
        }
    assert set(sent) <= set(seen), f"lost: {sorted(set(sent) - set(seen))}"
    assert {s: len(a) for s, a in acted.items()} == dict.fromkeys(services, 1), "one remediation per service"
    assert all(a[0]["outcome"] == "recovered" for a in acted.values()), "each verified, across the restart"
    assert len(h.emitted) == len(services)


def mark_applied(dsn: str, decision_id: int) -> None:
    with Journal(dsn) as journal:
        (pending,) = [a for a in journal.decision(decision_id)["actions"] if a["outcome"] == "pending"]
        journal.mark_applied(pending["id"], changed=True, detail="rolled back", at=datetime.now(UTC))


async def test_a_source_that_starts_while_its_journal_is_down_parks_alerts_and_recovers_once_it_answers(
    harness: Callable[..., Harness], intake: Callable[[Any], Intake], server: Server, dsn: str
) -> None:
    """The loop before this one claimed web's rollback and died before any playbook took it up; the new one starts
    with the journal down. It starts anyway (Alertmanager's posts are taken and spooled), acts on nothing, and once
    the journal answers it first settles what the dead loop left, then checks what waited."""
    from tests.eda.test_loop import Leases

    first = harness(Guarded(), journal=dsn)
    await first.loop.offer(firing(service="web", fingerprint="w1"))
    (claimed,) = await wait_for(lambda: first.emitted)
    await first.loop.stop()  # dies: its claim stays pending, no playbook named itself

    await asyncio.to_thread(server.stop)
    again = harness(Guarded(), journal=dsn, recheck_settle_seconds=3600, timeout=2)
    again.loop.probe_seconds = 0.2
    again.loop.clients._kube = Leases()  # the dead loop's lease is gone: nothing renews it
    await asyncio.wait_for(again.loop.recover(), 10)  # does not raise: the source goes on to serve
    feed = intake(again.loop)
    feed.accept([firing(service="api", fingerprint="a1")])
    await wait_for(lambda: any("journal unreachable" in json.dumps(p) for p in again.posted), timeout=15)
    assert again.emitted == [] and feed.spooled() == ["a1"]

    server.start()
    await wait_for(lambda: feed.spooled() == [] and len(again.emitted) == 2, timeout=20)
    with Journal(dsn) as journal:
        (web_action,) = journal.decision(claimed["decision_id"])["actions"]
        api = [a for d in journal.query(namespace="shop", service="api") for a in d["actions"]]
    assert web_action["outcome"] == "skipped" and "restarted" in web_action["detail"], web_action
    # web's alert, never acted on, is checked again, and so is api's that waited: one rollback each.
    assert sorted((e["service"], e["action"]) for e in again.emitted) == [("api", "rollback"), ("web", "rollback")]
    assert [a["action"] for a in api if a["action"] != "escalate"] == ["rollback"]
