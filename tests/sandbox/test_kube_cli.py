"""``python -m sandbox.kube`` as the launcher runs it: a separate process, seeded, stopped by SIGTERM."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import kubernetes
import pytest

ROOT = Path(__file__).resolve().parents[2]

SEED = textwrap.dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: cart, namespace: shop}
    spec:
      replicas: 2
      selector: {matchLabels: {app: cart}}
      template:
        metadata: {labels: {app: cart}}
        spec: {containers: [{name: cart, image: "shop/cart:1.0"}]}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: shop}
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: worker-1}
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: worker-2}
    """
)


def launch(tmp_path: Path, seed: str) -> tuple[subprocess.Popen[str], Path]:
    (tmp_path / "seed.yml").write_text(seed)
    kubeconfig = tmp_path / "kube" / "config"
    command = [sys.executable, "-m", "sandbox.kube", "--port", "0", "--kubeconfig", str(kubeconfig)]
    command += ["--seed", str(tmp_path / "seed.yml"), "--ready-delay", "0.05"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, kubeconfig


def first_line(process: subprocess.Popen[str], timeout: float = 15.0) -> str:
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    assert readable, "the sandbox printed nothing"
    return process.stdout.readline().strip()


def test_cli_prints_its_url_serves_the_seed_and_stops_on_sigterm(tmp_path, kube_wait):
    process, kubeconfig = launch(tmp_path, SEED)
    try:
        line = first_line(process)
        assert re.fullmatch(r"kube-sandbox listening on http://127\.0\.0\.1:\d+", line)
        kube_api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        assert kube_api.configuration.host == line.rsplit(" ", 1)[1]
        kube_core, kube_apps = kubernetes.client.CoreV1Api(kube_api), kubernetes.client.AppsV1Api(kube_api)
        assert sorted(node.metadata.name for node in kube_core.list_node().items) == ["worker-1", "worker-2"]
        kube_wait(
            lambda: kube_apps.read_namespaced_deployment("cart", "shop").status.ready_replicas == 2, what="seeded pods"
        )
        kube_api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
    assert code == 0


def test_cli_fails_cleanly_on_a_bad_seed(tmp_path):
    bad = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: missing}\n"
    process, _ = launch(tmp_path, bad)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 1
    assert 'namespaces "missing" not found' in stderr


def test_a_run_directory_used_before_gets_the_new_address(tmp_path: Path) -> None:
    from sandbox import cli

    log = tmp_path / "logs" / "kube.log"
    log.parent.mkdir()
    log.write_text("kube-sandbox listening on http://127.0.0.1:9\n")  # what the previous run left
    proc, url, kubeconfig, restricted = cli._start_kube(tmp_path)
    try:
        assert url != "http://127.0.0.1:9"
        api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        assert kubernetes.client.CoreV1Api(api).list_node().items
        api.close()
        # the second kubeconfig is the loop's ServiceAccount, granted what the shipped rbac.yml grants
        api = kubernetes.config.new_client_from_config(config_file=str(restricted))
        core = kubernetes.client.CoreV1Api(api)
        assert core.list_node().items
        assert core.list_namespaced_pod("shop").items is not None
        with pytest.raises(kubernetes.client.exceptions.ApiException) as denied:
            core.list_namespaced_secret("shop")
        assert denied.value.status == 403
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
