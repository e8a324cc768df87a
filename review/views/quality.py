"""The "Label quality" page: each derivation rule's measured precision (feedback/quality.py)
for a project's leads, ML engineers and admins; anyone else gets 404, as from the API.

The report is computed by a fixed number of aggregate queries whatever the number of labels;
this module only arranges it for the template: per rule, one table row per segment (overall,
then by model, feature and band) with the QA-sample and routed cells side by side, and a
weekly precision chart whose geometry is worked out here and drawn by
templates/review/_quality_chart.html, so every label goes through autoescaping.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_GET

from core.charts import SERIES_STYLES, ChartFrame, Tick, marker_path
from feedback.quality import Cell, QualityReport, project_quality
from tenancy.access import READ_ROLES, access_project

DIMENSIONS = [("", "Overall"), ("model", "Model"), ("feature", "Feature"), ("band", "Band")]


@dataclass
class SegmentRow:
    dimension: str  # "Overall", "Model", "Feature" or "Band"
    value: str  # the model, feature value or band; "" overall
    qa: Cell | None = None
    routed: Cell | None = None


@dataclass(frozen=True)
class WeekPoint:
    x: float
    y: float
    y_low: float
    y_high: float
    path: str
    title: str


@dataclass(frozen=True)
class WeeklyChart(ChartFrame):
    colour: str
    line: str  # polyline points
    points: list[WeekPoint]
    target_y: float
    target_value: str
    summary: str


@dataclass
class RuleQuality:
    rule: str
    anchor: str  # the id prefix of its headings (never the rule name, which is free text)
    rows: list[SegmentRow] = field(default_factory=list)
    weekly: list[dict[str, Any]] = field(default_factory=list)
    chart: WeeklyChart | None = None


def _share(value: float) -> str:
    return f"{value:.2f}"


def weekly_chart(weeks: list[dict[str, Any]], *, rule: str, target: float) -> WeeklyChart | None:
    """Precision per week on 0..1 with each week's 95% interval as a vertical bar and the
    target as a dashed line. None when the rule has no weekly verdicts."""
    if not weeks:
        return None
    width, height, left, right, top, bottom = 640, 260, 56, 568, 16, 212
    days = [date.fromisoformat(w["week"]) for w in weeks]
    first, span = days[0], (days[-1] - days[0]).days

    def x_of(day: date) -> float:
        if span == 0:
            return (left + right) / 2
        return left + (day - first).days / span * (right - left)

    def y_of(share: float) -> float:
        return bottom - min(max(share, 0.0), 1.0) * (bottom - top)

    colour, shape = SERIES_STYLES[0]
    points = []
    for day, week in zip(days, weeks, strict=True):
        x, y = round(x_of(day), 1), round(y_of(week["precision"]), 1)
        points.append(
            WeekPoint(
                x=x,
                y=y,
                y_low=round(y_of(week["low"]), 1),
                y_high=round(y_of(week["high"]), 1),
                path=marker_path(shape, x, y),
                title=f"Week of {week['week']}: precision {_share(week['precision'])} "
                f"(95% interval {_share(week['low'])} to {_share(week['high'])}) over "
                f"{week['verdicts']} verdict{pluralize(week['verdicts'])}",
            )
        )
    if span == 0:
        x_ticks = [Tick(points[0].x, weeks[0]["week"])]
    else:
        x_ticks = [Tick(left, weeks[0]["week"], "start"), Tick(right, weeks[-1]["week"], "end")]
    latest = weeks[-1]
    return WeeklyChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        colour=colour,
        y_ticks=[Tick(round(y_of(v), 1), _share(v)) for v in (0.0, 0.25, 0.5, 0.75, 1.0)],
        x_ticks=x_ticks,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        points=points,
        target_y=round(y_of(target), 1),
        target_value=_share(target),
        summary=(
            f"Line chart of the precision of {rule} per week, from the week of "
            f"{weeks[0]['week']} to the week of {latest['week']}, on a scale from 0 to 1, "
            f"with each week's 95% interval as a bar. Latest week: "
            f"{_share(latest['precision'])} over {latest['verdicts']} "
            f"verdict{pluralize(latest['verdicts'])}. Dashed line: the target precision, "
            f"{_share(target)}. The table below gives every week's figures."
        ),
    )


def rules_of(report: QualityReport) -> list[RuleQuality]:
    """Per rule (by name): its segment rows in the order overall, model, feature, band
    (values in the report's order), each with its QA-sample and routed cells; its weeks and
    their chart."""
    rows: dict[str, dict[tuple[str, str], SegmentRow]] = defaultdict(dict)
    for cell in report.cells:
        dimension, value = next(iter(cell.segment.items()), ("", ""))
        row = rows[cell.rule].setdefault((dimension, value), SegmentRow("", value))
        if cell.source == "qa_sample":
            row.qa = cell
        else:
            row.routed = cell
    weekly: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for week in report.weekly:
        weekly[week["rule"]].append(week)
    rules = []
    for n, rule in enumerate(sorted(set(rows) | set(weekly)), start=1):
        ordered = []
        for dimension, name in DIMENSIONS:
            for (row_dimension, _), row in rows[rule].items():
                if row_dimension == dimension:
                    row.dimension = name
                    ordered.append(row)
        rules.append(
            RuleQuality(
                rule=rule,
                anchor=f"rule-{n}",
                rows=ordered,
                weekly=weekly[rule],
                chart=weekly_chart(weekly[rule], rule=rule, target=report.target),
            )
        )
    return rules


@login_required
@require_GET
def project_quality_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = access_project(request.user, slug, READ_ROLES)
    report = project_quality(project)
    context = {"project": project, "report": report, "rules": rules_of(report)}
    return render(request, "review/quality.html", context)
