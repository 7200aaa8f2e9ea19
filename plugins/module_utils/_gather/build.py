# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# Gather -> snapshot: pure builders that turn Kubernetes objects and Prometheus indicators into a snapshot.

"""Build the snapshot (docs/decisions.md) from what the cluster and Prometheus show.

These functions take plain dicts (the Kubernetes objects as the API returns them, the indicator values from
`_prom.split`) and return the snapshot's blocks; the I/O lives in the adapters. Unknown stays unknown: a value
nobody reported is None or absent, never 0.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.objects import (
    condition,
    cordoned,
    cordoned_by_us,
    failing_reason,
    node_ready,
    owned_by,
    revision_of,
)


def _first_image(template: dict[str, Any]) -> str | None:
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return containers[0].get("image") if containers else None


def pod_failure(pod: dict[str, Any]) -> tuple[str | None, bool]:
    """(reason, ready) of a pod, for the snapshot: why it does not serve, when the pod says why.

    A failing container is judged by the one definition the remediation modules use (``_model.objects.failing_reason``);
    on top of it the snapshot wants to know of a pod the scheduler cannot place and of an OOM kill that a restart
    has already hidden, because the decision engine treats those differently.
    """
    reason = failing_reason(pod)
    if reason == "NotReady":
        reason = None  # the ready flag says it; the snapshot's reason is for an explanation
    status = pod.get("status") or {}
    if reason is None:
        for cs in status.get("containerStatuses") or []:
            if ((cs.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled":
                reason = "OOMKilled"
    if reason is None and status.get("phase") == "Pending":
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                reason = str(cond.get("reason") or "Unschedulable")
    return reason, condition(pod, "Ready").get("status") == "True"


def observed_workload(
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    restarts_15m: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The snapshot's `observed.workload` for a Deployment, its ReplicaSets and its pods."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    revisions: list[dict[str, Any]] = []
    for rs in replicasets:
        rev = revision_of(rs)
        if rev is None or not owned_by(rs, "Deployment", deployment):
            continue
        revisions.append(
            {
                "revision": rev,
                "created": (rs.get("metadata") or {}).get("creationTimestamp"),
                "image": _first_image((rs.get("spec") or {}).get("template") or {}),
            }
        )
    revisions.sort(key=lambda r: int(r["revision"]))
    failing = []
    for pod in pods:
        reason, ready = pod_failure(pod)
        if ready and reason is None:
            continue
        pname = str((pod.get("metadata") or {}).get("name"))
        restarts = (restarts_15m or {}).get(pname)
        entry: dict[str, Any] = {
            "name": pname,
            "node": (pod.get("spec") or {}).get("nodeName"),
            "phase": (pod.get("status") or {}).get("phase"),
            "ready": ready,
        }
        if reason:
            entry["reason"] = reason
        if restarts is not None:
            entry["restarts_15m"] = round(restarts)
        failing.append(entry)
    return {
        "replicas": spec.get("replicas", 1),
        "ready_replicas": status.get("readyReplicas", 0),
        "revision": revision_of(deployment),
        "revisions": revisions,
        "pods": failing,
        "drift": [],
    }


def observed_nodes(
    pods: list[dict[str, Any]], nodes: list[dict[str, Any]], node_latency_ms: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """Per node serving the workload: readiness, schedulability and the workload's p99 latency there."""
    serving = {(p.get("spec") or {}).get("nodeName") for p in pods} | set(node_latency_ms)
    out: dict[str, dict[str, Any]] = {}
    for node in nodes:
        nname = str((node.get("metadata") or {}).get("name"))
        if nname not in serving:
            continue
        entry: dict[str, Any] = {
            "ready": node_ready(node) is not False,
            "schedulable": not (node.get("spec") or {}).get("unschedulable", False),
        }
        latency = node_latency_ms.get(nname)
        if latency is not None:
            entry["latency_p99_ms"] = round(latency, 1)
        out[nname] = entry
    return dict(sorted(out.items()))


def observed_metrics(indicators: dict[str, Any]) -> dict[str, float]:
    """Scalar indicators that Prometheus answered; unknown ones are left out (the snapshot's 'missing')."""
    names = ("latency_p99_ms", "error_rate", "availability", "cpu_utilization", "memory_utilization")
    out = {name: round(indicators[name], 3) for name in names if indicators.get(name) is not None}
    if indicators.get("requests_per_second") is not None:
        out["requests_per_second"] = round(indicators["requests_per_second"], 1)
    return out


def observed_tenants(indicators: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each tenant's share now, with its baseline share when Prometheus has one (a tenant new since is 0)."""
    baseline = indicators.get("tenant_baseline_share")
    out: dict[str, dict[str, float]] = {}
    for tenant, share in sorted((indicators.get("tenant_share") or {}).items()):
        out[tenant] = {"share": round(share, 4)}
        if baseline:  # no baseline at all (a young Prometheus, no traffic then): the share alone decides
            out[tenant]["baseline_share"] = round(baseline.get(tenant, 0.0), 4)
    return out


def observed_platform(
    services_total: int,
    services_breaching: int | None,
    remediations_in_progress: int | None,
    nodes: list[dict[str, Any]],
) -> dict[str, int | None]:
    """The platform view of principle 7. ``nodes_total`` counts the nodes the collection can count on (ready, and
    not cordoned by someone else); ``nodes_cordoned`` those it cordoned itself."""
    ours = [n for n in nodes if cordoned_by_us(n)]
    usable = [n for n in nodes if node_ready(n) is not False and (not cordoned(n) or cordoned_by_us(n))]
    return {
        "services_total": services_total,
        "services_breaching": services_breaching,
        "remediations_in_progress": remediations_in_progress,
        "nodes_total": len(usable),
        "nodes_cordoned": len(ours),
    }


def observed_dependencies(indicators: dict[str, Any]) -> dict[str, dict[str, Any]]:
    up = indicators.get("dependency_up") or {}
    latency = indicators.get("dependency_latency_p99_ms") or {}
    out: dict[str, dict[str, Any]] = {}
    for dep in sorted(set(up) | set(latency)):
        entry: dict[str, Any] = {}
        if dep in up:
            entry["healthy"] = up[dep] >= 1
        if dep in latency:
            entry["latency_p99_ms"] = round(latency[dep], 1)
        out[dep] = entry
    return out
