"""Policy: defaults, overrides per namespace and service, validation wording, and time windows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.policy import (
    POLICY_DEFAULTS,
    POLICY_SCHEMA,
    FreezeWindow,
    active_freeze,
    in_window,
    load_policy,
    policy_for,
    policy_from_dict,
    policy_to_dict,
    policy_with_defaults,
    validate_policy,
    window_from_dict,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(POLICY_SCHEMA)


def test_defaults_match_the_scenarios_readme() -> None:
    assert POLICY_DEFAULTS == {
        "recent_change_minutes": 30,
        "cooldown_minutes": 10,
        "max_actions_per_hour": 3,
        "require_approval": [],
        "freeze_windows": [],
        "maintenance_windows": [],
        "peak_hours": None,
        "block_changes_during_peak": False,
        "protected_namespaces": ["kube-system"],
        "mode": "auto",
        "max_failed_attempts": 2,
        "learning_window_days": 7,
        "max_concurrent_remediations": 5,
        "max_cordoned_nodes": 1,
        "tenant_baseline": "1h",
        "approval_ttl": "30m",  # issue 13: a proposal can be approved for 30 minutes
        "observe_notify": False,  # issue 13: observe-mode notifications are optional
    }


def test_no_file_and_empty_file_mean_every_default(tmp_path: Path) -> None:
    empty = tmp_path / "policy.yml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    assert load_policy(None) == load_policy(empty) == POLICY_DEFAULTS


def test_defaults_are_copies() -> None:
    policy = policy_with_defaults(None)
    policy["protected_namespaces"].append("shop")
    assert POLICY_DEFAULTS["protected_namespaces"] == ["kube-system"]


OVERRIDES: dict[str, Any] = {
    "cooldown_minutes": 15,
    "require_approval": ["rollback"],
    "overrides": {
        "namespaces": {"shop": {"cooldown_minutes": 5, "max_actions_per_hour": 6}},
        "services": {
            "shop/checkout": {"cooldown_minutes": 2, "require_approval": []},
            "other/checkout": {"max_actions_per_hour": 1},
        },
    },
}


@pytest.mark.parametrize(
    ("namespace", "service", "expected"),
    [
        ("billing", "invoices", {"cooldown_minutes": 15, "max_actions_per_hour": 3, "require_approval": ["rollback"]}),
        ("shop", "cart", {"cooldown_minutes": 5, "max_actions_per_hour": 6, "require_approval": ["rollback"]}),
        ("shop", "checkout", {"cooldown_minutes": 2, "max_actions_per_hour": 6, "require_approval": []}),
        ("other", "checkout", {"cooldown_minutes": 15, "max_actions_per_hour": 1, "require_approval": ["rollback"]}),
    ],
    ids=["top-level", "namespace", "service-over-namespace", "service-key-includes-namespace"],
)
def test_policy_for_layers_defaults_top_namespace_service(
    namespace: str, service: str, expected: dict[str, Any]
) -> None:
    effective = policy_for(validate_policy(OVERRIDES, "p"), namespace, service)
    assert {key: effective[key] for key in expected} == expected
    assert "overrides" not in effective
    assert effective["recent_change_minutes"] == 30


def test_policy_for_accepts_a_raw_policy_and_none() -> None:
    assert policy_for(None, "a", "b") == POLICY_DEFAULTS
    assert policy_for({"overrides": {"namespaces": {"a": {"cooldown_minutes": 1}}}}, "a", "b")["cooldown_minutes"] == 1


def test_typed_policy_round_trips() -> None:
    raw = {
        "freeze_windows": [{"start": "2026-03-01T00:00:00+01:00", "end": "2026-03-02T00:00:00Z", "reason": "sale"}],
        "maintenance_windows": [{"days": ["sat"], "start": "22:00", "end": "24:00", "timezone": "Europe/Paris"}],
        "peak_hours": {"start": "09:00", "end": "18:00"},
    }
    typed = policy_from_dict(policy_for(raw, "a", "b"))
    assert policy_from_dict(policy_to_dict(typed)) == typed
    assert typed.freeze_windows[0].start == at("2026-02-28T23:00:00+00:00")


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"require_approval": ["rolback"]},
            "policy.yml: require_approval[0]: must be one of [restart, scale_up, scale_down, rollback, reroute, "
            'isolate_tenant, patch, reconcile], got "rolback"',
        ),
        ({"cooldown_minutes": -1}, "policy.yml: cooldown_minutes: must be a number >= 0, got -1"),
        ({"max_actions_per_hour": 2.5}, "policy.yml: max_actions_per_hour: must be a whole number >= 0, got 2.5"),
        ({"cooldown": 5}, "policy.yml: unknown key 'cooldown' (did you mean 'cooldown_minutes'?)"),
        (
            {"overrides": {"services": {"checkout": {"cooldown_minutes": 5}}}},
            'policy.yml: overrides.services: key "checkout" must be written "namespace/service"',
        ),
        (
            {"overrides": {"namespaces": {"shop": {"protected_namespaces": []}}}},
            "policy.yml: overrides.namespaces.shop: unknown key 'protected_namespaces'",
        ),
        (
            {"maintenance_windows": [{"days": ["monday"], "start": "02:00", "end": "05:00"}]},
            "policy.yml: maintenance_windows[0].days[0]: must be one of [mon, tue, wed, thu, fri, sat, sun], "
            'got "monday"',
        ),
        (
            {"maintenance_windows": [{"start": 1080, "end": "20:00"}]},
            'policy.yml: maintenance_windows[0].start: must be a time of day "HH:MM" (24-hour clock), got 1080: quote '
            'times in YAML ("18:00")',
        ),
        (
            {"peak_hours": {"start": "09:00", "end": "25:00"}},
            'policy.yml: peak_hours.end: must be a time of day "HH:MM" (24-hour clock, or "24:00"), got "25:00"',
        ),
        (
            {"peak_hours": {"start": "09:00", "end": "09:00"}},
            'policy.yml: peak_hours.end: must differ from start (a whole day is "00:00" to "24:00")',
        ),
        (
            {"maintenance_windows": [{"start": "02:00", "end": "05:00", "timezone": "Mars/Base"}]},
            'policy.yml: maintenance_windows[0].timezone: must be an IANA time zone such as "UTC" or "Europe/Paris", '
            "got \"Mars/Base\" (unknown time zone 'Mars/Base')",
        ),
        (
            {"freeze_windows": [{"start": "2026-03-01T00:00:00", "end": "2026-03-02T00:00:00Z"}]},
            "policy.yml: freeze_windows[0].start: must be an ISO 8601 date-time with a UTC offset, such as "
            '"2026-03-01T00:00:00Z", got "2026-03-01T00:00:00" (no UTC offset: add Z or +HH:MM)',
        ),
        (
            {"freeze_windows": [{"start": "2026-03-08T00:00:00Z", "end": "2026-03-01T00:00:00Z"}]},
            "policy.yml: freeze_windows[0].end: must be after start 2026-03-08T00:00:00Z, got 2026-03-01T00:00:00Z",
        ),
        (
            {
                "overrides": {
                    "namespaces": {
                        "shop": {"freeze_windows": [{"start": "2026-03-08T00:00:00Z", "end": "2026-03-08T00:00:00Z"}]}
                    }
                }
            },
            "policy.yml: overrides.namespaces.shop.freeze_windows[0].end: must be after start 2026-03-08T00:00:00Z, "
            "got 2026-03-08T00:00:00Z",
        ),
        ([1, 2], "policy.yml: must be a mapping, got a list"),
    ],
)
def test_error_messages(policy: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_policy(policy, "policy.yml")
    assert str(caught.value) == message


def test_unquoted_times_in_a_policy_file_are_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("peak_hours: {days: [mon], start: 9:30, end: 18:00}\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"peak_hours\.start: .* got \"9:30\""):
        load_policy(path)  # "9:30" is not HH:MM, but at least the message shows what was written
    path.write_text("peak_hours: {days: [mon], start: 09:30, end: 18:00}\n", encoding="utf-8")
    assert load_policy(path)["peak_hours"] == {"days": ["mon"], "start": "09:30", "end": "18:00"}


# --- windows -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "moment", "inside"),
    [
        ({"days": ["wed"], "start": "09:00", "end": "18:00"}, "2026-03-04T09:00:00Z", True),
        ({"days": ["wed"], "start": "09:00", "end": "18:00"}, "2026-03-04T17:59:59Z", True),
        ({"days": ["wed"], "start": "09:00", "end": "18:00"}, "2026-03-04T18:00:00Z", False),
        ({"days": ["wed"], "start": "09:00", "end": "18:00"}, "2026-03-05T10:00:00Z", False),
        ({"days": ["fri"], "start": "22:00", "end": "02:00"}, "2026-03-06T23:30:00Z", True),
        ({"days": ["fri"], "start": "22:00", "end": "02:00"}, "2026-03-07T01:59:00Z", True),
        ({"days": ["fri"], "start": "22:00", "end": "02:00"}, "2026-03-07T02:00:00Z", False),
        ({"days": ["fri"], "start": "22:00", "end": "02:00"}, "2026-03-06T01:00:00Z", False),
        ({"days": ["sun"], "start": "23:00", "end": "01:00"}, "2026-03-09T00:30:00Z", True),  # Sunday into Monday
        ({"days": ["sat"], "start": "00:00", "end": "24:00"}, "2026-03-07T23:59:59Z", True),
        ({"start": "02:00", "end": "05:00"}, "2026-03-04T03:00:00Z", True),  # no days: every day
        (
            {"days": ["wed"], "start": "09:00", "end": "18:00", "timezone": "America/New_York"},
            "2026-03-04T13:30:00Z",
            False,
        ),  # 08:30 in New York
        (
            {"days": ["wed"], "start": "09:00", "end": "18:00", "timezone": "America/New_York"},
            "2026-03-04T14:30:00Z",
            True,
        ),
        # Daylight saving time starts in New York on 2026-03-08: 09:00 local is then 13:00 UTC.
        (
            {"days": ["mon"], "start": "09:00", "end": "10:00", "timezone": "America/New_York"},
            "2026-03-09T13:30:00Z",
            True,
        ),
        # Tuesday 15:45 UTC is already Wednesday 00:45 in Tokyo: days are local days too.
        ({"days": ["wed"], "start": "00:30", "end": "01:00", "timezone": "Asia/Tokyo"}, "2026-03-03T15:45:00Z", True),
        ({"days": ["tue"], "start": "00:30", "end": "01:00", "timezone": "Asia/Tokyo"}, "2026-03-03T15:45:00Z", False),
    ],
)
def test_in_window(window: dict[str, Any], moment: str, inside: bool) -> None:
    assert in_window(window_from_dict(window), at(moment)) is inside


def test_freeze_start_inclusive_end_exclusive() -> None:
    freeze = FreezeWindow(at("2026-03-01T00:00:00+00:00"), at("2026-03-08T00:00:00+00:00"))
    assert active_freeze([freeze], at("2026-03-01T00:00:00+00:00")) is freeze
    assert active_freeze([freeze], at("2026-03-07T23:59:59+00:00")) is freeze
    assert active_freeze([freeze], at("2026-03-08T00:00:00+00:00")) is None
    assert active_freeze([freeze], at("2026-02-28T23:59:59+00:00")) is None
