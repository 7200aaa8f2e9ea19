"""Intent files: shapes, directories, duplicates, defaults and the wording of validation errors."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import SelfHealError, ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.intent import (
    INTENT_SCHEMA,
    RECOVERY_DEFAULTS,
    find_intent,
    intent_from_dict,
    intent_to_dict,
    intent_with_defaults,
    intents_from_document,
    load_intents,
    load_intents_with_sources,
    validate_intent,
)

CHECKOUT = """\
service: checkout
namespace: shop
objectives: {max_latency_ms: 250}
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Messages name files as the caller wrote them, so run from a directory with relative paths.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(INTENT_SCHEMA)


# --- shapes and defaults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        CHECKOUT,
        "- " + CHECKOUT.replace("\n", "\n  ").rstrip() + "\n",
        "intents:\n  - " + CHECKOUT.replace("\n", "\n    ").rstrip() + "\n",
    ],
    ids=["one-intent", "list", "intents-key"],
)
def test_an_intent_file_holds_one_intent_a_list_or_an_intents_key(in_tmp: Path, text: str) -> None:
    path = write(in_tmp, "shop.yml", text)
    assert [(i["namespace"], i["service"]) for i in load_intents(path)] == [("shop", "checkout")]


def test_defaults_are_filled_in(in_tmp: Path) -> None:
    intent = load_intents(write(in_tmp, "shop.yml", CHECKOUT))[0]
    assert intent["target"] == {"kind": "Deployment", "name": "checkout"}
    assert intent["recovery"] == RECOVERY_DEFAULTS
    assert intent["objectives"] == {"max_latency_ms": 250}
    assert (intent["indicators"], intent["manifests"], intent["dependencies"], intent["tenants"]) == (
        {},
        None,
        [],
        None,
    )


def test_partial_recovery_keeps_other_defaults() -> None:
    intent = validate_intent({"service": "a", "namespace": "b", "recovery": {"max_replicas": 4}}, "x")
    assert intent["recovery"] == {**RECOVERY_DEFAULTS, "max_replicas": 4}


def test_a_complete_intent_validates_again_and_round_trips() -> None:
    full = {
        "service": "checkout",
        "namespace": "shop",
        "target": {"kind": "Deployment", "name": "checkout-v2"},
        "objectives": {"availability": 99.9, "max_latency_ms": 250, "max_error_rate": 0.5},
        "recovery": {**RECOVERY_DEFAULTS, "allow_reroute": False},
        "indicators": {"latency_p99_ms": "histogram_quantile(0.99, x)", "window": "10m"},
        "manifests": "manifests/checkout",
        "dependencies": [{"name": "payments-db", "query": "up{job='db'}"}, {"name": "cache"}],
        "tenants": {"query": "sum by (tenant) (rate(x[5m]))"},
    }
    complete = validate_intent(full, "x")
    assert validate_intent(complete, "x") == complete  # a loaded intent can be embedded in a snapshot
    assert intent_to_dict(intent_from_dict(complete)) == complete


def test_directory_reads_yml_and_yaml_in_name_order_and_ignores_other_files(in_tmp: Path) -> None:
    write(in_tmp, "intents/b.yaml", "service: b\nnamespace: shop\n")
    write(in_tmp, "intents/a.yml", "- {service: a, namespace: shop}\n- {service: a, namespace: other}\n")
    write(in_tmp, "intents/README.md", "not yaml: [")
    write(in_tmp, "intents/nested/c.yml", "service: c\nnamespace: shop\n")
    loaded = load_intents_with_sources("intents")
    assert [(source, i["namespace"], i["service"]) for source, i in loaded] == [
        ("intents/a.yml", "shop", "a"),
        ("intents/a.yml", "other", "a"),
        ("intents/b.yaml", "shop", "b"),
    ]
    assert find_intent(load_intents("intents"), "other", "a") is not None
    assert find_intent(load_intents("intents"), "other", "b") is None


def test_same_service_in_another_namespace_is_not_a_duplicate() -> None:
    intents = intents_from_document([{"service": "a", "namespace": "x"}, {"service": "a", "namespace": "y"}], "f")
    assert len(intents) == 2


# --- errors ------------------------------------------------------------------------------------------------------


def _error(in_tmp: Path, text: str, name: str = "intents/shop.yml") -> ValidationError:
    write(in_tmp, name, text)
    with pytest.raises(ValidationError) as caught:
        load_intents(name)
    return caught.value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "service: checkout\nnamespace: shop\nobjectives: {max_latency_ms: fast}\n",
            'intents/shop.yml: checkout.objectives.max_latency_ms: must be a number > 0, got "fast"',
        ),
        ("service: checkout\nnamespace: shop\nfoo: 1\n", "intents/shop.yml: checkout: unknown key 'foo'"),
        ("service: checkout\n", "intents/shop.yml: checkout: required key 'namespace' is missing"),
        (
            "service: checkout\nnamespace: shop\nobjectives: {max_latency: 250}\n",
            "intents/shop.yml: checkout.objectives: unknown key 'max_latency' (did you mean 'max_latency_ms'?)",
        ),
        (
            "service: checkout\nnamespace: shop\nobjectives: {availability: 150}\n",
            "intents/shop.yml: checkout.objectives.availability: must be a number > 0 and <= 100, got 150",
        ),
        (
            "service: checkout\nnamespace: shop\nrecovery: {min_replicas: 5, max_replicas: 3}\n",
            "intents/shop.yml: checkout.recovery.min_replicas: must not exceed max_replicas 3, got 5",
        ),
        (
            "service: checkout\nnamespace: shop\nrecovery: {min_replicas: 12}\n",
            "intents/shop.yml: checkout.recovery.min_replicas: must not exceed max_replicas 10, got 12",
        ),
        (
            "service: checkout\nnamespace: shop\nrecovery: {min_replicas: 0}\n",
            "intents/shop.yml: checkout.recovery.min_replicas: must be a whole number >= 1, got 0",
        ),
        (
            "service: checkout\nnamespace: shop\nrecovery: {allow_restart: maybe}\n",
            'intents/shop.yml: checkout.recovery.allow_restart: must be true or false, got "maybe"',
        ),
        (
            "service: checkout\nnamespace: shop\ntarget: {kind: StatefulSet, name: checkout}\n",
            'intents/shop.yml: checkout.target.kind: must be Deployment, got "StatefulSet"',
        ),
        (
            "service: checkout\nnamespace: shop\nindicators: {window: five}\n",
            'intents/shop.yml: checkout.indicators.window: must be a Prometheus duration such as "5m", got "five"',
        ),
        (
            "service: checkout\nnamespace: shop\nindicators: {latency: x}\n",
            "intents/shop.yml: checkout.indicators: unknown key 'latency' (did you mean 'latency_p99_ms'?)",
        ),
        (
            "service: Checkout\nnamespace: shop\n",
            "intents/shop.yml: service: must be a Kubernetes name (lowercase letters, digits and '-', at most 63 "
            'characters), got "Checkout"',
        ),
        (
            "service: checkout\nnamespace: shop\ndependencies: [{name: db}, {name: db}]\n",
            "intents/shop.yml: checkout.dependencies[1].name: dependency 'db' is listed twice",
        ),
        (
            "- {service: a, namespace: x}\n- {namespace: x}\n",
            "intents/shop.yml: intents[1]: required key 'service' is missing",
        ),
        ("", "intents/shop.yml: contains no intent"),
        ("just text\n", "intents/shop.yml: must hold an intent, a list of intents or {intents: [...]}"),
        (
            "service: a\nservice: b\nnamespace: x\n",
            "intents/shop.yml: not valid YAML at line 2, column 1: duplicate key 'service' in one mapping",
        ),
        (
            "service: [\n",
            "intents/shop.yml: not valid YAML at line 2, column 1: expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_error_messages_name_file_path_and_problem(in_tmp: Path, text: str, message: str) -> None:
    assert str(_error(in_tmp, text)) == message


def test_every_problem_of_every_intent_is_listed(in_tmp: Path) -> None:
    error = _error(in_tmp, "- {service: a, namespace: x, foo: 1}\n- {service: b, objectives: {max_latency_ms: -1}}\n")
    assert error.problems == (
        "intents/shop.yml: a: unknown key 'foo'",
        "intents/shop.yml: b.objectives.max_latency_ms: must be a number > 0, got -1",
        "intents/shop.yml: b: required key 'namespace' is missing",
    )
    assert (error.source, error.path, error.problem) == ("intents/shop.yml", "a", "unknown key 'foo'")


def test_duplicate_across_files_names_both(in_tmp: Path) -> None:
    write(in_tmp, "intents/a.yml", CHECKOUT)
    write(in_tmp, "intents/b.yml", CHECKOUT)
    with pytest.raises(ValidationError) as caught:
        load_intents("intents")
    assert str(caught.value) == (
        "intents/b.yml: checkout: duplicate intent for shop/checkout: already declared in intents/a.yml"
    )


def test_duplicate_within_one_file(in_tmp: Path) -> None:
    error = _error(in_tmp, "- {service: a, namespace: x}\n- {service: a, namespace: x}\n")
    assert str(error) == "intents/shop.yml: a: duplicate intent for x/a: already declared earlier in this file"


def test_missing_path_is_a_validation_error(in_tmp: Path) -> None:
    with pytest.raises(ValidationError, match=r"^nowhere\.yml: no such file or directory$"):
        load_intents("nowhere.yml")


def test_validation_error_is_a_selfheal_error() -> None:
    with pytest.raises(SelfHealError):
        validate_intent({"service": "a"}, "x")


def test_unquoted_times_and_dates_stay_text(in_tmp: Path) -> None:
    # PyYAML alone reads 18:00 as 1080 and a bare date as a date; intents keep what the author wrote.
    intent = load_intents(write(in_tmp, "shop.yml", "service: a\nnamespace: x\nmanifests: 2026-03-01\n"))[0]
    # Text, resolved next to the intent file like any relative manifests directory.
    assert intent["manifests"] == str(in_tmp.resolve() / "2026-03-01")


def test_absolute_manifests_directory_is_kept(in_tmp: Path) -> None:
    intent = load_intents(write(in_tmp, "shop.yml", "service: a\nnamespace: x\nmanifests: /srv/declared\n"))[0]
    assert intent["manifests"] == "/srv/declared"


def test_every_indicator_the_adapter_queries_can_be_overridden_and_no_other() -> None:
    prom: Any = pytest.importorskip("ansible_collections.zerotouch.selfheal.plugins.module_utils._prom")
    overrides = {name: f"my_{name}" for name in prom.DEFAULT_QUERIES}
    intent = validate_intent({"service": "a", "namespace": "x", "indicators": overrides}, "i.yml")
    assert prom.indicator_queries("x", "a", "a", overrides=intent["indicators"]) == overrides
    # An override under a name the adapter does not query would be silently ignored: refuse it.
    with pytest.raises(ValidationError, match=r"a.indicators: unknown key 'latency_p50' \(did you mean"):
        validate_intent({"service": "a", "namespace": "x", "indicators": {"latency_p50": "up"}}, "i.yml")


def test_intent_with_defaults_does_not_alias_its_input() -> None:
    raw: dict[str, Any] = {"service": "a", "namespace": "x", "dependencies": [{"name": "db"}]}
    complete = intent_with_defaults(raw)
    complete["dependencies"][0]["name"] = "changed"
    assert raw["dependencies"][0] == {"name": "db"}


def test_tenant_window_is_a_duration() -> None:
    intent = validate_intent({"service": "a", "namespace": "x", "indicators": {"tenant_window": "30s"}}, "i.yml")
    assert intent["indicators"]["tenant_window"] == "30s"
    with pytest.raises(ValidationError, match=r"a.indicators.tenant_window: "):
        validate_intent({"service": "a", "namespace": "x", "indicators": {"tenant_window": "soon"}}, "i.yml")
