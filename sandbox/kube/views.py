"""How objects are shown: list pages, the Scale view, pod logs, delete results and the server version."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sandbox.kube import errors, selectors
from sandbox.kube.resources import Kind

Obj = dict[str, Any]

SERVER_VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0",
    "gitCommit": "7c48c2bd72b9bf5c44d21d7338cc7bea77d0ad2a",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T17:27:03Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def success(kind: Kind, obj: Obj, code: int = 200) -> Obj:
    details = {"name": obj["metadata"]["name"], "kind": kind.plural, "uid": obj["metadata"]["uid"]}
    if kind.group:
        details["group"] = kind.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details, "code": code}


def paginate(items: list[Obj], params: Mapping[str, str]) -> tuple[list[Obj], Obj]:
    """``limit``/``continue`` chunking; the token is an opaque offset into the sorted list."""
    try:
        offset = int(base64.urlsafe_b64decode(params["continue"]).decode()) if params.get("continue") else 0
        limit = int(params.get("limit") or 0)
    except ValueError as exc:
        raise errors.bad_request(f"invalid limit or continue token: {exc}") from exc
    if limit <= 0:
        return items[offset:], {}
    page, rest = items[offset : offset + limit], items[offset + limit :]
    if not rest:
        return page, {}
    token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
    return page, {"continue": token, "remainingItemCount": len(rest)}


def scale_of(obj: Obj) -> Obj:
    """The ``autoscaling/v1`` Scale view of a Deployment or ReplicaSet."""
    selector = selectors.format_selector(selectors.from_object(obj["spec"].get("selector")))
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector},
    }


def visible(obj: Obj, namespace: str | None, labels: selectors.LabelSelector, fields: Any) -> bool:
    return (
        namespace in (None, obj["metadata"].get("namespace"))
        and selectors.matches(labels, obj["metadata"].get("labels"))
        and all(field.matches(obj) for field in fields)
    )


def pod_log(pod: Obj, container: str | None) -> str:
    names = [c["name"] for c in pod["spec"]["containers"]]
    if container is None and len(names) > 1:
        pod_name = pod["metadata"]["name"]
        raise errors.bad_request(f"a container name must be specified for pod {pod_name}, choose one of: {names}")
    container = container or names[0]
    if container not in names:
        raise errors.bad_request(f"container {container} is not valid for pod {pod['metadata']['name']}")
    statuses = {cs["name"]: cs for cs in (pod.get("status") or {}).get("containerStatuses") or []}
    running = (statuses.get(container) or {}).get("state", {}).get("running")
    if not running:
        raise errors.bad_request(f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to start')
    return f"{running['startedAt']} {container}: started\n"
