"""Escalation payloads of _notify."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils import _notify as notify
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError

DECISION: dict[str, Any] = {
    "action": "escalate",
    "params": {},
    "proposed": "rollback",
    "proposed_params": {"to_revision": 6},
    "reasons": ["p99 latency 480ms > 250ms since the rollout at 13:58", "rollback needs approval"],
    "evidence": {"latency_p99_ms": 480, "revision": 7},
    "rule": "approval",
}


def test_generic_payload_from_a_decision() -> None:
    payload = notify.build_payload("generic", namespace="shop", name="checkout", decision=DECISION)
    assert payload["source"] == "zerotouch.selfheal" and payload["type"] == "escalation"
    assert payload["summary"] == (
        "Approval needed: rollback on shop/checkout: p99 latency 480ms > 250ms since the rollout at 13:58"
    )
    assert payload["service"] == {"namespace": "shop", "name": "checkout"}
    assert payload["decision"] == {"action": "escalate", "params": {}, "rule": "approval"}
    assert payload["reasons"] == DECISION["reasons"]
    assert payload["evidence"] == DECISION["evidence"]
    assert payload["proposed"] == {"action": "rollback", "params": {"to_revision": 6}}
    assert payload["approval_required"] is True
    assert len(payload["dedup_key"]) == 32


def test_explicit_fields_win_over_the_decision() -> None:
    payload = notify.build_escalation(
        decision=DECISION, reasons=["db down"], evidence={}, proposed={"action": "restart"}, summary="look"
    )
    assert payload["summary"] == "look"
    assert payload["reasons"] == ["db down"]
    assert payload["evidence"] == {}
    assert payload["proposed"] == {"action": "restart", "params": {}}


def test_without_proposed_action() -> None:
    payload = notify.build_escalation(namespace="shop", name="checkout", reasons=["payments-db is unhealthy"])
    assert payload["summary"] == "shop/checkout needs a human: payments-db is unhealthy"
    assert payload["proposed"] is None and payload["approval_required"] is False


def test_dedup_key_depends_on_what_not_on_evidence_values() -> None:
    one = notify.build_escalation(name="checkout", decision=DECISION)
    same = notify.build_escalation(name="checkout", decision=dict(DECISION, evidence={"latency_p99_ms": 510}))
    other = notify.build_escalation(name="checkout", decision=dict(DECISION, proposed="restart"))
    assert one["dedup_key"] == same["dedup_key"] != other["dedup_key"]


def test_slack_message() -> None:
    message = notify.build_payload("slack", namespace="shop", name="checkout", decision=DECISION)
    assert message["text"].startswith("Approval needed: rollback on shop/checkout")
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert texts[0] == f"*{message['text']}*"
    assert "• rollback needs approval" in texts[1]
    assert texts[2].startswith('*Proposed action (awaiting approval)*\n`rollback` {"to_revision": 6}')
    assert texts[3].startswith("*Evidence*\n```")
    assert message["blocks"][-1]["type"] == "context"


def test_slack_sections_stay_within_slack_limits() -> None:
    message = notify.build_payload("slack", name="checkout", reasons=["x"], evidence={"blob": "y" * 10000})
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    evidence = message["blocks"][2]["text"]["text"]
    assert evidence.endswith("…```")


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        (None, None),
        ("", None),
        ("scale_up", {"action": "scale_up", "params": {}}),
        ({"action": "scale_up", "params": {"replicas": 6}}, {"action": "scale_up", "params": {"replicas": 6}}),
    ],
)
def test_normalize_proposed(proposed: Any, expected: Any) -> None:
    assert notify.normalize_proposed(proposed) == expected


@pytest.mark.parametrize("proposed", [42, {"params": {}}, ["rollback"]])
def test_bad_proposed(proposed: Any) -> None:
    with pytest.raises(ValidationError, match="proposed"):
        notify.normalize_proposed(proposed)


def test_unknown_format() -> None:
    with pytest.raises(ValidationError, match="format: must be one of generic, slack"):
        notify.build_payload("teams", reasons=["x"])


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<!channel> wake up", "&lt;!channel&gt; wake up"),
        ("<http://evil.example|click here>", "&lt;http://evil.example|click here&gt;"),
        ("<@U024BE7LH> look", "&lt;@U024BE7LH&gt; look"),
        ("@here @channel @Everyone", "@\u2060here @\u2060channel @\u2060Everyone"),
        ("a & b", "a &amp; b"),
        ("mail@herecorp.example", "mail@herecorp.example"),  # not a broadcast
    ],
)
def test_slack_messages_neutralise_mrkdwn_control_sequences(text: str, shown: str) -> None:
    message = notify.build_payload("slack", namespace="shop", name="checkout", reasons=[text], summary=text)
    assert message["text"] == shown
    assert message["blocks"][0]["text"]["text"] == f"*{shown}*"
    assert message["blocks"][1]["text"]["text"] == f"*Why*\n• {shown}"
    generic = notify.build_payload("generic", namespace="shop", name="checkout", reasons=[text], summary=text)
    assert generic["summary"] == text and generic["reasons"] == [text]  # the generic body keeps it verbatim


APPROVAL = {
    "decision_id": 42,
    "expires": "2026-03-04T15:30:00Z",
    "command": "ansible-playbook zerotouch.selfheal.approve -e decision=42 -e approver=<your name>",
    "approve_url": "https://loop:5000/approvals/42/approve?expires=1&sig=ab",
    "deny_url": "https://loop:5000/approvals/42/deny?expires=1&sig=cd",
}


def test_a_proposal_carries_the_command_and_the_links() -> None:
    generic = notify.build_payload("generic", namespace="shop", name="checkout", decision=DECISION, approval=APPROVAL)
    assert generic["approval"] == APPROVAL
    slack = notify.build_payload("slack", namespace="shop", name="checkout", decision=DECISION, approval=APPROVAL)
    (actions,) = [b for b in slack["blocks"] if b["type"] == "actions"]
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [
        ("Approve", APPROVAL["approve_url"]),
        ("Deny", APPROVAL["deny_url"]),
    ]
    assert any("-e decision=42" in b.get("text", {}).get("text", "") for b in slack["blocks"])


def test_without_a_proposal_no_approval_is_offered() -> None:
    nothing = {**DECISION, "proposed": None, "proposed_params": {}}
    plain = notify.build_payload("generic", namespace="shop", name="checkout", decision=nothing, approval=APPROVAL)
    assert "approval" not in plain
    slack = notify.build_payload("slack", namespace="shop", name="checkout", decision=nothing, approval=APPROVAL)
    assert not [b for b in slack["blocks"] if b["type"] == "actions"]


# --- escalation: the module hands notify.send_escalation Ansible's open_url; the rest is pure ----------------


def fail_if_posted(url: str, **kwargs: Any) -> Any:
    raise AssertionError("check mode must not post")


class FakeResponse:
    def getcode(self) -> int:
        return 202


ESCALATION_PARAMS = {
    "url": "https://user:pw@hooks.example.com:8443/T000/secret?token=x",
    "format": "generic",
    "headers": {"Authorization": "Bearer t"},
    "timeout": 7,
    "validate_certs": True,
    "namespace": "shop",
    "name": "checkout",
    "summary": None,
    "decision": {"action": "escalate", "reasons": ["payments-db is unhealthy"], "evidence": {"x": 1}},
    "reasons": None,
    "evidence": None,
    "proposed": None,
}


def test_escalation_posts_json_and_hides_the_url_secret() -> None:
    posted: list[dict[str, Any]] = []

    def post(url: str, **kwargs: Any) -> FakeResponse:
        posted.append(dict(kwargs, url=url))
        return FakeResponse()

    result = notify.send_escalation(ESCALATION_PARAMS, False, post)
    (call,) = posted
    assert call["url"] == ESCALATION_PARAMS["url"] and call["method"] == "POST" and call["timeout"] == 7
    assert call["headers"] == {"Content-Type": "application/json", "Authorization": "Bearer t"}
    assert json.loads(call["data"]) == result["payload"]
    assert result["status"] == 202 and result["changed"] is True
    assert result["msg"] == (
        "sent the escalation to https://hooks.example.com:8443 (HTTP 202): "
        "shop/checkout needs a human: payments-db is unhealthy"
    )


def test_escalation_check_mode_sends_nothing() -> None:
    def post(url: str, **kwargs: Any) -> Any:
        raise AssertionError("nothing may be sent in check mode")

    result = notify.send_escalation(ESCALATION_PARAMS, True, post)
    assert result["changed"] is True and result["status"] is None
    assert result["msg"].startswith("would send the escalation to https://hooks.example.com:8443: ")


def test_escalation_failure_names_the_webhook_and_the_status() -> None:
    class HTTPError(Exception):
        code, reason = 500, "Internal Server Error"

    def post(url: str, **kwargs: Any) -> Any:
        raise HTTPError()

    with pytest.raises(
        Exception,
        match=r"^cannot send the escalation to https://hooks.example.com:8443: HTTP 500 Internal Server Error$",
    ):
        notify.send_escalation(ESCALATION_PARAMS, False, post)


def test_an_escalation_proposing_an_action_carries_the_command_that_answers_it() -> None:
    proposing = {**ESCALATION_PARAMS["decision"], "proposed": "rollback", "proposed_params": {"to_revision": 3}}  # type: ignore[dict-item]
    params = {**ESCALATION_PARAMS, "decision": proposing, "decision_id": 42}
    result = notify.send_escalation(params, True, fail_if_posted)
    assert result["payload"]["approval"] == {
        "decision_id": 42,
        "command": "ansible-playbook zerotouch.selfheal.approve -e decision=42 -e approver=<your name>",
    }
    plain = notify.send_escalation({**ESCALATION_PARAMS, "decision_id": 42}, True, fail_if_posted)
    assert "approval" not in plain["payload"]  # nothing to approve
