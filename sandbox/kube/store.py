"""The object store: kmock's in-memory objects plus what a real API server adds on every write —
metadata (uid, resourceVersion, generation), preconditions, namespace checks, and watch events."""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import kmock
from kmock._internal.aiobus import Bus  # kmock's watch buses; not re-exported for type checkers

from sandbox.kube import errors, selectors, strategic, strategies
from sandbox.kube.meta import controller_uid
from sandbox.kube.resources import KINDS, NAMESPACES, Kind

Obj = dict[str, Any]
ChangeHook = Callable[[Kind, Obj, str], None]

HISTORY_LIMIT = 10  # versions kept per object; kmock keeps all, which grows without bound in a long run
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the API server uses for generateName suffixes

_SYSTEM_META = ("uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp")


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(length))


class Store:
    """Create/read/update/patch/delete with the API server's rules; all writes go through ``_commit``."""

    def __init__(self, objects: kmock.ObjectsArray, buses: Mapping[kmock.resource, Bus[Any]]) -> None:
        self._objects = objects
        self._buses = buses
        # The keys of each resource's objects: a scan of one kind must not walk every object of every kind.
        self._keys: dict[kmock.resource, dict[tuple[Any, ...], None]] = {kind.resource: {} for kind in KINDS}
        # The keys of the objects each controller owns (ownerReferences[].controller), kept on every write as the
        # real controllers' informers index them: a controller's pass reads its dependents without a scan.
        self._owned: dict[str, dict[tuple[Any, ...], None]] = {}
        self._owner_of: dict[tuple[Any, ...], str] = {}
        self._revision = 0
        self._hooks: list[ChangeHook] = []
        self.allocator = strategies.Allocator()

    @property
    def revision(self) -> str:
        return str(self._revision)

    def subscribe(self, hook: ChangeHook) -> None:
        self._hooks.append(hook)

    # Reads

    def peek(self, kind: Kind, namespace: str | None, name: str) -> Obj | None:
        """The live object, not a copy: for read-only checks that must stay cheap (it must not be changed)."""
        key = (kind.resource, namespace if kind.namespaced else None, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return self._objects[key].raw  # type: ignore[no-any-return]

    def find(self, kind: Kind, namespace: str | None, name: str) -> Obj | None:
        obj = self.peek(kind, namespace, name)
        return None if obj is None else copy.deepcopy(obj)

    def get(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        obj = self.find(kind, namespace, name)
        if obj is None:
            raise errors.not_found(kind, name)
        return obj

    def items(self, kind: Kind, namespace: str | None = None) -> Iterator[Obj]:
        """Live (not copied) objects of a kind, for read-only scans by controllers."""
        for key in list(self._keys[kind.resource]):  # a copy: the caller may write between two objects
            if namespace in (None, key[1]) and key in self._objects:
                obj = self._objects[key]
                if not obj.deleted:
                    yield obj.last.raw

    def dependents(self, kind: Kind, owner_uid: str | None) -> list[Obj]:
        """Live (not copied) objects of a kind whose managing owner has this uid, for controllers' read-only use."""
        found = []
        for key in self._owned.get(owner_uid or "", ()):
            if key[0] == kind.resource and key in self._objects and not self._objects[key].deleted:
                found.append(self._objects[key].last.raw)
        return found

    def scan(self, kind: Kind, namespace: str | None = None) -> list[Obj]:
        """Live objects of a kind in list order, for controllers' read-only passes: a write replaces an object
        instead of changing it, so what a pass holds stays whole while it writes (it must not change them)."""
        found = list(self.items(kind, namespace))
        found.sort(key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        return found

    def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        labels: selectors.LabelSelector = (),
        fields: tuple[selectors.FieldRequirement, ...] = (),
    ) -> list[Obj]:
        found = [
            obj
            for obj in self.scan(kind, namespace)
            if selectors.matches(labels, obj["metadata"].get("labels")) and all(field.matches(obj) for field in fields)
        ]
        return copy.deepcopy(found)

    # Writes

    async def create(self, kind: Kind, namespace: str | None, body: Obj, *, dry_run: bool = False) -> Obj:
        obj = strategies.normalize(body)
        meta = obj.setdefault("metadata", {})
        self._place(kind, namespace, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(kind, meta)
        name = meta.get("name") or ""
        if not name:
            raise errors.invalid(kind, name, "metadata.name", "name or generateName is required", "FieldValueRequired")
        if self.find(kind, meta.get("namespace"), name) is not None:
            raise errors.already_exists(kind, name)
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        for field in _SYSTEM_META:
            meta.pop(field, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=strategies.now(), generation=1)
        strategies.apply_defaults(kind, obj, self.allocator)
        strategies.validate(kind, obj)
        strategies.initial_status(kind, obj, self.allocator)
        if dry_run:
            return dict(obj)
        return await self._commit(kind, obj, "ADDED")

    async def replace(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        old = self.get(kind, namespace, name)
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        self._check_version(kind, old, meta.get("resourceVersion"))
        return await self._update(kind, old, copy.deepcopy(body), subresource, dry_run)

    async def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        old = self.get(kind, namespace, name)
        try:
            patched = strategic.apply_patch(kind.kind, old, patch, content_type)
        except strategic.PatchError as exc:
            raise errors.ApiError(422, "Invalid", str(exc)) from exc
        self._check_version(kind, old, (patched.get("metadata") or {}).get("resourceVersion"))
        return await self._update(kind, old, patched, subresource, dry_run)

    async def mutate(self, kind: Kind, namespace: str | None, name: str, change: Callable[[Obj], None]) -> Obj | None:
        """A controller's write: change the latest version in place, commit only if something changed."""
        old = self.peek(kind, namespace, name)
        if old is None:
            return None
        new = copy.deepcopy(old)
        change(new)
        new = strategies.normalize(new)
        if new == old:
            return new
        strategies.bump_generation(kind, old, new)
        return await self._commit(kind, new, "MODIFIED")

    async def mutate_status(
        self, kind: Kind, namespace: str | None, name: str, status_of: Callable[[Obj], Obj]
    ) -> Obj | None:
        """A controller's status write, the cheap form of :meth:`mutate` for a pass over many objects:
        ``status_of(obj)`` gives the status for the latest version (live: it must not change it), and the object
        is copied and committed only if that status differs from the one it has."""
        old = self.peek(kind, namespace, name)
        if old is None:
            return None
        status = strategies.normalize(status_of(old))
        if status == (old.get("status") or {}):  # what is stored is normalized already
            return old
        return await self._commit(kind, {**old, "status": status}, "MODIFIED")  # _commit normalizes: a new tree

    async def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        preconditions: Mapping[str, Any] | None = None,
        orphan: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        old = self.get(kind, namespace, name)
        preconditions = preconditions or {}
        if preconditions.get("uid") not in (None, old["metadata"]["uid"]):
            raise errors.conflict(kind, name)
        self._check_version(kind, old, preconditions.get("resourceVersion"))
        if dry_run:
            return old
        if old["metadata"].get("finalizers"):
            return await self._mark_deleted(kind, old)
        if orphan:
            await self._orphan_dependents(old["metadata"]["uid"])
        return await self._commit(kind, old, "DELETED")

    # Internals

    def _index_owner(self, key: tuple[Any, ...], owner: str | None) -> None:
        before = self._owner_of.pop(key, None)
        if before is not None and before != owner:
            keys = self._owned[before]
            keys.pop(key, None)
            if not keys:
                del self._owned[before]
        if owner is not None:
            self._owner_of[key] = owner
            self._owned.setdefault(owner, {})[key] = None

    def _place(self, kind: Kind, namespace: str | None, meta: Obj) -> None:
        """Settle the namespace of a new object: it must agree with the URL and must exist."""
        if not kind.namespaced:
            meta.pop("namespace", None)
            return
        if namespace and meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        target = namespace or meta.get("namespace") or "default"
        if self.find(NAMESPACES, None, target) is None:
            raise errors.namespace_not_found(target)
        meta["namespace"] = target

    def _generate_name(self, kind: Kind, meta: Obj) -> str:
        while True:
            name = f"{meta['generateName']}{random_suffix()}"
            if self.find(kind, meta.get("namespace"), name) is None:
                return name

    def _check_version(self, kind: Kind, current: Obj, expected: str | None) -> None:
        if expected and expected != current["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, current["metadata"]["name"])

    async def _update(self, kind: Kind, old: Obj, new: Obj, subresource: str | None, dry_run: bool) -> Obj:
        new = strategies.normalize(new)
        if subresource == "status":
            new = strategies.status_update(kind, old, new)
        else:
            new["apiVersion"], new["kind"] = kind.api_version, kind.kind
            meta = new.setdefault("metadata", {})
            for field in ("name", "namespace", *_SYSTEM_META):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
                else:
                    meta.pop(field, None)
            strategies.prepare_update(kind, old, new)
            strategies.apply_defaults(kind, new, self.allocator)
            strategies.validate(kind, new)
            strategies.validate_update(kind, old, new)
        if new == old or dry_run:
            return new  # a no-op write does not move resourceVersion, as on a real server
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return await self._commit(kind, new, "DELETED")
        return await self._commit(kind, new, "MODIFIED")

    async def _mark_deleted(self, kind: Kind, obj: Obj) -> Obj:
        if obj["metadata"].get("deletionTimestamp"):
            return obj
        obj["metadata"].update(deletionTimestamp=strategies.now(), deletionGracePeriodSeconds=0)
        return await self._commit(kind, obj, "MODIFIED")

    async def _orphan_dependents(self, owner_uid: str) -> None:
        def release(obj: Obj) -> None:
            refs = [ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("uid") != owner_uid]
            obj["metadata"]["ownerReferences"] = refs
            if not refs:
                del obj["metadata"]["ownerReferences"]

        for kind in KINDS:
            for dependent in self.scan(kind):
                if any(ref.get("uid") == owner_uid for ref in dependent["metadata"].get("ownerReferences") or []):
                    meta = dependent["metadata"]
                    await self.mutate(kind, meta.get("namespace"), meta["name"], release)

    async def _commit(self, kind: Kind, obj: Obj, event: str) -> Obj:
        self._revision += 1
        obj = strategies.normalize(obj)
        obj["metadata"]["resourceVersion"] = str(self._revision)
        key = (kind.resource, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if event == "DELETED":
            del self._objects[key]  # hard delete: kmock's soft delete keeps every dead pod's history forever
            self._keys[kind.resource].pop(key, None)
        elif key in self._objects and not self._objects[key].deleted:
            history = self._objects[key].history
            history.append(obj)
            del history[:-HISTORY_LIMIT]
        else:
            self._objects[key] = obj
            self._keys[kind.resource][key] = None
        self._index_owner(key, None if event == "DELETED" else controller_uid(obj))
        for hook in self._hooks:
            hook(kind, obj, event)
        await self._buses[kind.resource].put({"type": event, "object": copy.deepcopy(obj)})
        return copy.deepcopy(obj)
