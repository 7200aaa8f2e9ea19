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
        return aiohttp.web.json_response(self.received)
