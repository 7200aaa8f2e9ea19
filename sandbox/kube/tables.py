"""Server-side printing: the ``meta.k8s.io/v1`` Table that ``kubectl get`` asks for, with kubectl's usual columns."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from sandbox.kube import meta, selectors
from sandbox.kube.resources import Kind

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority (1 = only with -o wide), cell


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def age(obj: Obj) -> str:
    """kubectl's short human duration since creation (``45s``, ``3m2s``, ``5h``, ``2d3h``)."""
    created = datetime.datetime.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    seconds = int((datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - created).total_seconds())
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _pod_status(pod: Obj) -> str:
    for status in _status(pod).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") and waiting["reason"] != "ContainerCreating":
            return str(waiting["reason"])
    if _status(pod).get("phase") == "Pending" and pod["spec"].get("nodeName"):
        return "ContainerCreating"
    return str(_status(pod).get("phase", "Pending"))


def _pod_ready(pod: Obj) -> str:
    statuses = _status(pod).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(pod['spec'].get('containers') or [])}"


def _node_status(node: Obj) -> str:
    state = "Ready" if meta.node_ready(node) else "NotReady"
    return f"{state},SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else state


def _node_address(node: Obj, kind: str) -> str:
    return next((a["address"] for a in _status(node).get("addresses") or [] if a.get("type") == kind), "<none>")


def _containers(obj: Obj, field: str) -> str:
    return ",".join(str(c.get(field, "")) for c in obj["spec"]["template"]["spec"].get("containers") or [])


def _selector(obj: Obj) -> str:
    return selectors.format_selector(selectors.from_object(obj["spec"].get("selector")))


def _ports(service: Obj) -> str:
    ports = service["spec"].get("ports") or []
    return ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _count(obj: Obj, field: str) -> int:
    return int(_status(obj).get(field, 0) or 0)


_NAME: Column = ("Name", "string", 0, lambda obj: obj["metadata"]["name"])
_AGE: Column = ("Age", "string", 0, age)

COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        (
            "Restarts",
            "integer",
            0,
            lambda p: sum(s.get("restartCount", 0) for s in _status(p).get("containerStatuses") or []),
        ),
        _AGE,
        ("IP", "string", 1, lambda p: _status(p).get("podIP", "<none>")),
        ("Node", "string", 1, lambda p: p["spec"].get("nodeName", "<none>")),
    ],
    "Deployment": [
        _NAME,
        ("Ready", "string", 0, lambda d: f"{_count(d, 'readyReplicas')}/{d['spec'].get('replicas', 1)}"),
        ("Up-to-date", "integer", 0, lambda d: _count(d, "updatedReplicas")),
        ("Available", "integer", 0, lambda d: _count(d, "availableReplicas")),
        _AGE,
        ("Containers", "string", 1, lambda d: _containers(d, "name")),
        ("Images", "string", 1, lambda d: _containers(d, "image")),
        ("Selector", "string", 1, _selector),
    ],
    "ReplicaSet": [
        _NAME,
        ("Desired", "integer", 0, lambda rs: rs["spec"].get("replicas", 1)),
        ("Current", "integer", 0, lambda rs: _count(rs, "replicas")),
        ("Ready", "integer", 0, lambda rs: _count(rs, "readyReplicas")),
        _AGE,
        ("Containers", "string", 1, lambda rs: _containers(rs, "name")),
        ("Images", "string", 1, lambda rs: _containers(rs, "image")),
        ("Selector", "string", 1, _selector),
    ],
    "Node": [
        _NAME,
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, lambda n: "<none>"),
        _AGE,
        ("Version", "string", 0, lambda n: (_status(n).get("nodeInfo") or {}).get("kubeletVersion", "")),
        ("Internal-IP", "string", 1, lambda n: _node_address(n, "InternalIP")),
        ("OS-Image", "string", 1, lambda n: (_status(n).get("nodeInfo") or {}).get("osImage", "")),
    ],
    "Service": [
        _NAME,
        ("Type", "string", 0, lambda s: s["spec"].get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0, lambda s: s["spec"].get("clusterIP", "<none>")),
        ("External-IP", "string", 0, lambda s: "<none>"),
        ("Port(s)", "string", 0, _ports),
        _AGE,
    ],
    "Namespace": [_NAME, ("Status", "string", 0, lambda ns: _status(ns).get("phase", "Active")), _AGE],
    "ConfigMap": [_NAME, ("Data", "integer", 0, lambda cm: len(cm.get("data") or {})), _AGE],
    "Lease": [_NAME, ("Holder", "string", 0, lambda lease: (lease.get("spec") or {}).get("holderIdentity", "")), _AGE],
    "PodDisruptionBudget": [
        _NAME,
        ("Min Available", "string", 0, lambda p: str(p["spec"].get("minAvailable", "N/A"))),
        ("Max Unavailable", "string", 0, lambda p: str(p["spec"].get("maxUnavailable", "N/A"))),
        ("Allowed Disruptions", "integer", 0, lambda p: _count(p, "disruptionsAllowed")),
        _AGE,
    ],
}


def _row(obj: Obj, columns: list[Column], include_object: bool) -> Obj:
    if include_object:
        embedded = obj
    else:
        embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
    return {"cells": [cell(obj) for _, _, _, cell in columns], "object": embedded}


def table(kind: Kind, items: list[Obj], list_meta: Obj, include_object: bool) -> Obj:
    columns = COLUMNS.get(kind.kind, [_NAME, _AGE])
    definitions = [
        {"name": name, "type": kind_, "format": "name" if name == "Name" else "", "description": "", "priority": prio}
        for name, kind_, prio, _ in columns
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": [_row(obj, columns, include_object) for obj in items],
    }
