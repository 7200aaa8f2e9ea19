"""Two receivers, one action: two ansible-rulebook instances (``zerotouch.selfheal.remediate``) on one PostgreSQL
journal, the sandbox's real Alertmanager posting every alert to both, as an HA pair is set up.

1. A bad release: Prometheus fires its alerts, Alertmanager posts each to both receivers; between them there is
   exactly one decision per incident (alert fingerprint), one rollback, verified once, and no escalation.
2. A bad release under a policy that requires approval: one decision, and exactly one escalation between the two
   (in the journal and at the webhook recorder, the human's end).
3. kill -9 of one instance's whole process group mid-storm (alerts over several broken services, each posted to
   both receivers as Alertmanager does, re-sent every round): the other finishes everything - every service
   remediated exactly once and verified recovered, every alert either receiver accepted journaled (checked, or
   linked to a decision), none lost - and no process of the killed instance is left.

The journal is read back through SQL on the sandbox's PostgreSQL, the escalations at the sandbox's webhook recorder.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import client, cluster, payloads
from sandbox.rulebook import Rulebook, route_alerts_to, unroute_alerts
from sandbox.wait import wait_until

JAVA_HOME = Path(os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64")
pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not (JAVA_HOME / "bin" / "java").exists(), reason="ansible-rulebook needs Java 17"),
]

ROLLOUT, APPROVAL, STORM = "pair-rollout", "pair-approval", "pair-storm"
STORM_SERVICES = int(os.environ.get("PAIR_STORM_SERVICES", "4"))
OBJECTIVES = {"availability": 99.0, "max_latency_ms": 300, "max_error_rate": 1.0}
VERIFY = {"verify_settle_seconds": 3, "verify_interval": 2, "verify_window_seconds": 8, "verify_timeout_seconds": 60}
# The loops' liveness and claims: short, so the survivor takes over within seconds of the kill.
LEASE = {"lock_lease_seconds": 8}
# Long: a decision not to act is not checked again within a test, so every decision counted is an alert's own.
SETTLE = {"recheck_settle_seconds": 300}
POLICY = {
    "cooldown_minutes": 10,
    "max_actions_per_hour": 3,
    "max_concurrent_remediations": STORM_SERVICES + 2,
    "overrides": {"namespaces": {APPROVAL: {"require_approval": ["rollback"]}}},
}
TAKEOVER_BUDGET_S = 150
STORM_SETTLE_S = 10


def intent(namespace: str, name: str) -> dict[str, Any]:
    return {
        "service": name,
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": name},
        "objectives": OBJECTIVES,
        "recovery": {"min_replicas": 2, "max_replicas": 4, "rollback_on_regression": True},
        "indicators": {"window": "5s"},
    }


@dataclass
class Pair:
    state: dict[str, Any]
    a: Rulebook
    b: Rulebook
    dsn: str

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return list(conn.execute(sql, args).fetchall())

    def detail(self) -> str:
        return f"--- a:\n{self.a.output(3000)}\n--- b:\n{self.b.output(3000)}"


STORM_NAMES = [f"st-{i:02d}" for i in range(STORM_SERVICES)]


@pytest.fixture(scope="module")
def pair(sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("pair")
    kube = cluster.kube_client(sandbox)
    workloads = [(ROLLOUT, "web"), (APPROVAL, "web"), *((STORM, n) for n in STORM_NAMES)]
    for namespace in {ns for ns, _name in workloads}:
        cluster.create_namespace(kube, namespace)
    for namespace, name in workloads:
        manifest = cluster.deployment_manifest(namespace, name, image=f"pair/{name}:1.0")
        kube.apps.create_namespaced_deployment(namespace, manifest)
    for namespace, name in workloads:
        wait_until(lambda ns=namespace, n=name: cluster.rolled_out(kube, ns, n), 90, f"{namespace}/{name}")
    intents, policy = base / "intents.yml", base / "policy.yml"
    intents.write_text(yaml.safe_dump({"intents": [intent(ns, n) for ns, n in workloads]}))
    policy.write_text(yaml.safe_dump(POLICY))
    os.environ["PGPASSFILE"] = sandbox["journal_passfile"]  # this process reads the pair's journal too
    options: dict[str, Any] = {
        "intents": intents,
        "policy": policy,
        "journal": sandbox["journal_dsn"],
        "extra_vars": {**VERIFY, **LEASE, **SETTLE},
    }
    a = Rulebook(sandbox, run_dir=base / "a", **options)
    b = Rulebook(sandbox, run_dir=base / "b", **options)
    try:
        a.start()
        b.start()
        route_alerts_to(sandbox, [(a.url, a.token), (b.url, b.token)])
        yield Pair(sandbox, a, b, sandbox["journal_dsn"])
    finally:
        for cleanup in (lambda: unroute_alerts(sandbox), a.stop, b.stop):
            try:
                cleanup()
            except Exception as exc:  # every cleanup runs
                print(f"cleanup failed: {exc}")


def received(rb: Rulebook) -> float:
    """How many alerts a receiver got (its own /metrics): Alertmanager posts to each."""
    with urllib.request.urlopen(rb.url.rsplit("/", 1)[0] + "/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("selfheal_alertmanager_alerts_received_total "):
                return float(line.split()[1])
    return 0.0


def decisions_per_incident(pair: Pair, namespace: str) -> dict[tuple[str, str], int]:
    """(fingerprint, alert status) -> decisions made on it: a firing alert's check, and the decision of the
    resolved alert that closes its incident."""
    found = pair.rows(
        "SELECT fingerprint, snapshot::json -> 'alert' ->> 'status', COUNT(*) FROM decisions WHERE namespace = %s"
        " AND fingerprint IS NOT NULL GROUP BY 1, 2",
        (namespace,),
    )
    return {(str(fp), str(status)): int(n) for fp, status, n in found}


def actions(pair: Pair, namespace: str) -> list[tuple[str, str]]:
    """(action, outcome) of every action in the namespace that was not skipped, oldest first."""
    found = pair.rows(
        "SELECT action, outcome FROM actions WHERE namespace = %s AND outcome != 'skipped' ORDER BY id", (namespace,)
    )
    return [(str(a), str(o)) for a, o in found]


def journal_of(pair: Pair, namespace: str) -> str:
    """The namespace's decisions, with the alert each was made on, and its actions: a failure's explanation."""
    found = pair.rows(
        "SELECT d.id, d.time, d.fingerprint, d.action, d.rule, d.snapshot::json -> 'alert' ->> 'status',"
        " d.snapshot::json -> 'alert' ->> 'startsAt', a.action, a.outcome FROM decisions d"
        " LEFT JOIN actions a ON a.decision_id = d.id WHERE d.namespace = %s ORDER BY d.id",
        (namespace,),
    )
    accepted = pair.rows("SELECT fingerprint, status, starts_at, owner, accepted, handled FROM alert_dedupe")
    return "\n".join(map(str, found)) + "\naccepted:\n" + "\n".join(map(str, accepted))


def escalations_received(pair: Pair, namespace: str) -> list[dict[str, Any]]:
    """What reached the human: the recorder's notifications that are not Alertmanager's own."""
    return [
        r["payload"]
        for r in client.received(pair.state)
        if "alerts" not in r["payload"] and namespace in json.dumps(r["payload"])
    ]


def test_a_bad_release_gives_one_decision_one_rollback_one_verification(pair: Pair, faults: Any) -> None:
    before = (received(pair.a), received(pair.b))
    faults("bad-rollout", namespace=ROLLOUT, service="web")
    wait_until(
        lambda: ("rollback", "recovered") in actions(pair, ROLLOUT),
        240,
        "the rollback to be verified recovered",
        interval=1,
        detail=pair.detail,
    )
    time.sleep(10)  # what either receiver would do twice shows up now: alerts resent, resolved, the other's copy
    assert received(pair.a) > before[0] and received(pair.b) > before[1], "Alertmanager posts every alert to both"
    per_incident = decisions_per_incident(pair, ROLLOUT)
    assert any(status == "firing" for _fp, status in per_incident), journal_of(pair, ROLLOUT)
    assert set(per_incident.values()) == {1}, journal_of(pair, ROLLOUT)  # one check, one closing, per incident
    assert actions(pair, ROLLOUT) == [("rollback", "recovered")]  # one remediation, verified once, no escalation
    assert escalations_received(pair, ROLLOUT) == []


def test_a_fault_that_needs_a_human_escalates_once_between_the_two(pair: Pair, faults: Any) -> None:
    faults("bad-rollout", namespace=APPROVAL, service="web")
    wait_until(
        lambda: actions(pair, APPROVAL) and escalations_received(pair, APPROVAL),
        240,
        "the escalation to reach the recorder",
        interval=1,
        detail=pair.detail,
    )
    time.sleep(10)
    per_incident = decisions_per_incident(pair, APPROVAL)
    assert any(status == "firing" for _fp, status in per_incident), journal_of(pair, APPROVAL)
    assert set(per_incident.values()) == {1}, journal_of(pair, APPROVAL)
    # Each receiver may check one of the fault's alerts (HighErrorRate, LowAvailability): the second check finds
    # the target locked by the first, or the first's escalation sent moments ago, and is journaled skipped.
    decided = pair.rows(
        "SELECT DISTINCT action, proposed FROM decisions WHERE namespace = %s AND rule != 'alert-resolved'", (APPROVAL,)
    )
    assert decided == [("escalate", "rollback")]
    assert actions(pair, APPROVAL) == [("escalate", "not_recovered")]  # sent (a human has it), once
    assert len(escalations_received(pair, APPROVAL)) == 1


def unfinished(pair: Pair) -> str:
    """The decisions and actions of the storm's services that have no verified remediation yet."""
    found = pair.rows(
        "SELECT d.service, d.id, d.time, d.action, d.rule, a.id, a.action, a.outcome, a.run IS NOT NULL,"
        " (SELECT owner FROM action_takeovers t WHERE t.action_id = a.id) FROM decisions d"
        " LEFT JOIN actions a ON a.decision_id = d.id WHERE d.namespace = %s AND d.service NOT IN"
        " (SELECT service FROM actions WHERE namespace = %s AND action = 'rollback' AND outcome = 'recovered')"
        " ORDER BY d.id",
        (STORM, STORM),
    )
    instances = pair.rows("SELECT * FROM loop_instances")
    return "\n".join(map(str, found)) + f"\ninstances {instances}"


class Poster(threading.Thread):
    """Posts one fresh alert per storm service every half second to both receivers (as Alertmanager's two
    routes do), each round re-sending the round before it; keeps the fingerprints some receiver accepted (2xx)."""

    def __init__(self, receivers: list[Rulebook]) -> None:
        super().__init__(daemon=True)
        self.receivers = receivers
        self.accepted: set[str] = set()
        self.refused = 0
        self.done = threading.Event()

    def run(self) -> None:
        round_, last = 0, []
        while not self.done.wait(0.5):
            round_ += 1
            fresh = [
                payloads.alert("HighErrorRate", fingerprint=f"9a{i:02x}{round_:08x}", namespace=STORM, service=n)
                for i, n in enumerate(STORM_NAMES)
            ]
            body = json.dumps(payloads.notification(*last, *fresh)).encode()
            last = fresh
            for rb in self.receivers if round_ % 2 else reversed(self.receivers):
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {rb.token}"}
                try:
                    with urllib.request.urlopen(urllib.request.Request(rb.url, body, headers), timeout=5) as resp:
                        if 200 <= resp.status < 300:
                            self.accepted.update(a["fingerprint"] for a in fresh)
                except (OSError, urllib.error.HTTPError):
                    self.refused += 1  # the killed one: not accepted there


def test_kill_9_of_one_mid_storm_the_other_finishes_everything(pair: Pair, faults: Any) -> None:
    from tests.e2e.test_restart import alive, tree

    # A check that finds the target locked (by a claim the victim made just before it died) looks again after the
    # settle: a short one here, as in production, so the survivor's recheck comes within the budget.
    for rb in (pair.a, pair.b):
        rb.stop()
        rb.extra_vars["recheck_settle_seconds"] = STORM_SETTLE_S
        rb.start()
    for name in STORM_NAMES:
        faults("bad-rollout", namespace=STORM, service=name)
    # The storm starts once every service breaches: a check made before would rightly decide not to act.
    match = f'namespace="{STORM}"'
    breach = (
        f'100 * sum by (service) (rate(http_requests_total{{{match},code=~"5.."}}[5s]))'
        f" / sum by (service) (rate(http_requests_total{{{match}}}[5s])) > {OBJECTIVES['max_error_rate']}"
    )
    wait_until(lambda: len(client.query(pair.state, breach)) == STORM_SERVICES, 120, "every service to breach", 1)
    poster = Poster([pair.a, pair.b])
    poster.start()
    try:
        # Mid-storm: once a playbook has started, kill the instance that runs it (ansible-rulebook's whole
        # process group; the playbooks, in sessions of their own, live on and are the survivor's to stop).
        def running() -> tuple[Rulebook, Rulebook] | None:
            runs = pair.rows(
                "SELECT run FROM actions WHERE namespace = %s AND run IS NOT NULL AND outcome = 'pending'", (STORM,)
            )
            pids = {json.loads(r[0]).get("pid") for r in runs}
            for victim, survivor in ((pair.a, pair.b), (pair.b, pair.a)):
                if victim.pid is not None and pids & set(tree(victim.pid)):
                    return victim, survivor
            return None

        victim, survivor = wait_until(running, 240, "a storm remediation's playbook to start", interval=0.2)
        first = tree(victim.pid)  # type: ignore[arg-type]
        os.killpg(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim._proc.wait(timeout=10)  # type: ignore[union-attr]
        victim._proc = None
        killed = time.monotonic()
        open_at_kill = dict(
            pair.rows("SELECT owner, COUNT(*) FROM alert_dedupe WHERE handled IS NULL AND owner IS NOT NULL GROUP BY 1")
        )
        time.sleep(5)  # the storm goes on against the survivor alone
        poster.done.set()
        poster.join(timeout=10)

        def journaled() -> set[str]:
            found = pair.rows(
                "SELECT fingerprint FROM decisions WHERE namespace = %s AND fingerprint IS NOT NULL UNION"
                " SELECT l.fingerprint FROM alert_links l JOIN decisions d ON d.id = l.decision_id"
                " WHERE d.namespace = %s AND l.fingerprint IS NOT NULL",
                (STORM, STORM),
            )
            return {str(fp) for (fp,) in found}

        def remediations() -> dict[str, list[str]]:
            found = pair.rows(
                "SELECT service, outcome FROM actions WHERE namespace = %s AND action = 'rollback'"
                " AND outcome != 'skipped' ORDER BY id",
                (STORM,),
            )
            out: dict[str, list[str]] = {}
            for service, outcome in found:
                out.setdefault(str(service), []).append(str(outcome))
            return out

        def finished() -> bool:
            done = remediations()
            verified = all(done.get(n) == ["recovered"] for n in STORM_NAMES)
            return verified and poster.accepted <= journaled() and not alive(first)

        wait_until(
            finished,
            TAKEOVER_BUDGET_S,
            "the survivor to finish every remediation and journal every accepted alert",
            interval=1,
            detail=lambda: (
                f"remediations {remediations()}\nlost {sorted(poster.accepted - journaled())[:20]}\n"
                f"alive {alive(first)}\n{unfinished(pair)}\n{survivor.output(4000)}"
            ),
        )
        took = time.monotonic() - killed
        time.sleep(10)  # a second remediation, if the survivor were to make one, shows up now
        done = remediations()
        assert {n: done.get(n) for n in STORM_NAMES} == dict.fromkeys(STORM_NAMES, ["recovered"])  # 0 duplicates
        lost = poster.accepted - journaled()
        assert not lost
        # The survivor says what it settled of the victim's (action_takeovers also holds its own in-flight ones).
        taken = survivor.output(10**7).count("left by a dead loop")
        assert taken >= 1  # the playbook the victim ran was the survivor's to settle
        # The survivor is the loop still renewing its lease; what the victim had accepted and not yet checked
        # when it died was the survivor's to take over.
        (alive_loop,) = pair.rows("SELECT instance FROM loop_instances ORDER BY lease_until DESC LIMIT 1")[0]
        unchecked = sum(n for owner, n in open_at_kill.items() if owner != alive_loop)
        print(
            f"\npair: {len(poster.accepted)} alerts accepted between the two ({poster.refused} posts refused once "
            f"one was dead), {unchecked} accepted by the victim and not yet checked when it was killed, {taken} of "
            f"its actions taken over; every one of {STORM_SERVICES} services remediated once and verified "
            f"{took:.0f} s after the kill, 0 alerts lost"
        )
    finally:
        poster.done.set()
