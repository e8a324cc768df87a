"""The Signals page (/projects/<slug>/signals), its CSVs and the comparison view."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.test import Client

from tests.signals.conftest import SCRIPT


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(slug: str = "acme") -> str:
    return f"/projects/{slug}/signals"


def table_rows(html: str, caption: str) -> list[list[str]]:
    """The cells' text of the table captioned `caption`, row by row (header row first)."""
    start = html.index(f">{caption}</caption>")
    body = html[start : html.index("</table>", start)]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# Who may see it ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["carol", "mel"])
def test_leads_and_ml_engineers_see_the_page(who, request, traffic):
    response = logged_in(request.getfixturevalue(who)).get(page(), {"to": "2026-11-21"})
    assert response.status_code == 200
    assert "Acme Chat: signals" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        page(),
        page() + "/compare",
        page() + "/compare.csv",
        page() + "/copies.csv",
    ],
)
@pytest.mark.parametrize("who", ["alice", "owen"])
def test_annotators_and_outsiders_get_404_from_every_page(who, path, request, traffic):
    assert logged_in(request.getfixturevalue(who)).get(path).status_code == 404


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(traffic):
    response = Client().get(page())
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_an_unknown_table_is_404(carol, traffic):
    assert logged_in(carol).get(page() + "/nothing.csv").status_code == 404


# The page ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_shows_every_signal_per_day_by_model(carol, traffic):
    html = (
        logged_in(carol)
        .get(page(), {"by": "model", "from": "2026-11-20", "to": "2026-11-21"})
        .content.decode()
    )
    for title in (
        "Edits",
        "Regenerations",
        "Copies and shares",
        "Reading time",
        "Completion and abandonment",
        "Thumbs",
        "Label yield",
    ):
        assert f">{title}</h2>" in html
    rows = table_rows(html, "Copies and shares per day, by model")
    assert rows[0] == ["Day", "Model", "Generations", "Copied", "Copy rate", "Shared", "Share rate"]
    assert rows[1:] == [
        ["2026-11-20", "m-a", "4", "2", "50.0%", "0", "0.0%"],
        ["2026-11-20", "m-b", "2", "0", "0.0%", "0", "0.0%"],
        ["2026-11-21", "m-a", "2", "1", "50.0%", "0", "0.0%"],
        ["2026-11-21", "m-b", "4", "4", "100.0%", "0", "0.0%"],
    ]
    labels = table_rows(html, "Label yield per day, by model")
    assert labels[0][-1] == "copy_accept per generation"
    assert [row[-1] for row in labels[1:]] == ["50.0%", "0.0%", "50.0%", "100.0%"]
    # An SVG chart per measure, with a described image and a point per day and model;
    # none for the reading time and the thumbs-up share, of which there is no figure.
    assert html.count('<svg class="chart-svg"') == 9
    assert html.count("No figure to draw.") == 2
    assert 'aria-label="Line chart of the copy rate per day, from 2026-11-20 to 2026-11-21' in html
    assert "m-b, 2026-11-21: 100.0%" in html


@pytest.mark.django_db
def test_week_buckets_sum_the_days(carol, traffic):
    html = (
        logged_in(carol)
        .get(page(), {"bucket": "week", "from": "2026-11-16", "to": "2026-11-22"})
        .content.decode()
    )
    rows = table_rows(html, "Copies and shares per week")
    assert rows[1] == ["2026-11-16", "12", "7", "58.3%", "0", "0.0%"]


@pytest.mark.django_db
def test_picked_groups_are_the_only_ones_shown(carol, traffic):
    html = (
        logged_in(carol)
        .get(page(), {"by": "model", "group": "m-b", "from": "2026-11-20", "to": "2026-11-21"})
        .content.decode()
    )
    rows = table_rows(html, "Edits per day, by model")
    assert [row[1] for row in rows[1:]] == ["m-b", "m-b"]


@pytest.mark.django_db
def test_group_names_from_metadata_are_escaped(carol, traffic):
    html = (
        logged_in(carol)
        .get(page(), {"by": "feature", "from": "2026-11-20", "to": "2026-11-21"})
        .content.decode()
    )
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_an_empty_range_says_so(carol, traffic):
    response = logged_in(carol).get(page(), {"from": "2025-01-01", "to": "2025-01-31"})
    assert response.status_code == 200
    assert "No generations in this range" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bucket": "month"}, "bucket"),
        ({"by": "user\x00"}, "by"),
        ({"from": "2026-11-22", "to": "2026-11-21"}, "from"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "x" * 100_000}, "from"),
        ({"by": "x" * 100_000}, "by"),
        ({"bucket": "y" * 100_000}, "bucket"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),  # too many days for the page
        ({"by": "model", "group": "no-such-model"}, "group"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(carol, traffic, params, field):
    client = logged_in(carol)
    response = client.get(page(), params)
    assert response.status_code == 400
    assert f'id="id_{field}-error"' in response.content.decode() or (
        field == "group" and "field-error" in response.content.decode()
    )
    csv_response = client.get(page() + "/edits.csv", params)
    assert csv_response.status_code == 400
    assert csv_response.content.decode().startswith(f"{field}: ")
    assert len(csv_response.content) < 1_000
    assert len(response.content) < 60_000  # the value is not echoed


@pytest.mark.django_db
def test_the_page_renders_in_a_few_queries(carol, traffic, django_assert_max_num_queries):
    client = logged_in(carol)
    params = {"by": "model", "from": "2026-11-01", "to": "2026-11-28"}
    # Session, user, project access, the groups, the rollups, the nav's export check.
    with django_assert_max_num_queries(7):
        response = client.get(page(), params)
    assert response.status_code == 200
    with django_assert_max_num_queries(7):
        assert client.get(page() + "/compare", {"by": "model"}).status_code == 200
    # Prompt patterns: their names too, with the groups and with the rows.
    with django_assert_max_num_queries(9):
        assert client.get(page(), {**params, "by": "pattern"}).status_code == 200
    with django_assert_max_num_queries(6):
        assert client.get(page() + "/copies.csv", params).status_code == 200


# CSV -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_table_downloads_as_csv_with_the_page_figures(carol, traffic):
    client = logged_in(carol)
    params = {"by": "model", "from": "2026-11-20", "to": "2026-11-21"}
    html = client.get(page(), params).content.decode()
    for slug in ("edits", "regenerations", "copies", "reading", "sessions", "thumbs", "labels"):
        assert f"/projects/acme/signals/{slug}.csv?" in html
        response = client.get(page() + f"/{slug}.csv", params)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert f'filename="acme-signals-{slug}-day.csv"' in response["Content-Disposition"]
    rows = read_csv(client.get(page() + "/copies.csv", params))
    assert rows[0] == [
        "bucket",
        "group",
        "generations",
        "copied",
        "copy_rate",
        "shared",
        "share_rate",
    ]
    assert rows[1:] == [
        ["2026-11-20", "m-a", "4", "2", "0.5000", "0", "0.0000"],
        ["2026-11-20", "m-b", "2", "0", "0.0000", "0", "0.0000"],
        ["2026-11-21", "m-a", "2", "1", "0.5000", "0", "0.0000"],
        ["2026-11-21", "m-b", "4", "4", "1.0000", "0", "0.0000"],
    ]


@pytest.mark.django_db
def test_a_csv_cell_never_starts_a_formula(carol, project):
    from tests.signals.conftest import DAY_1, derive_all, send_sessions

    send_sessions(project, day=DAY_1, model="m", feature="=HYPERLINK(1)", sessions=1, copied=1)
    derive_all()
    response = logged_in(carol).get(
        page() + "/copies.csv", {"by": "feature", "from": "2026-11-20", "to": "2026-11-20"}
    )
    assert read_csv(response)[1][1] == "'=HYPERLINK(1)"


# The comparison ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_two_models_side_by_side_with_the_difference_and_its_interval(carol, traffic):
    client = logged_in(carol)
    params = {"by": "model", "a": "m-a", "b": "m-b", "from": "2026-11-20", "to": "2026-11-21"}
    html = client.get(page() + "/compare", params).content.decode()
    rows = table_rows(html, "Signals of A and B, with B minus A")
    (copy,) = [row for row in rows if row[0] == "Copy rate"]
    # 3/6 against 4/6: +16.7 points, interval -31.5 to +55.9 (worked by hand: test_intervals).
    assert copy[1:5] == ["50.0% 3/6", "66.7% 4/6", "+16.7 pp", "\u221231.5 pp to +55.9 pp"]
    assert copy[5] == "within noise"
    rows_csv = read_csv(client.get(page() + "/compare.csv", params))
    (copy_csv,) = [row for row in rows_csv if row[0] == "copy_rate"]
    assert copy_csv == [
        "copy_rate",
        "m-a",
        "2026-11-20",
        "2026-11-21",
        "0.5000",
        "m-b",
        "2026-11-20",
        "2026-11-21",
        "0.6667",
        "0.1667",
        "-0.3150",
        "0.5585",
        "",
    ]


@pytest.mark.django_db
def test_two_periods_mark_a_regression_whose_interval_excludes_zero(carol, project):
    from tests.signals.conftest import DAY_1, DAY_2, derive_all, send_sessions

    send_sessions(project, day=DAY_1, model="m", feature="f", sessions=40, copied=36)
    send_sessions(project, day=DAY_2, model="m", feature="f", sessions=40, copied=8)
    derive_all()
    html = (
        logged_in(carol)
        .get(
            page() + "/compare",
            {
                "from": "2026-11-20",
                "to": "2026-11-20",
                "b_from": "2026-11-21",
                "b_to": "2026-11-21",
            },
        )
        .content.decode()
    )
    rows = table_rows(html, "Signals of A and B, with B minus A")
    (copy,) = [row for row in rows if row[0] == "Copy rate"]
    assert copy[1:4] == ["90.0% 36/40", "20.0% 8/40", "\u221270.0 pp"]
    assert copy[5] == "worse"  # copies fell, the interval is wholly below 0
    assert '<tr class="worse">' in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"by": "model", "a": "nope"}, "a"),
        ({"by": "model", "b": "m-a\x00"}, "b"),
        ({"from": "2026-11-22", "to": "2026-11-21"}, "from"),
        ({"b_from": "2026-11-22", "b_to": "2026-11-21"}, "b_from"),
        ({"b_to": "0001-01-01"}, "b_to"),
        ({"by": "model", "a": "z" * 100_000}, "a"),
    ],
)
def test_bad_comparison_parameters_are_400_naming_the_field(carol, traffic, params, field):
    client = logged_in(carol)
    response = client.get(page() + "/compare", params)
    assert response.status_code == 400
    assert f'id="id_{field}-error"' in response.content.decode()
    csv_response = client.get(page() + "/compare.csv", params)
    assert csv_response.status_code == 400
    assert csv_response.content.decode().startswith(f"{field}: ")


@pytest.mark.django_db
def test_the_comparison_escapes_group_names(carol, traffic):
    html = (
        logged_in(carol)
        .get(page() + "/compare", {"by": "feature", "from": "2026-11-20", "to": "2026-11-21"})
        .content.decode()
    )
    assert SCRIPT not in html
    assert "A: &lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_the_comparison_defaults_to_the_two_busiest_groups_shown_as_picked(carol, traffic):
    response = logged_in(carol).get(
        page() + "/compare", {"by": "model", "from": "2026-11-20", "to": "2026-11-21"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    # m-a and m-b have 6 generations each: by name.
    assert re.search(r'name="a"[^>]*>\s*<option value="m-a" selected>', html)
    assert re.search(r'<option value="m-b" selected>m-b \(6\)</option>\s*</select>', html)
    assert "A: m-a, 2026-11-20 to 2026-11-21 · B: m-b" in html


@pytest.mark.django_db
def test_the_lead_ml_and_team_pages_link_to_the_signals(carol, mel, project):
    link = 'href="/projects/acme/signals"'
    assert link in logged_in(carol).get("/review/lead/").content.decode()
    assert link in logged_in(carol).get("/projects/acme/team").content.decode()
    assert link in logged_in(mel).get("/exports/").content.decode()


@pytest.mark.django_db
def test_the_forms_show_the_default_ranges_they_answer_for(carol, traffic):
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    html = logged_in(carol).get(page()).content.decode()
    assert f'name="to" value="{today.isoformat()}"' in html
    assert f'name="from" value="{(today - timedelta(days=27)).isoformat()}"' in html
    weeks = logged_in(carol).get(page(), {"bucket": "week", "to": "2026-11-29"}).content.decode()
    assert 'name="from" value="2026-09-07"' in weeks  # 12 weeks up to 2026-11-29
    compare = logged_in(carol).get(page() + "/compare").content.decode()
    assert f'name="b_to" value="{today.isoformat()}"' in compare
    assert f'name="b_from" value="{(today - timedelta(days=13)).isoformat()}"' in compare
    assert f'name="to" value="{(today - timedelta(days=14)).isoformat()}"' in compare


@pytest.mark.django_db
def test_the_page_says_what_feature_and_pattern_mean(carol, traffic):
    client = logged_in(carol)
    by_feature = client.get(page(), {"by": "feature", "to": "2026-11-21"}).content.decode()
    assert "generations' <code>feature</code> metadata" in by_feature
    by_pattern = client.get(page(), {"by": "pattern", "to": "2026-11-21"}).content.decode()
    assert "<code>prompt_template</code> metadata" in by_pattern
    # Every traffic prompt starts "Summarise the quarterly": one pattern, its words.
    assert "summarise the quarterly …" in by_pattern
