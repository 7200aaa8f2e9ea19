"""The closed loop's figures, in the sandbox with the real ansible-rulebook, Prometheus and Alertmanager.

1. latency: an Alertmanager webhook posted to the remediate rulebook -> the remediation's first write to the
   Kubernetes API (a rollback of a bad release), p50/p99 over LATENCY_ALERTS alerts, one incident at a time. The
   peer-equivalent (bench/peer_receiver.py, run by the same ansible-rulebook with one run_playbook per alert, as the
   native peer is used) is timed from the same webhook to its playbook's first task. Ours includes the intent
   check (Prometheus and cluster gathered, decision journaled) and the lock before its first write. The floor is
   the peer's path with the rollback module as its first task, told what to roll back: what any remediation
   carried out by an Ansible module costs at least. LATENCY_BASELINE=<git revision> also times that revision's
   collection first, in the same sandbox, so a change is measured against the code before it.
2. storm: STORM_ALERTS alerts over STORM_SERVICES broken services in 10 s, sent the way Alertmanager does
   (cumulative group notifications, retried on timeouts and 5xx: bench_intake's sender) to the remediate
   rulebook. Counts remediations per service (at most one each), duplicates, and alerts lost (not accounted for
   by the source's counters: every alert must be accepted once or deduplicated). The policy lets 20 remediations
   run (max_concurrent_remediations); the source's max_running_actions bounds the playbooks in flight
   (MAX_RUNNING_ACTIONS=<n> in the environment sets it for the storm and breadth runs; default: the source's).
4. none: NONE_ALERTS alerts about healthy services posted to the remediate rulebook; each is checked in the
   source's warm process (gather, decide "none", journal) and starts no process. CPU and wall time per check
   p50/p99 from the source's own /metrics (target: under 50 ms of CPU per check with warm clients).
5. breadth: BREADTH_SERVICES services (60) get a bad release at once, one notification names them all: per service,
   the alert -> its rollback API call, how many got it within 60 s, and the most playbooks ansible-rulebook ran at
   once (its action limit is 25: a peak of 25 means the rest queued), and the checks' wall time and how many
   Prometheus rounds their platform view took (shared by the checks running together). SANDBOX_BASELINE=<git
   revision> runs it first in that revision's sandbox too (its Kubernetes stand-in shares the cores with the loop).
3. MTTR: per fault, the whole chain (Prometheus -> Alertmanager -> ansible-rulebook -> remediation -> verify):
   fault injected -> objectives met again, against the detection floor (scrape + rule evaluation + group_wait).

Prints figures only; `.venv/bin/python bench/bench_loop.py [latency] [storm] [mttr] [none] [breadth]` (all but
breadth by default).
Takes 10-15 minutes on 2 cores. Set LATENCY_ALERTS=10 in the environment for a quick look.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "build" / "collections"), str(Path(__file__).resolve().parent)]

import bench_intake  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils import _prom  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import store as _journal  # noqa: E402

from sandbox import cli, client, cluster, payloads  # noqa: E402
from sandbox.rulebook import Rulebook, route_alerts  # noqa: E402
from sandbox.wait import wait_until  # noqa: E402

LATENCY_ALERTS = int(os.environ.get("LATENCY_ALERTS", "50"))
NONE_ALERTS, NONE_SERVICES = int(os.environ.get("NONE_ALERTS", "200")), 5
BREADTH_SERVICES = int(os.environ.get("BREADTH_SERVICES", "60"))
# A git revision (e.g. HEAD~1) whose collection is timed too, before this checkout's, in the same sandbox and run.
BASELINE = os.environ.get("LATENCY_BASELINE")
# A git revision whose sandbox (its Kubernetes stand-in) runs the breadth figure too, first, in the same run: the
# stand-in shares the cores with the loop, so its own cost shows in the loop's figures.
SANDBOX_BASELINE = os.environ.get("SANDBOX_BASELINE")
STORM_ALERTS, STORM_SERVICES = bench_intake.STORM_ALERTS, bench_intake.STORM_SERVICES
# The source's max_running_actions for the storm and breadth runs (unset: the source's default).
MAX_RUNNING = (
    {"max_running_actions": int(os.environ["MAX_RUNNING_ACTIONS"])} if "MAX_RUNNING_ACTIONS" in os.environ else {}
)
WINDOW = "5s"  # the intents' indicator window: short, so a flood dominates the tenant shares when the loop decides
OBJECTIVES = {"availability": 99.0, "max_latency_ms": 300, "max_error_rate": 1.0}
# Verification as a team would tune it for fast-moving services: settle, then the intent must hold for 10 s.
VERIFY = {"verify_settle_seconds": 3, "verify_interval": 2, "verify_window_seconds": 10, "verify_timeout_seconds": 180}
POLICY = {"cooldown_minutes": 10, "max_actions_per_hour": 3, "protected_namespaces": ["kube-system"]}
DETECTION_FLOOR_S = 1 + 1 + 0  # scrape_interval + evaluation_interval + group_wait (sandbox/prom.py)
# MTTR scenarios: (fault, extra fault fields, the action expected to fix it).
SCENARIOS = [
    ("bad-rollout", {}, "rollback"),
    ("traffic-surge", {"factor": 3.0}, "scale_up"),
    ("crashloop", {}, "restart"),
    ("noisy-tenant", {"tenant": "acme", "factor": 6.0}, "isolate_tenant"),
    # Last: a slow node slows every service with pods on it, and the reroute puts them all in cooldown.
    ("slow-node", {"node": "node-b"}, "reroute"),
]


def intent(namespace: str, service: str, **recovery: Any) -> dict[str, Any]:
    return {
        "service": service,
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": service},
        "objectives": OBJECTIVES,
        "recovery": {"min_replicas": 2, "max_replicas": 8, **recovery},
        "indicators": {"window": WINDOW},
    }


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _unix(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def actions_of(journal: Path, namespace: str, service: str) -> list[dict[str, Any]]:
    rows = _journal.query_journal({"journal": str(journal), "namespace": namespace, "service": service})
    return [a for row in rows for a in row["actions"]]


def post(url: str, token: str, body: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()


@contextmanager
def sandbox(tmp: Path, source: Path | None = None) -> Iterator[dict[str, Any]]:
    state = cli.up_detached(tmp / "sandbox", webhook_url=None, source=source)
    try:
        yield state
    finally:
        cli.down(tmp / "sandbox")


def sandbox_at(revision: str, tmp: Path) -> Path:
    """The sandbox as it was at a git revision (its package and the RBAC it seeds), unpacked under ``tmp``."""
    src = tmp / "sandbox-src"
    src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "sandbox", "docs/deploy"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    return src


def deploy(state: dict[str, Any], namespace: str, names: list[str]) -> cluster.Kube:
    kube = cluster.kube_client(state)
    cluster.create_namespace(kube, namespace)
    for name in names:
        kube.apps.create_namespaced_deployment(
            namespace, cluster.deployment_manifest(namespace, name, image=f"bench/{name}:1.0")
        )
    for name in names:
        wait_until(lambda n=name: cluster.rolled_out(kube, namespace, n), 60, f"{namespace}/{name} to roll out")
    return kube


def write_config(
    tmp: Path, intents: list[dict[str, Any]], overrides: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    intents_file, policy_file = tmp / "intents.yml", tmp / "policy.yml"
    intents_file.write_text(yaml.safe_dump({"intents": intents}))
    policy_file.write_text(yaml.safe_dump({**POLICY, "overrides": overrides} if overrides else POLICY))
    return intents_file, policy_file


def breached(state: dict[str, Any], namespace: str, prefix: str) -> int:
    """How many services named prefix* breach the error-rate objective now."""
    match = f'namespace="{namespace}",service=~"{prefix}.*"'
    q = (
        f'100 * sum by (service) (rate(http_requests_total{{{match},code=~"5.."}}[{WINDOW}]))'
        f" / sum by (service) (rate(http_requests_total{{{match}}}[{WINDOW}])) > {OBJECTIVES['max_error_rate']}"
    )
    return len(client.query(state, q))


# --- 1. latency -----------------------------------------------------------------------------------------------


def bad_releases(state: dict[str, Any], namespace: str) -> tuple[cluster.Kube, list[str]]:
    """LATENCY_ALERTS services, each with a bad release that breaches its error-rate objective."""
    names = [f"lat-{i:02d}" for i in range(LATENCY_ALERTS)]
    kube = deploy(state, namespace, names)
    for name in names:
        client.inject(state, "bad-rollout", namespace=namespace, service=name)
    wait_until(lambda: breached(state, namespace, "lat-") == len(names), 120, "every service to breach", interval=1)
    return kube, names


def time_rollback(kube: cluster.Kube, rb: Rulebook, namespace: str, name: str, fingerprint: str) -> float:
    """Seconds from posting the service's alert to the rulebook until its Deployment is rolled back."""
    generation = kube.deployment(namespace, name)["metadata"]["generation"]
    body = payloads.notification(
        payloads.alert("HighErrorRate", fingerprint=fingerprint, namespace=namespace, service=name)
    )
    began = time.time()
    post(rb.url, rb.token or "", body)
    wait_until(
        lambda: kube.deployment(namespace, name)["metadata"]["generation"] > generation,
        120,
        f"the rollback of {namespace}/{name}",
        interval=0.005,
        detail=rb.output,
    )
    return time.time() - began


def latency_ours(state: dict[str, Any], tmp: Path, namespace: str = "bench") -> list[float]:
    kube, names = bad_releases(state, namespace)
    tmp = tmp / namespace
    tmp.mkdir()
    intents_file, policy_file = write_config(tmp, [intent(namespace, n, rollback_on_regression=True) for n in names])
    results = []
    with Rulebook(state, run_dir=tmp / "ours", intents=intents_file, policy=policy_file, extra_vars=VERIFY) as rb:
        for index, name in enumerate(names):
            posted = time.time()
            results.append(time_rollback(kube, rb, namespace, name, f"1a7e{len(namespace):04x}{index:08x}"))
            SPLITS.setdefault(namespace, []).append(split_of(rb.journal, namespace, name, posted, results[-1]))
            # One incident at a time: let the run finish (verified) before the next alert.
            wait_until(
                lambda n=name: any(a["outcome"] != "pending" for a in actions_of(rb.journal, namespace, n)),
                240,
                f"the remediation of {namespace}/{name} to finish",
                interval=0.5,
                detail=rb.output,
            )
    return results


SPLITS: dict[str, list[tuple[float, float, float]]] = {}  # per run of latency_ours: where each alert's time went


def split_of(journal: Path, namespace: str, name: str, posted: float, took: float) -> tuple[float, float, float]:
    """Webhook -> claimed (the check, in the source), -> the playbook's process started (the rule engine and
    ansible-runner), -> the rollback API call (the playbook up to its role's module), in seconds."""
    (listed,) = [a for a in actions_of(journal, namespace, name) if a["action"] == "rollback"]
    with _journal.Journal(str(journal)) as db:
        action = db.action(int(listed["id"])) or listed  # with its run
    claimed = _unix(action["started"]) or posted
    # The playbook's start in clock ticks since boot, placed on the wall clock through /proc/uptime (btime is
    # rounded to the second).
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    run = action.get("run") or {}
    launched = boot + run["start"] / os.sysconf("SC_CLK_TCK") if run.get("start") is not None else claimed
    return claimed - posted, launched - claimed, posted + took - launched


@contextmanager
def collection_at(revision: str, tmp: Path) -> Iterator[str]:
    """The collection as it was at a git revision, built and installed on the side and used by every ansible
    process started meanwhile: a change is timed against the code before it, in the same run."""
    src, dist, installed = tmp / "baseline-src", tmp / "baseline-dist", tmp / "baseline-collections"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    galaxy = str(Path(sys.executable).with_name("ansible-galaxy"))
    subprocess.run(
        [galaxy, "collection", "build", "--output-path", str(dist), str(src)], capture_output=True, check=True
    )
    (tarball,) = dist.glob("*.tar.gz")
    subprocess.run(
        [galaxy, "collection", "install", "-p", str(installed), str(tarball)], capture_output=True, check=True
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision], capture_output=True, text=True, check=True
    ).stdout.strip()
    before = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(installed)
    try:
        yield commit
    finally:
        if before is None:
            del os.environ["ANSIBLE_COLLECTIONS_PATH"]
        else:
            os.environ["ANSIBLE_COLLECTIONS_PATH"] = before


PEER_PLAYBOOK = """- name: The peer's remediation playbook
  hosts: localhost
  gather_facts: false
  tasks:
    - name: First task
      ansible.builtin.shell: date +%s.%N >> {{ stamps }}
      changed_when: true
"""


# The floor of any remediation Ansible carries out: the peer's path with the rollback module as the first task,
# told what to roll back (nothing checked, no lock, no journal). Data from the bench's own alerts only.
FLOOR_PLAYBOOK = """- name: A rollback decided in advance, as the first task
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Roll the Deployment back
      zerotouch.selfheal.workload_rollback:
        namespace: "{{ ansible_eda.event.alert.labels.namespace }}"
        name: "{{ ansible_eda.event.alert.labels.service }}"
"""


def latency_floor(state: dict[str, Any], tmp: Path, namespace: str = "bench-floor") -> list[float]:
    kube, names = bad_releases(state, namespace)
    results = []
    with peer_rulebook(state, tmp / "floor", FLOOR_PLAYBOOK, {}) as rb:
        for index, name in enumerate(names):
            results.append(time_rollback(kube, rb, namespace, name, f"f100{index:012x}"))
            time.sleep(1.5)  # let ansible-runner finish before the next one
    return results


def peer_rulebook(state: dict[str, Any], work: Path, playbook_text: str, extra_vars: dict[str, Any]) -> Rulebook:
    """ansible-rulebook with the peer-equivalent source and one run_playbook per alert."""
    (work / "playbook").mkdir(parents=True)
    playbook = work / "playbook" / "remediate.yml"
    playbook.write_text(playbook_text)
    rulebook = work / "peer.yml"
    rules = [
        {
            "name": "Peer-equivalent: one playbook per alert",
            "hosts": "all",
            "sources": [{"peer_receiver": {"host": "127.0.0.1", "port": "{{ port }}"}}],
            "rules": [
                {
                    "name": "Remediate",
                    "condition": "event.alert is defined",
                    "action": {"run_playbook": {"name": str(playbook), "extra_vars": extra_vars}},
                }
            ],
        }
    ]
    rulebook.write_text(yaml.safe_dump(rules, sort_keys=False))
    return Rulebook(
        state,
        run_dir=work,
        intents=work / "playbook" / "remediate.yml",  # unused by the peer's rules
        rulebook=str(rulebook),
        source_dir=ROOT / "bench",
        health_path=None,
    )


def latency_peer(state: dict[str, Any], tmp: Path) -> list[float]:
    work = tmp / "peer"
    stamps = tmp / "peer-stamps.txt"
    stamps.touch()
    results = []
    with peer_rulebook(state, work, PEER_PLAYBOOK, {"stamps": str(stamps)}) as rb:
        for index in range(LATENCY_ALERTS):
            lines = len(stamps.read_text().splitlines())
            body = payloads.notification(
                payloads.alert(
                    "HighErrorRate", fingerprint=f"9ee2{index:012x}", namespace="bench", service=f"lat-{index:02d}"
                )
            )
            began = time.time()
            post(rb.url, "", body)
            wait_until(
                lambda seen=lines: len(stamps.read_text().splitlines()) > seen,
                120,
                "the peer's first task",
                interval=0.005,
                detail=rb.output,
            )
            results.append(float(stamps.read_text().splitlines()[-1]) - began)
            time.sleep(1.5)  # let ansible-runner finish before the next one, as ours does
    return results


# --- 2. storm -------------------------------------------------------------------------------------------------


def storm(state: dict[str, Any], tmp: Path) -> dict[str, Any]:
    names = [f"svc-{i:02d}" for i in range(STORM_SERVICES)]  # bench_intake's alert() names them so, in shop
    deploy(state, "shop", names)
    intents_file, policy_file = write_config(tmp, [intent("shop", n, rollback_on_regression=True) for n in names])
    # One remediation per broken service may run: the limit under test is the loop's, not the engine's (whose
    # default of 5 escalates the rest with rule concurrency-limit).
    policy_file.write_text(yaml.safe_dump({**POLICY, "max_concurrent_remediations": STORM_SERVICES}))
    for name in names:
        client.inject(state, "bad-rollout", namespace="shop", service=name)
    wait_until(lambda: breached(state, "shop", "svc-") == len(names), 120, "every service to breach", interval=1)
    rb = Rulebook(
        state,
        run_dir=tmp / "storm",
        intents=intents_file,
        policy=policy_file,
        extra_vars={**VERIFY, **MAX_RUNNING},
        token=bench_intake.TOKEN,
    )
    with rb, TreeRss(rb.pid) as rss:
        sent, elapsed = asyncio.run(bench_intake.storm(rb.url))
        counters = source_counters(rb.url)
        done = lambda: all(  # noqa: E731
            any(a["outcome"] != "pending" for a in actions_of(rb.journal, "shop", n)) for n in names
        )
        began = time.time()
        wait_until(done, 900, "every service's remediation to finish", interval=2, detail=rb.output)
        settled = time.time() - began
        time.sleep(5)  # anything still queued behind would show up now
        loop_metrics = {q: _metric(_metrics_url(rb), "check_seconds", q) for q in ("0.5", "0.99")}
        phases = phases_line(_metrics_url(rb))
        ran = {n: [a for a in actions_of(rb.journal, "shop", n) if a["outcome"] != "skipped"] for n in names}
        # An escalation (the engine's concurrency limit, or one that did not recover) changes nothing: counted apart.
        per_service = {n: [a for a in v if a["action"] != "escalate"] for n, v in ran.items()}
        escalations = sum(len(v) - len(per_service[n]) for n, v in ran.items())
        # When the last change was applied (the playbooks' queue drained), apart from its verification's end.
        with _journal.Journal(str(rb.journal)) as db:
            stamps = [(db.action(int(a["id"])) or {}).get("applied") for v in per_service.values() for a in v]
        applied = [t for t in (_unix(s) for s in stamps) if t is not None]
    return {
        "sent_s": elapsed,
        "requests": len(sent.latencies),
        "timeouts": sent.timeouts,
        "refused": sent.refused,
        "counters": counters,
        "remediations": sum(len(v) for v in per_service.values()),
        "escalations": escalations,
        "duplicates": sum(max(0, len(v) - 1) for v in per_service.values()),
        "recovered": sum(any(a["outcome"] == "recovered" for a in v) for v in per_service.values()),
        "drain_s": settled,
        "applied_s": max(applied) - began if applied else float("nan"),
        "rss_mb": rss.peak / 2**20,
        "peak_playbooks": rss.playbooks,
        "check_s": loop_metrics,
        "phases": phases,
    }


class TreeRss:
    """The peak resident memory of a process and all its descendants: ansible-rulebook, its JVM and every
    playbook it runs (ansible-runner starts those in sessions of their own, so a process group would miss them)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.playbooks, self._stop = pid, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.2):
            children: dict[int, list[int]] = {}
            rss: dict[int, int] = {}
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # the fourth field of stat
                    pid = int(stat.parent.name)
                    rss[pid] = int((stat.parent / "statm").read_text().split()[1]) * page
                except (OSError, IndexError, ValueError):
                    continue  # the process ended while we looked
                children.setdefault(ppid, []).append(pid)
            tree, todo = 0, [self.pid]
            while todo:
                pid = todo.pop()
                tree += rss.get(pid, 0)
                todo.extend(children.get(pid, []))
            self.peak = max(self.peak, tree)
            self.playbooks = max(self.playbooks, playbooks_under(self.pid))


def source_counters(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = {}
    for name in ("alerts_received_total", "alerts_deduplicated_total", 'events_accepted_total{kind="alert"}'):
        match = re.search(r"^\S*" + re.escape(name) + r"\s+(\S+)$", text, re.M)
        found[name.split("{")[0]] = float(match.group(1)) if match else float("nan")
    return found


# --- 5. breadth: many services break at once ------------------------------------------------------------------


def playbooks_under(pid: int) -> int:
    """How many ansible-playbook processes run under ``pid`` now (ansible-runner's sessions included)."""
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs

    procs = runs.processes()
    under, grew = {pid}, True
    while grew:
        grew = False
        for p in procs:
            if p.ppid in under and p.pid not in under:
                under.add(p.pid)
                grew = True
    playbook = {p.pid for p in procs if p.pid in under and runs.is_playbook(p)}
    return sum(1 for p in procs if p.pid in playbook and p.ppid not in playbook)  # not its forked workers


def breadth(state: dict[str, Any], tmp: Path, namespace: str = "bench-wide") -> dict[str, Any]:
    names = [f"wide-{i:02d}" for i in range(BREADTH_SERVICES)]
    kube = deploy(state, namespace, names)
    tmp = tmp / namespace
    tmp.mkdir()
    intents_file, policy_file = write_config(tmp, [intent(namespace, n, rollback_on_regression=True) for n in names])
    # As many remediations at once as services: the limit under test is ansible-rulebook's, not the policy's.
    policy_file.write_text(yaml.safe_dump({**POLICY, "max_concurrent_remediations": BREADTH_SERVICES}))
    for name in names:
        client.inject(state, "bad-rollout", namespace=namespace, service=name)
    wait_until(lambda: breached(state, namespace, "wide-") == len(names), 180, "every service to breach", interval=1)
    before = {n: kube.deployment(namespace, n)["metadata"]["generation"] for n in names}
    extra = {**VERIFY, **MAX_RUNNING}
    with Rulebook(state, run_dir=tmp / "rb", intents=intents_file, policy=policy_file, extra_vars=extra) as rb:
        body = payloads.notification(
            *(
                payloads.alert("HighErrorRate", fingerprint=f"b0{i:014x}", namespace=namespace, service=n)
                for i, n in enumerate(names)
            )
        )
        began = time.time()
        post(rb.url, rb.token or "", body)
        acted: dict[str, float] = {}
        peak = 0
        while len(acted) < len(names) and time.time() - began < 300:
            listed = kube.apps.list_namespaced_deployment(namespace).to_dict()["items"]
            for item in listed:
                name = item["metadata"]["name"]
                if name in before and name not in acted and item["metadata"]["generation"] > before[name]:
                    acted[name] = time.time() - began
            assert rb.pid is not None
            peak = max(peak, playbooks_under(rb.pid))
            time.sleep(0.2)
        url = _metrics_url(rb)
        figures = {q: _metric(url, "check_seconds", q) for q in ("0.5", "0.99")}
        phases = phases_line(url)
        rounds = _metric(url, "platform_rounds_total", None)  # nan before the shared platform view
        checks = sum(_metric(url, "checks_total", d) for d in ("none", "cooldown", "locked", "escalate", "act"))
    times = sorted(acted.values())
    return {
        "acted": len(acted),
        "within_60": sum(1 for t in times if t <= 60),
        "p50": percentile(times, 50) if times else float("nan"),
        "max": max(times) if times else float("nan"),
        "peak_playbooks": peak,
        "check_s": figures,
        "phases": phases,
        "platform_rounds": rounds,
        "checks": checks,
    }


def _metrics_url(rb: Rulebook) -> str:
    return rb.url.rsplit("/", 1)[0] + "/metrics"


# --- 4. none: a check that concludes nothing costs no process -------------------------------------------------


def none_checks(state: dict[str, Any], tmp: Path, namespace: str = "bench-none") -> dict[str, float]:
    """Post NONE_ALERTS alerts about healthy services; return the source's per-check CPU and wall quantiles."""
    names = [f"calm-{i:02d}" for i in range(NONE_SERVICES)]
    deploy(state, namespace, names)
    served = f"count(sum by (service) (rate(http_requests_total{{namespace='{namespace}',code='200'}}[{WINDOW}])) > 0)"
    wait_until(lambda: (client.scalar(state, served) or 0) >= len(names), 90, "a window of metrics", interval=1)
    tmp = tmp / namespace
    tmp.mkdir()
    intents_file, policy_file = write_config(tmp, [intent(namespace, n) for n in names])
    extra = {**VERIFY, "recheck_settle_seconds": 0}  # every alert is checked, none is coalesced
    with Rulebook(state, run_dir=tmp / "ours", intents=intents_file, policy=policy_file, extra_vars=extra) as rb:
        metrics_url = rb.url.rsplit("/", 1)[0] + "/metrics"
        for index in range(NONE_ALERTS):
            name = names[index % len(names)]
            alert = payloads.alert(
                "HighCPUUtilization", fingerprint=f"0n0e{index:012x}", namespace=namespace, service=name
            )
            post(rb.url, rb.token or "", payloads.notification(alert))
            if index % len(names) == len(names) - 1:  # one round per service at a time: each is checked
                wait_until(lambda i=index: _metric(metrics_url, "checks_total", "none") >= i + 1, 60, "the checks")
        figures = {
            f"{what}_{q}": _metric(metrics_url, f"{what}_seconds", q) * 1000
            for what in ("check_cpu", "check")
            for q in ("0.5", "0.99")
        }
        figures["checks"] = _metric(metrics_url, "checks_total", "none")
        figures["events"] = _metric(metrics_url, "events_total", None)
    return figures


def _metric(url: str, name: str, label: str | None) -> float:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith("#") or f"_loop_{name}" not in line.split(" ")[0].split("{")[0]:
            continue
        if label is None or f'="{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def phases_line(url: str) -> str:
    """The check's wall time by phase, p50 / p99 in seconds, from the source's /metrics."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    seen: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if "_loop_check_phase_seconds{" not in name:
            continue
        labels = dict(part.split("=", 1) for part in name.split("{", 1)[1].rstrip("}").split(","))
        seen.setdefault(labels["phase"].strip('"'), {})[labels["quantile"].strip('"')] = float(value)
    return "by phase, p50/p99 s: " + ", ".join(f"{k} {v['0.5']:.2f}/{v['0.99']:.2f}" for k, v in seen.items())


# --- 3. MTTR --------------------------------------------------------------------------------------------------


def mttr(state: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    names = [f"mttr-{fault}" for fault, _fields, _action in SCENARIOS]
    deploy(state, "mttr", names)
    recovery = {
        "rollback_on_regression": True,
        "allow_autoscale": True,
        "allow_restart": True,
        "allow_reroute": True,
        "allow_tenant_isolation": True,
    }
    # The Deployments were created a minute before their faults: the engine would rightly blame a crash loop on
    # that "recent change" and escalate. In a cluster they would be old news, which this override says.
    old_news = {"services": {"mttr/mttr-crashloop": {"recent_change_minutes": 0}}}
    intents_file, policy_file = write_config(tmp, [intent("mttr", n, **recovery) for n in names], old_news)
    rows = []
    with Rulebook(state, run_dir=tmp / "mttr", intents=intents_file, policy=policy_file, extra_vars=VERIFY) as rb:
        route_alerts(state, rb.url, rb.token)
        for (fault, fields, expected), name in zip(SCENARIOS, names, strict=True):
            queries = _prom.indicator_queries("mttr", name, name, WINDOW)
            met = objectives_met(state, queries)
            wait_until(lambda m=met: m() is True, 60, f"mttr/{name} to be healthy", interval=1)
            injected = client.inject(state, fault, namespace="mttr", service=name, **fields)
            began = time.time()
            wait_until(lambda m=met: m() is False, 120, f"mttr/{name} to breach", interval=0.5)
            breach = time.time()
            try:
                # Recovered means: the loop acted (a run that found the target locked does not count) and the
                # objectives hold again, whatever the verification still has to watch.
                wait_until(
                    lambda n=name: [a for a in actions_of(rb.journal, "mttr", n) if a["outcome"] != "skipped"],
                    300,
                    f"the remediation of mttr/{name}",
                    interval=1,
                    detail=rb.output,
                )
                wait_until(lambda m=met: m() is True, 300, f"mttr/{name} to meet its objectives", interval=0.5)
                restored = time.time()
            except TimeoutError as exc:
                rows.append({"fault": fault, "expected": expected, "error": str(exc).splitlines()[0]})
                continue
            finally:
                client.clear(state, injected["id"])
            decisions = _journal.query_journal({"journal": str(rb.journal), "namespace": "mttr", "service": name})
            acted = [d for d in decisions if d["action"] != "none"]
            first = min(acted, key=lambda d: d["id"]) if acted else None
            action = first["actions"][0] if first and first["actions"] else {}
            rows.append(
                {
                    "fault": fault,
                    "expected": expected,
                    "action": first["action"] if first else "none",
                    "breach_s": breach - began,
                    "decided_s": (_unix(first["time"]) or began) - began if first else None,
                    "acted_s": (_unix(action.get("started")) or began) - began if action else None,
                    "mttr_s": restored - began,
                    "outcome": action.get("outcome"),
                    # What the loop concluded before it acted, when it did not act at once: the runs that found
                    # nothing to do (and why), in order.
                    "before": [
                        f"{(_unix(d['time']) or began) - began:.1f} s: none, {d['rule']}: "
                        f"{((d.get('decision') or {}).get('reasons') or ['?'])[-1]}"
                        for d in sorted(decisions, key=lambda d: d["id"])
                        if d["action"] == "none" and first and d["id"] < first["id"]
                    ],
                }
            )
    return rows


def objectives_met(state: dict[str, Any], queries: dict[str, str]) -> Callable[[], bool | None]:
    def probe() -> bool | None:
        values = {k: client.scalar(state, queries[k]) for k in ("latency_p99_ms", "error_rate", "availability")}
        if None in values.values():
            return None
        return bool(
            values["latency_p99_ms"] <= OBJECTIVES["max_latency_ms"]  # type: ignore[operator]
            and values["error_rate"] <= OBJECTIVES["max_error_rate"]  # type: ignore[operator]
            and values["availability"] >= OBJECTIVES["availability"]  # type: ignore[operator]
        )

    return probe


# --- figures --------------------------------------------------------------------------------------------------


def print_breadth(b: dict[str, Any], before: dict[str, Any] | None = None) -> None:
    def ratio(key: str) -> str:
        return f" ({b[key] / before[key]:.2f}x)" if before and before[key] else ""

    print(
        f"rolled back: {b['acted']}/{BREADTH_SERVICES}, within 60 s of the alert: {b['within_60']}; "
        f"alert -> rollback p50 {b['p50']:.1f} s{ratio('p50')}, max {b['max']:.1f} s{ratio('max')}; "
        f"at most {b['peak_playbooks']} playbooks at once (ansible-rulebook's limit: 25)"
    )
    print(
        f"checks: {b['checks']:.0f}, wall p50 {b['check_s']['0.5']:.2f} s, p99 {b['check_s']['0.99']:.2f} s; "
        f"platform rounds: {b['platform_rounds']:.0f} (one per check before they were shared)\n{b['phases']}\n"
    )


def main(argv: list[str]) -> int:
    parts = argv or ["latency", "storm", "mttr", "none"]
    with tempfile.TemporaryDirectory(prefix="selfheal-bench-") as tmpdir:
        tmp = Path(tmpdir)
        old_breadth = None
        if "breadth" in parts and SANDBOX_BASELINE:
            base = tmp / "sandbox-baseline"
            base.mkdir()
            print(f"5. breadth in the sandbox @{SANDBOX_BASELINE}: {BREADTH_SERVICES} services break at once")
            with sandbox(base, source=sandbox_at(SANDBOX_BASELINE, base)) as state:
                old_breadth = breadth(state, base)
            print_breadth(old_breadth)
        with sandbox(tmp) as state:
            if "latency" in parts:
                print(f"1. latency over {LATENCY_ALERTS} alerts, one incident at a time (webhook posted directly)")
                rows = []
                if BASELINE:
                    with collection_at(BASELINE, tmp) as commit:
                        base = latency_ours(state, tmp, "bench-base")
                    rows.append((f"ours @{commit}: webhook -> rollback", base))
                ours = latency_ours(state, tmp)
                peer = latency_peer(state, tmp)
                floor = latency_floor(state, tmp)
                rows += [
                    ("ours: webhook -> rollback API call", ours),
                    ("peer: webhook -> first task", peer),
                    ("floor: webhook -> decided rollback", floor),
                ]
                print(f"{'':38}{'p50 s':>8}{'p99 s':>8}{'max s':>8}")
                for label, values in rows:
                    print(f"{label:38}{percentile(values, 50):8.2f}{percentile(values, 99):8.2f}{max(values):8.2f}")
                if BASELINE:
                    ratio = percentile(ours, 50) / percentile(base, 50)
                    print(f"p50 ours / ours @{commit}: {ratio:.2f}")
                ratio = percentile(ours, 50) / percentile(peer, 50)
                print(f"p50 ours / peer: {ratio:.2f} (target <= 1; ours includes the intent check and the lock)")
                ratio = percentile(ours, 50) / percentile(floor, 50)
                print(f"p50 ours / floor: {ratio:.2f} (target <= 1.15)")
                for where, splits in SPLITS.items():
                    parts_p50 = [percentile([row[i] for row in splits], 50) for i in range(3)]
                    print(
                        f"{where}, p50 s: webhook -> claimed (the check) {parts_p50[0]:.2f}, -> playbook started "
                        f"(rule engine, ansible-runner) {parts_p50[1]:.2f}, -> rollback (the playbook) "
                        f"{parts_p50[2]:.2f}"
                    )
                ratio = percentile(floor, 50) / percentile(peer, 50)
                print(f"p50 floor / peer: {ratio:.2f} (the rollback module as first task, decided in advance)\n")
            if "storm" in parts:
                print(
                    f"2. storm: {STORM_ALERTS} alerts, {STORM_SERVICES} broken services, 10 s, through ansible-rulebook"
                )
                r = storm(state, tmp)
                c = r["counters"]
                lost = STORM_ALERTS - c["events_accepted_total"]
                print(
                    f"sender: {r['requests']} requests in {r['sent_s']:.1f} s, "
                    f"{r['timeouts']} timeouts, {r['refused']} 5xx"
                )
                print(
                    f"source: {c['alerts_received_total']:.0f} alerts received, "
                    f"{c['events_accepted_total']:.0f} accepted once, "
                    f"{c['alerts_deduplicated_total']:.0f} re-sends deduplicated; lost: {lost:.0f}"
                )
                print(
                    f"remediations: {r['remediations']} for {STORM_SERVICES} services (duplicates: {r['duplicates']}, "
                    f"escalations besides: {r['escalations']}), "
                    f"{r['recovered']} verified recovered; last change applied {r['applied_s']:.0f} s and every "
                    f"verification ended {r['drain_s']:.0f} s after the storm; "
                    f"RSS peak {r['rss_mb']:.0f} MiB (ansible-rulebook, its JVM and its playbooks together); "
                    f"at most {r['peak_playbooks']} playbooks at once; check wall p50 {r['check_s']['0.5']:.2f} s, "
                    f"p99 {r['check_s']['0.99']:.2f} s; {r['phases']}\n"
                )
            if "none" in parts:
                print(f"4. none: {NONE_ALERTS} alerts about {NONE_SERVICES} healthy services, checked in the source")
                f = none_checks(state, tmp)
                print(
                    f"checks 'none': {f['checks']:.0f}, playbooks started: {f['events']:.0f}; per check: CPU p50 "
                    f"{f['check_cpu_0.5']:.1f} ms, p99 {f['check_cpu_0.99']:.1f} ms (target < 50 ms); wall p50 "
                    f"{f['check_0.5']:.1f} ms, p99 {f['check_0.99']:.1f} ms\n"
                )
            if "breadth" in parts:
                print(f"5. breadth: {BREADTH_SERVICES} services break at once, one notification")
                print_breadth(breadth(state, tmp), old_breadth)
            if "mttr" in parts:
                print(f"3. MTTR, Prometheus -> Alertmanager -> ansible-rulebook; detection floor {DETECTION_FLOOR_S} s")
                print(f"{'fault':15}{'action':16}{'breach s':>9}{'decided s':>10}{'acted s':>9}{'MTTR s':>8}  outcome")
                for row in mttr(state, tmp):
                    if "error" in row:
                        print(f"{row['fault']:15}{row['expected']:16}  failed: {row['error']}")
                        continue
                    print(
                        f"{row['fault']:15}{row['action']:16}{row['breach_s']:9.1f}{row['decided_s'] or 0:10.1f}"
                        f"{row['acted_s'] or 0:9.1f}{row['mttr_s']:8.1f}  {row['outcome']}"
                    )
                    for line in row["before"]:
                        print(f"{'':31}before it: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
