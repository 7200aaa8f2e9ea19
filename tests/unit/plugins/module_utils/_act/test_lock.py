"""The per-target lock of _lock: who gets a Lease, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act import lock as lock
from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.plans import micro_time
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


def lease(holder: str | None, renewed_ago: int, ttl: int = 600, transitions: int = 0) -> dict[str, Any]:
    renewed = micro_time(NOW - timedelta(seconds=renewed_ago))
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "selfheal-checkout", "namespace": "shop", "resourceVersion": "5"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": ttl,
            "acquireTime": renewed,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        },
    }


def acquire(current: dict[str, Any] | None, holder: str = "run-2", ttl: int = 300) -> Any:
    return lock.plan_acquire(current, "shop", "checkout", holder, ttl, NOW)


def test_a_free_target_gets_a_new_lease() -> None:
    plan = acquire(None)
    (change,) = plan.changes
    assert (change.verb, change.kind, change.namespace, change.name) == ("create", "Lease", "shop", "selfheal-checkout")
    assert change.body["spec"] == {
        "holderIdentity": "run-2",
        "leaseDurationSeconds": 300,
        "acquireTime": "2026-03-02T14:05:00.000000Z",
        "renewTime": "2026-03-02T14:05:00.000000Z",
        "leaseTransitions": 0,
    }
    assert plan.result == {
        "lease": "selfheal-checkout",
        "acquired": True,
        "held_by": "run-2",
        "expires_at": "2026-03-02T14:10:00.000000Z",
    }


def test_a_lock_held_by_another_is_not_acquired_and_not_a_failure() -> None:
    plan = acquire(lease("run-1", renewed_ago=60))
    assert not plan.changed
    assert plan.result["acquired"] is False and plan.result["held_by"] == "run-1"
    assert plan.message == "shop/checkout is locked by run-1 until 2026-03-02T14:14:00.000000Z"


def test_an_expired_lock_is_taken_over() -> None:
    plan = acquire(lease("run-1", renewed_ago=601, transitions=2))
    (change,) = plan.changes
    assert change.verb == "replace" and change.body["metadata"]["resourceVersion"] == "5"
    assert change.body["spec"]["holderIdentity"] == "run-2"
    assert change.body["spec"]["leaseTransitions"] == 3
    assert plan.result["acquired"] is True
    assert plan.message.startswith("took over the expired lock of run-1 on shop/checkout for run-2")


def test_the_holder_reacquiring_changes_nothing() -> None:
    plan = acquire(lease("run-2", renewed_ago=60))
    assert not plan.changed
    assert plan.result["acquired"] is True


@pytest.mark.parametrize("current", [lease(None, 10), lease("run-2", 601)])
def test_a_released_or_own_expired_lock_is_retaken_without_a_transition(current: dict[str, Any]) -> None:
    plan = acquire(current)
    assert plan.changes[0].body["spec"]["leaseTransitions"] == 0
    assert plan.result["acquired"] is True


def test_release_by_the_holder_clears_the_holder() -> None:
    plan = lock.plan_release(lease("run-2", 60), "shop", "checkout", "run-2")
    (change,) = plan.changes
    assert change.body["spec"]["holderIdentity"] is None
    assert plan.result == {"lease": "selfheal-checkout", "acquired": False, "held_by": None, "expires_at": None}


@pytest.mark.parametrize(("current", "held_by"), [(None, None), (lease(None, 5), None), (lease("run-1", 5), "run-1")])
def test_release_leaves_other_locks_alone(current: dict[str, Any] | None, held_by: str | None) -> None:
    plan = lock.plan_release(current, "shop", "checkout", "run-2")
    assert not plan.changed
    assert plan.result["held_by"] == held_by


def test_losing_a_race_reports_the_winner() -> None:
    plan = acquire(None)
    lost = lock.lost_race(plan, lease("run-9", 0), "shop/checkout")
    assert not lost.changed
    assert lost.result["acquired"] is False and lost.result["held_by"] == "run-9"
    assert lost.message == "shop/checkout was locked by run-9 first"


@pytest.mark.parametrize(("holder", "ttl", "match"), [("", 60, "holder"), ("x", 0, "ttl_seconds")])
def test_bad_options(holder: str, ttl: int, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        acquire(None, holder, ttl)


# --- renewal: a holder that stops renewing is shown dead once its short lease runs out ---------------------------


def renew(current: dict[str, Any] | None, holder: str = "run-1", duration: int = 20) -> Any:
    return lock.plan_renew(current, "shop", "checkout", holder, duration, NOW)


@pytest.mark.parametrize("renewed_ago", [5, 40], ids=["live", "lapsed-but-not-taken"])
def test_the_holder_renews_its_lock_from_now(renewed_ago: int) -> None:
    current = lease("run-1", renewed_ago=renewed_ago, ttl=20, transitions=3)
    plan = renew(current)
    (change,) = plan.changes
    assert (change.verb, change.name, change.body["metadata"]["resourceVersion"]) == (
        "replace",
        "selfheal-checkout",
        "5",
    )
    spec = change.body["spec"]
    assert spec["renewTime"] == "2026-03-02T14:05:00.000000Z" and spec["leaseDurationSeconds"] == 20
    assert spec["acquireTime"] == current["spec"]["acquireTime"] and spec["leaseTransitions"] == 3  # same holding
    assert plan.result == {
        "lease": "selfheal-checkout",
        "acquired": True,
        "held_by": "run-1",
        "expires_at": "2026-03-02T14:05:20.000000Z",
    }


@pytest.mark.parametrize(
    ("current", "held_by", "message"),
    [
        (lease("run-2", renewed_ago=5), "run-2", "shop/checkout is locked by run-2: run-1 cannot renew it"),
        (lease(None, renewed_ago=5), None, "shop/checkout is not locked: run-1 cannot renew it"),
        (None, None, "shop/checkout is not locked: run-1 cannot renew it"),
    ],
    ids=["taken-over", "released", "no-lease"],
)
def test_a_lock_lost_is_not_renewed(current: dict[str, Any] | None, held_by: str | None, message: str) -> None:
    plan = renew(current)
    assert not plan.changes
    assert plan.result["acquired"] is False and plan.result["held_by"] == held_by
    assert plan.message == message


def test_a_holder_that_stopped_renewing_is_taken_over_after_its_short_lease_not_a_long_ttl() -> None:
    # Claimed with a 20 s lease and renewed until 25 s ago: dead, whatever TTL a manual run would have asked for.
    assert acquire(lease("loop-1", renewed_ago=25, ttl=20)).result["acquired"] is True
    assert acquire(lease("loop-1", renewed_ago=15, ttl=20)).result["acquired"] is False


def test_a_renewal_needs_a_positive_duration() -> None:
    with pytest.raises(ValidationError, match="lock_lease_seconds: must be more than 0, got 0"):
        renew(lease("run-1", renewed_ago=5), duration=0)
