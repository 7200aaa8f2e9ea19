# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is loaded by the collection's event sources (extensions/eda/plugins/event_source); import it only from there.
"""Receivers that share one journal (an HA pair behind Alertmanager, which posts every alert to each): one action.

Each receiver's :class:`Peers` sits in front of its :class:`._warm.Loop`:

- **Accept once between them.** Every alert goes through the journal's ``accept_alert`` with this loop's instance
  id and the alert itself: the first receiver to accept it checks it, every other copy is a duplicate. Once its
  check is journaled (or it was linked to a decision, or it closed its incident) its owner marks it handled.
- **Liveness.** Each loop renews a lease of its own in the journal (``renew_instance``) three times per
  ``lock_lease_seconds``; a loop killed with ``kill -9`` stops renewing, and its lease lapses.
- **Follow a peer's claim.** A firing alert of a service this loop is idle on, while another loop's claimed action
  on it is unfinished, is linked to that decision instead of checked (the check would find the target locked,
  cost a worker, and its settle would hold the service's next alerts): what one loop does with what comes while it
  acts, across loops.
- **Take over.** Every sweep (as often as the lease is renewed) takes over, through one conditional UPDATE, the
  alerts that a dead loop accepted and whose check was never journaled - the copy this receiver got of them was
  dropped as a duplicate - and checks them. It also settles a dead loop's unfinished actions as a restarted loop
  does (``Loop._recover_one``: verify what was applied, run again what had started, give back what never did),
  each only once its claim's lease has lapsed and the loop that follows it (``hold_actions``, at every renewal) is
  dead, and only by the one loop that wins ``take_over_action``.

Nothing here reads a value and writes on the strength of it: which loop gets an alert or an action is the outcome
of one statement the database runs atomically (a unique key, an upsert, an UPDATE's WHERE).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import SelfHealError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import is_url
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import check as _check
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import warm as _warm

logger = logging.getLogger("zerotouch.selfheal.peers")

Key = tuple[str, str, str]
FLUSH_SECONDS = 0.5  # how often the alerts handled meanwhile are marked so, in one transaction


def shared(config: _warm.Config) -> bool:
    """Do receivers share this loop's journal? A PostgreSQL journal is made for that; an SQLite file is local."""
    return is_url(config.journal)


def key_of(alert: Mapping[str, Any]) -> Key | None:
    """The journal's dedupe key of an alert event, None when it has no fingerprint, status or start."""
    fingerprint, status, starts = alert.get("fingerprint"), alert.get("status"), alert.get("startsAt")
    if not (isinstance(fingerprint, str) and fingerprint and isinstance(status, str) and status):
        return None
    return (fingerprint, status, starts) if isinstance(starts, str) and starts else None


class Peers:
    """The shared intake and the take-over of a dead peer's work, for one loop; see the module docstring."""

    def __init__(self, loop: _warm.Loop, instance: str | None = None) -> None:
        self.loop = loop
        if instance is not None:
            loop.instance = instance
        self.instance = loop.instance  # one name: the loop's recovery takes over actions as this receiver
        self.lease = timedelta(seconds=loop.config.lock_lease_seconds)
        self.every = loop.config.renew_every
        self.counts = {
            "accepted": 0,
            "duplicates": 0,
            "linked_to_peer": 0,
            "taken_over": 0,
            "actions_taken_over": 0,
            "unshared": 0,
        }
        self._handled: list[Key] = []
        self._recovering: set[int] = set()
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        """Say this loop is alive (its heartbeat), then sweep and mark in the background (instead of ``Loop.recover``:
        the first sweep settles what a loop before this one left, once its leases lapse). A journal that does not
        answer yet does not stop the source: the renewals go on trying, and alerts wait as in any outage."""
        # The loop's own heartbeat, apart from the sweep: a sweep that waits for a worker (a full pool) must not let
        # the lease lapse.
        await self.loop.stay_alive(self.lease)
        self.loop._spawn(self.loop._settle_abandoned_approvals(datetime.now(UTC)))
        self._tasks = [
            asyncio.ensure_future(self._every(self.every, self.sweep)),
            asyncio.ensure_future(self._flush()),
        ]

    async def stop(self) -> None:
        """Stop sweeping; mark what was handled; retire the loop, so a peer takes over at once what is left."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._mark_handled()
        except SelfHealError as exc:
            logger.error("cannot mark what loop %s handled: %s", self.instance, exc)
        await self.loop.retire()

    # --- intake -----------------------------------------------------------------------------------------------

    async def offer(self, alert: dict[str, Any]) -> asyncio.Future[None] | None:
        """The receiver's sink: accept the alert in the journal, and hand it to the loop if this receiver got it
        first (as ``Loop.offer``: None, or a future done once its check is journaled)."""
        key = key_of(alert)
        if key is None:
            return await self.loop.offer(alert)
        try:
            fresh = await self.loop._in_pool(self._accept, key, alert)
        except SelfHealError as exc:
            # Never drop what cannot be deduplicated: checking it twice is guarded by the lock and the cooldown.
            logger.error("cannot accept an alert in the journal, checking it anyway: %s", exc)
            self.counts["unshared"] += 1
            return await self.loop.offer(alert)
        if not fresh:
            self.counts["duplicates"] += 1
            return None
        self.counts["accepted"] += 1
        if await self._linked_to_peer(key, alert):
            return None
        return await self._hand_over(key, alert)

    async def _linked_to_peer(self, key: Key, alert: dict[str, Any]) -> bool:
        """A firing alert of a service this loop is idle on, while another loop acts on it (its claim is in the
        journal, not finished): linked to that decision, as this loop links what comes while it acts itself. Not
        checked: the check would find the target locked, and its settle would hold the service's next alerts."""
        state = self.loop.services.get(f"{alert.get('namespace')}/{alert.get('service')}")
        if alert.get("status") != "firing" or (state is not None and (state.phase != "idle" or state.timer)):
            return False
        try:
            decision_id = await self.loop._in_pool(
                self.loop.clients.journal().claimed_decision, str(alert["namespace"]), str(alert["service"])
            )
            if decision_id is None:
                return False
            await self.loop._in_pool(
                self.loop.clients.journal().link_alert,
                decision_id,
                _check.alert_block(alert) or {},
                "came while another receiver acted on its service",
            )
        except SelfHealError as exc:  # checked instead: nothing is lost
            logger.error("cannot link an alert to a peer's decision: %s", exc)
            return False
        self.counts["linked_to_peer"] += 1
        self._handled.append(key)
        return True

    async def _hand_over(self, key: Key, alert: dict[str, Any]) -> asyncio.Future[None] | None:
        journaled = await self.loop.offer(alert)
        if journaled is None:
            self._handled.append(key)
        else:
            journaled.add_done_callback(lambda _done: self._handled.append(key))
        return journaled

    def _accept(self, key: Key, alert: dict[str, Any]) -> bool:
        return self.loop.clients.journal().accept_alert(*key, owner=self.instance, alert=alert)

    # --- liveness and take-over ---------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Take over the alerts and the actions of loops whose lease lapsed."""
        taken: list[dict[str, Any]] = await self.loop._in_pool(
            lambda: self.loop.clients.journal().take_over_alerts(self.instance)
        )
        if taken:
            logger.warning("taking over %d alerts a dead receiver accepted and never checked", len(taken))
        for alert in taken:
            self.counts["taken_over"] += 1
            key = key_of(alert)
            if key is None:  # stored with a key: cannot happen, but an alert is never dropped
                await self.loop.offer(alert)
            else:
                await self._hand_over(key, alert)
        for result in await self.loop._in_pool(self._orphaned_actions):
            self._recover(result)

    def _orphaned_actions(self) -> list[dict[str, Any]]:
        """Unfinished actions of other loops whose claim's lease lapsed and that this loop won to settle."""
        own = self.loop.following()
        found = []
        for result in self.loop._unfinished():
            action_id = int(result["claim"]["action_id"])
            if action_id in self._recovering or int(result["decision_id"]) in own:
                continue
            if self.loop._lease_left(result) is not None:
                continue  # its loop renews it: alive
            if self.loop.clients.journal().take_over_action(action_id, self.instance):
                found.append(result)
        return found

    def _recover(self, result: dict[str, Any]) -> None:
        intent = result["snapshot"]["intent"]
        state = self.loop.services.setdefault(f"{intent['namespace']}/{intent['service']}", _warm.Service())
        if state.phase not in ("idle", "settling"):
            # This loop checks or acts on the service itself now: the next sweep (the take-over is ours).
            return
        if state.timer is not None:
            state.timer.cancel()  # the settle's recheck: the recovery ends by checking the alert again if needed
            state.timer = None
        action_id = int(result["claim"]["action_id"])
        self._recovering.add(action_id)
        self.counts["actions_taken_over"] += 1
        logger.warning("settling action %d of decision %s, left by a dead loop", action_id, result["decision_id"])
        state.phase, state.decision_id = "acting", int(result["decision_id"])
        self.loop._spawn(self.loop._recover_one(state, result))

    # --- background -------------------------------------------------------------------------------------------

    async def _every(self, seconds: float, work: Any) -> None:
        while True:
            try:
                await work()
            except SelfHealError as exc:  # the journal may be back at the next round, well within the lease
                logger.error("loop %s: %s", self.instance, exc)
            except Exception:  # noqa: BLE001 - a failed round must not stop the renewals
                logger.exception("loop %s: a sweep failed", self.instance)
            await asyncio.sleep(seconds)

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self._mark_handled()
            except SelfHealError as exc:  # kept, and marked at the next round
                logger.error("cannot mark alerts handled: %s", exc)

    async def _mark_handled(self) -> None:
        # Taken on the event loop, where the futures' callbacks add to it; written in a worker.
        batch, self._handled = self._handled, []
        if not batch:
            return
        try:
            await self.loop._in_pool(self.loop.clients.journal().alerts_handled, self.instance, batch)
        except BaseException:
            self._handled[:0] = batch
            raise
