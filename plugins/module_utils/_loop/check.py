# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# The intent check: load intent and policy, gather a snapshot, decide, journal. Shared by intent_check and watch.

"""gather -> snapshot -> decide -> journal, for one service.

This is the orchestration behind the ``intent_check`` module: all I/O goes through the adapters (``_k8s.Kube``,
``_prom.PromClient``, ``_journal.Journal``); what to conclude from the data is the pure core's job
(``_gather`` builds the snapshot, ``_decide`` decides). A ready snapshot can be replayed instead of gathering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils import _prom
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.decided import module_args
from ansible_collections.zerotouch.selfheal.plugins.module_utils._alerts import alert_block, normalize, target_of
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import Decision, decide
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.facts import breaches
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import GatherError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather import build as _gather
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather.queries import (
    DEFAULT_TENANT_BASELINE,
    OBJECTIVE_INDICATORS,
    key_of,
    objective_queries,
    service_queries,
    workload_of,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import (
    Journal,
    journal_exists,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.handoff import claim_holder
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import (
    find_intent,
    intents_from_document,
    load_intents,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.objects import (
    deployment_pods,
    label_query,
    parse_time,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import (
    load_policy,
    policy_for,
    validate_policy,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot, snapshot_to_dict
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import (
    duration_seconds,
    format_datetime,
    load_yaml,
    parse_datetime,
)

if TYPE_CHECKING:  # the adapter's shape only; the loop connects through the factory it is given
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import KubeApi
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.platform import PlatformReader

# How far back the journal's history matters: the guardrails look at the last hour and the cooldown, learning at
# the policy's learning_window_days (whichever is longer).
HISTORY_HORIZON = timedelta(hours=24)


class Phases:
    """Wall seconds one check spent in each phase, so a slow check shows where its time went (the warm loop
    exports them by phase in ``/metrics``). ``cluster``: the Kubernetes reads; ``prometheus``: the indicators;
    ``history``: the journal's reads; ``decide``: the engine; ``record``: journaling the decision; ``claim``: the
    lock and its journal entry."""

    NAMES = ("cluster", "prometheus", "history", "decide", "record", "claim")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - start


def load_snapshot(snapshot: dict[str, Any] | str) -> tuple[dict[str, Any], str]:
    """A snapshot given inline or as a YAML/JSON file path, with the name errors should use for it."""
    if isinstance(snapshot, dict):
        return snapshot, "snapshot"
    try:
        with open(snapshot, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ValidationError(str(snapshot), "", f"cannot read the snapshot: {exc.strerror}") from exc
    data = load_yaml(text, str(snapshot))
    if not isinstance(data, dict):
        raise ValidationError(str(snapshot), "", "a snapshot must be a mapping")
    return data, str(snapshot)


def intents_from(value: Any) -> list[dict[str, Any]]:
    """Intents from a file or directory path, or given inline (a list, or one intent, e.g. from group vars)."""
    if value is None:
        return []
    if isinstance(value, str):
        return load_intents(value)
    return intents_from_document(value, "intents option")


def policy_from(value: Any) -> dict[str, Any]:
    """The policy from a file path, or given inline as a mapping; defaults when absent."""
    if value is None or isinstance(value, str):
        return load_policy(value)
    return validate_policy(value, "policy option")


def gather(
    intent: dict[str, Any],
    policy: dict[str, Any],
    alert: dict[str, Any] | None,
    now: datetime,
    kube: KubeApi,
    prom: _prom.PromClient | None,
    journal: Journal | None,
    patches: list[dict[str, Any]] | None = None,
    manifests: Any = None,
    platform_intents: list[dict[str, Any]] | None = None,
    platform: PlatformReader | None = None,
    phases: Phases | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The snapshot of one service as the cluster and Prometheus show it now, and warnings about gaps.

    A Kubernetes failure raises (nothing is decided on a half-read cluster); a Prometheus failure leaves the
    indicators unknown and says so, and the decision engine then refuses to act blind. Given every declared
    intent (``platform_intents``), the snapshot also holds the platform view of principle 7, whose objectives are
    read in the same Prometheus round as this service's indicators - or, given a ``platform`` reader (the warm
    loop's :class:`._platform.SharedPlatform`), in the round the checks running at the same time share, while
    this service's own indicators are read fresh. A shared round that failed or lacks an intent leaves this
    check knowing nothing, as a failed round of its own would: it never acts on half a view.
    """
    timed = (phases or Phases()).timing
    namespace, service = intent["namespace"], intent["service"]
    target = workload_of(intent)
    with timed("cluster"):
        deployment = kube.get("apps/v1", "Deployment", namespace, target)
        # Only what the Deployment's labels select: its ReplicaSets carry its pods' labels (ownership is checked
        # on what comes back, and matchExpressions too).
        selected = label_query((deployment.get("spec") or {}).get("selector"))
        replicasets = kube.list("apps/v1", "ReplicaSet", namespace, label_selector=selected)
        pods = deployment_pods(deployment, kube.list("v1", "Pod", namespace, label_selector=selected))
        nodes = kube.list("v1", "Node")

    warnings: list[str] = []
    key = key_of(intent)
    # The baseline of the tenants' shares ends when the breach began: the alert's start (Alertmanager's nanoseconds
    # and all), when there is one.
    block = alert_block(alert)  # normalized once: the baseline's end and the snapshot's alert
    started = parse_time((block or {}).get("startsAt"))
    breach_age = (now - started).total_seconds() if started else None
    queries = {key: service_queries(intent, policy.get("tenant_baseline") or DEFAULT_TENANT_BASELINE, breach_age)}
    others = [i for i in platform_intents or [] if key_of(i) != key]
    if platform is None:
        queries.update(objective_queries(others))
    answered: dict[str, dict[str, Any]] | None = None
    if prom is None:
        warnings.append("no Prometheus URL given: every indicator is unknown")
    else:
        try:
            with timed("prometheus"):
                shared = _shared_view(platform, platform_intents or [], others) if platform is not None else {}
                answered = {**shared, **prom.indicators(queries)}
        except GatherError as exc:
            warnings.append(f"indicators unknown: {exc}")
    indicators = (answered or {}).get(key, {})

    workload = _gather.observed_workload(deployment, replicasets, pods, indicators.get("pod_restarts_15m"))
    if manifests is not None:
        with timed("cluster"):
            workload["drift"] = manifests(kube, intent)
    observed: dict[str, Any] = {
        "metrics": _gather.observed_metrics(indicators),
        "workload": workload,
        "nodes": _gather.observed_nodes(pods, nodes, indicators.get("node_latency_p99_ms") or {}),
        "tenants": _gather.observed_tenants(indicators),
        "dependencies": _gather.observed_dependencies(indicators),
    }
    patch = patch_for(deployment, patches or [])
    if patch:
        observed["patch"] = patch
    horizon = max(HISTORY_HORIZON, timedelta(days=float(policy.get("learning_window_days") or 0)))
    with timed("history"):
        history = journal.history(service, namespace, since=now - horizon, until=now) if journal else []
    if platform_intents is not None:
        breaching = None
        if answered is not None:
            judged = [(intent, indicators)] + [(i, answered.get(key_of(i), {})) for i in others]
            breaching = sum(1 for i, values in judged if breached_objectives(i, values))
        with timed("history"):
            running = journal.pending_actions(since=now - HISTORY_HORIZON) if journal else None
        observed["platform"] = _gather.observed_platform(len(others) + 1, breaching, running, nodes)
    snapshot = {
        "id": f"{namespace}/{service}@{format_datetime(now)}",
        "now": format_datetime(now),
        "intent": intent,
        "policy": policy,
        "alert": block,
        "observed": observed,
        "history": history,
    }
    return snapshot, warnings


def _shared_view(
    platform: PlatformReader, intents: list[dict[str, Any]], others: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The other services' objective indicators from the shared round; GatherError when it has not them all."""
    if not others:
        return {}
    view = platform(intents)
    missing = sorted(key_of(i) for i in others if key_of(i) not in view)
    if missing:
        raise GatherError(f"the platform view lacks {len(missing)} intent(s), {missing[0]} first")
    return {key_of(i): view[key_of(i)] for i in others}


def breached_objectives(intent: dict[str, Any], indicators: dict[str, Any]) -> list[str]:
    """The intent's objectives its indicators breach now (unknown ones are not counted)."""
    out = []
    for objective, limit in (intent.get("objectives") or {}).items():
        value = indicators.get(OBJECTIVE_INDICATORS.get(objective, ""))
        if limit is not None and value is not None and breaches(objective, limit, value):
            out.append(objective)
    return out


def patch_for(deployment: dict[str, Any], patches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fix available for the image the workload runs, from the trusted patch catalog (never from alerts)."""
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    running = {c.get("image") for c in containers}
    for entry in patches:
        if entry.get("from") in running and entry.get("image") not in running:
            return {"image": entry["image"], "severity": entry.get("severity", "medium")}
    return None


def decide_and_record(
    data: dict[str, Any],
    source: str,
    journal: Journal | None,
    alert: dict[str, Any] | None = None,
    phases: Phases | None = None,
) -> tuple[Decision, dict[str, Any], int | None]:
    """Parse, decide and (with a journal) record one snapshot; nothing is journaled if any step fails."""
    timed = (phases or Phases()).timing
    with timed("decide"):
        snapshot = parse_snapshot(data, source)
        decision = decide(snapshot)
        as_dict = snapshot_to_dict(snapshot)
    decision_id = None
    if journal is not None:
        block = (alert_block(alert) if alert else data.get("alert")) or {}
        labels = block.get("labels") or {}
        intent = data.get("intent") or {}
        with timed("record"):
            decision_id = journal.record_decision(
                namespace=intent.get("namespace") or labels.get("namespace") or "_",
                service=intent.get("service") or labels.get("service") or "_",
                snapshot=as_dict,
                decision=decision.to_dict(),
                fingerprint=block.get("fingerprint"),
                alert_status=block.get("status"),
                approval_ttl=approval_ttl(data.get("policy")),
            )
    return decision, as_dict, decision_id


def approval_ttl(policy: dict[str, Any] | None) -> timedelta:
    """How long a proposal made under this (effective) policy can be approved: ``approval_ttl``, 30 minutes."""
    return timedelta(seconds=duration_seconds(str((policy or {}).get("approval_ttl") or "30m")))


def check(params: dict[str, Any], kube_factory: Any, check_mode: bool) -> dict[str, Any]:
    """The whole intent check for the module: returns the module's result. Changes nothing in the cluster unless
    asked to ``claim`` the target (its lock) for the action decided.

    The module's own work is reading its options and opening its connections; the check itself is
    :func:`evaluate`, which the event sources call with their warm clients."""
    if params.get("claim") and (params.get("snapshot") is not None or not params.get("record")):
        raise ValidationError("options", "claim", "needs a live check that records its decision (no snapshot, record)")
    connected: list[Any] = []

    def cluster() -> Any:  # one connection for the gather and the claim
        if not connected:
            connected.append(kube_factory())
        return connected[0]

    writes = bool(params.get("record")) and not check_mode
    journal = None
    if writes:
        journal = Journal(params.get("journal") or None)
    elif params.get("journal") and journal_exists(params["journal"]):
        journal = Journal(params["journal"])  # read the history, write nothing
    try:
        if params.get("snapshot") is not None:
            replay, source = load_snapshot(params["snapshot"])
            decision, snapshot, decision_id = decide_and_record(replay, source, journal if writes else None)
            return _result(decision, snapshot, decision_id, [])

        alert = alert_from(params)
        namespace, service = target_of(alert, params.get("namespace"), params.get("service"))
        intents = intents_from(params.get("intents"))
        policy = policy_from(params.get("policy"))
        now = parse_datetime(params["now"]) if params.get("now") else datetime.now(UTC)
        prom = _prom.PromClient(params["prometheus_url"]) if params.get("prometheus_url") else None
        claiming = bool(params.get("claim"))
        return evaluate(
            Request(namespace, service, alert, now),
            Settings(intents, policy, params.get("patches"), params["lock_ttl_seconds"] if claiming else None),
            Clients(cluster, prom, journal, writes),
            check_mode,
        )
    finally:
        if journal is not None:
            journal.close()


@dataclass(frozen=True)
class Request:
    """What one check is about: the service (from options or the alert's labels), the alert, the instant."""

    namespace: str
    service: str
    alert: dict[str, Any] | None
    now: datetime


@dataclass(frozen=True)
class Settings:
    """What the operator declared: intents, policy, the patch catalog, and the claim's lock TTL (None: no claim)."""

    intents: list[dict[str, Any]]
    policy: dict[str, Any]
    patches: list[dict[str, Any]] | None = None
    claim_ttl_seconds: int | None = None


@dataclass
class Clients:
    """The connections a check uses: ``kube()`` returns the cluster client (connected on first use), ``prom`` is
    None without a Prometheus URL, ``journal`` is read for the history and written when ``record`` is set;
    ``platform``, when given, reads the platform view shared with the checks that run at the same time."""

    kube: Callable[[], KubeApi]
    prom: _prom.PromClient | None
    journal: Journal | None
    record: bool = True
    platform: PlatformReader | None = None  # the warm loop's shared platform view; None: read with the service
    phases: Phases = field(default_factory=Phases)  # where the check's time went


def evaluate(request: Request, settings: Settings, clients: Clients, check_mode: bool = False) -> dict[str, Any]:
    """gather -> snapshot -> decide -> journal -> claim, for one service: THE intent check.

    The ``intent_check`` module and the event sources' warm checker both call this; only how they get their
    clients differs. Returns the module's result (``decision``, ``snapshot``, ``decision_id``, ``gather_warnings``
    and, when claiming an acting decision, ``claim``)."""
    namespace, service, alert, now = request.namespace, request.service, request.alert, request.now
    intent = find_intent(settings.intents, namespace, service)
    policy = policy_for(settings.policy, namespace, service)
    warnings: list[str] = []
    data: dict[str, Any]
    if intent is None:
        data = {
            "id": f"{namespace}/{service}@{format_datetime(now)}",
            "now": format_datetime(now),
            "intent": None,
            "policy": policy,
            "alert": alert_block(alert) or {"status": "firing", "labels": {"namespace": namespace, "service": service}},
        }
    else:
        data, warnings = gather(
            intent,
            policy,
            alert,
            now,
            clients.kube(),
            clients.prom,
            clients.journal,
            settings.patches,
            _drift_reader(intent),
            platform_intents=settings.intents,
            platform=clients.platform,
            phases=clients.phases,
        )
    writer = clients.journal if clients.record and not check_mode else None
    decision, snapshot, decision_id = decide_and_record(
        data, f"{namespace}/{service}", writer, alert, phases=clients.phases
    )
    result = _result(decision, snapshot, decision_id, warnings)
    if settings.claim_ttl_seconds is not None and intent is not None and decision.action != "none":
        with clients.phases.timing("claim"):
            result["claim"] = claim(
                clients.kube(),
                {"lock_ttl_seconds": settings.claim_ttl_seconds, "journal": None},
                intent,
                decision,
                decision_id,
                check_mode,
                journal=writer,
                looked_at=now,
            )
        result["changed"] = result["claim"].pop("changed")
    return result


def alert_from(params: dict[str, Any]) -> dict[str, Any] | None:
    """The alert of a check: ``alert`` given inline, or ``alert_file``, read as data (JSON or YAML: one alert, an
    event of the alertmanager source, or a whole webhook body whose first alert is taken)."""
    if params.get("alert"):
        return dict(params["alert"])
    path = params.get("alert_file")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = load_yaml(fh.read(), str(path))
    except OSError as exc:
        raise ValidationError(str(path), "", f"cannot read the alert file: {exc.strerror}") from exc
    if isinstance(data, dict) and isinstance(data.get("alerts"), list):
        if not data["alerts"]:
            raise ValidationError(str(path), "alerts", "holds no alert")
        data = normalize(data)[0]  # the first alert, with the notification's fields
    if not isinstance(data, dict):
        raise ValidationError(str(path), "", "an alert file must hold one alert (a mapping) or a webhook body")
    return data


def claim(
    kube: KubeApi,
    params: dict[str, Any],
    intent: dict[str, Any],
    decision: Decision,
    decision_id: int | None,
    check_mode: bool,
    journal: Journal | None = None,
    looked_at: datetime | None = None,
) -> dict[str, Any]:
    """Take the target's remediation lock for a decision and journal that its action starts - or, when another
    run holds the lock, that it is skipped. The same lock and journal entries as workload_lock and journal_action,
    taken in the intent check's own run so that a remediation reaches its first write a module run or two sooner.

    ``looked_at`` is when the decision read the service's history. An action on the service journaled since then
    (by another loop whose lock lapsed while it worked, on a loaded machine) means the decision was made on what no
    longer stands: the lock is given back and the action journaled skipped. Every claim journals its action before
    its lock can lapse, so the read after taking the lock sees it.
    """
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.runner import run_lock

    holder = claim_holder(decision_id)
    target = {"namespace": intent["namespace"], "name": workload_of(intent), "holder": holder}
    lock = run_lock(kube, {**target, "ttl_seconds": params["lock_ttl_seconds"]}, check_mode, False)
    since: list[dict[str, str]] = []
    if lock["acquired"] and looked_at is not None and journal is not None:
        since = journal.history(intent["service"], intent["namespace"], since=looked_at)
        if since and not check_mode:
            run_lock(kube, {**target, "state": "released"}, False, False)
    entry = {
        "journal": params.get("journal"),
        "decision_id": decision_id,
        "namespace": intent["namespace"],
        "service": intent["service"],
        "action": decision.action,
        "params": decision.params,
    }
    if since:
        newest = since[-1]
        detail = (
            f"skipped: {newest['action']} on the service was journaled at {newest['at']}, after this check read its"
            " history: the decision was made on what no longer stands"
        )
        journaled = _journaled(journal, {**entry, "state": "skipped", "detail": detail}, check_mode)
        lock = {**lock, "acquired": False, "changed": False, "held_by": f"another run ({newest['action']})"}
    elif lock["acquired"]:
        try:
            journaled = _journaled(journal, {**entry, "state": "started"}, check_mode)
        except Exception:
            # Nothing will act on a start that was not journaled: give the lock back rather than let it expire.
            if not check_mode:
                run_lock(kube, {**target, "state": "released"}, False, False)
            raise
    else:
        skipped = {**entry, "state": "skipped", "detail": f"skipped: locked by {lock['held_by']}"}
        journaled = _journaled(journal, skipped, check_mode)
    return {
        "changed": lock["changed"],
        "acquired": lock["acquired"],
        "holder": holder,
        "held_by": lock["held_by"],
        "expires_at": lock.get("expires_at"),
        "action_id": journaled["action_id"],
        "decision_id": journaled["decision_id"],
        "msg": lock["msg"],
    }


def _journaled(journal: Journal | None, entry: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """journal_action through an open journal (the warm checker's), or through one of its own (the module's)."""
    if journal is None:
        return journal_action(entry, check_mode)
    return journal_action(entry, check_mode, journal)


def _drift_reader(intent: dict[str, Any]) -> Any:
    if not intent.get("manifests"):
        return None
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import runner as _k8s

    def read(kube: KubeApi, intent_: dict[str, Any]) -> list[dict[str, Any]]:
        return _k8s.drift(kube, intent_["manifests"], intent_["namespace"])

    return read


def _result(
    decision: Decision, snapshot: dict[str, Any], decision_id: int | None, warnings: list[str]
) -> dict[str, Any]:
    as_dict = decision.to_dict()
    return {
        "changed": False,
        "decision": as_dict,
        "snapshot": snapshot,
        "decision_id": decision_id,
        "action_args": module_args(as_dict, snapshot, decision_id),
        "gather_warnings": warnings,
    }


# --- journal_action: what was done about a decision ----------------------------------------------------------------

MANUAL_RULE = "manual"


def journal_action(params: dict[str, Any], check_mode: bool, journal: Journal | None = None) -> dict[str, Any]:
    """The ``journal_action`` module: journal that an action starts, how it ended, or that it was skipped.

    ``started`` opens an action (outcome ``pending``) and returns its id; ``applied`` says that the change of a
    started action is made (its outcome stays ``pending`` until the event source has verified it); ``finished``
    closes it with an outcome (or, without ``action_id``, journals a whole action in one go); ``skipped`` journals
    an action that did not run. An action without ``decision_id`` is a manual one: a decision with rule ``manual``
    is journaled for it
    first (``namespace``/``service`` required), so the guardrails count it like any other. Check mode writes
    nothing and returns null ids.
    """
    state = params["state"]
    if state == "applied" and not params.get("action_id"):
        raise ValidationError("options", "action_id", "is required with state=applied")
    opens = state in ("started", "skipped") or (state == "finished" and not params.get("action_id"))
    if opens:
        if not params.get("action"):
            raise ValidationError("options", "action", f"is required with state={state} (and no action_id)")
        if not params.get("decision_id") and not (params.get("namespace") and params.get("service")):
            raise ValidationError(
                "options", "decision_id", "or namespace and service (for a manual action) are required"
            )
    outcome = {"started": "pending", "skipped": "skipped", "applied": "pending"}.get(state) or params["outcome"]
    what = f"{params.get('action') or 'action'} {outcome}"
    if check_mode:
        return {
            "changed": True,
            "action_id": None,
            "decision_id": params.get("decision_id"),
            "outcome": outcome,
            "msg": f"would journal {what}",
        }
    if journal is None:
        with Journal(params.get("journal") or None) as own:
            return _journal_action(own, params, opens, outcome, what)
    return _journal_action(journal, params, opens, outcome, what)


def _journal_action(journal: Journal, params: dict[str, Any], opens: bool, outcome: str, what: str) -> dict[str, Any]:
    state = params["state"]
    if state == "applied":
        journal.mark_applied(params["action_id"], changed=params.get("changed"), detail=params.get("detail"))
        return {
            "changed": True,
            "action_id": params["action_id"],
            "decision_id": params.get("decision_id"),
            "outcome": "pending",
            "msg": f"journaled action {params['action_id']}: applied, its outcome is verified by the event source",
        }
    if not opens:
        journal.finish_action(
            params["action_id"], outcome=outcome, changed=params.get("changed"), detail=params.get("detail")
        )
        return {
            "changed": True,
            "action_id": params["action_id"],
            "decision_id": params.get("decision_id"),
            "outcome": outcome,
            "msg": f"journaled action {params['action_id']}: {outcome}",
        }
    decision_id = params.get("decision_id") or _manual_decision(journal, params)
    ended = None if state == "started" else datetime.now(UTC)
    action_id = journal.record_action(
        decision_id,
        params["action"],
        params.get("params") or {},
        outcome=outcome,
        changed=params.get("changed"),
        detail=params.get("detail"),
        ended=ended,
    )
    return {
        "changed": True,
        "action_id": action_id,
        "decision_id": decision_id,
        "outcome": outcome,
        "msg": f"journaled action {action_id} of decision {decision_id}: {what}",
    }


def _manual_decision(journal: Journal, params: dict[str, Any]) -> int:
    """Journal the decision a person took by running an action by hand."""
    namespace, service, now = params["namespace"], params["service"], datetime.now(UTC)
    reason = params.get("reason") or f"{params['action']} run by hand"
    decision = {
        "action": params["action"],
        "params": params.get("params") or {},
        "proposed": None,
        "proposed_params": {},
        "reasons": [reason],
        "evidence": {},
        "rule": MANUAL_RULE,
    }
    snapshot = {"id": f"{namespace}/{service}@{format_datetime(now)}", "now": format_datetime(now)}
    return journal.record_decision(namespace=namespace, service=service, snapshot=snapshot, decision=decision, at=now)
