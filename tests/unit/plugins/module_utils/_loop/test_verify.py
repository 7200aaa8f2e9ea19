"""Verification: the watch loop and its settings (``_loop.verify``), table-driven, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.assess import Assessment
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.verify import (
    NOT_RECOVERED,
    RECOVERED,
    Settings,
    settings_from,
    watch,
)
from ansible_collections.zerotouch.selfheal.tests.unit.selfheal_factory import (
    edited,
)

# --- the watch loop, on a fake clock --------------------------------------------------------------------------------

MET = Assessment(True, ("every declared objective is met",), {"latency_p99_ms": 120})
BREACH = Assessment(False, ("p99 latency 480 ms breaches max_latency_ms 250",), {"latency_p99_ms": 480})


class FakeTime:
    """A clock that only moves when slept on, and a look that plays a script of verdicts by time."""

    def __init__(self, verdict: Callable[[float], Assessment], look_cost: float = 0.0) -> None:
        self.now = 1000.0
        self.start = self.now
        self.verdict = verdict
        self.look_cost = look_cost
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def look(self) -> tuple[Assessment, dict[str, Any]]:
        self.now += self.look_cost
        at = self.now - self.start
        return self.verdict(at), {"at": at}


def met_from(t: float) -> Callable[[float], Assessment]:
    return lambda at: MET if at >= t else BREACH


def settings(settle: float = 10, interval: float = 5, window: float = 20, timeout: float = 120) -> Settings:
    return Settings(settle, interval, window, timeout)


@pytest.mark.parametrize(
    ("verdict", "config", "outcome", "looks", "elapsed"),
    [
        # Met from the first look after settling: recovered once the window has been held.
        pytest.param(met_from(0), settings(), RECOVERED, [10, 15, 20, 25, 30], 30, id="met-at-once"),
        # Window 0: the first look that meets the intent is enough.
        pytest.param(met_from(0), settings(window=0), RECOVERED, [10], 10, id="window-zero"),
        # Recovers later: the window counts from the first met look.
        pytest.param(met_from(22), settings(), RECOVERED, [10, 15, 20, 25, 30, 35, 40, 45], 45, id="recovers-late"),
        # Never met: looks until the deadline, the last look exactly at it.
        pytest.param(met_from(1e9), settings(timeout=40), NOT_RECOVERED, [10, 15, 20, 25, 30, 35, 40], 40, id="never"),
        # Met, but too late to hold the window before the deadline.
        pytest.param(
            met_from(31), settings(timeout=40), NOT_RECOVERED, [10, 15, 20, 25, 30, 35, 40], 40, id="too-late"
        ),
        # No settling: the first look is at once.
        pytest.param(met_from(0), settings(settle=0, window=5), RECOVERED, [0, 5], 5, id="no-settle"),
    ],
)
def test_watch_settles_then_looks_every_interval(
    verdict: Callable[[float], Assessment],
    config: Settings,
    outcome: str,
    looks: list[float],
    elapsed: float,
) -> None:
    fake = FakeTime(verdict)
    result = watch(fake.look, config, fake.clock, fake.sleep)
    assert result.outcome == outcome
    assert [look.at for look in result.looks] == looks
    assert result.elapsed == elapsed
    if config.settle_seconds:
        assert fake.sleeps[0] == config.settle_seconds


def test_one_bad_look_starts_the_window_over() -> None:
    # Met at 10 and 15, a relapse at 20, met again from 25: recovered only 20s after 25.
    fake = FakeTime(lambda at: BREACH if 18 <= at < 22 else MET)
    result = watch(fake.look, settings(), fake.clock, fake.sleep)
    assert result.outcome == RECOVERED
    assert [look.met for look in result.looks] == [True, True, False, True, True, True, True, True]
    assert result.elapsed == 45 and result.met_for == 20


def test_the_last_look_is_never_after_the_deadline_even_when_the_interval_does_not_divide_it() -> None:
    fake = FakeTime(met_from(1e9))
    result = watch(fake.look, settings(settle=0, interval=7, window=0, timeout=20), fake.clock, fake.sleep)
    assert [look.at for look in result.looks] == [0, 7, 14, 20]
    assert result.outcome == NOT_RECOVERED


def test_slow_looks_count_against_the_timeout() -> None:
    # Each look takes 4s of the budget; the loop still ends at the deadline, not a full interval later.
    fake = FakeTime(met_from(1e9), look_cost=4)
    result = watch(fake.look, settings(settle=0, interval=5, window=0, timeout=20), fake.clock, fake.sleep)
    assert result.looks[-1].at <= 20 + 4
    assert result.outcome == NOT_RECOVERED


def test_the_result_keeps_the_last_looks_reasons_evidence_and_extra() -> None:
    fake = FakeTime(met_from(1e9))
    result = watch(fake.look, settings(timeout=30), fake.clock, fake.sleep)
    assert result.last.reasons == BREACH.reasons
    assert result.last.evidence == {"latency_p99_ms": 480}
    assert result.last.extra == {"at": 30}
    assert result.summary(settings(timeout=30)) == (
        "not recovered after 30s (timeout_seconds): p99 latency 480 ms breaches max_latency_ms 250"
    )


def test_the_summary_of_a_recovery_names_the_window() -> None:
    fake = FakeTime(met_from(0))
    result = watch(fake.look, settings(), fake.clock, fake.sleep)
    assert result.summary(settings()) == "recovered: the intent held for 20s (window_seconds 20) after 5 look(s) in 30s"


# --- settings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param((-1, 5, 20, 120), "options: settle_seconds: must be 0 or more, got -1", id="negative-settle"),
        pytest.param((0, 0, 20, 120), "options: interval: must be more than 0, got 0", id="zero-interval"),
        pytest.param((0, 5, -2, 120), "options: window_seconds: must be 0 or more, got -2", id="negative-window"),
        pytest.param(
            (30, 5, 100, 120),
            "options: timeout_seconds: 120 leaves no time to settle (30s) and then hold the objectives for "
            "window_seconds (100s)",
            id="timeout-too-short",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_option(values: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(*values)
    assert str(caught.value) == message


def test_settings_from_module_options() -> None:
    params = {"settle_seconds": 5, "interval": 2, "window_seconds": 10, "timeout_seconds": 60, "other": "x"}
    assert settings_from(params) == Settings(5.0, 2.0, 10.0, 60.0)


# --- effectiveness: what the journal keeps when verification ends --------------------------------------------------


@pytest.mark.parametrize(
    ("mets", "incident", "recovered", "to_met", "resolved"),
    [
        ([False, True, True], "closed", True, 30 + 60 + 15.0, True),  # action 30s before; met from the 2nd look
        ([True, False, True, True], "open", True, 30 + 30 + 60.0, False),  # one bad look restarts the run
        ([False, False, False, False], None, False, None, None),
    ],
)
def test_effectiveness_records_recovery_time_alert_and_indicator_moves(
    mets: list[bool], incident: str | None, recovered: bool, to_met: float | None, resolved: bool | None
) -> None:
    from datetime import UTC, datetime, timedelta

    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.verify import effectiveness

    now = [0.0]  # settle 60s, then a look every 15s; the intent must hold for 15s

    def tick() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    looks = iter(mets)

    def look() -> tuple[Assessment, dict[str, Any]]:
        met = next(looks)
        return Assessment(met, (), {}), {"metrics": {"error_rate": 0.2 if met else 7.0, "latency_p99_ms": None}}

    verification = watch(look, Settings(60, 15, 15, 105), tick, sleep)
    began = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    record = effectiveness(verification, began, began - timedelta(seconds=30), {"error_rate": 9.5}, incident)
    assert record["recovered"] is recovered
    assert record["seconds_to_objectives_met"] == to_met
    assert record["alert_resolved"] is resolved
    after = 0.2 if recovered else 7.0
    assert record["indicators"] == {"error_rate": {"before": 9.5, "after": after, "moved": round(after - 9.5, 3)}}
    assert record["looks"] == len(verification.looks)


def _journal_with_an_action(path: Any) -> tuple[int, int]:
    from datetime import UTC, datetime

    from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal

    with Journal(path) as journal:
        did = journal.record_decision(
            namespace="shop",
            service="checkout",
            snapshot={"observed": {"metrics": {"error_rate": 9.0}}},
            decision={"action": "rollback", "rule": "rollback"},
            fingerprint="9f1c2e7a",
            alert_status="firing",
            at=datetime.now(UTC),
        )
        return did, journal.start_action(did, "rollback", {"to_revision": 6})


@pytest.mark.parametrize("check_mode", [False, True])
def test_run_records_the_effectiveness_of_the_action_it_verified(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, check_mode: bool
) -> None:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import verify

    healthy = edited()
    monkeypatch.setattr(verify._check, "gather", lambda *args: (healthy, []))
    path = tmp_path / "journal.db"
    _did, aid = _journal_with_an_action(path)
    params = {
        "namespace": "shop",
        "service": "checkout",
        "intents": [healthy["intent"]],
        "journal": str(path),
        "action_id": aid,
        **{"settle_seconds": 0, "interval": 1, "window_seconds": 0, "timeout_seconds": 0},
    }
    result = verify.run(params, lambda: None, check_mode)
    assert result["recovered"] is True
    assert result["changed"] is not check_mode
    record = result["effectiveness"]
    assert record["recovered"] is True and record["alert_resolved"] is False  # the incident is still open
    assert record["indicators"]["error_rate"] == {"before": 9.0, "after": 0.1, "moved": -8.9}
    assert record["seconds_to_objectives_met"] >= 0
    with Journal(path) as journal:
        (action,) = journal.query()[0]["actions"]
    assert action["effectiveness"] == (None if check_mode else record)


def test_run_refuses_an_action_id_that_is_not_the_services(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import verify

    healthy = edited()
    monkeypatch.setattr(verify._check, "gather", lambda *args: (healthy, []))
    path = tmp_path / "journal.db"
    _did, aid = _journal_with_an_action(path)
    params = {
        "namespace": "shop",
        "service": "checkout",
        "intents": [healthy["intent"]],
        "journal": str(path),
        "action_id": aid + 1,
        **{"settle_seconds": 0, "interval": 1, "window_seconds": 0, "timeout_seconds": 0},
    }
    with pytest.raises(ValidationError, match=f"action_id: no action {aid + 1} of shop/checkout"):
        verify.run(params, lambda: None, False)
