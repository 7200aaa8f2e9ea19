# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# Approval links: HMAC-signed, expiring approve/deny URLs for a proposal, and the receiver's confirm page (pure).

"""Approve and deny links (docs/approvals.md).

A link names the proposal's decision id, the answer (``approve`` or ``deny``) and the proposal's expiry (Unix
seconds), signed with HMAC-SHA256 under the operator's secret::

    <base>/approvals/<decision_id>/<answer>?expires=<unix>&sig=<hex>

The signature proves the link was made by the loop for that answer and that expiry; single use is the journal's
(a proposal leaves ``pending`` once). Opening a link (GET) only shows a confirm page: a chat client's link preview
or a mail scanner that fetches it changes nothing; the page's button POSTs the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

ANSWERS = ("approve", "deny")
SECRET_ENV = "SELFHEAL_APPROVAL_SECRET"
MIN_SECRET_LENGTH = 16


class LinkRefused(Exception):
    """A link that must not act: ``result`` is ``forged`` or ``expired``, ``reason`` says why."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


def _mac(secret: str, decision_id: int, answer: str, expires: int) -> str:
    message = f"zerotouch.selfheal/approval:{int(decision_id)}:{answer}:{int(expires)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, base_url: str, decision_id: int, answer: str, expires: datetime) -> str:
    """The link answering ``answer`` to the proposal of ``decision_id``, valid until ``expires``."""
    if answer not in ANSWERS:
        raise ValueError(f"answer must be approve or deny, got {answer!r}")
    stamp = int(expires.timestamp())
    sig = _mac(secret, decision_id, answer, stamp)
    return f"{base_url.rstrip('/')}/approvals/{int(decision_id)}/{answer}?expires={stamp}&sig={sig}"


def links(secret: str, base_url: str, decision_id: int, expires: datetime) -> dict[str, str]:
    """Both links of a proposal."""
    return {f"{a}_url": sign(secret, base_url, decision_id, a, expires) for a in ANSWERS}


def verify(secret: str, decision_id: str, answer: str, query: Mapping[str, str], now: datetime) -> tuple[int, bool]:
    """Check a link's parts; returns (decision_id, approve) or raises :class:`LinkRefused`.

    The signature is compared in constant time before anything else is trusted; a link past its expiry is refused
    even when its signature holds (the journal refuses it again on its own clock)."""
    expires, sig = str(query.get("expires") or ""), str(query.get("sig") or "")
    if answer not in ANSWERS or not decision_id.isdigit() or not expires.isdigit():
        raise LinkRefused("forged", "not an approval link")
    expected = _mac(secret, int(decision_id), answer, int(expires))
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise LinkRefused("forged", "the link's signature does not match: it was not made by this loop")
    if now.timestamp() >= int(expires):
        raise LinkRefused("expired", "the link has expired: the proposal can no longer be answered")
    return int(decision_id), answer == "approve"


def confirm_page(proposal: Mapping[str, Any], answer: str, action_url: str) -> str:
    """The page a link opens: what is proposed, and a form that POSTs the answer (with the approver's name)."""
    verb = "Approve" if answer == "approve" else "Deny"
    what = (
        f"{proposal['action']} {_params(proposal.get('params') or {})} on {proposal['namespace']}/{proposal['service']}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>zerotouch.selfheal approval</title></head><body>"
        f"<h1>{verb} {html.escape(what)}?</h1>"
        f"<p>Proposal of decision {int(proposal['decision_id'])}, open until {html.escape(str(proposal['expires']))}."
        " Approving checks the service again now and acts only if the same action still stands.</p>"
        f"<form method='post' action='{html.escape(action_url, quote=True)}'>"
        "<label>Your name <input name='approver' required maxlength='100'></label> "
        f"<button type='submit'>{verb}</button></form></body></html>"
    )


def result_page(status: str, message: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>zerotouch.selfheal approval</title></head><body>"
        f"<h1>{html.escape(status)}</h1><p>{html.escape(message)}</p></body></html>"
    )


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
