# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is loaded by the intent_watch event source; import it only from this collection.
"""The intent watch's pure core: every intent judged on one batched Prometheus answer, one alert per episode.

Each tick the watch asks Prometheus ONE query (``_prom.batch``) holding, for every declared intent, the
indicators of its declared objectives (the same PromQL ``intent_check`` uses, intent overrides included) and the
error rate over the short ``burn_window``. Each service is then judged:

* **breached**: an objective is breached, judged by the decision engine itself (``_engine.assess.check_objectives``);
* **burning fast**: the error budget is spent at least ``burn_rate`` times as fast as the objectives allow
  (``_engine.objectives``: the budget is the tighter of ``100 - availability`` and ``max_error_rate``, the burn
  rate the error rate over ``burn_window`` divided by that budget; the change gate judges burns the same way). With
  a ``burn_window`` shorter than the intent's ``indicators.window`` this sees a burst of errors before the
  intent's own window (and an alert rule with a similar window) reports a breach. A budget of zero burns
  infinitely fast at the first error;
* **holding**: every declared objective is known and met and the budget is not burning fast.

A service that is breached or burning fast opens an **episode**: one firing alert, in Alertmanager's format (so
the event source turns it into the same event as an Alertmanager alert). Later ticks add nothing while the
episode lasts; the first tick on which the service holds again ends it with one resolved alert. A service whose
indicators are unknown (no traffic, Prometheus unreachable) neither opens nor ends an episode: the watch never
acts blind and never declares a recovery it cannot see. An episode whose intent is no longer declared ends too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._alerts import fingerprint_of
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.assess import check_objectives
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.objectives import (
    burn_rate,
    error_budget,
    is_fast_burn,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather.build import observed_metrics
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather.queries import (
    OBJECTIVE_INDICATORS,
    key_of,
    service_queries,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import format_datetime

ALERTNAME = "IntentAtRisk"
RECEIVER = "zerotouch.selfheal.intent_watch"
SEVERITY = "page"
BURN_INDICATOR = "burn_error_rate"


def watch_queries(intents: Iterable[Mapping[str, Any]], burn_window: str | None) -> dict[str, dict[str, str]]:
    """Per service, the PromQL of its objectives' indicators and of its short-window error rate."""
    queries: dict[str, dict[str, str]] = {}
    for intent in intents:
        declared = intent.get("objectives") or {}
        wanted = {OBJECTIVE_INDICATORS[name] for name in declared if name in OBJECTIVE_INDICATORS}
        if not wanted:
            continue  # nothing to judge
        per_service = {name: q for name, q in service_queries(dict(intent)).items() if name in wanted}
        if burn_window and error_budget(declared) is not None:
            short = {**intent, "indicators": {**(intent.get("indicators") or {}), "window": burn_window}}
            per_service[BURN_INDICATOR] = service_queries(short)["error_rate"]
        queries[key_of(intent)] = per_service
    return queries


@dataclass(frozen=True, slots=True)
class Judgement:
    """One service at one tick: at risk (open an episode), holding (end one), or neither (unknown)."""

    key: str
    namespace: str
    service: str
    breached: tuple[str, ...]
    unknown: tuple[str, ...]
    burn: float | None
    fast_burn: bool
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any]

    @property
    def at_risk(self) -> bool:
        return bool(self.breached) or self.fast_burn

    @property
    def holding(self) -> bool:
        return not self.breached and not self.unknown and not self.fast_burn


def judge(
    intent: Mapping[str, Any],
    policy: Mapping[str, Any] | None,
    indicators: Mapping[str, Any],
    now: datetime,
    threshold: float,
) -> Judgement:
    """Judge one service on its indicators (``_prom.split`` output); ``threshold`` is the fast-burn rate."""
    snapshot = parse_snapshot(
        {
            "id": f"{key_of(intent)}@{format_datetime(now)}",
            "now": format_datetime(now),
            "intent": dict(intent),
            "policy": dict(policy) if policy is not None else None,
            "observed": {"metrics": observed_metrics(dict(indicators))},
        },
        key_of(intent),
    )
    check = check_objectives(snapshot)
    reasons = list(check.reasons)
    evidence = dict(check.evidence)
    burn = burn_rate(intent.get("objectives") or {}, indicators.get(BURN_INDICATOR))
    fast = is_fast_burn(burn, threshold)
    if burn is not None:
        evidence["burn_rate"] = burn if math.isfinite(burn) else "inf"
        evidence[BURN_INDICATOR] = indicators.get(BURN_INDICATOR)
        if fast:
            reasons.append(
                f"the error budget burns {_times(burn)} as fast as the objectives allow "
                f"(error rate {_number(indicators.get(BURN_INDICATOR))}% over the burn window; fast from "
                f"{_number(threshold)}x)"
            )
    return Judgement(
        key=key_of(intent),
        namespace=str(intent["namespace"]),
        service=str(intent["service"]),
        breached=check.breached,
        unknown=check.unknown,
        burn=burn,
        fast_burn=fast,
        reasons=tuple(reasons),
        evidence=evidence,
    )


def _times(burn: float) -> str:
    return "infinitely" if math.isinf(burn) else f"{_number(round(burn, 1))} times"


def _number(value: Any) -> str:
    if isinstance(value, float):
        rounded = round(value, 3)
        return str(int(rounded)) if rounded.is_integer() else str(rounded)
    return str(value)


@dataclass(slots=True)
class Episode:
    started: datetime
    alert: dict[str, Any]


@dataclass(slots=True)
class Tracker:
    """Open episodes by service key; :meth:`step` turns one tick's judgements into alerts."""

    episodes: dict[str, Episode] = field(default_factory=dict)

    def step(self, judgements: Iterable[Judgement], declared: Iterable[str], now: datetime) -> list[dict[str, Any]]:
        """The alerts of one tick: firing for each episode that opens, resolved for each that ends."""
        alerts = []
        for judgement in judgements:
            episode = self.episodes.get(judgement.key)
            if episode is None and judgement.at_risk:
                alert = firing_alert(judgement, now)
                self.episodes[judgement.key] = Episode(now, alert)
                alerts.append(alert)
            elif episode is not None and judgement.holding:
                del self.episodes[judgement.key]
                alerts.append(resolved_alert(episode.alert, now, judgement.reasons))
        gone = set(self.episodes) - set(declared)
        for key in sorted(gone):
            episode = self.episodes.pop(key)
            alerts.append(resolved_alert(episode.alert, now, ("the service's intent is no longer declared",)))
        return alerts


def labels_of(namespace: str, service: str) -> dict[str, str]:
    return {"alertname": ALERTNAME, "namespace": namespace, "service": service, "severity": SEVERITY}


def firing_alert(judgement: Judgement, now: datetime) -> dict[str, Any]:
    """The Alertmanager-format alert that opens an episode."""
    labels = labels_of(judgement.namespace, judgement.service)
    what = []
    if judgement.breached:
        what.append(f"breaches {', '.join(judgement.breached)}")
    if judgement.fast_burn and judgement.burn is not None:
        what.append(f"burns its error budget {_times(judgement.burn)} as fast as allowed")
    annotations = {
        "summary": f"{judgement.key} {' and '.join(what)}",
        "description": "; ".join(judgement.reasons),
        "breached": ",".join(judgement.breached),
    }
    if judgement.burn is not None:
        annotations["burn_rate"] = "inf" if math.isinf(judgement.burn) else f"{judgement.burn:.2f}"
    return {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_datetime(now),
        "endsAt": None,
        "fingerprint": fingerprint_of(labels),
    }


def resolved_alert(firing: Mapping[str, Any], now: datetime, reasons: Iterable[str]) -> dict[str, Any]:
    """The alert that ends an episode: the firing one, resolved now."""
    labels = dict(firing["labels"])
    return {
        **firing,
        "status": "resolved",
        "labels": labels,
        "annotations": {
            **firing["annotations"],
            "summary": f"{labels['namespace']}/{labels['service']} holds its objectives again",
            "description": "; ".join(reasons),
        },
        "endsAt": format_datetime(now),
    }


def payload(alert: Mapping[str, Any], prometheus_url: str) -> dict[str, Any]:
    """One alert as an Alertmanager webhook notification (what ``_alerts.normalize`` reads), grouped by service."""
    group = {"namespace": alert["labels"]["namespace"], "service": alert["labels"]["service"]}
    return {
        "version": "4",
        "receiver": RECEIVER,
        "externalURL": prometheus_url,
        "groupKey": f'{{}}:{{namespace="{group["namespace"]}", service="{group["service"]}"}}',
        "groupLabels": group,
        "truncatedAlerts": 0,
        "alerts": [dict(alert)],
    }
