# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Remediation plans: what each action would change, computed purely from the objects the cluster returned.

Every ``plan_*`` function takes Kubernetes objects as plain dicts (as the API serves them, camelCase) and returns
a :class:`Plan`: the writes to make (:class:`Change`), the before/after of the fields they touch (for diff mode),
a message for a real run and one for check mode, and the values the module returns. No I/O happens here; the
adapter in ``_k8s.py`` reads the objects, calls a planner and applies ``plan.changes`` unless in check mode.

A plan with no changes is the idempotent case: the module then reports ``changed: false`` with a message that
says why nothing had to be done.

The reconcile plan and the drift it repairs are in :mod:`._act.drift`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import SelfHealError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.objects import (
    CORDONED_BY,
    REVISION,
    annotations_of,
    deployment_pods,
    failing_reason,
    int_or_none,
    meta,
    owned_by,
    parse_time,
    ref,
    restart_cures,
    rs_revisions,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_ID = "selfheal.zerotouch.io/restart-id"
PREVIOUS_IMAGE = "selfheal.zerotouch.io/previous-image"
ROLLED_BACK_TO = "selfheal.zerotouch.io/rolled-back-to"
EXPIRES_PREFIX = "selfheal.zerotouch.io/expires-"
POD_TEMPLATE_HASH = "pod-template-hash"
MANAGED_BY = {"app.kubernetes.io/managed-by": "zerotouch.selfheal"}
TENANT_LIMITS_SUFFIX = "-tenant-limits"

_OPTIONS = "options"  # the ValidationError source for module options


@dataclass
class Change:
    """One write to the cluster.

    ``verb`` is ``create``, ``replace`` (PUT of the whole object, guarded by its resourceVersion), ``patch``
    (JSON merge patch), ``delete`` or ``evict``. ``what`` completes "cannot ..." in an error message.
    """

    verb: str
    api_version: str
    kind: str
    namespace: str | None
    name: str
    body: dict[str, Any] | None = None
    subresource: str | None = None
    what: str = ""


@dataclass
class Plan:
    """What a remediation would do; ``changed`` is true exactly when there is something to write."""

    changes: list[Change]
    message: str
    check_message: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def unchanged(message: str, before: dict[str, Any] | None = None, **result: Any) -> Plan:
    state = before or {}
    return Plan([], message, message, state, copy.deepcopy(state), result)


def changing(
    changes: list[Change], done: str, would: str, before: dict[str, Any], after: dict[str, Any], **result: Any
) -> Plan:
    """A plan that writes; ``done``/``would`` are the same sentence for a real run and for check mode."""
    return Plan(changes, done, "would " + would, before, after, result)


def count(n: int, noun: str) -> str:
    """``1 pod``, ``2 pods``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


# --- small helpers on objects --------------------------------------------------------------------------------


def micro_time(ts: datetime) -> str:
    """The MicroTime format of Lease timestamps."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- workload_restart -------------------------------------------------------------------------------------------


def _deployment_change(deployment: dict[str, Any], body: dict[str, Any], what: str) -> Change:
    m = meta(deployment)
    return Change("replace", "apps/v1", "Deployment", m.get("namespace"), m["name"], body, what=what)


def _template_annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}


def plan_restart(deployment: dict[str, Any], now: datetime, restart_id: str | None = None) -> Plan:
    """A rollout restart: stamp the pod template with ``restartedAt`` so the Deployment rolls out new pods.

    A restart is imperative, so without ``restart_id`` every run restarts. With it, the token is recorded in
    the template (annotation ``selfheal.zerotouch.io/restart-id``) and a run whose token is already there is a
    no-op: re-running the same remediation does not restart twice.
    """
    target = ref(deployment)
    current = _template_annotations(deployment)
    before = {k: current.get(k) for k in (RESTARTED_AT, RESTART_ID) if k in current or k == RESTARTED_AT}
    result: dict[str, Any] = {"restart_id": restart_id, "restarted_at": current.get(RESTARTED_AT), "deleted_pods": []}
    if restart_id is not None and current.get(RESTART_ID) == restart_id:
        return unchanged(
            f"{target} was already restarted for restart_id {restart_id} (at {current.get(RESTARTED_AT)})",
            _template_diff(before),
            **result,
        )
    stamp = format_datetime(now.replace(microsecond=0))
    body = copy.deepcopy(deployment)
    tmeta = body.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})
    tmeta["annotations"] = dict(tmeta.get("annotations") or {})
    tmeta["annotations"][RESTARTED_AT] = stamp
    after = {RESTARTED_AT: stamp}
    if restart_id is not None:
        tmeta["annotations"][RESTART_ID] = restart_id
        after[RESTART_ID] = restart_id
        before.setdefault(RESTART_ID, None)
    result["restarted_at"] = stamp
    text = f"{target} (rollout restart at {stamp}" + (f", restart_id {restart_id})" if restart_id else ")")
    return changing(
        [_deployment_change(deployment, body, "restart " + target)],
        "restarted " + text,
        "restart " + text,
        _template_diff(before),
        _template_diff(after),
        **result,
    )


def _template_diff(template_annotations: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"metadata": {"annotations": template_annotations}}}}


def plan_delete_pods(
    deployment: dict[str, Any],
    pods: list[dict[str, Any]],
    names: list[str] | None = None,
    only_failing: bool = False,
    now: datetime | None = None,
) -> Plan:
    """Delete some of a Deployment's pods (its ReplicaSet replaces them) instead of restarting all of them.

    ``names`` picks pods by name (a pod that is already gone is skipped; one that belongs to another workload is
    an error), ``only_failing`` keeps the failing ones (:func:`failing_reason`); both together: the named pods
    that fail. Pods already being deleted are left alone, so a second run changes nothing.
    """
    target = ref(deployment)
    namespace = meta(deployment).get("namespace")
    own = {meta(p)["name"]: p for p in deployment_pods(deployment, pods)}
    if names is not None:
        others = sorted(
            n
            for n in names
            if n not in own and any(meta(p).get("name") == n and meta(p).get("namespace") == namespace for p in pods)
        )
        if others:
            raise ValidationError(_OPTIONS, "pods", f"{', '.join(others)} not selected by deployment {target}")
        candidates = [own[n] for n in sorted(set(names)) if n in own]
    else:
        candidates = list(own.values())
    candidates = [p for p in candidates if not meta(p).get("deletionTimestamp")]
    reasons = {meta(p)["name"]: failing_reason(p, now) for p in candidates}
    if only_failing:
        # Only what a restart can cure: a new pod pulls the same missing image or reads the same broken config.
        candidates = [p for p in candidates if (why := reasons[meta(p)["name"]]) and restart_cures(why)]
    doomed = [meta(p)["name"] for p in candidates]
    result = {"restart_id": None, "restarted_at": None, "deleted_pods": doomed}
    if not doomed:
        if names is not None:
            state = "is failing" if only_failing else "exists"
            message = f"none of the pods named ({', '.join(sorted(set(names)))}) {state} in {target}"
        else:
            message = f"{target} has no {'failing pods' if only_failing else 'pods'}"
        return unchanged(message + ": nothing to delete", {"pods": []}, **result)
    changes = [Change("delete", "v1", "Pod", namespace, n, what=f"delete pod {namespace}/{n}") for n in doomed]
    described = ", ".join(f"{n} ({reasons[n]})" if reasons[n] else n for n in doomed)
    text = f"{count(len(doomed), 'pod')} of {target}: {described}"
    return changing(changes, "deleted " + text, "delete " + text, {"pods": doomed}, {"pods": []}, **result)


# --- workload_scale ---------------------------------------------------------------------------------------------


def plan_scale(
    deployment: dict[str, Any],
    replicas: int,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
) -> Plan:
    """Set the replica count through the scale subresource, clamped into [min_replicas, max_replicas]."""
    if replicas < 0:
        raise ValidationError(_OPTIONS, "replicas", f"must be 0 or more, got {replicas}")
    if min_replicas is not None and min_replicas < 0:
        raise ValidationError(_OPTIONS, "min_replicas", f"must be 0 or more, got {min_replicas}")
    if min_replicas is not None and max_replicas is not None and min_replicas > max_replicas:
        raise ValidationError(
            _OPTIONS, "min_replicas", f"must not exceed max_replicas ({min_replicas} > {max_replicas})"
        )
    target = ref(deployment)
    current = (deployment.get("spec") or {}).get("replicas", 1)
    wanted, note = replicas, ""
    if max_replicas is not None and wanted > max_replicas:
        wanted, note = max_replicas, f" (requested {replicas}, clamped to max_replicas {max_replicas})"
    if min_replicas is not None and wanted < min_replicas:
        wanted, note = min_replicas, f" (requested {replicas}, clamped to min_replicas {min_replicas})"
    result = {"replicas": wanted, "previous_replicas": current, "requested_replicas": replicas}
    result["clamped"] = wanted != replicas
    if current == wanted:
        return unchanged(f"{target} already has {wanted} replicas{note}", {"spec": {"replicas": current}}, **result)
    m = meta(deployment)
    change = Change(
        "patch",
        "apps/v1",
        "Deployment",
        m.get("namespace"),
        m["name"],
        {"spec": {"replicas": wanted}},
        subresource="scale",
        what="scale " + target,
    )
    text = f"{target} from {current} to {wanted} replicas{note}"
    return changing(
        [change],
        "scaled " + text,
        "scale " + text,
        {"spec": {"replicas": current}},
        {"spec": {"replicas": wanted}},
        **result,
    )


def rollout_progress(deployment: dict[str, Any], replicas: int) -> tuple[bool, int]:
    """(done, ready replicas): the controller has seen the latest spec and exactly ``replicas`` pods are ready."""
    m, status = meta(deployment), deployment.get("status") or {}
    observed = status.get("observedGeneration")
    seen = observed is None or m.get("generation") is None or observed >= m["generation"]
    ready = int(status.get("readyReplicas") or 0)
    total = int(status.get("replicas") or 0)
    return seen and ready >= replicas and total <= replicas, ready


# --- workload_rollback ------------------------------------------------------------------------------------------


def _strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template or {})
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
    return template


def _images(template: dict[str, Any]) -> dict[str, str]:
    return {
        str(c.get("name")): str(c.get("image")) for c in ((template or {}).get("spec") or {}).get("containers") or []
    }


def rollout_history(deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Revision -> ReplicaSet, for the ReplicaSets the Deployment owns (its rollout history)."""
    history: dict[int, dict[str, Any]] = {}
    owned = [rs for rs in replicasets if owned_by(rs, "Deployment", deployment)]
    # A revision reused by a rollback lives on in the newer ReplicaSet's revision-history; own revisions win.
    for rs in owned:
        for rev in rs_revisions(rs)[1:]:
            history.setdefault(rev, rs)
    for rs in owned:
        own = int_or_none(annotations_of(rs).get(REVISION))
        if own is not None:
            history[own] = rs
    return dict(sorted(history.items()))


def plan_rollback(deployment: dict[str, Any], replicasets: list[dict[str, Any]], revision: int | None = None) -> Plan:
    """Roll back as ``kubectl rollout undo`` does: copy a ReplicaSet's pod template (minus pod-template-hash).

    Without ``revision`` the target is the previous revision, except when this Deployment was rolled back by
    this module and still runs that template (annotation ``selfheal.zerotouch.io/rolled-back-to``): then the
    rollback is already done and nothing changes, so that re-running a remediation never toggles back to the bad
    revision. Pass ``revision`` to step back further.
    """
    target = ref(deployment)
    history = rollout_history(deployment, replicasets)
    template = _strip_hash((deployment.get("spec") or {}).get("template") or {})
    current = int_or_none(annotations_of(deployment).get(REVISION))
    if current is None:
        current = next((rev for rev, rs in history.items() if _strip_hash(rs["spec"]["template"]) == template), None)
    available = ", ".join(str(r) for r in history) or "none"
    if revision is not None:
        if revision not in history:
            raise SelfHealError(
                f"revision {revision} of deployment {target} not found; available revisions: {available}"
            )
        wanted = revision
    else:
        earlier = int_or_none(annotations_of(deployment).get(ROLLED_BACK_TO))
        if earlier in history and _strip_hash(history[earlier]["spec"]["template"]) == template:
            wanted = earlier
        else:
            older = [rev for rev, rs in history.items() if (current is None or rev < current)]
            older = [rev for rev in older if _strip_hash(history[rev]["spec"]["template"]) != template]
            if not older:
                raise SelfHealError(
                    f"deployment {target} has no earlier revision to roll back to; available revisions: {available}"
                )
            wanted = older[-1]
    wanted_template = _strip_hash(history[wanted]["spec"]["template"])
    result: dict[str, Any] = {
        "from_revision": current,
        "to_revision": wanted,
        "from_images": _images(template),
        "to_images": _images(wanted_template),
    }
    before = {"spec": {"template": template}}
    if wanted_template == template:
        return unchanged(f"{target} already runs the template of revision {wanted}", before, **result)
    body = copy.deepcopy(deployment)
    body["spec"]["template"] = wanted_template
    body["metadata"]["annotations"] = dict(annotations_of(deployment))
    body["metadata"]["annotations"][ROLLED_BACK_TO] = str(wanted)
    images = ", ".join(f"{c} {result['from_images'].get(c)} -> {i}" for c, i in result["to_images"].items())
    text = f"{target} from revision {current} to revision {wanted} ({images})"
    return changing(
        [_deployment_change(deployment, body, "roll back " + target)],
        "rolled back " + text,
        "roll back " + text,
        before,
        {"spec": {"template": wanted_template}},
        **result,
    )


# --- workload_image ---------------------------------------------------------------------------------------------


def plan_image(deployment: dict[str, Any], image: str, container: str | None = None) -> Plan:
    """Set one container's image (a rolling update) and record the previous image for undo."""
    target = ref(deployment)
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise SelfHealError(f"deployment {target} has no containers")
    names = [str(c.get("name")) for c in containers]
    if container is None:
        index = 0
    elif container in names:
        index = names.index(container)
    else:
        raise SelfHealError(f"container {container} not found in deployment {target}; containers: {', '.join(names)}")
    cname, previous = names[index], containers[index].get("image")
    result = {"container": cname, "image": image, "previous_image": annotations_of(deployment).get(PREVIOUS_IMAGE)}

    def state(img: Any, prev: Any) -> dict[str, Any]:
        return {
            "metadata": {"annotations": {PREVIOUS_IMAGE: prev}},
            "spec": {"template": {"spec": {"containers": [{"name": cname, "image": img}]}}},
        }

    if previous == image:
        return unchanged(
            f"container {cname} of {target} already runs {image}",
            state(previous, result["previous_image"]),
            **result,
        )
    body = copy.deepcopy(deployment)
    body["spec"]["template"]["spec"]["containers"][index]["image"] = image
    body["metadata"]["annotations"] = dict(annotations_of(deployment))
    body["metadata"]["annotations"][PREVIOUS_IMAGE] = str(previous)
    result["previous_image"] = previous
    text = f"container {cname} of {target} from {previous} to {image}"
    return changing(
        [_deployment_change(deployment, body, "set the image of " + target)],
        "updated " + text,
        "update " + text,
        state(previous, annotations_of(deployment).get(PREVIOUS_IMAGE)),
        state(image, previous),
        **result,
    )


# --- node_drain -------------------------------------------------------------------------------------------------


def _evictable(pod: dict[str, Any]) -> bool:
    """Pods a drain moves: not already leaving, not a DaemonSet's (it would come back), not a static pod."""
    m = meta(pod)
    if m.get("deletionTimestamp"):
        return False
    if any(r.get("kind") == "DaemonSet" for r in m.get("ownerReferences") or []):
        return False
    if "kubernetes.io/config.mirror" in (m.get("annotations") or {}):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def plan_drain(node: dict[str, Any], pods: list[dict[str, Any]], deployment: dict[str, Any] | None = None) -> Plan:
    """Cordon a node and evict pods from it: the Deployment's pods, or every evictable pod when it is None."""
    name = meta(node)["name"]
    on_node = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name and _evictable(p)]
    if deployment is not None:
        on_node = deployment_pods(deployment, on_node)
        whose = f"of {ref(deployment)} "
    else:
        on_node = sorted(on_node, key=lambda p: (meta(p).get("namespace"), meta(p).get("name")))
        whose = ""
    doomed = [f"{meta(p).get('namespace')}/{meta(p).get('name')}" for p in on_node]
    cordoned = bool((node.get("spec") or {}).get("unschedulable"))
    changes = []
    if not cordoned:
        changes.append(Change("patch", "v1", "Node", None, name, _cordon_body(True), what="cordon node " + name))
    for p in on_node:
        m = meta(p)
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": m["name"], "namespace": m["namespace"]},
        }
        what = f"evict {m['namespace']}/{m['name']} from node {name}"
        changes.append(Change("evict", "v1", "Pod", m["namespace"], m["name"], body, "eviction", what))
    result = {"node": name, "cordoned": True, "evicted": doomed}
    before = {"spec": {"unschedulable": cordoned}, "pods": doomed}
    after = {"spec": {"unschedulable": True}, "pods": []}
    if not changes:
        return unchanged(f"node {name} is cordoned and runs no pods {whose}".rstrip(), before, **result)
    done, would = [], []
    if not cordoned:
        done.append(f"cordoned node {name}")
        would.append(f"cordon node {name}")
    if doomed:
        text = f"{count(len(doomed), 'pod')} {whose}from node {name} ({', '.join(doomed)})"
        done.append("evicted " + text)
        would.append("evict " + text)
    return changing(changes, " and ".join(done), " and ".join(would), before, after, **result)


def _cordon_body(cordon: bool) -> dict[str, Any]:
    # Merge patch: None removes the field and the marker.
    return {
        "metadata": {"annotations": {CORDONED_BY: "true" if cordon else None}},
        "spec": {"unschedulable": True if cordon else None},
    }


def plan_uncordon(node: dict[str, Any]) -> Plan:
    name = meta(node)["name"]
    result = {"node": name, "cordoned": False, "evicted": []}
    cordoned = bool((node.get("spec") or {}).get("unschedulable"))
    if not cordoned:
        return unchanged(f"node {name} is schedulable", {"spec": {"unschedulable": False}}, **result)
    change = Change("patch", "v1", "Node", None, name, _cordon_body(False), what="uncordon node " + name)
    return changing(
        [change],
        "uncordoned node " + name,
        "uncordon node " + name,
        {"spec": {"unschedulable": True}},
        {"spec": {"unschedulable": False}},
        **result,
    )


# --- tenant_limit -----------------------------------------------------------------------------------------------

_TENANT = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,40}[A-Za-z0-9])?$")


def rate_text(value: float) -> str:
    """A requests/s limit as the service reads it: ``"50"``, ``"12.5"``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def tenant_limits_name(service: str) -> str:
    return service + TENANT_LIMITS_SUFFIX


def _limits_state(cm: dict[str, Any] | None, tenants: list[str]) -> dict[str, Any]:
    data = (cm or {}).get("data") or {}
    notes = annotations_of(cm)
    return {
        "data": {t: data.get(t) for t in tenants},
        "metadata": {"annotations": {EXPIRES_PREFIX + t: notes.get(EXPIRES_PREFIX + t) for t in tenants}},
    }


def plan_tenant_limit(
    configmap: dict[str, Any] | None,
    namespace: str,
    service: str,
    tenant: str,
    requests_per_second: float,
    now: datetime,
    ttl_minutes: int | None = None,
    configmap_name: str | None = None,
) -> Plan:
    """Cap one tenant's requests/s in the ConfigMap the service reads (``<service>-tenant-limits``).

    The expiry (``selfheal.zerotouch.io/expires-<tenant>``, ISO 8601) is set from ``ttl_minutes``. A limit that
    is already in force with the same rate is left alone, and its expiry is not pushed back: re-running the
    remediation changes nothing until the limit expires (then it is renewed) or the rate changes.
    """
    if not _TENANT.match(tenant):
        raise ValidationError(
            _OPTIONS, "tenant", f"{tenant!r} is not a valid tenant name (letters, digits, '-', '_', '.'; at most 42)"
        )
    if requests_per_second < 0:
        raise ValidationError(_OPTIONS, "requests_per_second", f"must be 0 or more, got {requests_per_second}")
    if ttl_minutes is not None and ttl_minutes <= 0:
        raise ValidationError(_OPTIONS, "ttl_minutes", f"must be more than 0, got {ttl_minutes}")
    cm_name = configmap_name or tenant_limits_name(service)
    key = EXPIRES_PREFIX + tenant
    rate = rate_text(requests_per_second)
    data = dict((configmap or {}).get("data") or {})
    notes = dict(annotations_of(configmap))
    recorded = parse_time(notes.get(key))
    same_rate = data.get(tenant) == rate
    if ttl_minutes is None:
        in_force = same_rate and key not in notes
    else:
        in_force = same_rate and recorded is not None and recorded > now
    expires = None
    if ttl_minutes is not None:
        expires = format_datetime((now + timedelta(minutes=ttl_minutes)).replace(microsecond=0))
    result = {
        "configmap": cm_name,
        "tenant": tenant,
        "requests_per_second": rate,
        "expires_at": notes.get(key) if in_force else expires,
    }
    before = _limits_state(configmap, [tenant])
    target = f"{namespace}/{service}"
    if in_force:
        until = f" until {notes[key]}" if key in notes else ""
        return unchanged(
            f"tenant {tenant} of {target} is already limited to {rate} requests/s{until}", before, **result
        )
    data[tenant] = rate
    if expires is None:
        notes.pop(key, None)
    else:
        notes[key] = expires
    body: dict[str, Any]
    if configmap is None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": cm_name, "namespace": namespace, "labels": dict(MANAGED_BY), "annotations": notes},
            "data": data,
        }
        verb = "create"
    else:
        body = copy.deepcopy(configmap)
        body["metadata"]["annotations"] = notes
        body["data"] = data
        verb = "replace"
    change = Change(verb, "v1", "ConfigMap", namespace, cm_name, body, what=f"limit tenant {tenant} of {target}")
    until = f" until {expires}" if expires else ""
    text = f"tenant {tenant} of {target} to {rate} requests/s{until} (ConfigMap {cm_name})"
    after = _limits_state(body, [tenant])
    return changing([change], "limited " + text, "limit " + text, before, after, **result)


def plan_tenant_unlimit(
    configmap: dict[str, Any] | None,
    namespace: str,
    service: str,
    now: datetime,
    tenant: str | None = None,
    configmap_name: str | None = None,
) -> Plan:
    """Remove a tenant's limit; without ``tenant``, remove every limit whose expiry has passed."""
    cm_name = configmap_name or tenant_limits_name(service)
    target = f"{namespace}/{service}"
    data = dict((configmap or {}).get("data") or {})
    notes = dict(annotations_of(configmap))
    if tenant is not None:
        tenants = [tenant] if tenant in data or EXPIRES_PREFIX + tenant in notes else []
        what = f"tenant {tenant}"
    else:
        tenants = sorted(
            t for t in data if (parse_time(notes.get(EXPIRES_PREFIX + t)) or now + timedelta(days=1)) <= now
        )
        what = "expired tenant limits"
    result = {"configmap": cm_name, "tenant": tenant, "removed": tenants}
    if configmap is None or not tenants:
        return unchanged(f"no limit for {what} of {target} to remove", {"data": {}}, **result)
    before = _limits_state(configmap, tenants)
    for t in tenants:
        data.pop(t, None)
        notes.pop(EXPIRES_PREFIX + t, None)
    body = copy.deepcopy(configmap)
    body["data"], body["metadata"]["annotations"] = data, notes
    change = Change(
        "replace", "v1", "ConfigMap", namespace, cm_name, body, what=f"lift the limit of {what} of {target}"
    )
    text = "the limit of " + ", ".join("tenant " + t for t in tenants) + f" of {target} (ConfigMap {cm_name})"
    return changing([change], "removed " + text, "remove " + text, before, _limits_state(body, tenants), **result)
