# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The change gate's orchestration: gather what the gate needs, judge the change, journal the answer.

Behind the ``change_gate`` module. The snapshot is gathered exactly as ``intent_check`` gathers it
(:func:`._check.gather`: the Deployment, its ReplicaSets and pods, the nodes, Prometheus' indicators and the
journal's history of the last day); on top of it come the gate's own inputs (:class:`GateEvidence`): the error
rate over the watch's short burn window, the target's remediation lock (its Lease), and the rollbacks the loop
journaled for the service. What to conclude is :func:`._engine.gate.judge_change`'s job. A recorded gate
snapshot (the snapshot and its ``gate`` block, as journaled) can be replayed instead of gathering.

Every answer, allow or deny, is journaled (``Journal.record_gate``) with the pipeline's ``requested_by`` and
``change_id``, unless in check mode or with ``record=false``. A service without an intent, a missing Deployment
or an unreachable cluster is an error: no answer is given and nothing is journaled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils import _prom
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.lock import expires_at, holder_of, lease_name
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.gate import (
    STREAK_WINDOW_FACTOR,
    GateAnswer,
    GateEvidence,
    Lock,
    LoopRollback,
    check_change,
    evidence_to_dict,
    judge_change,
    split_document,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.objectives import error_budget
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import GatherError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import (
    Journal,
    default_journal_path,
    journal_exists,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import watch as _watch
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import find_intent
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import policy_for
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import (
    Snapshot,
    parse_snapshot,
    snapshot_to_dict,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import parse_datetime

if TYPE_CHECKING:  # the adapter's shape only; the loop connects through the factory it is given
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import KubeApi

LOOP_ROLLBACK_RULE = "rollback"  # the decision engine's rule id for a rollback it decided (manual ones: "manual")


def burn_error_rate(
    prom: _prom.PromClient | None, intent: dict[str, Any], burn_window: str | None, threshold: float
) -> tuple[float | None, list[str]]:
    """The error rate over the watch's short burn window (the watch's own PromQL), when the gate needs it."""
    if not burn_window or threshold <= 0 or error_budget(intent.get("objectives") or {}) is None:
        return None, []
    if prom is None:
        return None, []  # gather already said that every indicator is unknown
    key = _watch.key_of(intent)
    query = _watch.watch_queries([intent], burn_window)[key][_watch.BURN_INDICATOR]
    try:
        values = prom.indicators({key: {_watch.BURN_INDICATOR: query}}).get(key) or {}
    except GatherError as exc:
        return None, [f"burn rate unknown: {exc}"]
    return values.get(_watch.BURN_INDICATOR), []


def lock_of(kube: KubeApi, intent: dict[str, Any]) -> Lock | None:
    """The remediation lock on the intent's Deployment (the Lease ``workload_lock`` manages), if anyone holds it."""
    lease = kube.get(
        "coordination.k8s.io/v1", "Lease", intent["namespace"], lease_name(_check.workload_of(intent)), True
    )
    holder = holder_of(lease)
    return Lock(holder, expires_at(lease)) if holder else None


def loop_rollbacks(
    journal: Journal | None, intent: dict[str, Any], since: datetime, now: datetime
) -> list[LoopRollback]:
    """The rollbacks the loop decided and ran on the service in ``[since, now]``, from the journal."""
    if journal is None:
        return []
    found = []
    decisions = journal.query(
        namespace=intent["namespace"], service=intent["service"], action="rollback", since=since, until=now, limit=1000
    )
    for item in decisions:
        if item.get("rule") != LOOP_ROLLBACK_RULE:
            continue
        evidence = (item.get("decision") or {}).get("evidence") or {}
        revision = evidence.get("revision")
        age = evidence.get("rollout_age_minutes")
        decided = parse_datetime(item["time"])
        deployed = decided - timedelta(minutes=float(age)) if isinstance(age, int | float) else None
        for action in item.get("actions") or []:
            if action.get("action") == "rollback" and action.get("started"):
                found.append(
                    LoopRollback(
                        parse_datetime(action["started"]),
                        revision if isinstance(revision, int) else None,
                        str(action.get("outcome")),
                        deployed,
                    )
                )
    return found


def _replay(params: dict[str, Any]) -> tuple[Snapshot, GateEvidence, dict[str, Any]]:
    data, source = _check.load_snapshot(params["snapshot"])
    document, evidence = split_document(data, source)
    snapshot = parse_snapshot(document, source)
    if snapshot.intent is None:
        raise ValidationError(source, "intent", "is required: the gate judges a change against the service's intent")
    return snapshot, evidence, {**snapshot_to_dict(snapshot), "gate": evidence_to_dict(evidence)}


def _live(
    params: dict[str, Any], kube_factory: Callable[[], KubeApi], journal: Journal | None
) -> tuple[Snapshot, GateEvidence, dict[str, Any], list[str]]:
    namespace, service = _check.target_of(None, params.get("namespace"), params.get("service"))
    intent = find_intent(_check.intents_from(params.get("intents")), namespace, service)
    if intent is None:
        raise ValidationError(
            "options",
            "service",
            f"no intent for service {namespace}/{service}: there is nothing to judge a change against",
        )
    policy = policy_for(_check.policy_from(params.get("policy")), namespace, service)
    now = parse_datetime(params["now"]) if params.get("now") else datetime.now(UTC)
    prom = _prom.PromClient(params["prometheus_url"]) if params.get("prometheus_url") else None
    kube = kube_factory()
    data, warnings = _check.gather(intent, policy, None, now, kube, prom, journal)
    snapshot = parse_snapshot(data, f"{namespace}/{service}")
    burn, burn_warnings = burn_error_rate(prom, intent, params.get("burn_window"), float(params["burn_rate"]))
    since = now - timedelta(minutes=snapshot.policy.recent_change_minutes * STREAK_WINDOW_FACTOR)
    evidence = GateEvidence(
        burn_error_rate=burn,
        burn_window=params.get("burn_window"),
        lock=lock_of(kube, intent),
        rollbacks=tuple(loop_rollbacks(journal, intent, since, now)),
    )
    document = {**snapshot_to_dict(snapshot), "gate": evidence_to_dict(evidence)}
    return snapshot, evidence, document, warnings + burn_warnings


def gate(params: dict[str, Any], kube_factory: Callable[[], KubeApi], check_mode: bool) -> dict[str, Any]:
    """The ``change_gate`` module: the answer, why, and the snapshot it was judged on. Changes nothing in the
    cluster; journals the answer unless in check mode or told not to."""
    change = check_change(params["change"])
    force, reason = bool(params.get("force")), params.get("reason")
    if force and not (reason or "").strip():
        raise ValidationError("options", "reason", "is required with force: say why the gate may be overridden")
    recording = bool(params.get("record")) and not check_mode
    path = params.get("journal") or None
    journal = None
    where = path or default_journal_path()
    unjournaled = (
        [] if journal_exists(path) else [f"the journal {where} does not exist: no remediation history is known"]
    )
    if recording:
        journal = Journal(path)
    elif params.get("journal") and journal_exists(params["journal"]):
        journal = Journal(params["journal"])  # read the history, write nothing
    try:
        warnings: list[str] = []
        if params.get("snapshot") is not None:
            snapshot, evidence, document = _replay(params)
        else:
            snapshot, evidence, document, warnings = _live(params, kube_factory, journal)
            warnings = unjournaled + warnings
        answer = judge_change(
            snapshot,
            change,
            force=force,
            reason=reason,
            allow_unknown=bool(params.get("allow_unknown")),
            evidence=evidence,
            burn_threshold=float(params["burn_rate"]),
        )
        gate_id = None
        if recording and journal is not None and snapshot.intent is not None:
            gate_id = journal.record_gate(
                namespace=snapshot.intent.namespace,
                service=snapshot.intent.service,
                answer=answer.to_dict(),
                snapshot=document,
                requested_by=params.get("requested_by"),
                change_id=params.get("change_id"),
            )
        return _result(answer, document, gate_id, warnings, params)
    finally:
        if journal is not None:
            journal.close()


def _result(
    answer: GateAnswer, document: dict[str, Any], gate_id: int | None, warnings: list[str], params: dict[str, Any]
) -> dict[str, Any]:
    result = answer.to_dict()
    verdict = "allowed" if answer.allowed else f"denied by {', '.join(answer.denied_by)}"
    service = (
        (document.get("intent") or {}).get("namespace", "?") + "/" + (document.get("intent") or {}).get("service", "?")
    )
    retry = f"; retry after {result['retry_after']}" if result["retry_after"] else ""
    return {
        "changed": False,
        **result,
        "msg": f"{answer.change} of {service} {verdict}{retry}",
        "gate_id": gate_id,
        "requested_by": params.get("requested_by"),
        "change_id": params.get("change_id"),
        "snapshot": document,
        "gather_warnings": warnings,
    }
