"""The roles' molecule scenarios (extensions/molecule/), run by molecule itself against the sandbox.

Each scenario converges its role on localhost, converges again to prove idempotence (except escalate, whose every
run notifies by design) and verifies the cluster through the collection's own modules. This test prepares what each
scenario starts from - a namespace ``molecule-<scenario>`` with a Deployment ``web`` - and runs every scenario in
one ``molecule test --all``, with the sandbox's kubeconfig, Prometheus and webhook in the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox import client
from tests.integration.helpers import (
    Kube,
    create_deployment,
    create_namespace,
    kube_client,
    rolled_out,
    wait_until,
)

pytestmark = pytest.mark.sandbox
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "extensions/molecule").glob("*/molecule.yml"))
IMAGE = "molecule/web:1.0"
NODE = "node-c"  # the node the reroute scenario drains (and its cleanup uncordons)


def namespace(scenario: str) -> str:
    return "molecule-" + scenario.replace("_", "-")


def prepare(kube: Kube, sandbox: dict[str, Any]) -> None:
    """What each scenario starts from; the checks here make sure its converge has something to change."""
    for scenario in SCENARIOS:
        create_namespace(kube, namespace(scenario))
    for scenario in ("restart", "scale", "patch", "isolate_tenant", "reconcile", "verify"):
        create_deployment(kube, namespace(scenario), "web", replicas=2, image=IMAGE)

    ns = namespace("rollback")  # a second revision to roll back from
    create_deployment(kube, ns, "web", replicas=2, image=IMAGE)
    new_image = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "molecule/web:1.1"}]}}}}
    kube.apps.patch_namespaced_deployment("web", ns, new_image)
    wait_until(lambda: rolled_out(kube, ns, "web"), what="the rollback scenario's second revision")

    ns = namespace("reroute")  # one pod per node, so that one has to move
    create_deployment(kube, ns, "web", replicas=3, image=IMAGE)
    assert NODE in {pod["spec"].get("nodeName") for pod in kube.pods(ns, "web")}

    ns = namespace("reconcile")  # a Service whose targetPort drifted from the scenario's manifest
    kube.core.create_namespaced_service(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 9090}]},
        },
    )

    # The verify scenario judges a full rate window of metrics (its intent's window is 10s).
    rate = f"sum(rate(http_requests_total{{namespace='{namespace('verify')}',code='200'}}[10s]))"
    wait_until(lambda: (client.scalar(sandbox, rate) or 0) > 90, timeout=60, what="the verify scenario's metrics")


def test_every_role_converges_idempotently_and_verifies(sandbox: dict[str, Any], tmp_path: Path) -> None:
    assert len(SCENARIOS) == 9, SCENARIOS
    kube = kube_client(sandbox)
    prepare(kube, sandbox)
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(ROOT / ".collections"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        NO_COLOR="1",
        K8S_AUTH_KUBECONFIG=sandbox["kubeconfig"],
        SELFHEAL_WEBHOOK_URL=sandbox["webhook_url"],
        SELFHEAL_PROMETHEUS_URL=sandbox["prometheus_url"],
    )
    try:
        proc = subprocess.run(
            [str(bin_dir / "molecule"), "test", "--all"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:  # the reroute scenario's cleanup uncordons the node; make sure of it even when molecule failed
        kube.core.patch_node(NODE, {"spec": {"unschedulable": False}})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    for scenario in SCENARIOS:  # every scenario ran to its verify step
        assert f"{scenario} > verify: Executed: Successful" in output, output[-8000:]
