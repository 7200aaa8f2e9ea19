# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The modules' orchestration, one ``run_*`` function per module: read what the planner needs through
:class:`._k8s.client.Kube`, plan purely (:mod:`._act.plans`, :mod:`._act.drift`, :mod:`._act.lock`), apply
unless in check mode, and return the module result (``changed``, ``msg``, the plan's values, ``diff`` when
asked). The declared manifests of a reconcile are read here too.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import drift as drift_rules
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import lock
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import plans as actions
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    ApiError,
    MissingLibraryError,
    SelfHealError,
    ValidationError,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import client as _client
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import (
    KINDS,
    POLL_INTERVAL,
    ApiException,
    Kube,
    KubeApi,
    api_reason,
    now,
    result_of,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.objects import label_query, meta

try:
    from ansible.module_utils.common.yaml import HAS_YAML, yaml_load_all
except ImportError:  # pragma: no cover - ansible-core always ships it
    HAS_YAML = False


def _deployment(kube: KubeApi, params: dict[str, Any]) -> dict[str, Any]:
    return kube.get("apps/v1", "Deployment", params["namespace"], params["name"])  # type: ignore[no-any-return]


def _selected(kube: KubeApi, api_version: str, kind: str, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of a kind in the Deployment's namespace that its labels select (its pods, its ReplicaSets):
    the API server narrows the list, the plans still check selectors and ownership on what comes back."""
    selector = label_query((deployment.get("spec") or {}).get("selector"))
    return kube.list(api_version, kind, meta(deployment).get("namespace"), label_selector=selector)


def run_restart(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    def plan() -> actions.Plan:
        deployment = _deployment(kube, params)
        if params.get("pods") is not None or params.get("only_failing"):
            if params.get("pods") is not None:  # looked for in the whole namespace: another workload's is refused
                pods = kube.list("v1", "Pod", params["namespace"])
            else:
                pods = _selected(kube, "v1", "Pod", deployment)
            names, only_failing = params.get("pods"), bool(params.get("only_failing"))
            return actions.plan_delete_pods(deployment, pods, names, only_failing, now())
        return actions.plan_restart(deployment, now(), params.get("restart_id"))

    return kube.converge(plan, check_mode, diff)


def run_scale(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    deployment = _deployment(kube, params)
    plan = actions.plan_scale(deployment, params["replicas"], params.get("min_replicas"), params.get("max_replicas"))
    result = kube.execute(plan, check_mode, diff)
    ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
    if params.get("wait") and not check_mode:
        ready = wait_for_replicas(kube, params, plan.result["replicas"], params.get("wait_timeout") or 0)
    result["ready_replicas"] = ready
    return result


def wait_for_replicas(kube: KubeApi, params: dict[str, Any], replicas: int, timeout: float) -> int:
    """Poll the Deployment until exactly ``replicas`` pods are ready; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, ready = actions.rollout_progress(_deployment(kube, params), replicas)
        if done:
            return ready
        if time.monotonic() >= deadline:
            raise SelfHealError(
                f"timed out after {timeout}s waiting for {params['namespace']}/{params['name']} to have {replicas} "
                f"ready replicas ({ready} ready)"
            )
        kube.sleep(POLL_INTERVAL)


def run_rollback(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    def plan() -> actions.Plan:
        deployment = _deployment(kube, params)
        replicasets = _selected(kube, "apps/v1", "ReplicaSet", deployment)
        return actions.plan_rollback(deployment, replicasets, params.get("revision"))

    return kube.converge(plan, check_mode, diff)


def run_image(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    def plan() -> actions.Plan:
        return actions.plan_image(_deployment(kube, params), params["image"], params.get("container"))

    return kube.converge(plan, check_mode, diff)


def run_drain(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    node = kube.get("v1", "Node", None, params["node"])
    if params.get("state") == "uncordoned":
        return kube.execute(actions.plan_uncordon(node), check_mode, diff)
    if params.get("all_pods"):
        plan = actions.plan_drain(node, kube.list("v1", "Pod"))
    else:
        missing = [opt for opt in ("namespace", "name") if not params.get(opt)]
        if missing:
            raise ValidationError("options", missing[0], "required to drain the pods of a Deployment (or all_pods)")
        deployment = _deployment(kube, params)
        plan = actions.plan_drain(node, kube.list("v1", "Pod", params["namespace"]), deployment)
    timeout = float(params.get("wait_timeout") or 0)
    return kube.execute(plan, check_mode, diff, lambda p: _drain(kube, p, timeout))


def _drain(kube: KubeApi, plan: actions.Plan, timeout: float) -> None:
    """Cordon, then evict one pod after the other; an eviction a PodDisruptionBudget refuses (429) is retried."""
    done: list[str] = []
    for change in plan.changes:
        if change.verb != "evict":
            kube.apply(change)
            done.append(change.what)
            continue
        deadline = time.monotonic() + timeout
        while True:
            try:
                kube.send(change)
                done.append(change.what)
                break
            except ApiException as exc:
                if exc.status == 404:  # already gone
                    break
                if exc.status != 429 or time.monotonic() >= deadline:
                    so_far = f" (done before: {'; '.join(done)})" if done else ""
                    waited = f", still refused after {timeout:g}s" if exc.status == 429 else ""
                    raise ApiError(f"cannot {change.what}: {api_reason(exc)}{waited}{so_far}") from exc
            except _client.urllib3.exceptions.HTTPError as exc:  # only imported with kubernetes
                raise ApiError(f"cannot {change.what}: {exc}") from exc
            kube.sleep(min(POLL_INTERVAL * 2, max(deadline - time.monotonic(), 0.05)))


def run_tenant_limit(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    namespace, service = params["namespace"], params["name"]
    cm_name = params.get("configmap") or actions.tenant_limits_name(service)

    def plan() -> actions.Plan:
        configmap = kube.get("v1", "ConfigMap", namespace, cm_name, missing_ok=True)
        if params.get("state") == "absent":
            return actions.plan_tenant_unlimit(configmap, namespace, service, now(), params.get("tenant"), cm_name)
        return actions.plan_tenant_limit(
            configmap,
            namespace,
            service,
            params["tenant"],
            params["requests_per_second"],
            now(),
            params.get("ttl_minutes"),
            cm_name,
        )

    return kube.converge(plan, check_mode, diff)


def read_manifests(src: str) -> list[dict[str, Any]]:
    """The objects in a YAML file, or in the ``*.yml``/``*.yaml``/``*.json`` files of a directory (name order)."""
    if not HAS_YAML:
        raise MissingLibraryError("PyYAML")
    if os.path.isdir(src):
        files = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith((".yml", ".yaml", ".json")))
    elif os.path.exists(src):
        files = [src]
    else:
        raise ValidationError("options", "src", f"{src} does not exist")
    docs: list[Any] = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                docs += [doc for doc in yaml_load_all(fh) if doc is not None]
        except Exception as exc:  # a YAML error names the line; say which file too
            raise ValidationError(path, "", f"cannot read manifests: {exc}") from exc
    return docs


def _declared(manifests: list[Any], namespace: str | None, source: str) -> list[dict[str, Any]]:
    """Flatten ``kind: List`` and check that each object says what it is; default the namespace."""
    out: list[dict[str, Any]] = []
    for index, obj in enumerate(manifests):
        if isinstance(obj, list):
            out += _declared(obj, namespace, source)
            continue
        if not isinstance(obj, dict):
            raise ValidationError(source, f"[{index}]", "a manifest must be a mapping")
        if str(obj.get("kind", "")).endswith("List") and isinstance(obj.get("items"), list):
            out += _declared(obj.get("items") or [], namespace, source)
            continue
        name = (obj.get("metadata") or {}).get("name")
        if not obj.get("apiVersion") or not obj.get("kind") or not name:
            raise ValidationError(source, f"[{index}]", "a manifest needs apiVersion, kind and metadata.name")
        plural, namespaced = KINDS.get((obj["apiVersion"], obj["kind"]), (None, True))
        if plural is None:
            Kube.path(obj["apiVersion"], obj["kind"])  # raises the "unsupported kind" error
        obj = dict(obj, metadata=dict(obj["metadata"]))
        if namespaced and not obj["metadata"].get("namespace"):
            if not namespace:
                raise ValidationError(
                    source, f"{obj['kind']}/{name}", "metadata.namespace is not set and no namespace option is given"
                )
            obj["metadata"]["namespace"] = namespace
        out.append(obj)
    return out


def _with_live(kube: KubeApi, declared: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """Each declared object with its live counterpart (None when it does not exist)."""
    pairs = []
    for obj in declared:
        m = obj["metadata"]
        pairs.append((obj, kube.get(obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"], missing_ok=True)))
    return pairs


def drift(kube: KubeApi, src: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """The drift of the manifests declared at ``src`` (file or directory), for the snapshot's workload.drift."""
    pairs = _with_live(kube, _declared(read_manifests(src), namespace, src))
    return [record for declared, live in pairs for record in drift_rules.compute_drift(declared, live)]


def run_reconcile(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    if params.get("src"):
        declared = _declared(read_manifests(params["src"]), params.get("namespace"), params["src"])
    else:
        declared = _declared(list(params.get("manifests") or []), params.get("namespace"), "manifests")
    return kube.converge(lambda: drift_rules.plan_reconcile(_with_live(kube, declared)), check_mode, diff)


def run_lock(kube: KubeApi, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
    namespace, target = params["namespace"], params["name"]
    name = lock.lease_name(target)
    ref = f"{namespace}/{target}"
    for _attempt in range(2):
        lease = kube.get("coordination.k8s.io/v1", "Lease", namespace, name, missing_ok=True)
        if params.get("state") == "released":
            plan = lock.plan_release(lease, namespace, target, params["holder"])
        else:
            plan = lock.plan_acquire(lease, namespace, target, params["holder"], params["ttl_seconds"], now())
        if not plan.changes or check_mode:
            return result_of(plan, check_mode, diff)
        with kube.failing_as(plan.changes[0].what):
            try:
                kube.send(plan.changes[0])
            except ApiException as exc:
                if exc.status != 409:
                    raise
                if params.get("state") != "released":  # someone else won the race for the lock
                    latest = kube.get("coordination.k8s.io/v1", "Lease", namespace, name, missing_ok=True)
                    return result_of(lock.lost_race(plan, latest, ref), check_mode, diff)
                continue  # the Lease moved under a release: look again
        return result_of(plan, check_mode, diff)
    raise ApiError(f"cannot unlock {ref}: the Lease {namespace}/{name} keeps changing")
