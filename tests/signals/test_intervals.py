"""The comparison's interval for a difference of two rates (signals/intervals.py):
Newcombe's hybrid score interval, against his published values and a hand computation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signals.intervals import rate_difference

# Newcombe (1998), "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 17, table II, method
# 10 (score interval, no continuity correction): (a's count, a's total, b's, b's, low, high)
# for b - a.
PUBLISHED = [
    (48, 80, 56, 70, 0.0524, 0.3339),  # 56/70 - 48/80
    (3, 10, 9, 10, 0.1705, 0.8090),  # 9/10 - 3/10
    (0, 29, 5, 56, -0.0381, 0.1926),  # 5/56 - 0/29
    (0, 20, 0, 10, -0.1611, 0.2775),  # 0/10 - 0/20
    (0, 10, 0, 10, -0.2775, 0.2775),  # 0/10 - 0/10
    (0, 20, 10, 10, 0.6791, 1.0000),  # 10/10 - 0/20
]


@pytest.mark.parametrize(("a", "n_a", "b", "n_b", "low", "high"), PUBLISHED)
def test_newcombe_matches_published_intervals(a, n_a, b, n_b, low, high):
    difference = rate_difference(a, n_a, b, n_b)
    assert difference is not None
    assert difference.estimate == pytest.approx(b / n_b - a / n_a)
    assert (difference.low, difference.high) == pytest.approx((low, high), abs=1e-4)


def test_newcombe_by_hand_for_three_of_six_against_four_of_six():
    """The figures the comparison page test shows (tests/signals/test_views.py), worked
    through with z = 1.959964, z^2 = 3.841459:

    Wilson for 3/6: centre (0.5 + z^2/12) / (1 + z^2/6) = 0.5, half-width
    z * sqrt(0.25/6 + z^2/144) / (1 + z^2/6) = 0.312405: 0.187595 .. 0.812405.
    Wilson for 4/6: centre (0.666667 + 0.320122) / 1.640243 = 0.601611, half-width
    z * sqrt(0.222222/6 + 0.026677) / 1.640243 = 0.301623: 0.299988 .. 0.903234.
    B - A = 0.166667; low = 0.166667 - sqrt((0.666667 - 0.299988)^2 + (0.812405 - 0.5)^2)
    = 0.166667 - 0.481698 = -0.315031; high = 0.166667 + sqrt((0.903234 - 0.666667)^2 +
    (0.5 - 0.187595)^2) = 0.166667 + 0.391849 = 0.558516.
    """
    difference = rate_difference(3, 6, 4, 6)
    assert difference is not None
    assert difference.estimate == pytest.approx(0.166667, abs=1e-6)
    assert difference.low == pytest.approx(-0.315031, abs=1e-5)
    assert difference.high == pytest.approx(0.558516, abs=1e-5)
    assert not difference.excludes_zero


def test_a_clear_drop_excludes_zero():
    difference = rate_difference(36, 40, 8, 40)
    assert difference is not None
    assert difference.high < 0
    assert difference.excludes_zero


@pytest.mark.parametrize(
    "args", [(0, 0, 1, 2), (1, 2, 0, 0), (3, 2, 1, 2), (1, 2, 5, 4), (-1, 2, 1, 2)]
)
def test_no_interval_without_a_total_or_for_counts_beyond_it(args):
    assert rate_difference(*args) is None


@given(
    n_a=st.integers(min_value=1, max_value=5_000),
    n_b=st.integers(min_value=1, max_value=5_000),
    data=st.data(),
)
def test_the_interval_holds_the_estimate_inside_minus_one_to_one(n_a, n_b, data):
    a = data.draw(st.integers(min_value=0, max_value=n_a))
    b = data.draw(st.integers(min_value=0, max_value=n_b))
    difference = rate_difference(a, n_a, b, n_b)
    assert difference is not None
    assert -1 - 1e-9 <= difference.low <= difference.estimate <= difference.high <= 1 + 1e-9
    assert math.isfinite(difference.low) and math.isfinite(difference.high)
