# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The decision journal: every decision, every action and its outcome, in SQLite or in PostgreSQL.

Where: the one ``journal`` option. A path is an SQLite file (:mod:`._journal.sqlite`; :func:`default_journal_path`
is ``$XDG_STATE_HOME/zerotouch-selfheal/journal.db``, ``~/.local/state/...`` when ``XDG_STATE_HOME`` is unset); a
``postgresql://`` URL is a PostgreSQL database (:mod:`._journal.postgres`, psycopg 3), for a loop that runs on more
than one machine. :class:`Journal` is the one interface; the backends differ only where their SQL does.

Every public write method is one transaction of the backend (a failure rolls everything back: nothing is ever
half-written), and concurrent writers race through the database's own guarantees (transactions, unique keys,
``INSERT ... ON CONFLICT``), never through a value read earlier. Values are serialised before the transaction
opens, so an unserialisable snapshot fails without touching the database.

Tables (the same in both): ``decisions`` (one per call of the engine, with the snapshot and decision as JSON),
``actions`` (what was run for a decision: started, ended, changed, outcome), ``incidents`` (decisions grouped by
alert fingerprint: an incident opens with the first decision on a firing alert and closes when a decision sees
that alert resolved; at most one is open per alert), ``gates`` (every answer of the change gate, allow or deny,
with the pipeline's identity and what it was judged on), ``alert_dedupe`` (alert notifications already accepted, see
:meth:`Journal.accept_alert`), and ``schema_version`` (the migrations applied). Times are fixed-width UTC text,
so text order is time order in both databases.

Schema upgrades (:data:`MIGRATIONS`) are applied when a journal is opened, under the backend's write lock; a
journal whose schema is newer than this code is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError, JournalUnavailable
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.sqlite import SqliteBackend
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime, parse_datetime

OUTCOMES = ("pending", "recovered", "not_recovered", "failed", "skipped")
BUSY_TIMEOUT_SECONDS = 30.0
DEDUPE_TTL = timedelta(hours=24)
URL_SCHEMES = ("postgresql://", "postgres://")

# Version -> statements, the same for both databases; {id} and {ref} are the dialect's id column and reference.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS incidents (
            id {id},
            namespace TEXT NOT NULL,
            service TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            opened TEXT NOT NULL,
            closed TEXT,
            status TEXT NOT NULL CHECK (status IN ('open', 'closed'))
        )""",
        "CREATE INDEX IF NOT EXISTS incidents_by_alert ON incidents (namespace, service, fingerprint, status)",
        """CREATE TABLE IF NOT EXISTS decisions (
            id {id},
            time TEXT NOT NULL,
            namespace TEXT NOT NULL,
            service TEXT NOT NULL,
            fingerprint TEXT,
            action TEXT NOT NULL,
            proposed TEXT,
            rule TEXT,
            incident_id {ref} REFERENCES incidents (id),
            snapshot TEXT NOT NULL,
            decision TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS decisions_by_service ON decisions (namespace, service, time)",
        """CREATE TABLE IF NOT EXISTS actions (
            id {id},
            decision_id {ref} NOT NULL REFERENCES decisions (id),
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
        "INSERT INTO meta (key, value) VALUES ('schema_version', '1')",
    ),
    2: (
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
        # At most one open incident per alert, whoever writes: what lets writers open one with an upsert.
        "CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open ON incidents (namespace, service, fingerprint)"
        " WHERE status = 'open'",
        """CREATE TABLE IF NOT EXISTS alert_dedupe (
            fingerprint TEXT NOT NULL,
            status TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            accepted TEXT NOT NULL,
            expires TEXT NOT NULL,
            PRIMARY KEY (fingerprint, status, starts_at)
        )""",
        "CREATE INDEX IF NOT EXISTS alert_dedupe_by_expiry ON alert_dedupe (expires)",
    ),
    # How effective each action was, recorded when its verification ends (the review reads it).
    3: ("ALTER TABLE actions ADD COLUMN effectiveness TEXT",),
    # Every answer of the change gate (docs/gate.md).
    4: (
        """CREATE TABLE IF NOT EXISTS gates (
            id {id},
            time TEXT NOT NULL,
            namespace TEXT NOT NULL,
            service TEXT NOT NULL,
            change TEXT NOT NULL,
            allowed INTEGER NOT NULL CHECK (allowed IN (0, 1)),
            rule TEXT NOT NULL,
            forced INTEGER NOT NULL CHECK (forced IN (0, 1)),
            requested_by TEXT,
            change_id TEXT,
            answer TEXT NOT NULL,
            snapshot TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS gates_by_service ON gates (namespace, service, time)",
    ),
    # The warm loop: when an action's change was reported made (so the loop verifies it, also after a restart),
    # and the alerts that came while a decision was checked, acted on or verified.
    5: (
        """CREATE TABLE IF NOT EXISTS action_progress (
            action_id {ref} PRIMARY KEY REFERENCES actions (id),
            applied TEXT NOT NULL,
            changed INTEGER CHECK (changed IN (0, 1)),
            detail TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS alert_links (
            id {id},
            decision_id {ref} NOT NULL REFERENCES decisions (id),
            incident_id {ref} REFERENCES incidents (id),
            time TEXT NOT NULL,
            fingerprint TEXT,
            status TEXT,
            reason TEXT NOT NULL,
            alert TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS alert_links_by_decision ON alert_links (decision_id)",
    ),
    # The trust ladder (docs/approvals.md): one row per proposal (an escalation proposing an action), whose state
    # moves once out of pending by a conditional UPDATE (single use is the database's guarantee), and every
    # attempt to answer one, accepted or refused (a forged, expired or reused link too).
    6: (
        """CREATE TABLE IF NOT EXISTS approvals (
            decision_id {ref} PRIMARY KEY REFERENCES decisions (id),
            namespace TEXT NOT NULL,
            service TEXT NOT NULL,
            action TEXT NOT NULL,
            params TEXT NOT NULL,
            created TEXT NOT NULL,
            expires TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired', 'stale', 'acted')),
            approver TEXT,
            how TEXT CHECK (how IN ('link', 'command')),
            answered TEXT,
            acted_decision_id {ref} REFERENCES decisions (id),
            detail TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state, namespace, service)",
        """CREATE TABLE IF NOT EXISTS approval_attempts (
            id {id},
            decision_id INTEGER,
            time TEXT NOT NULL,
            approver TEXT,
            how TEXT NOT NULL,
            answer TEXT NOT NULL,
            result TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS approval_attempts_by_decision ON approval_attempts (decision_id)",
    ),
    # The warm loop: the process (the playbook) that runs a claimed action, so that a loop that starts again stops
    # what the loop before it started; on the action's row, so that recording it and settling the action as never
    # started are two updates of one row, and only one of them can win.
    7: ("ALTER TABLE actions ADD COLUMN run TEXT",),
    # Receivers that share the journal (an HA pair behind Alertmanager): each accepted alert keeps who accepted it
    # and the alert itself until its check is journaled, so a peer can take over what a dead receiver accepted and
    # never checked; every loop's liveness is a lease it renews; a dead loop's unfinished action is taken over by
    # one peer only (the upsert on its row decides).
    8: (
        "ALTER TABLE alert_dedupe ADD COLUMN owner TEXT",
        "ALTER TABLE alert_dedupe ADD COLUMN alert TEXT",
        "ALTER TABLE alert_dedupe ADD COLUMN handled TEXT",
        "ALTER TABLE alert_dedupe ADD COLUMN taken TEXT",
        "CREATE INDEX IF NOT EXISTS alert_dedupe_unhandled ON alert_dedupe (owner) WHERE handled IS NULL",
        "CREATE INDEX IF NOT EXISTS decisions_by_fingerprint ON decisions (fingerprint, time)",
        "CREATE INDEX IF NOT EXISTS alert_links_by_fingerprint ON alert_links (fingerprint, time)",
        """CREATE TABLE IF NOT EXISTS loop_instances (
            instance TEXT PRIMARY KEY,
            started TEXT NOT NULL,
            lease_until TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS action_takeovers (
            action_id {ref} PRIMARY KEY REFERENCES actions (id),
            owner TEXT NOT NULL,
            taken TEXT NOT NULL
        )""",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


def is_url(target: str | os.PathLike[str] | None) -> bool:
    """Does the journal option name a PostgreSQL database (rather than an SQLite file)?"""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def journal_exists(target: str | os.PathLike[str] | None) -> bool:
    """Is there a journal to read? A database server is taken to have one; a file must exist."""
    if is_url(target):
        return True
    return os.path.exists(target if target is not None else default_journal_path())


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
    """A stored time as the collection writes times (format_datetime: a zero fraction left out)."""
    if value is None:
        return None
    if len(value) == 27 and value[10] == "T" and value[19] == "." and value[26] == "Z":
        # _stamp's fixed width, read without parsing: a history of a thousand rows is read before every decision,
        # and strptime alone cost ~17 us a row, half of a warm check's CPU budget (docs/benchmarks.md, section 4).
        return value[:19] + "Z" if value[20:26] == "000000" else value
    text: str = format_datetime(datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC))
    return text


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"cannot journal the {what}: {exc}") from exc


def _parse_time(value: str, what: str) -> datetime:
    try:
        moment: datetime = parse_datetime(value)
    except ValueError as exc:
        raise JournalError(f"{what} is not a time with a UTC offset ({exc}): {value!r}") from exc
    return moment


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise JournalError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")


class Journal:
    """The journal, in an SQLite file or a PostgreSQL database (``with Journal(target) as j:``).

    ``target`` is a path (SQLite; default :func:`default_journal_path`) or a ``postgresql://`` URL without a
    password. An SQLite journal holds one connection: use one instance per process or thread. A PostgreSQL one
    holds one connection too, unless ``pooled``: then each call borrows a connection from the process's pool for
    that DSN, and one instance may serve many threads (what a long-lived process wants).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | None = None,
        timeout: float = BUSY_TIMEOUT_SECONDS,
        *,
        pooled: bool = False,
    ) -> None:
        backend: Any
        if is_url(target):
            from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.postgres import PostgresBackend

            backend = PostgresBackend(str(target), timeout, pooled=pooled)
            self.path: Path | None = None
        else:
            self.path = Path(os.path.expanduser(target)) if target is not None else default_journal_path()
            backend = SqliteBackend(self.path, timeout)
        self._backend = backend
        self.where: str = backend.where
        self.dialect: str = backend.dialect
        try:
            self._migrate()
        except BaseException:
            backend.close()
            raise

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._backend.close()

    # --- plumbing --------------------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version of the journal as it is now (0: nothing created yet)."""
        with self._write() as tx:
            return self._version(tx)

    def ping(self) -> None:
        """Raise JournalError (JournalUnavailable when the server is not there) unless the journal answers."""
        self._read("SELECT 1 AS ok")

    def _version(self, tx: Any) -> int:
        found = 0
        if self._backend.table_exists(tx, "schema_version"):
            found = int(tx.rows("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])
        if self._backend.table_exists(tx, "meta"):
            # Version 1 kept it here, and older collections still look here: it is kept up to date.
            row = tx.rows("SELECT value FROM meta WHERE key = 'schema_version'")
            found = max(found, int(row[0][0]) if row else 0)
        return found

    def _migrate(self, upto: int = SCHEMA_VERSION) -> None:
        """Bring the schema to version ``upto`` (the current one unless a test wants an older journal)."""
        with self._write() as tx:
            self._backend.lock_schema(tx)
            current = self._version(tx)
            if current > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.where} has schema version {current}, newer than this collection's "
                    f"{SCHEMA_VERSION}: upgrade the collection"
                )
            for version in sorted(v for v in MIGRATIONS if current < v <= upto):  # numbers taken by other work may wait
                try:
                    for statement in MIGRATIONS[version]:
                        tx.execute(statement.format(**self._backend.ddl))
                except JournalError:
                    raise
                except Exception as exc:
                    if self._backend.unavailable(exc):  # the server went away: the upgrade is rolled back whole
                        raise JournalUnavailable(
                            f"cannot upgrade the journal {self.where} to schema version {version}: "
                            f"{str(exc).strip()}; nothing of the upgrade was applied"
                        ) from exc
                    raise JournalError(
                        f"cannot upgrade the journal {self.where} to schema version {version}: {exc}"
                    ) from exc
                if version >= 2:
                    tx.execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (version, _stamp(None)))
                tx.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One write transaction of the backend: all of it is committed, or none of it."""
        with self._backend.transaction() as tx:
            yield tx

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._backend.read(sql, args)
        return rows

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
        approval_ttl: timedelta | None = None,
    ) -> int:
        """Journal one decision (``snapshot_to_dict(s)``, ``decision.to_dict()``); return its id.

        With an alert ``fingerprint``, the decision joins the open incident of that alert (or opens one); a
        ``resolved`` ``alert_status`` closes it. An escalation proposing an action opens its proposal (pending,
        approvable for ``approval_ttl``) in the same transaction.
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
        proposal = _proposal_of(decision)
        with self._write() as tx:
            incident = self._incident(tx, row[0], namespace, service, fingerprint, alert_status)
            decision_id = int(
                tx.insert(
                    "INSERT INTO decisions (time, namespace, service, fingerprint, action, proposed, rule, snapshot,"
                    " decision, incident_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row, incident),
                )
                or 0
            )
            if proposal is not None and approval_ttl is not None:
                created = at or datetime.now(UTC)
                self._open_proposal(tx, decision_id, namespace, service, proposal, created, created + approval_ttl)
            return decision_id

    def _incident(
        self, tx: Any, stamp: str, namespace: str, service: str, fingerprint: str | None, status: str | None
    ) -> int | None:
        if not fingerprint:
            return None
        if status == "resolved":
            # A resolution closes the open incident of its alert; one for an alert never seen firing opens nothing.
            closed: int | None = self._backend.close_incident(tx, stamp, namespace, service, fingerprint)
            return closed
        opened: int = self._backend.open_incident(tx, stamp, namespace, service, fingerprint)
        return opened

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
        with self._write() as tx:
            # One statement: the action takes its decision's service, or is not written when there is no decision.
            action_id = tx.insert(
                "INSERT INTO actions (decision_id, action, params, started, ended, changed, outcome, detail,"
                " namespace, service) SELECT ?, ?, ?, ?, ?, ?, ?, ?, namespace, service FROM decisions WHERE id = ?",
                (*values, decision_id),
            )
            if action_id is None:
                raise JournalError(f"cannot journal action {action!r}: there is no decision {decision_id}")
            return action_id

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
        with self._write() as tx:
            updated = tx.execute(
                "UPDATE actions SET outcome = ?, changed = COALESCE(?, changed), detail = COALESCE(?, detail),"
                " ended = ? WHERE id = ?",
                (outcome, None if changed is None else int(changed), detail, _stamp(ended), action_id),
            )
            if updated != 1:
                raise JournalError(f"cannot finish action {action_id}: there is no such action")

    def accept_alert(
        self,
        fingerprint: str,
        status: str,
        starts_at: str | datetime,
        *,
        ttl: timedelta = DEDUPE_TTL,
        now: datetime | None = None,
        owner: str | None = None,
        alert: Mapping[str, Any] | None = None,
    ) -> bool:
        """Accept one alert notification: True exactly once per ``(fingerprint, status, starts_at)`` within ``ttl``,
        whichever process or machine asks first (the journal's unique key decides), False for every repeat.

        Alertmanager repeats a notification (resends, several replicas, a webhook retried): the first to accept it
        handles it. Once ``ttl`` has passed the key may be accepted again; :meth:`expire_alerts` sweeps old keys.

        With an ``owner`` (a loop instance, see :meth:`renew_instance`) and the ``alert``, the acceptance is kept
        open until the owner says it is handled (:meth:`alerts_handled`): if the owner dies before that, the alert
        may be accepted again - here, by the peer whose copy comes later, or by :meth:`take_over_alerts` - unless a
        decision or a link of that fingerprint was journaled since it was accepted (then its check was made).
        """
        if not fingerprint or not status:
            raise JournalError("an alert needs a fingerprint and a status to be accepted")
        moment = now or datetime.now(UTC)
        start = _stamp(starts_at if isinstance(starts_at, datetime) else _parse_time(starts_at, "starts_at"))
        key = (fingerprint, status, start)
        text = _json(dict(alert), "alert") if alert is not None and owner is not None else None
        # Without an owner nothing can take it over: it is handled as soon as it is accepted.
        handled = _stamp(moment) if text is None else None
        with self._write() as tx:
            tx.execute(
                "DELETE FROM alert_dedupe WHERE fingerprint = ? AND status = ? AND starts_at = ? AND expires <= ?",
                (*key, _stamp(moment)),
            )
            # One statement: a new key is inserted; an existing one moves to this owner only when its owner is dead
            # and nothing of its check was journaled (the WHERE of the upsert is evaluated on the row as it is).
            inserted = tx.execute(
                "INSERT INTO alert_dedupe (fingerprint, status, starts_at, accepted, expires, owner, alert, handled)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (fingerprint, status, starts_at) DO UPDATE SET owner = excluded.owner,"
                " accepted = excluded.accepted, alert = COALESCE(excluded.alert, alert_dedupe.alert),"
                f" handled = excluded.handled WHERE excluded.owner IS NOT NULL AND {_ORPHANED}",
                (*key, _stamp(moment), _stamp(moment + ttl), owner, text, handled, _stamp(moment)),
            )
        return inserted == 1

    def alerts_handled(
        self, owner: str, keys: list[tuple[str, str, str | datetime]], at: datetime | None = None
    ) -> int:
        """Mark alerts this owner accepted as handled (their check is journaled, or they were linked or closed):
        nobody takes them over any more. Returns how many were marked."""
        moment = _stamp(at)
        rows = [
            (moment, owner, fp, status, _stamp(s if isinstance(s, datetime) else _parse_time(s, "starts_at")))
            for fp, status, s in keys
        ]
        marked = 0
        with self._write() as tx:
            for row in rows:
                marked += tx.execute(
                    "UPDATE alert_dedupe SET handled = ? WHERE owner = ? AND fingerprint = ? AND status = ?"
                    " AND starts_at = ? AND handled IS NULL",
                    row,
                )
        return marked

    def renew_instance(self, instance: str, lease: timedelta, now: datetime | None = None) -> None:
        """Say that loop ``instance`` is alive for ``lease`` more: what it accepted and claimed stays its own."""
        moment = now or datetime.now(UTC)
        with self._write() as tx:
            tx.execute(
                "INSERT INTO loop_instances (instance, started, lease_until) VALUES (?, ?, ?)"
                " ON CONFLICT (instance) DO UPDATE SET lease_until = excluded.lease_until",
                (instance, _stamp(moment), _stamp(moment + lease)),
            )

    def retire_instance(self, instance: str) -> None:
        """A loop that stops cleanly: its lease ends now, so a peer takes over at once what it leaves."""
        with self._write() as tx:
            tx.execute("DELETE FROM loop_instances WHERE instance = ?", (instance,))
            tx.execute("DELETE FROM loop_instances WHERE lease_until <= ?", (_stamp(None),))

    def take_over_alerts(self, owner: str, now: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Take over the alerts that dead loops accepted and never checked; return them (oldest first), now
        ``owner``'s. Those whose check was journaled after all are marked handled instead. Two peers taking over at
        once take each alert once: the conditional UPDATE moves a row to one of them, and the other's UPDATE,
        evaluated again on the row as it is then, finds its owner alive."""
        moment = _stamp(now)
        token = f"{owner}@{moment}#{os.urandom(4).hex()}"
        with self._write() as tx:
            tx.execute(
                f"UPDATE alert_dedupe SET handled = ? WHERE handled IS NULL AND {_DEAD_OWNER} AND NOT ({_UNCHECKED})",
                (moment, moment),
            )
            tx.execute(
                "UPDATE alert_dedupe SET owner = ?, accepted = ?, taken = ? WHERE handled IS NULL"
                f" AND owner IS NOT NULL AND alert IS NOT NULL AND {_ORPHANED}",
                (owner, moment, token, moment),
            )
            rows = tx.rows(
                "SELECT alert FROM alert_dedupe WHERE taken = ? AND owner = ? ORDER BY starts_at LIMIT ?",
                (token, owner, max(0, int(limit))),
            )
        return [json.loads(row[0]) for row in rows]

    def hold_actions(self, owner: str, decision_ids: list[int], now: datetime | None = None) -> int:
        """Say that loop ``owner`` follows the unfinished actions of these decisions (it claimed them, or took them
        over): no peer takes them over while ``owner`` lives, whatever their claim's lease shows. One statement;
        an action a live peer took over stays that peer's. Returns how many are held."""
        if not decision_ids:
            return 0
        moment = _stamp(now)
        marks = ", ".join("?" * len(decision_ids))
        with self._write() as tx:
            return tx.execute(
                "INSERT INTO action_takeovers (action_id, owner, taken) SELECT id, ?, ? FROM actions"
                f" WHERE decision_id IN ({marks}) AND outcome = 'pending'"
                " ON CONFLICT (action_id) DO UPDATE SET owner = excluded.owner, taken = excluded.taken"
                " WHERE action_takeovers.owner = excluded.owner"
                " OR action_takeovers.owner NOT IN (SELECT instance FROM loop_instances WHERE lease_until > ?)",
                (owner, moment, *(int(d) for d in decision_ids), moment),
            )

    def claimed_decision(self, namespace: str, service: str) -> int | None:
        """The decision whose action on the service is claimed and not finished (the newest), None when none is:
        what a receiver links an alert to when another receiver on the journal acts on its service."""
        rows = self._read(
            "SELECT decision_id FROM actions WHERE namespace = ? AND service = ? AND outcome = 'pending'"
            " AND action != 'escalate' ORDER BY id DESC LIMIT 1",
            (namespace, service),
        )
        return int(rows[0]["decision_id"]) if rows else None

    def take_over_action(self, action_id: int, owner: str, now: datetime | None = None) -> bool:
        """Become the one loop that settles a dead loop's unfinished action; False when a live loop took it over
        already (a restarted loop and a peer both see it: one of them settles it); True again for the loop that has
        it (it may have had to wait)."""
        moment = _stamp(now)
        with self._write() as tx:
            taken = tx.execute(
                "INSERT INTO action_takeovers (action_id, owner, taken) VALUES (?, ?, ?)"
                " ON CONFLICT (action_id) DO UPDATE SET owner = excluded.owner, taken = excluded.taken"
                " WHERE action_takeovers.owner = excluded.owner"
                " OR action_takeovers.owner NOT IN (SELECT instance FROM loop_instances WHERE lease_until > ?)",
                (int(action_id), owner, moment, moment),
            )
        return taken == 1

    def expire_alerts(self, now: datetime | None = None) -> int:
        """Forget the accepted alerts whose time has passed; return how many."""
        with self._write() as tx:
            return tx.execute("DELETE FROM alert_dedupe WHERE expires <= ?", (_stamp(now),))

    def record_effectiveness(self, action_id: int, effectiveness: Mapping[str, Any]) -> None:
        """Keep how effective an action was once its verification ended (see ``_loop.verify.effectiveness``)."""
        record = _json(dict(effectiveness), "effectiveness")
        with self._write() as tx:
            updated = tx.execute("UPDATE actions SET effectiveness = ? WHERE id = ?", (record, action_id))
        if updated != 1:
            raise JournalError(f"cannot record the effectiveness of action {action_id}: there is no such action")

    def record_gate(
        self,
        *,
        namespace: str,
        service: str,
        answer: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        requested_by: str | None = None,
        change_id: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Journal one answer of the change gate (``GateAnswer.to_dict()``) and the gate snapshot; return its id.

        ``requested_by`` and ``change_id`` are the pipeline's words, stored as given.
        """
        row = (
            _stamp(at),
            namespace,
            service,
            str(answer.get("change", "")),
            int(bool(answer.get("allowed"))),
            str(answer.get("rule", "")),
            int(bool(answer.get("forced"))),
            requested_by,
            change_id,
            _json(dict(answer), "gate answer"),
            _json(dict(snapshot), "snapshot"),
        )
        with self._write() as tx:
            gate_id = tx.insert(
                "INSERT INTO gates (time, namespace, service, change, allowed, rule, forced, requested_by, change_id,"
                " answer, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        if gate_id is None:
            raise JournalError(f"cannot journal the gate answer for {namespace}/{service}")
        return gate_id

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

    def pending_actions(self, since: datetime) -> int:
        """How many actions, on any service, started since ``since`` and are not verified yet (blast radius)."""
        rows = self._read(
            "SELECT COUNT(*) AS n FROM actions WHERE outcome = 'pending' AND started >= ?", (_stamp(since),)
        )
        return int(rows[0]["n"])

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
            params = json.loads(row["params"])
            effectiveness = json.loads(row["effectiveness"]) if row.get("effectiveness") else None
            found.setdefault(int(row["decision_id"]), []).append(
                {
                    "id": row["id"],
                    "action": row["action"],
                    "params": params,
                    "started": _unstamp(row["started"]),
                    "ended": _unstamp(row["ended"]),
                    "changed": None if row["changed"] is None else bool(row["changed"]),
                    "outcome": row["outcome"],
                    "detail": row["detail"],
                    "effectiveness": effectiveness,
                }
            )
        return found

    @staticmethod
    def _decision_row(row: Mapping[str, Any], actions: list[dict[str, Any]], include_snapshot: bool) -> dict[str, Any]:
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

    def gate_answers(
        self,
        *,
        namespace: str | None = None,
        service: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        include_snapshot: bool = False,
    ) -> list[dict[str, Any]]:
        """Answers of the change gate matching every given filter, newest first."""
        filters = [("namespace = ?", namespace), ("service = ?", service)]
        filters.append(("time >= ?", _stamp(since) if since else None))
        where, args = _where(filters)
        rows = self._read(
            f"SELECT * FROM gates WHERE {where} ORDER BY time DESC, id DESC LIMIT ?", (*args, max(0, int(limit)))
        )
        answers = []
        for row in rows:
            item: dict[str, Any] = {
                "id": row["id"],
                "time": _unstamp(row["time"]),
                "namespace": row["namespace"],
                "service": row["service"],
                "change": row["change"],
                "allowed": bool(row["allowed"]),
                "rule": row["rule"],
                "forced": bool(row["forced"]),
                "requested_by": row["requested_by"],
                "change_id": row["change_id"],
                "answer": json.loads(row["answer"]),
            }
            if include_snapshot:
                item["snapshot"] = json.loads(row["snapshot"])
            answers.append(item)
        return answers

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
            "run": json.loads(row["run"]) if row.get("run") else None,
        }

    def record_run(self, action_id: int, run: Mapping[str, Any]) -> bool:
        """Record which process runs a started action (its playbook); False when the action is not pending any
        more (a loop that started again settled it), and then that process must not act."""
        with self._write() as tx:
            found = tx.execute(
                "UPDATE actions SET run = ? WHERE id = ? AND outcome = 'pending'",
                (_json(dict(run), "run"), int(action_id)),
            )
        return found == 1

    def settle_unstarted(self, action_id: int, detail: str, at: datetime | None = None) -> bool:
        """Journal a pending action ``skipped`` if no process ever took it up (:meth:`record_run`) and its change
        was never reported; False when one did, or it is not pending any more."""
        with self._write() as tx:
            found = tx.execute(
                "UPDATE actions SET outcome = 'skipped', changed = 0, detail = ?, ended = ?"
                " WHERE id = ? AND outcome = 'pending' AND run IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM action_progress p WHERE p.action_id = actions.id)",
                (detail, _stamp(at), int(action_id)),
            )
        return found == 1

    def mark_applied(
        self, action_id: int, *, changed: bool | None = None, detail: str | None = None, at: datetime | None = None
    ) -> None:
        """Record that a started action's change is made (its outcome stays pending until it is verified)."""
        flag = None if changed is None else int(changed)
        with self._write() as tx:
            # The UPDATE both checks that the action exists and keeps what the playbook reported.
            found = tx.execute(
                "UPDATE actions SET changed = COALESCE(?, changed), detail = COALESCE(?, detail) WHERE id = ?",
                (flag, detail, int(action_id)),
            )
            if found != 1:
                raise JournalError(f"cannot mark action {action_id} applied: there is no such action")
            tx.execute(
                "INSERT INTO action_progress (action_id, applied, changed, detail) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (action_id) DO UPDATE SET applied = excluded.applied, changed = excluded.changed,"
                " detail = excluded.detail",
                (int(action_id), _stamp(at), flag, detail),
            )

    def link_alert(self, decision_id: int, alert: Mapping[str, Any], reason: str, at: datetime | None = None) -> int:
        """Journal an alert that was not checked on its own (it came while ``decision_id`` was being checked, acted
        on or verified) with that decision and its incident; return the link's id. The alert is kept verbatim."""
        return self.link_alerts([(decision_id, alert, reason)], at)[0]

    def link_alerts(self, links: Sequence[tuple[int, Mapping[str, Any], str]], at: datetime | None = None) -> list[int]:
        """:meth:`link_alert` for many alerts in one transaction (a storm's alerts cost one commit per burst, not
        one each): all are written, or none when one names no decision."""
        ids = []
        with self._write() as tx:
            for decision_id, alert, reason in links:
                text = _json(dict(alert), "alert")
                values = (_stamp(at), alert.get("fingerprint"), alert.get("status"), reason, text, int(decision_id))
                # One statement: the link takes its decision's incident, or is not written when there is no decision.
                link_id = tx.insert(
                    "INSERT INTO alert_links (time, fingerprint, status, reason, alert, decision_id, incident_id)"
                    " SELECT ?, ?, ?, ?, ?, id, incident_id FROM decisions WHERE id = ?",
                    values,
                )
                if link_id is None:
                    raise JournalError(f"cannot link an alert to decision {decision_id}: there is no such decision")
                ids.append(link_id)
        return ids

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

    # --- the trust ladder: proposals and their answers (docs/approvals.md) -------------------------------------

    @staticmethod
    def _open_proposal(
        tx: Any,
        decision_id: int,
        namespace: str,
        service: str,
        proposal: tuple[str, Mapping[str, Any]],
        created: datetime,
        expires: datetime,
    ) -> None:
        tx.execute(
            "INSERT INTO approvals (decision_id, namespace, service, action, params, created, expires, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending') ON CONFLICT (decision_id) DO NOTHING",
            (
                int(decision_id),
                namespace,
                service,
                proposal[0],
                _json(dict(proposal[1]), "proposed parameters"),
                _stamp(created),
                _stamp(expires),
            ),
        )

    def answer_proposal(
        self,
        decision_id: int,
        *,
        approve: bool,
        approver: str,
        how: str,
        expires: datetime,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Answer the proposal of an escalation, once: approve or deny it, in one transaction.

        The proposal row is opened if the decision did not open one (``expires`` is then its expiry). Only a
        pending, unexpired proposal moves, by ``UPDATE ... WHERE state = 'pending'``: of two answers racing, the
        database lets one through. Returns the proposal as :meth:`proposal` does, with ``result``: ``approved``,
        ``denied``, ``expired`` (the proposal expired: it is marked so), or ``answered`` (it was answered already).
        Every answer is journaled as an attempt, refused or not.
        """
        if how not in APPROVAL_HOWS:
            raise JournalError(f"how must be one of {', '.join(APPROVAL_HOWS)}, got {how!r}")
        moment = _stamp(now)
        created = now or datetime.now(UTC)
        answer = "approve" if approve else "deny"
        with self._write() as tx:
            found = tx.rows("SELECT namespace, service, decision FROM decisions WHERE id = ?", (int(decision_id),))
            if not found:
                raise JournalError(f"there is no decision {decision_id} in the journal")
            proposal = _proposal_of(json.loads(found[0][2]))
            if proposal is None:
                raise JournalError(f"decision {decision_id} proposes no action")
            self._open_proposal(tx, decision_id, found[0][0], found[0][1], proposal, created, expires)
            tx.execute(
                "UPDATE approvals SET state = 'expired', answered = ?, detail = ? WHERE decision_id = ?"
                " AND state = 'pending' AND expires <= ?",
                (moment, "expired before it was answered", int(decision_id), moment),
            )
            moved = tx.execute(
                "UPDATE approvals SET state = ?, approver = ?, how = ?, answered = ? WHERE decision_id = ?"
                " AND state = 'pending' AND expires > ?",
                ("approved" if approve else "denied", approver, how, moment, int(decision_id), moment),
            )
            state = tx.rows("SELECT state FROM approvals WHERE decision_id = ?", (int(decision_id),))[0][0]
            if moved == 1:
                result, reason = state, f"{state} by {approver} ({how})"
            elif state == "expired":
                result, reason = "expired", "the proposal expired"
            else:
                result, reason = "answered", f"the proposal was answered already ({state})"
            self._attempt(tx, decision_id, approver, how, answer, result, reason, moment)
        row = self.proposal(decision_id)
        if row is None:  # written above, in the transaction just committed: only a concurrent delete gets here
            raise JournalError(f"decision {decision_id}: its proposal vanished while it was answered")
        return {**row, "result": result, "reason": reason}

    def settle_proposal(
        self, decision_id: int, state: str, *, detail: str, acted_decision_id: int | None = None
    ) -> None:
        """How an approved proposal ended: ``acted`` (``acted_decision_id`` claimed its action) or ``stale``."""
        if state not in ("acted", "stale"):
            raise JournalError(f"an approved proposal ends acted or stale, not {state!r}")
        with self._write() as tx:
            moved = tx.execute(
                "UPDATE approvals SET state = ?, detail = ?, acted_decision_id = ? WHERE decision_id = ?"
                " AND state = 'approved'",
                (state, detail, acted_decision_id, int(decision_id)),
            )
        if moved != 1:
            raise JournalError(f"cannot settle the proposal of decision {decision_id}: it is not approved")

    def settle_abandoned_approvals(self, answered_before: datetime, detail: str) -> list[int]:
        """Settle as ``stale`` every proposal approved before ``answered_before`` and never settled: the process
        that answered it stopped between the approval and its re-check, so nothing acted on it. Returns their
        decision ids. One ``UPDATE`` decides, so two loops sweeping at once settle each proposal once."""
        with self._write() as tx:
            found = tx.rows(
                "SELECT decision_id FROM approvals WHERE state = 'approved' AND answered < ?",
                (_stamp(answered_before),),
            )
            settled = []
            for (decision_id,) in found:
                moved = tx.execute(
                    "UPDATE approvals SET state = 'stale', detail = ? WHERE decision_id = ? AND state = 'approved'",
                    (detail, int(decision_id)),
                )
                if moved == 1:
                    settled.append(int(decision_id))
        return settled

    def record_approval_attempt(
        self, decision_id: int | None, *, approver: str | None, how: str, answer: str, result: str, reason: str
    ) -> None:
        """Journal an answer refused before it reached a proposal (a forged link, an unknown decision)."""
        with self._write() as tx:
            self._attempt(tx, decision_id, approver, how, answer, result, reason, _stamp(None))

    @staticmethod
    def _attempt(
        tx: Any,
        decision_id: int | None,
        approver: str | None,
        how: str,
        answer: str,
        result: str,
        reason: str,
        moment: str,
    ) -> None:
        tx.execute(
            "INSERT INTO approval_attempts (decision_id, time, approver, how, answer, result, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (decision_id, moment, approver, how, answer, result, reason),
        )

    def proposal(self, decision_id: int) -> dict[str, Any] | None:
        """The proposal of a decision (state, approver, how, when, what it acted as), None when it has none."""
        rows = self._read("SELECT * FROM approvals WHERE decision_id = ?", (int(decision_id),))
        return _proposal_row(rows[0]) if rows else None

    def proposals(
        self,
        *,
        state: str | None = None,
        namespace: str | None = None,
        service: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Proposals matching every given filter, newest first."""
        filters = [("state = ?", state), ("namespace = ?", namespace), ("service = ?", service)]
        filters.append(("created >= ?", _stamp(since) if since else None))
        where, args = _where(filters)
        rows = self._read(
            f"SELECT * FROM approvals WHERE {where} ORDER BY created DESC, decision_id DESC LIMIT ?",
            (*args, max(0, int(limit))),
        )
        return [_proposal_row(r) for r in rows]

    def approval_attempts(self, decision_id: int | None = None) -> list[dict[str, Any]]:
        """Every answer given (accepted or refused), oldest first; of one decision when given."""
        where, args = _where([("decision_id = ?", None if decision_id is None else int(decision_id))])
        rows = self._read(f"SELECT * FROM approval_attempts WHERE {where} ORDER BY id", args)
        return [
            {
                "id": r["id"],
                "decision_id": r["decision_id"],
                "time": _unstamp(r["time"]),
                "approver": r["approver"],
                "how": r["how"],
                "answer": r["answer"],
                "result": r["result"],
                "reason": r["reason"],
            }
            for r in rows
        ]

    def unfinished_actions(self) -> list[dict[str, Any]]:
        """Every action still ``pending`` (started, not finished), oldest first, as :meth:`action` returns them."""
        rows = self._read("SELECT id FROM actions WHERE outcome = 'pending' ORDER BY id")
        return [a for a in (self.action(int(r["id"])) for r in rows) if a is not None]


APPROVAL_HOWS = ("link", "command")

# SQL conditions on an alert_dedupe row (one ? each: now): its owner's lease has lapsed (or it has none) ...
_DEAD_OWNER = "alert_dedupe.owner NOT IN (SELECT instance FROM loop_instances WHERE lease_until > ?)"
# ... and its check was not journaled since it was accepted: no link of its fingerprint, and no decision of it that
# is complete - one not to act, a failed check (escalated as it was journaled), or one whose claim is journaled
# (an acting decision journaled by a loop that died before it claimed the target is no check: nothing acts on it).
_UNCHECKED = (
    "NOT EXISTS (SELECT 1 FROM decisions d WHERE d.fingerprint = alert_dedupe.fingerprint"
    " AND d.time >= alert_dedupe.accepted AND (d.action = 'none' OR d.rule = 'check-failed'"
    " OR EXISTS (SELECT 1 FROM actions a WHERE a.decision_id = d.id)))"
    " AND NOT EXISTS (SELECT 1 FROM alert_links l WHERE l.fingerprint = alert_dedupe.fingerprint"
    " AND l.time >= alert_dedupe.accepted)"
)
# An accepted alert a peer may take over: not handled, its owner dead, its check never journaled.
_ORPHANED = f"alert_dedupe.handled IS NULL AND {_DEAD_OWNER} AND {_UNCHECKED}"


def _proposal_of(decision: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """The action an escalation asks a human to approve, with its parameters (None: nothing to approve)."""
    if decision.get("action") != "escalate" or not decision.get("proposed"):
        return None
    return str(decision["proposed"]), decision.get("proposed_params") or {}


def _proposal_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "decision_id": row["decision_id"],
        "namespace": row["namespace"],
        "service": row["service"],
        "action": row["action"],
        "params": json.loads(row["params"]),
        "created": _unstamp(row["created"]),
        "expires": _unstamp(row["expires"]),
        "state": row["state"],
        "approver": row["approver"],
        "how": row["how"],
        "answered": _unstamp(row["answered"]),
        "acted_decision_id": row["acted_decision_id"],
        "detail": row["detail"],
    }


def _where(filters: list[tuple[str, Any]]) -> tuple[str, tuple[Any, ...]]:
    """An SQL condition from (clause, value) pairs; a None value means "no filter" (clauses are constants)."""
    used = [(clause, value) for clause, value in filters if value is not None]
    return " AND ".join(clause for clause, _value in used) or "1 = 1", tuple(value for _clause, value in used)


def query_journal(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``journal_info``: the decisions matching the module's filters (an absent journal has none)."""
    target = params.get("journal") or None
    if not journal_exists(target):
        return []
    since = parse_datetime(params["since"]) if params.get("since") else None
    until = parse_datetime(params["until"]) if params.get("until") else None
    with Journal(target) as journal:
        return journal.query(
            namespace=params.get("namespace"),
            service=params.get("service"),
            action=params.get("action"),
            since=since,
            until=until,
            limit=int(params.get("limit") or 100),
            include_snapshot=bool(params.get("include_snapshot")),
        )
