"""Alertmanager payload normalization and template escaping (plugins/module_utils/_alerts.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils import _alerts
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError

from sandbox.payloads import alert
from sandbox.payloads import notification as payload


def test_a_firing_alert_becomes_one_event_with_every_field() -> None:
    (event,) = _alerts.normalize(payload(alert()))
    assert event == {
        "status": "firing",
        "fingerprint": "c0ffee0000000001",
        "alertname": "HighLatency",
        "service": "checkout",
        "namespace": "shop",
        "incident": "shop/checkout/HighLatency",
        "labels": {"alertname": "HighLatency", "namespace": "shop", "service": "checkout"},
        "annotations": {"summary": "HighLatency on checkout"},
        "startsAt": "2026-03-01T10:00:00.000Z",
        "endsAt": None,  # Go's zero time means "not set"
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
        "source_labels": {"service": "service", "namespace": "namespace"},
        "groupKey": '{}:{service="checkout"}',
        "groupLabels": {"service": "checkout"},
        "receiver": "selfheal",
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
    }


def test_several_alerts_keep_their_order_and_status() -> None:
    resolved = alert(status="resolved", pod="checkout-1") | {"fingerprint": "c0ffee0000000002"}
    events = _alerts.normalize(payload(alert(), resolved, status="resolved"))
    assert [(e["status"], e["fingerprint"], e["endsAt"]) for e in events] == [
        ("firing", "c0ffee0000000001", None),
        ("resolved", "c0ffee0000000002", "2026-03-01T10:05:00.000Z"),
    ]


def test_missing_optional_fields_are_none_or_empty_and_fingerprint_is_derived() -> None:
    bare = {"status": "firing", "labels": {"alertname": "Down", "instance": "x:80"}}
    (event,) = _alerts.normalize({"alerts": [bare]})  # no version, no group fields at all
    assert (event["annotations"], event["startsAt"], event["endsAt"], event["generatorURL"]) == ({}, None, None, None)
    assert (event["groupKey"], event["receiver"], event["groupLabels"], event["truncatedAlerts"]) == (None, None, {}, 0)
    assert (event["service"], event["namespace"], event["incident"]) == (None, None, "_/_/Down")
    assert event["fingerprint"] == _alerts.fingerprint_of({"instance": "x:80", "alertname": "Down"})
    assert len(event["fingerprint"]) == 16
    assert event["fingerprint"] != _alerts.fingerprint_of({"alertname": "Down", "instance": "x:81"})


def test_an_empty_alert_list_gives_no_event() -> None:
    assert _alerts.normalize(payload()) == []


@pytest.mark.parametrize(
    ("labels", "service", "namespace", "used"),
    [
        ({"service": "checkout", "namespace": "shop"}, "checkout", "shop", ("service", "namespace")),
        ({"app_kubernetes_io_name": "cart", "app": "ignored", "namespace": "shop"}, "cart", "shop", None),
        ({"app": "cart", "job": "kubernetes-pods"}, "cart", None, ("app", None)),
        ({"deployment": "checkout-api", "job": "kube-state-metrics"}, "checkout-api", None, ("deployment", None)),
        ({"job": "checkout", "kubernetes_namespace": "shop"}, "checkout", "shop", ("job", "kubernetes_namespace")),
        # An exporter's own labels lose to the workload's, which Prometheus renamed to exported_*.
        (
            {"namespace": "monitoring", "exported_namespace": "shop", "service": "ksm", "exported_service": "cart"},
            "cart",
            "shop",
            ("exported_service", "exported_namespace"),
        ),
        ({"service": "", "app": "cart"}, "cart", None, ("app", None)),  # empty counts as absent
        ({"instance": "10.0.0.1:80"}, None, None, (None, None)),
    ],
)
def test_service_and_namespace_fallbacks(
    labels: dict[str, str], service: str | None, namespace: str | None, used: tuple[str | None, str | None] | None
) -> None:
    (event,) = _alerts.normalize({"alerts": [{"status": "firing", "labels": {"alertname": "A", **labels}}]})
    assert (event["service"], event["namespace"]) == (service, namespace)
    assert event["incident"] == f"{namespace or '_'}/{service or '_'}/A"
    if used is not None:
        assert (event["source_labels"]["service"], event["source_labels"]["namespace"]) == used


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "alertmanager payload: must be a JSON object, got a list"),
        ("alerts", "alertmanager payload: must be a JSON object, got a string"),
        ({"version": "4"}, "alertmanager payload: alerts: is required (this is not an Alertmanager webhook payload)"),
        ({"text": "hello"}, "alertmanager payload: alerts: is required"),
        ({"alerts": {"a": 1}}, "alertmanager payload: alerts: must be a list, got an object"),
        ({"version": "3", "alerts": []}, "alertmanager payload: version: unsupported version '3', expected \"4\""),
        ({"alerts": ["x"]}, "alertmanager payload: alerts[0]: must be an object, got a string"),
        (
            {"alerts": [{"labels": {"a": "b"}}]},
            'alertmanager payload: alerts[0].status: must be "firing" or "resolved"',
        ),
        (
            {"alerts": [{"status": "Firing", "labels": {}}]},
            'alerts[0].status: must be "firing" or "resolved", got \'Firing\'',
        ),
        ({"alerts": [{"status": "firing"}]}, "alertmanager payload: alerts[0].labels: is required"),
        ({"alerts": [{"status": "firing", "labels": ["a"]}]}, "alerts[0].labels: must be an object, got a list"),
        ({"alerts": [{"status": "firing", "labels": {"x": 1}}]}, "alerts[0].labels.x: must be a string, got a number"),
        (
            {"alerts": [{"status": "firing", "labels": {}, "annotations": {"s": None}}]},
            "alerts[0].annotations.s: must be a string, got null",
        ),
        ({"alerts": [{"status": "firing", "labels": {}, "startsAt": 5}]}, "alerts[0].startsAt: must be a string"),
        ({"alerts": [{"status": "firing", "labels": {}, "fingerprint": {}}]}, "alerts[0].fingerprint: must be a str"),
        ({"alerts": [], "truncatedAlerts": -1}, "truncatedAlerts: must be an integer >= 0"),
        ({"alerts": [], "receiver": 7}, "receiver: must be a string, got a number"),
    ],
)
def test_non_alertmanager_payloads_name_the_field(document: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _alerts.normalize(document)
    assert message in str(caught.value)
    assert caught.value.source == "alertmanager payload"


def test_a_later_bad_alert_is_named_by_its_index() -> None:
    with pytest.raises(ValidationError, match=r"alerts\[1\]\.labels: is required"):
        _alerts.normalize(payload(alert(), {"status": "firing"}))


def test_error_messages_cut_untrusted_text_short() -> None:
    with pytest.raises(ValidationError) as caught:
        _alerts.normalize({"alerts": [{"status": "x" * 500, "labels": {}}]})
    assert len(str(caught.value)) < 150


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain text", "plain text"),
        ("{single} braces } and {", "{single} braces } and {"),
        ("{{ lookup('pipe', 'id') }}", "{{ '{{' }} lookup('pipe', 'id') }}"),
        ("{% if x %}{# c #}", "{{ '{%' }} if x %}{{ '{#' }} c #}"),
        ("{{{", "{{ '{{' }}{"),
        ("{{%", "{{ '{{' }}%"),
    ],
)
def test_escape_rewrites_only_jinja_openings(text: str, escaped: str) -> None:
    assert _alerts.escape_templates(text) == escaped
    assert _alerts.unescape_templates(escaped) == text


def test_escape_walks_values_but_leaves_keys_and_other_types() -> None:
    value = {"{{ k }}": ["{{ v }}", 3, None, True, {"x": "{%"}]}
    assert _alerts.escape_templates(value) == {"{{ k }}": ["{{ '{{' }} v }}", 3, None, True, {"x": "{{ '{%' }}"}]}


def test_escape_is_exactly_reversible_on_arbitrary_text() -> None:
    rng = random.Random(7)
    alphabet = "{}%#' ab\n"
    for _case in range(3000):
        text = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 24)))
        escaped = _alerts.escape_templates(text)
        assert _alerts.unescape_templates(escaped) == text
        # Outside the escape expressions no opening is left for Jinja to act on.
        assert not _alerts._OPENING.search(_alerts._ESCAPED_OPENING.sub("", escaped))


def test_jinja_renders_escaped_text_back_verbatim() -> None:
    jinja2 = pytest.importorskip("jinja2")
    # Ansible's own settings: trim_blocks only touches {% %} blocks, the escapes are {{ }} expressions.
    env = jinja2.Environment(keep_trailing_newline=True, trim_blocks=True)
    rng = random.Random(11)
    alphabet = "{}%#'\"- ab\n"
    for _case in range(2000):
        text = "".join(rng.choice(alphabet) for _char in range(rng.randint(0, 24)))
        assert env.from_string(_alerts.escape_templates(text)).render() == text


def test_odd_label_names_are_quoted_and_cut_in_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        _alerts.normalize({"alerts": [{"status": "firing", "labels": {"x\n" * 100: 1}}]})
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 150


# --- one alert as the snapshot's alert block, and the service it names ----------------------------------------------


def test_alert_block_keeps_the_alert_and_what_the_notification_said_around_it() -> None:
    raw = dict(alert(), receiver="selfheal", groupKey='{}:{alertname="HighLatency"}', ignored="x")
    block = _alerts.alert_block(raw)
    assert block is not None
    assert block["status"] == "firing" and block["labels"]["service"] == "checkout"
    assert block["startsAt"] == "2026-03-01T10:00:00.000Z"
    assert block["receiver"] == "selfheal" and block["groupKey"] == raw["groupKey"]
    assert "ignored" not in block
    assert _alerts.alert_block(None) is None and _alerts.alert_block({}) is None


@pytest.mark.parametrize(
    ("namespace", "service", "expected"),
    [
        pytest.param(None, None, ("shop", "checkout"), id="from-the-labels"),
        pytest.param("web", "cart", ("web", "cart"), id="options-win-over-labels"),
        pytest.param(None, "cart", ("shop", "cart"), id="one-option-one-label"),
    ],
)
def test_target_of_takes_the_options_then_the_alerts_labels(
    namespace: str | None, service: str | None, expected: tuple[str, str]
) -> None:
    assert _alerts.target_of(alert(), namespace, service) == expected


def test_target_of_without_a_service_anywhere_names_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="namespace and service are required"):
        _alerts.target_of(None, "shop", None)
