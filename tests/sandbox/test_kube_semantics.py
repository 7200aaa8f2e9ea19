"""Pure pieces of the stand-in: patch semantics, selectors and rolling-update arithmetic."""

from __future__ import annotations

import pytest

from sandbox.kube import rollout, selectors, strategic

POD = {
    "metadata": {"name": "p", "finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "rs"}]},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "nginx:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}],
                "args": ["--x"],
            },
            {"name": "side", "image": "envoy:1"},
        ],
        "tolerations": [{"key": "k", "operator": "Exists"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]},
}


@pytest.mark.parametrize(
    ("patch", "path", "expected"),
    [
        (
            {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}},
            ("spec", "containers", 0, "image"),
            "nginx:2",
        ),
        ({"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}, ("spec", "containers", 1, "name"), "side"),
        (
            {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "3"}]}]}},
            ("spec", "containers", 0, "env"),
            [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}],
        ),
        (
            {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}},
            ("spec", "containers", 0, "env"),
            [{"name": "B", "value": "2"}],
        ),
        (
            {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}},
            ("spec", "containers", 0, "ports"),
            [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
        ),
        (
            {"spec": {"containers": [{"name": "app", "args": ["--y"]}]}},
            ("spec", "containers", 0, "args"),
            ["--y"],
        ),
        ({"spec": {"tolerations": []}}, ("spec", "tolerations"), []),
        ({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}, ("spec", "containers", -1, "name"), "app"),
        (
            {"spec": {"containers": [{"name": "only", "image": "x:1"}, {"$patch": "replace"}]}},
            ("spec", "containers"),
            [{"name": "only", "image": "x:1"}],
        ),
        ({"metadata": {"finalizers": ["b", "a"]}}, ("metadata", "finalizers"), ["a", "b"]),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, ("metadata", "finalizers"), []),
        (
            {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            ("status", "conditions", 1, "type"),
            "PodScheduled",
        ),
        (
            {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            ("status", "conditions", 0, "status"),
            "False",
        ),
        ({"spec": {"containers": [{"name": "app", "image": None}]}}, ("spec", "containers", 0, "image"), None),
        ({"spec": {"$patch": "replace", "containers": []}}, ("spec",), {"containers": []}),
        (
            {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}]}},
            ("spec", "containers", 0, "name"),
            "side",
        ),
    ],
)
def test_strategic_merge(patch, path, expected):
    merged = strategic.strategic_merge("Pod", POD, patch)
    value = merged
    for key in path:
        value = value.get(key) if isinstance(value, dict) else value[key]
    assert value == expected
    assert POD["spec"]["containers"][0]["image"] == "nginx:1"  # the original is never mutated


def test_strategic_merge_requires_the_merge_key():
    with pytest.raises(strategic.PatchError, match="merge key: name"):
        strategic.strategic_merge("Pod", POD, {"spec": {"containers": [{"image": "x"}]}})


def test_lists_of_other_kinds_merge_by_their_own_keys():
    service = {"spec": {"ports": [{"port": 80, "name": "http"}]}}
    merged = strategic.strategic_merge("Service", service, {"spec": {"ports": [{"port": 443, "name": "https"}]}})
    assert [p["port"] for p in merged["spec"]["ports"]] == [80, 443]
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}
    assert (
        len(strategic.strategic_merge("Deployment", deployment, patch)["spec"]["template"]["spec"]["containers"]) == 2
    )
    assert strategic.merge_key("ConfigMap", ("spec", "containers")) is None


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, {"a": {"c": 2}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": 1}, {"b": {"c": 1}}, {"a": 1, "b": {"c": 1}}),
    ],
)
def test_merge_patch(target, patch, expected):
    assert strategic.apply_patch("Pod", target, patch, strategic.MERGE_PATCH) == expected


def test_json_patch_failures_are_patch_errors():
    with pytest.raises(strategic.PatchError):
        strategic.apply_patch("Pod", {"a": 1}, [{"op": "remove", "path": "/b"}], strategic.JSON_PATCH)
    with pytest.raises(strategic.PatchError):
        strategic.apply_patch("Pod", {"a": 1}, {"a": 2}, strategic.JSON_PATCH)


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {}, False),
        ("app!=web", {}, True),
        ("app in (web,api)", {"app": "api"}, True),
        ("app notin (web, api)", {"app": "db"}, True),
        ("app,!canary", {"app": "x"}, True),
        ("app,!canary", {"app": "x", "canary": "1"}, False),
        ("weight>5", {"weight": "7"}, True),
        ("weight<5", {"weight": "x"}, False),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector_matching(text, labels, matches):
    assert selectors.matches(selectors.parse_labels(text), labels) is matches


@pytest.mark.parametrize("text", ["app in web", "=web", "app=(x)", "a==b==c"])
def test_bad_label_selectors(text):
    with pytest.raises(ValueError):
        selectors.parse_labels(text)


def test_label_selector_objects_and_format():
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "x", "operator": "Exists"},
        ],
    }
    requirements = selectors.from_object(selector)
    assert selectors.format_selector(requirements) == "app=web,tier in (a,b),x"
    assert selectors.matches(requirements, {"app": "web", "tier": "a", "x": ""})
    assert not selectors.matches(requirements, {"app": "web", "tier": "c", "x": ""})


def test_field_selectors_compare_strings():
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "unschedulable": True}, "status": {"phase": "Running"}}
    assert all(f.matches(pod) for f in selectors.parse_fields("spec.nodeName=n1,status.phase!=Pending"))
    assert all(f.matches(pod) for f in selectors.parse_fields("spec.unschedulable=true"))
    assert not all(f.matches(pod) for f in selectors.parse_fields("spec.missing=x"))
    assert all(f.matches(pod) for f in selectors.parse_fields("spec.missing="))


def rs(name: str, replicas: int, available: int, revision: int) -> rollout.RsState:
    return rollout.RsState(name, replicas, replicas, available, revision)


ROLLING = {"replicas": 4, "strategy": {"type": "RollingUpdate"}}


@pytest.mark.parametrize(
    ("spec", "new", "olds", "expected"),
    [
        # surge ceil(25% of 4) = 1: the new ReplicaSet may add one pod first
        (ROLLING, rs("new", 0, 0, 2), [rs("old", 4, 4, 1)], {"new": 1, "old": 4}),
        # then the old one gives up one available pod (maxUnavailable floor(25% of 4) = 1)
        (ROLLING, rs("new", 1, 0, 2), [rs("old", 4, 4, 1)], {"new": 1, "old": 3}),
        # a new ReplicaSet that never becomes available stops the rollout there
        (ROLLING, rs("new", 2, 0, 2), [rs("old", 3, 3, 1)], {"new": 2, "old": 3}),
        # unhealthy old pods go first, without counting against availability
        (ROLLING, rs("new", 1, 1, 2), [rs("old", 4, 2, 1)], {"new": 1, "old": 2}),
        # plain scaling when there is nothing to roll
        (ROLLING, rs("new", 4, 4, 1), [], {"new": 4}),
        ({"replicas": 2}, rs("new", 4, 4, 1), [], {"new": 2}),
        # Recreate: old to zero, new only once no old pod is left
        (
            {"replicas": 2, "strategy": {"type": "Recreate"}},
            rs("new", 0, 0, 2),
            [rs("old", 2, 2, 1)],
            {"new": 0, "old": 0},
        ),
        (
            {"replicas": 2, "strategy": {"type": "Recreate"}},
            rs("new", 0, 0, 2),
            [rollout.RsState("old", 0, 0, 0, 1)],
            {"new": 2, "old": 0},
        ),
    ],
)
def test_rollout_plan(spec, new, olds, expected):
    assert rollout.plan(spec, new, olds) == expected


@pytest.mark.parametrize(
    ("rolling", "replicas", "expected"),
    [
        ({}, 4, (1, 1)),
        ({"maxSurge": 0, "maxUnavailable": 0}, 3, (0, 1)),
        ({"maxSurge": "50%", "maxUnavailable": 2}, 3, (2, 2)),
    ],
)
def test_surge_and_unavailable(rolling, replicas, expected):
    spec = {"replicas": replicas, "strategy": {"type": "RollingUpdate", "rollingUpdate": rolling}}
    assert rollout.surge_and_unavailable(spec) == expected
