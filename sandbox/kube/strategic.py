"""Patch semantics: JSON merge patch, strategic merge patch (with the merge keys of the real schema), JSON patch."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, APPLY_PATCH)

Path = tuple[str, ...]

# Where a PodSpec sits in each kind; list fields below it use the PodSpec merge keys.
_POD_SPEC_ROOTS: dict[str, Path] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
}
_POD_SPEC_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
}
_CONTAINER_KEYS: dict[str, str] = {
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "resizePolicy": "resourceName",
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_KIND_KEYS: dict[tuple[str, Path], str] = {
    ("Service", ("spec", "ports")): "port",
    ("Node", ("status", "addresses")): "type",
}
_ANY_KIND_KEYS: dict[Path, str] = {
    ("metadata", "ownerReferences"): "uid",
    ("status", "conditions"): "type",
}
_PRIMITIVE_MERGE: frozenset[Path] = frozenset({("metadata", "finalizers")})

_DELETE = object()  # a map patched with ``$patch: delete``


class PatchError(ValueError):
    """The patch cannot be applied to the object (the server answers 422)."""


def merge_key(kind: str, path: Path) -> str | None:
    """The merge key of the list at ``path`` in ``kind``, or None if the list is replaced as a whole."""
    root = _POD_SPEC_ROOTS.get(kind)
    if root is not None and path[: len(root)] == root:
        rel = path[len(root) :]
        if len(rel) == 1:
            return _POD_SPEC_KEYS.get(rel[0])
        if len(rel) == 2 and rel[0] in _CONTAINER_LISTS:
            return _CONTAINER_KEYS.get(rel[1])
    return _KIND_KEYS.get((kind, path)) or _ANY_KIND_KEYS.get(path)


def apply_patch(kind: str, obj: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Apply a patch of the given content type; returns a new object and never mutates ``obj``."""
    if content_type == JSON_PATCH:
        return json_patch(obj, patch)
    if not isinstance(patch, Mapping):
        raise PatchError("a merge patch must be a JSON object")
    if content_type == MERGE_PATCH:
        return dict(merge_patch(obj, patch))
    return strategic_merge(kind, obj, patch)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, ``null`` removes, everything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 operations; a failed ``test`` or a bad pointer is a PatchError."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        result = jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
        raise PatchError(f"the JSON patch cannot be applied: {exc}") from exc
    if not isinstance(result, dict):
        raise PatchError("the JSON patch replaced the object with a non-object")
    return result


def strategic_merge(kind: str, target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = _merge_map(kind, (), target, patch)
    return {} if merged is _DELETE else merged


def _merge_map(kind: str, path: Path, target: Mapping[str, Any], patch: Mapping[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _merge_map(kind, path, {}, {k: v for k, v in patch.items() if k != "$patch"})
    result = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [item for item in result.get(field) or [] if item not in value]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        _merge_field(kind, path + (key,), result, key, value)
    if "$retainKeys" in patch:
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    for key, order in patch.items():
        if key.startswith("$setElementOrder/"):
            field = key.split("/", 1)[1]
            result[field] = _reorder(result.get(field) or [], order, merge_key(kind, path + (field,)))
    return result


def _merge_field(kind: str, path: Path, result: dict[str, Any], key: str, value: Any) -> None:
    old = result.get(key)
    if value is None:
        result.pop(key, None)
    elif isinstance(value, Mapping):
        merged = _merge_map(kind, path, old if isinstance(old, Mapping) else {}, value)
        if merged is _DELETE:
            result.pop(key, None)
        else:
            result[key] = merged
    elif isinstance(value, list):
        result[key] = _merge_list(kind, path, old if isinstance(old, list) else [], value)
    else:
        result[key] = value


def _merge_list(kind: str, path: Path, target: list[Any], patch: list[Any]) -> list[Any]:
    if path in _PRIMITIVE_MERGE:
        return list(target) + [item for item in patch if item not in target]
    key = merge_key(kind, path)
    replace = any(isinstance(item, Mapping) and item.get("$patch") == "replace" for item in patch)
    if key is None or replace:
        items = [item for item in patch if not (isinstance(item, Mapping) and item.get("$patch") == "replace")]
        return [_merge_map(kind, path, {}, item) if isinstance(item, Mapping) else item for item in items]
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, Mapping) or key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, old in enumerate(result) if old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            result = [old for old in result if old.get(key) != item[key]]
        elif index is None:
            result.append(_merge_map(kind, path, {}, item))
        else:
            result[index] = _merge_map(kind, path, result[index], item)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """Honour ``$setElementOrder``: listed elements first, in that order; the rest keep their place after."""

    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, Mapping) else item

    wanted = [ident(item) for item in order]
    ranked = sorted(items, key=lambda item: wanted.index(ident(item)) if ident(item) in wanted else len(wanted))
    return ranked
