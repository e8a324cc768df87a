"""The interval of a difference between two rates, for the comparison view (pure, no Django).

Newcombe's hybrid score interval (Newcombe 1998, "Interval estimation for the difference
between independent proportions", method 10): each side's 95% Wilson score interval
(feedback/precision.py), combined by the square-and-add rule. Unlike the textbook Wald
interval it stays inside -1..1, behaves at rates of 0 and 1 and with small counts, which
signal rates often are (a share rate of 1%). It assumes the two sides are independent
samples: two models, or two periods that do not overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from feedback.precision import wilson


@dataclass(frozen=True)
class Difference:
    """b's rate minus a's, with its 95% interval."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly above or below 0: a change, not noise."""
        return self.low > 0 or self.high < 0


def rate_difference(a_count: int, a_total: int, b_count: int, b_total: int) -> Difference | None:
    """b_count / b_total - a_count / a_total with Newcombe's hybrid score 95% interval; None
    when either side has nothing to divide by or counts more than its total (not a share)."""
    if a_total <= 0 or b_total <= 0:
        return None
    if not (0 <= a_count <= a_total and 0 <= b_count <= b_total):
        return None
    p_a, p_b = a_count / a_total, b_count / b_total
    low_a, high_a = wilson(a_count, a_total)
    low_b, high_b = wilson(b_count, b_total)
    estimate = p_b - p_a
    return Difference(
        estimate=estimate,
        low=estimate - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2),
        high=estimate + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2),
    )
