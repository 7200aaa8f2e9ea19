"""The sandbox's Kubernetes stand-in under the breadth load: prints figures, asserts nothing.

    .venv/bin/python bench/bench_standin.py [--services N] [--against REV]

The loop's benchmarks share 2 cores with the stand-in, so what the stand-in spends on itself is taken from the
loop's checks. This measures it alone: N Deployments of 3 replicas in one namespace, then

- idle: the stand-in's CPU seconds per wall second with nothing asked of it;
- reads: the latency of a check's cluster reads (get the Deployment, list its ReplicaSets and its pods by label
  selector, list the nodes), p50 and p99 over rounds of every Deployment;
- rollout: the same reads while every Deployment rolls out a new image at once, as when N services break
  together, and the stand-in's CPU per second meanwhile.

``--against REV`` runs the stand-in of git revision REV in the same run, alternately with this one, and prints
the ratios (the client and the load are this checkout's, only the server differs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import cluster  # noqa: E402
from sandbox.wait import wait_until  # noqa: E402

NAMESPACE = "bench-standin"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def extract(rev: str, into: Path) -> Path:
    """The sandbox package of ``rev``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "sandbox"], check=True, capture_output=True)
    (into / "sandbox.tar").write_bytes(archive.stdout)
    with tarfile.open(into / "sandbox.tar") as tar:
        tar.extractall(into, filter="data")
    return into


def start(tree: Path, run: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    kubeconfig = run / "kubeconfig"
    seed = ROOT / "sandbox" / "config" / "cluster.yml"  # the nodes
    command = [sys.executable, "-m", "sandbox.kube", "--kubeconfig", str(kubeconfig), "--ready-delay", "0.3"]
    if seed.exists():
        command += ["--seed", str(seed)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    log = (run / "standin.log").open("wb")
    proc = subprocess.Popen(command, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_until(kubeconfig.exists, 30, "the stand-in's kubeconfig", interval=0.1)
    return proc, {"kubeconfig": str(kubeconfig)}


def reads(kube: cluster.Kube, names: list[str]) -> list[float]:
    """One check's cluster reads per Deployment, timed."""
    took = []
    for name in names:
        began = time.perf_counter()
        kube.apps.read_namespaced_deployment(name, NAMESPACE)
        kube.apps.list_namespaced_replica_set(NAMESPACE, label_selector=f"app={name}")
        kube.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}")
        kube.core.list_node()
        took.append(time.perf_counter() - began)
    return took


def side(tree: Path, services: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-standin-") as tmp:
        proc, state = start(tree, Path(tmp))
        try:
            kube = cluster.kube_client(state)
            cluster.create_namespace(kube, NAMESPACE)
            names = [f"svc-{i:02d}" for i in range(services)]
            for name in names:
                manifest = cluster.deployment_manifest(NAMESPACE, name, replicas=3, image=f"bench/{name}:1.0")
                kube.apps.create_namespaced_deployment(NAMESPACE, manifest)
            for name in names:
                wait_until(lambda n=name: cluster.rolled_out(kube, NAMESPACE, n), 120, f"{name} to roll out")
            time.sleep(2)
            cpu, wall = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(10)
            idle = (cpu_seconds(proc.pid) - cpu) / (time.monotonic() - wall)
            quiet = reads(kube, names) + reads(kube, names)
            cpu, wall = cpu_seconds(proc.pid), time.monotonic()
            for name in names:
                image = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": f"bench/{name}:2"}]}}}}
                kube.apps.patch_namespaced_deployment(name, NAMESPACE, image)
            busy = reads(kube, names)
            for name in names:
                wait_until(lambda n=name: cluster.rolled_out(kube, NAMESPACE, n), 300, f"{name} to roll out again")
            rolled = time.monotonic() - wall
            rollout_cpu = (cpu_seconds(proc.pid) - cpu) / rolled
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "idle_cpu": idle,
        "reads_p50": statistics.median(quiet) * 1000,
        "reads_p99": sorted(quiet)[int(len(quiet) * 0.99) - 1] * 1000,
        "busy_p50": statistics.median(busy) * 1000,
        "busy_p99": sorted(busy)[int(len(busy) * 0.99) - 1] * 1000,
        "rollout_cpu": rollout_cpu,
        "rollout_s": rolled,
    }


FIGURES = (
    ("idle_cpu", "idle CPU (s per s)", "{:.3f}"),
    ("reads_p50", "check's reads p50 (ms)", "{:.1f}"),
    ("reads_p99", "check's reads p99 (ms)", "{:.1f}"),
    ("busy_p50", "reads during the rollout p50 (ms)", "{:.1f}"),
    ("busy_p99", "reads during the rollout p99 (ms)", "{:.1f}"),
    ("rollout_cpu", "CPU during the rollout (s per s)", "{:.2f}"),
    ("rollout_s", "every Deployment rolled out (s)", "{:.1f}"),
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=60)
    parser.add_argument("--against", metavar="REV", help="also measure the stand-in of this git revision")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-standin-rev-") as tmp:
        trees = {"this": ROOT}
        if args.against:
            trees = {args.against: extract(args.against, Path(tmp)), "this": ROOT}
        results = {label: side(tree, args.services) for label, tree in trees.items()}
    print(f"stand-in with {args.services} Deployments of 3 replicas in one namespace")
    print(f"{'':36}" + "".join(f"{label:>14}" for label in results) + ("   ratio" if len(results) == 2 else ""))
    for key, title, fmt in FIGURES:
        values = [r[key] for r in results.values()]
        line = f"{title:36}" + "".join(f"{fmt.format(v):>14}" for v in values)
        if len(values) == 2 and values[0]:
            line += f"   {values[1] / values[0]:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
