"""The intent_watch source: its pure core, the source against a fake Prometheus, and against the sandbox's."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import runpy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import watch as _watch

from sandbox import client
from sandbox.payloads import alert, notification
from tests.integration.helpers import create_deployment, create_namespace, kube_client, wait_until

from .conftest import COLLECTIONS, free_port

SOURCE_FILE = COLLECTIONS / "ansible_collections/zerotouch/selfheal/extensions/eda/plugins/event_source/intent_watch.py"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
OBJECTIVES = {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0}


def intent(namespace: str = "shop", service: str = "checkout", **extra: Any) -> dict[str, Any]:
    return {
        "service": service,
        "namespace": namespace,
        "objectives": dict(OBJECTIVES),
        "indicators": {"window": "15s"},
        **extra,
    }


@pytest.fixture(scope="module")
def watch_source() -> SimpleNamespace:
    """The source's globals, loaded with runpy from the installed layout, as ansible-rulebook does."""
    return SimpleNamespace(**runpy.run_path(str(SOURCE_FILE)))


def healthy(**changes: float | None) -> dict[str, float | None]:
    values: dict[str, float | None] = {
        "latency_p99_ms": 120.0,
        "error_rate": 0.1,
        "availability": 99.9,
        "burn_error_rate": 0.1,
    }
    values.update(changes)
    return values


def judge(values: dict[str, Any], threshold: float = 6.0, **intent_keys: Any) -> _watch.Judgement:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import validate_intent

    return _watch.judge(validate_intent(intent(**intent_keys), "test"), None, values, NOW, threshold)


# --- the pure core -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "at_risk", "holding", "breached"),
    [
        (healthy(), False, True, ()),
        (healthy(latency_p99_ms=400.0), True, False, ("max_latency_ms",)),
        (healthy(error_rate=5.0, availability=95.0), True, False, ("max_error_rate", "availability")),
        (healthy(latency_p99_ms=250.0), False, True, ()),  # equal is met
        (healthy(latency_p99_ms=None), False, False, ()),  # unknown: neither opens nor ends an episode
        (healthy(burn_error_rate=7.0), True, False, ()),  # 7 % errors on a 1 % budget: burns 7x
        (healthy(burn_error_rate=5.0), False, True, ()),  # 5x: below the threshold
        (healthy(burn_error_rate=None), False, True, ()),  # no short-window answer: the objectives decide
    ],
)
def test_judge_breach_burn_and_unknown(values: dict, at_risk: bool, holding: bool, breached: tuple) -> None:
    judgement = judge(values)
    assert (judgement.at_risk, judgement.holding) == (at_risk, holding), judgement.reasons
    assert judgement.breached == breached


def test_burn_rate_is_errors_over_the_tighter_budget() -> None:
    assert _watch.burn_rate({"availability": 99.5, "max_error_rate": 1.0}, 2.0) == pytest.approx(4.0)
    assert _watch.burn_rate({"max_error_rate": 2.0}, 1.0) == pytest.approx(0.5)
    assert _watch.burn_rate({"max_latency_ms": 100}, 50.0) is None  # nothing bounds errors
    assert _watch.burn_rate({"availability": 100}, 0.01) == math.inf
    assert _watch.burn_rate({"availability": 100}, 0.0) == 0.0
    assert "burns infinitely" in " ".join(judge(healthy(burn_error_rate=0.5), objectives={"availability": 100}).reasons)


def test_one_alert_per_episode_then_resolved() -> None:
    tracker = _watch.Tracker()
    key = "shop/checkout"
    ticks = [healthy(), healthy(latency_p99_ms=500.0), healthy(latency_p99_ms=600.0), healthy(latency_p99_ms=None)]
    ticks += [healthy(), healthy(), healthy(error_rate=3.0)]
    emitted = []
    for index, values in enumerate(ticks):
        emitted.append(tracker.step([judge(values)], [key], NOW + timedelta(seconds=10 * index)))
    statuses = [[a["status"] for a in alerts] for alerts in emitted]
    assert statuses == [[], ["firing"], [], [], ["resolved"], [], ["firing"]]
    firing, resolved = emitted[1][0], emitted[4][0]
    assert firing["fingerprint"] == resolved["fingerprint"] == emitted[6][0]["fingerprint"]
    assert (firing["startsAt"], resolved["endsAt"]) == ("2026-03-01T10:00:10Z", "2026-03-01T10:00:40Z")
    assert "latency" in firing["annotations"]["description"] and firing["annotations"]["breached"] == "max_latency_ms"


def test_an_episode_ends_when_its_intent_is_no_longer_declared() -> None:
    tracker = _watch.Tracker()
    assert tracker.step([judge(healthy(latency_p99_ms=900.0))], ["shop/checkout"], NOW)
    resolved = tracker.step([], [], NOW)
    assert [a["status"] for a in resolved] == ["resolved"] and not tracker.episodes


def test_one_batched_query_holds_every_service_and_the_burn_window() -> None:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._prom import batch

    intents = [intent(), intent("shop", "catalog", indicators={"window": "15s", "error_rate": "my_errors"})]
    queries = _watch.watch_queries(intents, "5s")
    assert set(queries) == {"shop/checkout", "shop/catalog"}
    assert set(queries["shop/checkout"]) == {"latency_p99_ms", "error_rate", "availability", "burn_error_rate"}
    assert "[5s]" in queries["shop/checkout"]["burn_error_rate"] and "[15s]" in queries["shop/checkout"]["error_rate"]
    assert queries["shop/catalog"]["burn_error_rate"] == "my_errors"  # the intent's own PromQL wins
    assert len(re.findall(r'"selfheal_key"', batch(queries))) == 8


# --- the source against a fake Prometheus ------------------------------------------------------------------------

_TAGS = re.compile(r'"selfheal_indicator", "(\w+)", "", ""\), "selfheal_key", "([^"]+)"')


class FakePrometheus:
    """Answers the batched query from a table {key: {indicator: value}}; counts the queries."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, float | None]] = {}
        self.queries = 0
        self.url = ""

    async def query(self, request: web.Request) -> web.Response:
        self.queries += 1
        form = await request.post()
        result = []
        for name, key in _TAGS.findall(str(form.get("query") or request.query.get("query"))):
            value = self.values.get(key, {}).get(name)
            if value is not None:
                metric = {"selfheal_indicator": name, "selfheal_key": key}
                result.append({"metric": metric, "value": [0, str(value)]})
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_route("*", "/api/v1/query", fake.query)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
def intents_file(tmp_path: Path) -> Path:
    path = tmp_path / "intents.yml"
    path.write_text(yaml.safe_dump({"intents": [intent(), intent("shop", "catalog")]}))
    return path


@contextlib.asynccontextmanager
async def running(source: SimpleNamespace, args: dict[str, Any]) -> AsyncIterator[tuple[asyncio.Queue, asyncio.Task]]:
    """The watch's reports as main() offers them to the loop (here a queue of one slot), with its endpoint."""
    config = source.parse_args(args)
    watcher = source.Watcher(config)
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    task = asyncio.create_task(source.run(watcher, queue.put))
    runner = await source._source.start_site(source.health_app(watcher, task), config.host, config.port)
    try:
        yield queue, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.cleanup()


async def test_source_emits_one_event_per_episode_with_one_query_per_tick(
    watch_source: SimpleNamespace, prometheus: FakePrometheus, intents_file: Path
) -> None:
    prometheus.values = {"shop/checkout": healthy(), "shop/catalog": healthy()}
    port = free_port()
    args = {"intents": str(intents_file), "prometheus_url": prometheus.url, "interval": 0.05, "port": port}
    async with running(watch_source, args) as (queue, task), aiohttp.ClientSession() as http:
        await _until(lambda: prometheus.queries >= 3)
        assert queue.empty()
        prometheus.values["shop/checkout"] = healthy(error_rate=12.0, availability=88.0, burn_error_rate=12.0)
        firing = await asyncio.wait_for(queue.get(), 5)
        ticks_then = prometheus.queries
        await _until(lambda: prometheus.queries >= ticks_then + 5)
        assert queue.empty(), "one event per episode, not one per tick"
        prometheus.values["shop/checkout"] = healthy()
        resolved = await asyncio.wait_for(queue.get(), 5)
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            metrics = await resp.text()
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
        ticks = int(re.search(r"selfheal_intent_watch_ticks_total (\d+)", metrics).group(1))  # type: ignore[union-attr]
        assert prometheus.queries == pytest.approx(ticks, abs=1), "one Prometheus query per tick, both services in it"
    assert (firing["status"], firing["service"], firing["incident"]) == (
        "firing",
        "checkout",
        "shop/checkout/IntentAtRisk",
    )
    assert firing["labels"]["severity"] == "page" and "max_error_rate" in firing["annotations"]["breached"]
    assert resolved["status"] == "resolved" and resolved["fingerprint"] == firing["fingerprint"]
    assert resolved["firing_event_id"] == firing["meta"]["uuid"]
    assert 'selfheal_intent_watch_events_total{status="firing"} 1' in metrics


async def test_events_have_the_alertmanager_sources_shape(
    watch_source: SimpleNamespace, source: SimpleNamespace, prometheus: FakePrometheus, intents_file: Path
) -> None:
    prometheus.values = {"shop/checkout": healthy(latency_p99_ms=900.0)}
    watcher = watch_source.Watcher(
        watch_source.parse_args({"intents": str(intents_file), "prometheus_url": prometheus.url})
    )
    [event] = await asyncio.to_thread(watcher.tick)
    reference = source.stamp(source.to_events(notification(alert()))[0], "2026-03-01T10:00:00Z")
    assert set(event) == set(reference)
    assert (event["namespace"], event["service"], event["alertname"]) == ("shop", "checkout", "IntentAtRisk")
    assert event["source_labels"] == {"service": "service", "namespace": "namespace"}


async def test_unreachable_prometheus_keeps_the_episode_and_bad_arguments_are_named(
    watch_source: SimpleNamespace, intents_file: Path, tmp_path: Path
) -> None:
    config = watch_source.parse_args(
        {"intents": str(intents_file), "prometheus_url": "http://127.0.0.1:9", "timeout": 1}
    )
    watcher = watch_source.Watcher(config)
    assert await asyncio.to_thread(watcher.tick) == []
    assert watcher.stats.query_errors == 1
    for args, message in [
        ({"prometheus_url": "http://p"}, "intents: required"),
        ({"intents": "x", "prometheus_url": "http://p", "burn_window": "soon"}, "burn_window:"),
        ({"intents": "x", "prometheus_url": "http://p", "interval": 0}, "interval:"),
        ({"intents": "x", "prometheus_url": "http://p", "typo": 1}, "typo: unknown option"),
    ]:
        with pytest.raises(ValueError, match=message):
            watch_source.parse_args(args)
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"intents": [{"service": "x"}]}))
    with pytest.raises(ValueError, match="intents: .*namespace"):
        watch_source.Watcher(watch_source.parse_args({"intents": str(bad), "prometheus_url": "http://p"}))


async def _until(probe: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


# --- against the sandbox's real Prometheus -----------------------------------------------------------------------


@pytest.mark.sandbox
def test_the_watch_sees_a_bad_rollout_in_the_real_prometheus_and_its_recovery(
    watch_source: SimpleNamespace, sandbox: dict[str, Any], faults: Any, tmp_path: Path
) -> None:
    kube = kube_client(sandbox)
    create_namespace(kube, "iw-real")
    create_deployment(kube, "iw-real", "web", replicas=2, image="acme/web:2.0")
    intents = tmp_path / "intents.yml"
    intents.write_text(yaml.safe_dump([intent("iw-real", "web")]))
    args = {"intents": str(intents), "prometheus_url": sandbox["prometheus_url"], "burn_window": "5s"}
    watcher = watch_source.Watcher(watch_source.parse_args(args))
    served = "sum(rate(http_requests_total{namespace='iw-real',code='200'}[15s]))"
    wait_until(lambda: (client.scalar(sandbox, served) or 0) > 90, 90, "a full window of metrics")
    assert watcher.tick() == []  # healthy: nothing to say
    fault = faults("bad-rollout", namespace="iw-real", service="web")
    events = wait_until(watcher.tick, 60, "the watch to see the bad release", interval=1)
    assert [e["status"] for e in events] == ["firing"] and events[0]["namespace"] == "iw-real"
    assert watcher.tick() == []  # the same episode
    client.clear(sandbox, fault["id"])  # the release is good again
    resolved = wait_until(watcher.tick, 60, "the watch to see the recovery", interval=1)
    assert [e["status"] for e in resolved] == ["resolved"]


async def test_the_watch_settles_at_start_what_its_loop_left_unfinished(
    watch_source: SimpleNamespace, prometheus: FakePrometheus, intents_file: Path, tmp_path: Path
) -> None:
    # A claim of the loop before this one, whose playbook never started: the restarted watch gives it back
    # (journaled skipped, with why) instead of leaving it pending for good.
    prometheus.values = {"shop/checkout": healthy(), "shop/catalog": healthy()}
    journal_path = tmp_path / "journal.db"
    with Journal(str(journal_path)) as journal:
        decision_id = journal.record_decision(
            namespace="shop",
            service="checkout",
            snapshot={"id": "x", "intent": {**intent(), "target": {"kind": "Deployment", "name": "checkout"}}},
            decision={"action": "restart", "params": {}, "reasons": ["crash loop"], "rule": "crashloop"},
        )
        action_id = journal.record_action(decision_id, "restart", {}, outcome="pending")
    args = {
        "intents": str(intents_file),
        "prometheus_url": prometheus.url,
        "interval": 0.2,
        "journal": str(journal_path),
        "kubeconfig": str(tmp_path / "no-such-kubeconfig"),  # the lock cannot be read: taken as lapsed
        "lock_lease_seconds": 3,
    }
    queue: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(watch_source.main(queue, args))
    try:

        def settled() -> dict[str, Any] | None:
            with Journal(str(journal_path)) as journal:
                row = journal.action(action_id)
            return row if row and row["outcome"] != "pending" else None

        await _until(settled, timeout=20)
        row = settled()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert row is not None and row["outcome"] == "skipped" and "restarted" in row["detail"]
    assert queue.empty(), "nothing was handed to the rule engine"
