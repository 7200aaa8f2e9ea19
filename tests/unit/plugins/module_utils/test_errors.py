"""The error hierarchy module shells rely on: one base class, messages that say what and where."""

from __future__ import annotations

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils import _errors
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    MissingLibraryError,
    SelfHealError,
    ValidationError,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import Schema


@pytest.mark.parametrize(
    "name",
    ["ValidationError", "ApiError", "GatherError", "JournalError", "DecisionError", "MissingLibraryError"],
)
def test_every_error_derives_from_the_base(name: str) -> None:
    assert issubclass(getattr(_errors, name), SelfHealError)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (
            ("intents/shop.yml", "checkout.objectives.max_latency_ms", 'must be a number > 0, got "fast"'),
            'intents/shop.yml: checkout.objectives.max_latency_ms: must be a number > 0, got "fast"',
        ),
        (("policy.yml", "", "must be a mapping, got a list"), "policy.yml: must be a mapping, got a list"),
    ],
)
def test_validation_error_format(args: tuple[str, str, str], text: str) -> None:
    error = ValidationError(*args)
    assert (str(error), error.problems, (error.source, error.path, error.problem)) == (text, (text,), args)


def test_missing_jsonschema_is_reported_for_missing_required_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.zerotouch.selfheal.plugins.module_utils import _schema

    monkeypatch.setattr(_schema, "HAS_JSONSCHEMA", False)
    monkeypatch.setattr(_schema, "JSONSCHEMA_IMPORT_ERROR", "Traceback: No module named 'jsonschema'")
    with pytest.raises(MissingLibraryError) as caught:
        Schema({"type": "object"}).validate({}, "x")
    assert (caught.value.library, caught.value.traceback) == ("jsonschema", "Traceback: No module named 'jsonschema'")
