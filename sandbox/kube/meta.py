"""Small readers and writers for the parts of objects every controller looks at: conditions, owners, readiness."""

from __future__ import annotations

import math
from typing import Any

from sandbox.kube import strategies

Obj = dict[str, Any]


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def namespace_of(obj: Obj) -> str | None:
    namespace = obj["metadata"].get("namespace")
    return None if namespace is None else str(namespace)


def uid_of(obj: Obj) -> str:
    return str(obj["metadata"]["uid"])


def controller_uid(obj: Obj) -> str | None:
    """The uid of the managing owner (``ownerReferences[].controller``), if any."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owner_reference(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(obj: Obj, kind: str) -> Obj | None:
    return status_condition(obj.get("status") or {}, kind)


def status_condition(status: Obj, kind: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def is_true(obj: Obj, kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"


def set_condition(status: Obj, kind: str, value: str, reason: str | None = None, message: str | None = None) -> None:
    """Set a condition; the transition time moves only when the value does, so rewrites stay no-ops."""
    conditions = status.setdefault("conditions", [])
    current = next((c for c in conditions if c.get("type") == kind), None)
    if current is None:
        current = {"type": kind}
        conditions.append(current)
    if current.get("status") != value:
        current["lastTransitionTime"] = strategies.now()
    current["status"] = value
    for field, text in (("reason", reason), ("message", message)):
        if text is None:
            current.pop(field, None)
        else:
            current[field] = text


def pod_ready(pod: Obj) -> bool:
    return is_true(pod, "Ready")


def pod_active(pod: Obj) -> bool:
    """Counts towards a ReplicaSet: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def node_ready(node: Obj) -> bool:
    return is_true(node, "Ready")


def scaled(value: int | str | None, total: int, round_up: bool) -> int:
    """Resolve an int-or-percent field (maxSurge, minAvailable, …) against a total."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)
