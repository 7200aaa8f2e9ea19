"""intent_watch.py - an ansible-rulebook event source that watches every declared intent in Prometheus.

Every ``interval`` seconds it judges every intent of ``intents`` with ONE batched Prometheus query and emits an
event when a service starts breaching its objectives or burning its error budget fast, and one more when it
holds its objectives again, so remediation can start before an alert rule fires. The judging is the collection's
own code (``plugins/module_utils/_loop/watch.py`` on top of the decision engine's objective checks and the Prometheus
adapter ``intent_check`` uses), loaded from the collection this file sits in, as the alertmanager source does.

One report per breach episode, not per tick. A report has the shape of an Alertmanager alert (the same
``_alerts.normalize``; alert ``IntentAtRisk`` with labels ``namespace``, ``service`` and ``severity: page``) and
takes the alertmanager source's path from there: the collection's control loop (``_loop/warm.py``) checks the
service in this warm process, and only an acting decision reaches ansible-rulebook, as
``{"kind": "remediate", "decision_ids": [...], "decisions": [{"decision_id", "namespace", "service", "action"}]}``
- ids the journal
made and names from the intent file, never text read from Prometheus. The end of an episode closes its incident.
The episode memory lives in the process: after a restart a service still at risk opens a new episode. Before
its first tick a restarted watch settles what its loop left unfinished in the journal (``Loop.recover``, or on a
PostgreSQL journal the take-over of ``_loop/peers.py``), once per action even when the alertmanager source shares
the journal and restarts with it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

DOCUMENTATION = r"""
---
short_description: Watch every declared intent in Prometheus, check each breach episode, emit remediations.
description:
  - Every I(interval) seconds, judges every intent of I(intents) on one batched Prometheus query, with the
    decision engine's own objective checks and the PromQL C(intent_check) uses (intent overrides included).
  - Emits a C(firing) event (alert C(IntentAtRisk)) when a service starts breaching an objective or burning its
    error budget at least I(burn_rate) times as fast as its objectives allow over I(burn_window), and a
    C(resolved) event on the first tick where every declared objective is known and met again. Nothing is
    emitted while an episode lasts, and a service whose indicators are unknown neither opens nor ends one.
  - Each report is checked in this process like an alert of the M(zerotouch.selfheal.alertmanager) source (the
    same loop and options); only acting decisions become events, with the same shape, so the same rules and
    playbooks handle both.
  - At start, before the first tick, settles the claims and verifications its previous run left in the journal,
    as the alertmanager source does; of two sources that share the journal, one settles each action.
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
    description: Seconds a Prometheus query, or one Kubernetes API call of a check, may take.
    type: float
    default: 10
  journal:
    description: The SQLite journal (default C(~/.local/state/zerotouch-selfheal/journal.db)).
    type: str
  escalation_url:
    description: The webhook that reaches a human when the loop escalates or an action does not recover.
    type: str
  escalation_format:
    description: C(generic) or C(slack).
    type: str
    default: generic
  patches:
    description: The trusted catalog of fixes for the patch action.
    type: list
  kubeconfig:
    description: The cluster (default C(K8S_AUTH_KUBECONFIG), then C(~/.kube/config), then in-cluster).
    type: str
  lock_ttl_seconds:
    description: How long the action's playbook may hold the target's lock before it reports its change applied.
    type: int
    default: 900
  lock_lease_seconds:
    description:
      - The lease of the target's lock that the source claims. It renews the lease three times per lease while it
        acts and verifies, so the lock of a source that died is taken over by the next run within this many
        seconds rather than after I(lock_ttl_seconds).
    type: int
    default: 20
  verify_settle_seconds:
    description: Seconds to wait after an action before the first look.
    type: float
    default: 30
  verify_interval:
    description: Seconds between two looks while verifying.
    type: float
    default: 15
  verify_window_seconds:
    description: For how long the intent must hold to count as recovered.
    type: float
    default: 120
  verify_timeout_seconds:
    description: When verification gives up (not recovered).
    type: float
    default: 600
  recheck_settle_seconds:
    description: After a decision not to act, how long the next report of the service waits before its check.
    type: float
    default: 30
  platform_view_seconds:
    description:
      - How long one Prometheus round of every intent's objectives (the platform view of principle 7, which
        counts the services breaching at once) serves the checks that follow it. Checks running at the same time
        share one round and each reads its own service fresh; a round that fails is never kept, and a check
        without it escalates as with Prometheus down. C(0) shares only the round in flight.
    type: float
    default: 5
  max_running_actions:
    description:
      - How many action playbooks run at once (each costs about 160 MiB; the default is sized so that everything the
        rulebook starts stays within 1 GiB). A later acting decision stays claimed in the source, its lock renewed,
        until a playbook ends; then every decision waiting goes to the rule engine in one event (up to 25), and one
        playbook applies them all. A restart settles what waits and checks its alert again.
    type: int
    default: 3
  workers:
    description: Checks that run at once.
    type: int
    default: 4
  apply_timeout_seconds:
    description:
      - How long the action's playbook has to journal its change applied (default I(lock_ttl_seconds)).
      - A playbook on this machine that is seen to end without reporting an action fails it at once, without
        waiting for this deadline.
    type: float
  approval_secret:
    description:
      - The secret that signs the approve and deny links of escalations (HMAC-SHA256, at least 16 characters);
        defaults to the C(SELFHEAL_APPROVAL_SECRET) environment variable.
    type: str
  approval_url:
    description:
      - The base URL of the C(zerotouch.selfheal.alertmanager) receiver serving those links. Without it (or the
        secret), escalations carry the approve command only.
    type: str
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
        escalation_url: https://hooks.example.com/selfheal
  rules:
    - name: Run the remediation the source decided
      condition: event.kind == "remediate"
      action:
        run_playbook:
          name: zerotouch.selfheal.remediate
          extra_vars:
            decision_ids: "{{ event.decision_ids }}"
"""

logger = logging.getLogger("zerotouch.selfheal.intent_watch")

MODULE_UTILS = "ansible_collections.zerotouch.selfheal.plugins.module_utils"
METRICS_PREFIX = "selfheal_intent_watch"


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
_source = _load("_loop.source")
_warm = _load("_loop.warm")
_peers = _load("_loop.peers")
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
    host: str = "127.0.0.1"
    port: int | None = None
    loop: Any = field(default=None, repr=False)  # the control loop's options (_loop.warm.OPTIONS)


WATCH_OPTIONS = tuple(name for name in Config.__dataclass_fields__ if name != "loop")


def parse_args(args: Mapping[str, Any]) -> Config:
    """Validate the source's arguments (the watch's and the loop's); raise ValueError naming the first bad one."""
    _source.reject_unknown(args, WATCH_OPTIONS + tuple(o for o in _warm.OPTIONS if o not in WATCH_OPTIONS))
    intents = _source.required_str(args, "intents")
    prometheus_url = _source.required_str(args, "prometheus_url").rstrip("/")
    port = args.get("port")
    return Config(
        intents=intents,
        prometheus_url=prometheus_url,
        prometheus_token=_source.optional_str(args, "prometheus_token"),
        policy=_source.optional_str(args, "policy"),
        interval=_source.number(args, "interval", 30.0, 0.01, 86400),
        burn_window=_source.duration(args, "burn_window", _objectives.BURN_WINDOW),
        burn_rate=_source.number(args, "burn_rate", _objectives.FAST_BURN_RATE, 0, 1e9),
        timeout=_source.number(args, "timeout", 10.0, 0.1, 3600),
        host=_source.optional_str(args, "host") or "127.0.0.1",
        port=None if port in (None, "") else _source.integer(args, "port", 0, 0, 65535),
        loop=_warm.parse_options(args),
    )


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
        meta = {"uuid": str(uuid.uuid4()), "received_at": _source.utc_now()}
        event["meta"] = meta
        if event["status"] == "firing":
            self.firing_meta[event["fingerprint"]] = meta
        else:
            firing = self.firing_meta.pop(event["fingerprint"], None) or {}
            event["firing_event_id"] = firing.get("uuid")
            event["firing_received_at"] = firing.get("received_at")
        self.stats.events[event["status"]] += 1
        return event


# --- health and metrics -------------------------------------------------------------------------------------------


def render_metrics(watcher: Watcher, loop: Any = None) -> str:
    stats = watcher.stats
    families: list[Any] = [
        ("ticks_total", "counter", "Evaluations of every intent.", [("", stats.ticks)]),
        ("errors_total", "counter", "Ticks that could not read the intents or Prometheus.", [("", stats.query_errors)]),
        ("events_total", "counter", "Reports made, by status.", _source.by_label("status", stats.events)),
        ("open_episodes", "gauge", "Services at risk right now.", [("", len(watcher.tracker.episodes))]),
        ("services", "gauge", "Services watched at the last tick.", [("", stats.services)]),
        ("last_tick_seconds", "gauge", "How long the last tick took.", [("", stats.last_tick_seconds)]),
    ]
    text: str = _source.render_metrics(METRICS_PREFIX, families)
    return text + (loop.metrics(METRICS_PREFIX + "_loop") if loop is not None else "")


def health_app(watcher: Watcher, task: asyncio.Task[None], loop: Any = None) -> Any:
    def health() -> tuple[bool, dict[str, Any]]:
        alive = not task.done()
        status = "ok" if alive else "stopped"
        return alive, {"status": status, "ticks": watcher.stats.ticks, "open_episodes": len(watcher.tracker.episodes)}

    return _source.health_app(health, lambda: render_metrics(watcher, loop))


# --- entry point --------------------------------------------------------------------------------------------------


async def run(watcher: Watcher, offer: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Tick every interval, forever; a tick's reports are offered to the loop before the next tick starts."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        for event in await asyncio.to_thread(watcher.tick):
            await offer(event)
        await asyncio.sleep(max(0.0, watcher.config.interval - (loop.time() - started)))


async def main(queue: Any, args: dict[str, Any]) -> None:
    """Watch and check until cancelled; ansible-rulebook's cancellation propagates after cleanup."""
    config = parse_args(args)
    watcher = Watcher(config)
    control = _warm.Loop(config.loop, queue.put, prom=watcher.prom)
    # On a shared (PostgreSQL) journal the loops take over a dead one's actions; on a file, recover() settles what
    # the run before this one left (either way, an action shared with the alertmanager source is settled once).
    peers = _peers.Peers(control) if _peers.shared(config.loop) else None
    task = None
    runner = None
    try:
        if peers is not None:
            await peers.start()
        else:
            await control.recover()  # before the first tick: what it resumes takes that service's reports
        task = asyncio.create_task(run(watcher, peers.offer if peers is not None else control.offer))
        if config.port is not None:
            runner = await _source.start_site(health_app(watcher, task, control), config.host, config.port)
        logger.info("watching %s every %gs against %s", config.intents, config.interval, config.prometheus_url)
        await task
    finally:
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        if runner is not None:
            await runner.cleanup()
        if peers is not None:
            await peers.stop()
        await control.stop()
