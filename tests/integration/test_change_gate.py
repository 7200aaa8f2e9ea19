"""change_gate and the zerotouch.selfheal.gate playbook against the sandbox: the real Prometheus, the Kubernetes
stand-in, the remediation lock and the journal.

Each test owns a namespace and a Deployment, so faults, locks and journals of one test never bleed into another.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import client
from tests.integration.helpers import (
    _collections_path,
    assert_failed,
    create_deployment,
    create_namespace,
    kube_client,
    run_tasks,
    task,
    wait_until,
)

pytestmark = pytest.mark.sandbox
WINDOW = "15s"  # the sandbox scrapes every second; a short window keeps the tests fast
NAMESPACES = ("gt-healthy", "gt-rollout", "gt-remediate", "gt-playbook")


def intent(namespace: str) -> dict[str, Any]:
    return {
        "service": "web",
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": "web"},
        "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
        "recovery": {"min_replicas": 2, "max_replicas": 10},
        "indicators": {"window": WINDOW},
    }


@pytest.fixture(scope="module")
def workloads(sandbox: dict[str, Any]) -> dict[str, Any]:
    """A Deployment `web` per test namespace, serving, each with a full rate window of metrics in Prometheus."""
    kube = kube_client(sandbox)
    for namespace in NAMESPACES:
        create_namespace(kube, namespace)
        create_deployment(kube, namespace, "web", replicas=2, image="acme/web:2.0")
    series = f"http_requests_total{{namespace=~'gt-.*',service='web',code='200'}}[{WINDOW}]"
    count = f"count(sum by (namespace) (rate({series})) > 90)"
    wait_until(lambda: (client.scalar(sandbox, count) or 0) >= len(NAMESPACES), timeout=90, what="metrics")
    return sandbox


def options(sandbox: dict[str, Any], journal: Path, namespace: str, **extra: Any) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "service": "web",
        "intents": [intent(namespace)],
        "prometheus_url": sandbox["prometheus_url"],
        "journal": str(journal),
        "burn_window": WINDOW,
        **extra,
    }


def gates(journal: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(journal) as db:
        return db.execute("SELECT id, change, allowed, rule, requested_by, change_id FROM gates ORDER BY id").fetchall()


def test_a_healthy_service_is_allowed_and_every_answer_is_journaled(workloads: dict, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    opts = options(workloads, journal, "gt-healthy", requested_by="ci/checkout#88", change_id="9f1c2e7a")
    run = run_tasks(
        tmp_path,
        [
            task("change_gate", change="deploy", check_mode=True, **opts),
            task("change_gate", change="deploy", **opts),
            task("change_gate", change="config", **opts),
        ],
    )
    dry, deploy, config = run[0], run[1], run[2]
    for result in (dry, deploy, config):
        assert not result.get("failed"), result.get("msg")
        assert result["allowed"] is True and result["changed"] is False, result["reasons"]
        assert result["denied_by"] == [] and result["retry_after"] is None
    assert deploy["msg"] == "deploy of gt-healthy/web allowed"
    assert deploy["snapshot"]["observed"]["workload"]["ready_replicas"] == 2
    assert deploy["snapshot"]["gate"]["burn_error_rate"] is not None  # measured over the burn window
    assert deploy["snapshot"]["gate"]["lock"] is None
    assert dry["gate_id"] is None  # check mode journals nothing
    assert any("does not exist: no remediation history is known" in w for w in dry["gather_warnings"])
    assert config["gather_warnings"] == []  # the journal exists once an answer was journaled
    assert gates(journal) == [
        (deploy["gate_id"], "deploy", 1, "allow", "ci/checkout#88", "9f1c2e7a"),
        (config["gate_id"], "config", 1, "allow", "ci/checkout#88", "9f1c2e7a"),
    ]


def test_a_bad_rollout_denies_a_deploy_and_allows_a_rollback(workloads: dict, tmp_path: Path, faults: Any) -> None:
    sandbox = workloads
    faults("bad-rollout", namespace="gt-rollout", service="web")
    err = (
        f"100 * sum(rate(http_requests_total{{namespace='gt-rollout',code=~'5..'}}[{WINDOW}])) / "
        f"sum(rate(http_requests_total{{namespace='gt-rollout'}}[{WINDOW}]))"
    )
    # The bad release answers 8 % of requests with 5xx once it serves alone: 8 times the 1 % budget.
    wait_until(lambda: (client.scalar(sandbox, err) or 0) > 7, timeout=90, what="errors from the bad release")
    journal = tmp_path / "journal.db"
    opts = options(sandbox, journal, "gt-rollout")
    run = run_tasks(
        tmp_path, [task("change_gate", change="deploy", **opts), task("change_gate", change="rollback", **opts)]
    )
    deploy, rollback = run[0], run[1]
    assert deploy["allowed"] is False, deploy["reasons"]
    assert "impact" in deploy["denied_by"] and "fast-burn" in deploy["denied_by"], deploy["reasons"]
    assert any(r.startswith("impact: ") and "breaches max_error_rate 1%" in r for r in deploy["reasons"]), deploy[
        "reasons"
    ]
    assert deploy["retry_after"] is None  # a breach has no known end
    assert deploy["evidence"]["burn_rate"] > 6
    assert rollback["allowed"] is True, rollback["reasons"]
    assert [row[1:4] for row in gates(journal)] == [("deploy", 0, "impact"), ("rollback", 1, "allow")]


def test_a_remediation_in_progress_denies_until_it_is_verified(workloads: dict, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    holder = "selfheal-remediate/decision-1"
    lock = {"namespace": "gt-remediate", "name": "web", "holder": holder}
    started = run_tasks(
        tmp_path,
        [
            task("workload_lock", ttl_seconds=600, **lock),
            task(
                "journal_action",
                journal=str(journal),
                state="started",
                namespace="gt-remediate",
                service="web",
                action="restart",
            ),
            task("change_gate", change="deploy", **options(workloads, journal, "gt-remediate")),
        ],
    )
    assert started[0]["acquired"] is True and started[1]["outcome"] == "pending"
    during = started[2]
    assert during["allowed"] is False
    assert during["denied_by"] == ["remediation-locked", "remediation-pending"], during["reasons"]
    assert during["reasons"][0].startswith(f"remediation-locked: {holder} holds the remediation lock until ")
    assert during["reasons"][1].startswith("remediation-pending: restart started at ")

    ended = run_tasks(
        tmp_path,
        [
            task(
                "journal_action",
                journal=str(journal),
                state="finished",
                action_id=started[1]["action_id"],
                outcome="recovered",
            ),
            task("workload_lock", state="released", **lock),
            task("change_gate", change="deploy", **options(workloads, journal, "gt-remediate")),
        ],
    )
    assert ended[1]["changed"] is True
    assert ended[2]["allowed"] is True, ended[2]["reasons"]


def test_bad_input_gives_a_clear_error_and_no_answer(workloads: dict, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    run = run_tasks(
        tmp_path,
        [
            task("change_gate", change="deploy", **{**options(workloads, journal, "gt-healthy"), "service": "nope"}),
            task("change_gate", change="migrate", **options(workloads, journal, "gt-healthy")),
            task("change_gate", change="deploy", force=True, **options(workloads, journal, "gt-healthy")),
        ],
    )
    assert_failed(run[0], "options: service: no intent for service gt-healthy/nope: there is nothing to judge")
    assert_failed(run[1], "value of change must be one of: deploy, config, scale, patch, rollback, got: migrate")
    assert_failed(run[2], "force is True but all of the following are missing: reason")
    assert not journal.exists() or gates(journal) == []


def gate_playbook(tmp_path: Path, *extra_vars: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "zerotouch.selfheal.gate"]
    for var in extra_vars:
        argv += ["-e", var]
    run_env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=_collections_path(),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        **(env or {}),
    )
    return subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)


def test_the_playbook_exits_non_zero_on_deny_and_prints_the_reasons(workloads: dict, tmp_path: Path) -> None:
    sandbox = workloads
    intents = tmp_path / "intents.yml"
    intents.write_text(yaml.safe_dump([intent("gt-playbook")]))
    now = datetime.now(UTC)
    freeze = {
        "start": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reason": "year-end freeze",
    }
    policy = tmp_path / "policy.yml"
    policy.write_text(yaml.safe_dump({"freeze_windows": [freeze]}))
    journal = tmp_path / "journal.db"
    common = (
        "namespace=gt-playbook",
        "service=web",
        f"intents={intents}",
        f"prometheus_url={sandbox['prometheus_url']}",
        f"journal={journal}",
        f"burn_window={WINDOW}",
    )
    env = {"SELFHEAL_REQUESTED_BY": "{{ lookup('pipe', 'id') }}", "SELFHEAL_CHANGE_ID": "!42"}
    denied = gate_playbook(tmp_path, *common, "change=deploy", f"policy={policy}", env=env)
    assert denied.returncode != 0, denied.stdout
    assert "deploy of gt-playbook/web denied by freeze; retry after" in denied.stdout
    assert "freeze: inside the freeze" in denied.stdout and "(year-end freeze)" in denied.stdout

    allowed = gate_playbook(tmp_path, *common, "change=deploy", env=env)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "deploy of gt-playbook/web allowed" in allowed.stdout

    usage = gate_playbook(tmp_path, "namespace=gt-playbook")
    assert usage.returncode != 0 and "usage: ansible-playbook zerotouch.selfheal.gate" in usage.stdout
    # Text from the environment is journaled as data: the lookup was never run.
    assert [row[2:] for row in gates(journal)] == [
        (0, "freeze", "{{ lookup('pipe', 'id') }}", "!42"),
        (1, "allow", "{{ lookup('pipe', 'id') }}", "!42"),
    ]
