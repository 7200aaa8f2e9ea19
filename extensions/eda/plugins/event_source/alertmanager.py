"""alertmanager.py - an ansible-rulebook event source receiving Prometheus Alertmanager webhooks.

Each alert of a webhook notification becomes one event, normalized by the collection's
``plugins/module_utils/_alerts.py`` (the same code the modules use). The receiver never makes Alertmanager wait
on ansible-rulebook: accepted events go to a bounded outbox (optionally mirrored to a spool directory) that a
separate task drains into the rulebook queue, so a request is answered as soon as its alerts are safe. A full
outbox answers 503 (Alertmanager retries 5xx); nothing is answered 2xx before it is queued or spooled.

An event (Alertmanager's own field names where it has one, ours in snake_case)::

    {"status": "firing", "fingerprint": "5f0e8e1c2b9a7d31", "alertname": "HighLatency",
     "service": "checkout", "namespace": "shop", "incident": "shop/checkout/HighLatency",
     "source_labels": {"service": "service", "namespace": "namespace"},
     "labels": {...}, "annotations": {...}, "startsAt": "2026-03-01T10:00:00Z", "endsAt": null,
     "generatorURL": "...", "groupKey": "...", "groupLabels": {...}, "receiver": "selfheal",
     "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
     "meta": {"uuid": "<event id>", "received_at": "2026-03-01T10:00:01.250Z"}}

A resolved event also carries ``firing_event_id`` and ``firing_received_at`` (the ``meta`` of the firing event
it ends, null when this source did not see it). With ``raw: true`` each notification also yields
``{"payload": <the whole body>, "meta": {...}}``. Request headers never reach an event or a log line.
The deduplication memory lives in the process: after a restart, the first re-send of each alert passes again.

Template safety. ansible-rulebook hands an event to a playbook as extra vars: it writes ``env/extravars`` with
``yaml.dump`` (after the event made a JSON round trip through the rule engine), ansible-runner passes
``-e @env/extravars``, and ansible-core 2.19 loads that file with ``trusted_as_template=True``. Every string of
the event is therefore a trusted template, rendered when the playbook reads it: a label such as
``{{ lookup('pipe', 'touch /tmp/owned') }}`` runs a command on the controller, and a stray ``{{`` makes the
playbook fail. Marking the text unsafe cannot survive that path: ``!unsafe`` cannot be produced by
``yaml.dump`` from plain data, and ``{"__ansible_unsafe": ...}`` is only understood in JSON-formatted files, so in
the YAML file it stays a plain (and rendered) mapping. So the source escapes instead: in every string value that
contains ``{{``, ``{%`` or ``{#``, each such opening is replaced by an expression printing it (``{{ '{{' }}``),
so that the one rendering ansible-core applies yields the original text verbatim, and, because ansible-core
2.19 never renders the result of a template again, it stays inert in ``set_fact`` copies, module arguments and
``to_json``. Mapping keys are left alone (ansible-core does not render keys). Strings without those openings
are untouched, so rule conditions on ordinary labels work as written; rulebook conditions and ``print_event``
see the escaped form. ``tests/eda/test_template_safety.py`` proves it by running ansible-playbook on such an
event. Set ``escape_templates: false`` only when the consumer already treats extra vars as unsafe (an AWX or
controller job template that refuses Jinja in launch-time extra vars).
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Prometheus Alertmanager webhooks, one event per alert.
description:
  - An HTTP(S) receiver for Alertmanager webhook notifications (payload version 4), on any POST path.
  - Each alert becomes one normalized event carrying the service, namespace and incident key the remediation
    loop needs. Authentication is a bearer token compared in constant time; client certificates are required
    when I(cafile) is given.
  - Requests are answered without waiting for ansible-rulebook; when the outbox is full the answer is 503 with
    Retry-After, which Alertmanager retries. Malformed or non-Alertmanager bodies are answered 400, which
    Alertmanager does not retry.
  - Re-sent and retried notifications are deduplicated by fingerprint, status and start time within
    I(dedupe_window); resolved alerts carry the id of the firing event they end.
  - Strings containing Jinja openings are escaped so that ansible-playbook shows them verbatim instead of running
    them (see I(escape_templates)).
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
  raw:
    description: Also queue each accepted payload as one extra event C({payload, meta}).
    type: bool
    default: false
  escape_templates:
    description:
      - Escape every string containing C({{), C({%) or C({#) so that ansible-playbook, which renders extra vars,
        shows it verbatim instead of running it. Disable only when the consumer treats extra vars as unsafe.
    type: bool
    default: true
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
  rules:
    - name: Remediate a firing alert
      condition: event.status == "firing" and event.service is defined
      action:
        run_playbook:
          name: zerotouch.selfheal.remediate

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
REJECT_REASONS = ("unauthorized", "too_large", "malformed_json", "invalid_payload", "buffer_full", "spool_error")


def _load_alerts() -> ModuleType:
    """Import the collection's ``_alerts`` (one implementation for modules and this source).

    ansible-rulebook runs this file with runpy, outside Ansible's collection loader, so when the collection is not
    importable already, put the ``ansible_collections`` root this file sits in on ``sys.path``.
    """
    name = "ansible_collections.zerotouch.selfheal.plugins.module_utils._alerts"
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


_alerts = _load_alerts()


# --- configuration ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
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
    raw: bool = False
    escape_templates: bool = True


_DEFAULTS = Config()  # with slots=True, Config.<field> is a slot descriptor, not the default


def parse_args(args: Mapping[str, Any]) -> Config:
    """Validate the source's arguments; raise ValueError naming the first bad one."""
    # ansible-rulebook adds its own eda_* arguments (eda_feedback_queue); anything else unknown is a typo.
    unknown = sorted(k for k in args if k not in Config.__dataclass_fields__ and not k.startswith("eda_"))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown option (known: {', '.join(Config.__dataclass_fields__)})")
    config = Config(
        host=_str_arg(args, "host", _DEFAULTS.host),
        port=_int_arg(args, "port", _DEFAULTS.port, 0, 65535),
        token=_optional_str_arg(args, "token"),
        allow_anonymous=_bool_arg(args, "allow_anonymous", False),
        certfile=_optional_str_arg(args, "certfile"),
        keyfile=_optional_str_arg(args, "keyfile"),
        cafile=_optional_str_arg(args, "cafile"),
        max_body_bytes=_int_arg(args, "max_body_bytes", _DEFAULTS.max_body_bytes, 1024, 2**31),
        dedupe_window=_float_arg(args, "dedupe_window", _DEFAULTS.dedupe_window),
        max_queue=_int_arg(args, "max_queue", _DEFAULTS.max_queue, 1, 10_000_000),
        spool_dir=_optional_str_arg(args, "spool_dir"),
        raw=_bool_arg(args, "raw", False),
        escape_templates=_bool_arg(args, "escape_templates", True),
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


def _str_arg(args: Mapping[str, Any], name: str, default: str) -> str:
    value = _optional_str_arg(args, name)
    return default if value is None else value


def _optional_str_arg(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        # An empty token usually means an unset variable: refuse rather than run without authentication.
        raise ValueError(f"{name}: must be a non-empty string")
    return value


def _int_arg(args: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    # Rulebook variables substituted into arguments arrive as strings ("{{ port }}" -> "5000").
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name}: must be an integer between {low} and {high}")
    return value


def _float_arg(args: Mapping[str, Any], name: str, default: float) -> float:
    value = args.get(name, default)
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not 0 <= number < float("inf"):
        raise ValueError(f"{name}: must be a number of seconds >= 0")
    return number


def _bool_arg(args: Mapping[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "yes", "false", "no"):
        return value.lower() in ("true", "yes")
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false")
    return value


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


def to_events(payload: Any, *, escape: bool = True) -> list[dict[str, Any]]:
    """One event per alert (``_alerts.normalize``), escaped for ansible-playbook unless ``escape`` is false."""
    events: list[dict[str, Any]] = _alerts.normalize(payload)
    return [_alerts.escape_templates(event) for event in events] if escape else events


def stamp(event: dict[str, Any], received_at: str) -> dict[str, Any]:
    """Give an event its id and reception time; ansible-rulebook keeps a ``meta`` it finds."""
    event["meta"] = {"uuid": str(uuid.uuid4()), "received_at": received_at}
    return event


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

    async def drain_into(self, queue: Any) -> None:
        """Hand events to ansible-rulebook one by one, forever. Only this task ever waits on its queue."""
        while True:
            while not self._events:
                self._ready.clear()
                await self._ready.wait()
            # Leave the event in the outbox until put() returns: a cancellation here loses nothing.
            await queue.put(self._events[0])
            self._events.popleft()
            self.delivered += 1
            if self.spool is not None:
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
    accepted: dict[str, int] = field(default_factory=lambda: {"alert": 0, "payload": 0})
    deduplicated: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    spooled: int = 0

    def render(self, outbox: Outbox) -> str:
        """The Prometheus text exposition of the counters and of the outbox's state."""
        spooled_now = outbox.spool.pending if outbox.spool else 0
        families: list[tuple[str, str, str, list[tuple[str, int]]]] = [
            ("requests_total", "counter", "Webhook requests received.", [("", self.requests)]),
            (
                "alerts_received_total",
                "counter",
                "Alerts in authorized, valid notifications.",
                [("", self.alerts_received)],
            ),
            ("events_accepted_total", "counter", "Events queued for ansible-rulebook.", _by("kind", self.accepted)),
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
                _by("reason", self.rejected),
            ),
            ("events_delivered_total", "counter", "Events handed to ansible-rulebook.", [("", outbox.delivered)]),
            ("events_spooled_total", "counter", "Events written to the spool.", [("", self.spooled)]),
            ("queue_depth", "gauge", "Events waiting for ansible-rulebook.", [("", len(outbox))]),
            ("queue_capacity", "gauge", "The max_queue option.", [("", outbox.capacity)]),
            ("spooled_events", "gauge", "Waiting events held in the spool.", [("", spooled_now)]),
        ]
        lines = []
        for suffix, kind, help_text, samples in families:
            name = f"selfheal_alertmanager_{suffix}"
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            lines += [f"{name}{labels} {value}" for labels, value in samples]
        return "\n".join(lines) + "\n"


def _by(label: str, counts: dict[str, int]) -> list[tuple[str, int]]:
    return [(f'{{{label}="{key}"}}', value) for key, value in counts.items()]


def _token_digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps compare_digest from revealing the token's length. Surrounding blanks
    # are dropped on both sides, as Alertmanager does with a credentials_file.
    return hashlib.sha256(token.strip().encode()).digest()


class Receiver:
    """The aiohttp application: webhook on any POST path, /healthz and /metrics."""

    def __init__(self, config: Config, outbox: Outbox, deduper: Deduper, metrics: Metrics) -> None:
        self.config = config
        self.outbox = outbox
        self.deduper = deduper
        self.metrics = metrics
        self._token = _token_digest(config.token) if config.token is not None else None
        self.drain_task: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_post("/{tail:.*}", self.webhook)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        alive = self.drain_task is not None and not self.drain_task.done()
        body = {
            "status": "ok" if alive else "stopped",
            "queue_depth": len(self.outbox),
            "max_queue": self.outbox.capacity,
        }
        return web.json_response(body, status=200 if alive else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(self.outbox), content_type="text/plain", charset="utf-8")

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
            events = to_events(payload, escape=self.config.escape_templates)
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
        if fresh or self.config.raw:
            refused = self._queue(payload, fresh, now)
            if refused is not None:
                return refused
        duplicates = len(events) - len(fresh)
        self.metrics.deduplicated += duplicates
        self.metrics.accepted["alert"] += len(fresh)
        self.metrics.accepted["payload"] += 1 if self.config.raw else 0
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
        received_at = utc_now()
        queued = []
        for event in fresh:
            stamp(event, received_at)
            self.deduper.link(event)
            queued.append(event)
        if self.config.raw:
            body = _alerts.escape_templates(payload) if self.config.escape_templates else payload
            queued.append(stamp({"payload": body}, received_at))
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
    """Serve webhooks until cancelled; ansible-rulebook's cancellation propagates after cleanup."""
    config = parse_args(args)
    ssl_context = tls_context(config)
    spool = Spool(Path(config.spool_dir)) if config.spool_dir else None
    restored = _open_spool(spool) if spool else []
    outbox = Outbox(config.max_queue, spool, restored)
    receiver = Receiver(config, outbox, Deduper(config.dedupe_window), Metrics())
    runner = web.AppRunner(receiver.app(), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
    try:
        receiver.drain_task = asyncio.create_task(outbox.drain_into(queue))
        if restored:
            logger.info("delivering %d events restored from %s", len(restored), config.spool_dir)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            raise ValueError(f"port: cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
        scheme = "https" if ssl_context else "http"
        logger.info("receiving Alertmanager webhooks on %s://%s:%d/", scheme, config.host, site.port)
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
