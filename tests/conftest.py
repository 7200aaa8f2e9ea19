"""Fixtures shared by every test tier: the running sandbox, started once per test run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import client, procs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The whole sandbox (Kubernetes stand-in, simulator, Prometheus, Alertmanager, webhook recorder).

    It runs as a child supervisor that dies with the test process, so an interrupted run leaves nothing behind.
    """
    run_dir = tmp_path_factory.mktemp("sandbox")
    log = run_dir / "supervisor.log"
    proc = procs.spawn([sys.executable, "-m", "sandbox", "up", "--run-dir", str(run_dir)], log, cwd=ROOT)
    deadline = time.monotonic() + 90
    state: dict[str, Any] = {}
    while time.monotonic() < deadline and not state:
        if proc.poll() is not None:
            pytest.fail(f"the sandbox did not start:\n{log.read_text(errors='replace')[-3000:]}")
        state = client.load_state(run_dir, missing_ok=True)
        time.sleep(0.1)
    if not state:
        proc.kill()
        pytest.fail(f"the sandbox did not start within 90s:\n{log.read_text(errors='replace')[-3000:]}")
    os.environ["K8S_AUTH_KUBECONFIG"] = state["kubeconfig"]
    try:
        yield state
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def faults(sandbox: dict[str, Any]) -> Iterator[Any]:
    """Inject faults through this fixture: every fault a test injected is cleared when it ends."""
    injected: list[str] = []

    def inject(kind: str, **fields: Any) -> dict[str, Any]:
        fault = client.inject(sandbox, kind, **fields)
        injected.append(fault["id"])
        return fault

    yield inject
    active = {f["id"] for f in client.faults(sandbox)}
    for fault_id in injected:
        if fault_id in active:
            client.clear(sandbox, fault_id)


@pytest.fixture(params=["admin", "restricted"])
def kube_identity(request: pytest.FixtureRequest, sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once as the sandbox's admin and once as the loop's ServiceAccount (zerotouch-selfheal, granted
    what docs/deploy/rbac.yml grants): K8S_AUTH_KUBECONFIG points at that identity's kubeconfig during the test.

    A test opts in by taking this fixture; the restricted identity may act only in namespaces bound to it, so the
    test binds the namespaces it uses with ``sandbox.cluster.grant_selfheal(kube, namespace)`` (as an operator
    does with the shipped RoleBinding)."""
    monkeypatch.setenv(
        "K8S_AUTH_KUBECONFIG", sandbox["kubeconfig" if request.param == "admin" else "kubeconfig_restricted"]
    )
    return str(request.param)
