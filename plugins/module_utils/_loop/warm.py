# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is loaded by the collection's event sources (extensions/eda/plugins/event_source); import it only from there.
"""The control loop in the rulebook's own process: check, claim, hand over, verify, for every alert.

Both event sources feed alerts (``_alerts.normalize`` events, raw text and all) to :class:`Loop.offer`. The loop
runs THE intent check (:func:`._check.evaluate`, the function behind ``intent_check``) in a bounded worker pool
with warm clients - one Kubernetes client, one Prometheus session, one journal connection per worker thread,
intents and policy loaded once and again when their files change - and only an acting decision reaches the
rule engine, as an event that carries ids the collection made and names from the intent file::

    {"kind": "remediate", "decision_ids": [42],
     "decisions": [{"decision_id": 42, "namespace": "shop", "service": "checkout", "action": "rollback"}]}

Nothing else of the alert goes there: ansible-rulebook hands the whole event to the playbook it starts as extra
vars, which ansible-core renders as templates. The playbook reads the decisions by their ids from the journal
(``decision_apply``, :mod:`._loop.handoff`).

- ``none`` (cooldown included), ``locked`` (another run holds the target) and ``escalate`` are journaled, counted,
  and start no playbook; an escalation is posted from here through the collection's notify code. Each of them is
  followed by the settle below, so one failing service pages a human once, not once per alert. Loops sharing a
  journal settle together: an escalation about a service that another loop sent less than
  ``recheck_settle_seconds`` ago is not sent again (its action is journaled ``skipped``, saying when).
- Per service, one check at a time. A firing alert that comes while its service is checked, acted on or verified
  is linked to that decision (and its incident) in the journal and starts nothing. After a decision not to act,
  the next firing alert is checked once ``recheck_settle_seconds`` have passed (it waits, it is not dropped);
  after ``none``, ``cooldown`` or ``locked`` the same alert is checked again then if nothing newer came and it has
  not resolved, since Alertmanager does not send a firing alert twice.
- An acting decision is claimed here (the lock and the journal's ``pending`` action); the playbook acts and
  journals ``applied``, or ``failed`` with the reason. This loop sees that in the journal, verifies with the
  ``verify`` role's core (:func:`._verify.watch` over :func:`._verify.looker`), journals the outcome, escalates
  what failed or did not recover and gives the lock back.
- Checks running together share one Prometheus round of every intent's objectives (the platform view of
  principle 7, :class:`._platform.SharedPlatform`); each reads its own service fresh.
- At most ``max_running_actions`` action playbooks run at once (~160 MiB each): a later acting decision waits
  here, claimed and its lease renewed, until an earlier playbook has ended. Then every decision waiting goes to
  the rule engine in one event (up to ``ACTIONS_PER_PLAYBOOK``), and one playbook applies them all: a burst costs
  a few playbooks, not one per service.
- A resolved alert closes its incident in the journal (:func:`._incident.close`).
- A check that fails (the cluster or Prometheus down, a broken intent) is journaled as an ``escalate`` decision
  with the reason, and escalated: the loop never acts blind and never fails silently.
- A journal that cannot be reached (:class:`._errors.JournalUnavailable`) leaves every guardrail unknown: nothing
  is acted on, the service is escalated once, and its alerts wait (in the source's spool) until the journal
  answers, then are checked (:mod:`._loop.outage`).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

from ansible_collections.zerotouch.selfheal.plugins.module_utils import _notify, _prom
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import lock as _lock
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    JournalError,
    JournalUnavailable,
    SelfHealError,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import incident as _incident
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal, is_url
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import approve as _approve
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import handoff as _handoff
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import links as _links
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import outage as _outage
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import platform as _platform
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs as _runs
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import source as _source
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import verify as _verify
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import (
    find_intent,
    intent_files,
    load_intents,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import load_policy, policy_for
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime, parse_datetime

logger = logging.getLogger("zerotouch.selfheal.loop")

EVENT_KIND = "remediate"
JOURNAL_DOWN = "journal_down"  # not checked: the journal is unreachable, the alert waits for it
OUTCOMES = ("none", "cooldown", "locked", "escalate", "act", "error", JOURNAL_DOWN)
# Outcomes after which a still-firing alert is checked again once the settle is over. Not escalate: a human has it.
RECHECKED = ("none", "cooldown", "locked")
# What a restarted loop does with an action the loop before it claimed (Loop.recover).
APPLIED, RERUN, SETTLED, DONE = "applied", "rerun", "settled", "done"
FAILED_RULE = "check-failed"
ESCALATION_TIMEOUT = 10.0
# Action playbooks in flight at once by default: ansible-rulebook, its JVM and the loop take ~0.5 GiB, each playbook
# ~160 MiB more, so three keep everything the rulebook starts within 1 GiB (docs/benchmarks.md, the storm).
MAX_RUNNING_ACTIONS = 3
# Coalesced alerts journaled per transaction, at most.
LINK_BATCH = 500
# Waiting acting decisions one playbook applies at most (each is a few API calls in decision_apply).
ACTIONS_PER_PLAYBOOK = 25
# How often a handed-over action is looked at while it holds one of those places (its playbook's end frees it).
RUNNING_POLL_SECONDS = 0.2


# --- options --------------------------------------------------------------------------------------------------------

# The loop's source options, as the rulebooks pass them (the remediate playbook's variables of the same names).
OPTIONS = (
    "intents",
    "policy",
    "prometheus_url",
    "prometheus_token",
    "journal",
    "escalation_url",
    "escalation_format",
    "patches",
    "kubeconfig",
    "lock_ttl_seconds",
    "lock_lease_seconds",
    "verify_settle_seconds",
    "verify_interval",
    "verify_window_seconds",
    "verify_timeout_seconds",
    "recheck_settle_seconds",
    "platform_view_seconds",
    "max_running_actions",
    "workers",
    "timeout",
    "apply_timeout_seconds",
    "approval_secret",
    "approval_url",
)


@dataclass(frozen=True)
class Config:
    intents: str
    prometheus_url: str | None = None
    prometheus_token: str | None = field(default=None, repr=False)
    policy: str | None = None
    journal: str | None = None
    escalation_url: str | None = field(default=None, repr=False)  # may carry a secret path
    escalation_format: str = "generic"
    patches: tuple[Mapping[str, Any], ...] = ()
    kubeconfig: str | None = None
    lock_ttl_seconds: int = 900
    lock_lease_seconds: int = 20  # the loop's claims: renewed while it acts and verifies, so a dead loop shows
    verify: _verify.Settings = _verify.Settings(30, 15, 120, 600)
    recheck_settle_seconds: float = 30.0
    # How long one Prometheus round of every intent's objectives (the platform view) serves the checks after it.
    platform_view_seconds: float = 5.0
    # How many action playbooks run at once (~160 MiB each); later claimed decisions wait here, renewed, in order.
    max_running_actions: int = MAX_RUNNING_ACTIONS
    workers: int = 4
    timeout: float = 10.0
    apply_timeout_seconds: float | None = None  # default: the lock's TTL
    poll_seconds: float = 1.0
    # Approval links (docs/approvals.md): signed with the secret, pointing at the receiver's base URL.
    approval_secret: str | None = field(default=None, repr=False)
    approval_url: str | None = None

    @property
    def renew_every(self) -> float:
        """How often a held claim is renewed: three times per lease, so one slow renewal does not lose it."""
        return self.lock_lease_seconds / 3

    @property
    def apply_timeout(self) -> float:
        return self.apply_timeout_seconds if self.apply_timeout_seconds is not None else float(self.lock_ttl_seconds)


def parse_options(args: Mapping[str, Any], *, prometheus_url: str | None = None) -> Config:
    """The loop's options from a source's arguments (validated; ValueError names the first bad one)."""
    verify_names = ("verify_settle_seconds", "verify_interval", "verify_window_seconds", "verify_timeout_seconds")
    defaults = (30.0, 15.0, 120.0, 600.0)
    values = [_source.number(args, name, d, 0, 86400) for name, d in zip(verify_names, defaults, strict=True)]
    try:
        settings = _verify.Settings(*values)
    except SelfHealError as exc:
        raise ValueError(f"verify_{str(exc).split(': ', 1)[-1]}") from exc
    patches = _source.str_list(args, "patches")
    if not all(isinstance(p, Mapping) and p.get("from") and p.get("image") for p in patches):
        raise ValueError("patches: every entry must be a mapping with from and image")
    apply_timeout = args.get("apply_timeout_seconds")
    config = Config(
        intents=_source.required_str(args, "intents"),
        prometheus_url=(prometheus_url or _source.optional_str(args, "prometheus_url") or "").rstrip("/") or None,
        prometheus_token=_source.optional_str(args, "prometheus_token"),
        policy=_source.optional_str(args, "policy"),
        journal=_source.optional_str(args, "journal"),
        escalation_url=_source.optional_str(args, "escalation_url"),
        escalation_format=_source.choice(args, "escalation_format", "generic", _notify.FORMATS),
        patches=tuple(patches),
        kubeconfig=_source.optional_str(args, "kubeconfig"),
        lock_ttl_seconds=_source.integer(args, "lock_ttl_seconds", 900, 10, 86400),
        lock_lease_seconds=_source.integer(args, "lock_lease_seconds", 20, 3, 86400),
        verify=settings,
        recheck_settle_seconds=_source.number(args, "recheck_settle_seconds", 30.0, 0, 86400),
        platform_view_seconds=_source.number(args, "platform_view_seconds", 5.0, 0, 300),
        max_running_actions=_source.integer(args, "max_running_actions", MAX_RUNNING_ACTIONS, 1, 256),
        workers=_source.integer(args, "workers", 4, 1, 256),
        timeout=_source.number(args, "timeout", 10.0, 0.1, 3600),
        apply_timeout_seconds=None
        if apply_timeout in (None, "")
        else _source.number(args, "apply_timeout_seconds", 0, 1, 86400),
    )
    if config.prometheus_url is None:
        raise ValueError("prometheus_url: required, a non-empty string")
    secret = _source.optional_str(args, "approval_secret") or os.environ.get(_links.SECRET_ENV) or None
    if secret is not None and len(secret) < _links.MIN_SECRET_LENGTH:
        raise ValueError(f"approval_secret: must be at least {_links.MIN_SECRET_LENGTH} characters")
    approval_url = (_source.optional_str(args, "approval_url") or "").rstrip("/") or None
    return replace(config, approval_secret=secret, approval_url=approval_url)


# --- intents and policy, loaded once and again when their files change -------------------------------------------


class Catalog:
    """The intents and the policy. A file that changes is read again at the next check; a file that breaks then
    keeps the last good catalog (and says so in the log), but a broken one at start stops the source."""

    def __init__(self, intents: str, policy: str | None) -> None:
        self.intents_path, self.policy_path = intents, policy
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] = ()
        self.intents: list[dict[str, Any]] = []
        self.policy: dict[str, Any] = {}
        self.loads = 0
        try:
            self.current()
        except SelfHealError as exc:
            raise ValueError(f"intents: {exc}" if "policy" not in str(exc) else f"policy: {exc}") from exc

    def stamp(self) -> tuple[Any, ...]:
        files = list(intent_files(self.intents_path)) + ([Path(self.policy_path)] if self.policy_path else [])
        return tuple((str(f), *_mtime(f)) for f in files)

    def current(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        intents, policy, _version = self.versioned()
        return intents, policy

    def versioned(self) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
        """The intents, the policy and the catalog's version (how many times it was read), taken together."""
        with self._lock:
            try:
                stamp = self.stamp()
                if stamp != self._stamp:
                    intents, policy = load_intents(self.intents_path), load_policy(self.policy_path)
                    self.intents, self.policy, self._stamp = intents, policy, stamp
                    self.loads += 1
            except SelfHealError as exc:
                if not self.loads:
                    raise
                logger.error("keeping the intents and policy read before, cannot read them again: %s", exc)
            return self.intents, self.policy, self.loads


def _mtime(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, -1)
    return (info.st_mtime_ns, info.st_size)


# --- warm clients ---------------------------------------------------------------------------------------------------


class Clients:
    """One Kubernetes client and one Prometheus session for the process; one journal connection per worker thread
    (SQLite connections belong to the thread that opened them)."""

    def __init__(self, config: Config, kube_factory: Callable[[], Any] | None = None, prom: Any = None) -> None:
        self.config = config
        self._kube_factory = kube_factory or self._connect
        self._kube: Any = None
        self._kube_lock = threading.Lock()
        headers = {"Authorization": f"Bearer {config.prometheus_token}"} if config.prometheus_token else None
        self.prom = (
            prom
            if prom is not None
            else _prom.PromClient(str(config.prometheus_url), timeout=config.timeout, headers=headers)
        )
        self._local = threading.local()
        self._journals: list[Journal] = []
        self._journals_lock = threading.Lock()

    def _connect(self) -> Any:
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect

        env = os.environ
        return connect(
            {
                "kubeconfig": self.config.kubeconfig or env.get("K8S_AUTH_KUBECONFIG"),
                "context": env.get("K8S_AUTH_CONTEXT"),
                "host": env.get("K8S_AUTH_HOST"),
                "api_key": env.get("K8S_AUTH_API_KEY"),
                "validate_certs": None,
            },
            request_timeout=self.config.timeout,  # the check's bound holds for the API server as for Prometheus
        )

    def kube(self) -> Any:
        with self._kube_lock:
            if self._kube is None:
                self._kube = self._kube_factory()
            return self._kube

    def journal(self) -> Journal:
        if is_url(self.config.journal):
            # PostgreSQL: one pooled journal for every thread (a connection per worker and verification thread
            # would outgrow the server's max_connections with two receivers). A call waits at most the loop's
            # timeout for a connection: a server that is down is an outage within that, not after 30 s.
            with self._journals_lock:
                if not self._journals:
                    self._journals.append(Journal(self.config.journal, self.config.timeout, pooled=True))
                return self._journals[0]
        journal = getattr(self._local, "journal", None)
        if journal is None:
            journal = Journal(self.config.journal)
            self._local.journal = journal
            with self._journals_lock:
                self._journals.append(journal)
        return journal

    def close(self) -> None:
        with self._journals_lock:
            for journal in self._journals:
                try:
                    journal.close()
                except Exception:  # noqa: BLE001 - a connection of a thread that is gone; nothing to save
                    logger.debug("cannot close a journal connection", exc_info=True)
            self._journals.clear()


# --- escalations ----------------------------------------------------------------------------------------------------


def post_json(url: str, payload: Mapping[str, Any], timeout: float = ESCALATION_TIMEOUT) -> int:
    """POST a JSON document; returns the HTTP status, raises SelfHealError naming the host (never the URL's path
    or credentials) when it is not delivered (no answer, or not 2xx). Plain http.client: this runs in the event
    source's process, outside any module."""
    parts = urlsplit(url)
    where = _notify.webhook_host(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SelfHealError(f"cannot send the escalation to {where}: not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json"}
    if parts.username:  # credentials in the URL (https://user:secret@host/...), as urllib would send them
        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        connection.request("POST", path, body=json.dumps(payload).encode(), headers=headers)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise SelfHealError(f"cannot send the escalation to {where}: {exc}") from exc
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise SelfHealError(f"cannot send the escalation to {where}: HTTP {response.status} {response.reason}")
    return int(response.status)


# --- per-service state ----------------------------------------------------------------------------------------------


@dataclass
class Service:
    """What the loop is doing about one service."""

    phase: str = "idle"  # idle | checking | acting | verifying | settling
    decision_id: int | None = None
    waiting: list[dict[str, Any]] = field(default_factory=list)  # came during the check: linked once journaled
    pending: dict[str, Any] | None = None  # the latest firing alert to check once the settle is over
    timer: asyncio.Task[None] | None = None
    journaled: asyncio.Future[None] | None = None  # done once the running check's decision (and links) are journaled


@dataclass
class Stats:
    alerts: dict[str, int] = field(default_factory=lambda: {"firing": 0, "resolved": 0, "ignored": 0})
    checks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    coalesced: int = 0
    events: int = 0
    closed: int = 0
    verifications: dict[str, int] = field(
        default_factory=lambda: {_verify.RECOVERED: 0, _verify.NOT_RECOVERED: 0, "failed": 0}
    )
    escalations: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0, "held": 0})
    check_cpu: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    check_wall: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    check_phases: dict[str, deque[float]] = field(
        default_factory=lambda: {name: deque(maxlen=2048) for name in _check.Phases.NAMES}
    )

    def families(self, busy: int, services: Mapping[str, Service]) -> list[_source.Family]:
        phases: dict[str, float] = dict.fromkeys(("checking", "acting", "verifying", "settling"), 0)
        for state in services.values():
            if state.phase in phases:
                phases[state.phase] += 1
        return [
            (
                "alerts_total",
                "counter",
                "Alerts offered to the loop, by status.",
                _source.by_label("status", self.alerts),
            ),
            (
                "checks_total",
                "counter",
                "Intent checks, by what they concluded.",
                _source.by_label("decision", self.checks),
            ),
            ("coalesced_total", "counter", "Alerts linked to a running check or action.", [("", self.coalesced)]),
            ("events_total", "counter", "Remediations handed to the rule engine.", [("", self.events)]),
            ("incidents_closed_total", "counter", "Incidents closed by a resolved alert.", [("", self.closed)]),
            (
                "verifications_total",
                "counter",
                "Verifications after an action, by outcome.",
                _source.by_label("outcome", self.verifications),
            ),
            (
                "escalations_total",
                "counter",
                "Escalations by result (held: not sent, a human was told about the service within the settle).",
                _source.by_label("result", self.escalations),
            ),
            ("checks_running", "gauge", "Checks running in the worker pool.", [("", busy)]),
            ("services", "gauge", "Services being worked on, by phase.", _source.by_label("phase", phases)),
            ("check_cpu_seconds", "summary", "CPU time of one check.", _quantiles(self.check_cpu)),
            ("check_seconds", "summary", "Wall time of one check.", _quantiles(self.check_wall)),
            (
                "check_phase_seconds",
                "summary",
                "Wall time of one check in each phase (cluster, prometheus, history, decide, record, claim).",
                [
                    ('{phase="' + name + '",' + label[1:], value)
                    for name, values in self.check_phases.items()
                    for label, value in _quantiles(values)
                ],
            ),
        ]


def _quantiles(values: deque[float]) -> list[tuple[str, float]]:
    ordered = sorted(values)
    if not ordered:
        return [('{quantile="0.5"}', 0.0), ('{quantile="0.99"}', 0.0)]
    pick = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99)]
    return [('{quantile="0.5"}', round(pick[0], 6)), ('{quantile="0.99"}', round(pick[1], 6))]


# --- the loop -------------------------------------------------------------------------------------------------------


class Handed(TypedDict):
    """One decision of an :class:`ActingEvent`."""

    decision_id: int
    namespace: str
    service: str
    action: str


class ActingEvent(TypedDict):
    """What the rule engine gets of acting decisions, and all it gets (ansible-rulebook hands the whole event to
    the playbook as extra vars, which ansible-core templates): ids the collection made and names from the intent.
    One playbook applies them all."""

    kind: str
    decision_ids: list[int]
    decisions: list[Handed]


Emit = Callable[[ActingEvent], Awaitable[None]]


def instance_id() -> str:
    """A loop's name in the journal: the machine and process, and a random part (a pid is reused)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class Loop:
    """Checks what is offered, hands acting decisions to ``emit``, verifies them; see the module docstring."""

    def __init__(
        self,
        config: Config,
        emit: Emit,
        *,
        kube_factory: Callable[[], Any] | None = None,
        prom: Any = None,
        post: Callable[[str, Mapping[str, Any]], int] = post_json,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.emit = emit
        self.catalog = Catalog(config.intents, config.policy)
        self.clients = Clients(config, kube_factory, prom)
        # Checks running together share one round of every intent's objectives (their own indicators stay fresh).
        self.platform = _platform.SharedPlatform(config.platform_view_seconds, wait=2 * config.timeout)
        self.post = post
        self.sleep = sleep
        self.stats = Stats()
        self.services: dict[str, Service] = {}
        self._checks = ThreadPoolExecutor(config.workers, thread_name_prefix="selfheal-check")
        self._watchers = ThreadPoolExecutor(64, thread_name_prefix="selfheal-verify")
        self._slots = asyncio.Semaphore(config.workers)
        self._acting = asyncio.Semaphore(config.max_running_actions)  # action playbooks in flight
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[_Place]]] = []  # claimed, waiting for a place
        self._dispatching: asyncio.Task[None] | None = None
        self._links: list[tuple[int, dict[str, Any], str, asyncio.Future[None]]] = []  # to journal, in order
        self._linking: asyncio.Future[None] | None = None
        self._busy = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        # An approval's re-check is one check and one claim, each bounded by the timeout: after this, a proposal
        # still approved and unsettled has nobody working on it.
        self.approval_grace_seconds = 6 * config.timeout + 30
        self.outage = _outage.Outage()  # while the journal cannot be reached
        self.recovery_pending = False  # recover() met an unreachable journal: it runs again once it answers
        self.probe_seconds = _outage.PROBE_SECONDS
        # This loop's name in the journal, renewed while it lives (by recover()'s heartbeat, or by its Peers): of
        # two loops that recover the same unfinished action, one wins it (take_over_action).
        self.instance = instance_id()
        self._heartbeat: asyncio.Task[None] | None = None

    # --- intake ---------------------------------------------------------------------------------------------

    async def offer(self, alert: dict[str, Any]) -> asyncio.Future[None] | None:
        """Take one alert. Returns None once it is journaled, or a future done once it is: given to a worker (its
        check), or queued to be linked to the decision at work on its service (its link, written in a batch);
        waits while every worker is busy, so the caller's queue (and spool) keeps what cannot be checked yet."""
        status = alert.get("status")
        namespace, service = alert.get("namespace"), alert.get("service")
        if status not in ("firing", "resolved") or not _named(namespace) or not _named(service):
            self.stats.alerts["ignored"] += 1
            return None
        if self.outage.down:  # not checked: escalated (once per service) and kept, counted when offered again
            if status == "firing":
                await self._in_pool(self._blind, alert, str(self.outage.error))
            return self.outage.park([alert])
        self.stats.alerts[str(status)] += 1
        key = f"{namespace}/{service}"
        state = self.services.setdefault(key, Service())
        if status == "resolved":
            if state.pending is not None and state.pending.get("fingerprint") == alert.get("fingerprint"):
                state.pending = None
            try:
                await self._in_pool(self._close, alert)
            except JournalUnavailable as exc:
                self._journal_lost(exc)
                return self.outage.park([alert])
            return None
        if state.phase == "checking":
            state.waiting.append(alert)
            state.pending = alert
            self.stats.coalesced += 1
            return state.journaled
        if state.phase in ("acting", "verifying", "settling") and state.decision_id is not None:
            why = {"settling": "came during the settle after a decision not to act; checked when it ends"}
            linked = self._queue_link(state.decision_id, alert, why.get(state.phase, f"came while {state.phase}"))
            self.stats.coalesced += 1
            if state.phase == "settling":
                state.pending = alert
            return linked
        await self._slots.acquire()  # a full pool holds the intake here
        state.phase = "checking"
        state.journaled = asyncio.get_running_loop().create_future()
        self._spawn(self._check_and_follow(key, state, alert))
        return state.journaled

    async def recover(self) -> None:
        """Settle what a previous run journaled and did not finish (call once, before the first alert; the work
        goes on in the background, each action once its claim's lease has lapsed, which shows its loop dead).

        First the playbook each unfinished action journaled as its run is stopped (ansible-runner started it in a
        session of its own, so it outlived the loop that started it). Then a claimed action whose change was
        reported applied is verified as if the loop had not stopped. One whose playbook had started but not
        reported may have changed the cluster: the same decision is handed to the rule engine again (the action
        roles are idempotent: what was done is not done twice) and then verified - deciding again would judge a
        half-made change as a new fault (a rollback of the rollback). One that no playbook ever took up is
        journaled ``skipped``, its lock is given back, and its alert is checked again.

        A journal that does not answer at start does not stop the source: alerts are taken and parked as in any
        outage, and this runs once the journal answers, before the parked alerts are checked.

        Loops that share one journal file (the intent watch's and the alertmanager source's rulebooks) may restart
        together: each says it is alive in the journal, and an action is settled only by the one that wins it
        (``take_over_action``), never by both."""
        await self.stay_alive()  # before it takes anything over: what a loop not known alive took can be taken again
        self._spawn(self._settle_abandoned_approvals(datetime.now(UTC)))
        try:
            unfinished = await self._in_pool(self._unfinished)
        except JournalUnavailable as exc:
            self.recovery_pending = True
            self._journal_lost(exc)
            return
        self.recovery_pending = False
        for result in unfinished:
            intent = result["snapshot"]["intent"]
            state = self.services.setdefault(f"{intent['namespace']}/{intent['service']}", Service())
            # Its alerts are linked to it meanwhile, as to any action in flight.
            state.phase, state.decision_id = "acting", int(result["decision_id"])
            self._spawn(self._recover_one(state, result))

    async def _settle_abandoned_approvals(self, started: datetime) -> None:
        """Settle the proposals approved before this loop started whose re-check never ended (the process that
        answered them stopped in between): journaled ``stale``, so none stays approved with nothing acting on it.
        It waits ``approval_grace_seconds`` first: a live process sharing the journal may be re-checking one."""
        await asyncio.sleep(self.approval_grace_seconds)
        detail = "the process that approved it stopped before its re-check ended: nothing was changed; approve anew"

        def sweep() -> list[int]:
            return self.clients.journal().settle_abandoned_approvals(started, detail)

        try:
            settled = await self._in_pool(sweep)
        except SelfHealError as exc:
            logger.error("cannot settle the approvals a stopped loop left: %s", exc)
            return
        for decision_id in settled:
            logger.warning("proposal %d: approved, never re-checked: settled stale", decision_id)

    async def stay_alive(self, lease: timedelta | None = None) -> None:
        """Say now that this loop is alive (``renew``), then again every ``renew_every`` until it stops; once per
        loop (recover() and Peers.start() both call it). A journal that does not answer yet stops nothing: the
        renewals go on trying."""
        if self._heartbeat is not None:
            return
        try:
            await self._in_pool(self.renew, lease)
        except SelfHealError as exc:
            logger.error("loop %s cannot say it is alive yet: %s", self.instance, exc)
        self._heartbeat = asyncio.ensure_future(self._stay_alive(lease))

    async def retire(self) -> None:
        """Stop saying this loop is alive and take its name out of the journal: what it leaves is taken over at
        once, not once its lease lapses. Does nothing when it never said it was alive, or has retired."""
        if self._heartbeat is None:
            return
        self._heartbeat.cancel()
        await asyncio.wait([self._heartbeat])
        self._heartbeat = None
        try:
            await self._in_pool(lambda: self.clients.journal().retire_instance(self.instance))
        except SelfHealError as exc:
            logger.error("cannot retire loop %s from the journal: %s", self.instance, exc)

    async def _stay_alive(self, lease: timedelta | None) -> None:
        while True:
            await asyncio.sleep(self.config.renew_every)
            try:
                await self._in_pool(self.renew, lease)
            except SelfHealError as exc:  # the journal may answer at the next round, well within the lease
                logger.error("loop %s cannot say it is alive: %s", self.instance, exc)
            except Exception:  # noqa: BLE001 - a failed round must not stop the renewals
                logger.exception("loop %s: a renewal failed", self.instance)

    def renew(self, lease: timedelta | None = None) -> None:
        """Say this loop is alive for a lease more (``lock_lease_seconds`` unless told), and which unfinished actions
        it follows: a claim's lease renewed late (a loaded machine) must not look like a dead loop's to another loop
        on the journal."""
        journal = self.clients.journal()
        journal.renew_instance(self.instance, lease or timedelta(seconds=self.config.lock_lease_seconds))
        journal.hold_actions(self.instance, sorted(self.following()))

    def following(self) -> set[int]:
        """The decisions whose action this loop runs or verifies."""
        return {
            int(s.decision_id)
            for s in list(self.services.values())
            if s.phase in ("acting", "verifying") and s.decision_id is not None
        }

    async def _recover_one(self, state: Service, result: dict[str, Any]) -> None:
        # A loop that shares the journal (the other source, another receiver) and is alive renews its claims: only
        # a claim whose lease has lapsed is the dead loop's. A loop killed a moment ago leaves leases that lapse
        # within lock_lease_seconds.
        while (left := await self._in_pool(self._lease_left, result)) is not None:
            await asyncio.sleep(min(left, self.config.renew_every) + 0.1)
        action_id = int(result["claim"]["action_id"])
        while not await self._in_pool(self._take_over, action_id):
            # Another loop on the journal lives and has it (it restarted too, or it follows the action; or the dead
            # loop's own name outlives its lease by a moment): it settles it, unless it dies first.
            if await self._in_pool(self._finished, action_id):
                logger.info("action %d: settled by another loop on the journal", action_id)
                state.phase, state.decision_id = "idle", None
                return
            await asyncio.sleep(self.config.renew_every)
        settled = await self._in_pool(self._settle_previous, result)
        if settled in (APPLIED, RERUN):
            await self._resume(state, result, hand_over=settled == RERUN)
            return
        state.phase = "idle"
        alert = result["snapshot"].get("alert")
        if settled == SETTLED and alert and alert.get("status") == "firing":
            from ansible_collections.zerotouch.selfheal.plugins.module_utils._alerts import normalize

            await self.offer(normalize({"alerts": [alert]})[0])

    def _take_over(self, action_id: int) -> bool:
        return self.clients.journal().take_over_action(action_id, self.instance)

    def _finished(self, action_id: int) -> bool:
        row = self.clients.journal().action(action_id)
        return row is None or row["outcome"] != "pending"

    def _lease_left(self, result: dict[str, Any]) -> float | None:
        """Seconds until the claim's lease lapses; None when it has (or the action is over, or nobody holds it)."""
        row = self.clients.journal().action(int(result["claim"]["action_id"]))
        if row is None or row["outcome"] != "pending":
            return None
        intent = result["snapshot"]["intent"]
        namespace, target = str(intent["namespace"]), _check.workload_of(dict(intent))
        try:
            lease = self.clients.kube().get(
                "coordination.k8s.io/v1", "Lease", namespace, _lock.lease_name(target), missing_ok=True
            )
        except SelfHealError as exc:
            logger.error("cannot read the lock of %s/%s, taken as lapsed: %s", namespace, target, exc)
            return None
        until = _lock.expires_at(lease)
        if _lock.holder_of(lease) != result["claim"]["holder"] or until is None:
            return None
        left = (until - datetime.now(UTC)).total_seconds()
        return left if left > 0 else None

    async def _resume(
        self, state: Service, result: dict[str, Any], hand_over: bool = False, place: _Place | None = None
    ) -> None:
        try:
            await self._follow(state, result, hand_over, place)
        finally:
            state.phase = "idle"

    def _unfinished(self) -> list[dict[str, Any]]:
        journal = self.clients.journal()
        found = []
        for action in journal.unfinished_actions():
            decision = journal.decision(int(action["decision_id"]))
            if decision is None or decision["rule"] == _check.MANUAL_RULE or action["action"] == "escalate":
                continue
            intent = (decision.get("snapshot") or {}).get("intent")
            if not intent:
                continue
            holder = _handoff.claim_holder(int(decision["id"]))
            found.append(
                {
                    "decision": decision["decision"],
                    "decision_id": decision["id"],
                    "snapshot": decision["snapshot"],
                    "claim": {"acquired": True, "holder": holder, "action_id": action["id"]},
                }
            )
        return found

    def _settle_previous(self, result: dict[str, Any]) -> str:
        """Stop the playbook of an action the loop before this one claimed, and say what is left to do with it:
        APPLIED (verify it), RERUN (its playbook started and may have changed something: run the same action again,
        still holding its lock), SETTLED (journaled skipped here; its lock is given back) or DONE (finished)."""
        journal = self.clients.journal()
        action_id = int(result["claim"]["action_id"])
        detail = "skipped: the loop restarted before the action's playbook reported its change applied"
        for _attempt in range(3):
            row = journal.action(action_id)
            if row is None or row["outcome"] != "pending":
                return DONE  # finished by the loop that claimed it, which gave its lock back
            run = row.get("run")
            stopped = _runs.stop(run) if run and run.get("pid") is not None else []
            if run:
                row = journal.action(action_id) or row  # it may have reported its change before it was stopped
                if stopped:
                    logger.warning("action %d: stopped its playbook (pids %s)", action_id, stopped)
            if row.get("applied"):
                return APPLIED
            if run:
                intent = result["snapshot"]["intent"]
                if self._retake(intent, result):
                    result["stale_run"] = run  # the dead playbook's: the next one names itself over it
                    return RERUN
                journal.finish_action(action_id, outcome="skipped", detail=f"{detail}; its lock was taken meanwhile")
                return SETTLED
            if journal.settle_unstarted(action_id, detail):
                break
            # A playbook named itself (or reported) between the read and the settle: look again.
        self._release(result["snapshot"]["intent"], result)
        return SETTLED

    def _retake(self, intent: Mapping[str, Any], result: dict[str, Any]) -> bool:
        """Hold the claim's lock again (its lease may have lapsed while no loop ran); False when another has it."""
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_lock

        target = {"namespace": intent["namespace"], "name": _check.workload_of(dict(intent))}
        params = {**target, "holder": result["claim"]["holder"], "ttl_seconds": self.config.lock_lease_seconds}
        try:
            return bool(run_lock(self.clients.kube(), params, False, False)["acquired"])
        except SelfHealError as exc:
            logger.error("cannot take back the lock of %s/%s: %s", target["namespace"], target["name"], exc)
            return False

    async def stop(self) -> None:
        """Cancel what runs, wait for it, shut the pools and close the connections."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await self.retire()
        self._checks.shutdown(wait=False, cancel_futures=True)
        self._watchers.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.clients.close)

    def metrics(self, prefix: str) -> str:
        families = self.stats.families(self._busy, self.services) + [
            (
                "actions_queued",
                "gauge",
                "Claimed decisions waiting for max_running_actions.",
                [("", len(self._waiting))],
            ),
            (
                "platform_rounds_total",
                "counter",
                "Prometheus rounds of the platform view, shared by the checks running together.",
                [("", self.platform.rounds)],
            ),
        ]
        return _source.render_metrics(prefix, families)

    async def idle(self) -> None:
        """Wait until nothing is checked, acted on or verified (for tests and benchmarks)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    # --- one service ----------------------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("the loop's task failed", exc_info=task.exception())

    async def _check_and_follow(self, key: str, state: Service, alert: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        self._busy += 1
        try:
            outcome, result = await loop.run_in_executor(self._checks, self._check, alert)
        finally:
            self._busy -= 1
            self._slots.release()
        self.stats.checks[outcome] += 1
        if outcome == JOURNAL_DOWN:  # nothing journaled: this alert and those that came meanwhile wait for it
            self._journal_lost(result["error"])
            self.outage.park([alert, *state.waiting], state.journaled)
            state.phase, state.pending, state.journaled, state.waiting = "idle", None, None, []
            return
        state.decision_id = result.get("decision_id")
        try:
            # Alerts go on coming while the links are written (the phase is still "checking") and share this
            # check's future, which acknowledges them: link those too before it is set.
            while state.waiting:
                waiting, state.waiting = state.waiting, []
                if state.decision_id is not None:
                    why = "came while its service was checked"
                    try:
                        await self._in_pool(self._link_all, [(state.decision_id, other, why) for other in waiting])
                    except JournalUnavailable as exc:  # these and the rest wait; the future waits for them
                        self._journal_lost(exc)
                        self.outage.park([*waiting, *state.waiting], state.journaled)
                        state.waiting, state.journaled = [], None
        finally:
            if state.journaled is not None and not state.journaled.done():
                state.journaled.set_result(None)
        if outcome == "act":
            state.phase, state.pending = "acting", None
            try:
                await self._follow(state, result, hand_over=True)
            finally:
                state.phase = "idle"
            return
        if outcome == "error":  # the next alert tries again: the cluster or Prometheus may be back
            state.phase, state.pending = "idle", None
            return
        if outcome in RECHECKED and state.pending is None:
            # Alertmanager never sends the same firing alert twice (its re-sends are dropped as duplicates), so the
            # loop looks again itself once the settle is over, until the alert resolves or it acts.
            state.pending = alert
        self._settle(key, state)  # none, cooldown, locked, escalate: the next alert waits for the settle

    def _settle(self, key: str, state: Service) -> None:
        state.phase = "settling"

        async def later() -> None:
            await asyncio.sleep(self.config.recheck_settle_seconds)
            state.phase, state.timer = "idle", None
            again, state.pending = state.pending, None
            if again is not None:
                await self.offer(again)

        state.timer = asyncio.ensure_future(later())
        self._tasks.add(state.timer)
        state.timer.add_done_callback(self._done)

    async def _follow(
        self, state: Service, result: dict[str, Any], hand_over: bool = False, place: _Place | None = None
    ) -> None:
        """Hand the claimed decision to the rule engine (``hand_over``; ``place``: it was, and holds that place among
        ``max_running_actions``), wait for the playbook to report the change applied, then verify, journal,
        escalate, release. The claim is renewed all along, the wait for a place included."""
        keeper = asyncio.ensure_future(self._keep(result))
        try:
            if hand_over:
                place = await self._hand_over(result)
            await self._follow_held(state, result, place)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _hand_over(self, result: dict[str, Any]) -> _Place:
        """Have the decision's event emitted, alone or with the others waiting, once fewer than
        ``max_running_actions`` playbooks run; returns its share of the place, the caller's to give back
        (:meth:`_follow_held`, once the playbook has reported and ended). Meanwhile the decision stays claimed in
        the journal (its action ``pending``, no run named): a loop that restarts settles it and checks its alert
        again, so nothing waiting here is lost."""
        handed: asyncio.Future[_Place] = asyncio.get_running_loop().create_future()
        self._waiting.append((result, handed))
        if self._dispatching is None or self._dispatching.done():
            self._dispatching = asyncio.ensure_future(self._dispatch())
            self._tasks.add(self._dispatching)  # stop() cancels it with the rest
            self._dispatching.add_done_callback(self._done)
        try:
            return await asyncio.shield(handed)
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled() and handed.exception() is None:
                handed.result().give_back()
            else:
                handed.cancel()
            raise

    async def _dispatch(self) -> None:
        """Emit the waiting decisions, as many in one event as :data:`ACTIONS_PER_PLAYBOOK`, each time a place is
        free; the playbook's place is shared by its decisions and given back when each has given back its own."""
        while self._waiting:
            await self._acting.acquire()
            batch = [(result, handed) for result, handed in self._waiting[:ACTIONS_PER_PLAYBOOK] if not handed.done()]
            del self._waiting[:ACTIONS_PER_PLAYBOOK]
            if not batch:
                self._acting.release()
                continue
            shared = _SharedPlace(self._acting, len(batch))
            try:
                await self.emit(event_of([result for result, _handed in batch]))
            except Exception as exc:
                shared.release()
                for _result, handed in batch:
                    if not handed.done():
                        handed.set_exception(exc)
                continue
            self.stats.events += 1
            for _result, handed in batch:
                place = _Place(shared)
                if handed.done():  # cancelled meanwhile (the loop stops)
                    place.give_back()
                else:
                    handed.set_result(place)

    async def _keep(self, result: dict[str, Any]) -> None:
        """Renew the claim's lease while the loop acts and verifies."""
        while True:
            await asyncio.sleep(self.config.renew_every)
            if not await self._in_pool(self._renew, result):
                return

    async def _follow_held(self, state: Service, result: dict[str, Any], place: _Place | None = None) -> None:
        if not await self._applied(result, place):
            return
        decision_id = int(result["decision_id"])
        state.phase = "verifying"
        loop = asyncio.get_running_loop()
        verdict, summary, reasons, evidence = await loop.run_in_executor(self._watchers, self._verify, result)
        await self._until_journaled(self._finish, result, verdict, summary, reasons, evidence)
        self.stats.verifications[verdict] += 1  # counted once journaled
        logger.info("decision %d: %s", decision_id, verdict)

    async def _applied(self, result: dict[str, Any], place: _Place | None) -> bool:
        """Wait until the playbook reports the change applied (True) or the action ends otherwise (False). The
        place the action holds among ``max_running_actions`` is given back once its playbook's process has ended
        (its memory with it), not at the report, which a few tasks still follow: watched apart meanwhile, so
        verification starts at once."""
        action_id = int(result["claim"]["action_id"])
        deadline = time.monotonic() + self.config.apply_timeout
        try:
            while True:
                row = await self._until_journaled(lambda: self.clients.journal().action(action_id))
                if row is None or row["outcome"] != "pending":
                    # The playbook could not apply the change: it journaled why; escalate it and give the lock back.
                    if row is not None and row["outcome"] == "failed":
                        why = row.get("detail") or "the action's playbook failed"
                        await self._until_journaled(self._escalate_and_release, result, "failed", [why], {})
                    self.stats.verifications["failed"] += 1
                    return False
                run = _fresh_run(row, result)
                running = bool(run) and _running(run)
                # Seen ended here: its own named run, or (not named yet) its batch's playbook, seen by a sibling.
                ended = (not running and _here(run)) if run else (place is not None and place.ended)
                if run and ended and place is not None:
                    place.playbook_ended()  # its siblings in the batch learn it too
                if place is not None and not place.free and not running:
                    # Ended (or, without a named run, nothing to watch once applied).
                    if run or row.get("applied"):
                        place.give_back()
                if ended and not row.get("applied") and await self._ended_unreported(result, bool(run)):
                    return False
                if row.get("applied"):
                    if place is not None and not place.free:
                        self._spawn(self._give_back_when_ended(run, place))
                        place = None  # the watcher's now
                    return True
                if time.monotonic() > deadline:
                    await self._unreported(
                        result, f"the action's playbook did not report its change within {self.config.apply_timeout:g}s"
                    )
                    return False
                held = place is not None and not place.free
                await asyncio.sleep(
                    min(self.config.poll_seconds, RUNNING_POLL_SECONDS) if held else self.config.poll_seconds
                )
        finally:
            if place is not None:
                place.give_back()

    async def _ended_unreported(self, result: dict[str, Any], named: bool) -> bool:
        """The action's playbook was seen ended on this machine without reporting it, either after naming its run
        (``named``) or, in a batch, before taking it up: nothing will report it, so it is journaled failed and
        escalated now instead of at ``apply_timeout_seconds`` (True). The row is read again first, since a report
        or a name written just before the end must win (False). A run elsewhere (a controller's job) is left to
        the deadline: this machine cannot see it end."""
        action_id = int(result["claim"]["action_id"])
        again = await self._until_journaled(lambda: self.clients.journal().action(action_id))
        if (
            again is None
            or again["outcome"] != "pending"
            or again.get("applied")
            or bool(_fresh_run(again, result)) != named
        ):
            return False  # it reported, or was named meanwhile: the next poll follows that
        if named:
            await self._unreported(result, "the action's playbook ended without reporting its change")
        else:
            await self._unreported(result, "the action's playbook ended before it took this decision up")
        return True

    async def _unreported(self, result: dict[str, Any], why: str) -> None:
        """Journal an action nothing reported failed, escalate it and give its lock back."""
        await self._until_journaled(self._finish, result, "failed", why, [why], {})
        self.stats.verifications["failed"] += 1

    async def _give_back_when_ended(self, run: Mapping[str, Any], place: _Place) -> None:
        try:
            while await self._in_pool(_running, run):
                await asyncio.sleep(RUNNING_POLL_SECONDS)
            if _here(run):
                place.playbook_ended()
        finally:
            place.give_back()

    async def _in_pool(self, work: Callable[..., Any], *args: Any) -> Any:
        """Journal and cluster work that must not block the event loop (outside the bounded check pool)."""
        return await asyncio.get_running_loop().run_in_executor(self._watchers, work, *args)

    # --- the journal unreachable (see _loop/outage.py) ------------------------------------------------------

    async def _until_journaled(self, work: Callable[..., Any], *args: Any) -> Any:
        """Journal work of an action in flight: an outage delays it (the claim is renewed meanwhile), never drops
        it, since an action whose end is not journaled would look unfinished and be taken up again."""
        while True:
            try:
                return await self._in_pool(work, *args)
            except JournalUnavailable as exc:
                logger.warning("the journal is unreachable, trying again in %gs: %s", self.probe_seconds, exc)
                await asyncio.sleep(self.probe_seconds)

    def _journal_lost(self, error: BaseException) -> None:
        if self.outage.lost(error):
            logger.error("the journal is unreachable; alerts wait until it answers: %s", error)
            self.outage.probe = asyncio.ensure_future(self._journal_back())
            self._tasks.add(self.outage.probe)
            self.outage.probe.add_done_callback(self._done)

    async def _journal_back(self) -> None:
        """Probe the journal until it answers; then journal the escalations it missed and offer again what waited,
        in arrival order (an outage that starts again meanwhile parks them again, and this goes on probing)."""
        while self.outage.down:
            await asyncio.sleep(self.probe_seconds)
            try:
                await self._in_pool(lambda: self.clients.journal().ping())
            except JournalError as exc:
                logger.debug("the journal still does not answer: %s", exc)
                continue
            owed = self.outage.back()
            waiting = sum(len(alerts) for alerts, _held in self.outage.parked)
            logger.warning("the journal answers again: %d alerts to check", waiting)
            while owed and not self.outage.down:
                try:
                    await self._in_pool(self._journal_owed, owed[0])
                    owed.pop(0)
                except JournalUnavailable as exc:
                    self.outage.lost(exc)
            for escalation in owed:
                self.outage.owe(escalation)
            if self.recovery_pending and not self.outage.down:
                await self.recover()  # what the loop before this one left, before any parked alert is checked
            while self.outage.parked and not self.outage.down:
                alerts, future = self.outage.parked.pop(0)
                waits = [got for alert in alerts if (got := await self.offer(alert)) is not None]
                self._spawn(_settle_when_all(waits, future))

    def _journal_owed(self, owed: _outage.Owed) -> None:
        """Journal an escalation sent while the journal was down, at the time it was sent."""
        self.clients.journal().record_decision(
            namespace=owed.namespace,
            service=owed.service,
            snapshot={
                "id": f"{owed.namespace}/{owed.service}@{format_datetime(owed.at)}",
                "now": format_datetime(owed.at),
                "alert": owed.alert,
            },
            decision=owed.decision,
            fingerprint=owed.fingerprint,
            alert_status="firing",
            at=owed.at,
        )

    def _blind(self, alert: dict[str, Any], error: str) -> None:
        """An alert that cannot be checked without the journal: nothing is decided; the first of its service in
        this outage is escalated (and journaled once the journal is back)."""
        namespace, service = str(alert["namespace"]), str(alert["service"])
        logger.error("%s/%s: not checked, the journal is unreachable: %s", namespace, service, error)
        if self.outage.first_for(f"{namespace}/{service}"):
            why = _outage.reason(error)
            decision: dict[str, Any] = {
                "action": "escalate",
                "params": {},
                "proposed": None,
                "proposed_params": {},
                "reasons": [why],
                "evidence": {},
                "rule": _outage.RULE,
            }
            block = _check.alert_block(alert)
            _sent, detail = self._send(namespace, service, decision, [why], {"alert": block}, None)
            journaled = {**decision, "reasons": [why, detail]}
            when = datetime.now(UTC)
            self.outage.owe(_outage.Owed(namespace, service, journaled, block, alert.get("fingerprint"), when))

    # --- blocking work (worker threads) ---------------------------------------------------------------------

    def _check(self, alert: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        cpu, wall = time.thread_time(), time.monotonic()
        phases = _check.Phases()
        try:
            intents, policy, version = self.catalog.versioned()
            request = _check.Request(str(alert["namespace"]), str(alert["service"]), alert, datetime.now(UTC))
            # A short lease, renewed while the loop holds it (_keep): a loop that died is shown dead in seconds.
            settings = _check.Settings(intents, policy, list(self.config.patches), self.config.lock_lease_seconds)
            platform = self.platform.reader(version, self.clients.prom)
            clients = _check.Clients(
                self.clients.kube, self.clients.prom, self.clients.journal(), platform=platform, phases=phases
            )
            result = _check.evaluate(request, settings, clients)
        except JournalUnavailable as exc:  # no history, no guardrails: decide nothing, the alert waits
            self._blind(alert, str(exc))
            return JOURNAL_DOWN, {"decision": None, "decision_id": None, "snapshot": {}, "error": exc}
        except Exception as exc:  # noqa: BLE001 - journaled and escalated below, never lost
            return "error", self._failed(alert, exc)
        finally:
            self.stats.check_cpu.append(time.thread_time() - cpu)
            self.stats.check_wall.append(time.monotonic() - wall)
            for name, seconds in phases.seconds.items():
                self.stats.check_phases[name].append(seconds)
        decision = result["decision"]
        if decision["action"] == "none":
            if decision.get("rule") == "observe" and policy_for(policy, request.namespace, request.service).get(
                "observe_notify"
            ):
                self._dry_run(request.namespace, request.service, decision)
            return ("cooldown" if decision.get("rule") == "cooldown" else "none"), result
        claim = result.get("claim") or {}
        if not claim.get("acquired"):
            return "locked", result  # journaled as skipped by the claim
        if decision["action"] == "escalate":
            self._escalate_decision(result)
            return "escalate", result
        return "act", result

    def _failed(self, alert: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        """Journal a check that could not be made as an escalation with its reason, and escalate it."""
        reason = (
            f"the intent check failed: {exc}" if isinstance(exc, SelfHealError) else f"the intent check failed: {exc!r}"
        )
        logger.error("%s/%s: %s", alert.get("namespace"), alert.get("service"), reason)
        decision: dict[str, Any] = {
            "action": "escalate",
            "params": {},
            "proposed": None,
            "proposed_params": {},
            "reasons": [reason],
            "evidence": {},
            "rule": FAILED_RULE,
        }
        now = datetime.now(UTC)
        namespace, service = str(alert["namespace"]), str(alert["service"])
        result: dict[str, Any] = {"decision": decision, "decision_id": None, "snapshot": {}}
        try:
            result["decision_id"] = self.clients.journal().record_decision(
                namespace=namespace,
                service=service,
                snapshot={
                    "id": f"{namespace}/{service}@{format_datetime(now)}",
                    "now": format_datetime(now),
                    "alert": _check.alert_block(alert),
                },
                decision=decision,
                fingerprint=alert.get("fingerprint"),
                alert_status=alert.get("status"),
                at=now,
            )
        except SelfHealError as journal_error:
            logger.error("cannot journal the failed check either: %s", journal_error)
        self._send(namespace, service, decision, [reason], {"alert": _check.alert_block(alert)}, None)
        return result

    def _escalate_decision(self, result: dict[str, Any]) -> None:
        """An ``escalate`` decision: post it, journal how that went, give the claimed lock back."""
        intent, decision = result["snapshot"]["intent"], result["decision"]
        journal = self.clients.journal()
        told = self._told_at(journal, intent)
        if told is not None:
            # Another loop on the journal (or a run by hand) paged a human about this service moments ago, for
            # another of the same fault's alerts: one page, as one loop's settle gives.
            self.stats.escalations["held"] += 1
            journal.finish_action(
                int(result["claim"]["action_id"]),
                outcome="skipped",
                changed=False,
                detail=f"not sent: a human was told about this service at {told}, less than"
                f" recheck_settle_seconds ({self.config.recheck_settle_seconds:g} s) ago",
            )
            self._release(intent, result)
            return
        alert = result["snapshot"].get("alert")
        evidence = {**(decision.get("evidence") or {}), "alert": alert} if alert else None
        approval = self._approval(result)
        sent, detail = self._send(intent["namespace"], intent["service"], decision, None, evidence, None, approval)
        journal.finish_action(
            int(result["claim"]["action_id"]),
            outcome="not_recovered" if sent else "failed",
            changed=sent,
            detail=detail,
        )
        self._release(intent, result)

    def _told_at(self, journal: Journal, intent: Mapping[str, Any]) -> str | None:
        """When an escalation about the service was sent within the settle, if one was (its action journaled
        ``not_recovered``: sent; this claim's own is still ``pending``)."""
        since = datetime.now(UTC) - timedelta(seconds=self.config.recheck_settle_seconds)
        sent = [
            entry["at"]
            for entry in journal.history(str(intent["service"]), str(intent["namespace"]), since=since)
            if entry["action"] == "escalate" and entry["outcome"] == "not_recovered"
        ]
        return sent[-1] if sent else None

    def _send(
        self,
        namespace: str,
        service: str,
        decision: Mapping[str, Any] | None,
        reasons: list[str] | None,
        evidence: Mapping[str, Any] | None,
        summary: str | None,
        approval: Mapping[str, Any] | None = None,
    ) -> tuple[bool, str]:
        if not self.config.escalation_url:
            self.stats.escalations["failed"] += 1
            return False, "no escalation_url: nobody was told"
        payload = _notify.build_payload(
            self.config.escalation_format,
            namespace=namespace,
            name=service,
            decision=decision,
            reasons=reasons,
            evidence=evidence,
            summary=summary,
            approval=approval,
        )
        try:
            status = self.post(self.config.escalation_url, payload)
        except SelfHealError as exc:
            self.stats.escalations["failed"] += 1
            logger.error("%s", exc)
            return False, str(exc)
        self.stats.escalations["sent"] += 1
        return True, f"escalation sent (HTTP {status})"

    def _dry_run(self, namespace: str, service: str, decision: Mapping[str, Any]) -> None:
        """Mode observe with observe_notify: say what would have been done and why, marked as a dry run."""
        would = f"{decision['proposed']} {json.dumps(decision.get('proposed_params') or {}, sort_keys=True)}"
        summary = f"Dry run (mode observe): would {would} on {namespace}/{service}; nothing was changed"
        self._send(namespace, service, {**decision, "proposed": None}, None, None, summary)

    def _approval(self, result: dict[str, Any]) -> dict[str, Any] | None:
        """How to answer a proposing escalation: the command, and the signed links when a secret is set."""
        if result.get("decision_id") is None:
            return None
        decision_id = int(result["decision_id"])
        proposal = self.clients.journal().proposal(decision_id)
        if proposal is None:
            return None
        out: dict[str, Any] = {
            "decision_id": decision_id,
            "expires": proposal["expires"],
            "command": _approve.command(decision_id),
        }
        if self.config.approval_secret and self.config.approval_url:
            expires = parse_datetime(str(proposal["expires"]))
            out.update(_links.links(self.config.approval_secret, self.config.approval_url, decision_id, expires))
        return out

    # --- approval links (the receiver's /approvals routes) -------------------------------------------------

    async def answer(self, decision_id: int, approver: str, approve: bool) -> dict[str, Any]:
        """Answer a proposal from a link: when the approval acts, its claimed decision goes to the rule engine
        like a fresh acting decision (the remediate rule runs its playbook), and this loop verifies it."""
        result: dict[str, Any] = await self._in_pool(self._answer, decision_id, approver, approve)
        if result.get("state") != "acted":
            return result
        intent = result["snapshot"]["intent"]
        key = f"{intent['namespace']}/{intent['service']}"
        state = self.services.setdefault(key, Service())
        state.phase, state.decision_id = "acting", int(result["decision_id"])
        # Within max_running_actions like any acting decision; the link's answer waits while every place is taken.
        place = await self._hand_over(result)
        self._spawn(self._resume(state, result, place=place))
        return result

    def _answer(self, decision_id: int, approver: str, approve: bool) -> dict[str, Any]:
        intents, policy = self.catalog.current()
        settings = _check.Settings(intents, policy, list(self.config.patches), self.config.lock_ttl_seconds)
        clients = _check.Clients(self.clients.kube, self.clients.prom, self.clients.journal())
        answer = _approve.Answer(int(decision_id), approver, "link", approve)
        return _approve.answer_proposal(answer, settings, clients, datetime.now(UTC))

    def proposal(self, decision_id: int) -> dict[str, Any] | None:
        """The proposal a link names, for its confirm page (blocking: call in a worker)."""
        return self.clients.journal().proposal(int(decision_id))

    def refused(self, decision_id: int | None, answer: str, result: str, reason: str) -> None:
        """Journal a link refused before it reached the proposal (forged, expired)."""
        self.clients.journal().record_approval_attempt(
            decision_id, approver=None, how="link", answer=answer, result=result, reason=reason
        )

    def _verify(self, result: dict[str, Any]) -> tuple[str, str, list[str], dict[str, Any]]:
        intent = result["snapshot"]["intent"]
        policy = policy_for(self.catalog.current()[1], intent["namespace"], intent["service"])
        current = find_intent(self.catalog.current()[0], intent["namespace"], intent["service"]) or intent
        try:
            look = _verify.looker(current, policy, self.clients.kube(), self.clients.prom)
            verification = _verify.watch(look, self.config.verify, sleep=self.sleep)
        except SelfHealError as exc:
            return _verify.NOT_RECOVERED, f"cannot verify: {exc}", [f"cannot verify: {exc}"], {}
        last = verification.last
        return (
            verification.outcome,
            verification.summary(self.config.verify),
            list(last.reasons),
            dict(last.evidence),
        )

    def _finish(
        self, result: dict[str, Any], outcome: str, summary: str, reasons: list[str], evidence: dict[str, Any]
    ) -> None:
        """Journal the verified outcome; escalate what did not recover (journaled as its own action); release."""
        journal = self.clients.journal()
        action_id, intent = int(result["claim"]["action_id"]), result["snapshot"]["intent"]
        row = journal.action(action_id) or {}
        detail = "; ".join(part for part in (row.get("detail") or "", summary) if part)
        journal.finish_action(action_id, outcome=outcome, detail=detail)
        if outcome == _verify.RECOVERED:
            self._release(intent, result)
        else:
            self._escalate_and_release(result, outcome, reasons, evidence)

    def _escalate_and_release(
        self, result: dict[str, Any], outcome: str, reasons: list[str], evidence: dict[str, Any]
    ) -> None:
        """Hand what failed or did not recover to a human (journaled as its own action), then give the lock back."""
        journal = self.clients.journal()
        decision_id = int(result["decision_id"])
        intent, decision = result["snapshot"]["intent"], result["decision"]
        target = f"{intent['namespace']}/{_check.workload_of(intent)}"
        did = "failed" if outcome == "failed" else f"did not recover {intent['service']}"
        escalation = journal.record_action(decision_id, "escalate", {}, outcome="pending")
        sent, sent_detail = self._send(
            intent["namespace"],
            intent["service"],
            decision,
            reasons,
            evidence,
            f"{decision['action']} of {target} {did}",
        )
        journal.finish_action(
            escalation, outcome="not_recovered" if sent else "failed", changed=sent, detail=sent_detail
        )
        self._release(intent, result)

    def _release(self, intent: Mapping[str, Any], result: dict[str, Any]) -> None:
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_lock

        holder = result["claim"]["holder"]
        target = {"namespace": intent["namespace"], "name": _check.workload_of(dict(intent)), "holder": holder}
        try:
            run_lock(self.clients.kube(), {**target, "state": "released"}, False, False)
        except SelfHealError as exc:
            logger.error("cannot give back the lock of %s/%s: %s", target["namespace"], target["name"], exc)

    def _renew(self, result: dict[str, Any]) -> bool:
        """Renew the claim's lease; False once it is not ours any more (given back, or taken over)."""
        intent, holder = result["snapshot"]["intent"], result["claim"]["holder"]
        try:
            return renew_claim(self.clients.kube(), intent, holder, self.config.lock_lease_seconds)
        except SelfHealError as exc:  # the API may be back at the next renewal, well within the lease
            logger.error("cannot renew the lock of %s/%s: %s", intent["namespace"], intent["service"], exc)
            return True

    def _queue_link(self, decision_id: int, alert: dict[str, Any], reason: str) -> asyncio.Future[None]:
        """Journal a coalesced alert's link with the others that come meanwhile, in one transaction per batch (a
        storm links thousands: one commit each held the intake behind them). The future is done once it is
        written (or its failure logged), which is when the alert may leave the spool."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._links.append((decision_id, alert, reason, done))
        if self._linking is None or self._linking.done():
            self._linking = asyncio.ensure_future(self._write_links())
            self._tasks.add(self._linking)
            self._linking.add_done_callback(self._done)
        return done

    async def _write_links(self) -> None:
        while self._links:
            batch, self._links = self._links[:LINK_BATCH], self._links[LINK_BATCH:]
            parked = False
            try:
                await self._in_pool(self._link_all, [(d, a, r) for d, a, r, _done in batch])
            except JournalUnavailable as exc:  # each waits for the journal, its future with it (see offer)
                self._journal_lost(exc)
                for _decision, alert, _reason, done in batch:
                    self.outage.park([alert], done)
                parked = True
            finally:
                for _decision, _alert, _reason, done in batch:
                    if not parked and not done.done():
                        done.set_result(None)

    def _link_all(self, links: list[tuple[int, dict[str, Any], str]]) -> None:
        try:
            self.clients.journal().link_alerts([(d, _check.alert_block(a) or {}, r) for d, a, r in links])
        except SelfHealError:  # one bad link fails the batch: write them one by one, each failure logged
            for decision_id, alert, reason in links:
                self._link(decision_id, alert, reason)

    def _link(self, decision_id: int, alert: dict[str, Any], reason: str) -> None:
        try:
            self.clients.journal().link_alert(decision_id, _check.alert_block(alert) or {}, reason)
        except JournalUnavailable:
            raise  # the alert waits for the journal (offer parks it)
        except SelfHealError as exc:
            logger.error("cannot link an alert to decision %d: %s", decision_id, exc)

    def _close(self, alert: dict[str, Any]) -> None:
        try:
            closed = _incident.close({"alert": alert}, False, journal=self.clients.journal())
        except JournalUnavailable:
            raise  # the alert waits for the journal (offer parks it)
        except SelfHealError as exc:
            logger.error("cannot close the incident of a resolved alert: %s", exc)
            return
        if closed.get("changed"):
            self.stats.closed += 1


def event_of(results: list[dict[str, Any]]) -> ActingEvent:
    """The rule engine's event for claimed decisions, which one playbook applies."""
    handed: list[Handed] = [
        {
            "decision_id": int(result["decision_id"]),
            "namespace": str(result["snapshot"]["intent"]["namespace"]),
            "service": str(result["snapshot"]["intent"]["service"]),
            "action": str(result["decision"]["action"]),
        }
        for result in results
    ]
    return {"kind": EVENT_KIND, "decision_ids": [h["decision_id"] for h in handed], "decisions": handed}


def renew_claim(kube: Any, intent: Mapping[str, Any], holder: str, lease_seconds: int) -> bool:
    """Renew ``holder``'s lock on the intent's target for ``lease_seconds`` more; False (and a warning) when the
    lock is not its own any more. A write that loses a race with a release or a take-over is read and planned
    again."""
    namespace, target = str(intent["namespace"]), _check.workload_of(dict(intent))
    name = _lock.lease_name(target)

    def plan() -> Any:
        lease = kube.get("coordination.k8s.io/v1", "Lease", namespace, name, missing_ok=True)
        return _lock.plan_renew(lease, namespace, target, holder, lease_seconds, datetime.now(UTC))

    renewed = kube.converge(plan, False, False)
    if not renewed.get("acquired"):
        logger.warning("%s", renewed.get("msg"))
    return bool(renewed.get("acquired"))


async def _settle_when_all(waits: list[asyncio.Future[None]], future: asyncio.Future[None]) -> None:
    """Done with a parked group once each of its alerts is journaled (the source's spool lets go of it then)."""
    await asyncio.gather(*waits)
    if not future.done():
        future.set_result(None)


class _SharedPlace:
    """One of the ``max_running_actions`` places, taken by a playbook for the decisions it applies: free again once
    each of them has given back its share."""

    def __init__(self, places: asyncio.Semaphore, holders: int) -> None:
        self._places, self._holders = places, holders
        self.ended = False  # its playbook was seen ended on this machine: what it has not named, it never will

    def leave(self) -> None:
        self._holders -= 1
        if self._holders == 0:
            self._places.release()

    def release(self) -> None:
        """Nobody holds it (the event was not emitted)."""
        self._holders = 0
        self._places.release()


class _Place:
    """A handed-over decision's share of its playbook's place, held until that playbook has ended."""

    def __init__(self, shared: _SharedPlace) -> None:
        self._shared, self.free = shared, False

    def give_back(self) -> None:
        if not self.free:
            self.free = True
            self._shared.leave()

    @property
    def ended(self) -> bool:
        return self._shared.ended

    def playbook_ended(self) -> None:
        self._shared.ended = True


def _running(run: Mapping[str, Any]) -> bool:
    """Whether a journaled run's playbook still runs on this machine (a run elsewhere: taken as ended).

    The run names the ``ansible-playbook`` process the playbook's first module ran under, which is the worker that
    ansible-playbook forked for that task and is gone with it; what lives on is the playbook itself, the leader of
    the session ansible-runner started it in."""
    if not _here(run):
        return False
    named = _runs.read(int(run["pid"]))
    if named is not None and named.start == run.get("start") and named.state not in ("Z", "X"):
        return True
    session = run.get("session")
    leader = _runs.read(int(session)) if session else None
    return (
        leader is not None
        and leader.session == session
        and _runs.is_playbook(leader)
        and leader.state not in ("Z", "X")
    )


def _fresh_run(row: Mapping[str, Any], result: Mapping[str, Any]) -> Any:
    """The run an action's row names, unless it is the dead playbook's that a re-run is handed over after."""
    run = row.get("run")
    return None if run and run == result.get("stale_run") else run


def _here(run: Mapping[str, Any]) -> bool:
    """Whether a journaled run names a process on this machine, whose end this loop can see."""
    return run.get("pid") is not None and run.get("host") == socket.gethostname()


def _named(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value != "_"
