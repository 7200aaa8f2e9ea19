"""The zerotouch.selfheal.alertmanager event source, run as ansible-rulebook runs it, against real HTTP requests."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import yaml

from sandbox.payloads import alert, notification
from sandbox.pki import Pki, generate
from tests.attacks import attack_strings

from .conftest import ROOT, SOURCE_FILE, TOKEN, StartSource, free_port

# --- pure helpers -------------------------------------------------------------------------------------------------


def test_defaults_are_safe(source: SimpleNamespace) -> None:
    config = source.parse_receiver_args({})
    assert (config.host, config.port, config.token) == ("127.0.0.1", 5000, None)
    assert config.max_body_bytes >= 16 * 1024 * 1024  # a large group must never be refused for good
    assert "s3cr3t" not in repr(source.parse_receiver_args({"token": "s3cr3t"}))


def test_rulebook_string_arguments_are_converted(source: SimpleNamespace, tmp_path: Path) -> None:
    args = {"port": "9095", "dedupe_window": "30", "eda_feedback_queue": object()}
    config = source.parse_receiver_args(args)
    assert (config.port, config.dedupe_window) == (9095, 30.0)
    intents = tmp_path / "intents.yml"
    intents.write_text("[]\n")
    loop_args = {"intents": str(intents), "prometheus_url": "http://p/", "workers": "3", "verify_interval": "2"}
    full = source.parse_args({**args, **loop_args, "lock_ttl_seconds": "60", "recheck_settle_seconds": "5"})
    assert (full.port, full.loop.workers, full.loop.verify.interval, full.loop.lock_ttl_seconds) == (9095, 3, 2.0, 60)
    assert (full.loop.prometheus_url, full.loop.recheck_settle_seconds) == ("http://p", 5.0)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"port": 70000}, "port"),
        ({"port": True}, "port"),
        ({"max_queue": 0}, "max_queue"),
        ({"max_body_bytes": 10}, "max_body_bytes"),
        ({"dedupe_window": -1}, "dedupe_window"),
        ({"dedupe_window": "soon"}, "dedupe_window"),
        ({"token": ""}, "token"),
        ({"token": 42}, "token"),
        ({"host": "0.0.0.0"}, "token"),  # listening beyond loopback needs authentication
        ({"keyfile": "/k.pem"}, "keyfile"),
        ({"cafile": "/ca.pem"}, "cafile"),
        ({"prot": 5000}, "prot"),
        ({"raw": True}, "raw"),  # gone: a whole payload would put alert text on the rule engine's queue
        ({"escape_templates": False}, "escape_templates"),  # gone: no alert text reaches the rule engine at all
    ],
)
def test_bad_arguments_raise_value_error_naming_them(source: SimpleNamespace, args: dict, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named}:"):
        source.parse_receiver_args(args)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({}, "intents"),
        ({"intents": "/i"}, "prometheus_url"),
        ({"intents": "/i", "prometheus_url": "http://p", "workers": 0}, "workers"),
        ({"intents": "/i", "prometheus_url": "http://p", "escalation_format": "teams"}, "escalation_format"),
        ({"intents": "/i", "prometheus_url": "http://p", "patches": [{"image": "x"}]}, "patches"),
        ({"intents": "/i", "prometheus_url": "http://p", "verify_interval": 0}, "verify_interval"),
        ({"intents": "/i", "prometheus_url": "http://p", "verify_timeout_seconds": 5}, "verify_timeout_seconds"),
        ({"intents": "/i", "prometheus_url": "http://p", "recheck_settle_seconds": -1}, "recheck_settle_seconds"),
    ],
)
def test_bad_loop_arguments_raise_value_error_naming_them(source: SimpleNamespace, args: dict, named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named}:"):
        source.parse_args(args)


def test_documentation_matches_the_arguments(source: SimpleNamespace) -> None:
    doc = yaml.safe_load(source.DOCUMENTATION)
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import warm

    assert list(doc["options"]) == list(source.RECEIVER_OPTIONS) + list(warm.OPTIONS)
    receiver = source.parse_receiver_args({})
    loop = warm.Config(intents="/i", prometheus_url="http://p")
    for name, option in doc["options"].items():
        if "default" not in option:
            continue
        if name in source.RECEIVER_OPTIONS:
            assert option["default"] == getattr(receiver, name), name
        elif name.startswith("verify_"):
            assert option["default"] == getattr(loop.verify, name.removeprefix("verify_")), name
        else:
            assert option["default"] == getattr(loop, name), name
    example = yaml.safe_load(source.EXAMPLES)[0]
    assert example["sources"][0]["zerotouch.selfheal.alertmanager"]["token"]
    assert example["rules"][0]["action"]["run_playbook"]["extra_vars"] == {"decision_ids": "{{ event.decision_ids }}"}


def test_to_events_uses_the_shared_normalization(source: SimpleNamespace) -> None:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils import _alerts

    body = notification(alert(evil="{{ lookup('pipe', 'id') }}"))
    assert source.to_events(body) == _alerts.normalize(body)  # verbatim: they go to the loop, not the rulebook


def test_the_source_finds_the_collection_next_to_it_and_fails_clearly_elsewhere(tmp_path: Path) -> None:
    # A bare interpreter: no pytest pythonpath, so only the source's own bootstrap can find _alerts.
    code = "import runpy, sys; runpy.run_path(sys.argv[1]); print('ok')"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    ok = subprocess.run(
        [sys.executable, "-c", code, str(SOURCE_FILE)], capture_output=True, text=True, env=env, check=False
    )
    assert ok.stdout.strip() == "ok", ok.stderr
    stray = tmp_path / "alertmanager.py"
    shutil.copy(SOURCE_FILE, stray)
    bad = subprocess.run([sys.executable, "-c", code, str(stray)], capture_output=True, text=True, env=env, check=False)
    assert bad.returncode != 0
    assert "cannot import ansible_collections.zerotouch.selfheal.plugins.module_utils._alerts" in bad.stderr
    assert "ANSIBLE_COLLECTIONS_PATH" in bad.stderr


def test_dedupe_keys_on_fingerprint_status_and_start(source: SimpleNamespace) -> None:
    dedupe = source.Deduper(window=10)
    firing = {"fingerprint": "a", "status": "firing", "startsAt": "t0", "meta": {"uuid": "u1", "received_at": "r1"}}
    assert not dedupe.is_duplicate(firing, now=0)
    dedupe.record(firing, now=0)
    assert dedupe.is_duplicate(dict(firing), now=9.9)
    assert not dedupe.is_duplicate(dict(firing), now=10.0)  # the window is over: offered again
    assert not dedupe.is_duplicate({**firing, "startsAt": "t1"}, now=1)  # re-fired: a new occurrence
    resolved = {"fingerprint": "a", "status": "resolved", "startsAt": "t0", "meta": {"uuid": "u2", "received_at": "r2"}}
    assert not dedupe.is_duplicate(resolved, now=1)
    dedupe.link(resolved)
    assert (resolved["firing_event_id"], resolved["firing_received_at"]) == ("u1", "r1")
    dedupe.record(resolved, now=1)
    assert not dedupe.is_duplicate(dict(firing), now=2)  # flapping back to firing passes


def test_dedupe_forgets_oldest_beyond_capacity(source: SimpleNamespace) -> None:
    dedupe = source.Deduper(window=100, capacity=2)
    events = [
        {"fingerprint": f, "status": "firing", "startsAt": "t", "meta": {"uuid": f, "received_at": "r"}} for f in "abc"
    ]
    for event in events:
        dedupe.record(event, now=0)
    assert [dedupe.is_duplicate(e, now=1) for e in events] == [False, True, True]


# --- the live receiver --------------------------------------------------------------------------------------------


async def test_missing_or_wrong_token_is_401_without_detail(
    start: StartSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    src = await start()
    for token in (None, "wrong", TOKEN + "x", ""):
        resp = await src.post(notification(alert()), token=token)
        assert resp.status == 401
        assert await resp.json() == {"error": "unauthorized"}
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    async with src.http.post(src.url, json=notification(alert()), headers={"Authorization": f"Basic {TOKEN}"}) as r:
        assert r.status == 401  # the right secret under the wrong scheme
    assert await src.metric('selfheal_alertmanager_requests_rejected_total{reason="unauthorized"}') == 5
    assert src.queue.empty()
    assert "webhook answered 401" in caplog.text and TOKEN not in caplog.text


async def test_each_alert_becomes_one_event_without_the_authorization_header(
    start: StartSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    src = await start()
    body = notification(alert("HighLatency", fingerprint="a1"), alert("HighErrorRate", fingerprint="a2", pod="p-1"))
    resp = await src.post(body, headers={"X-Trace": "t"})
    assert resp.status == 200
    assert await resp.json() == {"accepted": 2, "duplicates": 0}
    first, second = await src.take(2)
    assert first["alertname"] == "HighLatency" and second["alertname"] == "HighErrorRate"
    assert second["labels"]["pod"] == "p-1"
    assert (first["service"], first["namespace"], first["incident"]) == (
        "checkout",
        "shop",
        "shop/checkout/HighLatency",
    )
    assert (first["receiver"], first["externalURL"], first["groupKey"]) == (
        "selfheal",
        "http://alertmanager:9093",
        '{}:{service="checkout"}',
    )
    assert first["meta"]["uuid"] != second["meta"]["uuid"]
    assert first["meta"]["received_at"].endswith("Z")
    for event in (first, second):
        text = json.dumps(event)
        assert TOKEN not in text and "authorization" not in text.lower() and "X-Trace" not in text
    assert src.queue.empty()
    assert TOKEN not in caplog.text


async def test_malformed_or_foreign_bodies_are_400_with_a_reason(start: StartSource) -> None:
    src = await start()
    cases = [
        (b"{not json", "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b"\xff\xfe\xfa", "malformed JSON"),
        (b"[" * 100_000, "malformed JSON: nested too deeply"),
        (b'{"text": "a chat message"}', "alertmanager payload: alerts: is required"),
        (json.dumps({"alerts": [{"status": "firing"}]}), "alertmanager payload: alerts[0].labels: is required"),
    ]
    for body, reason in cases:
        resp = await src.post(body)
        assert resp.status == 400, body[:20]
        assert reason in (await resp.json())["error"]
    assert await src.metric('selfheal_alertmanager_requests_rejected_total{reason="malformed_json"}') == 3
    assert await src.metric('selfheal_alertmanager_requests_rejected_total{reason="invalid_payload"}') == 2
    assert src.queue.empty()


async def test_any_post_path_is_the_webhook(start: StartSource) -> None:
    src = await start()
    for index, path in enumerate(("/", "/alerts", "/api/v1/hooks/selfheal?team=sre", "/healthz")):
        resp = await src.post(notification(alert(fingerprint=f"p{index}")), path=path)
        assert resp.status == 200, path
    assert [e["fingerprint"] for e in await src.take(4)] == ["p0", "p1", "p2", "p3"]


async def test_resends_are_deduplicated_and_resolved_links_to_firing(start: StartSource) -> None:
    src = await start(dedupe_window=0.5)
    firing = notification(alert(fingerprint="d1"), alert(fingerprint="d2"))
    assert (await (await src.post(firing)).json()) == {"accepted": 2, "duplicates": 0}
    assert (await (await src.post(firing)).json()) == {"accepted": 0, "duplicates": 2}  # a group re-send
    first = await src.take(2)
    resolved = notification(alert(status="resolved", fingerprint="d1"), alert(fingerprint="d2"))
    assert (await (await src.post(resolved)).json()) == {"accepted": 1, "duplicates": 1}
    assert (await (await src.post(resolved)).json()) == {"accepted": 0, "duplicates": 2}  # a retry
    (end,) = await src.take(1)
    assert end["status"] == "resolved" and end["fingerprint"] == "d1"
    assert end["firing_event_id"] == first[0]["meta"]["uuid"]
    assert end["firing_received_at"] == first[0]["meta"]["received_at"]
    await asyncio.sleep(0.6)  # past the window, a still-firing alert is offered again
    assert (await (await src.post(notification(alert(fingerprint="d2")))).json())["accepted"] == 1
    assert await src.metric("selfheal_alertmanager_alerts_deduplicated_total") == 5
    assert await src.metric('selfheal_alertmanager_events_accepted_total{kind="alert"}') == 4


async def test_a_full_outbox_answers_503_promptly_and_loses_nothing(start: StartSource) -> None:
    src = await start(max_queue=5)  # nobody reads the queue: ansible-rulebook is busy
    answers = []
    for index in range(10):
        began = time.monotonic()
        resp = await src.post(notification(alert(fingerprint=f"b{index:02d}")))
        answers.append((resp.status, resp.headers.get("Retry-After")))
        assert time.monotonic() - began < 1.0, "the webhook must never wait for the rulebook queue"
    # One event sits in the queue (its one slot), five wait in the outbox, then the door closes.
    assert answers == [(200, None)] * 6 + [(503, "5")] * 4
    assert await src.metric('selfheal_alertmanager_requests_rejected_total{reason="buffer_full"}') == 4
    assert await src.metric("selfheal_alertmanager_queue_depth") == 5
    delivered = [e["fingerprint"] for e in await src.take(6)]
    assert delivered == [f"b{i:02d}" for i in range(6)]
    # Alertmanager retries the refused notifications; they are not mistaken for duplicates.
    for index in range(6, 10):
        assert (await src.post(notification(alert(fingerprint=f"b{index:02d}")))).status == 200
    delivered += [e["fingerprint"] for e in await src.take(4)]
    assert delivered == [f"b{i:02d}" for i in range(10)]
    await asyncio.sleep(0.05)
    assert src.queue.empty()
    assert await src.metric("selfheal_alertmanager_events_delivered_total") == 10


async def test_one_group_larger_than_max_queue_is_still_accepted(start: StartSource) -> None:
    src = await start(max_queue=3)
    resp = await src.post(notification(*(alert(fingerprint=f"g{i}") for i in range(20))))
    assert resp.status == 200  # refusing it would make Alertmanager retry a group that can never fit
    assert [e["fingerprint"] for e in await src.take(20)] == [f"g{i}" for i in range(20)]


async def test_oversized_bodies_are_413_and_counted(start: StartSource) -> None:
    src = await start(max_body_bytes=4096)
    big = notification(*(alert(fingerprint=f"s{i}") for i in range(40)))
    assert (await src.post(big)).status == 413

    async def chunks() -> Any:  # no Content-Length: the limit applies while reading
        yield json.dumps(big).encode()

    assert (await src.post(chunks())).status == 413
    assert await src.metric('selfheal_alertmanager_requests_rejected_total{reason="too_large"}') == 2
    assert (await src.post(notification(alert()))).status == 200


async def test_healthz_and_metrics(start: StartSource) -> None:
    src = await start(max_queue=50)
    status, text = await src.get("/healthz")
    assert status == 200 and json.loads(text) == {"status": "ok", "queue_depth": 0, "max_queue": 50}
    await src.post(notification(alert(fingerprint="m1"), alert(fingerprint="m2"), alert(fingerprint="m3")))
    await src.post(notification(alert(fingerprint="m1")))
    await src.post(b"nope")
    await src.post(notification(alert()), token=None)
    await asyncio.sleep(0.05)
    status, text = await src.get("/metrics")
    assert status == 200
    for sample in (
        "selfheal_alertmanager_requests_total 4",
        "selfheal_alertmanager_alerts_received_total 4",
        'selfheal_alertmanager_events_accepted_total{kind="alert"} 3',
        "selfheal_alertmanager_alerts_deduplicated_total 1",
        'selfheal_alertmanager_requests_rejected_total{reason="malformed_json"} 1',
        'selfheal_alertmanager_requests_rejected_total{reason="unauthorized"} 1',
        'selfheal_alertmanager_requests_rejected_total{reason="buffer_full"} 0',
        "selfheal_alertmanager_events_delivered_total 1",  # the queue's one slot
        "selfheal_alertmanager_queue_depth 2",
        "selfheal_alertmanager_spooled_events 0",
        "# TYPE selfheal_alertmanager_queue_depth gauge",
    ):
        assert sample in text.splitlines(), sample
    assert json.loads((await src.get("/healthz"))[1])["queue_depth"] == 2


async def test_cancellation_propagates_and_frees_the_port(start: StartSource) -> None:
    src = await start()
    assert (await src.post(notification(alert()))).status == 200
    src.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await src.task
    with socket.socket() as sock:
        # SO_REUSEADDR, as any server sets it, tolerates TIME_WAIT leftovers but not a socket still listening.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", src.port))
        sock.listen()
    with pytest.raises(aiohttp.ClientConnectionError):
        await src.post(notification(alert()))


async def test_start_up_errors_name_the_option(start: StartSource, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^certfile: cannot load"):
        await start(certfile=str(tmp_path / "missing.pem"))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="^spool_dir: cannot use"):
        await start(spool_dir=str(tmp_path / "file"))


async def test_a_port_in_use_is_reported(source: SimpleNamespace) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"^port: cannot listen on 127.0.0.1:{port}"):
            await asyncio.wait_for(source.receive(asyncio.Queue(maxsize=1), {"port": port}), 5)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
async def test_listening_beyond_loopback_without_a_token_refuses_to_start(
    source: SimpleNamespace, tmp_path: Path, host: str
) -> None:
    # main() as ansible-rulebook calls it, with everything else valid: the refusal comes before any socket is bound.
    (tmp_path / "intents.yml").write_text("intents: []\n")
    port = free_port()
    args = {"host": host, "port": port, "intents": str(tmp_path / "intents.yml"), "prometheus_url": "http://p"}
    with pytest.raises(ValueError, match="^token: .*loopback"):
        await asyncio.wait_for(source.main(asyncio.Queue(maxsize=1), args), 5)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "something listens on the refused port"


async def test_spooled_events_survive_a_restart_exactly_once(start: StartSource, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = await start(spool_dir=str(spool))
    body = notification(*(alert(fingerprint=f"r{i}") for i in range(5)))
    assert (await first.post(body)).status == 200
    await asyncio.sleep(0.05)
    assert await first.metric("selfheal_alertmanager_spooled_events") == 4  # r0 went into the queue's slot
    with pytest.raises(ValueError, match="^spool_dir: .* in use"):
        await start(spool_dir=str(spool))  # two sources on one spool would deliver twice
    handed_over = first.queue.get_nowait()
    first.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first.task

    second = await start(spool_dir=str(spool))
    replayed = await second.take(4)
    assert [handed_over["fingerprint"]] + [e["fingerprint"] for e in replayed] == [f"r{i}" for i in range(5)]
    assert replayed[0]["meta"]["uuid"] != handed_over["meta"]["uuid"]
    await asyncio.sleep(0.05)
    assert second.queue.empty()
    assert (spool / "events.jsonl").read_text() == ""  # everything delivered: the spool is empty again


def test_spool_drops_a_torn_last_line(source: SimpleNamespace, tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text('{"n": 1}\n{"n": 2}\n{"n": 3}\n{"n": ')
    (tmp_path / "delivered").write_text("1\n")
    spool = source.Spool(tmp_path)
    try:
        assert spool.open() == [{"n": 2}, {"n": 3}]
        spool.ack()
        spool.ack()
        assert (tmp_path / "events.jsonl").read_text() == ""
        assert int((tmp_path / "delivered").read_text()) == 0
    finally:
        spool.close()


# --- TLS ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return generate(tmp_path_factory.mktemp("pki"))


async def test_tls_without_client_certificates(start: StartSource, pki: Pki) -> None:
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    src = await start(scheme="https", client_ssl=trusting, certfile=str(pki.server_cert), keyfile=str(pki.server_key))
    assert (await src.post(notification(alert()))).status == 200
    assert (await src.take(1))[0]["fingerprint"] == "c0ffee0000000001"
    # The server's certificate is checked by the client: one from another CA is refused.
    stranger = ssl.create_default_context(cafile=str(generate(Path(str(pki.ca.parent)) / "other").ca))
    async with aiohttp.ClientSession() as wary:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with wary.post(src.url, json=notification(alert()), ssl=stranger) as resp:
                await resp.read()
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            async with plain.post(src.url.replace("https", "http"), json={}) as resp:
                await resp.read()


async def test_tls_with_client_certificates(start: StartSource, pki: Pki) -> None:
    with_cert = ssl.create_default_context(cafile=str(pki.ca))
    with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    tls = {"certfile": str(pki.server_cert), "keyfile": str(pki.server_key), "cafile": str(pki.ca)}
    src = await start(scheme="https", client_ssl=with_cert, **tls)
    assert (await src.post(notification(alert()))).status == 200
    assert (await src.take(1))[0]["fingerprint"] == "c0ffee0000000001"

    without_cert = ssl.create_default_context(cafile=str(pki.ca))
    async with aiohttp.ClientSession() as anonymous:
        with pytest.raises(aiohttp.ClientError):
            async with anonymous.post(src.url, json=notification(alert()), ssl=without_cert) as resp:
                await resp.read()
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            async with plain.post(src.url.replace("https", "http"), json={}) as resp:
                await resp.read()


def test_the_checkout_is_where_the_tests_expect_it() -> None:
    assert (ROOT / "extensions/eda/plugins/event_source/alertmanager.py").samefile(SOURCE_FILE)


async def test_healthz_and_metrics_hold_no_alert_text(start: StartSource, tmp_path: Path) -> None:
    """Scrapers see counts only: no label, annotation or group text of an alert, nor a fragment of one."""
    src = await start(max_queue=100)
    attacks = [f"leakprobe{i} {text}" for i, text in enumerate(attack_strings(tmp_path / "markers"))]
    for i, text in enumerate(attacks):
        labels = {"alertname": text, "tenant": text, "pod": text}
        sent = alert(fingerprint=f"f{i:015x}", namespace=text, service=text, summary=text, **labels)
        body = notification(sent)
        body["groupLabels"] = body["commonLabels"] = {"tenant": text}
        body["externalURL"] = body["groupKey"] = text
        assert (await src.post(body)).status in (200, 503)
    scraped = (await src.get("/healthz"))[1] + (await src.get("/metrics"))[1]
    assert f"selfheal_alertmanager_alerts_received_total {len(attacks)}" in scraped.splitlines()  # all were read
    assert "leakprobe" not in scraped
    words = {w for text in attacks for w in re.findall(r"[A-Za-z_]{6,}", text)} - {"leakprobe"}
    assert [w for w in sorted(words) if w in scraped] == []
