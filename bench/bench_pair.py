"""Two receivers, one action: the storm against an HA pair of remediate rulebooks on one PostgreSQL journal.

STORM_ALERTS alerts over STORM_SERVICES broken services in 10 s (bench_intake's storm: cumulative group
notifications every second, retried on timeouts and 5xx, so every alert is re-sent many times), posted to each of
two ansible-rulebook instances as Alertmanager's two routes would. Run twice, each in a fresh sandbox:

- pair: both live to the end;
- kill: ``kill -9`` of one instance's whole process group KILL_AT_S into the storm (the sender to it gives up at
  the storm's deadline, as Alertmanager would keep failing).

Per run: remediations (rollbacks not skipped) and duplicates (a second rollback of one service), escalations
apart, alerts lost (of the STORM_ALERTS, how many never reached the journal: neither checked nor linked to a
decision), alerts checked twice (a fingerprint with more than one decision), alerts and actions the survivor took
over, and the drain time (storm sent -> every service's remediation finished and every alert journaled).

Prints figures only; `.venv/bin/python bench/bench_pair.py [pair] [kill]` (both by default), ~10-15 minutes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_intake  # noqa: E402
import bench_loop  # noqa: E402  (its sandbox, deploy, intents and figures helpers; its sys.path set-up too)

from sandbox import client  # noqa: E402
from sandbox.rulebook import Rulebook  # noqa: E402
from sandbox.wait import wait_until  # noqa: E402

STORM_ALERTS, STORM_SERVICES = bench_intake.STORM_ALERTS, bench_intake.STORM_SERVICES
KILL_AT_S = float(os.environ.get("PAIR_KILL_AT_S", "5"))
LEASE = {"lock_lease_seconds": 20}  # the default: an 8 s lease lapsed under this load while its loop lived
POLICY = {**bench_loop.POLICY, "max_concurrent_remediations": STORM_SERVICES}
DRAIN_BUDGET_S = float(os.environ.get("PAIR_DRAIN_BUDGET_S", "900"))


def rows(dsn: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(sql, args).fetchall())


def journaled(dsn: str) -> set[str]:
    """Storm fingerprints checked (a decision) or linked to a decision."""
    found = rows(
        dsn,
        "SELECT fingerprint FROM decisions WHERE namespace = 'shop' AND fingerprint IS NOT NULL UNION"
        " SELECT l.fingerprint FROM alert_links l JOIN decisions d ON d.id = l.decision_id"
        " WHERE d.namespace = 'shop' AND l.fingerprint IS NOT NULL",
    )
    return {str(fp) for (fp,) in found}


async def storm(url: str, accepted: set[str]) -> tuple[bench_intake.Sent, float]:
    """bench_intake's storm (cumulative group notifications every second, retried until the deadline), keeping
    the fingerprints this receiver answered 2xx for: those are the ones the pair must not lose."""
    per_service = STORM_ALERTS // STORM_SERVICES
    firing: list[list[dict[str, Any]]] = [[] for _service in range(STORM_SERVICES)]
    sent = bench_intake.Sent()
    began = time.monotonic()
    deadline = began + bench_intake.STORM_DEADLINE

    async def fire() -> None:
        for n in range(per_service):
            for service in range(STORM_SERVICES):
                firing[service].append(bench_intake.alert(service, n))
            await asyncio.sleep(bench_intake.STORM_SECONDS / per_service)

    async def group(http: Any, service: int) -> None:
        next_flush = began + bench_intake.GROUP_INTERVAL
        while time.monotonic() < deadline:
            await asyncio.sleep(max(0.0, next_flush - time.monotonic()))
            next_flush = time.monotonic() + bench_intake.GROUP_INTERVAL
            snapshot = list(firing[service])
            while not await bench_intake.send(http, url, bench_intake.payloads.notification(*snapshot), sent):
                if time.monotonic() + bench_intake.RETRY_BACKOFF > deadline:
                    return
                await asyncio.sleep(bench_intake.RETRY_BACKOFF)
            accepted.update(a["fingerprint"] for a in snapshot)
            if len(snapshot) == per_service:
                return

    async with bench_intake.session() as http:
        await asyncio.gather(fire(), *(group(http, s) for s in range(STORM_SERVICES)))
    return sent, time.monotonic() - began


def queue_depth(rb: Rulebook) -> float:
    import urllib.request

    with urllib.request.urlopen(rb.url.rsplit("/", 1)[0] + "/metrics", timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("selfheal_alertmanager_queue_depth "):
                return float(line.split()[1])
    return float("nan")


def run(kill: bool, tmp: Path) -> dict[str, Any]:
    with bench_loop.sandbox(tmp) as state:
        names = [f"svc-{i:02d}" for i in range(STORM_SERVICES)]
        bench_loop.deploy(state, "shop", names)
        intents, policy = tmp / "intents.yml", tmp / "policy.yml"
        intents.write_text(
            yaml.safe_dump({"intents": [bench_loop.intent("shop", n, rollback_on_regression=True) for n in names]})
        )
        policy.write_text(yaml.safe_dump(POLICY))  # bench_loop's, with room for every service at once
        for name in names:
            client.inject(state, "bad-rollout", namespace="shop", service=name)
        wait_until(lambda: bench_loop.breached(state, "shop", "svc-") == len(names), 120, "every service to breach", 1)
        dsn = state["journal_dsn"]
        os.environ["PGPASSFILE"] = state["journal_passfile"]
        options: dict[str, Any] = {
            "intents": intents,
            "policy": policy,
            "journal": dsn,
            "token": bench_intake.TOKEN,
            "extra_vars": {**bench_loop.VERIFY, **LEASE},
        }
        a = Rulebook(state, run_dir=tmp / "a", **options).start()
        b = Rulebook(state, run_dir=tmp / "b", **options).start()
        killed: list[float] = []

        def kill_a() -> None:
            if a.pid is not None:
                os.killpg(a.pid, signal.SIGKILL)
                killed.append(time.monotonic())

        timer = threading.Timer(KILL_AT_S, kill_a) if kill else None
        try:
            if timer is not None:
                timer.start()

            accepted: set[str] = set()

            async def both() -> list[tuple[bench_intake.Sent, float]]:
                return list(await asyncio.gather(storm(a.url, accepted), storm(b.url, accepted)))

            (sent_a, took_a), (sent_b, took_b) = asyncio.run(both())
            sent_at = time.monotonic()
            every = accepted  # answered 2xx by at least one of the two

            def done() -> bool:
                finished = all(
                    any(x["outcome"] != "pending" for x in bench_loop.actions_of(dsn, "shop", n)) for n in names
                )
                return finished and every <= journaled(dsn)

            drain: float | None
            try:
                wait_until(done, DRAIN_BUDGET_S, "every remediation finished and every alert journaled", interval=2)
                drain = time.monotonic() - sent_at
            except TimeoutError:
                drain = None  # reported with what is still queued
            queued = sum(queue_depth(rb) for rb in (a, b) if rb.running)
            time.sleep(10)  # a second remediation, if any, shows up now
            ran = {n: [x for x in bench_loop.actions_of(dsn, "shop", n) if x["outcome"] != "skipped"] for n in names}
            per_service = {n: [x for x in v if x["action"] != "escalate"] for n, v in ran.items()}
            twice = rows(
                dsn,
                "SELECT COUNT(*) FROM (SELECT fingerprint FROM decisions WHERE namespace = 'shop'"
                " AND fingerprint IS NOT NULL GROUP BY fingerprint HAVING COUNT(*) > 1) t",
            )[0][0]
            taken_actions = rows(dsn, "SELECT COUNT(*) FROM action_takeovers")[0][0]
            survivor = b if kill else None
            return {
                "sent_s": max(took_a, took_b),
                "requests": len(sent_a.latencies) + len(sent_b.latencies),
                "failed": sent_a.timeouts + sent_a.errors + sent_b.timeouts + sent_b.errors,
                "received": sum(
                    bench_loop.source_counters(rb.url)["alerts_received_total"] for rb in (a, b) if rb.running
                ),
                "remediations": sum(len(v) for v in per_service.values()),
                "duplicates": sum(max(0, len(v) - 1) for v in per_service.values()),
                "escalations": sum(len(v) - len(per_service[n]) for n, v in ran.items()),
                "recovered": sum(any(x["outcome"] == "recovered" for x in v) for v in per_service.values()),
                "accepted": len(every),
                "lost": len(every - journaled(dsn)),
                "queued": queued,
                "checked_twice": int(twice),
                "taken_actions": int(taken_actions),
                "taken_alerts": taken_over_alerts(survivor) if survivor else 0,
                "killed_at_s": KILL_AT_S if killed else None,
                "drain_s": drain,
            }
        finally:
            if timer is not None:
                timer.cancel()
            a.stop()
            b.stop()


def taken_over_alerts(rb: Rulebook) -> int:
    """The survivor's log says how many alerts it took over (its warnings)."""
    total = 0
    for line in rb.output(10**7).splitlines():
        if "taking over" in line and "alerts a dead receiver accepted" in line:
            total += int(line.split("taking over", 1)[1].split()[0])
    return total


def main(argv: list[str]) -> int:
    parts = argv or ["pair", "kill"]
    print(
        f"storm: {STORM_ALERTS} alerts over {STORM_SERVICES} broken services in {bench_intake.STORM_SECONDS:g} s, "
        "cumulative group notifications every second, retried, posted to both receivers of a pair "
        "(two remediate rulebooks, one PostgreSQL journal)"
    )
    for part in parts:
        with tempfile.TemporaryDirectory(prefix=f"selfheal-bench-pair-{part}-") as tmpdir:
            r = run(part == "kill", Path(tmpdir))
        label = f"kill -9 of one at {r['killed_at_s']:g} s" if r["killed_at_s"] is not None else "both live"
        print(f"\n{part}: {label}")
        print(
            f"sender: {r['requests']} requests answered 2xx in {r['sent_s']:.1f} s, {r['failed']} failed "
            f"(timeouts, refused connections); alerts received by the live receivers: {r['received']:.0f}"
        )
        print(
            f"remediations: {r['remediations']} for {STORM_SERVICES} services (duplicates: {r['duplicates']}, "
            f"escalations besides: {r['escalations']}), {r['recovered']} verified recovered"
        )
        drained = (
            f"drained {r['drain_s']:.0f} s after the storm was sent"
            if r["drain_s"] is not None
            else f"not drained within {DRAIN_BUDGET_S:g} s: {r['queued']:.0f} alerts still queued in the live receivers"
        )
        print(
            f"alerts: {r['accepted']} answered 2xx by at least one receiver; not journaled (lost, or still queued): "
            f"{r['lost']}; checked twice: {r['checked_twice']}; taken over by the survivor: {r['taken_alerts']} "
            f"alerts, {r['taken_actions']} actions held or taken over; {drained}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
