"""Fixtures for the event-source tests: the source loaded the way ansible-rulebook loads it, and a live receiver."""

from __future__ import annotations

import asyncio
import contextlib
import runpy
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"
SOURCE_FILE = COLLECTIONS / "ansible_collections/zerotouch/selfheal/extensions/eda/plugins/event_source/alertmanager.py"
TOKEN = "s3cr3t-t0ken-for-tests"


@pytest.fixture(scope="session")
def source() -> SimpleNamespace:
    """The source's globals, from runpy like ansible-rulebook (through the collection path, as when installed)."""
    return SimpleNamespace(**runpy.run_path(str(SOURCE_FILE)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """A live source: its base URL, the rulebook-like queue it feeds, its task and an HTTP session."""

    url: str
    queue: asyncio.Queue
    task: asyncio.Task
    port: int
    http: aiohttp.ClientSession

    async def post(
        self, body: Any, path: str = "/", token: str | None = TOKEN, **kwargs: Any
    ) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        headers.update(kwargs.pop("headers", {}))
        data = None if isinstance(body, dict | list) else body  # bytes, text or an async generator (chunked)
        json_body = body if data is None else None
        async with self.http.post(self.url + path, data=data, json=json_body, headers=headers, **kwargs) as resp:
            await resp.read()
            return resp

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.url + path) as resp:
            return resp.status, await resp.text()

    async def take(self, count: int, timeout: float = 5.0) -> list[dict]:
        return [await asyncio.wait_for(self.queue.get(), timeout) for _event in range(count)]

    async def metric(self, sample: str) -> float:
        text = (await self.get("/metrics"))[1]
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no sample {sample!r} in /metrics:\n{text}")


StartSource = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(source: SimpleNamespace) -> AsyncIterator[StartSource]:
    """Start ``main(queue, args)`` on a free port with a queue of one slot, like ansible-rulebook's."""
    started: list[Running] = []

    async def _start(
        queue: asyncio.Queue | None = None, *, scheme: str = "http", client_ssl: Any = False, **args: Any
    ) -> Running:
        port = free_port()
        queue = queue if queue is not None else asyncio.Queue(maxsize=1)
        task = asyncio.create_task(source.receive(queue, {"port": port, "token": TOKEN, **args}))
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl))
        running = Running(f"{scheme}://127.0.0.1:{port}", queue, task, port, http)
        started.append(running)
        await _wait_until_listening(running)
        return running

    yield _start
    for running in started:
        running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running.task
        await running.http.close()


async def _wait_until_listening(running: Running) -> None:
    for _attempt in range(200):
        if running.task.done():
            running.task.result()  # raises the start-up error
        try:
            writer = (await asyncio.open_connection("127.0.0.1", running.port))[1]
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return
    raise AssertionError("the source did not start listening within 4 s")
