"""An in-memory fake of the Kubernetes API's HTTP layer, for the adapter's and the runners' tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], tuple[int, Any]]


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.reason = {200: "OK", 201: "Created", 404: "Not Found", 409: "Conflict", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        self.data = b"" if body is None else json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}

    def read(self) -> bytes:
        return self.data


def status_body(code: int, message: str, reason: str = "") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeServer:
    """Routes (METHOD, path) to a list of answers, served in order (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.calls: list[dict[str, Any]] = []

    def on(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        self.routes[(method, path)] = list(answers)

    def request(self, method: str, url: str, headers: Any = None, body: Any = None, **_: Any) -> FakeResponse:
        path = url.split("://", 1)[1].split("/", 1)[1]
        call = {"method": method, "path": "/" + path, "headers": dict(headers or {}), "body": body}
        self.calls.append(call)
        answers = self.routes.get((method, call["path"]))
        if not answers:
            return FakeResponse(404, status_body(404, f"no route {method} {call['path']}", "NotFound"))
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return FakeResponse(*answer)


DEPLOY_PATH = "/apis/apps/v1/namespaces/shop/deployments/checkout"


def deployment(replicas: int = 4, ready: int = 4) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "3", "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            },
        },
        "status": {"observedGeneration": 2, "replicas": ready, "readyReplicas": ready},
    }


PARAMS = {"namespace": "shop", "name": "checkout"}
