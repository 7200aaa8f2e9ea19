# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Drift: which fields of a declared object the live one no longer matches, and the reconcile plan that repairs them.

:func:`compute_drift` is shared with the gatherer, which fills the snapshot's ``observed.workload.drift`` with it;
:func:`plan_reconcile` re-applies only the drifted fields, as a :class:`._act.plans.Plan` like every other action.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.plans import (
    Change,
    Plan,
    changing,
    count,
    unchanged,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.objects import meta

# Lists of objects are matched item by item on the first key every declared item has; other lists as a whole.
_MERGE_KEYS = ("name", "containerPort", "port", "mountPath", "devicePath", "ip")
_SKIPPED_TOP = ("apiVersion", "kind", "status")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def object_label(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{meta(obj).get('name')}"


def _format_path(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += ("." if out else "") + part
        else:
            out += f'["{part}"]'
    return out


def _same(declared: Any, live: Any) -> bool:
    if isinstance(declared, bool) or isinstance(live, bool):
        return declared is live
    if isinstance(declared, (int, float)) and isinstance(live, str):
        return str(declared) == live  # quantities: declared cpu: 1, served "1"
    return bool(declared == live)


def _subset(declared: Any, live: Any) -> bool:
    """Whether every field the declared value sets has the same value live (live may have more)."""
    if isinstance(declared, dict):
        return isinstance(live, dict) and all(_subset(v, live.get(k)) for k, v in declared.items())
    if isinstance(declared, list):
        return (
            isinstance(live, list)
            and len(declared) == len(live)
            and all(_subset(d, lv) for d, lv in zip(declared, live, strict=False))
        )
    return _same(declared, live)


def _merge_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _MERGE_KEYS:
        values = [i.get(key) for i in items]
        if all(v is not None for v in values) and len(set(map(str, values))) == len(values):
            return key
    return None


def _walk(declared: Any, live: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], Any, Any, str]]:
    """(live path, declared, live, how to fix: set | remove | append) for each drifted field."""
    if isinstance(declared, dict) and live is None:
        live = {}  # report the leaves that are missing, not the whole missing mapping
    if isinstance(declared, dict) and isinstance(live, dict):
        found = []
        for key, value in declared.items():
            if value is None:
                if live.get(key) is not None:
                    found.append((path + (key,), None, live[key], "remove"))
                continue
            found += _walk(value, live.get(key), path + (key,))
        return found
    if isinstance(declared, list) and isinstance(live, list):
        key = _merge_key(declared)
        if key is not None and all(isinstance(i, dict) for i in live):
            found = []
            for item in declared:
                index = next((n for n, li in enumerate(live) if str(li.get(key)) == str(item[key])), None)
                if index is None:
                    found.append((path + (len(live),), item, None, "append"))
                else:
                    found += _walk(item, live[index], path + (index,))
            return found
        return [] if _subset(declared, live) else [(path, declared, live, "set")]
    if live is None or not _same(declared, live):
        return [(path, declared, live, "set")]
    return []


def _drift(declared: dict[str, Any], live: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any, Any, str]]:
    found = []
    for key, value in declared.items():
        if key in _SKIPPED_TOP:
            continue
        if key == "metadata":
            for sub in ("labels", "annotations"):
                if sub in (value or {}):
                    found += _walk({sub: value[sub]}, {sub: meta(live).get(sub)}, ("metadata",))
            continue
        found += _walk({key: value}, {key: live.get(key)}, ())
    return found


def compute_drift(declared: dict[str, Any], live: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The fields of a declared manifest whose live value differs.

    Only fields the declared manifest sets are compared (the server's defaults and status are not drift); of
    ``metadata`` only labels and annotations. Lists of named items (containers, ports, env, volumes ...) are
    matched by name, other lists compared as a whole. Each difference reads
    ``{object: "Service/checkout", field: "spec.ports[0].targetPort", declared: 8080, live: 9090}``, the index
    being the item's position in the live list. A missing object is one entry with ``field: "(object)"``.
    """
    label = object_label(declared)
    if live is None:
        return [{"object": label, "field": "(object)", "declared": "present", "live": "absent"}]
    return [
        {"object": label, "field": _format_path(path), "declared": want, "live": have}
        for path, want, have, _how in _drift(declared, live)
    ]


def _apply_fix(obj: dict[str, Any], path: tuple[Any, ...], value: Any, how: str) -> None:
    parent: Any = obj
    for part in path[:-1]:
        if isinstance(part, int):
            parent = parent[part]
        else:
            if not isinstance(parent.get(part), (dict, list)):
                parent[part] = {}
            parent = parent[part]
    last = path[-1]
    if how == "remove":
        parent.pop(last, None)
    elif how == "append":
        parent.append(copy.deepcopy(value))
    else:
        parent[last] = copy.deepcopy(value)


def plan_reconcile(pairs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> Plan:
    """Re-apply only the drifted fields of each declared object (create the ones that are missing)."""
    changes: list[Change] = []
    drift: list[dict[str, Any]] = []
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for declared, live in pairs:
        label = object_label(declared)
        m = meta(declared)
        records = compute_drift(declared, live)
        if not records:
            continue
        drift += records
        where = f"{m['namespace']}/{m['name']}" if m.get("namespace") else m["name"]
        what = f"reconcile {declared.get('kind')} {where}"
        if live is None:
            body = copy.deepcopy(declared)
            body.pop("status", None)
            changes.append(
                Change(
                    "create", declared["apiVersion"], declared["kind"], m.get("namespace"), m["name"], body, what=what
                )
            )
        else:
            body = copy.deepcopy(live)
            body.pop("status", None)
            for path, want, _have, how in _drift(declared, live):
                _apply_fix(body, path, want, how)
            changes.append(
                Change(
                    "replace", declared["apiVersion"], declared["kind"], m.get("namespace"), m["name"], body, what=what
                )
            )
        before[label] = {r["field"]: r["live"] for r in records}
        after[label] = {r["field"]: r["declared"] for r in records}
    result = {"drift": drift, "objects": len(pairs)}
    if not changes:
        return unchanged(f"no drift in {count(len(pairs), 'declared object')}", {}, **result)
    fields = "; ".join(f"{r['object']} {r['field']}: {r['live']!r} -> {r['declared']!r}" for r in drift)
    text = f"{count(len(drift), 'drifted field')} in {count(len(changes), 'object')}: {fields}"
    return changing(changes, "reconciled " + text, "reconcile " + text, before, after, **result)
