"""The agreement page's charts (review/charts.py): how values map onto the canvas, the
axes' ticks, and that every label reaches the SVG escaped. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template.loader import render_to_string

from core.charts import SERIES_STYLES, marker_path
from review.charts import alpha_chart, annotator_chart
from review.models import AgreementSnapshot
from review.selectors import AgreementReport, AnnotatorQuality, QuestionAlpha, SeriesPoint

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# The alpha chart's plot area (review/charts.py): x from 56 to 568, y from 16 (1) to 232.
LEFT, RIGHT, TOP, BOTTOM = 56, 568, 16, 232


@pytest.fixture(autouse=True)
def utc(settings):
    settings.TIME_ZONE = "UTC"


def question(key: str, prompt: str = "") -> QuestionAlpha:
    return QuestionAlpha(
        key=key,
        prompt=prompt or key,
        level="nominal",
        alpha=None,
        items=0,
        answers=0,
        undefined_reason=None,
        meets_minimum=False,
    )


def report(series: dict[str, list[tuple[int, float | None]]], **prompts: str) -> AgreementReport:
    """Series given as (hours after START, alpha) points."""
    return AgreementReport(
        snapshot=AgreementSnapshot(),
        questions=[question(key, prompts.get(key, "")) for key in series],
        series={
            key: [SeriesPoint(START + timedelta(hours=h), alpha, 10) for h, alpha in points]
            for key, points in series.items()
        },
        annotators=[],
        annotator_question=None,
    )


def annotator(name: str, majority: float | None, gold: float | None, **kw) -> AnnotatorQuality:
    return AnnotatorQuality(
        username=name,
        annotations=20,
        majority_agreement=majority,
        gold_items=kw.get("gold_items", 4),
        gold_accuracy=gold,
        alpha_without=None,
        alpha_change=None,
        flagged=kw.get("flagged", False),
    )


def points_of(segment: str) -> list[tuple[float, float]]:
    return [tuple(map(float, point.split(","))) for point in segment.split()]


# The alpha chart ----------------------------------------------------------------------------


def test_no_points_no_chart():
    assert alpha_chart(report({"better": []}), minimum=0.667) is None


def test_alphas_from_zero_to_one_fill_the_plot_from_bottom_to_top():
    chart = alpha_chart(report({"better": [(0, 0.0), (1, 0.5), (2, 1.0)]}), minimum=0.5)
    assert points_of(chart.lines[0].segments[0]) == [(LEFT, BOTTOM), (312.0, 124.0), (RIGHT, TOP)]
    assert [(t.at, t.label) for t in chart.y_ticks] == [
        (232.0, "0.00"),
        (178.0, "0.25"),
        (124.0, "0.50"),
        (70.0, "0.75"),
        (16.0, "1.00"),
    ]
    assert (chart.minimum_y, chart.minimum_value) == (124.0, "0.500")


def test_a_negative_alpha_extends_the_scale_to_minus_one():
    chart = alpha_chart(report({"better": [(0, -0.5), (1, 1.0)]}), minimum=0.667)
    assert [t.label for t in chart.y_ticks] == ["\u22121.00", "\u22120.50", "0.00", "0.50", "1.00"]
    assert chart.y_ticks[2].at == (TOP + BOTTOM) / 2  # zero in the middle
    assert points_of(chart.lines[0].segments[0])[0] == (LEFT, 178.0)
    assert "on a scale from \u22121 to 1" in chart.summary


def test_a_negative_minimum_alone_extends_the_scale():
    chart = alpha_chart(report({"better": [(0, 0.2), (1, 0.4)]}), minimum=-0.1)
    assert chart.y_ticks[0].label == "\u22121.00"
    assert chart.minimum_value == "\u22120.100"


def test_time_maps_onto_x_with_ticks_at_both_ends_and_the_middle():
    chart = alpha_chart(report({"better": [(0, 0.7), (4, 0.8)]}), minimum=0.667)
    assert [(t.at, t.label, t.anchor) for t in chart.x_ticks] == [
        (LEFT, "Mar 1, 09:00", "start"),
        (312.0, "Mar 1, 11:00", "middle"),
        (RIGHT, "Mar 1, 13:00", "end"),
    ]


def test_points_at_one_moment_are_centred_with_one_tick():
    chart = alpha_chart(report({"a": [(0, 0.7)], "b": [(0, 0.9)]}), minimum=0.667)
    assert [(t.at, t.label) for t in chart.x_ticks] == [(312.0, "Mar 1, 09:00")]
    assert chart.lines[0].segments == []  # one point draws no line, only its marker
    assert chart.lines[0].markers[0].path == marker_path("circle", 312.0, 80.8)


def test_an_undefined_alpha_breaks_the_line_and_has_no_marker():
    chart = alpha_chart(
        report({"better": [(0, 0.1), (1, 0.2), (2, None), (3, 0.3), (4, None), (5, 0.4)]}),
        minimum=0.667,
    )
    line = chart.lines[0]
    assert len(line.segments) == 1 and len(points_of(line.segments[0])) == 2
    assert len(line.markers) == 4
    assert "better: 0.10 at first, 0.40 at the latest point." in chart.summary


def test_a_series_undefined_at_the_end_says_so():
    chart = alpha_chart(report({"better": [(0, 0.5), (1, None)]}), minimum=0.667)
    assert "better: undefined at the latest point." in chart.summary


def test_a_series_defined_only_at_the_end_gives_its_one_figure():
    chart = alpha_chart(report({"better": [(0, None), (1, 0.8)], "b": []}), minimum=0.667)
    assert "to 1. better: 0.80. b: undefined at the latest point. Dashed line" in chart.summary


def test_each_series_has_its_own_colour_and_marker_cycling_through_the_styles():
    keys = [f"q{n}" for n in range(len(SERIES_STYLES) + 1)]
    chart = alpha_chart(report({key: [(0, 0.5), (1, 0.6)] for key in keys}), minimum=0.667)
    assert [line.colour for line in chart.lines] == [
        *(colour for colour, _ in SERIES_STYLES),
        SERIES_STYLES[0][0],
    ]
    assert chart.lines[1].swatch == marker_path(SERIES_STYLES[1][1], 8, 8)


def test_a_markers_title_gives_the_figure_the_items_and_the_moment():
    chart = alpha_chart(report({"better": [(0, 0.71234)]}), minimum=0.667)
    assert chart.lines[0].markers[0].title == (
        "better: alpha 0.712 over 10 items, annotations up to Mar 1, 09:00"
    )


def test_a_line_is_named_by_its_questions_prompt():
    chart = alpha_chart(
        report({"better": [(0, 0.5)]}, better="Which answer is better?"), minimum=0.667
    )
    assert (chart.lines[0].key, chart.lines[0].prompt) == ("better", "Which answer is better?")


@pytest.mark.parametrize(
    ("shape", "path"),
    [
        ("circle", "M5.5 20.0a4.5 4.5 0 1 0 9.0 0a4.5 4.5 0 1 0 -9.0 0Z"),
        ("square", "M6.0 15.9h8.1v8.1h-8.1Z"),
        ("diamond", "M10.0 14.1L15.9 20.0L10.0 25.9L4.1 20.0Z"),
        ("triangle", "M10.0 14.4L15.2 23.8L4.8 23.8Z"),
    ],
)
def test_markers_are_drawn_around_their_point(shape, path):
    assert marker_path(shape, 10, 20) == path


# The annotator chart ------------------------------------------------------------------------


def test_no_annotators_no_chart():
    assert annotator_chart([], minimum=0.6) is None


def test_shares_map_onto_bar_widths_and_the_minimum_onto_x():
    chart = annotator_chart([annotator("alice", 0.5, 1.0)], minimum=0.6)
    majority, gold = chart.rows[0].bars
    assert (majority.width, majority.label, majority.label_x) == (213.0, "0.50", 367.0)
    assert (gold.width, gold.label) == (426.0, "1.00")
    assert chart.minimum_x == 405.6
    assert [(t.at, t.label) for t in chart.ticks] == [
        (150.0, "0.00"),
        (256.5, "0.25"),
        (363.0, "0.50"),
        (469.5, "0.75"),
        (576.0, "1.00"),
    ]


def test_a_missing_figure_is_said_in_words_not_drawn_as_zero():
    chart = annotator_chart([annotator("alice", None, 0.0, gold_items=0)], minimum=0.6)
    majority, gold = chart.rows[0].bars
    assert (majority.missing, majority.width, majority.label) == (
        True,
        0,
        "no items shared with others",
    )
    assert (gold.missing, gold.width, gold.label) == (False, 0.0, "0.00")


def test_rows_stack_down_the_chart_and_flagged_ones_are_named():
    chart = annotator_chart(
        [annotator("alice", 0.9, 0.9), annotator("bob", 0.3, None, flagged=True)], minimum=0.6
    )
    assert chart.height == 34 + 2 * 48 + 6
    assert [(row.top, row.name_y) for row in chart.rows] == [(34, 61), (82, 102)]
    assert chart.summary.endswith("2 annotators; flagged: bob.")
    assert chart.rows[1].bars[0].title == "bob agrees with the majority: 0.30"
    assert chart.rows[0].bars[1].title == "alice is right on 4 gold items: 0.90"


# Escaping -----------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script>&'


def test_question_text_reaches_the_alpha_chart_escaped():
    chart = alpha_chart(report({"better": [(0, 0.5), (1, 0.7)]}, better=HOSTILE), minimum=0.667)
    html = render_to_string("review/_alpha_chart.html", {"chart": chart})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html
    assert "<title>better: alpha 0.700 over 10 items" in html


def test_annotator_names_reach_the_annotator_chart_escaped():
    chart = annotator_chart([annotator(HOSTILE, 0.4, None, flagged=True)], minimum=0.6)
    html = render_to_string("review/_annotator_chart.html", {"chart": chart})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;</title>" in html
    assert 'aria-label="Bar chart of each annotator' in html
    assert "flagged: &lt;script&gt;" in html  # the summary, in an attribute
