"""The source fed by a real Alertmanager: its payloads, its bearer header, its re-sends and its resolved notices."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import yaml

from sandbox import procs

from .conftest import TOKEN, Running, StartSource

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = pytest.mark.skipif(BINARY is None, reason="the Alertmanager binary (prometheus-alertmanager) is missing")


def config(webhook_url: str) -> dict:
    return {
        "route": {
            "receiver": "selfheal",
            "group_by": ["alertname", "namespace", "service"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "2s",  # re-send the unchanged group often: the source must swallow it
        },
        "receivers": [
            {
                "name": "selfheal",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                    }
                ],
            }
        ],
    }


Launch = Callable[[str], tuple[str, Path]]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Launch]:
    """Start Alertmanager (once the webhook's URL is known); it is always stopped at the end."""
    started: list[subprocess.Popen] = []

    def launch(webhook_url: str) -> tuple[str, Path]:
        (tmp_path / "am.yml").write_text(yaml.safe_dump(config(webhook_url)))
        port, log = procs.free_port(), tmp_path / "alertmanager.log"
        argv = [
            str(BINARY),
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        started.append(procs.spawn(argv, log))
        procs.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=20, proc=started[-1], log=log)
        return f"http://127.0.0.1:{port}", log

    yield launch
    procs.stop(started)


async def wait_metric(src: Running, sample: str, at_least: float, timeout: float = 15) -> float:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await src.metric(sample)
        if value >= at_least or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_a_real_alertmanager_notification_round_trip(start: StartSource, alertmanager: Launch) -> None:
    src = await start()
    # In a thread: this event loop must keep serving the source while Alertmanager starts.
    am_url, am_log = await asyncio.to_thread(alertmanager, f"http://127.0.0.1:{src.port}/hooks/selfheal")
    starts_at = datetime.now(UTC) - timedelta(seconds=5)
    posted = {
        "labels": {"alertname": "HighLatency", "namespace": "shop", "service": "checkout", "evil": "{{ 6 * 7 }}"},
        "annotations": {"summary": "checkout p99 latency is 900 ms"},
        "startsAt": starts_at.isoformat(),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{am_url}/api/v2/alerts", json=[posted]) as resp:
            assert resp.status == 200, await resp.text()

        (firing,) = await src.take(1, timeout=20)
        assert firing["status"] == "firing"
        assert re.fullmatch(r"[0-9a-f]{16}", firing["fingerprint"])
        assert (firing["incident"], firing["receiver"]) == ("shop/checkout/HighLatency", "selfheal")
        assert firing["externalURL"].startswith("http") and "HighLatency" in firing["groupKey"]
        assert firing["labels"]["evil"] == "{{ 6 * 7 }}"  # verbatim: alerts go to the loop, never to the rulebook
        assert firing["endsAt"] is None and firing["startsAt"].startswith(starts_at.strftime("%Y-%m-%dT%H:%M:%S"))

        # Alertmanager re-sends the unchanged group every repeat_interval: counted, not queued.
        assert await wait_metric(src, "selfheal_alertmanager_alerts_deduplicated_total", 1) >= 1
        assert src.queue.empty()

        posted["endsAt"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        async with http.post(f"{am_url}/api/v2/alerts", json=[posted]) as resp:
            assert resp.status == 200
        (resolved,) = await src.take(1, timeout=20)
    assert (resolved["status"], resolved["fingerprint"]) == ("resolved", firing["fingerprint"])
    assert resolved["firing_event_id"] == firing["meta"]["uuid"]
    assert await src.metric('selfheal_alertmanager_requests_rejected_total{reason="unauthorized"}') == 0
    log = am_log.read_text()
    assert "Notify for alerts failed" not in log, log[-2000:]
