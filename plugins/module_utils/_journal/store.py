# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The decision journal: every decision, every action and its outcome, in one SQLite file.

Where: the caller chooses the path; :func:`default_journal_path` is ``$XDG_STATE_HOME/zerotouch-selfheal/journal.db``
(``~/.local/state/...`` when ``XDG_STATE_HOME`` is unset).

Several processes (parallel playbook forks, the rulebook, ``journal_info``) may write at once. Safety rests on
SQLite itself: WAL mode (readers never block the writer), a busy timeout (a writer waits for another instead of
failing), ``BEGIN IMMEDIATE`` (a write transaction takes the write lock up front, so it cannot deadlock on an
upgrade), ``synchronous=FULL`` (a committed record survives a power cut), and one transaction per public write
method (a failure rolls everything back: nothing is ever half-written). Values are serialised before the
transaction opens, so an unserialisable snapshot fails without touching the file.

Tables: ``decisions`` (one per call of the engine, with the snapshot and decision as JSON), ``actions`` (what was
run for a decision: started, ended, changed, outcome), ``incidents`` (decisions grouped by alert fingerprint: an
incident opens with the first decision on a firing alert and closes when a decision sees that alert resolved).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime, parse_datetime

SCHEMA_VERSION = 1
OUTCOMES = ("pending", "recovered", "not_recovered", "failed", "skipped")
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace TEXT NOT NULL,
        service TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        opened TEXT NOT NULL,
        closed TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed'))
    )""",
    "CREATE INDEX IF NOT EXISTS incidents_by_alert ON incidents (namespace, service, fingerprint, status)",
    """CREATE TABLE IF NOT EXISTS decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        namespace TEXT NOT NULL,
        service TEXT NOT NULL,
        fingerprint TEXT,
        action TEXT NOT NULL,
        proposed TEXT,
        rule TEXT,
        incident_id INTEGER REFERENCES incidents (id),
        snapshot TEXT NOT NULL,
        decision TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS decisions_by_service ON decisions (namespace, service, time)",
    """CREATE TABLE IF NOT EXISTS actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        decision_id INTEGER NOT NULL REFERENCES decisions (id),
        namespace TEXT NOT NULL,
        service TEXT NOT NULL,
        action TEXT NOT NULL,
        params TEXT NOT NULL,
        started TEXT NOT NULL,
        ended TEXT,
        changed INTEGER CHECK (changed IN (0, 1)),
        outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'recovered', 'not_recovered', 'failed', 'skipped')),
        detail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS actions_by_service ON actions (namespace, service, started)",
    # Added with the warm loop (additive: older journals gain the tables, nothing else changes).
    """CREATE TABLE IF NOT EXISTS action_progress (
        action_id INTEGER PRIMARY KEY REFERENCES actions (id),
        applied TEXT NOT NULL,
        changed INTEGER CHECK (changed IN (0, 1)),
        detail TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS alert_links (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        decision_id INTEGER NOT NULL REFERENCES decisions (id),
        incident_id INTEGER REFERENCES incidents (id),
        time TEXT NOT NULL,
        fingerprint TEXT,
        status TEXT,
        reason TEXT NOT NULL,
        alert TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alert_links_by_decision ON alert_links (decision_id)",
)


def default_journal_path() -> Path:
    """``$XDG_STATE_HOME/zerotouch-selfheal/journal.db``, defaulting to ``~/.local/state``."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "zerotouch-selfheal" / "journal.db"


def _stamp(value: datetime | None) -> str:
    # Fixed width, always UTC: text order is time order, so SQL can compare and sort these strings.
    moment = datetime.now(UTC) if value is None else value
    if moment.tzinfo is None:
        raise JournalError("journal times need a UTC offset")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _unstamp(value: str | None) -> str | None:
    if value is None:
        return None
    text: str = format_datetime(datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC))
    return text


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"cannot journal the {what}: {exc}") from exc


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise JournalError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")


class Journal:
    """One connection to the journal file; use one instance per process or thread (``with Journal(p) as j:``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        try:
            self._configure(timeout)
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # --- plumbing --------------------------------------------------------------------------------------------

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

    def _migrate(self) -> None:
        with self._write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.path} has schema version {row[0]}, newer than this collection's "
                    f"{SCHEMA_VERSION}: upgrade the collection"
                )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"cannot write to the journal {self.path}: {exc}") from exc
            raise

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            cursor = self._conn.execute(sql, args)
            cursor.row_factory = sqlite3.Row
            return list(cursor.fetchall())
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc

    # --- writing ---------------------------------------------------------------------------------------------

    def record_decision(
        self,
        *,
        namespace: str,
        service: str,
        snapshot: Mapping[str, Any],
        decision: Mapping[str, Any],
        fingerprint: str | None = None,
        alert_status: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Journal one decision (``snapshot_to_dict(s)``, ``decision.to_dict()``); return its id.

        With an alert ``fingerprint``, the decision joins the open incident of that alert (or opens one); a
        ``resolved`` ``alert_status`` closes it.
        """
        row = (
            _stamp(at),
            namespace,
            service,
            fingerprint,
            str(decision.get("action", "")),
            decision.get("proposed"),
            decision.get("rule"),
            _json(dict(snapshot), "snapshot"),
            _json(dict(decision), "decision"),
        )
        with self._write() as conn:
            incident = self._incident(conn, row[0], namespace, service, fingerprint, alert_status)
            cursor = conn.execute(
                "INSERT INTO decisions (time, namespace, service, fingerprint, action, proposed, rule, snapshot,"
                " decision, incident_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, incident),
            )
            return int(cursor.lastrowid or 0)

    def _incident(
        self,
        conn: sqlite3.Connection,
        stamp: str,
        namespace: str,
        service: str,
        fingerprint: str | None,
        status: str | None,
    ) -> int | None:
        if not fingerprint:
            return None
        found = conn.execute(
            "SELECT id FROM incidents WHERE namespace = ? AND service = ? AND fingerprint = ? AND status = 'open'"
            " ORDER BY id DESC LIMIT 1",
            (namespace, service, fingerprint),
        ).fetchone()
        if found is None and status == "resolved":
            return None  # a resolution for an alert we never saw firing opens nothing
        if found is None:
            cursor = conn.execute(
                "INSERT INTO incidents (namespace, service, fingerprint, opened, status) VALUES (?, ?, ?, ?, 'open')",
                (namespace, service, fingerprint, stamp),
            )
            return int(cursor.lastrowid or 0)
        if status == "resolved":
            conn.execute("UPDATE incidents SET status = 'closed', closed = ? WHERE id = ?", (stamp, found[0]))
        return int(found[0])

    def start_action(
        self, decision_id: int, action: str, params: Mapping[str, Any], started: datetime | None = None
    ) -> int:
        """Journal that ``action`` starts for a decision (outcome ``pending``); return the action id."""
        return self.record_action(decision_id, action, params, outcome="pending", started=started)

    def record_action(
        self,
        decision_id: int,
        action: str,
        params: Mapping[str, Any],
        *,
        outcome: str,
        changed: bool | None = None,
        detail: str | None = None,
        started: datetime | None = None,
        ended: datetime | None = None,
    ) -> int:
        """Journal an action of a decision in one go; return its id."""
        _check_outcome(outcome)
        values = (
            decision_id,
            action,
            _json(dict(params), "action parameters"),
            _stamp(started),
            _stamp(ended) if ended else None,
            None if changed is None else int(changed),
            outcome,
            detail,
        )
        with self._write() as conn:
            owner = conn.execute("SELECT namespace, service FROM decisions WHERE id = ?", (decision_id,)).fetchone()
            if owner is None:
                raise JournalError(f"cannot journal action {action!r}: there is no decision {decision_id}")
            cursor = conn.execute(
                "INSERT INTO actions (decision_id, action, params, started, ended, changed, outcome, detail,"
                " namespace, service) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, owner[0], owner[1]),
            )
            return int(cursor.lastrowid or 0)

    def finish_action(
        self,
        action_id: int,
        *,
        outcome: str,
        changed: bool | None = None,
        detail: str | None = None,
        ended: datetime | None = None,
    ) -> None:
        """Record how an action ended (``recovered``, ``not_recovered``, ``failed`` or ``skipped``)."""
        _check_outcome(outcome)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE actions SET outcome = ?, changed = COALESCE(?, changed), detail = COALESCE(?, detail),"
                " ended = ? WHERE id = ?",
                (outcome, None if changed is None else int(changed), detail, _stamp(ended), action_id),
            )
            if cursor.rowcount != 1:
                raise JournalError(f"cannot finish action {action_id}: there is no such action")

    # --- reading ---------------------------------------------------------------------------------------------

    def history(
        self, service: str, namespace: str, since: datetime, until: datetime | None = None
    ) -> list[dict[str, str]]:
        """Actions on a service started in ``[since, until]``, newest last, in the snapshot ``history`` format.

        Skipped actions changed nothing and are left out.
        """
        sql = (
            "SELECT action, started, outcome FROM actions WHERE namespace = ? AND service = ? AND started >= ?"
            " AND outcome != 'skipped'"
        )
        args: tuple[Any, ...] = (namespace, service, _stamp(since))
        if until is not None:
            sql += " AND started <= ?"
            args += (_stamp(until),)
        rows = self._read(sql + " ORDER BY started, id", args)
        return [{"action": r["action"], "at": _unstamp(r["started"]) or "", "outcome": r["outcome"]} for r in rows]

    def query(
        self,
        *,
        namespace: str | None = None,
        service: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        include_snapshot: bool = False,
    ) -> list[dict[str, Any]]:
        """Decisions matching every given filter, newest first, each with its ``actions``."""
        filters = [("namespace = ?", namespace), ("service = ?", service), ("action = ?", action)]
        filters += [("time >= ?", _stamp(since) if since else None), ("time <= ?", _stamp(until) if until else None)]
        where, args = _where(filters)
        rows = self._read(
            f"SELECT * FROM decisions WHERE {where} ORDER BY time DESC, id DESC LIMIT ?", (*args, max(0, int(limit)))
        )
        actions = self._actions_of([int(row["id"]) for row in rows])
        return [self._decision_row(row, actions.get(int(row["id"]), []), include_snapshot) for row in rows]

    def _actions_of(self, decision_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = {}
        if not decision_ids:
            return found
        marks = ", ".join("?" * len(decision_ids))
        for row in self._read(f"SELECT * FROM actions WHERE decision_id IN ({marks}) ORDER BY id", tuple(decision_ids)):
            found.setdefault(int(row["decision_id"]), []).append(
                {
                    "id": row["id"],
                    "action": row["action"],
                    "params": json.loads(row["params"]),
                    "started": _unstamp(row["started"]),
                    "ended": _unstamp(row["ended"]),
                    "changed": None if row["changed"] is None else bool(row["changed"]),
                    "outcome": row["outcome"],
                    "detail": row["detail"],
                }
            )
        return found

    @staticmethod
    def _decision_row(row: sqlite3.Row, actions: list[dict[str, Any]], include_snapshot: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": row["id"],
            "time": _unstamp(row["time"]),
            "namespace": row["namespace"],
            "service": row["service"],
            "fingerprint": row["fingerprint"],
            "incident_id": row["incident_id"],
            "action": row["action"],
            "proposed": row["proposed"],
            "rule": row["rule"],
            "decision": json.loads(row["decision"]),
            "actions": actions,
        }
        if include_snapshot:
            item["snapshot"] = json.loads(row["snapshot"])
        return item

    def incidents(
        self, *, namespace: str | None = None, service: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Incidents matching every given filter, newest first, with the number of decisions in each."""
        filters = [("i.namespace = ?", namespace), ("i.service = ?", service), ("i.status = ?", status)]
        where, args = _where(filters)
        rows = self._read(
            "SELECT i.*, COUNT(d.id) AS decisions FROM incidents i LEFT JOIN decisions d ON d.incident_id = i.id"
            f" WHERE {where} GROUP BY i.id ORDER BY i.opened DESC, i.id DESC LIMIT ?",
            (*args, max(0, int(limit))),
        )
        return [
            {
                "id": row["id"],
                "namespace": row["namespace"],
                "service": row["service"],
                "fingerprint": row["fingerprint"],
                "opened": _unstamp(row["opened"]),
                "closed": _unstamp(row["closed"]),
                "status": row["status"],
                "decisions": row["decisions"],
            }
            for row in rows
        ]

    # --- the warm loop's additions (by id: the rulebook hands over ids, never alert text) -----------------------

    def decision(self, decision_id: int) -> dict[str, Any] | None:
        """One decision by id, with its snapshot and its actions; None when there is no such decision."""
        rows = self._read("SELECT * FROM decisions WHERE id = ?", (int(decision_id),))
        if not rows:
            return None
        return self._decision_row(rows[0], self._actions_of([int(decision_id)]).get(int(decision_id), []), True)

    def action(self, action_id: int) -> dict[str, Any] | None:
        """One action by id (``decision_id``, ``outcome``, ...) with ``applied``: when its change was reported made
        (``mark_applied``), else None; None when there is no such action."""
        rows = self._read(
            "SELECT a.*, p.applied AS applied FROM actions a LEFT JOIN action_progress p ON p.action_id = a.id"
            " WHERE a.id = ?",
            (int(action_id),),
        )
        if not rows:
            return None
        row = rows[0]
        return {
            "id": row["id"],
            "decision_id": row["decision_id"],
            "namespace": row["namespace"],
            "service": row["service"],
            "action": row["action"],
            "params": json.loads(row["params"]),
            "started": _unstamp(row["started"]),
            "ended": _unstamp(row["ended"]),
            "changed": None if row["changed"] is None else bool(row["changed"]),
            "outcome": row["outcome"],
            "detail": row["detail"],
            "applied": _unstamp(row["applied"]),
        }

    def mark_applied(
        self, action_id: int, *, changed: bool | None = None, detail: str | None = None, at: datetime | None = None
    ) -> None:
        """Record that a started action's change is made (its outcome stays pending until it is verified)."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM actions WHERE id = ?", (int(action_id),)).fetchone() is None:
                raise JournalError(f"cannot mark action {action_id} applied: there is no such action")
            conn.execute(
                "INSERT OR REPLACE INTO action_progress (action_id, applied, changed, detail) VALUES (?, ?, ?, ?)",
                (int(action_id), _stamp(at), None if changed is None else int(changed), detail),
            )
            if changed is not None or detail is not None:
                conn.execute(
                    "UPDATE actions SET changed = COALESCE(?, changed), detail = COALESCE(?, detail) WHERE id = ?",
                    (None if changed is None else int(changed), detail, int(action_id)),
                )

    def link_alert(self, decision_id: int, alert: Mapping[str, Any], reason: str, at: datetime | None = None) -> int:
        """Journal an alert that was not checked on its own (it came while ``decision_id`` was being checked, acted
        on or verified) with that decision and its incident; return the link's id. The alert is kept verbatim."""
        text = _json(dict(alert), "alert")
        with self._write() as conn:
            owner = conn.execute("SELECT incident_id FROM decisions WHERE id = ?", (int(decision_id),)).fetchone()
            if owner is None:
                raise JournalError(f"cannot link an alert to decision {decision_id}: there is no such decision")
            cursor = conn.execute(
                "INSERT INTO alert_links (decision_id, incident_id, time, fingerprint, status, reason, alert)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(decision_id), owner[0], _stamp(at), alert.get("fingerprint"), alert.get("status"), reason, text),
            )
            return int(cursor.lastrowid or 0)

    def linked_alerts(self, decision_id: int) -> list[dict[str, Any]]:
        """The alerts linked to a decision (``link_alert``), oldest first."""
        rows = self._read("SELECT * FROM alert_links WHERE decision_id = ? ORDER BY id", (int(decision_id),))
        return [
            {
                "id": r["id"],
                "decision_id": r["decision_id"],
                "incident_id": r["incident_id"],
                "time": _unstamp(r["time"]),
                "fingerprint": r["fingerprint"],
                "status": r["status"],
                "reason": r["reason"],
                "alert": json.loads(r["alert"]),
            }
            for r in rows
        ]

    def unfinished_actions(self) -> list[dict[str, Any]]:
        """Every action still ``pending`` (started, not finished), oldest first, as :meth:`action` returns them."""
        rows = self._read("SELECT id FROM actions WHERE outcome = 'pending' ORDER BY id")
        return [a for a in (self.action(int(r["id"])) for r in rows) if a is not None]


def _where(filters: list[tuple[str, Any]]) -> tuple[str, tuple[Any, ...]]:
    """An SQL condition from (clause, value) pairs; a None value means "no filter" (clauses are constants)."""
    used = [(clause, value) for clause, value in filters if value is not None]
    return " AND ".join(clause for clause, _value in used) or "1 = 1", tuple(value for _clause, value in used)


def query_journal(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``journal_info``: the decisions matching the module's filters (an absent journal has none)."""
    path = params.get("journal") or default_journal_path()
    if not os.path.exists(path):
        return []
    since = parse_datetime(params["since"]) if params.get("since") else None
    until = parse_datetime(params["until"]) if params.get("until") else None
    with Journal(path) as journal:
        return journal.query(
            namespace=params.get("namespace"),
            service=params.get("service"),
            action=params.get("action"),
            since=since,
            until=until,
            limit=int(params.get("limit") or 100),
            include_snapshot=bool(params.get("include_snapshot")),
        )
