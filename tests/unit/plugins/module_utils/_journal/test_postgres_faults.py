"""The PostgreSQL journal when its connection is cut: nothing half-written, a clear error, and the next call works.

The session is ended from a second connection (``pg_terminate_backend``, what an administrator or a failover does)
between two statements of one multi-statement write, on a real server (the sandbox's launcher). Then the rows are
counted through a side door: the whole transaction is gone, not only its last statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError, JournalUnavailable
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import postgres as _pg
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import SCHEMA_VERSION, Journal
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend

from sandbox import postgres

PROPOSING = {"action": "escalate", "proposed": "rollback", "proposed_params": {"to_revision": 3}, "rule": "ladder"}


@pytest.fixture
def database(postgres_server: postgres.Postgres) -> Iterator[JournalBackend]:
    name = f"faults_{uuid.uuid4().hex[:12]}"
    backend = JournalBackend("postgresql", postgres_server.create_database(name))
    try:
        yield backend
    finally:
        _pg.close_pools()
        postgres_server.drop_database(name)


class CutBefore:
    """Ends the journal's own session (from another connection) just before the first statement that contains
    ``marker``, so that statement runs on a connection the server has closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, dsn: str, marker: str) -> None:
        self.dsn, self.marker, self.cut = dsn, marker, 0
        original = _pg._Tx.execute, _pg._Tx.rows, _pg._Tx.insert
        for name, method in zip(("execute", "rows", "insert"), original, strict=True):
            monkeypatch.setattr(_pg._Tx, name, self._wrap(method))

    def _wrap(self, method: Any) -> Any:
        def run(tx: Any, sql: str, args: tuple[Any, ...] = ()) -> Any:
            if self.marker in sql and not self.cut:
                self.cut += 1
                with psycopg.connect(self.dsn, autocommit=True) as other:
                    # The second argument waits (up to 5 s) until the session is really gone.
                    (ended,) = other.execute(
                        "SELECT pg_terminate_backend(%s, 5000)", (tx._conn.info.backend_pid,)
                    ).fetchone()
                assert ended, "the journal's session was ended"
            return method(tx, sql, args)

        return run


@pytest.mark.parametrize("pooled", [False, True], ids=["one-connection", "pool"])
def test_a_connection_cut_mid_decision_writes_nothing_and_the_next_call_works(
    database: JournalBackend, monkeypatch: pytest.MonkeyPatch, pooled: bool
) -> None:
    """record_decision with an alert and a proposal is three statements (incident, decision, approval); the session
    dies before the third: neither the incident nor the decision stays, and the error says so."""
    journal = Journal(database.target, pooled=pooled)
    cut = CutBefore(monkeypatch, database.target, "INSERT INTO approvals")
    args: dict[str, Any] = {
        "namespace": "shop",
        "service": "web",
        "snapshot": {"id": "s"},
        "decision": PROPOSING,
        "fingerprint": "fp1",
        "alert_status": "firing",
        "approval_ttl": timedelta(hours=1),
    }
    with pytest.raises(JournalUnavailable) as failed:
        journal.record_decision(**args)
    assert cut.cut == 1
    message = str(failed.value)
    assert "terminating connection" in message and "rolled back: nothing of it was written" in message
    assert (database.count("incidents"), database.count("decisions"), database.count("approvals")) == (0, 0, 0)

    decision_id = journal.record_decision(**args)  # the same journal: a fresh connection, no error
    assert (database.count("incidents"), database.count("decisions"), database.count("approvals")) == (1, 1, 1)
    assert journal.decision(decision_id)["incident_id"] is not None
    journal.close()


def test_a_connection_cut_mid_claim_leaves_no_action_and_the_pool_serves_the_next_call(
    database: JournalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's other half: an action finished with its progress in one call (mark_applied) is cut midway."""
    journal = Journal(database.target, pooled=True)
    decision_id = journal.record_decision(namespace="shop", service="web", snapshot={}, decision={"action": "restart"})
    action_id = journal.start_action(decision_id, "restart", {})
    CutBefore(monkeypatch, database.target, "action_progress")
    with pytest.raises(JournalUnavailable, match="rolled back"):
        journal.mark_applied(action_id, changed=True, detail="restarted")
    assert database.count("action_progress") == 0
    assert journal.action(action_id)["outcome"] == "pending", "the action is as the claim left it"
    journal.mark_applied(action_id, changed=True, detail="restarted")
    assert journal.action(action_id)["applied"]
    journal.close()


def test_a_connection_cut_mid_migration_creates_nothing_and_the_next_open_upgrades(
    database: JournalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All migrations of a new journal are one transaction: cut at version 5's first table, none of 1-4 stays."""
    cut = CutBefore(monkeypatch, database.target, "CREATE TABLE IF NOT EXISTS action_progress")
    with pytest.raises(JournalUnavailable):
        Journal(database.target)
    assert cut.cut == 1
    assert not database.created(), "no table of the earlier versions was left behind"
    with Journal(database.target) as journal:
        assert journal.schema_version() == SCHEMA_VERSION


def test_a_stale_connection_is_replaced_without_an_error(database: JournalBackend) -> None:
    """A session ended while the journal was idle (a restart, an administrator): the next read and the next write
    find out on their first statement, before anything could be written, and go on on a fresh connection."""
    journal = Journal(database.target)
    for call in (lambda: journal.query(namespace="shop"), lambda: journal.expire_alerts(datetime.now(UTC))):
        pid = journal._backend._conn.info.backend_pid
        database.execute("SELECT pg_terminate_backend(?, 5000)", (pid,))
        call()
        assert journal._backend._conn.info.backend_pid != pid
    journal.close()


def test_a_statement_that_fails_is_a_journal_error_not_an_unreachable_journal(database: JournalBackend) -> None:
    journal = Journal(database.target)
    with pytest.raises(JournalError) as failed, journal._write() as tx:
        tx.execute("INSERT INTO no_such_table VALUES (1)")
    assert not isinstance(failed.value, JournalUnavailable)
    journal.close()


def test_a_server_that_refuses_is_an_unreachable_journal(postgres_server: postgres.Postgres) -> None:
    from sandbox import procs

    dsn = f"postgresql://selfheal@127.0.0.1:{procs.free_port()}/selfheal"  # nothing listens there
    with pytest.raises(JournalUnavailable, match="cannot open the journal"):
        Journal(dsn, timeout=2)
