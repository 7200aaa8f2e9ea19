"""PodDisruptionBudgets: the budget arithmetic, the status the disruption controller reports,
and the check the eviction subresource makes before deleting a pod."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sandbox.kube import errors, meta, selectors
from sandbox.kube.resources import DEPLOYMENTS, PDBS, PODS, REPLICASETS
from sandbox.kube.store import Store

Obj = dict[str, Any]


@dataclass(frozen=True)
class Budget:
    name: str
    expected: int
    healthy: int
    desired: int

    @property
    def allowed(self) -> int:
        return max(self.healthy - self.desired, 0)


def _selects(pdb: Obj, pod: Obj) -> bool:
    spec = pdb.get("spec") or {}
    if spec.get("selector") is None:  # a missing selector selects nothing; an empty one selects everything
        return False
    return selectors.matches(selectors.from_object(spec["selector"]), pod["metadata"].get("labels"))


def _controller_scale(store: Store, pod: Obj) -> tuple[str, int] | None:
    """The owning workload's identity and desired scale: the Deployment above a ReplicaSet, else the ReplicaSet."""
    namespace = meta.namespace_of(pod)
    ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
    if ref is None or ref.get("kind") != "ReplicaSet":
        return None
    rs = store.find(REPLICASETS, namespace, ref["name"])
    if rs is None:
        return None
    deploy_ref = next((r for r in rs["metadata"].get("ownerReferences") or [] if r.get("kind") == "Deployment"), None)
    deployment = store.find(DEPLOYMENTS, namespace, deploy_ref["name"]) if deploy_ref else None
    owner = deployment or rs
    return meta.uid_of(owner), int(owner["spec"].get("replicas", 1))


def _expected(store: Store, pods: list[Obj]) -> int:
    scales: dict[str, int] = {}
    loose = 0
    for pod in pods:
        found = _controller_scale(store, pod)
        if found is None:
            loose += 1
        else:
            scales[found[0]] = found[1]
    return loose + sum(scales.values())


def budget(store: Store, pdb: Obj) -> Budget:
    spec = pdb.get("spec") or {}
    pods = [p for p in store.items(PODS, meta.namespace_of(pdb)) if meta.pod_active(p) and _selects(pdb, p)]
    healthy = sum(1 for pod in pods if meta.pod_ready(pod))
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if isinstance(min_available, int):
        expected, desired = len(pods), min_available
    elif min_available is not None:
        expected = _expected(store, pods)
        desired = meta.scaled(min_available, expected, round_up=True)
    elif max_unavailable is not None:
        expected = _expected(store, pods)
        desired = max(expected - meta.scaled(max_unavailable, expected, round_up=True), 0)
    else:
        expected, desired = len(pods), 0
    return Budget(meta.name_of(pdb), expected, healthy, desired)


def check_eviction(store: Store, pod: Obj) -> None:
    """Raise 429 if evicting the pod would break its budget (unhealthy pods may go while the budget holds)."""
    pdbs = [pdb for pdb in store.items(PDBS, meta.namespace_of(pod)) if _selects(pdb, pod)]
    if not pdbs or not meta.pod_active(pod):
        return
    if len(pdbs) > 1:
        message = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        raise errors.ApiError(500, "InternalError", message)
    found = budget(store, pdbs[0])
    always = (pdbs[0].get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
    if meta.pod_ready(pod):
        allowed = found.allowed >= 1
    else:
        allowed = always or found.healthy >= found.desired
    if not allowed:
        cause = {
            "reason": "DisruptionBudget",
            "message": f"The disruption budget {found.name} needs {found.desired} healthy pods "
            f"and has {found.healthy} currently",
        }
        raise errors.too_many_requests("Cannot evict pod as it would violate the pod's disruption budget.", [cause])


def _write_status(pdb: Obj, found: Budget) -> None:
    status = pdb.setdefault("status", {})
    status.update(
        observedGeneration=pdb["metadata"].get("generation", 1),
        expectedPods=found.expected,
        currentHealthy=found.healthy,
        desiredHealthy=found.desired,
        disruptionsAllowed=found.allowed,
    )
    if found.allowed:
        meta.set_condition(status, "DisruptionAllowed", "True", "SufficientPods", "")
    else:
        meta.set_condition(status, "DisruptionAllowed", "False", "InsufficientPods", "")


class DisruptionController:
    """Keeps every PodDisruptionBudget's status in step with its pods."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def reconcile(self) -> None:
        for pdb in self.store.scan(PDBS):
            found = budget(self.store, pdb)
            change = functools.partial(_write_status, found=found)
            await self.store.mutate(PDBS, meta.namespace_of(pdb), meta.name_of(pdb), change)
