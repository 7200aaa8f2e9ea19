"""The platform view the warm loop's checks share: one Prometheus round for the checks running together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import GatherError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.platform import SharedPlatform

INTENTS = [
    {"service": f"svc-{i}", "namespace": "shop", "objectives": {"max_error_rate": 1.0}, "indicators": {}}
    for i in range(4)
]


class Prometheus:
    """Counts rounds; each round answers every key asked, or fails while ``failing`` is set. ``gate``, when given,
    holds every round until it is set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.rounds: list[set[str]] = []
        self.gate, self.failing = gate, False
        self._lock = threading.Lock()

    def indicators(self, queries: dict[str, dict[str, str]], at: float | None = None) -> dict[str, dict[str, Any]]:
        with self._lock:
            self.rounds.append(set(queries))
            n = len(self.rounds)
        if self.gate is not None and not self.gate.wait(5):
            raise AssertionError("the gate was never opened")
        if self.failing:
            raise GatherError("Prometheus at http://prom did not answer: connection refused")
        return {key: {"error_rate": float(n)} for key in queries}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def until(probe: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_checks_running_together_share_one_round() -> None:
    gate = threading.Event()
    prom = Prometheus(gate)
    shared = SharedPlatform(max_age=5, wait=5)
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(shared.read(1, INTENTS, prom))) for _ in range(8)]
    for thread in threads:
        thread.start()
    until(lambda: shared.shared == 7)  # seven checks wait on the round the first one asked
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(prom.rounds) == 1 and shared.rounds == 1
    assert prom.rounds[0] == {f"shop/svc-{i}" for i in range(4)}, "every intent's objectives in the one round"
    assert len(answers) == 8 and all(a is answers[0] for a in answers)


def test_an_answer_serves_for_max_age_then_is_asked_again() -> None:
    clock, prom = Clock(), Prometheus()
    shared = SharedPlatform(max_age=5, wait=5, clock=clock)
    first = shared.read(1, INTENTS, prom)
    clock.now += 4.9
    assert shared.read(1, INTENTS, prom) is first and len(prom.rounds) == 1
    clock.now += 0.2
    again = shared.read(1, INTENTS, prom)
    assert len(prom.rounds) == 2 and again["shop/svc-0"]["error_rate"] == 2.0


def test_with_max_age_zero_only_a_round_in_flight_is_shared() -> None:
    clock, prom = Clock(), Prometheus()
    shared = SharedPlatform(max_age=0, wait=5, clock=clock)
    shared.read(1, INTENTS, prom)
    clock.now += 0.001
    shared.read(1, INTENTS, prom)
    assert len(prom.rounds) == 2


def test_another_catalog_version_is_asked_afresh() -> None:
    prom = Prometheus()
    shared = SharedPlatform(max_age=60, wait=5)
    shared.read(1, INTENTS, prom)
    fewer = shared.read(2, INTENTS[:2], prom)
    assert len(prom.rounds) == 2 and set(fewer) == {"shop/svc-0", "shop/svc-1"}


def test_a_failed_round_is_never_kept_as_an_answer() -> None:
    prom = Prometheus()
    prom.failing = True
    shared = SharedPlatform(max_age=60, wait=5)
    with pytest.raises(GatherError, match="connection refused"):
        shared.read(1, INTENTS, prom)
    with pytest.raises(GatherError, match="connection refused"):
        shared.read(1, INTENTS, prom)
    assert len(prom.rounds) == 2, "each check after a failure asks again"
    prom.failing = False
    assert shared.read(1, INTENTS, prom)["shop/svc-0"]["error_rate"] == 3.0


def test_every_check_waiting_on_a_failed_round_gets_its_error() -> None:
    gate = threading.Event()
    prom = Prometheus(gate)
    prom.failing = True
    shared = SharedPlatform(max_age=60, wait=5)
    errors: list[BaseException] = []

    def check() -> None:
        try:
            shared.read(1, INTENTS, prom)
        except GatherError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    until(lambda: shared.shared == 3)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(errors) == 4 and len(prom.rounds) == 1


def test_an_unexpected_failure_of_the_round_is_a_gather_error() -> None:
    class Broken:
        def indicators(self, queries: Any, at: Any = None) -> Any:
            raise ValueError("bad JSON from the proxy")

    with pytest.raises(GatherError, match="bad JSON from the proxy"):
        SharedPlatform(max_age=60, wait=5).read(1, INTENTS, Broken())


def test_a_check_waits_for_another_checks_round_no_longer_than_wait() -> None:
    gate = threading.Event()
    prom = Prometheus(gate)
    shared = SharedPlatform(max_age=60, wait=0.05)
    leader = threading.Thread(target=lambda: shared.read(1, INTENTS, prom))
    leader.start()
    until(lambda: len(prom.rounds) == 1)
    try:
        with pytest.raises(GatherError, match="did not come within 0.05s"):
            shared.read(1, INTENTS, prom)
    finally:
        gate.set()
        leader.join(5)
