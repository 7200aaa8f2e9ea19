"""The module shells' one error mapping (plugins/module_utils/_shell.py)."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import (
    ApiError,
    MissingLibraryError,
    ValidationError,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._shell import run


class FakeModule:
    def __init__(self) -> None:
        self.exited: dict[str, Any] | None = None
        self.failed: dict[str, Any] | None = None

    def exit_json(self, **result: Any) -> None:
        self.exited = result

    def fail_json(self, **result: Any) -> None:
        self.failed = result


def test_result_exits_the_module() -> None:
    module = FakeModule()
    run(module, lambda: {"changed": True, "x": 1})
    assert (module.exited, module.failed) == ({"changed": True, "x": 1}, None)


@pytest.mark.parametrize(
    "error",
    [ApiError("cannot scale shop/checkout: Forbidden"), ValidationError("options", "replicas", "must be >= 0")],
)
def test_collection_errors_fail_with_their_message(error: Exception) -> None:
    module = FakeModule()

    def work() -> dict[str, Any]:
        raise error

    run(module, work)
    assert module.exited is None
    assert module.failed == {"msg": str(error)}


def test_a_missing_library_is_named() -> None:
    module = FakeModule()

    def work() -> dict[str, Any]:
        raise MissingLibraryError("kubernetes")

    run(module, work)
    assert module.failed is not None and "kubernetes" in module.failed["msg"]


def test_a_bug_is_not_swallowed() -> None:
    def work() -> dict[str, Any]:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run(FakeModule(), work)
