"""A webhook receiver that records what Alertmanager delivers, one JSON line per notification."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp.web


class WebhookRecorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.received: list[dict[str, Any]] = []
        self._runner: aiohttp.web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.post("/{tail:.*}", self._receive), aiohttp.web.get("/received", self._list)])
        self._runner = aiohttp.web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _receive(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        try:
            payload = await request.json()
        except json.JSONDecodeError:
            return aiohttp.web.json_response({"error": "body is not JSON"}, status=400)
        record = {"received_at": time.time(), "path": request.path, "payload": payload}
        self.received.append(record)
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        return aiohttp.web.json_response({"ok": True})

    async def _list(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        """What was received, optionally only posts to ``path`` and notifications with a matching alert.

        A test polls this while the whole session's notifications pile up: filtering here keeps the answer small.
        """
        query = request.query
        path = query.get("path")
        wanted = {k: query[k] for k in ("alertname", "status", "service") if k in query}
        return aiohttp.web.json_response(
            [r for r in self.received if (path is None or r["path"] == path) and _matches(r["payload"], wanted)]
        )


def _matches(payload: Any, wanted: dict[str, str]) -> bool:
    """Whether a notification carries an alert with every wanted alertname, status and service."""
    if not wanted:
        return True
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    for alert in alerts if isinstance(alerts, list) else []:
        labels = alert.get("labels") or {}
        have = {"alertname": labels.get("alertname"), "status": alert.get("status"), "service": labels.get("service")}
        if all(have[k] == v for k, v in wanted.items()):
            return True
    return False
