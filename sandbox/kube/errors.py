"""API errors rendered as Kubernetes ``Status`` objects, worded the way kube-apiserver words them."""

from __future__ import annotations

from typing import Any

import attrs
import kmock

from sandbox.kube.resources import Kind


@attrs.frozen
class ApiError(kmock.KubernetesError):
    """A failure with its HTTP code, Status ``reason`` and ``details``; kmock renders it as the response."""

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message or "",
            "reason": self.reason or "",
            "code": self.status,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(kind: Kind, name: str) -> dict[str, str]:
    details = {"name": name, "kind": kind.plural}
    if kind.group:
        details["group"] = kind.group
    return details


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', _details(kind, name))


def namespace_not_found(name: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})


def already_exists(kind: Kind, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{kind.qualified} "{name}" already exists', _details(kind, name))


def conflict(kind: Kind, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, _details(kind, name))


def invalid(kind: Kind, name: str, field: str, detail: str, cause: str = "FieldValueInvalid") -> ApiError:
    qualified_kind = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    message = f'{qualified_kind} "{name}" is invalid: {field}: {detail}'
    details = {
        "name": name,
        "kind": kind.kind,
        "causes": [{"reason": cause, "message": detail, "field": field}],
    }
    if kind.group:
        details["group"] = kind.group
    return ApiError(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def too_many_requests(message: str, causes: list[dict[str, str]]) -> ApiError:
    return ApiError(429, "TooManyRequests", message, {"causes": causes})


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format: "{content_type}"')


def resource_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def forbidden(group: str, resource: str, name: str, message: str) -> ApiError:
    details = {"kind": resource} if resource else {}
    if group:
        details["group"] = group
    if name:
        details["name"] = name
    return ApiError(403, "Forbidden", message, details or None)
