"""The HTTP face of the stand-in and its lifecycle.

``SandboxEmulator`` is a kmock ``KubernetesEmulator``: kmock serves discovery, dispatches requests through its
reaction DSL (so tests can still inject kmock reactions ahead of the defaults), keeps the objects and feeds
the watch buses. Its default handlers are overridden to go through the ``Store``, which applies the API
server's rules. ``KubeSandbox`` owns the listener, the controllers and the in-process seeding helper."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp.web
import attrs
import kmock

# Not re-exported by kmock for type checkers: its response type, and the wrapper of a failure after a stream began.
from kmock._internal.rendering import Response, StreamingError

from sandbox.kube import disruption, errors, rbac, resources, routing, selectors, strategic, tables, views
from sandbox.kube.controllers import ControllerManager
from sandbox.kube.errors import ApiError
from sandbox.kube.kubeconfig import ADMIN, IDENTITIES
from sandbox.kube.kubelet import default_unpullable
from sandbox.kube.resources import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    KINDS,
    NAMESPACES,
    NODES,
    PODS,
    ROLE_BINDINGS,
    ROLES,
    Kind,
)
from sandbox.kube.store import Store

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WATCH_SECONDS = 1800.0  # the real server closes watches after 30-60 minutes
# Requests kept in kmock's log (it keeps all of them otherwise). kmock routes a request by finding it in that log,
# a scan of every kept request per route, so the log stays short; nothing here asserts on past requests, and a
# request is routed before the next one is remembered (no await between them).
LOG_LIMIT = 8
_CLOSE: Obj = {"type": "CLOSE"}  # put on every watch bus at shutdown so open watches end cleanly
# What every cluster grants every authenticated user (kube-apiserver's bootstrap policy): discovery and health.
BOOTSTRAP_POLICY: tuple[Obj, ...] = (
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:discovery", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [
            {
                "verbs": ["get"],
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            }
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:discovery", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:discovery"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}],
    },
)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(status=status, headers={"Content-Type": "application/json"}, payload=payload)


def _text(payload: str) -> Response:
    return Response(status=200, headers={"Content-Type": "text/plain"}, payload=payload.encode())


def _as_api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, kmock.KubernetesNotFoundError | NotImplementedError):
        return errors.resource_not_found()  # kmock's own wording mentions kmock; a server would not
    log.error("request failed: %s", "".join(traceback.format_exception(exc)))
    return errors.internal(str(exc))


def _body(request: kmock.Request) -> Obj:
    if not isinstance(request.data, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return request.data


def _dry_run(request: kmock.Request) -> bool:
    return "All" in request.params.get("dryRun", "")


def _content_type(request: kmock.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip()


def _selectors(params: Mapping[str, str]) -> tuple[selectors.LabelSelector, tuple[selectors.FieldRequirement, ...]]:
    try:
        return selectors.parse_labels(params.get("labelSelector", "")), selectors.parse_fields(
            params.get("fieldSelector", "")
        )
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from exc


def _is_put(request: kmock.Request) -> bool:
    return request.method == kmock.method.PUT and request.resource is not None


def _is_named_post(request: kmock.Request) -> bool:
    return request.method == kmock.method.POST and request.name is not None


def _is_collection_delete(request: kmock.Request) -> bool:
    return request.method == kmock.method.DELETE and request.name is None and request.resource is not None


@attrs.define(kw_only=True)
class SandboxEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with the API server's semantics in place of its plain dict storage."""

    store: Store = attrs.field(init=False)
    injected: set[str] = attrs.field(factory=set, init=False)  # pods whose status a client wrote
    _served: int = attrs.field(default=0, init=False)
    # Where each authorization of an RBAC-restricted identity is appended as a JSON line (the admin is not logged).
    audit_log: Path | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store = Store(self._objects, self._buses)
        for kind in KINDS:
            self.resources[kind.resource] = resources.kmock_info(kind)
        # kmock has no default route for these: they carry no list/fetch/create/update/delete action.
        self.fallback[_is_put] << self._serve_replace
        self.fallback[_is_named_post] << self._serve_action
        self.fallback[_is_collection_delete] << self._serve_delete_collection
        for probe in ("/healthz", "/livez", "/readyz"):
            self.fallback[f"get {probe}"] << b"ok"

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        try:
            self._served += 1
            request = await routing.parse_request(raw_request, id=self._served)
            self._remember(request)
            self._authorize(raw_request)
            return await self._handle(request)
        except StreamingError as exc:  # headers are out already: report in the stream, then end it
            response: aiohttp.web.StreamResponse = exc.args[0]
            await self._stream_error(exc.__cause__ or exc, response)
            await response.write_eof()
            return response
        except Exception as exc:
            return await self._render_error(exc)

    def _authorize(self, raw: aiohttp.web.BaseRequest) -> None:
        """Let the request through only if RBAC allows it (its user is the one its bearer token stands for)."""
        user = rbac.authenticate(raw.headers.get("Authorization"), IDENTITIES, ADMIN)
        if rbac.SUPERUSER_GROUP in user.groups:
            return
        attributes = rbac.request_attributes(user, raw.method, raw.path, dict(raw.query))
        decision = rbac.authorize(attributes, self.policy())
        if self.audit_log is not None:
            self._audit(attributes, decision.allowed)
        if not decision.allowed:
            message = rbac.forbidden_message(attributes, decision.reason)
            raise errors.forbidden(attributes.api_group, attributes.resource, attributes.name, message)

    def _audit(self, a: rbac.Attributes, allowed: bool) -> None:
        assert self.audit_log is not None
        entry = {"user": a.user.name, "verb": a.verb, "allowed": allowed}
        if a.resource_request:
            entry.update(apiGroup=a.api_group, resource=a.combined_resource, namespace=a.namespace, name=a.name)
        else:
            entry["path"] = a.path
        with self.audit_log.open("a", encoding="utf-8") as log_file:
            log_file.write(json.dumps(entry) + "\n")

    def policy(self) -> rbac.Policy:
        """The RBAC objects as they are now (live: read, never changed)."""
        scan = self.store.scan
        return rbac.Policy(scan(ROLES), scan(CLUSTER_ROLES), scan(ROLE_BINDINGS), scan(CLUSTER_ROLE_BINDINGS))

    def _remember(self, request: kmock.Request) -> None:
        self._requests.append(request)
        del self._requests[:-LOG_LIMIT]
        for payload in self._payloads:
            del payload._requests[:-LOG_LIMIT]

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # kmock's emulator writes objects itself before routing, with plain dict-merge semantics; here all
        # writes go through the store, so routing starts at kmock's plain handler.
        return await kmock.RawHandler._handle(self, request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        error = _as_api_error(exc)
        return aiohttp.web.json_response(error.body(), status=error.status)

    async def _stream_error(self, exc: BaseException, raw_response: aiohttp.web.StreamResponse) -> None:
        line = json.dumps({"type": "ERROR", "object": _as_api_error(exc).body()})
        await raw_response.write(line.encode() + b"\n")

    async def close_watches(self) -> None:
        for bus in list(self._buses.values()):
            await bus.put(_CLOSE)

    # Routing helpers

    def _kind(self, request: kmock.Request) -> Kind:
        found = request.resource
        kind = resources.by_path(found.group or "", found.version or "", found.plural or "") if found else None
        if kind is None or (request.namespace and not kind.namespaced):
            raise errors.resource_not_found()
        return kind

    def _named(self, request: kmock.Request, verb: str) -> tuple[Kind, str | None, str]:
        kind = self._kind(request)
        if request.name is None or (kind.namespaced and not request.namespace):
            raise errors.resource_not_found()
        if request.subresource:
            sub = kind.subresource(request.subresource)
            if sub is None:
                raise errors.resource_not_found()
            if verb not in sub.verbs:
                raise errors.method_not_allowed()
        return kind, request.namespace, request.name

    # Reads

    async def _serve_list(self, request: kmock.Request) -> Response:
        kind = self._kind(request)
        labels, fields = _selectors(request.params)
        page, more = views.paginate(self.store.list(kind, request.namespace, labels, fields), request.params)
        metadata = {"resourceVersion": self.store.revision, **more}
        if tables.wants_table(request.headers.get("Accept", "")):
            return _json(tables.table(kind, page, metadata, request.params.get("includeObject") == "Object"))
        return _json({"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": metadata, "items": page})

    async def _serve_fetch(self, request: kmock.Request) -> Response:
        kind, namespace, name = self._named(request, "get")
        obj = self.store.get(kind, namespace, name)
        if request.subresource == "scale":
            return _json(views.scale_of(obj))
        if request.subresource == "log":
            return _text(views.pod_log(obj, request.params.get("container")))
        if tables.wants_table(request.headers.get("Accept", "")) and request.subresource is None:
            include = request.params.get("includeObject") == "Object"
            return _json(tables.table(kind, [obj], {"resourceVersion": self.store.revision}, include))
        return _json(obj)

    async def _serve_watch(self, request: kmock.Request) -> Response:  # type: ignore[override]
        kind = self._kind(request)
        labels, fields = _selectors(request.params)
        if request.name:
            fields += (selectors.FieldRequirement(("metadata", "name"), request.name, False),)
        try:
            timeout = float(request.params.get("timeoutSeconds") or WATCH_SECONDS)
            since = int(request.params.get("resourceVersion") or 0)
        except ValueError as exc:
            raise errors.bad_request(f"invalid timeoutSeconds or resourceVersion: {exc}") from exc
        return _json(self._watch(kind, request.namespace, labels, fields, since, timeout))

    async def _watch(
        self,
        kind: Kind,
        namespace: str | None,
        labels: selectors.LabelSelector,
        fields: tuple[selectors.FieldRequirement, ...],
        since: int,
        timeout: float,
    ) -> AsyncIterator[Any]:
        bus = self._buses[kind.resource]
        mark = await bus.mark()  # before the snapshot, so nothing written after it is missed
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            yield b""  # send the headers now: the client sees the watch open even if nothing happens
            snapshot = int(self.store.revision)
            for obj in self.store.list(kind, namespace, labels, fields):
                if int(obj["metadata"]["resourceVersion"]) > since:
                    yield {"type": "MODIFIED" if since else "ADDED", "object": obj}
            stream = aiter(bus.stream(since=mark))
            while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    async with asyncio.timeout(remaining):
                        event = await anext(stream)
                except TimeoutError:
                    return
                if event is _CLOSE:
                    return
                obj = event["object"]
                if int(obj["metadata"]["resourceVersion"]) > snapshot and views.visible(obj, namespace, labels, fields):
                    yield event
        finally:
            await bus.unmark(mark)

    # Writes

    async def _serve_create(self, request: kmock.Request) -> Response:
        kind = self._kind(request)
        if kind.namespaced and not request.namespace:
            raise errors.method_not_allowed()
        obj = await self.store.create(kind, request.namespace, _body(request), dry_run=_dry_run(request))
        return _json(obj, 201)

    async def _serve_update(self, request: kmock.Request) -> Response:
        kind, namespace, name = self._named(request, "patch")
        content_type = _content_type(request)
        if content_type not in strategic.PATCH_TYPES:
            raise errors.unsupported_media_type(content_type)
        if request.subresource == "scale":
            return _json(await self._patch_scale(kind, request, content_type))
        if content_type == strategic.APPLY_PATCH and request.subresource is None:
            return await self._apply_patch(kind, request)
        obj = await self.store.patch(
            kind,
            namespace,
            name,
            request.data,
            content_type,
            subresource=request.subresource,
            dry_run=_dry_run(request),
        )
        self._note_status_write(kind, request.subresource, obj, _dry_run(request))
        return _json(obj)

    async def _apply_patch(self, kind: Kind, request: kmock.Request) -> Response:
        """Server-side apply, approximated: create if missing, otherwise a strategic merge of the intent."""
        if self.store.find(kind, request.namespace, request.name or "") is None:
            return _json(
                await self.store.create(kind, request.namespace, _body(request), dry_run=_dry_run(request)), 201
            )
        obj = await self.store.patch(
            kind,
            request.namespace,
            request.name or "",
            _body(request),
            strategic.STRATEGIC_MERGE_PATCH,
            dry_run=_dry_run(request),
        )
        return _json(obj)

    async def _serve_replace(self, request: kmock.Request) -> Response:
        if request.name is None:
            raise errors.method_not_allowed()
        kind, namespace, name = self._named(request, "update")
        if request.subresource == "scale":
            obj = self.store.get(kind, namespace, name)
            return _json(await self._write_scale(kind, obj, _body(request), _dry_run(request)))
        obj = await self.store.replace(
            kind, namespace, name, _body(request), subresource=request.subresource, dry_run=_dry_run(request)
        )
        self._note_status_write(kind, request.subresource, obj, _dry_run(request))
        return _json(obj)

    async def _serve_delete(self, request: kmock.Request) -> Response:
        kind, namespace, name = self._named(request, "delete")
        options = request.data if isinstance(request.data, dict) else {}
        policy = options.get("propagationPolicy") or request.params.get("propagationPolicy")
        obj = await self.store.delete(
            kind,
            namespace,
            name,
            preconditions=options.get("preconditions"),
            orphan=policy == "Orphan" or options.get("orphanDependents") is True,
            dry_run=_dry_run(request),
        )
        if kind is PODS or obj["metadata"].get("deletionTimestamp"):
            return _json(obj)
        return _json(views.success(kind, obj))

    async def _serve_delete_collection(self, request: kmock.Request) -> Response:
        kind = self._kind(request)
        labels, fields = _selectors(request.params)
        deleted = []
        for obj in self.store.list(kind, request.namespace, labels, fields):
            meta = obj["metadata"]
            deleted.append(
                await self.store.delete(kind, meta.get("namespace"), meta["name"], dry_run=_dry_run(request))
            )
        metadata = {"resourceVersion": self.store.revision}
        return _json(
            {"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": metadata, "items": deleted}
        )

    async def _serve_action(self, request: kmock.Request) -> Response:
        kind, namespace, name = self._named(request, "create")
        if kind is not PODS or request.subresource != "eviction":
            raise errors.method_not_allowed()
        body = _body(request)
        if (body.get("metadata") or {}).get("name", name) != name:
            raise errors.bad_request(f"name in URL does not match name in Eviction object: {body['metadata']['name']}")
        pod = self.store.get(PODS, namespace, name)
        disruption.check_eviction(self.store, pod)
        options = body.get("deleteOptions") or {}
        dry_run = _dry_run(request) or "All" in (options.get("dryRun") or [])
        await self.store.delete(PODS, namespace, name, preconditions=options.get("preconditions"), dry_run=dry_run)
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    async def _patch_scale(self, kind: Kind, request: kmock.Request, content_type: str) -> Obj:
        obj = self.store.get(kind, request.namespace, request.name or "")
        try:
            scale = strategic.apply_patch("Scale", views.scale_of(obj), request.data, content_type)
        except strategic.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from exc
        return await self._write_scale(kind, obj, scale, _dry_run(request))

    async def _write_scale(self, kind: Kind, obj: Obj, scale: Obj, dry_run: bool) -> Obj:
        name = obj["metadata"]["name"]
        expected = (scale.get("metadata") or {}).get("resourceVersion")
        if expected and expected != obj["metadata"]["resourceVersion"]:
            raise errors.conflict(kind, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(kind, name, "spec.replicas", f"Invalid value: {replicas!r}: must be >= 0")
        patch = {"spec": {"replicas": replicas}}
        namespace = obj["metadata"].get("namespace")
        updated = await self.store.patch(kind, namespace, name, patch, strategic.MERGE_PATCH, dry_run=dry_run)
        return views.scale_of(updated)

    def _note_status_write(self, kind: Kind, subresource: str | None, obj: Obj, dry_run: bool) -> None:
        """A client writing pod status acts as the kubelet; the simulated kubelet then leaves that pod alone."""
        if kind is PODS and subresource == "status" and not dry_run:
            self.injected.add(obj["metadata"]["uid"])

    async def _serve_server_version(self, request: kmock.Request) -> Response:
        return _json(views.SERVER_VERSION)

    async def _serve_version(self, request: kmock.Request) -> Response:
        # kmock lists subresources with the parent's kind and verbs; clients need e.g. deployments/scale → Scale.
        assert request.resource is not None
        group, version = request.resource.group or "", request.resource.version or ""
        entries = resources.discovery_entries(group, version)
        if not entries:
            raise errors.resource_not_found()
        group_version = f"{group}/{version}" if group else version
        return _json(
            {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}
        )


class KubeSandbox:
    """A stateful Kubernetes API stand-in on a local port, with the controllers that make workloads move.

    Besides HTTP, ``apply()`` seeds objects in-process. ``emulator`` is the kmock handler, for tests that
    want to inject kmock reactions (e.g. ``sandbox.emulator['get /version'] << 500``)."""

    def __init__(
        self,
        *,
        ready_delay: float = 0.3,
        unpullable: Callable[[str], bool] | None = None,
        audit_log: Path | None = None,
    ) -> None:
        self.emulator = SandboxEmulator()
        self.emulator.audit_log = audit_log
        self.store = self.emulator.store
        self.controllers = ControllerManager(
            self.store,
            ready_delay=ready_delay,
            unpullable=unpullable or default_unpullable,
            injected=self.emulator.injected,
        )
        self._runner: aiohttp.web.ServerRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the kube sandbox is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 picks a free port); the default namespaces exist before the first request."""
        await self.emulator.__aenter__()
        for name in DEFAULT_NAMESPACES:
            if self.store.find(NAMESPACES, None, name) is None:
                await self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        for manifest in BOOTSTRAP_POLICY:
            await self.apply(manifest)
        self.controllers.start()
        # kmock.Server is a test fixture (it patches aiohttp's resolver process-wide); a plain listener suffices.
        self._runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self.emulator), shutdown_timeout=2.0)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, host, port).start()
        self._host, self._port = host, self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self.emulator.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.controllers.stop()
        if self.emulator.active:
            await self.emulator.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def apply(self, manifest: Mapping[str, Any]) -> Obj:
        """Create the object, or strategic-merge it onto the existing one (a Node's ``status`` included).

        Raises ``ApiError`` as the API would (e.g. 404 when the namespace does not exist)."""
        kind = resources.by_kind(str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))
        if kind is None:
            raise ValueError(f"unsupported object: {manifest.get('apiVersion')}/{manifest.get('kind')}")
        metadata = manifest.get("metadata") or {}
        namespace = (metadata.get("namespace") or "default") if kind.namespaced else None
        name = str(metadata.get("name", ""))
        if self.store.find(kind, namespace, name) is None:
            return await self.store.create(kind, namespace, dict(manifest))
        intent = {key: value for key, value in manifest.items() if key != "status"}
        obj = await self.store.patch(kind, namespace, name, intent, strategic.STRATEGIC_MERGE_PATCH)
        if kind is NODES and "status" in manifest:
            status = {"status": manifest["status"]}
            obj = await self.store.patch(
                kind, None, name, status, strategic.STRATEGIC_MERGE_PATCH, subresource="status"
            )
        return obj
