"""The demo behind `make demo`: the whole self-healing loop in the sandbox, narrated as a timeline.

A bad release of shop/checkout raises its error rate; Prometheus fires HighErrorRate, Alertmanager posts it to
ansible-rulebook running the collection's remediate rulebook, which checks the service against its intent,
decides, rolls back, verifies and journals. The demo only watches (Prometheus, Alertmanager and the journal) and
ends with an incident report: the timeline and a plot of the error rate against its objective.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox import cli, client
from sandbox.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build" / "collections"))  # the collection's own code, as `make collection` links it

from ansible_collections.zerotouch.selfheal.plugins.module_utils import _prom  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal import store as _journal  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model import intent as _intent  # noqa: E402

from sandbox import report  # noqa: E402
from sandbox.rulebook import Rulebook, route_alerts  # noqa: E402

INTENTS = ROOT / "examples" / "intents" / "shop.yml"
NAMESPACE, SERVICE = "shop", "checkout"
# Short verification so the demo takes a minute or two; production defaults are in the verify role.
VERIFY = {"verify_settle_seconds": 5, "verify_interval": 3, "verify_window_seconds": 15, "verify_timeout_seconds": 180}
# The demo's guardrails: the defaults, without the example's maintenance window, so it acts whenever it runs.
POLICY = "cooldown_minutes: 10\nmax_actions_per_hour: 3\nprotected_namespaces: [kube-system]\n"


class Timeline:
    """What happened when, printed as it happens and kept for the report."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.events: list[tuple[float, str]] = []

    def say(self, text: str, at: float | None = None) -> None:
        at = time.time() if at is None else at
        self.events.append((at, text))
        print(f"[{at - self.t0:6.1f}s] {text}", flush=True)


def _unix(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def _acted(journal: Path, since: float) -> Callable[[], dict[str, Any] | None]:
    """A probe: the newest decision for the service since ``since`` that chose an action, if any."""

    def probe() -> dict[str, Any] | None:
        rows = _journal.query_journal({"journal": str(journal), "namespace": NAMESPACE, "service": SERVICE})
        return next((r for r in rows if r["action"] != "none" and (_unix(r["time"]) or 0) >= since), None)

    return probe


def _finished(journal: Path, decision_id: int) -> Callable[[], dict[str, Any] | None]:
    """A probe: the decision's first action once it has an outcome other than pending."""

    def probe() -> dict[str, Any] | None:
        rows = _journal.query_journal({"journal": str(journal), "namespace": NAMESPACE, "service": SERVICE})
        decision = next((r for r in rows if r["id"] == decision_id), None)
        actions = decision["actions"] if decision else []
        return next((a for a in actions if a["outcome"] != "pending"), None)

    return probe


def run(run_dir: Path, keep: bool = False) -> int:
    tl = Timeline()
    intent = _intent.find_intent(_intent.load_intents(INTENTS), NAMESPACE, SERVICE)
    assert intent is not None, f"{INTENTS} declares no intent for {NAMESPACE}/{SERVICE}"
    objective = float(intent["objectives"]["max_error_rate"])
    errors = _prom.indicator_queries(
        NAMESPACE, SERVICE, intent["target"]["name"], intent.get("indicators", {}).get("window", "5m")
    )["error_rate"]
    policy = run_dir / "policy.yml"
    tl.say("starting the sandbox: Kubernetes stand-in, workload simulator, Prometheus, Alertmanager")
    state = cli.up_detached(run_dir, webhook_url=None)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        policy.write_text(POLICY)
        rulebook = Rulebook(
            state,
            run_dir=run_dir / "rulebook",
            intents=INTENTS,
            policy=policy,
            journal=run_dir / "journal.db",
            extra_vars=VERIFY,
        )
        with rulebook:
            route_alerts(state, rulebook.url, rulebook.token)
            tl.say(f"ansible-rulebook is listening for Alertmanager at {rulebook.url} (log: {rulebook.log})")
            return _story(tl, state, rulebook, errors, objective, run_dir)
    finally:
        if not keep:
            cli.down(run_dir)
            tl.say("sandbox and rulebook stopped; no process left behind")


def _story(
    tl: Timeline, state: dict[str, Any], rulebook: Rulebook, errors: str, objective: float, run_dir: Path
) -> int:
    def rate() -> float | None:
        return client.scalar(state, errors)

    wait_until(lambda: rate() is not None, 60, "Prometheus to scrape the workloads", interval=0.5)
    tl.say(f"{NAMESPACE}/{SERVICE} is healthy: error rate {rate():.2f}% (objective: at most {objective:g}%)")
    fault = client.inject(state, "bad-rollout", namespace=NAMESPACE, service=SERVICE)
    t_fault = time.time()
    tl.say(f"fault injected: a bad release of {SERVICE} rolls out (new revision, errors rising)", t_fault)
    wait_until(lambda: (rate() or 0) > objective, 90, "the error rate to breach the objective", interval=0.5)
    tl.say(f"Prometheus sees the regression: error rate {rate():.2f}%")
    alert = wait_until(
        lambda: client.active_alerts(state, alertname="HighErrorRate", service=SERVICE),
        120,
        "Alertmanager to fire HighErrorRate",
        interval=0.5,
    )[0]
    t_alert = time.time()
    tl.say(f"Alertmanager fires HighErrorRate: {alert['annotations'].get('summary', '')}", t_alert)
    decision = wait_until(_acted(rulebook.journal, t_fault), 120, "a decision in the journal", interval=0.5)
    tl.say(
        f"decision #{decision['id']}: {decision['action']} {decision['decision'].get('params') or ''}",
        _unix(decision["time"]),
    )
    for reason in decision["decision"].get("reasons", []):
        print(f"           - {reason}", flush=True)
    action = wait_until(_finished(rulebook.journal, decision["id"]), 300, "the action's outcome", interval=1)
    tl.say(f"{action['action']} started (lock taken, journaled)", _unix(action["started"]))
    tl.say(f"verified: {action['outcome']} - {action['detail']}", _unix(action["ended"]))
    recovered = action["outcome"] == "recovered"
    if recovered:
        wait_until(
            lambda: not client.active_alerts(state, alertname="HighErrorRate", service=SERVICE),
            120,
            "HighErrorRate to resolve",
            interval=1,
        )
        tl.say(f"Alertmanager resolves HighErrorRate: error rate {rate() or 0:.2f}%")
    client.clear(state, fault["id"])
    marks = [
        report.Mark(t_fault, "bad release"),
        report.Mark(t_alert, "alert"),
        report.Mark(_unix(action["started"]) or t_fault, action["action"]),
        report.Mark(_unix(action["ended"]) or time.time(), action["outcome"]),
    ]
    _report(tl, state, errors, objective, decision, marks, run_dir)
    return 0 if recovered else 1


def _report(
    tl: Timeline,
    state: dict[str, Any],
    errors: str,
    objective: float,
    decision: dict[str, Any],
    marks: list[report.Mark],
    run_dir: Path,
) -> None:
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    series = client.query_range(state, errors, marks[0].at - 20, time.time(), 1.0)
    title = f"{NAMESPACE}/{SERVICE} error rate"
    (out / "error-rate.svg").write_text(report.svg_plot(series, objective, marks, title, "%"))
    report.write_report(
        out / "incident.md",
        f"Incident: {NAMESPACE}/{SERVICE} bad release",
        tl.events,
        decision["decision"],
        "error-rate.svg",
        report.svg_plot(series, objective, marks, title, "%", inline=True),
    )
    tl.say(
        f"incident report: {out / 'incident.md'} and {out / 'incident.html'} (plot: {out / 'error-rate.svg'}); "
        f"journal: {run_dir / 'journal.db'}"
    )
