"""Authentication by bearer token and authorization by RBAC, as kube-apiserver decides them; pure.

``authenticate`` maps a bearer token to a :class:`User`. ``request_attributes`` turns an HTTP request into the
authorizer's :class:`Attributes` the way the API server's RequestInfo resolver does (method -> verb, a name
field selector on a list names the object, ``/api/v1/namespaces/X`` is in namespace X). ``authorize``
evaluates Roles, ClusterRoles, RoleBindings and ClusterRoleBindings (plain dicts, as the API serves them) like
the RBAC authorizer: a ClusterRoleBinding grants everywhere, a RoleBinding only in its own namespace (of a Role
there or of a ClusterRole); a rule grants when its verbs, apiGroups, resources (``resource/subresource``,
``*/subresource``, ``*``) and resourceNames all match. Members of ``system:masters`` are allowed everything, as
the real server's privileged-group authorizer does. Aggregated ClusterRoles are not expanded, and writes of
RBAC objects are not checked for privilege escalation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]

SUPERUSER_GROUP = "system:masters"
AUTHENTICATED_GROUP = "system:authenticated"
RBAC_GROUP = "rbac.authorization.k8s.io"
ALL = "*"
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_READ_METHODS = {"GET": "get", "HEAD": "get"}
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


def service_account(namespace: str, name: str) -> User:
    """The user a ServiceAccount's token authenticates as, with the groups the API server adds."""
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED_GROUP),
    )


def authenticate(authorization: str | None, tokens: Mapping[str, User], default: User) -> User:
    """The user of a ``Bearer <token>`` header; ``default`` when there is no known token."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip() in tokens:
        return tokens[token.strip()]
    return default


@dataclass(frozen=True)
class Attributes:
    """What the authorizer is asked: may ``user`` do ``verb`` on this resource (or non-resource ``path``)?"""

    user: User
    verb: str
    resource_request: bool = True
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(user: User, method: str, path: str, params: Mapping[str, str]) -> Attributes:
    """The attributes of one HTTP request, resolved as kube-apiserver's RequestInfo does."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        rest = []
    if not rest:  # /version, /healthz, discovery: a non-resource request
        return Attributes(user, method.lower(), resource_request=False, path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource, name, subresource = rest[0], rest[1] if len(rest) > 1 else "", "/".join(rest[2:])
    if method in _READ_METHODS:
        if name:
            verb = "get"
        else:
            watching = params.get("watch", "").lower() in ("true", "1")
            verb = "watch" if watching else "list"
            name = _name_selected(params.get("fieldSelector", ""))
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return Attributes(user, verb, True, group, resource, subresource, namespace, name, path)


def _name_selected(field_selector: str) -> str:
    """A list or watch narrowed to one object by ``metadata.name=X`` is authorized as a request for X."""
    for requirement in field_selector.split(","):
        key, sep, value = requirement.partition("=")
        if sep and key.strip() == "metadata.name":
            return value.lstrip("=").strip()
    return ""


@dataclass(frozen=True)
class Policy:
    """The RBAC objects of the cluster."""

    roles: Sequence[Obj] = ()
    cluster_roles: Sequence[Obj] = ()
    role_bindings: Sequence[Obj] = ()
    cluster_role_bindings: Sequence[Obj] = ()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # why no rule could be evaluated (a binding to a missing role), as the RBAC authorizer says


@dataclass
class _Rules:
    rules: list[Obj] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def applies_to(user: User, subject: Obj, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(user.name == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace  # a RoleBinding's own namespace by default
        return bool(namespace) and user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def _bound(user: User, bindings: Iterable[Obj], namespace: str) -> Iterator[Obj]:
    for binding in bindings:
        if any(applies_to(user, subject, namespace) for subject in binding.get("subjects") or []):
            yield binding.get("roleRef") or {}


def _find(objects: Iterable[Obj], name: str, namespace: str | None = None) -> Obj | None:
    for obj in objects:
        meta = _meta(obj)
        if meta.get("name") == name and (namespace is None or meta.get("namespace") == namespace):
            return obj
    return None


def rules_for(user: User, namespace: str, policy: Policy) -> tuple[list[Obj], list[str]]:
    """The rules granted to ``user`` for a request in ``namespace`` ("" = cluster scope), and the bindings whose
    role is missing: every ClusterRoleBinding, and in a namespace its RoleBindings too."""
    found = _Rules()

    def collect(ref: Obj, role_namespace: str | None) -> None:
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ClusterRole":
            role = _find(policy.cluster_roles, name)
        elif kind == "Role" and role_namespace is not None:
            role = _find(policy.roles, name, role_namespace)
        else:
            return
        if role is None:
            found.errors.append(f'{str(kind).lower()}.{RBAC_GROUP} "{name}" not found')
            return
        found.rules.extend(role.get("rules") or [])

    for ref in _bound(user, policy.cluster_role_bindings, ""):
        collect(ref, None)  # a ClusterRoleBinding may only refer to a ClusterRole
    if namespace:
        bindings = [b for b in policy.role_bindings if _meta(b).get("namespace") == namespace]
        for ref in _bound(user, bindings, namespace):
            collect(ref, namespace)
    return found.rules, found.errors


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = list(values or [])
    return ALL in values or wanted in values


def resource_matches(rule_resources: Iterable[str] | None, combined: str, subresource: str) -> bool:
    for resource in rule_resources or []:
        if resource in (ALL, combined):
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def url_matches(rule_urls: Iterable[str] | None, path: str) -> bool:
    for url in rule_urls or []:
        if url in (ALL, path) or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(attributes: Attributes, rule: Obj) -> bool:
    if not _has(rule.get("verbs"), attributes.verb):
        return False
    if not attributes.resource_request:
        return url_matches(rule.get("nonResourceURLs"), attributes.path)
    names = list(rule.get("resourceNames") or [])
    return (
        _has(rule.get("apiGroups"), attributes.api_group)
        and resource_matches(rule.get("resources"), attributes.combined_resource, attributes.subresource)
        and (not names or attributes.name in names)
    )


def authorize(attributes: Attributes, policy: Policy) -> Decision:
    if SUPERUSER_GROUP in attributes.user.groups:
        return Decision(True)
    rules, errors = rules_for(attributes.user, attributes.namespace, policy)
    if any(rule_allows(attributes, rule) for rule in rules):
        return Decision(True)
    if not errors:
        return Decision(False)
    return Decision(False, "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"))


def forbidden_message(attributes: Attributes, reason: str = "") -> str:
    """The Status message of a 403, worded as kube-apiserver words it."""
    a = attributes
    if not a.resource_request:
        message = f'forbidden: User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    else:
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        denial = f'User "{a.user.name}" cannot {a.verb} resource "{a.combined_resource}" in API group "{a.api_group}"'
        qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
        named = f' "{a.name}"' if a.name else ""
        message = f"{qualified}{named} is forbidden: {denial} {scope}"
    return f"{message}: {reason}" if reason else message
