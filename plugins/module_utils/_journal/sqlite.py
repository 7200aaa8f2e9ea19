# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The journal's SQLite backend: one file, one connection per :class:`~._journal.store.Journal`.

Several processes (parallel playbook forks, the rulebook, ``journal_info``) may write at once. Safety rests on
SQLite itself: WAL mode (readers never block the writer), a busy timeout (a writer waits for another instead of
failing), ``BEGIN IMMEDIATE`` (a write transaction takes the write lock up front, so it cannot deadlock on an
upgrade, and writers are serialised), ``synchronous=FULL`` (a committed record survives a power cut), and one
transaction per public write method (a failure rolls everything back: nothing is ever half-written).

Only what SQLite spells differently from PostgreSQL lives here; it needs SQLite 3.24 (upserts), not RETURNING.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError

DIALECT = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "ref": "INTEGER"}


class _Tx:
    """The statements of one write transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        return int(self._conn.execute(sql, args).rowcount)

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, args).fetchall())

    def insert(self, sql: str, args: tuple[Any, ...] = ()) -> int | None:
        cursor = self._conn.execute(sql, args)
        return int(cursor.lastrowid) if cursor.rowcount == 1 and cursor.lastrowid else None


class SqliteBackend:
    """One connection to a journal file."""

    dialect = "sqlite"
    ddl = DIALECT

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.where = str(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc
        try:
            self._configure(timeout)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def _configure(self, timeout: float) -> None:
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self._switch_to_wal(timeout)
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot configure the journal {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            # WAL needs shared memory, which some network filesystems lack; concurrent use would then be unsafe.
            raise JournalError(f"the journal {self.path} cannot use WAL mode (got {mode!r}): put it on a local disk")

    def _switch_to_wal(self, timeout: float) -> str:
        # SQLite does not apply the busy timeout to a change of journal mode: when several processes open a new
        # journal at once, all but one get "database is locked" at once. Retry within the same timeout instead.
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                return str(self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        """One write transaction, holding the write lock from its start: all of it is committed, or none of it."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc
        try:
            yield _Tx(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc
            raise

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self._conn.execute(sql, args)
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc

    # --- what SQLite says its own way ----------------------------------------------------------------------------

    @staticmethod
    def unavailable(exc: BaseException) -> bool:
        """A local file has no server to lose: every failure is the statement's or the file's."""
        return False

    def lock_schema(self, tx: _Tx) -> None:
        """Nothing to do: BEGIN IMMEDIATE already keeps every other writer out while the schema is upgraded."""

    def table_exists(self, tx: _Tx, table: str) -> bool:
        return bool(tx.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)))

    def open_incident(self, tx: _Tx, stamp: str, namespace: str, service: str, fingerprint: str) -> int:
        # Writers are serialised (BEGIN IMMEDIATE), so the open incident read back is the one this statement kept;
        # the partial unique index is what makes a second open incident of one alert impossible all the same.
        tx.execute(
            "INSERT INTO incidents (namespace, service, fingerprint, opened, status) VALUES (?, ?, ?, ?, 'open')"
            " ON CONFLICT (namespace, service, fingerprint) WHERE status = 'open' DO NOTHING",
            (namespace, service, fingerprint, stamp),
        )
        (found,) = tx.rows(
            "SELECT id FROM incidents WHERE namespace = ? AND service = ? AND fingerprint = ? AND status = 'open'",
            (namespace, service, fingerprint),
        )
        return int(found[0])

    def close_incident(self, tx: _Tx, stamp: str, namespace: str, service: str, fingerprint: str) -> int | None:
        found = tx.rows(
            "SELECT id FROM incidents WHERE namespace = ? AND service = ? AND fingerprint = ? AND status = 'open'",
            (namespace, service, fingerprint),
        )
        if not found:
            return None
        tx.execute("UPDATE incidents SET status = 'closed', closed = ? WHERE id = ?", (stamp, found[0][0]))
        return int(found[0][0])
