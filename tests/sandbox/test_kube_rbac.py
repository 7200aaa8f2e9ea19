"""The stand-in's RBAC authorizer (sandbox/kube/rbac.py), pure: request attributes, rule matching, binding scope."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.kube import rbac

SA = rbac.service_account("zerotouch-selfheal", "zerotouch-selfheal")
OTHER = rbac.service_account("zerotouch-selfheal", "someone-else")
ADMIN = rbac.User("kubernetes-admin", (rbac.SUPERUSER_GROUP,))
SA_SUBJECT = {"kind": "ServiceAccount", "name": "zerotouch-selfheal", "namespace": "zerotouch-selfheal"}


def attrs(verb: str, resource: str, namespace: str = "shop", group: str = "", name: str = "", sub: str = "") -> Any:
    return rbac.Attributes(SA, verb, True, group, resource, sub, namespace, name)


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def binding(kind: str, name: str, namespace: str | None = None, subject: dict[str, Any] | None = None) -> Any:
    meta = {"name": f"bind-{name}", **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "roleRef": {"kind": kind, "name": name}, "subjects": [subject or SA_SUBJECT]}


def rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> Any:
    found: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names is not None:
        found["resourceNames"] = names
    return found


def granted_cluster_wide(*rules: dict[str, Any]) -> rbac.Policy:
    return rbac.Policy(cluster_roles=[cluster_role("r", *rules)], cluster_role_bindings=[binding("ClusterRole", "r")])


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        (
            "GET",
            "/apis/apps/v1/namespaces/shop/deployments/checkout",
            {},
            ("get", "apps", "deployments", "", "shop", "checkout"),
        ),
        ("GET", "/apis/apps/v1/namespaces/shop/deployments", {}, ("list", "apps", "deployments", "", "shop", "")),
        ("GET", "/apis/apps/v1/deployments", {}, ("list", "apps", "deployments", "", "", "")),
        ("GET", "/api/v1/namespaces/shop/pods", {"watch": "true"}, ("watch", "", "pods", "", "shop", "")),
        (
            "GET",
            "/api/v1/namespaces/shop/pods",
            {"watch": "1", "fieldSelector": "metadata.name=web-1"},
            ("watch", "", "pods", "", "shop", "web-1"),
        ),
        ("POST", "/api/v1/namespaces/shop/configmaps", {}, ("create", "", "configmaps", "", "shop", "")),
        (
            "PUT",
            "/apis/apps/v1/namespaces/shop/deployments/web",
            {},
            ("update", "apps", "deployments", "", "shop", "web"),
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/checkout/scale",
            {},
            ("patch", "apps", "deployments", "scale", "shop", "checkout"),
        ),
        (
            "POST",
            "/api/v1/namespaces/shop/pods/web-1/eviction",
            {},
            ("create", "", "pods", "eviction", "shop", "web-1"),
        ),
        ("DELETE", "/api/v1/namespaces/shop/pods/web-1", {}, ("delete", "", "pods", "", "shop", "web-1")),
        ("DELETE", "/api/v1/namespaces/shop/pods", {}, ("deletecollection", "", "pods", "", "shop", "")),
        ("PATCH", "/api/v1/nodes/node-a", {}, ("patch", "", "nodes", "", "", "node-a")),
        ("GET", "/api/v1/namespaces/shop", {}, ("get", "", "namespaces", "", "shop", "shop")),  # its own namespace
        ("PUT", "/api/v1/namespaces/shop/finalize", {}, ("update", "", "namespaces", "finalize", "shop", "shop")),
        (
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/shop/leases/selfheal-web",
            {},
            ("get", "coordination.k8s.io", "leases", "", "shop", "selfheal-web"),
        ),
    ],
)
def test_request_attributes_are_resolved_as_the_api_server_does(
    method: str, path: str, params: dict[str, str], expected: tuple[str, ...]
) -> None:
    a = rbac.request_attributes(SA, method, path, params)
    assert a.resource_request
    assert (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) == expected


@pytest.mark.parametrize("path", ["/version", "/healthz", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1"])
def test_paths_outside_resources_are_non_resource_requests(path: str) -> None:
    a = rbac.request_attributes(SA, "GET", path, {})
    assert (a.resource_request, a.verb, a.path) == (False, "get", path)


@pytest.mark.parametrize(
    ("rules", "asked", "allowed"),
    [
        # verbs
        ([rule(["apps"], ["deployments"], ["get"])], attrs("get", "deployments", group="apps"), True),
        ([rule(["apps"], ["deployments"], ["get"])], attrs("update", "deployments", group="apps"), False),
        ([rule(["apps"], ["deployments"], ["*"])], attrs("deletecollection", "deployments", group="apps"), True),
        ([rule([""], ["pods"], ["list"])], attrs("watch", "pods"), False),  # list does not imply watch
        # apiGroups
        ([rule([""], ["deployments"], ["get"])], attrs("get", "deployments", group="apps"), False),
        ([rule(["*"], ["deployments"], ["get"])], attrs("get", "deployments", group="apps"), True),
        ([rule(["apps"], ["pods"], ["list"])], attrs("list", "pods"), False),
        # resources
        ([rule([""], ["pods"], ["list"])], attrs("list", "configmaps"), False),
        ([rule([""], ["*"], ["list"])], attrs("list", "configmaps"), True),
        # subresources: the parent does not grant them, nor they the parent
        (
            [rule(["apps"], ["deployments"], ["patch"])],
            attrs("patch", "deployments", "shop", "apps", "w", "scale"),
            False,
        ),
        (
            [rule(["apps"], ["deployments/scale"], ["patch"])],
            attrs("patch", "deployments", "shop", "apps", "w", "scale"),
            True,
        ),
        ([rule(["apps"], ["deployments/scale"], ["patch"])], attrs("patch", "deployments", "shop", "apps", "w"), False),
        ([rule(["apps"], ["*/scale"], ["patch"])], attrs("patch", "replicasets", "shop", "apps", "w", "scale"), True),
        ([rule(["apps"], ["*/scale"], ["patch"])], attrs("patch", "deployments", "shop", "apps", "w", "status"), False),
        ([rule([""], ["pods/eviction"], ["create"])], attrs("create", "pods", name="web-1", sub="eviction"), True),
        ([rule([""], ["pods/eviction"], ["create"])], attrs("create", "pods"), False),
        ([rule([""], ["*"], ["create"])], attrs("create", "pods", name="web-1", sub="eviction"), True),
        # resourceNames
        ([rule([""], ["configmaps"], ["get"], ["limits"])], attrs("get", "configmaps", name="limits"), True),
        ([rule([""], ["configmaps"], ["get"], ["limits"])], attrs("get", "configmaps", name="other"), False),
        ([rule([""], ["configmaps"], ["list"], ["limits"])], attrs("list", "configmaps"), False),  # a list has no name
        ([rule([""], ["configmaps"], ["create"], ["limits"])], attrs("create", "configmaps"), False),
        ([rule([""], ["pods"], ["watch"], ["web-1"])], attrs("watch", "pods", name="web-1"), True),  # by field selector
        # several rules: one match is enough
        ([rule([""], ["pods"], ["list"]), rule([""], ["pods"], ["delete"])], attrs("delete", "pods", name="x"), True),
        ([], attrs("get", "pods", name="x"), False),
    ],
)
def test_rules_match_on_every_dimension(rules: list[dict[str, Any]], asked: rbac.Attributes, allowed: bool) -> None:
    assert rbac.authorize(asked, granted_cluster_wide(*rules)).allowed is allowed


NAMESPACED = rule(["apps"], ["deployments"], ["get"])
NODES = rule([""], ["nodes"], ["get", "list", "patch"])


@pytest.mark.parametrize(
    ("policy", "asked", "allowed"),
    [
        # a RoleBinding of a ClusterRole grants its rules in the binding's namespace only
        (
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)], role_bindings=[binding("ClusterRole", "w", "shop")]
            ),
            attrs("get", "deployments", "shop", "apps", "web"),
            True,
        ),
        (
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)], role_bindings=[binding("ClusterRole", "w", "shop")]
            ),
            attrs("get", "deployments", "payments", "apps", "web"),
            False,
        ),
        (  # nor across all namespaces
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)], role_bindings=[binding("ClusterRole", "w", "shop")]
            ),
            attrs("get", "deployments", "", "apps", "web"),
            False,
        ),
        (  # a Role is found in the binding's namespace, not in another one
            rbac.Policy(roles=[role("w", "shop", NAMESPACED)], role_bindings=[binding("Role", "w", "shop")]),
            attrs("get", "deployments", "shop", "apps", "web"),
            True,
        ),
        (
            rbac.Policy(roles=[role("w", "payments", NAMESPACED)], role_bindings=[binding("Role", "w", "shop")]),
            attrs("get", "deployments", "shop", "apps", "web"),
            False,
        ),
        (  # a ClusterRoleBinding grants in every namespace and at the cluster scope
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)], cluster_role_bindings=[binding("ClusterRole", "w")]
            ),
            attrs("get", "deployments", "payments", "apps", "web"),
            True,
        ),
        (  # cluster-scoped nodes: a RoleBinding cannot grant them, even of a ClusterRole that lists them
            rbac.Policy(cluster_roles=[cluster_role("n", NODES)], role_bindings=[binding("ClusterRole", "n", "shop")]),
            attrs("patch", "nodes", "", name="node-a"),
            False,
        ),
        (
            rbac.Policy(cluster_roles=[cluster_role("n", NODES)], cluster_role_bindings=[binding("ClusterRole", "n")]),
            attrs("patch", "nodes", "", name="node-a"),
            True,
        ),
        (  # a ClusterRoleBinding cannot refer to a Role
            rbac.Policy(roles=[role("w", "shop", NAMESPACED)], cluster_role_bindings=[binding("Role", "w")]),
            attrs("get", "deployments", "shop", "apps", "web"),
            False,
        ),
        (  # subjects: another ServiceAccount, a User, a Group
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)],
                cluster_role_bindings=[
                    binding("ClusterRole", "w", subject={"kind": "ServiceAccount", "name": "x", "namespace": "y"})
                ],
            ),
            attrs("get", "deployments", "shop", "apps", "web"),
            False,
        ),
        (
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)],
                cluster_role_bindings=[binding("ClusterRole", "w", subject={"kind": "User", "name": SA.name})],
            ),
            attrs("get", "deployments", "shop", "apps", "web"),
            True,
        ),
        (
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)],
                cluster_role_bindings=[
                    binding(
                        "ClusterRole",
                        "w",
                        subject={"kind": "Group", "name": "system:serviceaccounts:zerotouch-selfheal"},
                    )
                ],
            ),
            attrs("get", "deployments", "shop", "apps", "web"),
            True,
        ),
        (  # a ServiceAccount subject without namespace means the RoleBinding's own namespace
            rbac.Policy(
                cluster_roles=[cluster_role("w", NAMESPACED)],
                role_bindings=[
                    binding(
                        "ClusterRole",
                        "w",
                        "zerotouch-selfheal",
                        {"kind": "ServiceAccount", "name": "zerotouch-selfheal"},
                    )
                ],
            ),
            rbac.Attributes(SA, "get", True, "apps", "deployments", "", "zerotouch-selfheal", "web"),
            True,
        ),
    ],
)
def test_bindings_grant_in_their_scope(policy: rbac.Policy, asked: rbac.Attributes, allowed: bool) -> None:
    assert rbac.authorize(asked, policy).allowed is allowed


def test_a_binding_applies_to_its_subject_only() -> None:
    policy = granted_cluster_wide(rule(["apps"], ["deployments"], ["get"]))
    asked = attrs("get", "deployments", group="apps", name="web")
    assert rbac.authorize(asked, policy).allowed
    assert not rbac.authorize(
        rbac.Attributes(OTHER, "get", True, "apps", "deployments", "", "shop", "web"), policy
    ).allowed


def test_system_masters_are_allowed_everything() -> None:
    assert rbac.authorize(rbac.Attributes(ADMIN, "delete", True, "", "secrets", "", "shop", "x"), rbac.Policy()).allowed


def test_non_resource_urls_match_exactly_or_by_prefix() -> None:
    policy = granted_cluster_wide({"verbs": ["get"], "nonResourceURLs": ["/version", "/apis/*"]})
    allowed = {
        path: rbac.authorize(rbac.request_attributes(SA, "GET", path, {}), policy).allowed
        for path in ("/version", "/apis/apps/v1", "/healthz", "/api")
    }
    assert allowed == {"/version": True, "/apis/apps/v1": True, "/healthz": False, "/api": False}
    assert not rbac.authorize(rbac.request_attributes(SA, "POST", "/version", {}), policy).allowed


def test_a_binding_to_a_missing_role_is_the_reason_of_the_denial() -> None:
    policy = rbac.Policy(role_bindings=[binding("ClusterRole", "gone", "shop"), binding("Role", "lost", "shop")])
    decision = rbac.authorize(attrs("get", "pods", name="x"), policy)
    assert not decision.allowed
    assert decision.reason == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
        'role.rbac.authorization.k8s.io "lost" not found]'
    )


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        (
            attrs("patch", "deployments", "shop", "apps", "checkout", "scale"),
            'deployments.apps "checkout" is forbidden: '
            'User "system:serviceaccount:zerotouch-selfheal:zerotouch-selfheal" '
            'cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop"',
        ),
        (
            attrs("list", "secrets"),
            'secrets is forbidden: User "system:serviceaccount:zerotouch-selfheal:zerotouch-selfheal" cannot list'
            ' resource "secrets" in API group "" in the namespace "shop"',
        ),
        (
            attrs("delete", "nodes", "", name="node-a"),
            'nodes "node-a" is forbidden: User "system:serviceaccount:zerotouch-selfheal:zerotouch-selfheal" cannot'
            ' delete resource "nodes" in API group "" at the cluster scope',
        ),
        (
            rbac.Attributes(SA, "get", False, path="/metrics"),
            'forbidden: User "system:serviceaccount:zerotouch-selfheal:zerotouch-selfheal" cannot get path "/metrics"',
        ),
    ],
)
def test_the_forbidden_message_is_worded_as_kube_apiserver_words_it(asked: rbac.Attributes, message: str) -> None:
    assert rbac.forbidden_message(asked) == message


def test_the_reason_follows_the_message() -> None:
    assert rbac.forbidden_message(attrs("list", "pods"), "RBAC: x").endswith('in the namespace "shop": RBAC: x')


@pytest.mark.parametrize(
    ("header", "user"),
    [
        ("Bearer restricted", SA),
        ("bearer restricted", SA),
        ("Bearer admin", ADMIN),
        ("Bearer unknown", ADMIN),
        (None, ADMIN),
        ("Basic restricted", ADMIN),
    ],
)
def test_tokens_authenticate_their_user(header: str | None, user: rbac.User) -> None:
    assert rbac.authenticate(header, {"restricted": SA, "admin": ADMIN}, ADMIN) == user
