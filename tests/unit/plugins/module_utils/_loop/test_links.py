"""Approval links: signed for one decision, one answer and one expiry; anything else is refused with a reason."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import links as _links
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import NOW

SECRET = "s3cret-s3cret-s3cret"
EXPIRES = NOW + timedelta(minutes=30)


def parts(url: str) -> tuple[str, str, dict[str, str]]:
    split = urlsplit(url)
    _, _, decision_id, answer = split.path.split("/")
    return decision_id, answer, dict(parse_qsl(split.query))


def test_a_signed_link_verifies_until_it_expires() -> None:
    made = _links.links(SECRET, "https://loop.example.com:5000/", 42, EXPIRES)
    assert made["approve_url"].startswith("https://loop.example.com:5000/approvals/42/approve?expires=")
    decision_id, answer, query = parts(made["approve_url"])
    assert _links.verify(SECRET, decision_id, answer, query, NOW) == (42, True)
    assert _links.verify(SECRET, *parts(made["deny_url"])[:2], parts(made["deny_url"])[2], NOW) == (42, False)
    with pytest.raises(_links.LinkRefused, match="expired") as refused:
        _links.verify(SECRET, decision_id, answer, query, EXPIRES)
    assert refused.value.result == "expired"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d, a, q: ("43", a, q), "signature does not match"),  # another decision
        (lambda d, a, q: (d, "deny", q), "signature does not match"),  # the other answer
        (lambda d, a, q: (d, a, {**q, "expires": str(int(q["expires"]) + 3600)}), "signature does not match"),
        (lambda d, a, q: (d, a, {**q, "sig": q["sig"][:-1] + ("0" if q["sig"][-1] != "0" else "1")}), "signature"),
        (lambda d, a, q: (d, a, {"expires": q["expires"]}), "signature does not match"),
        (lambda d, a, q: (d, "run", q), "not an approval link"),
        (lambda d, a, q: ("x1", a, q), "not an approval link"),
    ],
)
def test_a_forged_link_is_refused(change: object, why: str) -> None:
    link = _links.sign(SECRET, "http://h:1", 42, "approve", EXPIRES)
    decision_id, answer, query = change(*parts(link))  # type: ignore[operator]
    with pytest.raises(_links.LinkRefused, match=why) as refused:
        _links.verify(SECRET, decision_id, answer, query, NOW)
    assert refused.value.result == "forged"


def test_another_secret_makes_a_forgery() -> None:
    decision_id, answer, query = parts(_links.sign("another-secret-123456", "http://h:1", 42, "approve", EXPIRES))
    with pytest.raises(_links.LinkRefused, match="signature"):
        _links.verify(SECRET, decision_id, answer, query, NOW)


def test_the_confirm_page_escapes_and_posts() -> None:
    proposal = {"decision_id": 42, "action": "scale_up", "params": {"replicas": 6}, "namespace": "shop",
                "service": "<script>x</script>", "expires": "2026-03-04T15:30:00Z"}  # fmt: skip
    page = _links.confirm_page(proposal, "approve", "/approvals/42/approve?expires=1&sig=a'b")
    assert "<script>x" not in page and "&lt;script&gt;" in page
    assert "method='post'" in page and "sig=a&#x27;b" in page and "name='approver'" in page
