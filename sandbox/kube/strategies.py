"""Per-kind rules applied on every write, as the API server's registry strategies do: defaults, validation,
which parts of an object a write may change, and when ``metadata.generation`` moves."""

from __future__ import annotations

import copy
import datetime
import ipaddress
import re
import uuid
from typing import Any

from sandbox.kube import errors, selectors
from sandbox.kube.resources import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PDBS,
    PODS,
    REPLICASETS,
    ROLE_BINDINGS,
    ROLES,
    SERVICES,
    Kind,
)

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GENERATION_KINDS = (DEPLOYMENTS, REPLICASETS, PDBS)
_DNS_LABEL_KINDS = (NAMESPACES, SERVICES)
_PATH_SEGMENT_KINDS = (ROLES, ROLE_BINDINGS, CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS)  # e.g. "system:discovery"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_tag(image: str) -> str:
    """The tag of an image reference; ``latest`` when it has none."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


class Allocator:
    """Hands out the addresses a cluster would: service ClusterIPs, node InternalIPs, pod IPs."""

    def __init__(self) -> None:
        self._next = {"service": 10, "node": 10, "pod": 10}

    def take(self, pool: str) -> str:
        index = self._next[pool]
        self._next[pool] += 1
        base = {"service": "10.96.0.0", "node": "172.18.0.0", "pod": "10.244.0.0"}[pool]
        return str(ipaddress.IPv4Address(base) + index)


def validate(kind: Kind, obj: Obj) -> None:
    name = obj["metadata"].get("name", "")
    if kind in _PATH_SEGMENT_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            raise errors.invalid(kind, name, "metadata.name", f'Invalid value: "{name}": may not contain "/" or "%"')
    else:
        pattern, limit = (_LABEL, 63) if kind in _DNS_LABEL_KINDS else (_SUBDOMAIN, 253)
        if not pattern.match(name) or len(name) > limit:
            detail = f'Invalid value: "{name}": must be a lowercase RFC 1123 name'
            raise errors.invalid(kind, name, "metadata.name", detail)
    if kind in (DEPLOYMENTS, REPLICASETS):
        _validate_workload(kind, name, obj.get("spec") or {})
    elif kind is PODS:
        _validate_containers(kind, name, "spec", obj.get("spec") or {})
    elif kind is PDBS:
        spec = obj.get("spec") or {}
        if "minAvailable" in spec and "maxUnavailable" in spec:
            detail = "minAvailable and maxUnavailable cannot be both set"
            raise errors.invalid(kind, name, "spec", detail)
    elif kind in (ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS):
        _validate_role_ref(kind, name, obj.get("roleRef") or {})


def _validate_role_ref(kind: Kind, name: str, ref: Obj) -> None:
    """A binding names its role by roleRef: a ClusterRole, or (RoleBinding only) a Role of its namespace."""
    allowed = ("ClusterRole",) if kind is CLUSTER_ROLE_BINDINGS else ("Role", "ClusterRole")
    if ref.get("apiGroup") != "rbac.authorization.k8s.io":
        raise errors.invalid(kind, name, "roleRef.apiGroup", 'Unsupported value: must be "rbac.authorization.k8s.io"')
    if ref.get("kind") not in allowed:
        values = ", ".join(f'"{value}"' for value in allowed)
        raise errors.invalid(kind, name, "roleRef.kind", f"Unsupported value: {ref.get('kind')!r}: supported: {values}")
    if not ref.get("name"):
        raise errors.invalid(kind, name, "roleRef.name", "Required value", "FieldValueRequired")


def _validate_workload(kind: Kind, name: str, spec: Obj) -> None:
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        raise errors.invalid(kind, name, "spec.selector", "Required value", "FieldValueRequired")
    try:
        requirements = selectors.from_object(selector)
    except ValueError as exc:
        raise errors.invalid(kind, name, "spec.selector", str(exc)) from exc
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selectors.matches(requirements, labels):
        detail = "Invalid value: `selector` does not match template `labels`"
        raise errors.invalid(kind, name, "spec.template.metadata.labels", detail)
    if int(spec.get("replicas", 1)) < 0:
        raise errors.invalid(kind, name, "spec.replicas", "must be greater than or equal to 0")
    _validate_containers(kind, name, "spec.template.spec", (spec.get("template") or {}).get("spec") or {})


def _validate_containers(kind: Kind, name: str, where: str, pod_spec: Obj) -> None:
    containers = pod_spec.get("containers") or []
    if not containers:
        raise errors.invalid(kind, name, f"{where}.containers", "Required value", "FieldValueRequired")
    for index, container in enumerate(containers):
        for field in ("name", "image"):
            if not container.get(field):
                field_path = f"{where}.containers[{index}].{field}"
                raise errors.invalid(kind, name, field_path, "Required value", "FieldValueRequired")


def validate_update(kind: Kind, old: Obj, new: Obj) -> None:
    if kind in (DEPLOYMENTS, REPLICASETS):
        if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
            name = new["metadata"]["name"]
            raise errors.invalid(kind, name, "spec.selector", "Invalid value: field is immutable")
    if kind in (ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS) and old.get("roleRef") != new.get("roleRef"):
        raise errors.invalid(kind, new["metadata"]["name"], "roleRef", "Invalid value: cannot change roleRef")


def apply_defaults(kind: Kind, obj: Obj, allocator: Allocator) -> None:
    """Fill in what the API server defaults; idempotent, so it runs on creates and updates alike."""
    spec = obj.setdefault("spec", {}) if kind in (DEPLOYMENTS, REPLICASETS, PODS, SERVICES) else None
    if kind in (DEPLOYMENTS, REPLICASETS):
        assert spec is not None
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    if kind is DEPLOYMENTS:
        assert spec is not None
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {}).setdefault("maxSurge", "25%")
            strategy["rollingUpdate"].setdefault("maxUnavailable", "25%")
    elif kind is PODS:
        assert spec is not None
        default_pod_spec(spec)
    elif kind is SERVICES:
        assert spec is not None
        _default_service(spec, allocator)
    elif kind is NAMESPACES:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        image = container.get("image") or ""
        container.setdefault("imagePullPolicy", "Always" if image_tag(image) == "latest" else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _default_service(spec: Obj, allocator: Allocator) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if "clusterIP" not in spec:
        spec["clusterIP"] = allocator.take("service")
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def initial_status(kind: Kind, obj: Obj, allocator: Allocator) -> None:
    """Set the status a fresh object starts with; clients cannot set it on create except for nodes.

    Zero counts that Go serializes without ``omitempty`` are present: typed clients require them."""
    if kind is NODES:
        _node_status(obj, allocator)
    elif kind is PODS:
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj["spec"])}
    elif kind is NAMESPACES:
        obj["status"] = {"phase": "Active"}
    elif kind is REPLICASETS:
        obj["status"] = {"replicas": 0}
    elif kind is PDBS:
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    elif kind is SERVICES:
        obj["status"] = {"loadBalancer": {}}
    elif kind.has_status:
        obj["status"] = {}


def _node_status(obj: Obj, allocator: Allocator) -> None:
    name = obj["metadata"]["name"]
    labels = obj["metadata"].setdefault("labels", {})
    labels.setdefault("kubernetes.io/hostname", name)
    labels.setdefault("kubernetes.io/os", "linux")
    labels.setdefault("kubernetes.io/arch", "amd64")
    status = obj.setdefault("status", {})
    capacity = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    status.setdefault("capacity", capacity)
    status.setdefault("allocatable", dict(status["capacity"]))
    addresses = status.setdefault("addresses", [{"type": "InternalIP", "address": allocator.take("node")}])
    if not any(address.get("type") == "Hostname" for address in addresses):
        addresses.append({"type": "Hostname", "address": name})
    identity = uuid.uuid5(uuid.NAMESPACE_DNS, name)
    node_info = {
        "architecture": "amd64",
        "bootID": str(identity),
        "containerRuntimeVersion": "containerd://1.7.15",
        "kernelVersion": "6.8.0-45-generic",
        "kubeProxyVersion": "",
        "kubeletVersion": "v1.30.0",
        "machineID": identity.hex,
        "operatingSystem": "linux",
        "osImage": "Ubuntu 22.04.4 LTS",
        "systemUUID": str(identity),
    }
    status["nodeInfo"] = {**node_info, **(status.get("nodeInfo") or {})}  # clients require every field
    if not any(c.get("type") == "Ready" for c in status.get("conditions") or []):
        stamp = now()
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        status.setdefault("conditions", []).append(ready)


def qos_class(pod_spec: Obj) -> str:
    resources = [c.get("resources") or {} for c in pod_spec.get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(r.get("limits") and (r.get("requests") or r["limits"]) == r["limits"] for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_update(kind: Kind, old: Obj, new: Obj) -> None:
    """A main-resource write keeps the status (it has its own subresource) and bumps generation on spec changes."""
    if kind.has_status and kind is not NAMESPACES:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    bump_generation(kind, old, new)


def bump_generation(kind: Kind, old: Obj, new: Obj) -> None:
    generation = old["metadata"].get("generation", 1)
    if kind in _GENERATION_KINDS and old.get("spec") != new.get("spec"):
        generation += 1
    new["metadata"]["generation"] = generation


def normalize(value: Any) -> Any:
    """Store what the API server would serialize: Go decodes ``null`` to a zero value and omits empty lists
    (``omitempty``), so e.g. kubectl's ``creationTimestamp: null`` in a template does not make it differ."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def status_update(kind: Kind, old: Obj, new: Obj) -> Obj:
    """A status-subresource write changes only the status."""
    result = copy.deepcopy(old)
    result["status"] = copy.deepcopy(new.get("status") or {})
    if kind is PODS:
        _complete_container_statuses(result)
    return result


def _complete_container_statuses(pod: Obj) -> None:
    """Fill the fields a kubelet always sends: typed clients refuse container statuses without them."""
    images = {c.get("name"): c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []}
    for status in pod["status"].get("containerStatuses") or []:
        status.setdefault("image", images.get(status.get("name"), ""))
        status.setdefault("imageID", "")
        status.setdefault("ready", False)
        status.setdefault("restartCount", 0)
        for state in (status.get("state"), status.get("lastState")):
            if isinstance(state, dict) and isinstance(state.get("terminated"), dict):
                state["terminated"].setdefault("exitCode", 0)
