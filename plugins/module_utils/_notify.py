# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Escalation messages: the payload posted to a webhook when a human must look (pure, no I/O).

The ``generic`` format is a JSON document meant for any receiver (a chat bridge, an incident tool, a queue):

```
{source: zerotouch.selfheal, type: escalation, summary, service: {namespace, name},
 decision: {action, params, rule}, reasons: [...], evidence: {...},
 proposed: {action, params} | null, approval_required: bool, dedup_key,
 approval: {decision_id, expires, command, approve_url, deny_url}}   (approval: with a proposal the loop journaled)
```

``dedup_key`` is a digest of what the escalation is about (service, decision, reasons, proposed action), not of
when it was sent: a receiver can drop repeats of the same escalation. The ``slack`` format is a Slack incoming-
webhook message (``text`` plus ``blocks``) carrying the same content.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import SelfHealError, ValidationError

SOURCE = "zerotouch.selfheal"
FORMATS = ("generic", "slack")
_SLACK_TEXT_LIMIT = 3000  # a Slack section's text is at most 3000 characters


def normalize_proposed(proposed: Any, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """An action awaiting approval as ``{action, params}``, from an action name or a dict; None when absent."""
    if proposed is None or proposed == "":
        return None
    if isinstance(proposed, str):
        return {"action": proposed, "params": dict(params or {})}
    if isinstance(proposed, Mapping) and isinstance(proposed.get("action"), str) and proposed["action"]:
        return {"action": proposed["action"], "params": dict(proposed.get("params") or params or {})}
    raise ValidationError("options", "proposed", "must be an action name or a dict with an 'action' key")


def approve_command(decision_id: int) -> str:
    """The command that answers a proposal (``-e deny=true`` denies it): in every escalation that has one."""
    return f"ansible-playbook zerotouch.selfheal.approve -e decision={int(decision_id)} -e approver=<your name>"


def _service(namespace: str | None, name: str | None) -> str | None:
    if namespace and name:
        return f"{namespace}/{name}"
    return name or namespace or None


def build_escalation(
    namespace: str | None = None,
    name: str | None = None,
    decision: Mapping[str, Any] | None = None,
    reasons: list[str] | None = None,
    evidence: Mapping[str, Any] | None = None,
    proposed: Any = None,
    summary: str | None = None,
    approval: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The generic escalation payload; explicit ``reasons``/``evidence``/``proposed`` win over the decision's."""
    decision = dict(decision or {})
    reasons = [str(r) for r in (reasons if reasons is not None else decision.get("reasons") or [])]
    evidence = dict(evidence if evidence is not None else decision.get("evidence") or {})
    if proposed is None:
        wanted = normalize_proposed(decision.get("proposed"), decision.get("proposed_params"))
    else:
        wanted = normalize_proposed(proposed)
    service = _service(namespace, name)
    if not summary:
        subject = service or "a service"
        if wanted:
            summary = f"Approval needed: {wanted['action']} on {subject}"
        else:
            summary = f"{subject} needs a human"
        if reasons:
            summary += f": {reasons[0]}"
    about = {
        "service": {"namespace": namespace, "name": name},
        "decision": {
            "action": decision.get("action", "escalate"),
            "params": dict(decision.get("params") or {}),
            "rule": decision.get("rule"),
        },
        "reasons": reasons,
        "proposed": wanted,
    }
    digest = hashlib.sha256(json.dumps(about, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    payload = {
        "source": SOURCE,
        "type": "escalation",
        "summary": summary,
        **about,
        "evidence": evidence,
        "approval_required": wanted is not None,
        "dedup_key": digest[:32],
    }
    if wanted is not None and approval:
        payload["approval"] = dict(approval)  # how to answer it: the command, and the signed links if any
    return payload


# Slack reads "<...>" as a link or a mention (<!channel>, <@U123>, <http://evil|click>) and "&" as an entity
# start; its documented escapes make them plain text. A bare @here/@channel/@everyone can notify too: a word joiner
# after the "@" keeps the text readable and silent.
_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_SLACK_BROADCAST = re.compile(r"@(?=(here|channel|everyone)\b)", re.IGNORECASE)


def slack_text(text: str) -> str:
    """Text shown as itself in a Slack mrkdwn field: no links, mentions or broadcasts from it."""
    return _SLACK_BROADCAST.sub("@\u2060", str(text).translate(_SLACK_ESCAPES))


def _clip(text: str, limit: int = _SLACK_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_slack(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The generic payload as a Slack incoming-webhook message."""

    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}

    summary = slack_text(payload["summary"])
    blocks = [section(f"*{summary}*")]
    if payload.get("reasons"):
        blocks.append(section("*Why*\n" + "\n".join(f"• {slack_text(r)}" for r in payload["reasons"])))
    proposed = payload.get("proposed")
    if proposed:
        params = slack_text(json.dumps(proposed.get("params") or {}, sort_keys=True))
        blocks.append(section(f"*Proposed action (awaiting approval)*\n`{slack_text(proposed['action'])}` {params}"))
    approval = payload.get("approval") or {}
    if proposed and approval.get("command"):
        blocks.append(section(f"*Answer by command*\n`{slack_text(approval['command'])}` (add `-e deny=true` to deny)"))
    if proposed and approval.get("approve_url") and approval.get("deny_url"):
        # URL buttons open the receiver's confirm page (a GET changes nothing); the page's button answers.
        buttons = [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": approval[key], **style}
            for label, key, style in (
                ("Approve", "approve_url", {"style": "primary"}),
                ("Deny", "deny_url", {"style": "danger"}),
            )
        ]
        blocks.append({"type": "actions", "elements": buttons})
    if payload.get("evidence"):
        evidence = slack_text(json.dumps(payload["evidence"], indent=2, sort_keys=True, default=str))
        blocks.append(section("*Evidence*\n```" + _clip(evidence, _SLACK_TEXT_LIMIT - 20) + "```"))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{SOURCE} · {payload['dedup_key']}"}]})
    return {"text": summary, "blocks": blocks}


def build_payload(fmt: str, **fields: Any) -> dict[str, Any]:
    """The payload to post in format ``fmt`` (``generic`` or ``slack``); see :func:`build_escalation`."""
    if fmt not in FORMATS:
        raise ValidationError("options", "format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    payload = build_escalation(**fields)
    return payload if fmt == "generic" else to_slack(payload)


def webhook_host(url: str) -> str:
    """The webhook without path, query or credentials: what messages may name (the path often is the secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def send_escalation(params: Mapping[str, Any], check_mode: bool, post: Callable[..., Any]) -> dict[str, Any]:
    """The escalation module's work: build the payload and ``post`` it (``open_url``'s signature) unless in check
    mode; a failed delivery raises SelfHealError naming the host only."""
    fields = {k: params[k] for k in ("namespace", "name", "decision", "reasons", "evidence", "proposed", "summary")}
    if params.get("decision_id") is not None:
        fields["approval"] = {"decision_id": params["decision_id"], "command": approve_command(params["decision_id"])}
    payload = build_payload(params["format"], **fields)
    summary = payload.get("summary") or payload.get("text")
    where = webhook_host(params["url"])
    if check_mode:
        return {
            "changed": True,
            "msg": f"would send the escalation to {where}: {summary}",
            "payload": payload,
            "status": None,
        }
    headers = dict({"Content-Type": "application/json"}, **(params["headers"] or {}))
    try:
        response = post(
            params["url"],
            data=json.dumps(payload),
            headers=headers,
            method="POST",
            timeout=params["timeout"],
            validate_certs=params["validate_certs"],
        )
        status = response.getcode()
    except Exception as exc:  # HTTPError, URLError, SSL and socket errors: all mean "not delivered"
        code = getattr(exc, "code", None)
        reason = f"HTTP {code} {getattr(exc, 'reason', '')}" if code else str(getattr(exc, "reason", exc))
        raise SelfHealError(f"cannot send the escalation to {where}: {reason.strip()}") from exc
    return {
        "changed": True,
        "msg": f"sent the escalation to {where} (HTTP {status}): {summary}",
        "payload": payload,
        "status": status,
    }
