"""alertmanager.py - an ansible-rulebook event source receiving Prometheus Alertmanager webhooks and running the
intent check on each alert in this warm process.

The receiver never makes Alertmanager wait: each alert of a notification is normalized by the collection's
``plugins/module_utils/_alerts.py`` and put in a bounded outbox (optionally mirrored to a spool directory) that
one task drains into the collection's control loop (``plugins/module_utils/_loop/warm.py``). The loop checks
the service - gather, snapshot, decide, journal, claim, with the same function as the ``intent_check`` module
and warm clients - and only an acting decision reaches ansible-rulebook's queue, as::

    {"kind": "remediate", "decision_ids": [42],
     "decisions": [{"decision_id": 42, "namespace": "shop", "service": "checkout", "action": "rollback"}]}

The ids are the journal's, the names are the intent file's; nothing in the event comes from the alert. That is
the template safety of this source: ansible-rulebook hands the whole event to the playbook it starts as extra
vars, which ansible-core 2.19 renders as templates, so alert text (labels, annotations, URLs, group keys) must
never be in it. The alert stays in the journal (the decision's snapshot, or the alert linked to the decision),
where modules read it as data. ``none``, ``cooldown``, ``locked`` and ``escalate`` are journaled, counted in
/metrics, and start nothing; resolved alerts close their incident in the journal; escalations are posted from
here; after the playbook journals that its change is applied, the loop verifies the service, journals the
outcome, escalates what did not recover and gives the lock back.

A full outbox answers 503 (Alertmanager retries 5xx); nothing is answered 2xx before it is queued or spooled;
while every worker is busy the outbox keeps what waits. Request headers never reach an event or a log line.
The deduplication memory lives in the process: after a restart, the first re-send of each alert passes again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import ipaddress
import json
import logging
import os
import ssl
import sys
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager webhooks, check each alert in this process, emit remediations.
description:
  - An HTTP(S) receiver for Alertmanager webhook notifications (payload version 4), on any POST path.
  - Authentication is a bearer token compared in constant time; client certificates are required
    when I(cafile) is given.
  - Requests are answered without waiting for ansible-rulebook; when the outbox is full the answer is 503 with
    Retry-After, which Alertmanager retries. Malformed or non-Alertmanager bodies are answered 400, which
    Alertmanager does not retry.
  - Re-sent and retried notifications are deduplicated by fingerprint, status and start time within
    I(dedupe_window); resolved alerts carry the id of the firing event they end.
  - Each alert is checked against its service's intent in this process (the C(intent_check) module's own code);
    only an acting decision becomes an event, carrying the decision id and the intent's names and no alert text.
  - GET /healthz answers liveness; GET /metrics serves the receiver's Prometheus metrics. Neither needs the token
    and neither shows alert content.
options:
  host:
    description:
      - Address to listen on. The default only accepts connections from this machine; set C(0.0.0.0) (or the
        interface address) when Alertmanager runs elsewhere, together with I(token) and TLS.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to listen on.
    type: int
    default: 5000
  token:
    description:
      - Bearer token Alertmanager must send (C(http_config.authorization.credentials)). Missing or wrong tokens
        are answered 401. Required when I(host) is not a loopback address, unless I(allow_anonymous) is set.
    type: str
  allow_anonymous:
    description: Accept unauthenticated webhooks on a non-loopback I(host) (not recommended).
    type: bool
    default: false
  certfile:
    description: PEM certificate chain (may include the key) to serve HTTPS.
    type: str
  keyfile:
    description: PEM private key of I(certfile), when it is not in the same file.
    type: str
  cafile:
    description: PEM CA bundle; when given, clients must present a certificate it signed (mutual TLS).
    type: str
  max_body_bytes:
    description:
      - Largest request body accepted; larger ones are answered 413, which Alertmanager drops for good. The
        default is generous so that even a very large group (tens of thousands of alerts) is never lost;
        bound group size with Alertmanager's C(max_alerts) instead of lowering this.
    type: int
    default: 33554432
  dedupe_window:
    description:
      - Seconds during which a notification of an alert with the same fingerprint, status and start time as one
        already queued is dropped as a duplicate. The default outlasts Alertmanager's default C(group_interval)
        (5m) and stays well under its C(repeat_interval) (4h), so a still-firing alert is offered again later.
        C(0) disables deduplication.
    type: float
    default: 600
  max_queue:
    description:
      - Events that may wait for ansible-rulebook. A request is admitted while fewer events wait (one request
        may overshoot, so a group larger than this is still accepted); otherwise it is answered 503.
    type: int
    default: 10000
  spool_dir:
    description:
      - Directory where waiting events are also written (JSON lines) before the request is answered, and read
        back at start, so a restart does not lose them. Delivery is then at least once. Without it, events
        waiting when the source stops are lost (and logged).
    type: str
  intents:
    description: The intents, a file or a directory of C(*.yml) files; read again when they change.
    type: str
    required: true
  policy:
    description: The policy file (defaults when absent); read again when it changes.
    type: str
  prometheus_url:
    description: The Prometheus API the intent check reads.
    type: str
    required: true
  prometheus_token:
    description: Bearer token for Prometheus, when it needs one.
    type: str
  journal:
    description: The SQLite journal (default C(~/.local/state/zerotouch-selfheal/journal.db)).
    type: str
  escalation_url:
    description: The webhook that reaches a human when the loop escalates or an action does not recover.
    type: str
  escalation_format:
    description: C(generic) JSON or C(slack) (an incoming-webhook message, mrkdwn neutralised).
    type: str
    default: generic
  patches:
    description: The trusted catalog of fixes for the patch action, C([{from, image, severity}]).
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
    description: When verification gives up (not recovered), counted from the end of the action.
    type: float
    default: 600
  recheck_settle_seconds:
    description:
      - After a decision not to act (C(none), C(cooldown), C(locked)), the next firing alert of the service waits
        this long and is then checked again; alerts meanwhile are linked to the decision in the journal.
      - Receivers sharing a journal settle together, so a failing service pages a human once between them; an
        escalation about a service that one of them sent less than this long ago is not sent again (its action is
        journaled C(skipped), saying when).
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
    description: Checks that run at once (the worker pool); alerts wait in the outbox while all are busy.
    type: int
    default: 4
  timeout:
    description: Seconds a Prometheus query, or one Kubernetes API call of a check, may take.
    type: float
    default: 10
  apply_timeout_seconds:
    description:
      - How long the action's playbook has to journal that its change is applied; then the action is journaled
        failed, escalated and its lock given back. Defaults to I(lock_ttl_seconds).
      - A playbook on this machine that is seen to end without reporting an action fails it at once, without
        waiting for this deadline. This covers an action that the playbook of its batch never took up.
    type: float
  approval_secret:
    description:
      - The secret that signs approve and deny links (HMAC-SHA256), at least 16 characters; defaults to the
        C(SELFHEAL_APPROVAL_SECRET) environment variable. Without it, escalations carry the approve command only
        and no link is served.
    type: str
  approval_url:
    description:
      - The base URL approve and deny links point at, as the approver's browser reaches this receiver.
        Defaults to this receiver's own C(http(s)://host:port).
    type: str
"""

EXAMPLES = r"""
- name: Remediate what Alertmanager reports
  hosts: all
  sources:
    - zerotouch.selfheal.alertmanager:
        host: 0.0.0.0
        port: 9095
        token: "{{ ALERTMANAGER_TOKEN }}"
        certfile: /etc/selfheal/tls.pem
        spool_dir: /var/lib/selfheal/spool
        intents: /etc/selfheal/intents
        prometheus_url: http://prometheus:9090
        escalation_url: https://hooks.example.com/selfheal
  rules:
    - name: Run the remediation the source decided
      condition: event.kind == "remediate"
      action:
        run_playbook:
          name: zerotouch.selfheal.remediate
          extra_vars:
            decision_ids: "{{ event.decision_ids }}"

# alertmanager.yml on the Alertmanager side:
# receivers:
#   - name: selfheal
#     webhook_configs:
#       - url: https://rulebook.example:9095/alerts
#         send_resolved: true
#         http_config:
#           authorization: {type: Bearer, credentials_file: /etc/alertmanager/selfheal.token}
"""

logger = logging.getLogger("zerotouch.selfheal.alertmanager")

RETRY_AFTER_SECONDS = 5  # Alertmanager uses its own backoff; other senders get a hint.
SHUTDOWN_TIMEOUT = 2.0  # our handlers never wait, so in-flight requests finish well within this
DEDUPE_CAPACITY = 100_000  # fingerprints remembered at most, oldest forgotten first
METRICS_PREFIX = "selfheal_alertmanager"
REJECT_REASONS = ("unauthorized", "too_large", "malformed_json", "invalid_payload", "buffer_full", "spool_error")


def _load(name: str) -> ModuleType:
    """Import one of the collection's ``module_utils`` (one implementation for modules and this source).

    ansible-rulebook runs this file with runpy, outside Ansible's collection loader, so when the collection is not
    importable already, put the ``ansible_collections`` root this file sits in on ``sys.path``.
    """
    name = f"ansible_collections.zerotouch.selfheal.plugins.module_utils.{name}"
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        first_error: ImportError = exc
    here = Path(os.path.abspath(__file__))  # not resolve(): a symlinked collection must keep its own path
    if [p.name for p in here.parents[4:7]] == ["selfheal", "zerotouch", "ansible_collections"]:
        sys.path.insert(0, str(here.parents[7]))
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            first_error = exc
    raise ImportError(
        f"zerotouch.selfheal.alertmanager cannot import {name} ({first_error}): run it from the installed "
        "collection (ansible-rulebook finds it through ANSIBLE_COLLECTIONS_PATH) or put the directory holding "
        "ansible_collections/zerotouch/selfheal on PYTHONPATH"
    ) from first_error


_alerts = _load("_alerts")
_source = _load("_loop.source")
_warm = _load("_loop.warm")
_peers = _load("_loop.peers")
_links = _load("_loop.links")


# --- configuration ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """The receiver's options; ``loop`` holds the control loop's (``_loop.warm.OPTIONS``)."""

    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = field(default=None, repr=False)  # never printed
    allow_anonymous: bool = False
    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    dedupe_window: float = 600.0
    max_queue: int = 10_000
    spool_dir: str | None = None
    loop: Any = field(default=None, repr=False)


_DEFAULTS = Config()  # with slots=True, Config.<field> is a slot descriptor, not the default
RECEIVER_OPTIONS = tuple(name for name in Config.__dataclass_fields__ if name != "loop")


def parse_args(args: Mapping[str, Any]) -> Config:
    """Validate the source's arguments (the receiver's and the loop's); raise ValueError naming the first bad one."""
    _source.reject_unknown(args, RECEIVER_OPTIONS + _warm.OPTIONS)
    receiver = parse_receiver_args({k: v for k, v in args.items() if k not in _warm.OPTIONS})
    if not args.get("approval_url"):  # the links point at this receiver unless told otherwise
        scheme = "https" if receiver.certfile else "http"
        args = {**args, "approval_url": f"{scheme}://{receiver.host}:{receiver.port}"}
    return replace(receiver, loop=_warm.parse_options(args))


def parse_receiver_args(args: Mapping[str, Any], loop: Any = None) -> Config:
    """The receiver's own options (what :func:`receive` needs)."""
    _source.reject_unknown(args, RECEIVER_OPTIONS)
    config = Config(
        host=_source.string(args, "host", _DEFAULTS.host),
        port=_source.integer(args, "port", _DEFAULTS.port, 0, 65535),
        token=_source.optional_str(args, "token"),
        allow_anonymous=_source.boolean(args, "allow_anonymous", False),
        certfile=_source.optional_str(args, "certfile"),
        keyfile=_source.optional_str(args, "keyfile"),
        cafile=_source.optional_str(args, "cafile"),
        max_body_bytes=_source.integer(args, "max_body_bytes", _DEFAULTS.max_body_bytes, 1024, 2**31),
        dedupe_window=_source.number(args, "dedupe_window", _DEFAULTS.dedupe_window, 0, 10**9),
        max_queue=_source.integer(args, "max_queue", _DEFAULTS.max_queue, 1, 10_000_000),
        spool_dir=_source.optional_str(args, "spool_dir"),
        loop=loop,
    )
    _check_combinations(config)
    return config


def _check_combinations(config: Config) -> None:
    if config.keyfile and not config.certfile:
        raise ValueError("keyfile: needs certfile")
    if config.cafile and not config.certfile:
        raise ValueError("cafile: client certificates need TLS, set certfile too")
    if config.token is None and not config.allow_anonymous and not is_loopback(config.host):
        raise ValueError(
            f"token: required when listening on {config.host} (not a loopback address); "
            "set allow_anonymous: true to accept unauthenticated webhooks anyway"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server's TLS context (client certificates required when cafile is set), or None for plain HTTP."""
    if not config.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.certfile, config.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"certfile: cannot load {config.certfile}: {exc}") from exc
    if config.cafile:
        try:
            context.load_verify_locations(cafile=config.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cafile: cannot load {config.cafile}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# --- events -------------------------------------------------------------------------------------------------------


def to_events(payload: Any) -> list[dict[str, Any]]:
    """One alert per alert of a notification (``_alerts.normalize``). They go to the loop, never to the rulebook."""
    alerts: list[dict[str, Any]] = _alerts.normalize(payload)
    return alerts


def stamp(event: dict[str, Any], received_at: str) -> dict[str, Any]:
    """Give an alert its id and reception time."""
    event["meta"] = {"uuid": str(uuid.uuid4()), "received_at": received_at}
    return event


class Deduper:
    """Drops re-sent notifications and links resolved alerts to the firing event they end.

    A notification is a duplicate when the last one let through for its fingerprint had the same status and
    start time less than ``window`` seconds ago. Alertmanager keeps startsAt across re-sends and retries, and a
    re-fired alert gets a new one, so flapping alerts are never swallowed.
    """

    def __init__(self, window: float, capacity: int = DEDUPE_CAPACITY) -> None:
        self.window = window
        self.capacity = capacity
        self._last: OrderedDict[str, tuple[str, str | None, float]] = OrderedDict()
        self._firing: OrderedDict[str, tuple[str, str]] = OrderedDict()  # fingerprint -> (event id, received at)

    def is_duplicate(self, event: Mapping[str, Any], now: float) -> bool:
        last = self._last.get(event["fingerprint"])
        if last is None or self.window <= 0:
            return False
        status, starts_at, passed_at = last
        return status == event["status"] and starts_at == event["startsAt"] and now - passed_at < self.window

    def link(self, event: dict[str, Any]) -> None:
        """Add ``firing_event_id`` and ``firing_received_at`` to a resolved event (None when unseen)."""
        if event["status"] == "resolved":
            firing_id, firing_at = self._firing.get(event["fingerprint"], (None, None))
            event["firing_event_id"], event["firing_received_at"] = firing_id, firing_at

    def record(self, event: Mapping[str, Any], now: float) -> None:
        """Remember an event that was let through (call only once it is safely queued)."""
        fingerprint = event["fingerprint"]
        self._remember(self._last, fingerprint, (event["status"], event["startsAt"], now))
        if event["status"] == "firing":
            self._remember(self._firing, fingerprint, (event["meta"]["uuid"], event["meta"]["received_at"]))
        else:
            self._firing.pop(fingerprint, None)
        self._expire(now)

    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.capacity:
            table.popitem(last=False)

    def _expire(self, now: float) -> None:
        # Entries are in the order they passed, so the expired ones are at the front.
        while self._last:
            passed_at = next(iter(self._last.values()))[2]
            if now - passed_at < self.window:
                break
            self._last.popitem(last=False)


# --- outbox and spool ---------------------------------------------------------------------------------------------


class Spool:
    """Waiting events on disk: ``events.jsonl`` (appended before answering) and ``delivered`` (a line count).

    Lines before the count were handed to ansible-rulebook; the rest are read back at start. Both files are
    emptied whenever everything was delivered, so the spool stays as small as the outbox. Writes are flushed to
    the kernel (they survive a crash of the process, not of the machine).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending = 0
        self._delivered = 0
        self._events: Any = None
        self._counter_fd = -1
        self._lock_fd = -1

    def open(self) -> list[dict[str, Any]]:
        """Lock the directory and return the events a previous run accepted but did not deliver."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # alert text may be confidential
        self._lock()
        leftover = self._read_leftover()
        events_path = self.directory / "events.jsonl"
        tmp = events_path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            out.write("".join(json.dumps(event) + "\n" for event in leftover))
        os.replace(tmp, events_path)  # compact: keep only what is still to deliver
        self._events = events_path.open("a", encoding="utf-8")
        self._counter_fd = os.open(self.directory / "delivered", os.O_RDWR | os.O_CREAT, 0o600)
        self._write_counter()
        self.pending = len(leftover)
        return leftover

    def append(self, events: Iterable[dict[str, Any]]) -> None:
        lines = [json.dumps(event) + "\n" for event in events]
        self._events.write("".join(lines))
        self._events.flush()
        self.pending += len(lines)

    def ack(self) -> None:
        """One more event was handed to ansible-rulebook."""
        self.pending -= 1
        self._delivered += 1
        if self.pending == 0:  # all delivered: start both files afresh
            self._events.truncate(0)
            self._delivered = 0
        self._write_counter()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
        for fd in (self._counter_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._counter_fd = self._lock_fd = -1

    def _lock(self) -> None:
        import fcntl  # POSIX only, like ansible-rulebook itself

        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise ValueError(f"spool_dir: {self.directory} is in use by another source") from exc

    def _read_leftover(self) -> list[dict[str, Any]]:
        try:
            delivered = int((self.directory / "delivered").read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            delivered = 0
        try:
            lines = (self.directory / "events.jsonl").read_text(encoding="utf-8").split("\n")
        except FileNotFoundError:
            return []
        # The last element is "" after a complete file, or a line torn by a crash mid-write: drop it either way.
        if lines[-1]:
            logger.warning("spool_dir: dropping an incomplete last line of %s", self.directory / "events.jsonl")
        leftover = []
        for line in lines[delivered:-1]:
            try:
                leftover.append(json.loads(line))
            except ValueError:
                logger.warning("spool_dir: skipping an unreadable line of %s", self.directory / "events.jsonl")
        return leftover

    def _write_counter(self) -> None:
        os.pwrite(self._counter_fd, f"{self._delivered:020d}\n".encode(), 0)


class Outbox:
    """Accepted events waiting for ansible-rulebook's queue, drained by one task in arrival order."""

    def __init__(self, capacity: int, spool: Spool | None, restored: list[dict[str, Any]]) -> None:
        self.capacity = capacity
        self.spool = spool
        self._events: deque[dict[str, Any]] = deque(restored)
        self._ready = asyncio.Event()
        self._unjournaled: deque[Any] = deque()  # per alert handed to the loop, in order: None or a future
        self.delivered = 0
        if self._events:
            self._ready.set()

    def __len__(self) -> int:
        return len(self._events)

    def has_room(self) -> bool:
        return len(self._events) < self.capacity

    def add(self, events: list[dict[str, Any]]) -> None:
        """Queue events; raises OSError, having queued nothing, when the spool cannot take them."""
        if self.spool is not None:
            self.spool.append(events)
        self._events.extend(events)
        self._ready.set()

    async def drain_into(self, sink: Callable[[dict[str, Any]], Awaitable[Any]]) -> None:
        """Hand alerts to the loop (``sink``) one by one, forever; ``sink`` waits while every worker is busy.

        ``sink`` may return a future that is done once the alert's check is journaled: with a spool, an alert
        leaves it only then (in arrival order), so a crash before that checks it again after the restart."""
        while True:
            while not self._events:
                self._ready.clear()
                await self._ready.wait()
            # Leave the alert in the outbox until the sink took it: a cancellation here loses nothing.
            journaled = await sink(self._events[0])
            self._events.popleft()
            self.delivered += 1
            if self.spool is not None:
                self._unjournaled.append(journaled)
                if isinstance(journaled, asyncio.Future):
                    journaled.add_done_callback(lambda _done: self._ack_journaled())
                self._ack_journaled()

    def _ack_journaled(self) -> None:
        while self._unjournaled and (self._unjournaled[0] is None or self._unjournaled[0].done()):
            self._unjournaled.popleft()
            self._ack()

    def _ack(self) -> None:
        try:
            self.spool.ack()  # type: ignore[union-attr]
        except OSError as exc:  # the event is delivered; a stale counter only means a re-delivery after restart
            logger.error("spool_dir: cannot record a delivery: %s", exc)


# --- HTTP receiver ------------------------------------------------------------------------------------------------


@dataclass
class Metrics:
    requests: int = 0
    alerts_received: int = 0
    accepted: dict[str, int] = field(default_factory=lambda: {"alert": 0})
    deduplicated: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    spooled: int = 0

    def render(self, outbox: Outbox) -> str:
        """The Prometheus text exposition of the counters and of the outbox's state."""
        spooled_now = outbox.spool.pending if outbox.spool else 0
        families: list[Any] = [
            ("requests_total", "counter", "Webhook requests received.", [("", self.requests)]),
            (
                "alerts_received_total",
                "counter",
                "Alerts in authorized, valid notifications.",
                [("", self.alerts_received)],
            ),
            ("events_accepted_total", "counter", "Alerts accepted.", _source.by_label("kind", self.accepted)),
            (
                "alerts_deduplicated_total",
                "counter",
                "Alerts dropped as re-sent duplicates.",
                [("", self.deduplicated)],
            ),
            (
                "requests_rejected_total",
                "counter",
                "Webhook requests refused, by reason.",
                _source.by_label("reason", self.rejected),
            ),
            ("events_delivered_total", "counter", "Alerts handed to the loop.", [("", outbox.delivered)]),
            ("events_spooled_total", "counter", "Alerts written to the spool.", [("", self.spooled)]),
            ("queue_depth", "gauge", "Alerts waiting for the loop.", [("", len(outbox))]),
            ("queue_capacity", "gauge", "The max_queue option.", [("", outbox.capacity)]),
            (
                "spooled_events",
                "gauge",
                "Alerts held in the spool until their check is journaled.",
                [("", spooled_now)],
            ),
        ]
        return _source.render_metrics(METRICS_PREFIX, families)


_NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
_SelfHealError = _load("_errors").SelfHealError


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _page(status: int, title: str, message: str) -> web.Response:
    return web.Response(
        status=status, text=_links.result_page(title, message), content_type="text/html", headers=_NO_STORE
    )


def _token_digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps compare_digest from revealing the token's length. Surrounding blanks
    # are dropped on both sides, as Alertmanager does with a credentials_file.
    return hashlib.sha256(token.strip().encode()).digest()


class Receiver:
    """The aiohttp application: webhook on any POST path, /healthz and /metrics."""

    def __init__(self, config: Config, outbox: Outbox, deduper: Deduper, metrics: Metrics, loop: Any = None) -> None:
        self.config = config
        self.loop = loop
        self.outbox = outbox
        self.deduper = deduper
        self.metrics = metrics
        self._token = _token_digest(config.token) if config.token is not None else None
        self.drain_task: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        _source.health_app(self.health, self.render_metrics, app)
        if self.loop is not None and self.loop.config.approval_secret:
            # Approval links (docs/approvals.md): GET shows a confirm page (a link preview changes nothing), POST
            # answers. The HMAC signature stands in for the bearer token, which a browser does not send.
            app.router.add_get("/approvals/{decision_id}/{answer}", self.approval_page)
            app.router.add_post("/approvals/{decision_id}/{answer}", self.approval_answer)
        app.router.add_post("/{tail:.*}", self.webhook)
        return app

    async def approval_page(self, request: web.Request) -> web.Response:
        checked = await self._approval_link(request)
        if isinstance(checked, web.Response):
            return checked
        decision_id, answer, proposal = checked
        page = _links.confirm_page(proposal, answer, str(request.rel_url))
        return web.Response(text=page, content_type="text/html", headers=_NO_STORE)

    async def approval_answer(self, request: web.Request) -> web.Response:
        checked = await self._approval_link(request)
        if isinstance(checked, web.Response):
            return checked
        decision_id, answer, _proposal = checked
        form = await request.post()
        approver = str(form.get("approver") or "").strip()[:100]
        if not approver:
            return _page(400, "Your name is required", "say who answers: it is journaled with the answer")
        try:
            result = await self.loop.answer(decision_id, approver, answer == "approve")
        except _SelfHealError as exc:
            return _page(403, "Refused", str(exc))
        state = result["state"]
        if state in ("expired", "answered"):
            return _page(403, "Refused: " + ("expired" if state == "expired" else "already answered"), result["msg"])
        return _page(200, state.capitalize(), result["msg"])

    async def _approval_link(self, request: web.Request) -> tuple[int, str, dict[str, Any]] | web.Response:
        """The link's decision id, answer and pending proposal; or the 403 page (the attempt journaled)."""
        answer = request.match_info["answer"]
        raw_id = request.match_info["decision_id"]
        run = asyncio.get_running_loop().run_in_executor
        try:
            decision_id, _approve = _links.verify(
                self.loop.config.approval_secret, raw_id, answer, request.query, _now()
            )
        except _links.LinkRefused as exc:
            known = int(raw_id) if raw_id.isdigit() and len(raw_id) < 18 else None
            await run(None, self.loop.refused, known, answer[:16], exc.result, exc.reason)
            return _page(403, f"Refused: {exc.result}", exc.reason)
        proposal = await run(None, self.loop.proposal, decision_id)
        if proposal is None or proposal["state"] != "pending":
            reason = (
                "no such proposal" if proposal is None else f"the proposal was answered already ({proposal['state']})"
            )
            result = "unknown" if proposal is None else "reused"
            await run(None, self.loop.refused, decision_id, answer, result, reason)
            return _page(403, f"Refused: {result}", reason)
        return decision_id, answer, proposal

    def health(self) -> tuple[bool, dict[str, Any]]:
        alive = self.drain_task is not None and not self.drain_task.done()
        body = {
            "status": "ok" if alive else "stopped",
            "queue_depth": len(self.outbox),
            "max_queue": self.outbox.capacity,
        }
        return alive, body

    def render_metrics(self) -> str:
        text = self.metrics.render(self.outbox)
        return text + (self.loop.metrics(METRICS_PREFIX + "_loop") if self.loop is not None else "")

    async def webhook(self, request: web.Request) -> web.Response:
        self.metrics.requests += 1
        if not self._authorized(request):
            return self._reject("unauthorized", 401, "unauthorized", {"WWW-Authenticate": "Bearer"})
        if (request.content_length or 0) > self.config.max_body_bytes:
            return self._reject("too_large", 413, f"body larger than {self.config.max_body_bytes} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked bodies have no Content-Length to check up front
            return self._reject("too_large", 413, f"body larger than {self.config.max_body_bytes} bytes")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return self._reject("malformed_json", 400, f"malformed JSON: {_json_problem(exc)}")
        try:
            events = to_events(payload)
        except _alerts.ValidationError as exc:
            return self._reject("invalid_payload", 400, str(exc))
        return self._accept(payload, events)

    def _authorized(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        scheme, _sep, credentials = request.headers.get("Authorization", "").partition(" ")
        supplied = _token_digest(credentials)
        return hmac.compare_digest(supplied, self._token) and scheme.lower() == "bearer"

    def _accept(self, payload: Any, events: list[dict[str, Any]]) -> web.Response:
        """Queue the new alerts of one notification, all or nothing. Runs without awaiting anything."""
        self.metrics.alerts_received += len(events)
        now = asyncio.get_running_loop().time()
        fresh = self._fresh(events, now)
        if fresh:
            refused = self._queue(payload, fresh, now)
            if refused is not None:
                return refused
        duplicates = len(events) - len(fresh)
        self.metrics.deduplicated += duplicates
        self.metrics.accepted["alert"] += len(fresh)
        return web.json_response({"accepted": len(fresh), "duplicates": duplicates})

    def _queue(self, payload: Any, fresh: list[dict[str, Any]], now: float) -> web.Response | None:
        """Put the events in the outbox (and spool); return the refusal when they cannot be kept."""
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if not self.outbox.has_room():
            return self._reject("buffer_full", 503, "too many events waiting, retry later", retry)
        queued = self._stamp_and_link(payload, fresh)
        try:
            self.outbox.add(queued)
        except OSError as exc:
            logger.error("spool_dir: cannot write accepted events, answering 503: %s", exc)
            return self._reject("spool_error", 503, "cannot store events, retry later", retry)
        self.metrics.spooled += len(queued) if self.outbox.spool else 0
        for event in fresh:  # only now: a refused request must not make its retry look like a duplicate
            self.deduper.record(event, now)
        return None

    def _fresh(self, events: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        seen: set[tuple[str, str, str | None]] = set()
        fresh = []
        for event in events:
            key = (event["fingerprint"], event["status"], event["startsAt"])
            if key not in seen and not self.deduper.is_duplicate(event, now):
                fresh.append(event)
            seen.add(key)
        return fresh

    def _stamp_and_link(self, payload: Any, fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
        received_at = _source.utc_now()
        queued = []
        for event in fresh:
            stamp(event, received_at)
            self.deduper.link(event)
            queued.append(event)
        return queued

    def _reject(self, reason: str, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        self.metrics.rejected[reason] += 1
        # Unauthorized calls are noise an attacker controls: the metric counts them, the log stays quiet.
        log = logger.debug if reason == "unauthorized" else logger.warning
        log("webhook answered %d (%s): %s", status, reason, message)
        return web.json_response({"error": message}, status=status, headers=headers)


def _json_problem(exc: BaseException) -> str:
    # json's messages give a position, never the content; decoding errors are summarised the same way.
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8 text"
    return "nested too deeply" if isinstance(exc, RecursionError) else "cannot be parsed"


# --- entry point --------------------------------------------------------------------------------------------------


async def main(queue: Any, args: dict[str, Any]) -> None:
    """Receive and check until cancelled; ansible-rulebook's cancellation propagates after cleanup."""
    config = parse_args(args)
    loop = _warm.Loop(config.loop, queue.put)
    # On a shared (PostgreSQL) journal, receivers accept each alert once between them and take over a dead one's.
    peers = _peers.Peers(loop) if _peers.shared(config.loop) else None
    try:
        if peers is not None:
            await peers.start()
        else:
            await loop.recover()
        await serve(config, peers.offer if peers is not None else loop.offer, loop)
    finally:
        if peers is not None:
            await peers.stop()
        await loop.stop()


async def receive(queue: Any, args: dict[str, Any]) -> None:
    """The receiver alone, its alerts put on ``queue`` as they are (for tests of the intake; ansible-rulebook runs
    :func:`main`, whose queue never sees an alert)."""
    await serve(parse_receiver_args(args), queue.put)


async def serve(config: Config, sink: Callable[[dict[str, Any]], Awaitable[None]], loop: Any = None) -> None:
    """Serve webhooks, handing each accepted alert to ``sink``, until cancelled."""
    ssl_context = tls_context(config)
    spool = Spool(Path(config.spool_dir)) if config.spool_dir else None
    restored = _open_spool(spool) if spool else []
    outbox = Outbox(config.max_queue, spool, restored)
    receiver = Receiver(config, outbox, Deduper(config.dedupe_window), Metrics(), loop)
    runner = web.AppRunner(receiver.app(), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
    try:
        receiver.drain_task = asyncio.create_task(outbox.drain_into(sink))
        if restored:
            logger.info("checking %d alerts restored from %s", len(restored), config.spool_dir)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            raise ValueError(f"port: cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
        scheme = "https" if ssl_context else "http"
        logger.info("receiving Alertmanager webhooks on %s://%s:%d/", scheme, config.host, config.port)
        await receiver.drain_task  # runs until cancelled; if it ever fails, the source fails loudly
    finally:
        await _stop(receiver, runner, outbox, spool)


def _open_spool(spool: Spool) -> list[dict[str, Any]]:
    try:
        return spool.open()
    except OSError as exc:
        spool.close()
        raise ValueError(f"spool_dir: cannot use {spool.directory}: {exc}") from exc


async def _stop(receiver: Receiver, runner: web.AppRunner, outbox: Outbox, spool: Spool | None) -> None:
    try:
        if receiver.drain_task is not None:
            receiver.drain_task.cancel()
            await asyncio.wait([receiver.drain_task])  # does not raise the task's CancelledError
    finally:
        await runner.cleanup()  # closes the listening socket: the port is free again
        if spool is not None:
            spool.close()
        elif len(outbox):
            logger.warning("stopping with %d accepted events undelivered (set spool_dir to keep them)", len(outbox))
