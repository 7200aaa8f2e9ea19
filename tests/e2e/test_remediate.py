"""The whole remediation loop per action: fault -> intent_check decides -> remediate.yml acts -> verified -> journal.

Each test owns a namespace with a Deployment ``web`` (image ``e2e/<namespace>:1.0``, so that one namespace's bad
release is nobody else's). Faults that stay within their namespace are injected once for the module; the slow node
(which slows every pod on it) only during its own test. Before each run the test waits until the decision engine
would choose the action (polling the same check intent_check runs, in check mode), then runs
``ansible-playbook zerotouch.selfheal.remediate`` as a user would - the runs of independent namespaces at once,
since most of a run is verification watching the service - and checks the metrics in Prometheus, the cluster
through the official client and the journal through the collection's own query. The per-action playbooks for
manual runs are checked at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.lock import lease_name
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import query_journal
from ansible_collections.zerotouch.selfheal.plugins.module_utils._k8s.client import connect
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.check import check
from kubernetes.client.exceptions import ApiException

from sandbox import client
from tests.attacks import attack_strings
from tests.integration.helpers import (
    create_namespace,
    deployment_manifest,
    in_diff,
    kube_client,
    rolled_out,
    wait_until,
)

pytestmark = pytest.mark.sandbox
ROOT = Path(__file__).resolve().parents[2]
WINDOW = "5s"  # the intents' rate window; the sandbox scrapes every second
VERIFY = {"verify_settle_seconds": 3, "verify_interval": 2, "verify_window_seconds": 10, "verify_timeout_seconds": 90}

# namespace -> replicas; every test has its own.
NAMESPACES = {
    "e2e-rollback": 2,
    "e2e-scale": 2,
    "e2e-restart": 2,
    "e2e-tenant": 3,
    "e2e-reconcile": 2,
    "e2e-patch": 2,
    "e2e-escalate": 2,
    "e2e-inject": 2,
    "e2e-check": 2,
    "e2e-locked": 2,
    "e2e-manual": 2,
    "e2e-reroute": 3,
}
# Faults that act on their namespace only, injected for the whole module: (namespace, fault, fields).
FAULTS = [
    ("e2e-rollback", "bad-rollout", {}),
    ("e2e-scale", "traffic-surge", {"factor": 3}),
    ("e2e-restart", "crashloop", {}),
    ("e2e-tenant", "noisy-tenant", {"tenant": "bulk"}),
    ("e2e-reconcile", "drift", {}),
    ("e2e-escalate", "bad-rollout", {}),
    ("e2e-check", "bad-rollout", {}),
    ("e2e-locked", "bad-rollout", {}),
    ("e2e-manual", "bad-rollout", {}),
]
POLICY = {
    "overrides": {
        "namespaces": {
            # Its Deployment was created minutes ago; without this, that counts as a recent rollout, which a
            # restart cannot fix.
            "e2e-restart": {"recent_change_minutes": 0},
            "e2e-escalate": {"require_approval": ["rollback"]},
        }
    }
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
}


def image(namespace: str, tag: str = "1.0") -> str:
    return f"e2e/{namespace}:{tag}"


def intent(namespace: str, manifests: Path | None = None) -> dict[str, Any]:
    return {
        "service": "web",
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": "web"},
        "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
        "recovery": {"min_replicas": 2, "max_replicas": 6},
        # Tenant shares over 3 s: over 5 s the steady tenant can still read as the majority when the check runs
        # just after the flood began (as in the closed-loop test).
        "indicators": {"window": WINDOW, **({"tenant_window": "3s"} if namespace == "e2e-tenant" else {})},
        **({"manifests": str(manifests)} if manifests else {}),
    }


@pytest.fixture(scope="module")
def loop(sandbox: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The workloads, their intents and policy, serving with a full rate window, and the module's faults."""
    files = tmp_path_factory.mktemp("remediate")
    manifests = files / "manifests"
    manifests.mkdir()
    (manifests / "service.yml").write_text(yaml.safe_dump(SERVICE))
    intents = [intent(ns, manifests if ns == "e2e-reconcile" else None) for ns in NAMESPACES]
    (files / "intents.yml").write_text(yaml.safe_dump(intents))
    # Nine faults at once over thirteen services is a correlated breach, which the loop rightly escalates
    # (principle 7): each service's check is given its own intent only, as if each team ran its own loop.
    (files / "intents").mkdir()
    for one in intents:
        (files / "intents" / f"{one['namespace']}.yml").write_text(yaml.safe_dump([one]))
    (files / "policy.yml").write_text(yaml.safe_dump(POLICY))

    kube = kube_client(sandbox)
    for namespace, replicas in NAMESPACES.items():  # created together, then awaited together
        create_namespace(kube, namespace)
        kube.apps.create_namespaced_deployment(
            namespace, deployment_manifest(namespace, "web", replicas=replicas, image=image(namespace))
        )
    for namespace in NAMESPACES:
        wait_until(lambda ns=namespace: rolled_out(kube, ns, "web"), what=f"{namespace}/web to roll out")
    kube.core.create_namespaced_service("e2e-reconcile", SERVICE)
    count = f"count(sum by (namespace) (rate(http_requests_total{{namespace=~'e2e-.*',code='200'}}[{WINDOW}])) > 90)"
    wait_until(lambda: (client.scalar(sandbox, count) or 0) >= len(NAMESPACES), timeout=60, what="every e2e metric")

    injected = [client.inject(sandbox, kind, namespace=ns, service="web", **fields) for ns, kind, fields in FAULTS]
    try:
        yield {**sandbox, "intents": files / "intents.yml", "policy": files / "policy.yml", "kube": kube}
    finally:
        active = {fault["id"] for fault in client.faults(sandbox)}
        for fault in injected:
            if fault["id"] in active:
                client.clear(sandbox, fault["id"])


# --- what the loop is asked, what it says, what it leaves ---------------------------------------------------------


def intents_of(loop: dict[str, Any], namespace: str | None) -> Path:
    """The intent of the namespace's service alone, or every intent when no namespace is named."""
    return Path(loop["intents"]).with_suffix("") / f"{namespace}.yml" if namespace else Path(loop["intents"])


def decision(loop: dict[str, Any], namespace: str, **options: Any) -> dict[str, Any]:
    """What intent_check would decide now (the module's own code, in check mode: nothing is journaled)."""
    params = {
        "namespace": namespace,
        "service": "web",
        "intents": str(intents_of(loop, namespace)),
        "policy": str(loop["policy"]),
        "prometheus_url": loop["prometheus_url"],
        "record": False,
        **options,
    }
    result = check(params, lambda: connect({"kubeconfig": loop["kubeconfig"]}), check_mode=True)
    return result["decision"]  # type: ignore[no-any-return]


def await_decision(loop: dict[str, Any], namespace: str, action: str, **options: Any) -> dict[str, Any]:
    def chosen() -> dict[str, Any] | None:
        found = decision(loop, namespace, **options)
        return found if found["action"] == action else None

    return wait_until(chosen, timeout=60, interval=1, what=f"intent_check to choose {action} in {namespace}")


@dataclass
class Run:
    """A running ``ansible-playbook``; its output goes to a file (a pipe could fill up and stall it)."""

    proc: subprocess.Popen[bytes]
    log: Path

    def wait(self) -> str:
        """Wait for the run to end; it must succeed. Returns what it printed."""
        self.proc.wait(timeout=300)
        output = self.log.read_text()
        assert self.proc.returncode == 0, output[-8000:]
        return output


def start(name: str, cwd: Path, *args: str) -> Run:
    """Start ``ansible-playbook zerotouch.selfheal.<name> ARGS`` with the installed collection, as a user would."""
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), f"zerotouch.selfheal.{name}", *args]
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(ROOT / ".collections"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCAL_TEMP=str(cwd / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    log = cwd / f"{name}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    return Run(proc, log)


def start_playbook(
    loop: dict[str, Any], name: str, journal: Path, *args: str, check_mode: bool = False, **extra: Any
) -> Run:
    """Start one of the collection's playbooks against the sandbox, with its own journal."""
    common = {
        "intents": str(intents_of(loop, extra.get("namespace"))),
        "policy": str(loop["policy"]),
        "prometheus_url": loop["prometheus_url"],
        "escalation_url": loop["webhook_url"],
        "kubeconfig": loop["kubeconfig"],
        "journal": str(journal),
        **VERIFY,
        **extra,
    }
    flags = ["--check", "--diff"] if check_mode else []
    return start(name, journal.parent, "-e", json.dumps(common), *args, *flags)


def remediate(loop: dict[str, Any], journal: Path, *args: str, namespace: str | None = None, **options: Any) -> str:
    """Run remediate.yml (for the namespace's web service, or for what ARGS say) to its successful end."""
    target = {"namespace": namespace, "service": "web"} if namespace else {}
    return start_playbook(loop, "remediate", journal, *args, **target, **options).wait()


def metrics(loop: dict[str, Any], namespace: str) -> dict[str, float | None]:
    """Error rate (% 5xx) and p99 latency (ms) of the service over the intents' window, straight from Prometheus."""
    sel = f"namespace='{namespace}',service='web'"
    errors = f"(sum(rate(http_requests_total{{{sel},code=~'5..'}}[{WINDOW}])) or vector(0))"
    latency = f"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[{WINDOW}])))"
    return {
        "error_rate": client.scalar(loop, f"100 * {errors} / sum(rate(http_requests_total{{{sel}}}[{WINDOW}]))"),
        "latency_p99_ms": client.scalar(loop, f"1000 * {latency}"),
    }


def healthy(values: dict[str, float | None]) -> bool:
    return values["error_rate"] is not None and values["error_rate"] < 1 and (values["latency_p99_ms"] or 1e9) < 250


def journaled(journal: Path, namespace: str) -> list[dict[str, Any]]:
    """The journal's decisions about the namespace, oldest first, each with its actions."""
    return list(reversed(query_journal({"journal": str(journal), "namespace": namespace})))


def assert_recovered(journal: Path, namespace: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """decision -> action -> recovered, exactly once."""
    (entry,) = journaled(journal, namespace)
    assert (entry["action"], entry["decision"]["params"]) == (action, params), entry["decision"]["reasons"]
    (done,) = entry["actions"]
    assert (done["action"], done["params"], done["changed"]) == (action, params, True), done
    assert done["outcome"] == "recovered", done["detail"]
    assert done["ended"] >= done["started"] >= entry["time"]
    return entry


def template(loop: dict[str, Any], namespace: str) -> dict[str, Any]:
    return loop["kube"].deployment(namespace, "web")["spec"]["template"]  # type: ignore[no-any-return]


# --- one test per action -----------------------------------------------------------------------------------------

# The actions whose faults stay in their namespace run at once: most of a run is verification watching the service,
# and the runs need not wait for each other. namespace -> (the action, what else intent_check and remediate get).
PATCHES = [{"from": image("e2e-patch"), "image": image("e2e-patch", "1.0.1"), "severity": "critical"}]
AT_ONCE: dict[str, tuple[str, dict[str, Any]]] = {
    "e2e-rollback": ("rollback", {}),
    "e2e-scale": ("scale_up", {}),
    "e2e-restart": ("restart", {}),
    "e2e-tenant": ("isolate_tenant", {}),
    "e2e-reconcile": ("reconcile", {}),
    "e2e-patch": ("patch", {"patches": PATCHES}),
}


@dataclass
class Remediation:
    decision: dict[str, Any]  # what intent_check chose before the run
    before: dict[str, float | None]  # the metrics then
    pods: set[str]  # the pods then
    journal: Path
    run: Run


@pytest.fixture(scope="module")
def remediations(loop: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Remediation]]:
    """remediate.yml started for every namespace of AT_ONCE, each once intent_check would choose its action."""
    started: dict[str, Remediation] = {}
    try:
        for ns, (action, options) in AT_ONCE.items():
            chosen = await_decision(loop, ns, action, **options)
            before = metrics(loop, ns)
            pods = {pod["metadata"]["name"] for pod in loop["kube"].pods(ns, "web")}
            journal = tmp_path_factory.mktemp(ns) / "journal.db"
            run = start_playbook(loop, "remediate", journal, namespace=ns, service="web", **options)
            started[ns] = Remediation(chosen, before, pods, journal, run)
        yield started
    finally:
        for remediation in started.values():
            if remediation.run.proc.poll() is None:
                remediation.run.proc.kill()
            remediation.run.proc.wait()


def test_bad_rollout_is_rolled_back(loop: dict[str, Any], remediations: dict[str, Remediation]) -> None:
    ns = "e2e-rollback"
    done = remediations[ns]
    assert done.decision["params"] == {"to_revision": 1}
    assert not healthy(done.before), done.before
    done.run.wait()
    assert template(loop, ns)["spec"]["containers"][0]["image"] == image(ns)
    assert healthy(metrics(loop, ns)), metrics(loop, ns)
    assert_recovered(done.journal, ns, "rollback", {"to_revision": 1})


def test_traffic_surge_is_scaled_up(loop: dict[str, Any], remediations: dict[str, Remediation]) -> None:
    ns = "e2e-scale"
    done = remediations[ns]
    assert done.decision["params"]["replicas"] > 2
    assert not healthy(done.before), done.before
    done.run.wait()
    # Sized from the CPU the run's own decision saw, which may differ by a replica from the poll's.
    replicas = journaled(done.journal, ns)[0]["decision"]["params"]["replicas"]
    assert 2 < replicas <= 6
    deployment = loop["kube"].deployment(ns, "web")
    assert deployment["spec"]["replicas"] == deployment["status"]["readyReplicas"] == replicas
    assert healthy(metrics(loop, ns)), metrics(loop, ns)
    assert_recovered(done.journal, ns, "scale_up", {"replicas": replicas})


def test_crash_loop_is_restarted(loop: dict[str, Any], remediations: dict[str, Remediation]) -> None:
    ns = "e2e-restart"
    done = remediations[ns]
    assert done.decision["params"] == {}  # every pod fails: a rolling restart, not a few pods
    assert not healthy(done.before), done.before
    done.run.wait()
    pods = {pod["metadata"]["name"] for pod in loop["kube"].pods(ns, "web")}
    assert len(pods) == 2 and not done.pods & pods, (done.pods, pods)
    assert healthy(metrics(loop, ns)), metrics(loop, ns)
    assert_recovered(done.journal, ns, "restart", {})


def test_noisy_tenant_is_isolated(loop: dict[str, Any], remediations: dict[str, Remediation]) -> None:
    ns = "e2e-tenant"
    done = remediations[ns]
    assert done.decision["params"] == {"tenant": "bulk"}
    assert not healthy(done.before), done.before
    done.run.wait()
    limits = loop["kube"].core.read_namespaced_config_map("web-tenant-limits", ns).data
    assert set(limits) == {"bulk"} and 0 < float(limits["bulk"]) < 400, limits  # bulk sends 400 requests/s
    assert healthy(metrics(loop, ns)), metrics(loop, ns)
    assert_recovered(done.journal, ns, "isolate_tenant", {"tenant": "bulk"})


def test_drift_is_reconciled(loop: dict[str, Any], remediations: dict[str, Remediation]) -> None:
    ns = "e2e-reconcile"
    done = remediations[ns]
    assert done.decision["params"]["fields"] == [{"object": "Service/web", "field": "spec.ports[0].targetPort"}]
    assert not healthy(done.before), done.before
    done.run.wait()
    assert loop["kube"].core.read_namespaced_service("web", ns).spec.ports[0].target_port == 8080
    assert healthy(metrics(loop, ns)), metrics(loop, ns)
    assert_recovered(done.journal, ns, "reconcile", done.decision["params"])


def test_an_available_critical_patch_is_rolled_out(loop: dict[str, Any], remediations: dict[str, Remediation]) -> None:
    ns = "e2e-patch"
    done = remediations[ns]
    assert done.decision["params"] == {"image": image(ns, "1.0.1")}
    assert healthy(done.before), done.before  # a patch is applied on the quiet path only
    done.run.wait()
    assert template(loop, ns)["spec"]["containers"][0]["image"] == image(ns, "1.0.1")
    assert healthy(metrics(loop, ns)), metrics(loop, ns)
    assert_recovered(done.journal, ns, "patch", {"image": image(ns, "1.0.1")})


def test_an_action_awaiting_approval_is_escalated_and_nothing_changes(loop: dict[str, Any], tmp_path: Path) -> None:
    ns = "e2e-escalate"
    chosen = await_decision(loop, ns, "escalate")
    assert (chosen["rule"], chosen["proposed"]) == ("approval", "rollback")
    before = template(loop, ns)
    journal = tmp_path / "journal.db"
    remediate(loop, journal, namespace=ns)
    assert template(loop, ns) == before  # still the bad release: a human decides
    assert loop["kube"].deployment(ns, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    (entry,) = journaled(journal, ns)
    assert (entry["action"], entry["proposed"]) == ("escalate", "rollback")
    (done,) = entry["actions"]
    assert (done["action"], done["outcome"], done["changed"]) == ("escalate", "not_recovered", True)
    sent = [r["payload"] for r in client.received(loop) if (r["payload"].get("service") or {}).get("namespace") == ns]
    assert len(sent) == 1, sent
    assert sent[0]["proposed"] == {"action": "rollback", "params": {"to_revision": 1}}
    assert sent[0]["approval_required"] is True


def test_a_slow_node_is_rerouted_around(
    loop: dict[str, Any], remediations: dict[str, Remediation], tmp_path: Path, faults: Any
) -> None:
    for remediation in remediations.values():  # a slow node slows every pod on it: only once they are done
        remediation.run.proc.wait(timeout=300)
    ns = "e2e-reroute"
    kube = loop["kube"]
    node = sorted(pod["spec"]["nodeName"] for pod in kube.pods(ns, "web"))[0]
    faults("slow-node", node=node, namespace=ns, service="web")
    try:
        assert await_decision(loop, ns, "reroute")["params"] == {"node": node}
        journal = tmp_path / "journal.db"
        remediate(loop, journal, namespace=ns)
        assert node not in {pod["spec"]["nodeName"] for pod in kube.pods(ns, "web")}
        assert kube.core.read_node(node).spec.unschedulable is True
        assert healthy(metrics(loop, ns)), metrics(loop, ns)
        assert_recovered(journal, ns, "reroute", {"node": node})
    finally:  # the node is shared by every test: let it take pods again
        kube.core.patch_node(node, {"spec": {"unschedulable": False}})


# --- guarantees around every action ------------------------------------------------------------------------------


def test_alert_text_is_never_rendered_and_is_journaled_verbatim(loop: dict[str, Any], tmp_path: Path) -> None:
    """An alert file copied from Alertmanager, given as alert_file: read by intent_check as data, never rendered."""
    ns = "e2e-inject"
    markers = tmp_path / "markers"
    markers.mkdir()
    attacks = attack_strings(markers)
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "HighLatency",
            "namespace": ns,
            "service": "web",
            **{f"attack_{i}": text for i, text in enumerate(attacks)},
        },
        "annotations": {f"note_{i}": text for i, text in enumerate(attacks)},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": "e2e0inject0000001",
    }
    await_decision(loop, ns, "none", alert=alert)
    alert_file = tmp_path / "alert.json"
    alert_file.write_text(json.dumps(alert))
    journal = tmp_path / "journal.db"
    output = remediate(loop, journal, "-e", f"alert_file={alert_file}")
    assert list(markers.iterdir()) == [], "alert text ran a command on the controller"
    (entry,) = query_journal({"journal": str(journal), "namespace": ns, "include_snapshot": True})
    assert entry["action"] == "none" and entry["fingerprint"] == alert["fingerprint"]
    assert entry["snapshot"]["alert"]["labels"] == alert["labels"]
    assert entry["snapshot"]["alert"]["annotations"] == alert["annotations"]
    assert "Stop, there is nothing to do" in output


def test_check_mode_changes_nothing_and_journals_nothing(loop: dict[str, Any], tmp_path: Path) -> None:
    ns = "e2e-check"
    await_decision(loop, ns, "rollback")
    before = loop["kube"].deployment(ns, "web")
    journal = tmp_path / "journal.db"
    output = remediate(loop, journal, namespace=ns, check_mode=True)
    # The role ran in check mode and showed what it would change; verification took one look.
    assert in_diff(output, "-", f'"image": "{image(ns, "1.1")}"'), output[-6000:]
    assert in_diff(output, "+", f'"image": "{image(ns)}"'), output[-6000:]
    after = loop["kube"].deployment(ns, "web")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]
    with pytest.raises(ApiException) as missing:
        loop["kube"].coordination.read_namespaced_lease(lease_name("web"), ns)
    assert missing.value.status == 404
    assert journaled(journal, ns) == []


def test_a_locked_target_is_skipped_and_journaled(loop: dict[str, Any], tmp_path: Path) -> None:
    ns = "e2e-locked"
    await_decision(loop, ns, "rollback")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    loop["kube"].coordination.create_namespaced_lease(
        ns,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": lease_name("web"), "namespace": ns},
            "spec": {
                "holderIdentity": "on-call/alice",
                "leaseDurationSeconds": 900,
                "acquireTime": stamp,
                "renewTime": stamp,
            },
        },
    )
    before = loop["kube"].deployment(ns, "web")["spec"]
    journal = tmp_path / "journal.db"
    remediate(loop, journal, namespace=ns)
    assert loop["kube"].deployment(ns, "web")["spec"] == before
    (entry,) = journaled(journal, ns)
    assert entry["action"] == "rollback"
    (skipped,) = entry["actions"]
    assert (skipped["action"], skipped["outcome"]) == ("rollback", "skipped")
    assert skipped["detail"] == "skipped: locked by on-call/alice"
    lease = loop["kube"].coordination.read_namespaced_lease(lease_name("web"), ns)
    assert lease.spec.holder_identity == "on-call/alice"  # someone else's lock is left alone


# --- by hand: the per-action playbooks ----------------------------------------------------------------------------

MANUAL = ("restart", "scale", "rollback", "patch", "reroute", "isolate_tenant", "reconcile", "escalate")


@pytest.mark.parametrize("name", MANUAL)
def test_a_manual_action_without_its_inputs_prints_its_usage(name: str, tmp_path: Path) -> None:
    run = start(name, tmp_path)
    assert run.proc.wait(timeout=60) != 0
    output = run.log.read_text()
    usage = re.search(rf"usage: ansible-playbook zerotouch\.selfheal\.{name} (-e [^\n]*)", output)
    assert usage and "-e namespace=<ns>" in usage.group(1), output


def test_a_rollback_by_hand_is_dry_run_then_locked_verified_and_journaled(loop: dict[str, Any], tmp_path: Path) -> None:
    ns = "e2e-manual"
    await_decision(loop, ns, "rollback")  # the bad release serves
    before = loop["kube"].deployment(ns, "web")
    journal = tmp_path / "journal.db"
    target = {"namespace": ns, "deployment": "web"}

    output = start_playbook(loop, "rollback", journal, check_mode=True, **target).wait()
    assert in_diff(output, "+", f'"image": "{image(ns)}"'), output[-6000:]
    assert loop["kube"].deployment(ns, "web")["spec"] == before["spec"]
    assert journaled(journal, ns) == []

    why = "bad release 1.1, rolled back by the on-call engineer"
    start_playbook(loop, "rollback", journal, reason=why, **target).wait()
    assert template(loop, ns)["spec"]["containers"][0]["image"] == image(ns)
    assert healthy(metrics(loop, ns)), metrics(loop, ns)
    (entry,) = journaled(journal, ns)
    assert (entry["action"], entry["rule"]) == ("rollback", "manual")
    assert entry["decision"]["reasons"] == [why]
    (done,) = entry["actions"]
    assert (done["action"], done["changed"], done["outcome"]) == ("rollback", True, "recovered"), done["detail"]
    lease = loop["kube"].coordination.read_namespaced_lease(lease_name("web"), ns)  # taken, then given back
    assert lease.spec.holder_identity is None
