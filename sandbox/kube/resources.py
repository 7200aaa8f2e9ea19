"""The resource types the stand-in serves, with what discovery needs to say about them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import kmock

OBJECT_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    """A subresource as discovery lists it; kind/group/version only when they differ from the parent."""

    name: str
    kind: str
    verbs: tuple[str, ...] = SUBRESOURCE_VERBS
    group: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Kind:
    """One served resource type (e.g. apps/v1 deployments)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    has_status: bool = field(default=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    # Built once: kmock's resource constructor type-checks against runtime protocols, which is slow enough to
    # dominate every scan of the store when it runs per object.
    @cached_property
    def resource(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)

    @property
    def qualified(self) -> str:
        """The name used in API error messages, e.g. ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        return next((sub for sub in self.subresources if sub.name == name), None)


def _status(kind: str) -> Subresource:
    return Subresource("status", kind)


def _scale() -> Subresource:
    return Subresource("scale", "Scale", group="autoscaling", version="v1")


KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "namespaces", "Namespace", False, ("ns",), (), (_status("Namespace"),), True),
    Kind("", "v1", "nodes", "Node", False, ("no",), (), (_status("Node"),), True),
    Kind(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        ("po",),
        ("all",),
        (
            _status("Pod"),
            Subresource("eviction", "Eviction", ("create",), group="policy", version="v1"),
            Subresource("log", "Pod", ("get",)),
        ),
        True,
    ),
    Kind("", "v1", "services", "Service", True, ("svc",), ("all",), (_status("Service"),), True),
    Kind("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Kind("", "v1", "events", "Event", True, ("ev",)),
    Kind(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        ("deploy",),
        ("all",),
        (_scale(), _status("Deployment")),
        True,
    ),
    Kind("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("all",), (_scale(), _status("ReplicaSet")), True),
    Kind("coordination.k8s.io", "v1", "leases", "Lease", True),
    Kind(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        ("pdb",),
        (),
        (_status("PodDisruptionBudget"),),
        True,
    ),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
)

_BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
_BY_KIND = {(k.api_version, k.kind): k for k in KINDS}

NAMESPACES = _BY_PATH["", "v1", "namespaces"]
NODES = _BY_PATH["", "v1", "nodes"]
PODS = _BY_PATH["", "v1", "pods"]
SERVICES = _BY_PATH["", "v1", "services"]
EVENTS = _BY_PATH["", "v1", "events"]
DEPLOYMENTS = _BY_PATH["apps", "v1", "deployments"]
REPLICASETS = _BY_PATH["apps", "v1", "replicasets"]
LEASES = _BY_PATH["coordination.k8s.io", "v1", "leases"]
PDBS = _BY_PATH["policy", "v1", "poddisruptionbudgets"]
ROLES = _BY_PATH["rbac.authorization.k8s.io", "v1", "roles"]
ROLE_BINDINGS = _BY_PATH["rbac.authorization.k8s.io", "v1", "rolebindings"]
CLUSTER_ROLES = _BY_PATH["rbac.authorization.k8s.io", "v1", "clusterroles"]
CLUSTER_ROLE_BINDINGS = _BY_PATH["rbac.authorization.k8s.io", "v1", "clusterrolebindings"]


def by_path(group: str, version: str, plural: str) -> Kind | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Kind | None:
    return _BY_KIND.get((api_version, kind))


def discovery_entries(group: str, version: str) -> list[dict[str, object]]:
    """The ``resources`` of an APIResourceList, subresources included, as a real server lists them."""
    entries: list[dict[str, object]] = []
    for kind in KINDS:
        if (kind.group, kind.version) != (group, version):
            continue
        entries.append(
            {
                "name": kind.plural,
                "singularName": kind.kind.lower(),
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": list(OBJECT_VERBS),
                "shortNames": list(kind.short_names),
                "categories": list(kind.categories),
            }
        )
        for sub in kind.subresources:
            entry: dict[str, object] = {
                "name": f"{kind.plural}/{sub.name}",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group is not None:
                entry.update(group=sub.group, version=sub.version)
            entries.append(entry)
    return entries


def kmock_info(kind: Kind) -> kmock.ResourceInfo:
    """What kmock's own discovery (``/apis``, ``/apis/{group}``) needs to know about a kind."""
    return kmock.ResourceInfo(
        namespaced=kind.namespaced,
        kind=kind.kind,
        singular=kind.kind.lower(),
        verbs=set(OBJECT_VERBS),
        shortnames=set(kind.short_names),
        categories=set(kind.categories),
        subresources={sub.name for sub in kind.subresources},
    )
