# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""What a decided action asks of the module that carries it out: one mapping from a journaled decision (its
action and parameters, and the intent of its snapshot) to that module's arguments.

``decision_apply`` runs the module's code with these arguments; ``remediate.yml`` and ``approve.yml`` give them to
the action's role (``playbooks/vars/act_roles.yml`` reads the ``action_args`` of the check's result), so the two
paths cannot drift apart. Every name comes from the intent file the decision was made against, and every value
from the engine's decision: nothing here is read from an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The decision's action -> the module (and its runner) that carries it out. Escalations are sent, not applied.
MODULES = {
    "restart": "workload_restart",
    "scale_up": "workload_scale",
    "scale_down": "workload_scale",
    "rollback": "workload_rollback",
    "patch": "workload_image",
    "reroute": "node_drain",
    "isolate_tenant": "tenant_limit",
    "reconcile": "workload_reconcile",
}

# The rate an isolated tenant keeps never goes below this, so that it is still served.
MIN_TENANT_RPS = 1.0


def module_args(decision: Mapping[str, Any], snapshot: Mapping[str, Any], decision_id: int | None) -> dict[str, Any]:
    """The arguments of the module behind ``decision``'s action (see :data:`MODULES`), without the connection's.

    An action that no module carries out (``none``, ``escalate``) has none: ``{}``. The isolated tenant's rate is
    what all the other tenants send together (at least :data:`MIN_TENANT_RPS`); an operator's ``tenant_limit_rps``
    overrides it in the playbook.
    """
    action, params = str(decision.get("action")), dict(decision.get("params") or {})
    intent = snapshot.get("intent") or {}
    target = {"namespace": intent.get("namespace"), "name": ((intent.get("target") or {}).get("name"))}
    if action == "restart":
        pods = list(params.get("pods") or [])
        restart_id = f"decision-{decision_id}" if decision_id is not None else None
        return {**target, "pods": pods or None, "restart_id": restart_id}
    if action in ("scale_up", "scale_down"):
        recovery = intent.get("recovery") or {}
        return {
            **target,
            "replicas": int(params["replicas"]),
            "min_replicas": recovery.get("min_replicas"),
            "max_replicas": recovery.get("max_replicas"),
        }
    if action == "rollback":
        revision = params.get("to_revision")
        return {**target, "revision": int(revision) if revision is not None else None}
    if action == "patch":
        return {**target, "image": str(params["image"])}
    if action == "reroute":
        return {**target, "node": str(params["node"]), "state": "drained"}
    if action == "isolate_tenant":
        return {**target, "tenant": str(params["tenant"]), "requests_per_second": tenant_rate(snapshot, params)}
    if action == "reconcile":
        return {"src": intent.get("manifests"), "namespace": intent.get("namespace")}
    return {}


def tenant_rate(snapshot: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    """What all tenants but the noisy one sent together when the decision was made, in requests per second."""
    observed = snapshot.get("observed") or {}
    total = float((observed.get("metrics") or {}).get("requests_per_second") or 0)
    share = float(((observed.get("tenants") or {}).get(params.get("tenant")) or {}).get("share") or 0)
    return max(MIN_TENANT_RPS, round(total * (1 - share), 1))
