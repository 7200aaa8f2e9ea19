"""Real Prometheus and Alertmanager (Debian packages), configured and started on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from sandbox import procs

RULES = Path(__file__).with_name("config") / "alerts.yml"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run 'make setup' (apt package {name})")
    return path


@dataclass
class Launched:
    proc: subprocess.Popen
    url: str
    log: Path


def start_alertmanager(run_dir: Path, webhook_url: str) -> Launched:
    """Alertmanager routing every alert to one webhook, grouping per service with no wait."""
    port = procs.free_port()
    cfg = {
        "route": {
            "receiver": "selfheal",
            "group_by": ["alertname", "namespace", "service"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1m",
        },
        "receivers": [
            {"name": "selfheal", "webhook_configs": [{"url": webhook_url, "send_resolved": True, "max_alerts": 0}]}
        ],
    }
    base = run_dir / "alertmanager"
    base.mkdir(parents=True, exist_ok=True)
    (base / "alertmanager.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = run_dir / "logs" / "alertmanager.log"
    proc = procs.spawn(
        [
            _binary("prometheus-alertmanager"),
            f"--config.file={base / 'alertmanager.yml'}",
            f"--storage.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(f"{url}/-/ready", timeout=20, proc=proc, log=log)
    return Launched(proc, url, log)


def start_prometheus(run_dir: Path, scrape_target: str, alertmanager_url: str) -> Launched:
    """Prometheus scraping the workload simulator every second and evaluating the sandbox alert rules."""
    port = procs.free_port()
    base = run_dir / "prometheus"
    base.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RULES, base / "alerts.yml")
    cfg = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [str(base / "alerts.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}]},
        "scrape_configs": [{"job_name": "workloads", "static_configs": [{"targets": [scrape_target]}]}],
    }
    (base / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = run_dir / "logs" / "prometheus.log"
    proc = procs.spawn(
        [
            _binary("prometheus"),
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            "--storage.tsdb.retention.time=2h",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(f"{url}/-/ready", timeout=30, proc=proc, log=log)
    return Launched(proc, url, log)
