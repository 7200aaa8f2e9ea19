"""zerotouch.selfheal.escalation against the sandbox's webhook recorder."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from sandbox import client
from tests.integration.helpers import assert_failed, assert_ok, run_tasks, task

pytestmark = pytest.mark.sandbox

DECISION = {
    "action": "escalate",
    "params": {},
    "proposed": "rollback",
    "proposed_params": {"to_revision": 6},
    "reasons": ["p99 latency 480ms > 250ms after the rollout of revision 7", "rollback requires approval"],
    "evidence": {"latency_p99_ms": 480, "revision": 7},
    "rule": "approval",
}


def recorded(sandbox: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return client.received(sandbox, path=path)


def test_escalation_posts_the_decision(sandbox: dict[str, Any], tmp_path: Path) -> None:
    base = sandbox["webhook_url"].rsplit("/", 1)[0]
    path = f"/escalations/{uuid.uuid4().hex}"
    target = {"url": base + path, "namespace": "shop", "name": "checkout", "decision": DECISION}

    checked = run_tasks(tmp_path, [task("escalation", **target)], check=True, diff=True)
    assert_ok(checked[0], changed=True)
    assert checked[0]["msg"] == (
        f"would send the escalation to {base}: Approval needed: rollback on shop/checkout: "
        "p99 latency 480ms > 250ms after the rollout of revision 7"
    )
    assert checked[0]["status"] is None
    assert recorded(sandbox, path) == []  # check mode sent nothing

    run = run_tasks(
        tmp_path,
        [
            task("escalation", headers={"X-Team": "sre"}, **target),
            task("escalation", format="slack", **target),
            task("escalation", url=base + path, reasons=["payments-db is unhealthy"], evidence={"healthy": False}),
        ],
    )
    for result in run.results:
        assert_ok(result, changed=True)  # a notification is sent every time (receivers dedup on dedup_key)
    assert run[0]["status"] == 200
    generic, slack, bare = (r["payload"] for r in recorded(sandbox, path))
    assert generic == run[0]["payload"]
    assert generic["proposed"] == {"action": "rollback", "params": {"to_revision": 6}}
    assert generic["approval_required"] is True
    assert generic["reasons"] == DECISION["reasons"] and generic["evidence"] == DECISION["evidence"]
    assert generic["service"] == {"namespace": "shop", "name": "checkout"}
    assert slack == run[1]["payload"]
    # Slack's text is mrkdwn: & < > are escaped, so alert text cannot become a link or a mention.
    assert slack["text"] == generic["summary"].replace(">", "&gt;")
    assert slack["text"].endswith("480ms &gt; 250ms after the rollout of revision 7")
    assert any("`rollback`" in b["text"]["text"] for b in slack["blocks"] if b["type"] == "section")
    assert bare["summary"] == "a service needs a human: payments-db is unhealthy" and bare["proposed"] is None


def test_escalation_failures(sandbox: dict[str, Any], tmp_path: Path) -> None:
    run = run_tasks(
        tmp_path,
        [
            task("escalation", url=sandbox["prometheus_url"] + "/no/such/page", reasons=["x"]),
            task("escalation", url="http://user:secret@127.0.0.1:9/hook?token=secret", reasons=["x"], timeout=3),
            task("escalation", url="http://127.0.0.1:9/", reasons=["x"], proposed=42),
        ],
    )
    assert_failed(run[0], f"cannot send the escalation to {sandbox['prometheus_url']}: HTTP 404 Not Found")
    assert_failed(run[1], "cannot send the escalation to http://127.0.0.1:9: ")
    assert "secret" not in run[1]["msg"]
    assert_failed(run[2], "proposed: must be an action name or a dict with an 'action' key")
