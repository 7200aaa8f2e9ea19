"""How far a Deployment may move its ReplicaSets in one step: the RollingUpdate and Recreate rules.

Pure arithmetic on counts; the deployment controller reads the counts and writes the results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.kube import meta


@dataclass(frozen=True)
class RsState:
    name: str
    replicas: int  # spec.replicas
    pods: int  # status.replicas
    available: int  # status.availableReplicas
    revision: int


def surge_and_unavailable(spec: dict[str, Any]) -> tuple[int, int]:
    """maxSurge rounds up, maxUnavailable down; both zero would deadlock, so unavailable becomes 1."""
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = meta.scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = meta.scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def plan(spec: dict[str, Any], new: RsState, olds: list[RsState]) -> dict[str, int]:
    """The spec.replicas every ReplicaSet should have after this step."""
    if (spec.get("strategy") or {}).get("type") == "Recreate":
        return _recreate(int(spec.get("replicas", 1)), new, olds)
    return _rolling(int(spec.get("replicas", 1)), *surge_and_unavailable(spec), new, olds)


def _recreate(replicas: int, new: RsState, olds: list[RsState]) -> dict[str, int]:
    targets = {rs.name: 0 for rs in olds}
    old_pods_left = any(rs.replicas or rs.pods for rs in olds)
    targets[new.name] = new.replicas if old_pods_left else replicas
    return targets


def _rolling(replicas: int, surge: int, unavailable: int, new: RsState, olds: list[RsState]) -> dict[str, int]:
    targets = {rs.name: rs.replicas for rs in (new, *olds)}
    total = sum(targets.values())
    if new.replicas > replicas:
        targets[new.name] = replicas
        return targets
    if new.replicas < replicas and replicas + surge - total > 0:
        targets[new.name] = min(replicas, new.replicas + replicas + surge - total)
        return targets  # one move per step, as the real controller: scale-down waits for the next sync
    _scale_down_old(targets, replicas - unavailable, new, sorted(olds, key=lambda rs: rs.revision))
    return targets


def _scale_down_old(targets: dict[str, int], min_available: int, new: RsState, olds: list[RsState]) -> None:
    total = sum(targets.values())
    new_unavailable = max(new.replicas - new.available, 0)
    budget = total - min_available - new_unavailable
    for rs in olds:  # first the old pods that are not available anyway
        unhealthy = max(targets[rs.name] - rs.available, 0)
        cut = min(unhealthy, max(budget, 0))
        targets[rs.name] -= cut
        budget -= cut
    removable = sum(rs.available for rs in (new, *olds)) - min_available
    for rs in olds:  # then available ones, as far as availability allows
        cut = min(targets[rs.name], max(removable, 0))
        targets[rs.name] -= cut
        removable -= cut
