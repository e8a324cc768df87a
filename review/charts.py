"""Inline SVG charts of a queue's agreement, for the lead's agreement page.

Geometry is worked out here and drawn by templates/review/_alpha_chart.html and
_annotator_chart.html, so every label goes through autoescaping like the rest of the page.
No JavaScript: each point carries a <title>, which browsers show as a tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.template.defaultfilters import pluralize
from django.utils import formats, timezone

from core.charts import SERIES_STYLES, ChartFrame, Tick, marker_path
from review import selectors


@dataclass(frozen=True)
class Marker:
    path: str
    title: str
    # The point's figures for the table beside the chart (the title shows only on hover).
    when: str = ""
    value: str = ""
    items: int = 0


@dataclass(frozen=True)
class ChartLine:
    key: str
    prompt: str
    colour: str
    swatch: str  # the marker, drawn at (8, 8) for the legend
    segments: list[str]  # polyline points; undefined alphas break the line
    markers: list[Marker]


@dataclass(frozen=True)
class AlphaChart(ChartFrame):
    lines: list[ChartLine]
    minimum_y: float
    minimum_value: str
    summary: str


def _when(at: datetime) -> str:
    return formats.date_format(timezone.localtime(at), "M j, H:i")


def _decimal(value: float, places: int = 2) -> str:
    return f"{value:.{places}f}".replace("-", "\u2212")


def alpha_chart(report: selectors.AgreementReport, *, minimum: float) -> AlphaChart | None:
    """Alpha per question over time, on 0..1 (or -1..1 when anything falls below 0), with
    the queue's minimum as a dashed line. None when there are no points to draw."""
    points = [p for series in report.series.values() for p in series]
    if not points:
        return None
    # The right margin holds the minimum's label, clear of the lines.
    width, height, left, right, top, bottom = 640, 280, 56, 568, 16, 232
    defined = [p.alpha for p in points if p.alpha is not None]
    low = -1.0 if min([*defined, minimum]) < 0 else 0.0
    first, last = min(p.at for p in points), max(p.at for p in points)
    span = (last - first).total_seconds()

    def x_of(at: datetime) -> float:
        if span == 0:
            return (left + right) / 2
        return left + (at - first).total_seconds() / span * (right - left)

    def y_of(alpha: float) -> float:
        alpha = min(max(alpha, low), 1.0)
        return bottom - (alpha - low) / (1.0 - low) * (bottom - top)

    steps = [-1.0, -0.5, 0.0, 0.5, 1.0] if low < 0 else [0.0, 0.25, 0.5, 0.75, 1.0]
    y_ticks = [Tick(round(y_of(v), 1), _decimal(v)) for v in steps]
    if span == 0:
        x_ticks = [Tick(round(x_of(first), 1), _when(first))]
    else:
        middle = first + (last - first) / 2
        x_ticks = [
            Tick(left, _when(first), "start"),
            Tick(round(x_of(middle), 1), _when(middle)),
            Tick(right, _when(last), "end"),
        ]
    prompts = {q.key: q.prompt for q in report.questions}
    lines, described = [], []
    for n, (key, series) in enumerate(report.series.items()):
        colour, shape = SERIES_STYLES[n % len(SERIES_STYLES)]
        segments: list[list[str]] = []
        run: list[str] = []
        markers: list[Marker] = []
        for point in series:
            if point.alpha is None:
                segments.append(run)
                run = []
                continue
            x, y = x_of(point.at), y_of(point.alpha)
            run.append(f"{x:.1f},{y:.1f}")
            markers.append(
                Marker(
                    marker_path(shape, x, y),
                    f"{key}: alpha {_decimal(point.alpha, 3)} over {point.items} "
                    f"item{pluralize(point.items)}, annotations up to {_when(point.at)}",
                    when=_when(point.at),
                    value=_decimal(point.alpha, 3),
                    items=point.items,
                )
            )
        segments.append(run)
        lines.append(
            ChartLine(
                key=key,
                prompt=prompts.get(key, key),
                colour=colour,
                swatch=marker_path(shape, 8, 8),
                segments=[" ".join(run) for run in segments if len(run) >= 2],
                markers=markers,
            )
        )
        described.append(_describe_series(key, series))
    return AlphaChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        lines=lines,
        minimum_y=round(y_of(minimum), 1),
        minimum_value=_decimal(minimum, 3),
        summary=(
            f"Line chart of Krippendorff's alpha per question over time, from {_when(first)} "
            f"to {_when(last)}, on a scale from {_decimal(low, 0)} to 1. "
            + " ".join(described)
            + f" Dashed line: the queue's minimum alpha, {_decimal(minimum, 3)}."
        ),
    )


def _describe_series(key: str, series: list[selectors.SeriesPoint]) -> str:
    defined = [p.alpha for p in series if p.alpha is not None]
    latest = series[-1].alpha if series else None
    if latest is None:
        return f"{key}: undefined at the latest point."
    if len(defined) == 1:
        return f"{key}: {_decimal(latest)}."
    return f"{key}: {_decimal(defined[0])} at first, {_decimal(latest)} at the latest point."


@dataclass(frozen=True)
class Bar:
    kind: str  # majority or gold
    y: float
    text_y: float
    width: float
    label_x: float
    label: str
    title: str
    missing: bool = False  # no figure (as opposed to a figure of 0)


@dataclass(frozen=True)
class AnnotatorBars:
    username: str
    flagged: bool
    top: float
    name_y: float
    bars: list[Bar]
    excluded: bool = False
    note: str = ""  # under the name: "⚑ flagged", "excluded" or both


@dataclass(frozen=True)
class AnnotatorChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    row_height: int
    bar_height: int
    ticks: list[Tick]
    rows: list[AnnotatorBars]
    minimum_x: float
    minimum_label: str
    summary: str


def annotator_chart(
    annotators: list[selectors.AnnotatorQuality], *, minimum: float
) -> AnnotatorChart | None:
    """Per annotator, a bar for agreement with the majority and one for gold accuracy on
    0..1, with the queue's minimum as a dashed line. Flagged rows are shaded and say
    "flagged" in words; an excluded annotator's row says "excluded"."""
    if not annotators:
        return None
    width, left, right, top, row_height, bar_height = 640, 150, 576, 34, 48, 14
    height = top + row_height * len(annotators) + 6

    def x_of(share: float) -> float:
        return left + min(max(share, 0.0), 1.0) * (right - left)

    def bar(kind: str, y: float, share: float | None, title: str, missing: str) -> Bar:
        text_y = y + bar_height / 2
        if share is None:
            return Bar(
                kind,
                y,
                text_y,
                width=0,
                label_x=left + 4,
                label=missing,
                title=missing,
                missing=True,
            )
        end = x_of(share)
        return Bar(
            kind,
            y,
            text_y,
            width=round(end - left, 1),
            label_x=round(end + 4, 1),
            label=_decimal(share),
            title=f"{title}: {_decimal(share)}",
        )

    rows = []
    for n, annotator in enumerate(annotators):
        row_top = top + n * row_height
        name = annotator.username
        golds = f"{annotator.gold_items} gold item{pluralize(annotator.gold_items)}"
        bars = [
            bar(
                "majority",
                row_top + 8,
                annotator.majority_agreement,
                f"{name} agrees with the majority",
                "no items shared with others",
            ),
            bar(
                "gold",
                row_top + 26,
                annotator.gold_accuracy,
                f"{name} is right on {golds}",
                "no gold items answered",
            ),
        ]
        notes = ["⚑ flagged"] if annotator.flagged else []
        if annotator.excluded:
            notes.append("excluded")
        rows.append(
            AnnotatorBars(
                username=name,
                flagged=annotator.flagged,
                top=row_top,
                name_y=row_top + (20 if notes else 27),
                bars=bars,
                excluded=annotator.excluded,
                note=", ".join(notes),
            )
        )
    flagged = [a.username for a in annotators if a.flagged]
    excluded = [a.username for a in annotators if a.excluded]
    return AnnotatorChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        row_height=row_height,
        bar_height=bar_height,
        ticks=[Tick(round(x_of(v), 1), _decimal(v)) for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
        rows=rows,
        minimum_x=round(x_of(minimum), 1),
        minimum_label=f"minimum {_decimal(minimum)}",
        summary=(
            "Bar chart of each annotator's agreement with the majority and accuracy on gold "
            f"items, from 0 to 1, with the queue's minimum {_decimal(minimum)} as a dashed "
            f"line. {len(annotators)} annotator{pluralize(len(annotators))}; "
            + (f"flagged: {', '.join(flagged)}." if flagged else "none flagged.")
            + (f" Excluded by a lead: {', '.join(excluded)}." if excluded else "")
        ),
    )
