"""Inline SVG line charts of one signal per bucket, a line per group, for the Signals page.

The same style as the agreement and quality pages (core/charts.py: colours, marker shapes,
axes). Geometry is worked out here and drawn by templates/signals/_line_chart.html, so every
label (group names come from the product's metadata) goes through autoescaping. No
JavaScript: each point carries a <title>, the figure a text summary, and the table beside it
every figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

from core.charts import SERIES_STYLES, ChartFrame, Tick, marker_path

# The top of a rate chart's scale: the smallest of these that holds every point, so a share
# rate of 2% is not a flat line along the bottom of a 0..1 scale.
RATE_TOPS = (0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)
SECONDS_TOPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class Marker:
    path: str
    title: str


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    swatch: str  # the marker, drawn at (8, 8) for the legend
    segments: list[str]  # polyline points; a bucket without a figure breaks the line
    markers: list[Marker]

    @property
    def markers_svg(self) -> SafeString:
        """The markers as SVG paths with their titles escaped (written here rather than in
        the template for speed: a marker per bucket and group)."""
        colour = escape(self.colour)
        return mark_safe(  # noqa: S308 - every text escaped here
            "".join(
                f'<path d="{escape(marker.path)}" fill="{colour}" stroke="#fff" '
                f'stroke-width="1.5"><title>{escape(marker.title)}</title></path>'
                for marker in self.markers
            )
        )


@dataclass(frozen=True)
class LineChart(ChartFrame):
    y_label: str
    x_label: str
    series: list[Series]
    summary: str


def percent(value: float) -> str:
    """0.1234 -> "12.3%" (the page's way of writing a rate)."""
    return f"{value * 100:.1f}%".replace("-", "\u2212")


def seconds(value: float) -> str:
    """Milliseconds as seconds: 3250 -> "3.2 s"."""
    return f"{value / 1000:.1f} s"


def _top(highest: float, tops: Sequence[float]) -> float:
    return next((top for top in tops if highest <= top), max(highest, tops[-1]))


def line_chart(
    points: dict[str, list[tuple[date, float | None]]],
    *,
    what: str,
    unit: str,
    bucket: str,
) -> LineChart | None:
    """A line per group (`points`: its label -> (bucket start, value or None) in bucket
    order) of `what`, a rate (unit "rate", drawn as percent) or milliseconds (unit "ms",
    drawn as seconds). None when there is no figure to draw."""
    defined = [(day, v) for series in points.values() for day, v in series if v is not None]
    if not defined:
        return None
    width, height, left, right, top, bottom = 640, 280, 64, 600, 16, 232
    first = min(day for day, _ in defined)
    last = max(day for day, _ in defined)
    span = (last - first).days
    highest = max(v for _, v in defined)
    if unit == "ms":
        scale = _top(highest / 1000, SECONDS_TOPS) * 1000
        label: Callable[[float], str] = seconds
        y_label = "Seconds"
    else:
        scale = _top(highest, RATE_TOPS)
        label = percent
        y_label = "Share"
    x_label = "Week starting" if bucket == "week" else "Day"

    def x_of(day: date) -> float:
        if span == 0:
            return (left + right) / 2
        return left + (day - first).days / span * (right - left)

    def y_of(value: float) -> float:
        return bottom - min(max(value, 0.0), scale) / scale * (bottom - top)

    y_ticks = [Tick(round(y_of(scale * n / 4), 1), label(scale * n / 4)) for n in range(5)]
    if span == 0:
        x_ticks = [Tick(round(x_of(first), 1), first.isoformat())]
    else:
        x_ticks = [Tick(left, first.isoformat(), "start"), Tick(right, last.isoformat(), "end")]
    series, described = [], []
    for n, (name, values) in enumerate(points.items()):
        colour, shape = SERIES_STYLES[n % len(SERIES_STYLES)]
        segments: list[list[str]] = []
        run: list[str] = []
        markers = []
        for day, value in values:
            if value is None:
                segments.append(run)
                run = []
                continue
            x, y = x_of(day), y_of(value)
            run.append(f"{x:.1f},{y:.1f}")
            markers.append(Marker(marker_path(shape, x, y), f"{name}, {day}: {label(value)}"))
        segments.append(run)
        series.append(
            Series(
                label=name,
                colour=colour,
                swatch=marker_path(shape, 8, 8),
                segments=[" ".join(run) for run in segments if len(run) >= 2],
                markers=markers,
            )
        )
        figures = [v for _, v in values if v is not None]
        if figures:
            described.append(
                f"{name}: {label(figures[0])} at first, {label(figures[-1])} at the latest."
            )
    return LineChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        y_label=y_label,
        x_label=x_label,
        series=series,
        summary=(
            f"Line chart of the {what} per {bucket}, from {first} to {last}, on a scale from "
            f"{label(0)} to {label(scale)}. "
            + " ".join(described)
            + " The table beside it gives every figure."
        ),
    )
