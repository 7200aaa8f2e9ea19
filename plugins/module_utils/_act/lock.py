# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""Per-target remediation locks on coordination.k8s.io/v1 Leases: pure decisions, no I/O.

One Lease per target (``selfheal-<deployment>`` in the target's namespace) says who is remediating it. The rules:

* free (no Lease, or a Lease without holder): take it;
* held by the same holder and not expired: nothing to do (the TTL is not extended, so a re-run is a no-op);
* held by another holder and not expired (``renewTime + leaseDurationSeconds`` in the future): not acquired,
  which is not a failure: the caller records "skipped: locked by <holder>";
* held by another holder but expired (a crashed run): taken over, ``leaseTransitions`` + 1;
* renewed (:func:`plan_renew`) only by its holder: the warm loop takes a short lease and renews it while it acts
  and verifies, so a holder that died stops renewing and its lock is taken over once the short lease runs out,
  not after the whole TTL a manual run asks for.

Every write carries the resourceVersion that was read, so when two runs race, the API server accepts one and
answers 409 to the other; the adapter then re-reads the Lease and reports the winner (:func:`lost_race`).
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._act.plans import (
    MANAGED_BY,
    Change,
    Plan,
    changing,
    micro_time,
    unchanged,
)
from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import ValidationError
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.objects import meta, parse_time

LEASE_PREFIX = "selfheal-"
_MAX_NAME = 253


def lease_name(target: str) -> str:
    """The Lease that locks a target: ``selfheal-<target>``."""
    return (LEASE_PREFIX + target)[:_MAX_NAME]


def holder_of(lease: dict[str, Any] | None) -> str | None:
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or None


def expires_at(lease: dict[str, Any] | None) -> datetime | None:
    """When the current holding ends: the last renewal (or acquisition) plus the lease duration."""
    spec = (lease or {}).get("spec") or {}
    start = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if start is None or duration is None:
        return None
    return start + timedelta(seconds=int(duration))


def _state(lease: dict[str, Any] | None) -> dict[str, Any]:
    spec = (lease or {}).get("spec") or {}
    return {
        "holderIdentity": spec.get("holderIdentity"),
        "leaseDurationSeconds": spec.get("leaseDurationSeconds"),
        "renewTime": spec.get("renewTime"),
    }


def _result(name: str, acquired: bool, held_by: str | None, until: datetime | None) -> dict[str, Any]:
    return {
        "lease": name,
        "acquired": acquired,
        "held_by": held_by,
        "expires_at": micro_time(until) if until else None,
    }


def plan_acquire(
    lease: dict[str, Any] | None, namespace: str, target: str, holder: str, ttl_seconds: int, now: datetime
) -> Plan:
    """Take the lock for ``holder`` unless another holder has it and it has not expired."""
    if not holder:
        raise ValidationError("options", "holder", "must not be empty")
    if ttl_seconds <= 0:
        raise ValidationError("options", "ttl_seconds", f"must be more than 0, got {ttl_seconds}")
    name = meta(lease).get("name") or lease_name(target)
    ref = f"{namespace}/{target}"
    current, until = holder_of(lease), expires_at(lease)
    live = current is not None and until is not None and until > now
    if current == holder and live:
        return unchanged(
            f"{holder} already holds the lock on {ref}", _state(lease), **_result(name, True, holder, until)
        )
    if current is not None and current != holder and live:
        return unchanged(
            f"{ref} is locked by {current} until {micro_time(until) if until else '?'}",
            _state(lease),
            **_result(name, False, current, until),
        )
    stamp = micro_time(now)
    spec = {
        "holderIdentity": holder,
        "leaseDurationSeconds": ttl_seconds,
        "acquireTime": stamp,
        "renewTime": stamp,
    }
    takeover = current is not None and current != holder
    body: dict[str, Any]
    if lease is None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
            "spec": dict(spec, leaseTransitions=0),
        }
    else:
        body = copy.deepcopy(lease)
        body["spec"] = dict(body.get("spec") or {}, **spec)
        if takeover:
            body["spec"]["leaseTransitions"] = int((lease.get("spec") or {}).get("leaseTransitions") or 0) + 1
    new_until = now + timedelta(seconds=ttl_seconds)
    verb = "create" if lease is None else "replace"
    change = Change(verb, "coordination.k8s.io/v1", "Lease", namespace, name, body, what=f"lock {ref}")
    held = f"for {holder} until {micro_time(new_until)} (Lease {name})"
    if takeover:
        done = f"took over the expired lock of {current} on {ref} {held}"
        would = f"take over the expired lock of {current} on {ref} {held}"
    else:
        done, would = f"acquired the lock on {ref} {held}", f"acquire the lock on {ref} {held}"
    return changing([change], done, would, _state(lease), _state(body), **_result(name, True, holder, new_until))


def plan_renew(
    lease: dict[str, Any] | None, namespace: str, target: str, holder: str, duration_seconds: int, now: datetime
) -> Plan:
    """Extend ``holder``'s lock to ``now + duration_seconds`` (the holder shows it is alive). A lock that another
    holder has, or nobody has, is left alone and reported not held: the caller has lost it and must not act."""
    if duration_seconds <= 0:
        raise ValidationError("options", "lock_lease_seconds", f"must be more than 0, got {duration_seconds}")
    name = meta(lease).get("name") or lease_name(target)
    ref = f"{namespace}/{target}"
    current, until = holder_of(lease), expires_at(lease)
    if current != holder:
        why = f"{ref} is locked by {current}" if current else f"{ref} is not locked"
        return unchanged(f"{why}: {holder} cannot renew it", _state(lease), **_result(name, False, current, until))
    body = copy.deepcopy(lease or {})
    body["spec"] = dict(body.get("spec") or {}, renewTime=micro_time(now), leaseDurationSeconds=duration_seconds)
    new_until = now + timedelta(seconds=duration_seconds)
    change = Change("replace", "coordination.k8s.io/v1", "Lease", namespace, name, body, what=f"renew the lock {ref}")
    held = f"the lock of {holder} on {ref} until {micro_time(new_until)}"
    return changing(
        [change],
        f"renewed {held}",
        f"renew {held}",
        _state(lease),
        _state(body),
        **_result(name, True, holder, new_until),
    )


def plan_release(lease: dict[str, Any] | None, namespace: str, target: str, holder: str) -> Plan:
    """Give the lock back (clear the holder) if ``holder`` has it; someone else's lock is left alone."""
    name = meta(lease).get("name") or lease_name(target)
    ref = f"{namespace}/{target}"
    current, until = holder_of(lease), expires_at(lease)
    if current is None:
        return unchanged(f"{ref} is not locked", _state(lease), **_result(name, False, None, None))
    if current != holder:
        return unchanged(
            f"{ref} is locked by {current}, not by {holder}: left alone",
            _state(lease),
            **_result(name, False, current, until),
        )
    body = copy.deepcopy(lease or {})
    body["spec"] = dict(body.get("spec") or {})
    body["spec"]["holderIdentity"] = None
    change = Change("replace", "coordination.k8s.io/v1", "Lease", namespace, name, body, what=f"unlock {ref}")
    return changing(
        [change],
        f"released the lock of {holder} on {ref}",
        f"release the lock of {holder} on {ref}",
        _state(lease),
        _state(body),
        **_result(name, False, None, None),
    )


def lost_race(plan: Plan, lease: dict[str, Any] | None, ref: str) -> Plan:
    """The plan to report when our write got a 409: another run changed the Lease first."""
    winner, until = holder_of(lease), expires_at(lease)
    result = dict(plan.result, **_result(plan.result["lease"], False, winner, until))
    message = f"{ref} was locked by {winner} first" if winner else f"the lock on {ref} changed while taking it"
    return unchanged(message, _state(lease), **result)
