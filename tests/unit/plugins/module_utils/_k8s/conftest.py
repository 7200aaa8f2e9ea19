"""Fixtures for the Kubernetes adapter's tests: a real ApiClient over the in-memory fake server."""

from __future__ import annotations

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s import client as _k8s
from ansible_collections.zerotouch.selfheal.tests.unit.plugins.module_utils._k8s.fake_api import FakeServer
from kubernetes import client as k8s_client


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def kube(server: FakeServer) -> _k8s.Kube:
    cfg = k8s_client.Configuration()
    cfg.host = "https://kube.example:6443"
    cfg.api_key = {"authorization": "sekret"}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    api = k8s_client.ApiClient(cfg)
    api.rest_client.request = server.request  # type: ignore[method-assign]
    return _k8s.Kube(api, sleep=lambda _s: None)
