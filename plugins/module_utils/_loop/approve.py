# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# The trust ladder's answer to a proposal: approve (re-check, then claim the same action) or deny. Shared by the
# approval module and the alertmanager source's approval links.

"""Answer the proposal of an escalation, from the journal, once.

A proposal is the action an escalation asks a human to approve (``proposed``/``proposed_params`` of a journaled
decision). Approving it does not run what was proposed back then: the service is checked again now through the
same check (:func:`._loop.check.evaluate`), under the same policy with the approval gate lifted for that one
action. If the check decides the same action on the same target (its parameters may be refreshed, e.g. the
replica count), that decision is journaled and claimed like any acting decision, and whoever called acts on it
through the remediate path and verifies. If not, the proposal is ``stale``, nothing changes, and the message says
why. Every answer, refused or not, is journaled; only the database decides which of two answers wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.decided import module_args
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import Decision
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import JournalError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather.queries import workload_of
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import find_intent
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import policy_for
from ansible_collections.zerotouch.selfheal.plugins.module_utils._notify import approve_command
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import parse_datetime

APPROVED_BY = "approved"  # the reason an acted decision carries first: who approved which proposal


@dataclass(frozen=True)
class Answer:
    """One answer to a proposal: the proposal's decision id, who answers, how (``command`` or ``link``)."""

    decision_id: int
    approver: str
    how: str
    approve: bool = True


def command(decision_id: int) -> str:
    """The command that answers a proposal (add ``-e deny=true`` to deny it)."""
    return approve_command(decision_id)


def validate(answer: Answer) -> None:
    """Bad input fails before anything is read or written."""
    if not str(answer.approver or "").strip():
        raise ValidationError("options", "approver", "is required: who answers the proposal")
    if answer.how not in ("command", "link"):
        raise ValidationError("options", "how", f"must be command or link, got {answer.how!r}")


def proposal_of(journal: Journal, decision_id: int) -> dict[str, Any]:
    """The journaled decision behind a proposal, or a clear error when there is no such proposal."""
    found = journal.decision(int(decision_id))
    if found is None:
        raise ValidationError("options", "decision", f"no decision {decision_id} in the journal")
    decision = found["decision"]
    if decision.get("action") == "none" and decision.get("proposed"):
        raise ValidationError(
            "options",
            "decision",
            f"decision {decision_id} is an observe-mode dry run ({decision['proposed']} would have been done): there"
            " is nothing to approve; set mode approve for the service to be asked",
        )
    if decision.get("action") != "escalate" or not decision.get("proposed"):
        raise ValidationError(
            "options", "decision", f"decision {decision_id} ({decision.get('action')}) proposes no action to approve"
        )
    return found


def expiry(found: dict[str, Any], policy: dict[str, Any]) -> datetime:
    """When a proposal without a journaled expiry expires: its decision's time plus the policy's approval_ttl."""
    ttl: timedelta = _check.approval_ttl(policy)
    moment: datetime = parse_datetime(found["time"]) + ttl
    return moment


def granted(policy: dict[str, Any], action: str) -> dict[str, Any]:
    """The effective policy with the approval gate lifted for one action: what an approval grants, nothing more.

    ``approve`` becomes ``auto`` and the action leaves ``require_approval``; ``observe`` stays (an operator who
    put a service back to observe since is not overruled by an old proposal)."""
    lifted = dict(policy)
    if lifted.get("mode") == "approve":
        lifted["mode"] = "auto"
    lifted["require_approval"] = [a for a in lifted.get("require_approval") or [] if a != action]
    return lifted


def stands(proposal: dict[str, Any], found: dict[str, Any], rechecked: dict[str, Any]) -> str | None:
    """None when the re-check decides the proposed action on the same target; else why the proposal is stale."""
    decision = rechecked["decision"]
    before = (found.get("snapshot") or {}).get("intent") or {}
    after = (rechecked.get("snapshot") or {}).get("intent") or {}
    action = proposal["action"]
    if before and after and workload_of(before) != workload_of(after):
        return f"the target changed: {workload_of(before)} is now {workload_of(after)}"
    if decision["action"] == action:
        return None
    why = "; ".join(decision.get("reasons") or []) or decision.get("rule") or ""
    if decision["action"] == "none" and not decision.get("proposed"):
        return f"the service no longer needs {action}: {why}"
    other = decision.get("proposed") if decision["action"] == "escalate" else decision["action"]
    if other and other != action:
        return f"the check now decides {other}, not {action}: {why}"
    return f"{action} no longer stands: the check now decides {decision['action']} ({why})"


def answer_proposal(
    answer: Answer,
    settings: _check.Settings,
    clients: _check.Clients,
    now: datetime,
) -> dict[str, Any]:
    """Approve or deny a proposal; on approval re-check and, if it still stands, journal and claim the action.

    ``settings`` are the operator's intents, policy, patch catalog and the claim's lock TTL (required);
    ``clients.journal`` must be open. Returns ``changed``, ``state`` (``denied``, ``expired``, ``answered``,
    ``stale``, ``acted``), ``msg`` and, when acted, ``decision_id``, ``decision``, ``snapshot`` and ``claim`` of
    the new acting decision (the shape of a claiming intent check)."""
    validate(answer)
    journal = clients.journal
    if journal is None:
        raise ValidationError("options", "journal", "is required: proposals are read from the journal")
    found = proposal_of(journal, answer.decision_id)
    namespace, service = found["namespace"], found["service"]
    policy = policy_for(settings.policy, namespace, service)
    try:
        taken = journal.answer_proposal(
            answer.decision_id,
            approve=answer.approve,
            approver=answer.approver,
            how=answer.how,
            expires=expiry(found, policy),
            now=now,
        )
    except JournalError as exc:
        raise ValidationError("options", "decision", str(exc)) from exc
    what = f"{taken['action']} of {namespace}/{service} (proposal {answer.decision_id})"
    # changed: the proposal moved (approved or denied); an answer refused (expired, answered) changes nothing.
    moved = taken["result"] in ("approved", "denied")
    result: dict[str, Any] = {"changed": moved, "proposal": taken, "decision_id": None}
    if taken["result"] == "denied":
        return {**result, "state": "denied", "msg": f"denied {what}: nothing is changed"}
    if taken["result"] == "expired":
        return {
            **result,
            "state": "expired",
            "msg": f"{what} expired at {taken['expires']}: it is never acted on; nothing is changed",
        }
    if taken["result"] == "answered":
        by = f" by {taken['approver']} ({taken['how']})" if taken["approver"] else ""
        return {
            **result,
            "state": "answered",
            "msg": f"{what} was answered already: {taken['state']}{by}; this answer does nothing",
        }
    return _act(answer, taken, found, settings, clients, now, what, result)


def _act(
    answer: Answer,
    taken: dict[str, Any],
    found: dict[str, Any],
    settings: _check.Settings,
    clients: _check.Clients,
    now: datetime,
    what: str,
    result: dict[str, Any],
) -> dict[str, Any]:
    journal = clients.journal
    if journal is None:  # answer_proposal refuses to answer without one
        raise JournalError("an approval needs the journal its proposal is in")
    namespace, service = found["namespace"], found["service"]
    policy = granted(policy_for(settings.policy, namespace, service), taken["action"])
    intent = find_intent(settings.intents, namespace, service)
    try:
        if intent is None:
            raise ValidationError("intents", "", f"no intent declares {namespace}/{service} any more")
        # The check, not recorded yet: a decision that does not stand is not journaled as one to act on.
        rechecked = _check.evaluate(
            _check.Request(namespace, service, (found.get("snapshot") or {}).get("alert"), now),
            _check.Settings(settings.intents, policy, settings.patches, None),
            _check.Clients(clients.kube, clients.prom, journal, record=False),
        )
    except Exception as exc:
        # Blind is never acting: the proposal is stale, and the approver is told why.
        reason = f"the re-check failed: {exc}"
        journal.settle_proposal(answer.decision_id, "stale", detail=reason)
        return {**result, "state": "stale", "msg": f"approved {what}, but it is stale: {reason}; nothing is changed"}
    why_not = stands(taken, found, rechecked)
    if why_not is not None:
        journal.settle_proposal(answer.decision_id, "stale", detail=why_not)
        return {
            **result,
            "state": "stale",
            "recheck": rechecked["decision"],
            "msg": f"approved {what}, but it is stale: {why_not}; nothing is changed",
        }
    decided = rechecked["decision"]
    approved = f"{APPROVED_BY} by {answer.approver} ({answer.how}) from proposal {answer.decision_id}"
    acting = {**decided, "reasons": [approved, *decided.get("reasons", [])]}
    block = rechecked["snapshot"].get("alert") or {}
    try:
        acted_id = journal.record_decision(
            namespace=namespace,
            service=service,
            snapshot=rechecked["snapshot"],
            decision=acting,
            fingerprint=block.get("fingerprint"),
            at=now,
        )
        claimed = _check.claim(
            clients.kube(),
            {"lock_ttl_seconds": settings.claim_ttl_seconds or 900, "journal": None},
            intent,
            _as_decision(acting),
            acted_id,
            False,
            journal=journal,
            looked_at=now,
        )
    except Exception as exc:
        # No approval is left approved with nothing acting on it: it ends stale, and the error is raised.
        journal.settle_proposal(answer.decision_id, "stale", detail=f"the claim failed: {exc}")
        raise
    if not claimed["acquired"]:
        reason = f"the target is locked by {claimed['held_by']}"
        journal.settle_proposal(answer.decision_id, "stale", detail=reason)
        return {**result, "state": "stale", "msg": f"approved {what}, but it is stale: {reason}; nothing is changed"}
    detail = f"{acting['action']} {acting['params']} claimed as decision {acted_id}"
    journal.settle_proposal(answer.decision_id, "acted", detail=detail, acted_decision_id=acted_id)
    return {
        **result,
        "state": "acted",
        "decision_id": acted_id,
        "decision": acting,
        "snapshot": rechecked["snapshot"],
        "action_args": module_args(acting, rechecked["snapshot"], acted_id),
        "gather_warnings": rechecked.get("gather_warnings", []),
        "claim": claimed,
        "msg": f"approved {what}: the check still decides it; {detail}",
    }


def _as_decision(decision: dict[str, Any]) -> Decision:
    return Decision(
        action=decision["action"],
        params=decision.get("params") or {},
        proposed=decision.get("proposed"),
        reasons=tuple(decision.get("reasons") or ()),
        evidence=decision.get("evidence") or {},
        proposed_params=decision.get("proposed_params") or {},
        rule=decision.get("rule") or "",
    )


# --- the approval module ------------------------------------------------------------------------------------------


def approval(params: dict[str, Any], kube_factory: Any, check_mode: bool) -> dict[str, Any]:
    """The ``approval`` module: answer a proposal by command. Check mode reads the proposal and says what an
    answer would do now, writing nothing and checking nothing again."""
    from datetime import UTC

    from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import (
        default_journal_path,
        journal_exists,
    )
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._prom import PromClient

    answer = Answer(
        int(params["decision_id"]), str(params.get("approver") or ""), "command", params["state"] != "denied"
    )
    validate(answer)
    path = params.get("journal") or None
    if not journal_exists(path):
        raise ValidationError("options", "journal", f"no journal at {path or default_journal_path()}")
    now = datetime.now(UTC)
    with Journal(path) as journal:
        if check_mode:
            return preview(journal, answer, now)
        if answer.approve and params.get("intents") is None:
            raise ValidationError("options", "intents", "is required to approve: the service is checked again")
        settings = _check.Settings(
            _check.intents_from(params.get("intents")),
            _check.policy_from(params.get("policy")),
            params.get("patches"),
            int(params.get("lock_ttl_seconds") or 900),
        )
        prom = PromClient(params["prometheus_url"]) if params.get("prometheus_url") else None
        connected: list[Any] = []

        def kube() -> Any:
            if not connected:
                connected.append(kube_factory())
            return connected[0]

        return answer_proposal(answer, settings, _check.Clients(kube, prom, journal), now)


def preview(journal: Journal, answer: Answer, now: datetime) -> dict[str, Any]:
    """What answering would do, from the journal alone (check mode)."""
    found = proposal_of(journal, answer.decision_id)
    row = journal.proposal(answer.decision_id)
    state = row["state"] if row else "pending"
    verb = "approve" if answer.approve else "deny"
    proposed = found["decision"]["proposed"]
    what = f"{proposed} of {found['namespace']}/{found['service']} (proposal {answer.decision_id})"
    if row and row["state"] == "pending" and parse_datetime(row["expires"]) <= now:
        state = "expired"
    if state != "pending":
        msg = f"would not {verb} {what}: it is {state}"
    elif answer.approve:
        msg = f"would check {found['namespace']}/{found['service']} again and, if {proposed} still stands, act"
    else:
        msg = f"would deny {what}"
    return {"changed": state == "pending", "state": state, "proposal": row, "decision_id": None, "msg": msg}
