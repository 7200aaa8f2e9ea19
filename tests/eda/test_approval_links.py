"""The receiver's approval links: GET shows a confirm page and changes nothing, POST answers once; forged,
expired and reused links get 403 with the reason, and every refused attempt is journaled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import links as _links

from .conftest import free_port

SECRET = "links-secret-for-tests"
PROPOSING = {"action": "escalate", "params": {}, "proposed": "scale_up", "proposed_params": {"replicas": 6},
             "rule": "approval", "reasons": ["mode is approve"]}  # fmt: skip


class FakeLoop:
    """The warm loop's approval surface over a real journal; answering goes straight to the journal."""

    def __init__(self, path: Path) -> None:
        self.config = SimpleNamespace(approval_secret=SECRET)
        self.path = path
        self.journal = Journal(path)  # the test's own (an SQLite connection serves one thread)
        self.answers: list[tuple[int, str, bool]] = []

    def proposal(self, decision_id: int) -> dict[str, Any] | None:
        with Journal(self.path) as journal:
            return journal.proposal(decision_id)

    def refused(self, decision_id: int | None, answer: str, result: str, reason: str) -> None:
        with Journal(self.path) as journal:
            journal.record_approval_attempt(
                decision_id, approver=None, how="link", answer=answer, result=result, reason=reason
            )

    async def answer(self, decision_id: int, approver: str, approve: bool) -> dict[str, Any]:
        self.answers.append((decision_id, approver, approve))
        row = self.journal.answer_proposal(
            decision_id, approve=approve, approver=approver, how="link", expires=datetime.now(UTC)
        )
        state = {"approved": "acted"}.get(row["result"], row["result"])
        return {"state": state, "msg": f"{state}: {row['reason']}"}

    def metrics(self, prefix: str) -> str:
        return ""


@pytest.fixture
async def served(source: SimpleNamespace, tmp_path: Path) -> AsyncIterator[tuple[str, FakeLoop, aiohttp.ClientSession]]:
    loop = FakeLoop(tmp_path / "journal.db")
    port = free_port()
    config = source.parse_receiver_args({"port": port, "token": "t0ken-t0ken"})
    task = asyncio.create_task(source.serve(config, asyncio.Queue().put, loop))
    http = aiohttp.ClientSession()
    url = f"http://127.0.0.1:{port}"
    for _attempt in range(200):
        try:
            async with http.get(url + "/healthz"):
                break
        except aiohttp.ClientError:
            await asyncio.sleep(0.02)
    try:
        yield url, loop, http
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await http.close()
        loop.journal.close()


def propose(journal: Journal, minutes: float = 30) -> tuple[int, dict[str, str]]:
    decision_id = journal.record_decision(
        namespace="shop", service="checkout", snapshot={}, decision=PROPOSING, approval_ttl=timedelta(minutes=minutes)
    )
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return decision_id, _links.links(SECRET, "", decision_id, expires)


async def fetch(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, str]:
    async with http.request(method, url, **kwargs) as resp:
        return resp.status, await resp.text()


async def test_get_shows_the_proposal_and_changes_nothing_post_answers_once(served: Any) -> None:
    url, loop, http = served
    decision_id, made = propose(loop.journal)
    for _preview in range(2):  # a chat client's link preview, then the approver
        status, page = await fetch(http, "GET", url + made["approve_url"])
        assert status == 200 and "Approve scale_up replicas=6 on shop/checkout?" in page and "method='post'" in page
    assert loop.journal.proposal(decision_id)["state"] == "pending" and loop.answers == []
    status, page = await fetch(http, "POST", url + made["approve_url"], data={"approver": "ana"})
    assert status == 200 and "acted" in page.lower()
    assert loop.answers == [(decision_id, "ana", True)]
    assert loop.journal.proposal(decision_id)["how"] == "link"
    for method in ("GET", "POST"):  # reused, the approve link or the deny one
        status, page = await fetch(http, method, url + made["deny_url"], data={"approver": "bo"})
        assert status == 403 and "answered already (approved)" in page
    assert [a["result"] for a in loop.journal.approval_attempts(decision_id)] == ["approved", "reused", "reused"]


async def test_a_name_is_required_to_answer(served: Any) -> None:
    url, loop, http = served
    decision_id, made = propose(loop.journal)
    status, page = await fetch(http, "POST", url + made["deny_url"], data={"approver": "  "})
    assert status == 400 and "name is required" in page and loop.journal.proposal(decision_id)["state"] == "pending"


async def test_forged_and_expired_links_are_403_and_journaled(served: Any) -> None:
    url, loop, http = served
    decision_id, made = propose(loop.journal)
    forged = made["approve_url"].replace(f"/{decision_id}/", f"/{decision_id + 1}/")
    status, page = await fetch(http, "POST", url + forged, data={"approver": "mallory"})
    assert status == 403 and "signature does not match" in page
    stale_id, _made = propose(loop.journal, minutes=30)
    expired = _links.sign(SECRET, "", stale_id, "approve", datetime.now(UTC) - timedelta(seconds=1))
    status, page = await fetch(http, "GET", url + expired)
    assert status == 403 and "expired" in page
    assert [(a["decision_id"], a["result"]) for a in loop.journal.approval_attempts()] == [
        (decision_id + 1, "forged"),
        (stale_id, "expired"),
    ]
    assert loop.answers == [] and loop.journal.proposal(decision_id)["state"] == "pending"


async def test_without_a_secret_no_link_is_served(source: SimpleNamespace) -> None:
    app = source.Receiver(source.parse_receiver_args({}), None, None, None, None).app()
    assert not [r for r in app.router.routes() if "/approvals/" in str(r.resource)]
