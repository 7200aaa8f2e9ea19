# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Argument specs of the remediation modules, built from shared pieces.

Each shared piece has a doc fragment that documents it word for word (``plugins/doc_fragments``), so an option
has the same name, type and meaning in every module:

* :func:`k8s_auth_spec` <-> ``zerotouch.selfheal.k8s_auth`` (how to reach the cluster);
* :func:`workload_spec` <-> ``zerotouch.selfheal.workload`` (the Deployment a remediation acts on);
* :func:`replay_spec` <-> ``zerotouch.selfheal.replay`` (judge a recorded snapshot, or as of another instant).

The per-module factories below add the options of one module to those pieces; the module shells call them and
nothing else, and validate-modules checks the result against each module's DOCUMENTATION.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansible.module_utils.basic import env_fallback


def k8s_auth_spec() -> dict[str, Any]:
    """How to reach the Kubernetes API; every option falls back to a K8S_AUTH_* environment variable."""
    return {
        "kubeconfig": {"type": "path", "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
        "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
        "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
        "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
        "validate_certs": {"type": "bool", "aliases": ["verify_ssl"]},
    }


def workload_spec() -> dict[str, Any]:
    """The Deployment a remediation acts on."""
    return {
        "namespace": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
    }


def _k8s(**options: dict[str, Any]) -> dict[str, Any]:
    return {**k8s_auth_spec(), **options}


def _workload(**options: dict[str, Any]) -> dict[str, Any]:
    return {**k8s_auth_spec(), **workload_spec(), **options}


def restart_spec() -> dict[str, Any]:
    return _workload(
        pods={"type": "list", "elements": "str"},
        only_failing={"type": "bool", "default": False},
        restart_id={"type": "str"},
    )


def scale_spec() -> dict[str, Any]:
    return _workload(
        replicas={"type": "int", "required": True},
        min_replicas={"type": "int"},
        max_replicas={"type": "int"},
        wait={"type": "bool", "default": False},
        wait_timeout={"type": "int", "default": 120},
    )


def rollback_spec() -> dict[str, Any]:
    return _workload(revision={"type": "int"})


def image_spec() -> dict[str, Any]:
    return _workload(
        image={"type": "str", "required": True},
        container={"type": "str"},
    )


def drain_spec() -> dict[str, Any]:
    # namespace/name are optional here: with all_pods, or to uncordon, no Deployment is involved.
    return _k8s(
        node={"type": "str", "required": True},
        state={"type": "str", "default": "drained", "choices": ["drained", "uncordoned"]},
        namespace={"type": "str"},
        name={"type": "str"},
        all_pods={"type": "bool", "default": False},
        wait_timeout={"type": "int", "default": 60},
    )


def tenant_limit_spec() -> dict[str, Any]:
    return _workload(
        tenant={"type": "str"},
        requests_per_second={"type": "float"},
        ttl_minutes={"type": "int"},
        configmap={"type": "str"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    )


TENANT_LIMIT_REQUIRED_IF = [("state", "present", ("tenant", "requests_per_second"))]


def reconcile_spec() -> dict[str, Any]:
    return _k8s(
        manifests={"type": "list", "elements": "dict"},
        src={"type": "path"},
        namespace={"type": "str"},
    )


RECONCILE_ONE_OF = [("manifests", "src")]


def lock_spec() -> dict[str, Any]:
    return _workload(
        state={"type": "str", "default": "acquired", "choices": ["acquired", "released"]},
        holder={"type": "str", "required": True},
        ttl_seconds={"type": "int", "default": 900},
    )


def escalation_spec() -> dict[str, Any]:
    """The escalation module posts to a webhook; it does not talk to Kubernetes."""
    return {
        "url": {"type": "str", "required": True},
        "format": {"type": "str", "default": "generic", "choices": ["generic", "slack"]},
        "headers": {"type": "dict", "default": {}},
        "timeout": {"type": "int", "default": 10},
        "validate_certs": {"type": "bool", "default": True},
        "namespace": {"type": "str"},
        "name": {"type": "str"},
        "summary": {"type": "str"},
        "decision": {"type": "dict"},
        "reasons": {"type": "list", "elements": "str"},
        "evidence": {"type": "dict"},
        "proposed": {"type": "raw"},
        "decision_id": {"type": "int"},
    }


ESCALATION_ONE_OF = [("decision", "reasons", "summary")]


def journal_spec() -> dict[str, Any]:
    """The journal's location (doc fragment ``zerotouch.selfheal.journal``)."""
    return {"journal": {"type": "path"}}


def intent_sources_spec() -> dict[str, Any]:
    """Where intents, policy and metrics come from (doc fragment ``zerotouch.selfheal.intent_sources``)."""
    return {
        "intents": {"type": "raw"},
        "policy": {"type": "raw"},
        "prometheus_url": {"type": "str"},
    }


def replay_spec() -> dict[str, Any]:
    """A recorded snapshot to judge instead of gathering, and the instant to judge at (doc fragment
    ``zerotouch.selfheal.replay``)."""
    return {
        "snapshot": {"type": "raw"},
        "now": {"type": "str"},
    }


def intent_check_spec() -> dict[str, Any]:
    return {
        **k8s_auth_spec(),
        **intent_sources_spec(),
        **journal_spec(),
        **replay_spec(),
        "namespace": {"type": "str"},
        "service": {"type": "str"},
        "alert": {"type": "dict"},
        "alert_file": {"type": "path"},
        "patches": {"type": "list", "elements": "dict"},
        "record": {"type": "bool", "default": True},
        "claim": {"type": "bool", "default": False},
        "lock_ttl_seconds": {"type": "int", "default": 900},
    }


def decision_apply_spec() -> dict[str, Any]:
    return {
        **k8s_auth_spec(),
        **journal_spec(),
        "decision_ids": {"type": "list", "elements": "int", "required": True},
        "tenant_limit_rps": {"type": "float"},
        "tenant_limit_ttl_minutes": {"type": "int", "default": 60},
    }


def approval_spec() -> dict[str, Any]:
    return {
        **k8s_auth_spec(),
        **intent_sources_spec(),
        **journal_spec(),
        "decision_id": {"type": "int", "required": True},
        "approver": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["approved", "denied"], "default": "approved"},
        "patches": {"type": "list", "elements": "dict"},
        "lock_ttl_seconds": {"type": "int", "default": 900},
    }


def change_gate_spec(changes: Sequence[str]) -> dict[str, Any]:
    """``change_gate``; ``changes`` are the change kinds the gate knows (``_engine.gate.CHANGES``)."""
    return {
        **k8s_auth_spec(),
        **intent_sources_spec(),
        **journal_spec(),
        **replay_spec(),
        "namespace": {"type": "str"},
        "service": {"type": "str"},
        "change": {"type": "str", "required": True, "choices": list(changes)},
        "requested_by": {"type": "str"},
        "change_id": {"type": "str"},
        "force": {"type": "bool", "default": False},
        "reason": {"type": "str"},
        "allow_unknown": {"type": "bool", "default": False},
        "burn_window": {"type": "str", "default": "1m"},
        "burn_rate": {"type": "float", "default": 6.0},
        "record": {"type": "bool", "default": True},
    }


CHANGE_GATE_REQUIRED_IF = [("force", True, ("reason",))]
CHANGE_GATE_ONE_OF = [("snapshot", "service")]


def journal_info_spec() -> dict[str, Any]:
    return {
        **journal_spec(),
        "namespace": {"type": "str"},
        "service": {"type": "str"},
        "action": {"type": "str"},
        "since": {"type": "str"},
        "until": {"type": "str"},
        "limit": {"type": "int", "default": 100},
        "include_snapshot": {"type": "bool", "default": False},
        "view": {"type": "str", "choices": ["decisions", "proposals", "promotion"], "default": "decisions"},
        "recovered_within_minutes": {"type": "int", "default": 30},
    }


def journal_review_spec() -> dict[str, Any]:
    return {
        **journal_spec(),
        "since": {"type": "str", "default": "7d"},
        "until": {"type": "str", "aliases": ["end"]},
        "namespace": {"type": "str"},
        "service": {"type": "str"},
        "output": {"type": "path"},
        "format": {"type": "str", "choices": ["html", "markdown"]},
        "limit": {"type": "int", "default": 10000},
    }


def journal_action_spec() -> dict[str, Any]:
    return {
        **journal_spec(),
        "state": {"type": "str", "required": True, "choices": ["started", "applied", "finished", "skipped"]},
        "decision_id": {"type": "int"},
        "action_id": {"type": "int"},
        "action": {"type": "str"},
        "params": {"type": "dict", "default": {}},
        "outcome": {"type": "str", "choices": ["recovered", "not_recovered", "failed", "pending"]},
        "changed": {"type": "bool"},
        "detail": {"type": "str"},
        "namespace": {"type": "str"},
        "service": {"type": "str"},
        "reason": {"type": "str"},
    }


JOURNAL_ACTION_REQUIRED_IF = [("state", "finished", ("outcome",))]
JOURNAL_ACTION_REQUIRED_TOGETHER = [("namespace", "service")]


def intent_verify_spec() -> dict[str, Any]:
    return {
        **k8s_auth_spec(),
        **intent_sources_spec(),
        **journal_spec(),
        "namespace": {"type": "str", "required": True},
        "service": {"type": "str", "required": True},
        "action_id": {"type": "int"},
        "settle_seconds": {"type": "int", "default": 30},
        "interval": {"type": "int", "default": 15},
        "window_seconds": {"type": "int", "default": 120},
        "timeout_seconds": {"type": "int", "default": 600},
    }
