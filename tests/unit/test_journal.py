"""The SQLite journal: records, history in snapshot format, atomic writes, and many processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import (
    SCHEMA_VERSION,
    Journal,
    default_journal_path,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot, snapshot_to_dict
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW, edited, snapshot

DECISION = {"action": "scale_up", "params": {"replicas": 6}, "proposed": None, "rule": "scale-up", "reasons": ["r"]}


def minutes(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


@pytest.fixture
def journal(tmp_path: Path) -> Any:
    with Journal(tmp_path / "state" / "journal.db") as j:
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


def test_unserialisable_snapshot_writes_nothing(journal: Journal) -> None:
    with pytest.raises(JournalError, match="cannot journal the snapshot"):
        journal.record_decision(namespace="shop", service="c", snapshot={"x": object()}, decision=DECISION)
    with pytest.raises(JournalError, match="cannot journal the snapshot"):
        journal.record_decision(namespace="shop", service="c", snapshot={"x": float("nan")}, decision=DECISION)
    assert count(journal.path, "decisions") == 0


def test_failure_mid_transaction_rolls_everything_back(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Journal._incident

    def incident_then_crash(self: Journal, *args: Any) -> int | None:
        original(self, *args)  # the incident row is written ...
        raise RuntimeError("crash between two inserts")  # ... and then the process fails

    monkeypatch.setattr(Journal, "_incident", incident_then_crash)
    with pytest.raises(RuntimeError):
        record(journal, fingerprint="fp1", alert_status="firing")
    assert (count(journal.path, "incidents"), count(journal.path, "decisions")) == (0, 0)
    monkeypatch.undo()
    assert record(journal, fingerprint="fp1", alert_status="firing") > 0  # the connection is still usable


def test_action_needs_an_existing_decision(journal: Journal) -> None:
    with pytest.raises(JournalError, match="there is no decision 42"):
        journal.start_action(42, "restart", {})
    assert count(journal.path, "actions") == 0


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


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(JournalError, match="newer than this collection"):
        Journal(path)


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
def test_many_processes_write_at_once_without_losing_a_record(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    path = str(tmp_path / "journal.db")
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
        assert count(journal.path, "incidents") == WRITERS
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


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
