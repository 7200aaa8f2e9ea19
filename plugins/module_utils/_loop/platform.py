# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# The platform view of principle 7, read once and shared by the warm loop's checks that run at the same time.

"""Every intent's objectives in one Prometheus round, shared by concurrent checks (single flight, short age).

A check's platform view (``observed.platform``) counts the services that breach their objectives now, so it reads
every intent's objective indicators. Done per check, that round grows with the number of intents and is asked
once per check: 60 services breaking at once meant 60 rounds of 60 services' queries. :class:`SharedPlatform`
asks it once for the checks that run together: the first check starts the round, the checks that come while it
runs wait for its answer, and the answer serves later checks while it is younger than ``max_age`` seconds. Each
check still reads its own service's indicators fresh, in a round of its own.

A round that fails is never kept: its waiters get the error (the check then knows nothing, as when Prometheus is
down, and escalates), and the next check asks again. An answer is kept per catalog version, so a check against
intents read again never counts with a view of the old ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import GatherError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._gather.queries import objective_queries

Indicators = dict[str, dict[str, Any]]
# The platform view as a check asks for it: every intent's objective indicators, keyed "namespace/service".
PlatformReader = Callable[[list[dict[str, Any]]], Indicators]


class _Round:
    """One Prometheus round for a catalog version: in flight until ``done`` is set, then its answer or its error."""

    def __init__(self, version: Hashable, started: float) -> None:
        self.version, self.started = version, started
        self.done = threading.Event()
        self.answer: Indicators | None = None
        self.error: GatherError | None = None


class SharedPlatform:
    """Single-flight cache of the platform round, keyed by the catalog's version, valid for ``max_age`` seconds
    from the moment it was asked (0: only the checks that come while it is in flight share it). ``wait`` bounds
    how long a check waits for a round another check started (the round itself is bounded by the Prometheus
    client's timeout)."""

    def __init__(self, max_age: float, wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age, self.wait, self.clock = max_age, wait, clock
        self._lock = threading.Lock()
        self._round: _Round | None = None
        self.rounds = 0  # rounds asked of Prometheus (the /metrics and the tests read it)
        self.shared = 0  # reads answered by a round another check asked

    def reader(self, version: Hashable, prom: Any) -> PlatformReader:
        """What a check calls for its platform view (``_check.Clients.platform``)."""
        return lambda intents: self.read(version, intents, prom)

    def read(self, version: Hashable, intents: list[dict[str, Any]], prom: Any) -> Indicators:
        """Every intent's objective indicators, from the round in flight or a young one; raises GatherError when
        the round this read shares failed or did not come within ``wait``."""
        with self._lock:
            current, now = self._round, self.clock()
            same = current is not None and current.version == version
            # A round in flight is joined whatever its age: it is the freshest answer there can be.
            joined = same and current is not None and not current.done.is_set()
            young = (
                same and current is not None and current.answer is not None and now - current.started <= self.max_age
            )
            if current is not None and (joined or young):
                self.shared += 1
                leader = False
            else:
                current = self._round = _Round(version, now)
                self.rounds += 1
                leader = True
        if leader:
            self._ask(current, intents, prom)
        elif not current.done.wait(self.wait):
            raise GatherError(f"the platform view did not come within {self.wait:g}s (asked by another check)")
        if current.answer is None:
            raise current.error or GatherError("the platform view is unknown")
        return current.answer

    def _ask(self, current: _Round, intents: list[dict[str, Any]], prom: Any) -> None:
        try:
            current.answer = prom.indicators(objective_queries(intents))
        except GatherError as exc:
            current.error = exc
        except Exception as exc:  # noqa: BLE001 - any failure is the waiters' too: none may count on a half round
            current.error = GatherError(f"cannot read the platform view: {exc!r}")
        finally:
            if current.answer is None:
                with self._lock:  # never kept: the next check asks again
                    if self._round is current:
                        self._round = None
            current.done.set()
