"""What the Signals page shows of a rollup row (feedback/signals.py): the measures, how each
is read from a row, and the sections that group them into a chart or two and a table.

A rate is a count over a total (generations, sessions, edits or thumbs); the rollup's own
rates are used where a row carries them, so the page, its CSV and the API give one figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Row = dict[str, Any]
Kind = Literal["count", "rate", "ms"]


def _key(name: str) -> Callable[[Row], Any]:
    return lambda row: row.get(name)


@dataclass(frozen=True)
class Measure:
    key: str  # its name in the CSV (and the API's, where the rollup has it)
    heading: str
    kind: Kind
    count: Callable[[Row], Any]  # the figure, or a rate's numerator
    total: Callable[[Row], Any] | None = None  # a rate's denominator
    better: Literal["higher", "lower", ""] = ""  # which way is good, "" when neither

    def value(self, row: Row) -> int | float | None:
        """The figure of `row`; a rate is None when its total is 0."""
        if self.kind != "rate":
            return self.count(row)
        if self.key in row:
            return row[self.key]
        total = self.total(row) if self.total else None
        return self.count(row) / total if total else None

    def parts(self, row: Row) -> tuple[int, int]:
        """A rate's count and total (0, 0 for a row without them)."""
        if self.total is None:
            raise TypeError(f"{self.key} is not a rate")
        return int(self.count(row) or 0), int(self.total(row) or 0)


def _count(key: str, heading: str) -> Measure:
    return Measure(key, heading, "count", _key(key))


def _rate(
    key: str, heading: str, count: str, total: str, better: Literal["higher", "lower", ""] = ""
) -> Measure:
    return Measure(key, heading, "rate", _key(count), _key(total), better)


GENERATIONS = _count("generations", "Generations")
SESSIONS = _count("sessions", "Sessions")
EDITED = _count("edited", "Edited")
EDIT_RATE = _rate("edit_rate", "Edit rate", "edited", "generations", "lower")
COSMETIC_SHARE = _rate("cosmetic_share", "Cosmetic edits", "edit_cosmetic", "edited")
CORRECTION_SHARE = _rate("correction_share", "Corrections", "edit_correction", "edited", "lower")
REWRITE_SHARE = _rate("rewrite_share", "Rewrites", "edit_rewrite", "edited", "lower")
REGENERATED = _count("regenerated", "Regenerated")
REGENERATE_RATE = _rate("regenerate_rate", "Regenerate rate", "regenerated", "generations", "lower")
HIGH_RETRY = _count("high_retry", "High-retry chains")
HIGH_RETRY_RATE = _rate(
    "high_retry_rate", "High-retry chains per generation", "high_retry", "generations", "lower"
)
COPIED = _count("copied", "Copied")
COPY_RATE = _rate("copy_rate", "Copy rate", "copied", "generations", "higher")
SHARED = _count("shared", "Shared")
SHARE_RATE = _rate("share_rate", "Share rate", "shared", "generations", "higher")
MEDIAN_DWELL = Measure("median_dwell_ms", "Median reading time", "ms", _key("median_dwell_ms"))
COMPLETED = _count("completed", "Completed")
COMPLETION_RATE = _rate("completion_rate", "Completion rate", "completed", "sessions", "higher")
ABANDONED = _count("abandoned", "Abandoned")
ABANDON_RATE = _rate("abandon_rate", "Abandonment rate", "abandoned", "sessions", "lower")
THUMBS = _count("thumbs", "Thumbs given")
THUMBS_RATE = _rate("thumbs_rate", "Thumbs rate", "thumbs", "generations")
THUMBS_UP = _count("thumbs_up", "Thumbs up")
THUMBS_UP_SHARE = _rate("thumbs_up_share", "Thumbs up share", "thumbs_up", "thumbs", "higher")
LABELS = Measure("labels", "Labels", "count", lambda row: sum((row.get("labels") or {}).values()))
LABEL_YIELD = Measure(
    "label_yield", "Labels per generation", "rate", LABELS.count, _key("generations")
)


def label_yield(rule: str) -> Measure:
    """Labels of `rule` per generation (several rules may label one generation, so the
    yields of a row can add up to more than 1)."""
    return Measure(
        f"labels:{rule}",
        f"{rule} per generation",
        "rate",
        lambda row: (row.get("labels") or {}).get(rule, 0),
        _key("generations"),
    )


def rules_of(rows: list[Row]) -> list[str]:
    """Every label rule that yielded in `rows`, by name."""
    return sorted({rule for row in rows for rule in row.get("labels") or {}})


@dataclass(frozen=True)
class Section:
    slug: str  # its anchor and CSV name
    title: str
    intro: str
    charts: list[Measure]
    columns: list[Measure] = field(default_factory=list)


def sections(rules: list[str]) -> list[Section]:
    """The page's sections, in order; the label yield's columns are the rules in `rules`."""
    return [
        Section(
            "edits",
            "Edits",
            "Share of generations the user edited, and what kind of edit: cosmetic "
            "(wording, punctuation), a correction, or a rewrite (shares of the edits).",
            [EDIT_RATE],
            [GENERATIONS, EDITED, EDIT_RATE, COSMETIC_SHARE, CORRECTION_SHARE, REWRITE_SHARE],
        ),
        Section(
            "regenerations",
            "Regenerations",
            "Share of generations the user asked to regenerate, and of generations in a "
            "high-retry chain (regenerated again and again).",
            [REGENERATE_RATE, HIGH_RETRY_RATE],
            [GENERATIONS, REGENERATED, REGENERATE_RATE, HIGH_RETRY, HIGH_RETRY_RATE],
        ),
        Section(
            "copies",
            "Copies and shares",
            "Share of generations copied, and shared.",
            [COPY_RATE, SHARE_RATE],
            [GENERATIONS, COPIED, COPY_RATE, SHARED, SHARE_RATE],
        ),
        Section(
            "reading",
            "Reading time",
            "Median time an answer stayed on screen, over the generations with a reading time.",
            [MEDIAN_DWELL],
            [GENERATIONS, MEDIAN_DWELL],
        ),
        Section(
            "sessions",
            "Completion and abandonment",
            "Share of sessions that ended completed, and that were abandoned.",
            [COMPLETION_RATE, ABANDON_RATE],
            [SESSIONS, COMPLETED, COMPLETION_RATE, ABANDONED, ABANDON_RATE],
        ),
        Section(
            "thumbs",
            "Thumbs",
            "Share of generations given a thumb, and the share of those that were up.",
            [THUMBS_RATE, THUMBS_UP_SHARE],
            [GENERATIONS, THUMBS, THUMBS_RATE, THUMBS_UP, THUMBS_UP_SHARE],
        ),
        Section(
            "labels",
            "Label yield",
            "Labels derived per generation, by rule (a generation can yield labels of "
            "several rules, so the rules' yields can add up to more than 100%).",
            [LABEL_YIELD],
            [GENERATIONS, LABELS, LABEL_YIELD, *(label_yield(rule) for rule in rules)],
        ),
    ]


def section_named(slug: str, rules: list[str]) -> Section | None:
    return next((s for s in sections(rules) if s.slug == slug), None)


SECTION_SLUGS = tuple(section.slug for section in sections([]))

# The comparison's rows: every rate, then the reading time (no interval: a median's).
COMPARED = [
    EDIT_RATE,
    COSMETIC_SHARE,
    CORRECTION_SHARE,
    REWRITE_SHARE,
    REGENERATE_RATE,
    HIGH_RETRY_RATE,
    COPY_RATE,
    SHARE_RATE,
    COMPLETION_RATE,
    ABANDON_RATE,
    THUMBS_RATE,
    THUMBS_UP_SHARE,
]


def formatted(measure: Measure, value: int | float | None) -> str:
    """A figure as the page writes it: rates in percent, times in seconds, "—" for none."""
    if value is None:
        return "\u2014"
    if measure.kind == "rate":
        return f"{value * 100:.1f}%"
    if measure.kind == "ms":
        return f"{value / 1000:.1f} s"
    return str(value)


def csv_value(measure: Measure, value: int | float | None) -> str:
    """A figure as the CSV writes it: rates as fractions (4 places), times in milliseconds,
    empty for none."""
    if value is None:
        return ""
    if measure.kind == "rate":
        return f"{value:.4f}"
    return str(round(value))
