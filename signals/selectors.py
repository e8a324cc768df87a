"""Reads for the Signals page and its comparison: rollup rows (feedback/signals.py, one
query whatever the number of generations behind them) arranged as charts and tables.

Every table's CSV is written from the same TableRow cells the page shows, so the figures
agree (rates as fractions there, percent on the page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Literal

from django.utils.safestring import SafeString, mark_safe

from feedback.models import RoutingPolicy
from feedback.quality import feature_key_for
from feedback.signals import signal_rows
from signals import figures
from signals.charts import LineChart, line_chart
from signals.figures import Measure, Row, Section
from signals.intervals import Difference, rate_difference
from tenancy.models import Project

ALL = "All generations"


@dataclass(frozen=True)
class Cell:
    measure: Measure
    value: int | float | None

    @property
    def text(self) -> str:
        return figures.formatted(self.measure, self.value)

    @property
    def csv(self) -> str:
        return figures.csv_value(self.measure, self.value)


@dataclass(frozen=True)
class TableRow:
    bucket: date
    group: str
    label: str
    cells: list[Cell]


@dataclass(frozen=True)
class SectionView:
    section: Section
    charts: list[tuple[Measure, LineChart | None]]
    rows: list[TableRow]
    grouped: bool  # a column for the group

    @property
    def body(self) -> SafeString:
        """The table's body rows, every text escaped. Written here, not in the template: a
        quarter of days by six groups is thousands of cells, which Django's template engine
        takes a second to render, and this a few milliseconds."""
        rows = []
        for row in self.rows:
            day = row.bucket.isoformat()
            group = ""
            if self.grouped:
                group = (
                    f"<td><code>{escape(row.label)}</code></td>"
                    if row.group
                    else '<td><span class="muted">(none)</span></td>'
                )
            cells = "".join(f'<td class="num">{escape(cell.text)}</td>' for cell in row.cells)
            rows.append(
                f'<tr><th scope="row"><time datetime="{day}">{day}</time></th>{group}{cells}</tr>'
            )
        return mark_safe("\n".join(rows))  # noqa: S308 - every text escaped above


@dataclass(frozen=True)
class SignalsView:
    bucket: str
    by: str | None
    date_from: date
    date_to: date
    groups: list[str] | None
    rows: list[Row]
    sections: list[SectionView]


def feature_key(project: Project) -> str:
    """The generation metadata key whose values are the project's features (one query)."""
    policy = RoutingPolicy.objects.filter(project=project).first()
    return feature_key_for(policy) if policy is not None else "feature"


def label_of(row: Row) -> str:
    return row.get("group_label") or row.get("group") or ALL


def signals_view(
    project: Project,
    *,
    bucket: str,
    by: str | None,
    date_from: date,
    date_to: date,
    groups: list[str] | None,
    only: str | None = None,
) -> SignalsView:
    """The page's sections over the rollup rows of `project` for these parameters; with
    `only`, that section alone and without its charts (for its CSV)."""
    rows = signal_rows(
        project, bucket=bucket, by=by, date_from=date_from, date_to=date_to, groups=groups
    )
    labels: dict[str, str] = {}
    for row in rows:
        labels.setdefault(row["group"], label_of(row))
    order = groups if groups is not None else sorted(labels)
    order = [group for group in order if group in labels]
    buckets = sorted({row["bucket"] for row in rows})
    by_key = {(row["bucket"], row["group"]): row for row in rows}
    views = []
    for section in figures.sections(figures.rules_of(rows)):
        if only is not None and section.slug != only:
            continue
        charts = []
        for measure in section.charts if only is None else []:
            points = {
                labels[group]: [
                    (day, measure.value(by_key[day, group]) if (day, group) in by_key else None)
                    for day in buckets
                ]
                for group in order
            }
            charts.append(
                (
                    measure,
                    line_chart(
                        points, what=measure.heading.lower(), unit=_unit(measure), bucket=bucket
                    ),
                )
            )
        table = [
            TableRow(
                bucket=row["bucket"],
                group=row["group"],
                label=label_of(row),
                cells=[Cell(measure, measure.value(row)) for measure in section.columns],
            )
            for row in rows
        ]
        views.append(SectionView(section, charts, table, grouped=by is not None))
    return SignalsView(bucket, by, date_from, date_to, groups, rows, views)


def _unit(measure: Measure) -> str:
    return "ms" if measure.kind == "ms" else "rate"


@dataclass(frozen=True)
class Side:
    group: str | None
    label: str
    date_from: date
    date_to: date
    row: Row  # the rollup's row over the whole period ({} when nothing happened)


@dataclass(frozen=True)
class ComparedRow:
    measure: Measure
    a: Cell
    b: Cell
    a_parts: tuple[int, int] | None  # count, total
    b_parts: tuple[int, int] | None
    difference: Difference | None
    verdict: Literal["worse", "better", "changed", ""]  # "" when the interval holds 0

    @property
    def difference_text(self) -> str:
        if self.measure.kind == "ms" and self.a.value is not None and self.b.value is not None:
            return f"{(self.b.value - self.a.value) / 1000:+.1f} s".replace("-", "\u2212")
        if self.difference is None:
            return "\u2014"
        return _points(self.difference.estimate)

    @property
    def interval_text(self) -> str:
        if self.difference is None:
            return "\u2014"
        return f"{_points(self.difference.low)} to {_points(self.difference.high)}"


def _points(value: float) -> str:
    """A difference of rates in percentage points, signed: "+3.1 pp", "−0.4 pp"."""
    return f"{value * 100:+.1f} pp".replace("-", "\u2212")


@dataclass(frozen=True)
class Comparison:
    by: str | None
    a: Side
    b: Side
    rows: list[ComparedRow]


def _side(
    project: Project, *, by: str | None, group: str | None, date_from: date, date_to: date
) -> Side:
    rows = signal_rows(
        project,
        bucket="all",
        by=by,
        date_from=date_from,
        date_to=date_to,
        groups=None if group is None else [group],
    )
    row = next((r for r in rows if group is None or r["group"] == group), {})
    label = label_of(row) if row else (group or ALL)
    return Side(group, label, date_from, date_to, row)


def comparison(
    project: Project,
    *,
    by: str | None,
    a: str | None,
    b: str | None,
    a_range: tuple[date, date],
    b_range: tuple[date, date],
) -> Comparison:
    """Side A (group `a` of the breakdown `by`, or everything, over `a_range`) against side
    B: each rate, B minus A and its 95% interval (signals/intervals.py), then the median
    reading time (no interval). Two queries."""
    side_a = _side(project, by=by, group=a, date_from=a_range[0], date_to=a_range[1])
    side_b = _side(project, by=by, group=b, date_from=b_range[0], date_to=b_range[1])
    rules = figures.rules_of([r for r in (side_a.row, side_b.row) if r])
    rows = []
    for measure in [*figures.COMPARED, *(figures.label_yield(rule) for rule in rules)]:
        a_parts, b_parts = measure.parts(side_a.row), measure.parts(side_b.row)
        difference = rate_difference(*a_parts, *b_parts)
        verdict: Literal["worse", "better", "changed", ""] = ""
        if difference is not None and difference.excludes_zero:
            up = difference.estimate > 0
            if not measure.better:
                verdict = "changed"
            else:
                verdict = "better" if up == (measure.better == "higher") else "worse"
        rows.append(
            ComparedRow(
                measure,
                Cell(measure, measure.value(side_a.row) if side_a.row else None),
                Cell(measure, measure.value(side_b.row) if side_b.row else None),
                a_parts,
                b_parts,
                difference,
                verdict,
            )
        )
    dwell = figures.MEDIAN_DWELL
    rows.append(
        ComparedRow(
            dwell,
            Cell(dwell, dwell.value(side_a.row) if side_a.row else None),
            Cell(dwell, dwell.value(side_b.row) if side_b.row else None),
            None,
            None,
            None,
            "",
        )
    )
    return Comparison(by, side_a, side_b, rows)
