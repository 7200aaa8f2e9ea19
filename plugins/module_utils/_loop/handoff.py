# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The playbook's half of the hand-over: apply decisions an event source made and claimed, read by their ids.

The warm loop (:mod:`._loop.warm`) decides, locks the target and journals a ``pending`` action; the rule engine then
runs ``remediate.yml`` with the decisions' ids, and ``decision_apply`` calls :func:`apply` as that playbook's first
task. For each decision it names this playbook's run on the action (so a loop that restarts can stop it), runs the
module code of the action (:mod:`._k8s.runner`, with :func:`._act.decided.module_args`), and journals the change
applied, or the action failed with the reason. The loop verifies what was applied; it escalates what failed and
gives the lock back. One process applies a burst of decisions (one playbook for many rollbacks).

Kept apart from :mod:`._loop.check`, which needs the whole check's code: this runs in a module of its own, and a
playbook's first task pays for every module it imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.decided import MODULES, module_args
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import SelfHealError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import (
    Journal,
    default_journal_path,
    journal_exists,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs as _runs

CLAIM_HOLDER = "selfheal-remediate"

# The roles' defaults that the rulebook path keeps: a drain waits this long on each eviction a PodDisruptionBudget
# refuses. A scale does not wait for its replicas here: the loop verifies the service.
DRAIN_WAIT_SECONDS = 60


def claim_holder(decision_id: int | None) -> str:
    """Who holds a target's lock for a decision (the claim takes it, whoever acts gives it back)."""
    return f"{CLAIM_HOLDER}/" + (f"decision-{decision_id}" if decision_id is not None else "check-mode")


def recall(journal: Journal, decision_id: int, check_mode: bool = False) -> dict[str, Any]:
    """The decision the event source made and claimed, read back from the journal by its id (nothing is decided
    again, nothing is read from the rulebook's event): the decision, the pending action this playbook's run is
    now named on, and the arguments of the action's module."""
    found = journal.decision(decision_id)
    if found is None:
        raise ValidationError("options", "decision_ids", f"no decision {decision_id} in the journal")
    started = [a for a in found["actions"] if a["outcome"] == "pending" and a["action"] == found["action"]]
    if not started:
        raise ValidationError(
            "options", "decision_ids", f"decision {decision_id} ({found['action']}) has no claimed, pending action"
        )
    # Named in the same update that finds the action still pending: a loop that starts again either stops this
    # process, or has settled the action first and this run acts on nothing.
    if not check_mode and not journal.record_run(int(started[-1]["id"]), _runs.this_run() or {"pid": None}):
        raise ValidationError(
            "options",
            "decision_ids",
            f"decision {decision_id}: its action was settled meanwhile (the loop started again): nothing to act on",
        )
    return {
        "decision": found["decision"],
        "decision_id": decision_id,
        "action_id": int(started[-1]["id"]),
        "action_args": module_args(found["decision"], found["snapshot"], decision_id),
    }


def runners() -> dict[str, Callable[..., dict[str, Any]]]:
    """Module name -> its runner; imported on first use, with the Kubernetes client."""
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import runner

    return {
        "workload_restart": runner.run_restart,
        "workload_scale": runner.run_scale,
        "workload_rollback": runner.run_rollback,
        "workload_image": runner.run_image,
        "node_drain": runner.run_drain,
        "tenant_limit": runner.run_tenant_limit,
        "workload_reconcile": runner.run_reconcile,
    }


def run_arguments(module: str, args: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``args`` with the options the decision does not set, as the action's role sets them on the rulebook path."""
    if module == "workload_scale":
        return {**args, "wait": False}
    if module == "node_drain":
        return {**args, "wait_timeout": DRAIN_WAIT_SECONDS}
    if module == "tenant_limit":
        rate = params.get("tenant_limit_rps")
        return {
            **args,
            "requests_per_second": args["requests_per_second"] if rate is None else float(rate),
            "ttl_minutes": params.get("tenant_limit_ttl_minutes") or None,
            "state": "present",
        }
    return args


def apply(params: dict[str, Any], kube_factory: Callable[[], Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    """``decision_apply``: apply each claimed decision of ``params["decision_ids"]``, in order, and journal how it
    went. One that fails does not stop the others; the module fails afterwards, naming each one that failed. Every
    failure is journaled (the loop escalates it at once instead of waiting for its lease), even a bug's."""
    path = params.get("journal") or None
    if not journal_exists(path):
        raise ValidationError("options", "journal", f"no journal at {path or default_journal_path()}")
    ids = [int(i) for i in params["decision_ids"]]
    if not ids:
        raise ValidationError("options", "decision_ids", "no decision to apply")
    applied: list[dict[str, Any]] = []
    failures: list[str] = []
    diffs: list[dict[str, Any]] = []
    unexpected: Exception | None = None  # a bug: journaled like any failure, then raised with its traceback
    kube: Any = None
    run_action = runners()
    with Journal(path) as journal:
        for decision_id in ids:
            try:
                claimed = recall(journal, decision_id, check_mode)
            except ValidationError as exc:
                failures.append(str(exc))
                continue
            action = str(claimed["decision"]["action"])
            entry: dict[str, Any] = {"decision_id": decision_id, "action": action, "changed": False}
            module = MODULES.get(action)
            try:
                if module is None:
                    raise ValidationError("options", "decision_ids", f"decision {decision_id}: {action} is not applied")
                if kube is None:
                    kube = kube_factory()
                args = run_arguments(module, claimed["action_args"], params)
                result = run_action[module](kube, args, check_mode, diff)
            except Exception as exc:  # noqa: BLE001 - journaled for the loop; a bug is raised again below
                why = f"{action} failed: {exc}" if isinstance(exc, SelfHealError) else f"{action} failed: {exc!r}"
                if not isinstance(exc, SelfHealError):
                    unexpected = unexpected or exc
                if not check_mode:
                    journal.finish_action(claimed["action_id"], outcome="failed", detail=why)
                failures.append(f"decision {decision_id}: {why}")
                applied.append({**entry, "failed": True, "msg": why})
                continue
            if not check_mode:
                journal.mark_applied(claimed["action_id"], changed=result["changed"], detail=result["msg"])
            applied.append({**entry, "changed": bool(result["changed"]), "msg": result["msg"], "failed": False})
            if diff and result.get("diff"):  # Ansible shows a list of diffs one after the other
                diffs.extend(result["diff"] if isinstance(result["diff"], list) else [result["diff"]])
    if unexpected is not None:
        raise unexpected
    if failures:
        raise SelfHealError("; ".join(failures))
    done: dict[str, Any] = {
        "changed": any(a["changed"] for a in applied),
        "decisions": applied,
        "msg": "; ".join(f"decision {a['decision_id']}: {a['msg']}" for a in applied),
    }
    if diffs:
        done["diff"] = diffs
    return done
