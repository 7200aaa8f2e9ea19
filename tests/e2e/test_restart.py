"""The warm loop survives kill -9 in the middle of an incident.

SERVICES services get a bad release each; alerts are posted to the rulebook (with a spool) all along; a few seconds
after the first remediation starts, ansible-rulebook's whole process group gets SIGKILL - the playbooks it started
run in sessions of their own and survive that - and the rulebook starts again on the same port, spool and journal.
Then, within RESTART_BUDGET_S of the restart: every service has exactly one remediation, verified recovered; every
alert the receiver accepted is in the journal (checked, or linked to a decision); and no process of the first loop
is left.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import client, cluster, payloads
from sandbox.rulebook import Rulebook
from sandbox.wait import wait_until

JAVA_HOME = Path(os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64")
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not (JAVA_HOME / "bin" / "java").exists(), reason="ansible-rulebook needs Java 17"),
]

NAMESPACE = "rs-restart"
# The measurement used 10; on the 2 shared cores of CI, 10 playbooks decided again at once after the restart
# (each ~3 s of CPU) plus ansible-rulebook's own start take most of the 60 s before any verification can end. Five
# keep every part of the scenario (several claims in flight, some playbooks named, the spool replayed).
SERVICES = int(os.environ.get("RESTART_SERVICES", "5"))
RESTART_BUDGET_S = 60
OBJECTIVES = {"availability": 99.0, "max_latency_ms": 300, "max_error_rate": 1.0}
VERIFY = {"verify_settle_seconds": 3, "verify_interval": 2, "verify_window_seconds": 8, "verify_timeout_seconds": 50}
LEASE = {"lock_lease_seconds": 8}  # the dead loop's claims are settled once their lease lapses: short, like VERIFY
POLICY = {"cooldown_minutes": 10, "max_actions_per_hour": 3, "max_concurrent_remediations": SERVICES}


def intent(name: str) -> dict[str, Any]:
    return {
        "service": name,
        "namespace": NAMESPACE,
        "target": {"kind": "Deployment", "name": name},
        "objectives": OBJECTIVES,
        "recovery": {"min_replicas": 2, "max_replicas": 4, "rollback_on_regression": True},
        "indicators": {"window": "5s"},
    }


class Poster(threading.Thread):
    """Posts one alert per service every half second, each with a fingerprint of its own, and keeps the
    fingerprints the receiver accepted (2xx)."""

    def __init__(self, rb: Rulebook, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.rb, self.names = rb, names
        self.accepted: set[str] = set()
        self.when: dict[str, str] = {}  # fingerprint -> which loop accepted it
        self.phase = "first"
        self.refused = 0
        self.done = threading.Event()

    def run(self) -> None:
        round_ = 0
        while not self.done.wait(0.5):
            round_ += 1
            alerts = [
                payloads.alert("HighErrorRate", fingerprint=f"{i:04x}{round_:08x}", namespace=NAMESPACE, service=n)
                for i, n in enumerate(self.names)
            ]
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.rb.token}"}
            body = json.dumps(payloads.notification(*alerts)).encode()
            try:
                with urllib.request.urlopen(urllib.request.Request(self.rb.url, body, headers), timeout=5) as resp:
                    if 200 <= resp.status < 300:
                        self.accepted.update(a["fingerprint"] for a in alerts)
                        self.when.update((a["fingerprint"], self.phase) for a in alerts)
            except (OSError, urllib.error.HTTPError):
                self.refused += 1  # the receiver is down (killed) or busy: not accepted, so not ours to keep


def tree(pid: int) -> dict[int, int]:
    """pid -> start time of a process and all its descendants (playbooks in sessions of their own included)."""
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs

    procs = runs.processes()
    found = {pid}
    grew = True
    while grew:
        grew = False
        for p in procs:
            if p.ppid in found and p.pid not in found:
                found.add(p.pid)
                grew = True
    return {p.pid: p.start for p in procs if p.pid in found}


def alive(seen: dict[int, int]) -> list[int]:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs

    left = []
    for pid, start in seen.items():
        proc = runs.read(pid)
        if proc is not None and proc.start == start and proc.state not in ("Z", "X"):
            left.append(pid)
    return left


def metrics(rb: Rulebook) -> str:
    url = rb.url.rsplit("/", 1)[0] + "/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return "\n".join(line for line in resp.read().decode().splitlines() if not line.startswith("#"))
    except OSError as exc:
        return f"no metrics: {exc}"


def rows(journal: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(journal) as conn:
        return conn.execute(sql).fetchall()


def remediations(journal: Path) -> dict[str, list[tuple[str, str]]]:
    """Per service, the rollbacks that were not skipped: (outcome, detail)."""
    found = rows(
        journal,
        "SELECT service, outcome, COALESCE(detail, '') FROM actions"
        f" WHERE namespace = '{NAMESPACE}' AND action = 'rollback' AND outcome != 'skipped' ORDER BY id",
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for service, outcome, detail in found:
        out.setdefault(service, []).append((outcome, detail))
    return out


def test_kill_9_mid_incident_then_one_verified_remediation_per_service_and_nothing_lost(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    names = [f"rs-{i:02d}" for i in range(SERVICES)]
    kube = cluster.kube_client(sandbox)
    cluster.create_namespace(kube, NAMESPACE)
    for name in names:
        kube.apps.create_namespaced_deployment(
            NAMESPACE, cluster.deployment_manifest(NAMESPACE, name, image=f"restart/{name}:1.0")
        )
    for name in names:
        wait_until(lambda n=name: cluster.rolled_out(kube, NAMESPACE, n), 90, f"{NAMESPACE}/{name} to roll out")
    for name in names:
        client.inject(sandbox, "bad-rollout", namespace=NAMESPACE, service=name)
    intents, policy = tmp_path / "intents.yml", tmp_path / "policy.yml"
    intents.write_text(yaml.safe_dump({"intents": [intent(n) for n in names]}))
    policy.write_text(yaml.safe_dump(POLICY))
    spool = tmp_path / "spool"
    options = dict(intents=intents, policy=policy, extra_vars={**VERIFY, **LEASE, "spool_dir": str(spool)})
    rb = Rulebook(sandbox, run_dir=tmp_path / "rb", **options).start()  # type: ignore[arg-type]
    poster = Poster(rb, names)
    poster.start()
    try:
        # The first remediation has started once its playbook named itself on the claimed action.
        wait_until(
            lambda: (
                Path(rb.journal).exists()
                and rows(rb.journal, f"SELECT id FROM actions WHERE namespace = '{NAMESPACE}' AND run IS NOT NULL")
            ),
            240,
            "the first remediation's playbook to start",
            interval=0.2,
            detail=rb.output,
        )
        time.sleep(3)
        assert rb.pid is not None
        first_loop = tree(rb.pid)
        poster.phase = "killed"
        os.killpg(rb.pid, signal.SIGKILL)
        rb._proc.wait(timeout=10)  # type: ignore[union-attr]
        rb._proc = None
        named, applied = rows(
            rb.journal,
            "SELECT COUNT(a.run), COUNT(p.applied) FROM actions a LEFT JOIN action_progress p ON p.action_id = a.id",
        )[0]

        again = Rulebook(sandbox, run_dir=tmp_path / "rb", port=rb.port, token=rb.token, **options)  # type: ignore[arg-type]
        restarted = time.monotonic()
        again.start()
        poster.rb, poster.phase = again, "again"

        def settled() -> dict[str, list[tuple[str, str]]] | None:
            done = remediations(again.journal)
            verified = all(len(done.get(n, [])) == 1 and done[n][0][0] == "recovered" for n in names)
            return done if verified and not alive(first_loop) else None

        wait_until(
            settled,
            RESTART_BUDGET_S - (time.monotonic() - restarted),
            "one verified remediation per service and nothing left of the first loop",
            interval=1,
            detail=lambda: (
                f"{rows(again.journal, 'SELECT * FROM actions')}\nalive: {alive(first_loop)}\n"
                f"{metrics(again)}\n{again.output()}"
            ),
        )
        took = time.monotonic() - restarted
        poster.done.set()
        poster.join(timeout=10)

        def journaled() -> set[str]:
            return {
                fp
                for (fp,) in rows(
                    again.journal,
                    "SELECT fingerprint FROM decisions WHERE fingerprint IS NOT NULL"
                    " UNION SELECT fingerprint FROM alert_links WHERE fingerprint IS NOT NULL",
                )
            }

        wait_until(
            lambda: poster.accepted <= journaled(),
            60,
            "every accepted alert to be journaled",
            interval=1,
            detail=lambda: (
                str(sorted((fp, poster.when[fp]) for fp in poster.accepted - journaled())[:40]) + f"\n{metrics(again)}"
            ),
        )
        remediated = remediations(again.journal)
        assert {n: len(remediated[n]) for n in names} == dict.fromkeys(names, 1)
        print(
            f"\nrestart: {len(poster.accepted)} alerts accepted ({poster.refused} posts refused while down), "
            f"{named} playbooks named and {applied} changes applied before the kill, {len(first_loop)} processes of "
            "the first loop, "
            f"all {SERVICES} services remediated once and verified {took:.0f} s after the restart"
        )
        again.stop()
    finally:
        poster.done.set()
        rb.stop()
