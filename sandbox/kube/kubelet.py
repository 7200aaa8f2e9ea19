"""What nodes do for pods: the scheduler picks a node, the kubelet starts the containers and reports status,
and a NotReady node's pods are reported not ready (the node lifecycle controller's job in a real cluster)."""

from __future__ import annotations

import copy
import functools
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sandbox.kube import meta, strategies
from sandbox.kube.errors import ApiError
from sandbox.kube.resources import NODES, PODS
from sandbox.kube.store import Store

Obj = dict[str, Any]


def tag_contains(marker: str) -> Callable[[str], bool]:
    """An unpullable-image predicate: images whose tag contains ``marker`` never pull."""

    def unpullable(image: str) -> bool:
        return marker in strategies.image_tag(image)

    return unpullable


default_unpullable = tag_contains("nonexistent")


def _tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", taint.get("effect")):
            continue
        if toleration.get("operator") == "Exists" and toleration.get("key") in (None, "", taint.get("key")):
            return True
        if toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def _unfit_reason(pod: Obj, node: Obj) -> str | None:
    """Why the pod cannot go to this node, in the scheduler's words; None if it can."""
    if not meta.node_ready(node):
        return "node(s) were not ready"
    if (node.get("spec") or {}).get("unschedulable"):
        return "node(s) were unschedulable"
    tolerations = pod["spec"].get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
            return "node(s) had untolerated taint"
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(key) != value for key, value in (pod["spec"].get("nodeSelector") or {}).items()):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def _bind(pod: Obj, node: str) -> None:
    pod["spec"]["nodeName"] = node
    meta.set_condition(pod.setdefault("status", {}), "PodScheduled", "True")


def _unschedulable(pod: Obj, message: str) -> None:
    meta.set_condition(pod.setdefault("status", {}), "PodScheduled", "False", "Unschedulable", message)


def _spread_group(pod: Obj) -> tuple[str, str]:
    """The pods spread across nodes together: those of one owner (a ReplicaSet's replicas) in one namespace."""
    return meta.namespace_of(pod) or "", meta.controller_uid(pod) or meta.name_of(pod)


class Scheduler:
    """Binds pending pods to Ready, schedulable, fitting nodes — the least loaded first."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def reconcile(self) -> None:
        nodes = self.store.scan(NODES)
        pods = self.store.scan(PODS)
        bound = [p for p in pods if p["spec"].get("nodeName") and meta.pod_active(p)]
        load = Counter(p["spec"]["nodeName"] for p in bound)
        # Like the default topology spread: a workload's replicas go to different nodes before the busiest
        # node is even considered, whatever else the cluster runs.
        siblings = Counter((_spread_group(p), p["spec"]["nodeName"]) for p in bound)
        for pod in pods:
            if pod["spec"].get("nodeName") or not meta.pod_active(pod):
                continue
            fitting = [node for node in nodes if _unfit_reason(pod, node) is None]
            if fitting:
                group = _spread_group(pod)
                target = meta.name_of(
                    min(
                        fitting,
                        key=lambda node: (
                            siblings[group, meta.name_of(node)],
                            load[meta.name_of(node)],
                            meta.name_of(node),
                        ),
                    )
                )
                load[target] += 1
                siblings[group, target] += 1
                change: Callable[[Obj], None] = functools.partial(_bind, node=target)
            else:
                change = functools.partial(_unschedulable, message=self._explain(pod, nodes))
            await self.store.mutate(PODS, meta.namespace_of(pod), meta.name_of(pod), change)

    @staticmethod
    def _explain(pod: Obj, nodes: list[Obj]) -> str:
        if not nodes:
            return "no nodes available to schedule pods"
        reasons = Counter(_unfit_reason(pod, node) for node in nodes)
        details = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()) if reason)
        return f"0/{len(nodes)} nodes are available: {details}."


class Kubelet:
    """Starts bound pods after ``ready_delay``; leaves alone any pod whose status a client has written."""

    def __init__(
        self,
        store: Store,
        *,
        ready_delay: float,
        unpullable: Callable[[str], bool],
        injected: set[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ready_delay = ready_delay
        self.unpullable = unpullable
        self.injected = injected
        self._clock = clock
        self._bound_at: dict[str, float] = {}  # pod uid -> when the kubelet first saw it on its node

    def next_deadline(self) -> float | None:
        now = self._clock()
        pending = [start + self.ready_delay for start in self._bound_at.values() if start + self.ready_delay > now]
        return min(pending, default=None)

    async def reconcile(self) -> None:
        nodes = {meta.name_of(node): node for node in self.store.scan(NODES)}
        live: set[str] = set()
        for pod in self.store.scan(PODS):
            live.add(meta.uid_of(pod))
            node_name = pod["spec"].get("nodeName")
            if node_name and meta.pod_active(pod) and meta.uid_of(pod) not in self.injected:
                await self._sync(pod, nodes.get(node_name))
        self._bound_at = {uid: start for uid, start in self._bound_at.items() if uid in live}

    async def _sync(self, pod: Obj, node: Obj | None) -> None:
        namespace, name = meta.namespace_of(pod), meta.name_of(pod)
        if node is None:  # its node is gone: the pod garbage collector removes such pods
            try:
                await self.store.delete(PODS, namespace, name)
            except ApiError:
                pass
            return
        if not meta.node_ready(node):
            await self.store.mutate(PODS, namespace, name, _mark_not_ready)
            return
        started = self._bound_at.setdefault(meta.uid_of(pod), self._clock())
        creating = self._clock() - started < self.ready_delay
        report = functools.partial(self._reported_status, node=node, creating=creating)
        await self.store.mutate_status(PODS, namespace, name, report)

    def _reported_status(self, pod: Obj, node: Obj, creating: bool) -> Obj:
        status = copy.deepcopy(pod.get("status") or {})
        host_ip = next((a["address"] for a in node["status"].get("addresses") or [] if a["type"] == "InternalIP"), "")
        status.update(hostIP=host_ip, hostIPs=[{"ip": host_ip}])
        status.setdefault("startTime", strategies.now())
        previous = {cs["name"]: cs for cs in status.get("containerStatuses") or []}
        statuses = [self._container(pod, c, previous.get(c["name"]), creating) for c in pod["spec"]["containers"]]
        status["containerStatuses"] = statuses
        running = all("running" in cs["state"] for cs in statuses)
        status["phase"] = "Running" if running else "Pending"
        if running and "podIP" not in status:
            status["podIP"] = self.store.allocator.take("pod")
            status["podIPs"] = [{"ip": status["podIP"]}]
        _set_pod_conditions(status, statuses, sandbox_ready=not creating)
        return status

    def _container(self, pod: Obj, container: Obj, previous: Obj | None, creating: bool) -> Obj:
        image = container["image"]
        result: Obj = {
            "name": container["name"],
            "image": image,
            "imageID": "",
            "restartCount": (previous or {}).get("restartCount", 0),
            "ready": False,
            "started": False,
            "lastState": (previous or {}).get("lastState", {}),
        }
        if creating:
            result["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif self.unpullable(image):
            result["state"] = {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            }
        else:
            digest = hashlib.sha256(image.encode()).hexdigest()
            container_id = hashlib.sha256(f"{meta.uid_of(pod)}/{container['name']}".encode()).hexdigest()
            was_running = ((previous or {}).get("state") or {}).get("running")
            started_at = was_running["startedAt"] if was_running else strategies.now()
            result.update(
                ready=True,
                started=True,
                imageID=f"{image.split(':', 1)[0]}@sha256:{digest}",
                containerID=f"containerd://{container_id}",
                state={"running": {"startedAt": started_at}},
            )
        return result


def _set_pod_conditions(status: Obj, statuses: list[Obj], sandbox_ready: bool) -> None:
    unready = [cs["name"] for cs in statuses if not cs["ready"]]
    meta.set_condition(status, "PodReadyToStartContainers", "True" if sandbox_ready else "False")
    meta.set_condition(status, "Initialized", "True")
    if unready:
        message = f"containers with unready status: [{' '.join(unready)}]"
        meta.set_condition(status, "Ready", "False", "ContainersNotReady", message)
        meta.set_condition(status, "ContainersReady", "False", "ContainersNotReady", message)
    else:
        meta.set_condition(status, "Ready", "True")
        meta.set_condition(status, "ContainersReady", "True")
    meta.set_condition(status, "PodScheduled", "True")


def _mark_not_ready(pod: Obj) -> None:
    """A real node lifecycle controller flips Ready to False for every pod of a NotReady node."""
    meta.set_condition(pod.setdefault("status", {}), "Ready", "False", "NodeNotReady", "Node is not ready")
