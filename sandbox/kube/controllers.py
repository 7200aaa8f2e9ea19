"""The control plane's loops: deployments, replicasets, garbage collection, plus the manager that runs them
(with the scheduler, kubelet and disruption controller) promptly after every write."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.kube import meta, resources, rollout, selectors, strategies
from sandbox.kube.disruption import DisruptionController
from sandbox.kube.errors import ApiError
from sandbox.kube.kubelet import Kubelet, Scheduler
from sandbox.kube.resources import DEPLOYMENTS, KINDS, NAMESPACES, PODS, REPLICASETS, Kind
from sandbox.kube.store import NAME_ALPHABET, Store

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
RESYNC_SECONDS = 1.0


def revision(obj: Obj) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def template_hash(template: Obj, collisions: int) -> str:
    """A short, stable name suffix for a pod template, spelled with the API server's safe alphabet."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode() + str(collisions).encode()).digest()
    number = int.from_bytes(digest[:4], "big")
    return "".join(NAME_ALPHABET[ord(char) % len(NAME_ALPHABET)] for char in str(number))


def _same_template(rs_template: Obj, template: Obj) -> bool:
    """A ReplicaSet's pod template is the Deployment's but for the hash label it adds (shallow copies only: a
    controller pass compares every ReplicaSet)."""
    rs_meta = rs_template.get("metadata")
    if isinstance(rs_meta, dict) and HASH_LABEL in (rs_meta.get("labels") or {}):
        labels = {k: v for k, v in rs_meta["labels"].items() if k != HASH_LABEL}
        rs_template = {**rs_template, "metadata": {**rs_meta, "labels": labels}}
    return rs_template == template


def _status_int(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field, 0) or 0)


async def _delete_quietly(store: Store, kind: Kind, obj: Obj) -> None:
    """Controllers race with clients; something already gone is fine."""
    try:
        await store.delete(kind, meta.namespace_of(obj), meta.name_of(obj))
    except ApiError:
        pass


class GarbageCollector:
    """Deletes what lost all its owners and what lives in a namespace that is gone."""

    def __init__(self, store: Store, injected: set[str]) -> None:
        self.store = store
        self.injected = injected

    def _owner_alive(self, ref: Obj, namespace: str | None) -> bool:
        kind = resources.by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if kind is None:
            return True  # an owner of a kind this server does not serve: leave the dependent alone
        owner = self.store.peek(kind, namespace if kind.namespaced else None, str(ref.get("name", "")))
        return owner is not None and meta.uid_of(owner) == ref.get("uid")

    def _orphaned(self, kind: Kind, obj: Obj) -> bool:
        namespace = meta.namespace_of(obj)
        if kind.namespaced and self.store.peek(NAMESPACES, None, namespace or "") is None:
            return True
        refs = obj["metadata"].get("ownerReferences") or []
        return bool(refs) and not any(self._owner_alive(ref, namespace) for ref in refs)

    async def reconcile(self) -> None:
        for kind in KINDS:
            for obj in self.store.scan(kind):
                if self._orphaned(kind, obj):
                    await _delete_quietly(self.store, kind, obj)
        self.injected.intersection_update(meta.uid_of(pod) for pod in self.store.items(PODS))


class ReplicaSetController:
    """Keeps ``spec.replicas`` pods per ReplicaSet and reports their counts."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _active_pods(self) -> dict[str | None, list[Obj]]:
        """Active pods by the uid of their controller, in one scan: a scan per ReplicaSet grows as their product."""
        owned: dict[str | None, list[Obj]] = {}
        for pod in self.store.items(PODS):
            if meta.pod_active(pod):
                owned.setdefault(meta.controller_uid(pod), []).append(pod)
        return owned

    async def reconcile(self) -> None:
        # A pass works from one look at the pods; a change made meanwhile wakes the next pass.
        owned = self._active_pods()
        for listed in self.store.scan(REPLICASETS):
            rs = self.store.find(REPLICASETS, meta.namespace_of(listed), meta.name_of(listed))  # fresh after awaits
            if rs is None or rs["metadata"].get("deletionTimestamp"):
                continue
            pods = owned.get(meta.uid_of(rs), [])
            missing = int(rs["spec"].get("replicas", 1)) - len(pods)
            for _ in range(missing):
                await self._create_pod(rs)
            for pod in _deletion_order(pods)[: max(-missing, 0)]:
                await _delete_quietly(self.store, PODS, pod)

    async def _create_pod(self, rs: Obj) -> None:
        template = copy.deepcopy(rs["spec"]["template"])
        template_meta = template.get("metadata") or {}
        pod_meta: Obj = {
            "generateName": f"{meta.name_of(rs)}-",
            "namespace": meta.namespace_of(rs),
            "labels": template_meta.get("labels") or {},
            "ownerReferences": [meta.owner_reference(rs)],
        }
        if template_meta.get("annotations"):
            pod_meta["annotations"] = template_meta["annotations"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}
        try:
            await self.store.create(PODS, meta.namespace_of(rs), pod)
        except ApiError as exc:
            log.warning("cannot create a pod for replicaset %s: %s", meta.name_of(rs), exc.message)

    async def update_status(self) -> None:
        owned = self._active_pods()
        status_of = functools.partial(self._status, owned=owned)
        for rs in self.store.scan(REPLICASETS):
            await self.store.mutate_status(REPLICASETS, meta.namespace_of(rs), meta.name_of(rs), status_of)

    def _status(self, rs: Obj, owned: dict[str | None, list[Obj]]) -> Obj:
        pods = owned.get(meta.uid_of(rs), [])
        labels = selectors.from_object({"matchLabels": rs["spec"]["template"]["metadata"].get("labels") or {}})
        ready = sum(1 for pod in pods if meta.pod_ready(pod))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(1 for p in pods if selectors.matches(labels, p["metadata"].get("labels"))),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        return {k: v for k, v in status.items() if v or k == "replicas"}  # zeros are omitted, but replicas


def _deletion_order(pods: list[Obj]) -> list[Obj]:
    """Scale down the least useful pods first: unscheduled, pending, not ready, then the youngest."""
    youngest_first = sorted(pods, key=lambda pod: pod["metadata"]["creationTimestamp"], reverse=True)
    return sorted(
        youngest_first,
        key=lambda pod: (
            bool(pod["spec"].get("nodeName")),
            (pod.get("status") or {}).get("phase") == "Running",
            meta.pod_ready(pod),
        ),
    )


def _in_sync(rs: Obj) -> bool:
    """The ReplicaSet controller has caught up with this ReplicaSet's spec (the real controller's expectations)."""
    status = rs.get("status") or {}
    observed = int(status.get("observedGeneration", 0)) >= int(rs["metadata"].get("generation", 1))
    return observed and int(status.get("replicas", 0)) == int(rs["spec"].get("replicas", 1))


def _rs_state(rs: Obj) -> rollout.RsState:
    return rollout.RsState(
        meta.name_of(rs),
        int(rs["spec"].get("replicas", 1)),
        _status_int(rs, "replicas"),
        _status_int(rs, "availableReplicas"),
        revision(rs),
    )


class DeploymentController:
    """One ReplicaSet per distinct pod template, rolled by the Deployment's strategy; status and revisions."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._progress: dict[str, tuple[float, tuple[int, ...]]] = {}  # uid -> (when, counts) of the last progress
        self._observed: dict[str, int] = {}  # uid -> the generation the last completed sync acted on

    def next_deadline(self) -> float | None:
        deadlines = []
        for deployment in self.store.items(DEPLOYMENTS):
            seen = self._progress.get(meta.uid_of(deployment))
            if seen is not None and not _complete(deployment):
                deadlines.append(seen[0] + int(deployment["spec"].get("progressDeadlineSeconds", 600)))
        return min(deadlines, default=None)

    def owned(self, deployment: Obj) -> list[Obj]:
        return sorted(self.store.dependents(REPLICASETS, meta.uid_of(deployment)), key=revision)

    def current(self, deployment: Obj, owned: list[Obj]) -> Obj | None:
        """The ReplicaSet whose template equals the Deployment's (ignoring the hash label)."""
        template = deployment["spec"]["template"]
        return next((rs for rs in owned if _same_template(rs["spec"]["template"], template)), None)

    async def reconcile(self) -> None:
        for listed in self.store.scan(DEPLOYMENTS):
            # The latest version (an earlier sync awaited writes), live: a sync reads it and writes through the store.
            deployment = self.store.peek(DEPLOYMENTS, meta.namespace_of(listed), meta.name_of(listed))
            if deployment is None or deployment["metadata"].get("deletionTimestamp"):
                continue
            if deployment["spec"].get("paused"):
                self._observed[meta.uid_of(deployment)] = deployment["metadata"].get("generation", 1)
            else:
                await self._sync(deployment)

    async def _sync(self, deployment: Obj) -> None:
        owned = self.owned(deployment)  # live versions: writes replace them, never change them
        if not all(_in_sync(rs) for rs in owned):
            return  # wait until the ReplicaSet controller has caught up, as the real controller's expectations do
        new = self.current(deployment, owned)
        if new is None:
            new = await self._create_replicaset(deployment, owned)
            if new is None:
                return
        else:
            new = await self._promote(new, owned)
        olds = [rs for rs in owned if meta.uid_of(rs) != meta.uid_of(new)]
        targets = rollout.plan(deployment["spec"], _rs_state(new), [_rs_state(rs) for rs in olds])
        surge, _ = rollout.surge_and_unavailable(deployment["spec"])
        for rs in (new, *olds):
            await self._scale(deployment, rs, targets[meta.name_of(rs)], surge)
        await self._trim_history(deployment, olds)
        annotate = _set_annotation(REVISION, str(revision(new)))
        await self.store.mutate(DEPLOYMENTS, meta.namespace_of(deployment), meta.name_of(deployment), annotate)
        self._observed[meta.uid_of(deployment)] = deployment["metadata"].get("generation", 1)

    async def _create_replicaset(self, deployment: Obj, owned: list[Obj]) -> Obj | None:
        namespace = meta.namespace_of(deployment)
        collisions = int((deployment.get("status") or {}).get("collisionCount", 0))
        suffix = template_hash(deployment["spec"]["template"], collisions)
        name = f"{meta.name_of(deployment)}-{suffix}"
        if self.store.find(REPLICASETS, namespace, name) is not None:  # same hash, different template
            await self.store.mutate(DEPLOYMENTS, namespace, meta.name_of(deployment), _count_collision)
            return None
        template = copy.deepcopy(deployment["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = suffix
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = suffix
        spec = {"replicas": 0, "selector": selector, "template": template}
        if "minReadySeconds" in deployment["spec"]:
            spec["minReadySeconds"] = deployment["spec"]["minReadySeconds"]
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {REVISION: str(max(map(revision, owned), default=0) + 1)},
                "ownerReferences": [meta.owner_reference(deployment)],
            },
            "spec": spec,
        }
        return await self.store.create(REPLICASETS, namespace, rs)

    async def _promote(self, rs: Obj, owned: list[Obj]) -> Obj:
        """A rollback re-uses the old ReplicaSet of that template and gives it the next revision number."""
        top = max(map(revision, owned), default=0)
        if revision(rs) >= top and sum(1 for other in owned if revision(other) == top) == 1:
            return rs
        old = revision(rs)

        def change(obj: Obj) -> None:
            annotations = obj["metadata"].setdefault("annotations", {})
            history = [h for h in (annotations.get(REVISION_HISTORY) or "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, str(old)])
            annotations[REVISION] = str(top + 1)

        promoted = await self.store.mutate(REPLICASETS, meta.namespace_of(rs), meta.name_of(rs), change)
        return promoted or rs

    async def _scale(self, deployment: Obj, rs: Obj, replicas: int, surge: int) -> None:
        desired = int(deployment["spec"].get("replicas", 1))

        def change(obj: Obj) -> None:
            obj["spec"]["replicas"] = replicas
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations["deployment.kubernetes.io/desired-replicas"] = str(desired)
            annotations["deployment.kubernetes.io/max-replicas"] = str(desired + surge)

        if rs["spec"].get("replicas") != replicas:
            await self.store.mutate(REPLICASETS, meta.namespace_of(rs), meta.name_of(rs), change)

    async def _trim_history(self, deployment: Obj, olds: list[Obj]) -> None:
        limit = int(deployment["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in olds if not rs["spec"].get("replicas") and not _status_int(rs, "replicas")]
        for rs in sorted(idle, key=revision)[: max(len(idle) - limit, 0)]:
            await _delete_quietly(self.store, REPLICASETS, rs)

    async def update_status(self) -> None:
        deployments = self.store.scan(DEPLOYMENTS)
        live = {meta.uid_of(deployment) for deployment in deployments}
        self._progress = {uid: seen for uid, seen in self._progress.items() if uid in live}
        self._observed = {uid: generation for uid, generation in self._observed.items() if uid in live}
        for deployment in deployments:
            namespace, name = meta.namespace_of(deployment), meta.name_of(deployment)
            await self.store.mutate_status(DEPLOYMENTS, namespace, name, self._current_status)

    def _current_status(self, deployment: Obj) -> Obj:
        owned = self.owned(deployment)
        return self._status(deployment, self.current(deployment, owned), owned)

    def _status(self, deployment: Obj, new: Obj | None, owned: list[Obj]) -> Obj:
        previous = deployment.get("status") or {}
        counts = {
            "replicas": sum(_status_int(rs, "replicas") for rs in owned),
            "updatedReplicas": _status_int(new, "replicas") if new else 0,
            "readyReplicas": sum(_status_int(rs, "readyReplicas") for rs in owned),
            "availableReplicas": sum(_status_int(rs, "availableReplicas") for rs in owned),
            "unavailableReplicas": max(
                sum(int(rs["spec"].get("replicas", 1)) for rs in owned)
                - sum(_status_int(rs, "availableReplicas") for rs in owned),
                0,
            ),
        }
        observed = self._observed.get(meta.uid_of(deployment), previous.get("observedGeneration", 0))
        status: Obj = {k: v for k, v in {"observedGeneration": observed, **counts}.items() if v}  # zeros are omitted
        if "collisionCount" in previous:
            status["collisionCount"] = previous["collisionCount"]
        status["conditions"] = copy.deepcopy(previous.get("conditions") or [])
        self._set_available(deployment, status, counts["availableReplicas"])
        self._set_progressing(deployment, status, new, tuple(counts.values()))
        return status

    def _set_available(self, deployment: Obj, status: Obj, available: int) -> None:
        _, unavailable = rollout.surge_and_unavailable(deployment["spec"])
        if available >= int(deployment["spec"].get("replicas", 1)) - unavailable:
            _set_deployment_condition(
                status, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
            )
        else:
            _set_deployment_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )

    def _set_progressing(self, deployment: Obj, status: Obj, new: Obj | None, counts: tuple[int, ...]) -> None:
        uid = meta.uid_of(deployment)
        now = self._clock()
        seen = self._progress.get(uid)
        if seen is None or seen[1] != counts:
            self._progress[uid] = seen = (now, counts)
        rs_name = meta.name_of(new) if new else ""
        if deployment["spec"].get("paused"):
            _set_deployment_condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif new is not None and _complete({**deployment, "status": status}):
            message = f'ReplicaSet "{rs_name}" has successfully progressed.'
            _set_deployment_condition(status, "Progressing", "True", "NewReplicaSetAvailable", message)
        elif now - seen[0] > int(deployment["spec"].get("progressDeadlineSeconds", 600)):
            message = f'ReplicaSet "{rs_name}" has timed out progressing.'
            _set_deployment_condition(status, "Progressing", "False", "ProgressDeadlineExceeded", message)
        else:
            message = f'ReplicaSet "{rs_name}" is progressing.'
            _set_deployment_condition(status, "Progressing", "True", "ReplicaSetUpdated", message)


def _complete(deployment: Obj) -> bool:
    replicas = int(deployment["spec"].get("replicas", 1))
    status = deployment.get("status") or {}
    counts = [int(status.get(field, 0)) for field in ("updatedReplicas", "replicas", "availableReplicas")]
    observed = int(status.get("observedGeneration", 0)) >= int(deployment["metadata"].get("generation", 1))
    return observed and counts == [replicas] * 3


def _set_deployment_condition(status: Obj, kind: str, value: str, reason: str, message: str) -> None:
    before = meta.status_condition(status, kind)
    unchanged = before is not None and (before.get("status"), before.get("reason"), before.get("message")) == (
        value,
        reason,
        message,
    )
    meta.set_condition(status, kind, value, reason, message)
    if not unchanged:
        after = meta.status_condition(status, kind)
        assert after is not None
        after["lastUpdateTime"] = strategies.now()


def _set_annotation(key: str, value: str) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        obj["metadata"].setdefault("annotations", {})[key] = value

    return change


def _count_collision(deployment: Obj) -> None:
    status = deployment.setdefault("status", {})
    status["collisionCount"] = int(status.get("collisionCount", 0)) + 1


class ControllerManager:
    """Runs every controller in order after each write (and on timers), until a pass changes nothing."""

    def __init__(
        self,
        store: Store,
        *,
        ready_delay: float,
        unpullable: Callable[[str], bool],
        injected: set[str],
    ) -> None:
        self.store = store
        self.deployments = DeploymentController(store)
        self.replicasets = ReplicaSetController(store)
        self.kubelet = Kubelet(store, ready_delay=ready_delay, unpullable=unpullable, injected=injected)
        self._steps: list[Callable[[], Awaitable[None]]] = [
            GarbageCollector(store, injected).reconcile,
            self.deployments.reconcile,
            self.replicasets.reconcile,
            Scheduler(store).reconcile,
            self.kubelet.reconcile,
            self.replicasets.update_status,
            self.deployments.update_status,
            DisruptionController(store).reconcile,
        ]
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        store.subscribe(self._on_change)

    def _on_change(self, kind: Kind, obj: Obj, event: str) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kube-sandbox-controllers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _timeout(self) -> float:
        deadlines = [d for d in (self.kubelet.next_deadline(), self.deployments.next_deadline()) if d is not None]
        wait = min(deadlines, default=time.monotonic() + RESYNC_SECONDS) - time.monotonic()
        return min(max(wait, 0.0), RESYNC_SECONDS)

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation (stop would hang).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout()):
                    await self._wake.wait()
            self._wake.clear()
            await self.reconcile()

    async def reconcile(self) -> None:
        """One pass of every controller; a failing controller is logged and does not stop the others."""
        for step in self._steps:
            try:
                await step()
            except Exception:
                log.exception("controller step %s failed", getattr(step, "__qualname__", step))
                await asyncio.sleep(0.05)  # do not spin on a persistent failure
