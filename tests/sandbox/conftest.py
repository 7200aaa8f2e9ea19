"""Fixtures for the Kubernetes stand-in: a fresh sandbox per test, hosted on a background event loop so the
blocking ``kubernetes`` client can call it over real HTTP from the test thread."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
import pytest

from sandbox.kube import KubeSandbox, write_kubeconfig
from sandbox.wait import wait_until

T = TypeVar("T")
NODE_NAMES = ("node-a", "node-b", "node-c")


@dataclass
class RunningKube:
    sandbox: KubeSandbox
    loop: asyncio.AbstractEventLoop
    kubeconfig: Path

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return self.run(self.sandbox.apply(manifest))


@pytest.fixture(scope="session")
def kube_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kube-sandbox-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


@pytest.fixture
def kube(kube_loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[RunningKube]:
    sandbox = KubeSandbox(ready_delay=0.05)
    running = RunningKube(sandbox, kube_loop, tmp_path / "kubeconfig")
    running.run(sandbox.start())
    for name in NODE_NAMES:
        running.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    write_kubeconfig(running.kubeconfig, sandbox.url)
    yield running
    running.run(sandbox.stop())


@pytest.fixture
def kube_api(kube: RunningKube) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))
    yield client
    client.close()


@pytest.fixture
def kube_core(kube_api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube_api)


@pytest.fixture
def kube_apps(kube_api: kubernetes.client.ApiClient) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(kube_api)


@pytest.fixture
def kube_wait() -> Callable[..., Any]:
    # The stand-in answers in milliseconds: poll often, give up soon.
    return functools.partial(wait_until, timeout=5.0, interval=0.02)


@pytest.fixture
def make_deployment() -> Callable[..., dict[str, Any]]:
    return deployment_manifest


def deployment_manifest(name: str = "web", replicas: int = 2, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "tier": "frontend"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "env": [{"name": "MODE", "value": "prod"}],
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                },
            },
            **spec,
        },
    }
