"""Turning an HTTP request into kmock's ``Request`` with the Kubernetes parts filled in.

kmock's own path parser reads ``/api/v1/namespaces/X`` as "the scope of namespace X", so the Namespace
objects themselves (``GET /api/v1/namespaces``, ``/api/v1/namespaces/X``) cannot be addressed through it;
this parser knows the difference and otherwise produces the same fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import kmock
import yaml

from sandbox.kube import errors

_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class Route:
    group: str | None = None
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_path(path: str) -> Route:
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"]:
        group, rest = "", parts[1:]
    elif parts[:1] == ["apis"] and len(parts) >= 2:
        group, rest = parts[1], parts[2:]
    else:
        return Route()
    if not rest:
        return Route(group=group)
    version, rest = rest[0], rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    return Route(
        group=group,
        version=version,
        plural=rest[0] if rest else None,
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        subresource="/".join(rest[2:]) or None,
    )


def guess_action(route: Route, method: str, params: dict[str, str]) -> kmock.action | None:
    if route.group is None or route.plural is None:
        return None
    if method == "GET" and params.get("watch", "").lower() in ("true", "1"):
        return kmock.action.WATCH
    if route.name is None:
        return {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}.get(method)
    return {"GET": kmock.action.FETCH, "PATCH": kmock.action.UPDATE, "DELETE": kmock.action.DELETE}.get(method)


def _decode(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    try:
        if "yaml" in content_type:
            return yaml.safe_load(body)
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from exc


async def parse_request(raw: aiohttp.web.BaseRequest, *, id: int) -> kmock.Request:
    body = await raw.read()
    route = parse_path(raw.path)
    params = dict(raw.query)
    resource = None
    if route.group is not None:
        resource = kmock.resource(group=route.group, version=route.version, plural=route.plural)
    return kmock.Request(
        id=id,
        raw_request=raw,
        method=raw.method,
        url=raw.url,
        params=params,
        headers=dict(raw.headers),
        cookies=dict(raw.cookies),
        body=body,
        text=body.decode("utf-8", "replace"),
        data=_decode(body, raw.content_type),
        action=guess_action(route, raw.method, params),
        resource=resource,
        namespace=route.namespace,
        name=route.name,
        subresource=route.subresource,
    )
