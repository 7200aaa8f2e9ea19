"""Alert intake: zerotouch.selfheal.alertmanager against a peer-equivalent receiver (bench/peer_receiver.py).

Each receiver runs in its own process with the same consumer standing in for ansible-rulebook: a queue of one
slot drained by a task that spends CONSUMER_DELAY per event. This process plays Alertmanager.

1. Throughput: THROUGHPUT_ALERTS distinct alerts in notifications of GROUP_SIZE, SENDERS at a time, with a
   token (and, for ours, dedupe on). Alert events/s accepted (every request answered), request latency, and
   delivery to the consumer.
2. Storm: STORM_ALERTS alerts over STORM_SERVICES services in STORM_SECONDS. Like Alertmanager, each service's
   group is notified every GROUP_INTERVAL with *all* its alerts so far, one notification at a time per group,
   each attempt timing out after SEND_TIMEOUT and retried (5xx, timeouts) until it gets through. Counts unique
   alerts delivered, duplicates and alerts lost (never delivered by the end).

Prints figures only; run with `.venv/bin/python bench/bench_intake.py`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import runpy
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sandbox import payloads  # noqa: E402

OURS = (
    ROOT
    / "build/collections/ansible_collections/zerotouch/selfheal/extensions/eda/plugins/event_source/alertmanager.py"
)
PEER = ROOT / "bench/peer_receiver.py"
TOKEN = "bench-token"

CONSUMER_DELAY = 0.001  # ansible-rulebook's reader, optimistically: 1 ms per event
THROUGHPUT_ALERTS = 2000
GROUP_SIZE = 10
SENDERS = 20
STORM_ALERTS = 5000
STORM_SERVICES = 20
STORM_SECONDS = 10.0
GROUP_INTERVAL = 1.0
SEND_TIMEOUT = 10.0  # Alertmanager's minimum notification timeout
RETRY_BACKOFF = 0.5
STORM_DEADLINE = 40.0  # the storm phase ends here whatever happened; undelivered alerts count as lost
IDLE = 0.5  # the consumer is done when it received nothing for this long


# --- the receiver side (child process) ----------------------------------------------------------------------------


def serve(kind: str, port: int, conn: Any) -> None:
    asyncio.run(_serve(kind, port, conn))


async def _serve(kind: str, port: int, conn: Any) -> None:
    module = runpy.run_path(str(OURS if kind == "ours" else PEER))
    args: dict[str, Any] = {"port": port}
    if kind == "ours":
        args.update(token=TOKEN, dedupe_window=600, max_queue=10_000)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)  # ansible-rulebook's source queue
    delivered: list[tuple[str | None, bool, float]] = []
    # Ours: the receiver alone (receive), which hands alerts on as they are; its main() checks them in the loop.
    source = asyncio.create_task(module["receive" if kind == "ours" else "main"](queue, args))
    consumer = asyncio.create_task(_consume(queue, delivered))
    await _listening(port)
    conn.send("ready")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # "finish": the sender is done
    while not delivered or time.monotonic() - delivered[-1][2] < IDLE:
        await asyncio.sleep(0.1)
    conn.send(delivered)
    source.cancel()
    consumer.cancel()
    await asyncio.gather(source, consumer, return_exceptions=True)


async def _consume(queue: asyncio.Queue[dict[str, Any]], delivered: list[tuple[str | None, bool, float]]) -> None:
    while True:
        event = await queue.get()
        alert = event.get("alert", event)  # the peer nests the alert, ours is the alert
        leaked = TOKEN in str(event.get("meta", {}).get("headers", ""))
        delivered.append((None if "payload" in event else alert["fingerprint"], leaked, time.monotonic()))
        await asyncio.sleep(CONSUMER_DELAY)


async def _listening(port: int) -> None:
    for _attempt in range(500):
        try:
            writer = (await asyncio.open_connection("127.0.0.1", port))[1]
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.01)
    raise RuntimeError("receiver did not start")


class Receiver:
    """A receiver in a child process, so that it does not share a CPU-bound event loop with the sender."""

    def __init__(self, kind: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(kind, self.port, child), daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/alerts"

    def __enter__(self) -> Receiver:
        self.proc.start()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            raise RuntimeError("receiver did not report ready")
        return self

    def finish(self) -> list[tuple[str | None, bool, float]]:
        self.conn.send("finish")
        if not self.conn.poll(STORM_DEADLINE + 60):
            raise RuntimeError("receiver did not report")
        delivered: list[tuple[str | None, bool, float]] = self.conn.recv()
        return delivered

    def __exit__(self, *exc: object) -> None:
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# --- the sender side ----------------------------------------------------------------------------------------------


def alert(service: int, index: int) -> dict[str, Any]:
    name = f"svc-{service:02d}"
    return payloads.alert(
        fingerprint=f"{service:04x}{index:012x}",
        service=name,
        summary=f"{name} p99 latency is high on pod p{index}",
        pod=f"p{index}",
    )


@dataclass
class Sent:
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    refused: int = 0  # 5xx answers, retried
    errors: int = 0


async def send(http: aiohttp.ClientSession, url: str, body: dict[str, Any], sent: Sent) -> bool:
    began = time.monotonic()
    try:
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            await resp.read()
            ok = 200 <= resp.status < 300
            sent.refused += resp.status >= 500
    except TimeoutError:
        sent.timeouts += 1
        return False
    except aiohttp.ClientError:
        sent.errors += 1
        return False
    sent.latencies.append(time.monotonic() - began)
    return ok


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT)
    )


async def throughput(url: str) -> tuple[float, Sent]:
    bodies = [
        payloads.notification(*[alert(i % 20, i * GROUP_SIZE + j) for j in range(GROUP_SIZE)])
        for i in range(THROUGHPUT_ALERTS // GROUP_SIZE)
    ]
    sent = Sent()
    todo: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        todo.put_nowait(body)

    async def sender(http: aiohttp.ClientSession) -> None:
        while not todo.empty():
            body = todo.get_nowait()
            while not await send(http, url, body, sent):
                await asyncio.sleep(RETRY_BACKOFF)

    async with session() as http:
        began = time.monotonic()
        await asyncio.gather(*(sender(http) for _sender in range(SENDERS)))
        return time.monotonic() - began, sent


async def storm(url: str) -> tuple[Sent, float]:
    """Alertmanager-like groups: cumulative notifications, one at a time per group, retried until delivered."""
    firing: list[list[dict[str, Any]]] = [[] for _service in range(STORM_SERVICES)]
    per_service = STORM_ALERTS // STORM_SERVICES
    sent = Sent()
    began = time.monotonic()
    deadline = began + STORM_DEADLINE

    async def fire() -> None:
        for n in range(per_service):  # alerts appear evenly over STORM_SECONDS
            for service in range(STORM_SERVICES):
                firing[service].append(alert(service, n))
            await asyncio.sleep(STORM_SECONDS / per_service)

    async def group(http: aiohttp.ClientSession, service: int) -> None:
        next_flush = began + GROUP_INTERVAL
        while time.monotonic() < deadline:
            await asyncio.sleep(max(0.0, next_flush - time.monotonic()))
            next_flush = time.monotonic() + GROUP_INTERVAL
            snapshot = list(firing[service])
            while not await send(http, url, payloads.notification(*snapshot), sent):
                if time.monotonic() + RETRY_BACKOFF > deadline:
                    return
                await asyncio.sleep(RETRY_BACKOFF)
            if len(snapshot) == per_service:
                return  # every alert of the group got through

    async with session() as http:
        await asyncio.gather(fire(), *(group(http, s) for s in range(STORM_SERVICES)))
    return sent, time.monotonic() - began


# --- figures ------------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def counts(delivered: list[tuple[str | None, bool, float]]) -> tuple[int, int, int, int]:
    alerts = [fp for fp, _leaked, _at in delivered if fp is not None]
    unique = len(set(alerts))
    return unique, len(alerts) - unique, len(delivered) - len(alerts), sum(leaked for _fp, leaked, _at in delivered)


def run_throughput(kind: str) -> dict[str, float]:
    with Receiver(kind) as receiver:
        began = time.monotonic()
        elapsed, sent = asyncio.run(throughput(receiver.url))
        delivered = receiver.finish()
    unique, duplicates, raw, leaked = counts(delivered)
    return {
        "accepted_per_s": THROUGHPUT_ALERTS / elapsed,
        "p50_ms": 1000 * percentile(sent.latencies, 50),
        "p99_ms": 1000 * percentile(sent.latencies, 99),
        "delivered_per_s": unique / (delivered[-1][2] - began),
        "unique": unique,
        "duplicates": duplicates,
        "raw": raw,
        "leaked": leaked,
    }


def run_storm(kind: str) -> dict[str, float]:
    with Receiver(kind) as receiver:
        sent, elapsed = asyncio.run(storm(receiver.url))
        delivered = receiver.finish()
    unique, duplicates, raw, _leaked = counts(delivered)
    return {
        "unique": unique,
        "duplicates": duplicates,
        "lost": STORM_ALERTS - unique,
        "raw": raw,
        "requests": len(sent.latencies),
        "timeouts": sent.timeouts,
        "refused": sent.refused,
        "p50_ms": 1000 * percentile(sent.latencies, 50),
        "p99_ms": 1000 * percentile(sent.latencies, 99),
        "sender_s": elapsed,
    }


def main() -> int:
    if not OURS.exists():
        print(f"cannot find {OURS}: run `make collection` (or scripts/install-collection.sh) first", file=sys.stderr)
        return 1
    print(f"consumer: queue of 1 slot, {CONSUMER_DELAY * 1000:g} ms per event (a stand-in for ansible-rulebook)")
    print(f"\n1. throughput: {THROUGHPUT_ALERTS} distinct alerts, {GROUP_SIZE} per notification, {SENDERS} senders")
    rows = {kind: run_throughput(kind) for kind in ("ours", "peer")}
    print(
        f"{'':6}{'accepted/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'delivered/s':>13}{'dup':>6}{'raw':>6}{'token leaks':>13}"
    )
    for kind, r in rows.items():
        print(
            f"{kind:6}{r['accepted_per_s']:12.0f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}{r['delivered_per_s']:13.0f}"
            f"{r['duplicates']:6.0f}{r['raw']:6.0f}{r['leaked']:13.0f}"
        )
    ratio = rows["ours"]["accepted_per_s"] / rows["peer"]["accepted_per_s"]
    print(f"accepted alert events/s, ours / peer: {ratio:.1f}x (target >= 3x)")

    print(
        f"\n2. storm: {STORM_ALERTS} alerts over {STORM_SERVICES} services in {STORM_SECONDS:g} s, cumulative group "
        f"notifications every {GROUP_INTERVAL:g} s, {SEND_TIMEOUT:g} s timeout, retried"
    )
    print(f"{'':6}{'unique':>8}{'dup':>8}{'lost':>6}{'raw':>6}{'requests':>10}{'timeouts':>10}{'5xx':>6}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'sender s':>10}")  # fmt: skip
    for kind in ("ours", "peer"):
        r = run_storm(kind)
        print(
            f"{kind:6}{r['unique']:8.0f}{r['duplicates']:8.0f}{r['lost']:6.0f}{r['raw']:6.0f}{r['requests']:10.0f}"
            f"{r['timeouts']:10.0f}{r['refused']:6.0f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}{r['sender_s']:10.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
