# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is loaded by the collection's event sources (extensions/eda/plugins/event_source); import it only from there.
"""The warm loop while its journal cannot be reached (a PostgreSQL server stopped, restarting or refusing).

Every guardrail that looks back (cooldown, circuit breaker, "failed this hour", what is in progress elsewhere)
reads the journal, so without it a decision is blind: the loop does not act. What it does instead:

- The alert is parked, not dropped: the future the loop gave its source is left pending, so the alertmanager
  source keeps it (and everything after it) in its spool until it is journaled; a restart of the source finds it
  there. Alerts that come meanwhile are parked without a check.
- Each service with a firing alert is escalated once per outage, through the same notify code as every escalation,
  saying why: "guardrails unknown: journal unreachable". That escalation cannot be journaled when it is sent; it is
  kept here and journaled (a decision ``escalate``, rule :data:`RULE`, with how the sending went) once the journal
  answers again, before anything else is. It is sent at once rather than held: a human must know now that the
  loop is blind, and the record can wait.
- The loop probes the journal every ``probe_seconds``; once it answers, the owed escalations are journaled and the
  parked alerts offered again, in arrival order, each checked and journaled as if it had just come. The future of
  each parked group is done once all of its alerts are, which is when the source's spool lets go of them.

Only this process's memory holds an owed escalation: a source killed during the outage re-checks its spooled
alerts after its restart (and escalates again if the journal is still down), but the record of the first
escalation is lost.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RULE = "journal-unreachable"
PROBE_SECONDS = 2.0


def reason(error: str) -> str:
    return f"guardrails unknown: journal unreachable ({error}); nothing is done until it answers again"


@dataclass
class Owed:
    """An escalation sent while the journal was down, journaled once it is back."""

    namespace: str
    service: str
    decision: dict[str, Any]
    alert: dict[str, Any] | None
    fingerprint: str | None
    at: datetime


@dataclass
class Outage:
    """What the loop holds while the journal is down (None: it answers). Blocking parts are thread-safe."""

    error: str | None = None
    parked: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = field(default_factory=list)
    owed: list[Owed] = field(default_factory=list)
    told: set[str] = field(default_factory=set)
    probe: asyncio.Task[None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def down(self) -> bool:
        return self.error is not None

    def lost(self, error: BaseException) -> bool:
        """The journal stopped answering; True when this starts an outage (the caller starts the probe)."""
        started = self.error is None
        self.error = str(error)
        return started and (self.probe is None or self.probe.done())

    def park(self, alerts: list[dict[str, Any]], future: asyncio.Future[None] | None = None) -> asyncio.Future[None]:
        """Keep alerts until the journal is back; return the future that is done once they are journaled."""
        held = future if future is not None else asyncio.get_running_loop().create_future()
        self.parked.append((alerts, held))
        return held

    def first_for(self, key: str) -> bool:
        """Is this the first blind check of the service in this outage (the one that escalates)?"""
        with self._lock:
            first = key not in self.told
            self.told.add(key)
            return first

    def owe(self, escalation: Owed) -> None:
        with self._lock:
            self.owed.append(escalation)

    def back(self) -> list[Owed]:
        """The journal answers again: forget the outage; return the escalations to journal now."""
        with self._lock:
            self.error = None
            self.told.clear()
            owed, self.owed = self.owed, []
        return owed
