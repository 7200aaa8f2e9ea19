# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# Facts about Kubernetes objects that gather, decide and act must agree on: each written once, here.

"""Rules about Kubernetes objects, shared by every stage of the loop."""

from __future__ import annotations

from typing import Any

# On a node this collection cordoned, until it uncordons it: the blast-radius guardrail counts these (principle 7).
CORDONED_BY = "selfheal.zerotouch.io/cordoned"


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def cordoned(node: dict[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def cordoned_by_us(node: dict[str, Any]) -> bool:
    """Whether this collection cordoned the node (and nobody has uncordoned it since)."""
    return cordoned(node) and CORDONED_BY in _annotations(node)


def node_ready(node: dict[str, Any]) -> bool | None:
    """The node's Ready condition: True, False, or None when it is not reported."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return None
