# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# Facts about Kubernetes objects that gather, decide and act must agree on: each written once, here.

"""Rules about Kubernetes objects, shared by every stage of the loop."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"

# Why a container is not running, as the kubelet reports it: the pod fails.
FAILING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "OOMKilled",
        "Error",
    }
)

# Failures a restart does not cure: the new pod pulls the same image, reads the same configuration, or waits for
# the same room on a node. The engine does not choose a restart for them, and the restart does not delete them.
RESTART_CANNOT_CURE = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "Unschedulable",
    }
)


def restart_cures(reason: str | None) -> bool:
    """Whether replacing a pod that fails for ``reason`` can make it run."""
    return bool(reason) and reason not in RESTART_CANNOT_CURE


# On a node this collection cordoned, until it uncordons it: the blast-radius guardrail counts these (principle 7).
CORDONED_BY = "selfheal.zerotouch.io/cordoned"


def cordoned(node: dict[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def cordoned_by_us(node: dict[str, Any]) -> bool:
    """Whether this collection cordoned the node (and nobody has uncordoned it since)."""
    return cordoned(node) and CORDONED_BY in annotations_of(node)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The object's status condition of type ``kind`` (a pod's or node's Ready, ...); empty when not reported."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def node_ready(node: dict[str, Any]) -> bool | None:
    """The node's Ready condition: True, False, or None when it is not reported."""
    status = condition(node, "Ready").get("status")
    return None if status is None else status == "True"


def revision_of(obj: dict[str, Any]) -> int | None:
    """The rollout revision a Deployment or ReplicaSet carries (its revision annotation)."""
    return int_or_none(annotations_of(obj).get(REVISION))


def meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def annotations_of(obj: dict[str, Any] | None) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def ref(obj: dict[str, Any]) -> str:
    """``namespace/name`` of a namespaced object, ``name`` of a cluster-scoped one."""
    m = meta(obj)
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else str(m.get("name"))


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as the API writes it (with or without fraction); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if match and match.group(2):  # fromisoformat before 3.11 wants exactly 3 or 6 fraction digits
        text = match.group(1) + (match.group(2) + "000000")[:7] + match.group(3)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels.

    An empty or missing selector selects nothing here: a remediation must never fall back to "every pod".
    """
    selector = selector or {}
    labels = labels or {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def label_query(selector: dict[str, Any] | None) -> str | None:
    """The ``matchLabels`` of a selector as an API server's ``labelSelector`` (None: select everything). The
    ``matchExpressions`` are left to :func:`selector_matches` on what comes back: the query only narrows the list."""
    labels = (selector or {}).get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None


def deployment_pods(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods a Deployment's selector selects in its namespace, sorted by name."""
    namespace = meta(deployment).get("namespace")
    selector = (deployment.get("spec") or {}).get("selector")
    return sorted(
        (
            p
            for p in pods
            if meta(p).get("namespace") == namespace and selector_matches(selector, meta(p).get("labels"))
        ),
        key=lambda p: str(meta(p).get("name")),
    )


NOT_READY_GRACE = timedelta(seconds=60)  # a pod not ready for less than this may still be starting


def failing_reason(pod: dict[str, Any], now: datetime | None = None) -> str | None:
    """Why a pod counts as failing, or None when it runs cleanly (or is still starting, or already leaving).

    Failing: phase Failed, a container waiting or terminated for a reason in :data:`FAILING_REASONS`, or
    Running but not Ready for at least :data:`NOT_READY_GRACE` (as of ``now``; any time when ``now`` is None). A
    Pending pod is not failing here: deleting it would not schedule or start it any sooner.
    """
    if meta(pod).get("deletionTimestamp"):
        return None
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Failed":
        return str(status.get("reason") or "Failed")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason in FAILING_REASONS:
                return str(reason)
    ready = condition(pod, "Ready")
    if phase == "Running" and ready.get("status") != "True":
        since = parse_time(ready.get("lastTransitionTime"))
        if now is None or since is None or now - since >= NOT_READY_GRACE:
            return "NotReady"
    return None


def owned_by(obj: dict[str, Any], kind: str, owner: dict[str, Any]) -> bool:
    """Whether ``obj`` names ``owner`` (of ``kind``) among its owners: by uid when both have one, else by name."""
    owner_meta = meta(owner)
    for owner_ref in meta(obj).get("ownerReferences") or []:
        if owner_ref.get("kind") != kind:
            continue
        if owner_meta.get("uid") and owner_ref.get("uid"):
            if owner_ref["uid"] == owner_meta["uid"]:
                return True
        elif owner_ref.get("name") == owner_meta.get("name"):
            return True
    return False


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def rs_revisions(rs: dict[str, Any]) -> list[int]:
    """The revisions a ReplicaSet stands for: its own, and the earlier ones it was reused for (revision-history)."""
    notes = annotations_of(rs)
    found = [int_or_none(notes.get(REVISION))]
    found += [int_or_none(part) for part in str(notes.get(REVISION_HISTORY) or "").split(",") if part.strip()]
    return [r for r in found if r is not None]
