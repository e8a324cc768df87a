"""The policy gate of training exports: pure decisions on `feedback.quality.export_quality`'s
figures, beside `exports.services._build`, which loads them and acts on the answer."""

from __future__ import annotations

from typing import Any


def below_policy_reasons(quality: dict[str, Any]) -> list[str]:
    """Why a train split falls short of the project's policy: its human-verified share
    below `min_human_share`, its estimated precision below `target`. Empty when it meets
    the policy. A split of zero rows has nothing to judge (no share, no estimate), so it
    is never below the policy: an empty export trains nothing wrong."""
    if not quality["rows"]:
        return []
    reasons = []
    share, least = quality["human_share"], quality["min_human_share"]
    if share is not None and share < least:
        reasons.append(f"human-verified {_percent(share)} of rows < {_percent(least)}")
    estimate, target = quality["precision"]["estimate"], quality["target"]
    if estimate is not None and estimate < target:
        reasons.append(f"estimated precision {_fraction(estimate)} < target {_fraction(target)}")
    return reasons


def below_policy_message(reasons: list[str]) -> str:
    """The failed job's error: both figures and their thresholds, and the way out."""
    return (
        f"Below the project's policy: {'; '.join(reasons)}. "
        "Ask with allow_below_policy to build it anyway."
    )


def _percent(value: float) -> str:
    """4% or 9.95%: as many decimals as the figure has (shares are rounded to 4 places),
    so a share just under its threshold never prints as equal to it."""
    return f"{value * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _fraction(value: float) -> str:
    """0.91, 0.90 or 0.9496: at least two decimals, at most four (as measured)."""
    text = f"{value:.4f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.partition(".")[2]))
