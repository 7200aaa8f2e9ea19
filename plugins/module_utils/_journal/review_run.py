# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The ``journal_review`` module's orchestration: read the journal, build the review, render it, write the file.

Reads the journal only. The output file is written (atomically) when its content would change, and not in
check mode; without ``output`` the rendered review is returned instead.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import review_render
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.review import (
    Review,
    build_review,
    parse_since,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal, journal_exists
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime

_EXTENSIONS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}
INCIDENT_LIMIT = 100_000


def format_of(output: str | None, fmt: str | None) -> str:
    """The format asked for, else the one the output's extension names, else HTML."""
    if fmt:
        return fmt
    if output:
        found = _EXTENSIONS.get(Path(output).suffix.lower())
        if found is None:
            raise ValidationError(
                "options", "format", f"cannot tell the format from {output!r}: name it .html or .md, or set format"
            )
        return found
    return "html"


def read_review(params: dict[str, Any], now: datetime) -> Review:
    until = parse_since(params["until"], now) if params.get("until") else now
    since = parse_since(params.get("since") or "7d", until)
    limit = int(params.get("limit") or 10000)
    if limit < 1:
        raise ValidationError("options", "limit", f"must be at least 1, got {limit}")
    path = params.get("journal") or None
    if not journal_exists(path):
        return build_review([], [], since, until)
    filters = {"namespace": params.get("namespace"), "service": params.get("service")}
    with Journal(path) as journal:
        decisions = journal.query(**filters, since=since, until=until, limit=limit, include_snapshot=True)
        incidents = journal.incidents(**filters, limit=INCIDENT_LIMIT)
        gates = journal.gate_answers(**filters, since=since, limit=limit)
    return build_review(decisions, incidents, since, until, truncated=len(decisions) >= limit, gates=gates)


def run(params: dict[str, Any], check_mode: bool, now: datetime | None = None) -> dict[str, Any]:
    """The ``journal_review`` module: the review of the period, written to ``output`` or returned."""
    output = params.get("output")
    fmt = format_of(output, params.get("format"))
    review = read_review(params, now or datetime.now(UTC))
    text = review_render.render(review, fmt)
    result: dict[str, Any] = {
        "changed": False,
        "format": fmt,
        "since": format_datetime(review.since),
        "until": format_datetime(review.until),
        "services": [_summary(svc) for svc in review.services],
        "suggestions": [
            {"rule": s.rule, "service": s.service, "text": s.text, "evidence": list(s.evidence)}
            for s in review.all_suggestions
        ],
    }
    if not output:
        result["review"] = text
        result["msg"] = f"reviewed {len(review.services)} service(s)"
        return result
    result["output"] = output
    try:
        before = Path(output).read_text(encoding="utf-8")
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise ValidationError("options", "output", f"cannot read {output}: {exc}") from exc
    result["changed"] = before != text
    if result["changed"] and not check_mode:
        _write(Path(output), text)
    verb = ("would write" if check_mode else "wrote") if result["changed"] else "unchanged:"
    result["msg"] = f"{verb} the {fmt} review of {len(review.services)} service(s) to {output}"
    return result


def _summary(svc: Any) -> dict[str, Any]:
    return {
        "namespace": svc.namespace,
        "service": svc.service,
        "incidents": len(svc.incidents),
        "breach_seconds": round(svc.breach_seconds, 1),
        "median_time_to_action_seconds": svc.median_time_to_action,
        "median_time_to_recovery_seconds": svc.median_time_to_recovery,
        "escalations": len(svc.escalations),
        "approvals": len(svc.approvals),
        "actions": [
            {"action": a.action, "attempts": a.attempts, "recovered": a.recovered, "success_rate": a.success_rate}
            for a in svc.actions
        ],
    }


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise ValidationError("options", "output", f"cannot write {path}: {exc}") from exc
