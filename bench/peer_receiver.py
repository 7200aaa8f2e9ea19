"""A stand-in for the native peer (ansible.eda.alertmanager), written from its observed behaviour, for benchmarks.

It is built the way the peer works, not the way it should: an aiohttp handler that awaits ``queue.put`` for every
alert (so the HTTP request waits on ansible-rulebook's one-slot queue), then puts the raw payload as an extra
event; the request headers, Authorization included, are copied into every event; no authentication, no dedupe;
a body that is not JSON ends in a 500. Same ``main(queue, args)`` entry point as an event source.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


def _handler(queue: Any) -> Any:
    async def receive(request: web.Request) -> web.Response:
        payload = await request.json()  # malformed JSON raises: aiohttp answers 500
        headers = dict(request.headers)
        meta = {"endpoint": request.path, "headers": headers}
        for alert in payload.get("alerts", []):
            await queue.put({"alert": alert, "meta": meta})  # blocks while the rulebook is not reading
        await queue.put({"payload": payload, "meta": meta})
        return web.Response(status=202, text="Received")

    return receive


async def main(queue: Any, args: dict[str, Any]) -> None:
    app = web.Application()  # default client_max_size: 1 MiB, larger groups get 413
    app.router.add_post("/{tail:.*}", _handler(queue))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.get("host", "127.0.0.1"), int(args.get("port", 5000))).start()
        await asyncio.Future()  # serve until cancelled
    finally:
        await runner.cleanup()
