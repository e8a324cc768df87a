"""Precision arithmetic shared by derivation (pure, no Django) and feedback/quality.py.

A rule's heuristic confidence is the prior; people's verdicts on its labels, per rule and
0.1-wide confidence band, update it (Beta posterior mean) and give an interval (95% Wilson
score). docs/quality.md explains the choices.
"""

import math
from functools import lru_cache
from typing import Final

Z95: Final = 1.959964  # two-sided 95%
PRIOR_STRENGTH: Final = 10.0  # the heuristic confidence counts as this many verdicts
BAND_WIDTH: Final = 0.1
NEW_CELL_QA_RATE: Final = 0.10  # QA sample of a rule x band with fewer than min_verdicts
QA_RATE_MAX: Final = 0.25
QA_WIDTH_REFERENCE: Final = 0.05  # an interval this wide gets the policy's base rate


def wilson(right: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval for right / n (0, 1 when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = right / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    low = 0.0 if right <= 0 else max(0.0, min(p, centre - half))
    high = 1.0 if right >= n else min(1.0, max(p, centre + half))
    return low, high


@lru_cache(maxsize=4096)  # confidences are rounded to 4 places: few distinct values
def band_of(confidence: float) -> str:
    """The 0.1-wide band a heuristic confidence falls in: "0.8-0.9"; 1.0 is in "0.9-1.0"."""
    low = min(9, max(0, math.floor(round(confidence, 6) / BAND_WIDTH)))
    return f"{low / 10:.1f}-{(low + 1) / 10:.1f}"


def calibrated(prior: float, right: int, n: int) -> float:
    """Beta posterior mean: the rule's heuristic confidence as PRIOR_STRENGTH verdicts."""
    return (prior * PRIOR_STRENGTH + right) / (PRIOR_STRENGTH + n)


def qa_rate(base: float, right: int, n: int, min_verdicts: int) -> float:
    """How much of a cell's auto-accepted labels to sample for QA: NEW_CELL_QA_RATE until
    it has `min_verdicts` verdicts, then in proportion to its interval's width (wide: more,
    narrow: less), never below the policy's base rate (no rule is ever unwatched) nor above
    QA_RATE_MAX. A base rate of 0 turns QA sampling off."""
    if base <= 0:
        return 0.0
    if n < min_verdicts:
        return max(base, NEW_CELL_QA_RATE)
    low, high = wilson(right, n)
    return min(QA_RATE_MAX, max(base, base * (high - low) / QA_WIDTH_REFERENCE))
