"""intent_watch.py - an ansible-rulebook event source that watches every declared intent in Prometheus.

Every ``interval`` seconds it judges every intent of ``intents`` with ONE batched Prometheus query and emits an
event when a service starts breaching its objectives or burning its error budget fast, and one more when it
holds its objectives again, so remediation can start before an alert rule fires. The judging is the collection's
own code (``plugins/module_utils/_loop/watch.py`` on top of the decision engine's objective checks and the Prometheus
adapter ``intent_check`` uses), loaded from the collection this file sits in, as the alertmanager source does.

One event per breach episode, not per tick. Events have the alertmanager source's shape (the same
``_alerts.normalize``, the same template escaping), so the same rules and the same remediate playbook handle
both; their alert is ``IntentAtRisk`` with labels ``namespace``, ``service`` and ``severity: page``::

    {"status": "firing", "fingerprint": "...", "alertname": "IntentAtRisk", "service": "checkout",
     "namespace": "shop", "incident": "shop/checkout/IntentAtRisk",
     "labels": {"alertname": "IntentAtRisk", "namespace": "shop", "service": "checkout", "severity": "page"},
     "annotations": {"summary": "shop/checkout breaches max_latency_ms", "description": "<the reasons>",
                     "breached": "max_latency_ms", "burn_rate": "0.00"},
     "startsAt": "...", "endsAt": null, "receiver": "zerotouch.selfheal.intent_watch", ...,
     "meta": {"uuid": "...", "received_at": "..."}}

A resolved event carries ``firing_event_id`` and ``firing_received_at`` of the firing event it ends. The episode
memory lives in the process: after a restart a service still at risk opens a new episode (its incident in the
journal is the same fingerprint, so it joins the open one).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Watch every declared intent in Prometheus and emit one event per breach episode.
description:
  - Every I(interval) seconds, judges every intent of I(intents) on one batched Prometheus query, with the
    decision engine's own objective checks and the PromQL C(intent_check) uses (intent overrides included).
  - Emits a C(firing) event (alert C(IntentAtRisk)) when a service starts breaching an objective or burning its
    error budget at least I(burn_rate) times as fast as its objectives allow over I(burn_window), and a
    C(resolved) event on the first tick where every declared objective is known and met again. Nothing is
    emitted while an episode lasts, and a service whose indicators are unknown neither opens nor ends one.
  - Events have the shape of the M(zerotouch.selfheal.alertmanager) source's events, template escaping
    included, so the same rules and playbooks handle both.
  - Optionally serves GET /healthz and GET /metrics on I(port).
options:
  intents:
    description: The intents, a file or a directory of C(*.yml) files; read again at every tick.
    type: str
    required: true
  prometheus_url:
    description: The Prometheus API.
    type: str
    required: true
  prometheus_token:
    description: Bearer token for Prometheus, when it needs one.
    type: str
  policy:
    description: The policy file; validated at start and at every tick with the intents, so a broken one fails loudly.
    type: str
  interval:
    description: Seconds between two ticks.
    type: float
    default: 30
  burn_window:
    description:
      - The short window over which the error budget's burn rate is measured (a Prometheus duration). Shorter
        than the intents' C(indicators.window) to see a burst before the intent's window reports a breach.
        Empty disables burn detection.
    type: str
    default: 1m
  burn_rate:
    description:
      - The burn rate from which a service is at risk. C(6) spends a 30-day budget in five days. C(0) disables
        burn detection.
    type: float
    default: 6
  timeout:
    description: Seconds a Prometheus query may take.
    type: float
    default: 10
  escape_templates:
    description: Escape Jinja openings in event strings, as the alertmanager source does.
    type: bool
    default: true
  host:
    description: Address of the optional health and metrics endpoint.
    type: str
    default: 127.0.0.1
  port:
    description: Port of the optional health and metrics endpoint; none when not set.
    type: int
"""

EXAMPLES = r"""
- name: Remediate before the alert fires
  hosts: all
  sources:
    - zerotouch.selfheal.intent_watch:
        intents: /etc/selfheal/intents
        prometheus_url: http://prometheus:9090
        interval: 15
        burn_window: 1m
  rules:
    - name: Remediate a service at risk
      condition: event.status == "firing"
      action:
        run_playbook:
          name: zerotouch.selfheal.remediate
"""

logger = logging.getLogger("zerotouch.selfheal.intent_watch")

SHUTDOWN_TIMEOUT = 2.0
MODULE_UTILS = "ansible_collections.zerotouch.selfheal.plugins.module_utils"


def _load(name: str) -> ModuleType:
    """Import one of the collection's ``module_utils`` (one implementation for modules and sources).

    ansible-rulebook runs this file with runpy, outside Ansible's collection loader, so when the collection is not
    importable already, put the ``ansible_collections`` root this file sits in on ``sys.path``.
    """
    full = f"{MODULE_UTILS}.{name}"
    try:
        return importlib.import_module(full)
    except ImportError as exc:
        first_error: ImportError = exc
    here = Path(os.path.abspath(__file__))  # not resolve(): a symlinked collection must keep its own path
    if [p.name for p in here.parents[4:7]] == ["selfheal", "zerotouch", "ansible_collections"]:
        sys.path.insert(0, str(here.parents[7]))
        try:
            return importlib.import_module(full)
        except ImportError as exc:
            first_error = exc
    raise ImportError(
        f"zerotouch.selfheal.intent_watch cannot import {full} ({first_error}): run it from the installed "
        "collection (ansible-rulebook finds it through ANSIBLE_COLLECTIONS_PATH) or put the directory holding "
        "ansible_collections/zerotouch/selfheal on PYTHONPATH"
    ) from first_error


_alerts = _load("_alerts")
_watch = _load("_loop.watch")
_objectives = _load("_engine.objectives")
_intent = _load("_model.intent")
_policy = _load("_model.policy")
_prom = _load("_prom")
_errors = _load("_errors")


# --- configuration ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    intents: str
    prometheus_url: str
    prometheus_token: str | None = field(default=None, repr=False)
    policy: str | None = None
    interval: float = 30.0
    burn_window: str | None = _objectives.BURN_WINDOW
    burn_rate: float = _objectives.FAST_BURN_RATE
    timeout: float = 10.0
    escape_templates: bool = True
    host: str = "127.0.0.1"
    port: int | None = None


def parse_args(args: Mapping[str, Any]) -> Config:
    """Validate the source's arguments; raise ValueError naming the first bad one."""
    unknown = sorted(k for k in args if k not in Config.__dataclass_fields__ and not k.startswith("eda_"))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown option (known: {', '.join(Config.__dataclass_fields__)})")
    for required in ("intents", "prometheus_url"):
        if not isinstance(args.get(required), str) or not args[required].strip():
            raise ValueError(f"{required}: required, a non-empty string")
    burn_window = args.get("burn_window", _objectives.BURN_WINDOW)
    if burn_window in (None, ""):
        burn_window = None
    elif not isinstance(burn_window, str) or not _duration(burn_window):
        raise ValueError("burn_window: must be a Prometheus duration such as 30s, 1m or 1h30m")
    port = args.get("port")
    if port is not None:
        port = _number(args, "port", 0, 0, 65535)
        if not float(port).is_integer():
            raise ValueError("port: must be an integer between 0 and 65535")
    return Config(
        intents=args["intents"],
        prometheus_url=args["prometheus_url"].rstrip("/"),
        prometheus_token=_optional_str(args, "prometheus_token"),
        policy=_optional_str(args, "policy"),
        interval=_number(args, "interval", 30.0, 0.01, 86400),
        burn_window=burn_window,
        burn_rate=_number(args, "burn_rate", _objectives.FAST_BURN_RATE, 0, 1e9),
        timeout=_number(args, "timeout", 10.0, 0.1, 3600),
        escape_templates=_bool(args, "escape_templates", True),
        host=_optional_str(args, "host") or "127.0.0.1",
        port=None if port is None else int(port),
    )


def _duration(text: str) -> bool:
    return re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", text) is not None


def _optional_str(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must be a non-empty string")
    return value


def _number(args: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = args.get(name, default)
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high:
        raise ValueError(f"{name}: must be a number between {low:g} and {high:g}")
    return number


def _bool(args: Mapping[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "yes", "false", "no"):
        return value.lower() in ("true", "yes")
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false")
    return value


# --- one tick -----------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    ticks: int = 0
    query_errors: int = 0
    events: dict[str, int] = field(default_factory=lambda: {"firing": 0, "resolved": 0})
    last_tick_seconds: float = 0.0
    last_tick_at: float | None = None
    services: int = 0


class Watcher:
    """Reads the intents, asks Prometheus once, judges every service, and keeps the open episodes."""

    def __init__(self, config: Config, prom: Any = None) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.prometheus_token}"} if config.prometheus_token else None
        self.prom = prom or _prom.PromClient(config.prometheus_url, timeout=config.timeout, headers=headers)
        self.tracker = _watch.Tracker()
        self.stats = Stats()
        self.firing_meta: dict[str, dict[str, Any]] = {}
        self.load()  # a broken intent or policy file stops the source at start, naming the problem

    def load(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        try:
            intents = _intent.load_intents(self.config.intents)
        except _errors.SelfHealError as exc:
            raise ValueError(f"intents: {exc}") from exc
        try:
            policy = _policy.load_policy(self.config.policy)
        except _errors.SelfHealError as exc:
            raise ValueError(f"policy: {exc}") from exc
        return intents, policy

    def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """One evaluation of every intent; returns the events to emit (blocking: run it in a thread)."""
        started = time.monotonic()
        moment = now or datetime.now(UTC)
        try:
            intents, policy = self.load()
        except ValueError as exc:
            logger.error("keeping the last state, cannot read the intents or the policy: %s", exc)
            self.stats.query_errors += 1
            return []
        queries = _watch.watch_queries(intents, self.config.burn_window)
        try:
            indicators = self.prom.indicators(queries)
        except _errors.GatherError as exc:
            logger.warning("every indicator unknown this tick: %s", exc)
            self.stats.query_errors += 1
            indicators = {}
        judgements = [
            _watch.judge(intent, policy, indicators.get(_watch.key_of(intent)) or {}, moment, self.config.burn_rate)
            for intent in intents
            if _watch.key_of(intent) in queries
        ]
        alerts = self.tracker.step(judgements, [_watch.key_of(i) for i in intents], moment)
        self.stats.ticks += 1
        self.stats.services = len(queries)
        self.stats.last_tick_seconds = time.monotonic() - started
        self.stats.last_tick_at = time.time()
        return [self.to_event(alert) for alert in alerts]

    def to_event(self, alert: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = _alerts.normalize(_watch.payload(alert, self.config.prometheus_url))[0]
        if self.config.escape_templates:
            event = _alerts.escape_templates(event)
        meta = {"uuid": str(uuid.uuid4()), "received_at": _now()}
        event["meta"] = meta
        if event["status"] == "firing":
            self.firing_meta[event["fingerprint"]] = meta
        else:
            firing = self.firing_meta.pop(event["fingerprint"], None) or {}
            event["firing_event_id"] = firing.get("uuid")
            event["firing_received_at"] = firing.get("received_at")
        self.stats.events[event["status"]] += 1
        return event


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- health and metrics -------------------------------------------------------------------------------------------


def render_metrics(watcher: Watcher) -> str:
    stats = watcher.stats
    families: list[tuple[str, str, str, list[tuple[str, float]]]] = [
        ("ticks_total", "counter", "Evaluations of every intent.", [("", stats.ticks)]),
        ("errors_total", "counter", "Ticks that could not read the intents or Prometheus.", [("", stats.query_errors)]),
        (
            "events_total",
            "counter",
            "Events emitted, by status.",
            [(f'{{status="{k}"}}', v) for k, v in stats.events.items()],
        ),
        ("open_episodes", "gauge", "Services at risk right now.", [("", len(watcher.tracker.episodes))]),
        ("services", "gauge", "Services watched at the last tick.", [("", stats.services)]),
        ("last_tick_seconds", "gauge", "How long the last tick took.", [("", stats.last_tick_seconds)]),
    ]
    lines: list[str] = []
    for suffix, kind, help_text, samples in families:
        name = f"selfheal_intent_watch_{suffix}"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{labels} {value}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def health_app(watcher: Watcher, task: asyncio.Task[None]) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        alive = not task.done()
        body = {
            "status": "ok" if alive else "stopped",
            "ticks": watcher.stats.ticks,
            "open_episodes": len(watcher.tracker.episodes),
        }
        return web.json_response(body, status=200 if alive else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=render_metrics(watcher), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


# --- entry point --------------------------------------------------------------------------------------------------


async def run(watcher: Watcher, queue: Any) -> None:
    """Tick every interval, forever; a tick's events are queued before the next tick starts."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        for event in await asyncio.to_thread(watcher.tick):
            await queue.put(event)
        await asyncio.sleep(max(0.0, watcher.config.interval - (loop.time() - started)))


async def main(queue: Any, args: dict[str, Any]) -> None:
    """Watch until cancelled; ansible-rulebook's cancellation propagates after cleanup."""
    config = parse_args(args)
    watcher = Watcher(config)
    task = asyncio.create_task(run(watcher, queue))
    runner = None
    try:
        if config.port is not None:
            app = health_app(watcher, task)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
            await runner.setup()
            site = web.TCPSite(runner, config.host, config.port)
            try:
                await site.start()
            except OSError as exc:
                raise ValueError(f"port: cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
        logger.info("watching %s every %gs against %s", config.intents, config.interval, config.prometheus_url)
        await task
    finally:
        task.cancel()
        await asyncio.wait([task])
        if runner is not None:
            await runner.cleanup()
