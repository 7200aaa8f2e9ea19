"""Journal throughput and history latency, SQLite and PostgreSQL side by side: prints figures, asserts nothing.

    .venv/bin/python bench/bench_journal.py [--ops N] [--history-records N] [--reads N]

One writer on one open journal (a long-lived process), each operation its own committed transaction:
record a decision, claim (journal that its action starts, outcome pending), record the outcome, and accept an
alert notification (the deduplication key). Then the read the intent check does before every decision: 24 h of
history for a service that has ``--history-records`` past actions spread over the last 7 days (p50/p99 over
``--reads`` reads). PostgreSQL is a local server started by the sandbox's launcher (fsync on, as shipped), on
loopback TCP; SQLite is a file in WAL mode with synchronous=FULL, on the same disk.

Last, the journal's share of a warm-path ``none`` check (what ``_loop/check.py`` asks of the journal when the
check concludes nothing: the service's 24 h of history, the actions pending on the platform, and the decision
recorded with its alert's incident), over the same 10,000 records: CPU of the checking thread (``thread_time``,
what the 50 ms target of ``bench_loop.py none`` counts) and wall time, p50/p99 over ``--reads`` checks.
``bench_loop.py none`` runs the whole check on an SQLite journal; adding the difference between the two CPU
figures here to its CPU gives the check on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.check import HISTORY_HORIZON  # noqa: E402

from sandbox import postgres  # noqa: E402

DECISION = {"action": "restart", "params": {"pods": ["checkout-1"]}, "proposed": None, "rule": "crashloop"}
SNAPSHOT = {"id": "bench", "observed": {"metrics": {"latency_p99_ms": 480, "error_rate": 0.02}}, "history": []}
NOW = datetime(2026, 3, 4, 15, 10, tzinfo=UTC)
NONE = {"action": "none", "params": {}, "proposed": None, "reasons": ["every objective is met"], "rule": "healthy"}


def rate(ops: int, work: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    for n in range(ops):
        work(n)
    return ops / (time.perf_counter() - started)


def seed_history(journal: Journal, records: int) -> None:
    """``records`` past actions on shop/checkout over the last 7 days, written in one transaction."""
    span = timedelta(days=7).total_seconds()
    decision = journal.record_decision(namespace="shop", service="checkout", snapshot=SNAPSHOT, decision=DECISION)
    with journal._write() as tx:  # seeding only: the operations timed below go through the public API
        for n in range(records):
            at = NOW - timedelta(seconds=span * n / records)
            tx.insert(
                "INSERT INTO actions (decision_id, namespace, service, action, params, started, ended, changed,"
                " outcome) VALUES (?, 'shop', 'checkout', 'restart', '{}', ?, ?, 1, 'recovered')",
                (decision, at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
            )


def measure(target: str, ops: int, history_records: int, reads: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with Journal(target) as journal:
        decisions: list[int] = []
        actions: list[int] = []

        def decide(n: int) -> None:
            decisions.append(
                journal.record_decision(
                    namespace="shop",
                    service=f"svc-{n % 20}",
                    snapshot=SNAPSHOT,
                    decision=DECISION,
                    fingerprint=f"fp-{n % 20}",
                    alert_status="firing",
                )
            )

        figures["record a decision"] = rate(ops, decide)
        figures["claim (action started)"] = rate(
            ops, lambda n: actions.append(journal.start_action(decisions[n], "restart", DECISION["params"]))
        )
        figures["record an outcome"] = rate(
            ops, lambda n: journal.finish_action(actions[n], outcome="recovered", changed=True)
        )
        figures["accept an alert"] = rate(ops, lambda n: journal.accept_alert(f"fp-{n}", "firing", NOW))
        seed_history(journal, history_records)
        since = NOW - timedelta(hours=24)
        window = len(journal.history("checkout", "shop", since=since, until=NOW))
        timings = []
        for _ in range(reads):
            started = time.perf_counter()
            journal.history("checkout", "shop", since=since, until=NOW)
            timings.append((time.perf_counter() - started) * 1000)
        cuts = statistics.quantiles(timings, n=100)
        figures["history rows in 24 h"] = window
        figures["history p50 ms"] = cuts[49]
        figures["history p99 ms"] = cuts[98]
        figures.update(none_check_share(journal, reads))
    return figures


def none_check_share(journal: Journal, checks: int) -> dict[str, float]:
    """The journal calls of one ``none`` check, in the order gather and decide_and_record make them."""
    cpu, wall = [], []
    for n in range(checks):
        started_cpu, started = time.thread_time(), time.perf_counter()
        journal.history("checkout", "shop", since=NOW - HISTORY_HORIZON, until=NOW)
        journal.pending_actions(since=NOW - HISTORY_HORIZON)
        journal.record_decision(
            namespace="shop",
            service="checkout",
            snapshot=SNAPSHOT,
            decision=NONE,
            fingerprint=f"fp-none-{n % 5}",
            alert_status="firing",
        )
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    cpu_cuts, wall_cuts = statistics.quantiles(cpu, n=100), statistics.quantiles(wall, n=100)
    return {
        "none check: journal CPU p50 ms": cpu_cuts[49],
        "none check: journal CPU p99 ms": cpu_cuts[98],
        "none check: journal wall p50 ms": wall_cuts[49],
        "none check: journal wall p99 ms": wall_cuts[98],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=1000, help="operations of each kind")
    parser.add_argument("--history-records", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        server = postgres.start_postgres(Path(tmp) / "run")
        try:
            os.environ["PGPASSFILE"] = str(server.passfile)
            results = {
                "SQLite": measure(str(Path(tmp) / "journal.db"), args.ops, args.history_records, args.reads),
                "PostgreSQL": measure(server.create_database("bench"), args.ops, args.history_records, args.reads),
            }
        finally:
            server.stop()
    print(f"journal, one writer, {args.ops} operations each; history: {args.history_records} past records")
    print(f"{'':36}{'SQLite':>12}{'PostgreSQL':>14}")
    for name in results["SQLite"]:
        unit = "" if name.endswith("ms") or name.startswith("history rows") else " ops/s"
        sqlite, pg = results["SQLite"][name], results["PostgreSQL"][name]
        print(f"{name + unit:36}{sqlite:>12,.2f}{pg:>14,.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
