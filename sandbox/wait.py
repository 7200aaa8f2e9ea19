"""One polling helper for the sandbox, the demo, the benchmarks and the tests: never sleep blindly, poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    timeout: float = 15.0,
    what: str = "condition",
    interval: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe()`` until it returns something truthy and return that; raise TimeoutError otherwise.

    The error names ``what`` was awaited and the probe's last value, followed by ``detail()`` when given (the tail
    of a log, say), so a timeout in CI explains itself.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {timeout:g}s waiting for {what}; last value: {value!r}"
            if detail is not None:
                message += "\n" + detail()
            raise TimeoutError(message)
        time.sleep(interval)
