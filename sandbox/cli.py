"""`python -m sandbox`: start, stop and drive the sandbox.

`up` runs a supervisor in the foreground (or detached with --detach) that owns every sandbox process:
the Kubernetes stand-in, the workload simulator, the webhook recorder, Prometheus, Alertmanager and PostgreSQL (for
the journal). It writes their addresses to <run-dir>/sandbox.json and removes that file when it stops: the
journal's DSN (``journal_dsn``, without password) and the libpq password file that goes with it
(``journal_passfile``, for ``PGPASSFILE``). Children die with the
supervisor (PR_SET_PDEATHSIG), so nothing is left behind on SIGTERM, Ctrl-C or even SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sandbox import client, pki, postgres, procs, prom
from sandbox.kube.kubeconfig import SHIPPED_RBAC
from sandbox.simulator import FAULT_KINDS, Simulator
from sandbox.webhook import WebhookRecorder

CLUSTER = Path(__file__).with_name("config") / "cluster.yml"
DEFAULT_RUN_DIR = Path(__file__).resolve().parent.parent / "run"


def _start_kube(run_dir: Path) -> tuple[subprocess.Popen, str, Path, Path]:
    kubeconfig, restricted = run_dir / "kubeconfig", run_dir / "kubeconfig-restricted"
    log = run_dir / "logs" / "kube.log"
    # The log is appended to across runs in the same directory: only this run's lines name its address.
    offset = log.stat().st_size if log.exists() else 0
    proc = procs.spawn(
        [
            *(sys.executable, "-m", "sandbox.kube", "--port", "0", "--kubeconfig", str(kubeconfig)),
            *("--restricted-kubeconfig", str(restricted), "--audit-log", str(run_dir / "logs" / "kube-audit.jsonl")),
            *("--seed", str(CLUSTER), str(SHIPPED_RBAC)),
        ],
        log,
        cwd=Path(__file__).resolve().parent.parent,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Kubernetes stand-in exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        for line in log.read_bytes()[offset:].decode(errors="replace").splitlines():
            if "listening on " in line:
                url = line.rsplit("listening on ", 1)[1].strip()
                procs.wait_http(f"{url}/version", timeout=10, proc=proc, log=log)
                return proc, url, kubeconfig, restricted
        time.sleep(0.05)
    raise TimeoutError("the Kubernetes stand-in did not report its address within 30s")


async def supervise(run_dir: Path, webhook_url: str | None) -> None:
    """Start everything, write the state file, and run until SIGTERM/SIGINT."""
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file = client.state_path(run_dir)
    state_file.unlink(missing_ok=True)
    children: list[subprocess.Popen] = []
    sim: Simulator | None = None
    recorder: WebhookRecorder | None = None
    pg: postgres.Postgres | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        kube, kube_url, kubeconfig, kubeconfig_restricted = _start_kube(run_dir)
        children.append(kube)
        sim = Simulator(kube_url)
        sim_url = await sim.start()
        if webhook_url is None:
            recorder = WebhookRecorder(run_dir / "webhook.jsonl")
            webhook_url = await recorder.start() + "/alerts"
        am = await asyncio.to_thread(prom.start_alertmanager, run_dir, webhook_url)
        children.append(am.proc)
        pm = await asyncio.to_thread(prom.start_prometheus, run_dir, sim_url.removeprefix("http://"), am.url)
        children.append(pm.proc)
        pg = await asyncio.to_thread(postgres.start_postgres, run_dir)
        children.append(pg.proc)
        certificates = await asyncio.to_thread(pki.generate, run_dir / "pki")
        state: dict[str, Any] = {
            "pid": os.getpid(),
            "started_at": time.time(),
            "run_dir": str(run_dir),
            "kube_url": kube_url,
            "kubeconfig": str(kubeconfig),
            # the loop's ServiceAccount, restricted to what docs/deploy/rbac.yml grants it
            "kubeconfig_restricted": str(kubeconfig_restricted),
            "kube_audit_log": str(run_dir / "logs" / "kube-audit.jsonl"),  # what RBAC decided for it, JSON lines
            "simulator_url": sim_url,
            "prometheus_url": pm.url,
            "alertmanager_url": am.url,
            "webhook_url": webhook_url,
            "webhook_log": str(run_dir / "webhook.jsonl") if recorder else None,
            "journal_dsn": pg.dsn,
            "journal_passfile": str(pg.passfile),
            "postgres_dir": str(pg.base),
            # a throwaway CA with server and client certificates, to try the receiver's TLS and mTLS options
            "pki": certificates.as_dict(),
            "children": [c.pid for c in children],
        }
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(state_file)
        print(f"sandbox up: kube {kube_url}, prometheus {pm.url}, alertmanager {am.url}, journal {pg.dsn}", flush=True)
        while not stop.is_set():
            dead = [c for c in children if c.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].args[0]} exited with {dead[0].returncode}; see {run_dir / 'logs'}")
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
    finally:
        state_file.unlink(missing_ok=True)
        if sim:
            await sim.stop()
        if recorder:
            await recorder.stop()
        if pg:
            await asyncio.to_thread(pg.stop)
        procs.stop(children)
        print("sandbox down", flush=True)


def up_detached(
    run_dir: Path, webhook_url: str | None, timeout: float = 60, source: Path | None = None
) -> dict[str, Any]:
    """Start the supervisor in its own session and wait until it has written its state file (``source``: the
    checkout whose sandbox to run, this one by default; a benchmark runs an older one beside it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    existing = client.load_state(run_dir, missing_ok=True)
    if existing and procs.pid_alive(existing["pid"]):
        return existing
    argv = [sys.executable, "-m", "sandbox", "up", "--run-dir", str(run_dir)]
    if webhook_url:
        argv += ["--webhook-url", webhook_url]
    log = run_dir / "logs" / "supervisor.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=source or Path(__file__).resolve().parent.parent,  # python -m finds the sandbox package there
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.load_state(run_dir, missing_ok=True)
        if state and state["pid"] == proc.pid:
            return state
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox failed to start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    proc.terminate()
    raise TimeoutError(f"the sandbox did not start within {timeout:.0f}s; see {log}")


def down(run_dir: Path, timeout: float = 15) -> bool:
    state = client.load_state(run_dir, missing_ok=True)
    if not state:
        return False
    pid = state["pid"]
    if procs.pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while procs.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    for child in [pid, *state.get("children", [])]:
        if procs.pid_alive(child):
            os.kill(child, signal.SIGKILL)
    client.state_path(run_dir).unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="where state, configs and logs go")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the sandbox")
    p_up.add_argument("--detach", action="store_true", help="run in the background and return once ready")
    p_up.add_argument("--webhook-url", help="where Alertmanager sends alerts (default: the built-in recorder)")
    sub.add_parser("down", help="stop the sandbox")
    sub.add_parser("status", help="print the sandbox state file")
    p_inj = sub.add_parser("inject", help="inject a fault")
    p_inj.add_argument("fault", choices=FAULT_KINDS)
    p_inj.add_argument("--namespace", default="shop")
    p_inj.add_argument("--service", default="checkout")
    for opt in ("--node", "--tenant", "--dependency", "--image"):
        p_inj.add_argument(opt)
    p_inj.add_argument("--factor", type=float)
    p_clear = sub.add_parser("clear", help="clear one fault by id, or all")
    p_clear.add_argument("id", nargs="?")
    p_demo = sub.add_parser("demo", help="run the self-healing demo")
    p_demo.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    # The subcommands accept --run-dir after their name too (make passes it that way).
    for p in (p_up, p_inj, p_clear, p_demo, *[sub.choices[n] for n in ("down", "status")]):
        p.add_argument("--run-dir", type=Path, default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()

    if args.command == "up":
        if args.detach:
            state = up_detached(run_dir, args.webhook_url)
            print(json.dumps(state, indent=2))
            return 0
        asyncio.run(supervise(run_dir, args.webhook_url))
        return 0
    if args.command == "down":
        print("sandbox stopped" if down(run_dir) else "sandbox was not running")
        return 0
    if args.command == "status":
        state = client.load_state(run_dir, missing_ok=True)
        print(json.dumps(state, indent=2) if state else "sandbox is not running")
        return 0 if state else 1
    if args.command == "inject":
        state = client.load_state(run_dir)
        fields = {
            k: getattr(args, k) for k in ("namespace", "service", "node", "tenant", "dependency", "image", "factor")
        }
        print(json.dumps(client.inject(state, args.fault, **fields), indent=2))
        return 0
    if args.command == "clear":
        state = client.load_state(run_dir)
        print(json.dumps(client.clear(state, args.id), indent=2))
        return 0
    if args.command == "demo":
        from sandbox import demo

        return demo.run(run_dir, keep=args.keep)
    return 2
