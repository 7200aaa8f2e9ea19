# This file is private to the zerotouch.selfheal collection: it is not a public API and may change without notice.
# It is shipped to modules by AnsiballZ; import it only from this collection.
"""The error budget and how fast it burns: one definition for the intent watch and the change gate.

The budget is the error share (percent) the objectives tolerate, the tighter of ``100 - availability`` and
``max_error_rate``; the burn rate is an error rate (percent, over a short window) divided by that budget. A
budget of zero burns infinitely fast at the first error. A burn is *fast* from ``threshold`` on: at exactly the
threshold it is fast, and a threshold of 0 turns fast-burn detection off. The arithmetic is exact on the
numbers as written (``100 - 99.9`` is ``0.1``, and ``0.6 / 0.1`` is ``6``), so a burn sitting exactly at the
threshold is judged fast, not a float's hair below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

FAST_BURN_RATE = 6.0  # spends a 30-day budget in five days: the watch's and the gate's default threshold
BURN_WINDOW = "1m"  # the short window the burn is measured over, by default


def _exact(value: Any) -> Fraction:
    return Fraction(str(value))


def _budget(objectives: Mapping[str, Any]) -> Fraction | None:
    budgets = []
    if objectives.get("availability") is not None:
        budgets.append(100 - _exact(objectives["availability"]))
    if objectives.get("max_error_rate") is not None:
        budgets.append(_exact(objectives["max_error_rate"]))
    return max(Fraction(0), min(budgets)) if budgets else None


def error_budget(objectives: Mapping[str, Any]) -> float | None:
    """The error share (percent) the objectives tolerate, or None when no objective bounds errors."""
    budget = _budget(objectives)
    return float(budget) if budget is not None else None


def burn_rate(objectives: Mapping[str, Any], short_error_rate: float | None) -> float | None:
    """How many times faster than allowed the error budget burns; None when unknown or nothing bounds errors."""
    budget = _budget(objectives)
    if budget is None or short_error_rate is None:
        return None
    if budget == 0:
        return math.inf if short_error_rate > 0 else 0.0
    return float(_exact(short_error_rate) / budget)


def is_fast_burn(burn: float | None, threshold: float) -> bool:
    """Whether a burn rate is fast: known, detection on (``threshold > 0``) and at least the threshold."""
    return burn is not None and threshold > 0 and burn >= threshold
