"""The journal on both backends (SQLite, PostgreSQL): records, history in snapshot format, atomic writes, schema
migrations, alert deduplication, and many processes at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import postgres as postgres_backend
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import sqlite as sqlite_backend
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Journal,
    default_journal_path,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot, snapshot_to_dict
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW, edited, snapshot

DECISION = {"action": "scale_up", "params": {"replicas": 6}, "proposed": None, "rule": "scale-up", "reasons": ["r"]}


def minutes(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


@pytest.fixture
def journal(journal_backend: JournalBackend) -> Any:
    with Journal(journal_backend.target) as j:
        yield j


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def record(journal: Journal, service: str = "checkout", at: datetime = NOW, **extra: Any) -> int:
    return journal.record_decision(
        namespace="shop", service=service, snapshot={"id": "s"}, decision=DECISION, at=at, **extra
    )


def test_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "journal.db"
    Journal(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_default_path_follows_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_journal_path() == tmp_path / "zerotouch-selfheal" / "journal.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_journal_path() == tmp_path / "home" / ".local" / "state" / "zerotouch-selfheal" / "journal.db"


def test_decision_and_actions_are_recorded_and_queried(journal: Journal) -> None:
    decision_id = record(journal, fingerprint="fp1", alert_status="firing")
    action_id = journal.start_action(decision_id, "scale_up", {"replicas": 6}, started=minutes(1))
    journal.finish_action(action_id, outcome="recovered", changed=True, detail="6/6 ready", ended=NOW)
    [row] = journal.query(service="checkout")
    assert (row["id"], row["action"], row["time"], row["rule"], row["decision"]) == (
        decision_id,
        "scale_up",
        "2026-03-04T15:10:00Z",
        "scale-up",
        DECISION,
    )
    assert row["actions"] == [
        {
            "id": action_id,
            "action": "scale_up",
            "params": {"replicas": 6},
            "started": "2026-03-04T15:09:00Z",
            "ended": "2026-03-04T15:10:00Z",
            "changed": True,
            "outcome": "recovered",
            "detail": "6/6 ready",
            "effectiveness": None,  # until intent_verify records one
        }
    ]
    assert "snapshot" not in row
    assert journal.query(service="checkout", include_snapshot=True)[0]["snapshot"] == {"id": "s"}


def test_query_filters_and_orders_newest_first(journal: Journal) -> None:
    for n, service in enumerate(["a", "b", "a", "a"]):
        record(journal, service=service, at=minutes(40 - n * 10))
    assert [r["time"] for r in journal.query(service="a")] == [
        "2026-03-04T15:00:00Z",
        "2026-03-04T14:50:00Z",
        "2026-03-04T14:30:00Z",
    ]
    assert len(journal.query(service="a", since=minutes(25))) == 2
    assert len(journal.query(service="a", until=minutes(25))) == 1
    assert len(journal.query(action="rollback")) == 0
    assert len(journal.query(limit=2)) == 2


def test_history_is_in_snapshot_format_newest_last_and_skips_skipped(journal: Journal) -> None:
    decision_id = record(journal)
    for started, outcome in ((50, "recovered"), (70, "failed"), (20, "skipped"), (5, "pending")):
        journal.record_action(decision_id, "restart", {}, outcome=outcome, started=minutes(started))
    journal.record_action(record(journal, service="other"), "restart", {}, outcome="failed", started=minutes(3))
    assert journal.history("checkout", "shop", since=minutes(60)) == [
        {"action": "restart", "at": "2026-03-04T14:20:00Z", "outcome": "recovered"},
        {"action": "restart", "at": "2026-03-04T15:05:00Z", "outcome": "pending"},
    ]
    assert journal.history("checkout", "shop", since=minutes(60), until=minutes(10)) == [
        {"action": "restart", "at": "2026-03-04T14:20:00Z", "outcome": "recovered"}
    ]


def test_history_feeds_the_engine(journal: Journal) -> None:
    # The loop: what was journalled is what the next decision sees (here: a cooldown).
    edits = {"observed.metrics.latency_p99_ms": 480, "observed.metrics.cpu_utilization": 90}
    first = decide(snapshot(edits))
    decision_id = journal.record_decision(
        namespace="shop",
        service="checkout",
        snapshot=snapshot_to_dict(snapshot(edits)),
        decision=first.to_dict(),
        at=minutes(4),
    )
    journal.start_action(decision_id, first.action, first.params, started=minutes(4))
    later = edited({**edits, "history": journal.history("checkout", "shop", since=minutes(60))})
    assert (first.action, decide(parse_snapshot(later, "j")).rule) == ("scale_up", "cooldown")


def test_incidents_group_decisions_by_alert(journal: Journal) -> None:
    record(journal, fingerprint="fp1", alert_status="firing", at=minutes(30))
    record(journal, fingerprint="fp1", alert_status="firing", at=minutes(20))
    record(journal, fingerprint="fp2", alert_status="firing", at=minutes(15))
    record(journal, fingerprint="fp1", alert_status="resolved", at=minutes(10))
    record(journal, fingerprint="fp1", alert_status="firing", at=minutes(5))  # fired again: a new incident
    record(journal, fingerprint="fp9", alert_status="resolved", at=minutes(1))  # never seen firing: no incident
    record(journal)  # no alert: no incident
    incidents = journal.incidents()
    assert [(i["fingerprint"], i["status"], i["decisions"]) for i in incidents] == [
        ("fp1", "open", 1),
        ("fp2", "open", 1),
        ("fp1", "closed", 3),
    ]
    assert incidents[2]["closed"] == "2026-03-04T15:00:00Z"
    assert [i["fingerprint"] for i in journal.incidents(status="closed")] == ["fp1"]


# --- atomicity -----------------------------------------------------------------------------------------------------


def test_unserialisable_snapshot_writes_nothing(journal: Journal, journal_backend: JournalBackend) -> None:
    with pytest.raises(JournalError, match="cannot journal the snapshot"):
        journal.record_decision(namespace="shop", service="c", snapshot={"x": object()}, decision=DECISION)
    with pytest.raises(JournalError, match="cannot journal the snapshot"):
        journal.record_decision(namespace="shop", service="c", snapshot={"x": float("nan")}, decision=DECISION)
    assert journal_backend.count("decisions") == 0


def test_failure_mid_transaction_rolls_everything_back(
    journal: Journal, journal_backend: JournalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Journal._incident

    def incident_then_crash(self: Journal, *args: Any) -> int | None:
        original(self, *args)  # the incident row is written ...
        raise RuntimeError("crash between two inserts")  # ... and then the process fails

    monkeypatch.setattr(Journal, "_incident", incident_then_crash)
    with pytest.raises(RuntimeError):
        record(journal, fingerprint="fp1", alert_status="firing")
    assert (journal_backend.count("incidents"), journal_backend.count("decisions")) == (0, 0)
    monkeypatch.undo()
    assert record(journal, fingerprint="fp1", alert_status="firing") > 0  # the connection is still usable


def test_action_needs_an_existing_decision(journal: Journal, journal_backend: JournalBackend) -> None:
    with pytest.raises(JournalError, match="there is no decision 42"):
        journal.start_action(42, "restart", {})
    assert journal_backend.count("actions") == 0


@pytest.mark.parametrize("outcome", ["done", "", "RECOVERED"])
def test_outcome_must_be_known(journal: Journal, outcome: str) -> None:
    with pytest.raises(JournalError, match="outcome must be one of"):
        journal.record_action(record(journal), "restart", {}, outcome=outcome)
    with pytest.raises(JournalError, match="outcome must be one of"):
        journal.finish_action(1, outcome=outcome)


def test_finishing_an_unknown_action_fails(journal: Journal) -> None:
    with pytest.raises(JournalError, match="no such action"):
        journal.finish_action(7, outcome="recovered")


def test_times_need_an_offset(journal: Journal) -> None:
    with pytest.raises(JournalError, match="UTC offset"):
        record(journal, at=datetime(2026, 3, 4, 15, 10))


def test_a_fresh_journal_gets_the_current_schema(journal_backend: JournalBackend) -> None:
    with Journal(journal_backend.target) as journal:
        assert journal.schema_version() == SCHEMA_VERSION
    assert journal_backend.execute("SELECT version FROM schema_version ORDER BY version") == [
        (v,) for v in sorted(MIGRATIONS) if v >= 2
    ]
    assert journal_backend.execute("SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    for table in ("decisions", "actions", "incidents", "alert_dedupe"):
        assert journal_backend.count(table) == 0
    Journal(journal_backend.target).close()  # opening again applies nothing twice
    assert journal_backend.count("schema_version") == len([v for v in MIGRATIONS if v >= 2])


def _version_1_journal(journal_backend: JournalBackend) -> None:
    """A journal as version 1 of the collection left it, with an open incident in it."""
    ddl = (sqlite_backend if journal_backend.kind == "sqlite" else postgres_backend).DIALECT
    if journal_backend.kind == "sqlite":
        Path(journal_backend.target).parent.mkdir(parents=True, exist_ok=True)
    for statement in MIGRATIONS[1]:
        journal_backend.execute(statement.format(**ddl))
    journal_backend.execute(
        "INSERT INTO incidents (namespace, service, fingerprint, opened, status)"
        " VALUES ('shop', 'checkout', 'fp1', '2026-03-04T15:00:00.000000Z', 'open')"
    )
    journal_backend.execute(
        "INSERT INTO decisions (time, namespace, service, fingerprint, action, incident_id, snapshot, decision)"
        " VALUES ('2026-03-04T15:00:00.000000Z', 'shop', 'checkout', 'fp1', 'restart', 1, '{}', '{\"action\": 1}')"
    )


def test_an_older_journal_is_upgraded_on_open_and_keeps_its_records(journal_backend: JournalBackend) -> None:
    _version_1_journal(journal_backend)
    with Journal(journal_backend.target) as journal:
        assert journal.schema_version() == SCHEMA_VERSION
        [old] = journal.query()
        assert (old["action"], old["incident_id"], old["time"]) == ("restart", 1, "2026-03-04T15:00:00Z")
        # What version 2 brought works on the upgraded journal: one open incident per alert, deduplication.
        joined = record(journal, fingerprint="fp1", alert_status="firing")
        assert journal.query(limit=1)[0]["id"] == joined
        assert [(i["id"], i["decisions"]) for i in journal.incidents()] == [(1, 2)]
        assert journal.accept_alert("fp1", "firing", "2026-03-04T15:00:00Z") is True
    assert journal_backend.execute("SELECT version FROM schema_version ORDER BY version") == [
        (v,) for v in sorted(MIGRATIONS) if v >= 2
    ]


def test_a_newer_schema_is_refused(journal_backend: JournalBackend) -> None:
    Journal(journal_backend.target).close()
    journal_backend.execute("INSERT INTO schema_version (version, applied) VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(JournalError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this collection"):
        Journal(journal_backend.target)


def test_a_newer_schema_written_by_an_older_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(JournalError, match="newer than this collection"):
        Journal(path)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://selfheal:s3cret-pw@127.0.0.1:5432/selfheal",
        "postgresql://selfheal@127.0.0.1:5432/selfheal?password=s3cret-pw",
        "postgres://:s3cret-pw@db.example.com/selfheal",
    ],
)
def test_a_url_with_a_password_is_refused_without_showing_it(dsn: str) -> None:
    with pytest.raises(JournalError, match="contains a password") as refused:
        Journal(dsn)
    assert "s3cret-pw" not in str(refused.value) and "PGPASSWORD" in str(refused.value)


def test_an_unreachable_database_is_a_journal_error() -> None:
    with pytest.raises(JournalError, match="cannot open the journal postgresql://nobody@127.0.0.1:1/none"):
        Journal("postgresql://nobody@127.0.0.1:1/none", timeout=2)


def test_a_url_selects_postgresql_and_a_path_sqlite(journal_backend: JournalBackend) -> None:
    with Journal(journal_backend.target) as journal:
        assert journal.dialect == journal_backend.kind
        assert (journal.path is None) == (journal_backend.kind == "postgresql")


def test_unopenable_path_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(tmp_path / "file" / "journal.db")


# --- many writers --------------------------------------------------------------------------------------------------

WRITERS, RECORDS = 6, 120


def _writer(path: str, writer: int, start: Any) -> None:
    start.wait()  # every process opens the journal (creating it) and writes at the same moment
    with Journal(path, timeout=60) as journal:
        for n in range(RECORDS):
            at = datetime(2026, 3, 4, tzinfo=UTC) + timedelta(seconds=n)
            decision_id = journal.record_decision(
                namespace="shop",
                service=f"svc-{writer}",
                snapshot={"writer": writer, "n": n},
                decision=DECISION,
                fingerprint=f"fp-{writer}",
                alert_status="firing",
                at=at,
            )
            action_id = journal.start_action(decision_id, "restart", {"n": n}, started=at)
            journal.finish_action(action_id, outcome="recovered", changed=True, ended=at)


def _reader(path: str, start: Any, seen: Any) -> None:
    start.wait()
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while datetime.now(UTC) < deadline:
        try:
            with Journal(path, timeout=60) as journal:
                rows = journal.query(limit=100000)
        except JournalError:
            continue  # the file may not be created yet
        # Committed records never disappear, and a reader only ever sees whole rows with valid outcomes.
        assert len(rows) >= seen.value
        assert all(a["outcome"] in ("pending", "recovered") for r in rows for a in r["actions"])
        seen.value = len(rows)
        if len(rows) == WRITERS * RECORDS:
            return


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_many_processes_write_at_once_without_losing_a_record(journal_backend: JournalBackend) -> None:
    context = multiprocessing.get_context("fork")
    path = journal_backend.target
    start = context.Barrier(WRITERS + 1)
    seen = context.Value("i", 0)
    processes = [context.Process(target=_writer, args=(path, w, start)) for w in range(WRITERS)]
    processes.append(context.Process(target=_reader, args=(path, start, seen)))
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * len(processes)
    with Journal(path) as journal:
        rows = journal.query(limit=100000)
        assert len(rows) == WRITERS * RECORDS == seen.value
        assert sorted(r["id"] for r in rows) == list(range(1, WRITERS * RECORDS + 1))
        for writer in range(WRITERS):
            mine = journal.query(service=f"svc-{writer}", limit=100000)
            assert sorted(r["actions"][0]["params"]["n"] for r in mine) == list(range(RECORDS))
            assert all(len(r["actions"]) == 1 and r["actions"][0]["outcome"] == "recovered" for r in mine)
    assert journal_backend.count("incidents") == WRITERS
    if journal_backend.kind == "sqlite":
        assert journal_backend.execute("PRAGMA integrity_check") == [("ok",)]


def _open_and_write(path: str, start: Any) -> None:
    start.wait()
    with Journal(path, timeout=30) as journal:
        journal.record_decision(namespace="shop", service="checkout", snapshot={}, decision={"action": "none"})


def test_many_processes_creating_a_new_journal_at_once_all_succeed(tmp_path: Path) -> None:
    # SQLite gives no busy timeout to the switch to WAL: before the retry, about 1 open in 30 failed here.
    context = multiprocessing.get_context("fork")
    rounds, openers = 25, 8
    for round_ in range(rounds):
        path = str(tmp_path / f"journal-{round_}.db")
        start = context.Barrier(openers)
        processes = [context.Process(target=_open_and_write, args=(path, start)) for _ in range(openers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0] * openers, f"round {round_}"
        assert count(path, "decisions") == openers


def test_many_processes_opening_a_new_database_at_once_all_succeed(postgres_server: Any) -> None:
    # Every opener finds no schema and upgrades it: the advisory lock lets one create it and the others see it.
    context = multiprocessing.get_context("fork")
    rounds, openers = 4, 6
    for round_ in range(rounds):
        name = f"race_{round_}_{os.getpid()}"
        dsn = postgres_server.create_database(name)
        try:
            start = context.Barrier(openers)
            processes = [context.Process(target=_open_and_write, args=(dsn, start)) for _ in range(openers)]
            for process in processes:
                process.start()
            for process in processes:
                process.join(timeout=60)
            assert [p.exitcode for p in processes] == [0] * openers, f"round {round_}"
            assert JournalBackend("postgresql", dsn).count("decisions") == openers
        finally:
            postgres_server.drop_database(name)


# --- alert deduplication -------------------------------------------------------------------------------------------

STARTS = "2026-03-04T15:00:00.123456789Z"  # Alertmanager sends nanoseconds


def test_an_alert_is_accepted_once_until_its_key_expires(journal: Journal, journal_backend: JournalBackend) -> None:
    assert journal.accept_alert("fp1", "firing", STARTS, now=NOW) is True
    assert journal.accept_alert("fp1", "firing", STARTS, now=NOW + timedelta(minutes=5)) is False
    assert journal.accept_alert("fp1", "firing", "2026-03-04T16:00:00.123456+01:00", now=NOW) is False  # same instant
    assert journal.accept_alert("fp1", "resolved", STARTS, now=NOW) is True  # another status: another key
    assert journal.accept_alert("fp1", "firing", "2026-03-04T15:30:00Z", now=NOW) is True  # fired again
    assert journal.accept_alert("fp2", "firing", STARTS, now=NOW) is True
    later = NOW + timedelta(hours=25)
    assert journal.accept_alert("fp1", "firing", STARTS, now=later) is True  # its day has passed
    assert journal.accept_alert("fp1", "firing", STARTS, now=later) is False
    assert journal.expire_alerts(now=later) == 3  # fp1/resolved, fp1/15:30, fp2; the renewed one stays
    assert journal_backend.count("alert_dedupe") == 1
    assert journal.accept_alert("fp3", "firing", STARTS, ttl=timedelta(seconds=10), now=NOW) is True
    assert journal.accept_alert("fp3", "firing", STARTS, now=NOW + timedelta(seconds=11)) is True


@pytest.mark.parametrize("starts_at", ["yesterday", "2026-03-04T15:00:00"])
def test_an_alert_start_must_be_a_time_with_an_offset(journal: Journal, starts_at: str) -> None:
    with pytest.raises(JournalError, match="starts_at is not a time with a UTC offset"):
        journal.accept_alert("fp1", "firing", starts_at)


KEYS, ACCEPTERS = 40, 6


def _accept_all(target: str, start: Any, accepted: Any) -> None:
    start.wait()
    with Journal(target, timeout=60) as journal:
        mine = [k for k in range(KEYS) if journal.accept_alert(f"fp-{k}", "firing", STARTS, now=NOW)]
    accepted.put(mine)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_concurrent_processes_accept_each_alert_exactly_once(journal_backend: JournalBackend) -> None:
    Journal(journal_backend.target).close()
    context = multiprocessing.get_context("fork")
    start, accepted = context.Barrier(ACCEPTERS), context.Queue()
    processes = [
        context.Process(target=_accept_all, args=(journal_backend.target, start, accepted)) for _ in range(ACCEPTERS)
    ]
    for process in processes:
        process.start()
    results = [accepted.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert [p.exitcode for p in processes] == [0] * ACCEPTERS
    assert sorted(k for mine in results for k in mine) == list(range(KEYS))


def test_concurrent_threads_accept_each_alert_exactly_once(journal_backend: JournalBackend) -> None:
    # A long-lived process: with PostgreSQL, one pooled journal shared by every thread; SQLite, one each.
    shared = Journal(journal_backend.target, pooled=True) if journal_backend.kind == "postgresql" else None
    start = threading.Barrier(ACCEPTERS)

    def accept() -> list[int]:
        start.wait()
        journal = shared or Journal(journal_backend.target, timeout=60)
        try:
            return [k for k in range(KEYS) if journal.accept_alert(f"fp-{k}", "firing", STARTS, now=NOW)]
        finally:
            if shared is None:
                journal.close()

    try:
        with ThreadPoolExecutor(ACCEPTERS) as pool:
            results = [f.result(timeout=120) for f in [pool.submit(accept) for _ in range(ACCEPTERS)]]
    finally:
        if shared is not None:
            shared.close()
    assert sorted(k for mine in results for k in mine) == list(range(KEYS))


# --- a writer that dies mid-transaction ----------------------------------------------------------------------------


def _die_mid_transaction(target: str, inside: Any) -> None:
    original = Journal._incident

    def incident_then_hang(self: Journal, *args: Any) -> int | None:
        found = original(self, *args)  # the incident row is written, not committed ...
        inside.set()
        time.sleep(120)  # ... and the process is killed here
        return found

    Journal._incident = incident_then_hang  # type: ignore[method-assign]
    with Journal(target) as journal:
        record(journal, fingerprint="fp1", alert_status="firing")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_a_writer_killed_mid_transaction_leaves_nothing_half_written(journal_backend: JournalBackend) -> None:
    Journal(journal_backend.target).close()
    context = multiprocessing.get_context("fork")
    inside = context.Event()
    writer = context.Process(target=_die_mid_transaction, args=(journal_backend.target, inside))
    writer.start()
    assert inside.wait(timeout=60)
    os.kill(writer.pid or 0, signal.SIGKILL)  # its connection drops with the transaction open
    writer.join(timeout=10)
    with Journal(journal_backend.target, timeout=30) as journal:
        assert (journal_backend.count("incidents"), journal_backend.count("decisions")) == (0, 0)
        assert record(journal, fingerprint="fp1", alert_status="firing") > 0  # nothing is left locked
        assert [i["decisions"] for i in journal.incidents()] == [1]


def test_a_connection_dropped_by_the_server_mid_transaction_rolls_back(
    postgres_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"dropped_{os.getpid()}"
    dsn = postgres_server.create_database(name)
    backend = JournalBackend("postgresql", dsn)
    try:
        with Journal(dsn) as journal:
            original = Journal._incident

            def incident_then_drop(self: Journal, *args: Any) -> int | None:
                found = original(self, *args)
                (pid,) = backend.execute("SELECT pid FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")[0]
                backend.execute("SELECT pg_terminate_backend(?)", (pid,))
                return found

            monkeypatch.setattr(Journal, "_incident", incident_then_drop)
            with pytest.raises(JournalError, match=f"cannot write to the journal {dsn}"):
                record(journal, fingerprint="fp1", alert_status="firing")
            monkeypatch.undo()
            assert (backend.count("incidents"), backend.count("decisions")) == (0, 0)
            assert record(journal, fingerprint="fp1", alert_status="firing") > 0  # it connects again
    finally:
        postgres_server.drop_database(name)


def test_pending_actions_count_every_service_not_yet_verified(journal: Journal) -> None:
    for service, started, outcome in (
        ("checkout", 5, "pending"),
        ("cart", 3, "pending"),
        ("cart", 30, "recovered"),
        ("search", 2, "skipped"),
        ("search", 200, "pending"),  # older than the window asked for
    ):
        journal.record_action(
            record(journal, service=service), "restart", {}, outcome=outcome, started=minutes(started)
        )
    assert journal.pending_actions(since=minutes(60)) == 2
    assert journal.pending_actions(since=minutes(300)) == 3


def test_gate_answers_round_trip_on_every_backend(journal: Journal) -> None:
    answer = {"change": "deploy", "allowed": False, "rule": "freeze", "forced": False, "reasons": ["freeze: ..."]}
    gate_id = journal.record_gate(
        namespace="shop",
        service="checkout",
        answer=answer,
        snapshot={"now": "2026-03-04T15:10:00Z"},
        requested_by="{{ lookup('pipe', 'id') }}",
        change_id="ci-42",
        at=NOW,
    )
    [row] = journal.gate_answers(service="checkout", include_snapshot=True)
    assert (row["id"], row["allowed"], row["rule"], row["change_id"]) == (gate_id, False, "freeze", "ci-42")
    assert row["requested_by"] == "{{ lookup('pipe', 'id') }}"  # the pipeline's words, kept as data
    assert row["answer"] == answer and row["snapshot"] == {"now": "2026-03-04T15:10:00Z"}


def test_the_warm_loop_progress_on_every_backend(journal: Journal) -> None:
    decision_id = record(journal, fingerprint="fp1", alert_status="firing")
    action_id = journal.start_action(decision_id, "rollback", {"to_revision": 6}, started=NOW)
    assert journal.action(action_id)["applied"] is None
    assert [a["id"] for a in journal.unfinished_actions()] == [action_id]
    journal.mark_applied(action_id, changed=True, detail="rolled back", at=NOW)
    journal.mark_applied(action_id, changed=True, detail="rolled back again", at=minutes(-1))  # a retry: upsert
    applied = journal.action(action_id)
    assert (applied["applied"], applied["changed"], applied["detail"]) == (
        "2026-03-04T15:11:00Z",
        True,
        "rolled back again",
    )
    alert = {"fingerprint": "fp2", "status": "firing", "labels": {"summary": "{{ lookup('pipe', 'id') }}"}}
    link_id = journal.link_alert(decision_id, alert, "coalesced: check in progress", at=NOW)
    [link] = journal.linked_alerts(decision_id)
    assert (link["id"], link["alert"], link["incident_id"]) == (link_id, alert, journal.incidents()[0]["id"])
    with pytest.raises(JournalError, match="no such decision"):
        journal.link_alert(decision_id + 100, alert, "coalesced")
    with pytest.raises(JournalError, match="no such action"):
        journal.mark_applied(action_id + 100)
    journal.finish_action(action_id, outcome="recovered", ended=NOW)
    assert journal.unfinished_actions() == []


# --- the warm loop's runs: the playbook that takes up a claimed action, and a restart settling it -----------------

RUN = {"host": "h", "boot": "b", "pid": 4242, "start": 99, "session": 4242}


def test_a_run_named_on_a_pending_action_keeps_the_loop_from_settling_it_as_never_started(journal: Journal) -> None:
    action_id = journal.start_action(record(journal), "rollback", {})
    assert journal.record_run(action_id, RUN) is True
    assert journal.action(action_id)["run"] == RUN  # type: ignore[index]
    assert journal.settle_unstarted(action_id, "skipped: restarted") is False
    assert journal.action(action_id)["outcome"] == "pending"  # type: ignore[index]


def test_an_action_settled_as_never_started_takes_no_run_any_more(journal: Journal) -> None:
    action_id = journal.start_action(record(journal), "rollback", {})
    assert journal.action(action_id)["run"] is None  # type: ignore[index]
    assert journal.settle_unstarted(action_id, "skipped: restarted") is True
    found = journal.action(action_id)
    assert found is not None and (found["outcome"], found["changed"], found["detail"]) == (
        "skipped",
        False,
        "skipped: restarted",
    )
    assert found["ended"] is not None
    assert journal.record_run(action_id, RUN) is False, "a late playbook finds nothing to act on"
    assert journal.settle_unstarted(action_id, "again") is False


def test_an_action_reported_applied_is_not_settled_as_never_started(journal: Journal) -> None:
    action_id = journal.start_action(record(journal), "rollback", {})
    journal.mark_applied(action_id, changed=True)
    assert journal.settle_unstarted(action_id, "skipped: restarted") is False
    assert journal.action(action_id)["outcome"] == "pending"  # type: ignore[index]
