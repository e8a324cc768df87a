"""GET /api/v1/projects/<slug>/signals: who may read it, the rows' contract, and bad input."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tenancy.models import Membership
from tests.conftest import make_user, token_client
from tests.signals.conftest import SCRIPT

RATES = (
    "edit_rate",
    "regenerate_rate",
    "copy_rate",
    "share_rate",
    "completion_rate",
    "abandon_rate",
    "thumbs_rate",
)


def url(slug: str = "acme") -> str:
    return f"/api/v1/projects/{slug}/signals"


@pytest.fixture
def dana(django_user_model, project):
    """An admin of `project`."""
    return make_user(django_user_model, "dana", project, Membership.Role.ADMIN)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["carol", "mel", "dana"])
def test_leads_ml_engineers_and_admins_read_the_signals(who, request, traffic):
    response = token_client(request.getfixturevalue(who)).get(url())
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert len(response.json()["rows"]) == 2  # two days, one group


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["alice", "owen"])
def test_annotators_and_other_projects_members_get_404(who, request, traffic):
    response = token_client(request.getfixturevalue(who)).get(url())
    assert response.status_code == 404
    assert "rows" not in response.json()


@pytest.mark.django_db
def test_an_unknown_slug_is_404_like_a_forbidden_one(carol, traffic):
    assert token_client(carol).get(url("no-such")).status_code == 404
    assert token_client(carol).get(url("globe\x00x")).status_code == 404


@pytest.mark.django_db
def test_anonymous_callers_are_refused(traffic):
    response = APIClient().get(url())
    assert response.status_code == 401
    assert "rows" not in response.json()


@pytest.mark.django_db
def test_without_by_each_day_is_one_group_with_every_rate(carol, traffic):
    rows = token_client(carol).get(url()).json()["rows"]
    assert [(r["bucket"], r["group"], r["generations"]) for r in rows] == [
        ("2026-11-20", "", 6),
        ("2026-11-21", "", 6),
    ]
    first = rows[0]
    for key in (*RATES, "median_dwell_ms", "sessions", "copied", "labels"):
        assert key in first
    assert first["copied"] == 2
    assert first["copy_rate"] == pytest.approx(2 / 6, abs=1e-4)
    assert rows[1]["copy_rate"] == pytest.approx(5 / 6, abs=1e-4)
    assert first["sessions"] == 6
    assert first["median_dwell_ms"] is None  # no reading time was reported


@pytest.mark.django_db
def test_by_model_and_week_buckets(carol, traffic):
    rows = token_client(carol).get(url(), {"bucket": "week", "by": "model"}).json()["rows"]
    # 2026-11-20 is a Friday: both days fall in the week of Monday 2026-11-16.
    assert [(r["bucket"], r["group"], r["generations"], r["copied"]) for r in rows] == [
        ("2026-11-16", "m-a", 6, 3),
        ("2026-11-16", "m-b", 6, 4),
    ]
    assert rows[0]["copy_rate"] == 0.5
    assert rows[1]["copy_rate"] == pytest.approx(0.6667, abs=1e-4)


@pytest.mark.django_db
def test_by_feature_answers_group_names_as_sent(carol, traffic):
    rows = token_client(carol).get(url(), {"by": "feature", "from": "2026-11-21"}).json()["rows"]
    assert {r["group"]: r["copied"] for r in rows} == {SCRIPT: 1, "summary": 4}


@pytest.mark.django_db
def test_the_date_range_is_inclusive(carol, traffic):
    client = token_client(carol)
    only = client.get(url(), {"from": "2026-11-21", "to": "2026-11-21"}).json()["rows"]
    assert [r["bucket"] for r in only] == ["2026-11-21"]
    assert client.get(url(), {"to": "2026-11-19"}).json()["rows"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bucket": "month"}, "bucket"),
        ({"bucket": "all"}, "bucket"),
        ({"bucket": "day\x00"}, "bucket"),
        ({"by": "user"}, "by"),
        ({"by": "x" * 100_000}, "by"),
        ({"from": "2026-11-22", "to": "2026-11-21"}, "from"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "1999-12-31"}, "from"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "2026-11-21\x00"}, "to"),
        ({"to": "99999999999999999999-01-01"}, "to"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(carol, traffic, params, field):
    response = token_client(carol).get(url(), params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body) == [field]
    assert len(response.content) < 1_000  # a huge value is not echoed


@pytest.mark.django_db
def test_undecodable_bytes_and_a_lone_surrogate_are_400_naming_the_parameter(carol, traffic):
    # %ED%A0%80 is a UTF-8-encoded lone surrogate (U+D800); %FF is no UTF-8 at all.
    for raw in ("from=%ED%A0%80", "by=%FF", "bucket=%ED%A0%80day"):
        response = token_client(carol).get(f"{url()}?{raw}")
        assert response.status_code == 400, (raw, response.content)
        assert list(response.json()) == [raw.split("=")[0]]


@pytest.mark.django_db
def test_an_annotator_with_bad_parameters_still_gets_404(alice, traffic):
    assert token_client(alice).get(url(), {"bucket": "month"}).status_code == 404


@pytest.mark.django_db
def test_the_api_answers_in_a_few_queries(carol, traffic, django_assert_max_num_queries):
    client = token_client(carol)
    # Token, project access, the rollups: whatever the number of rows.
    with django_assert_max_num_queries(4):
        response = client.get(url(), {"by": "model"})
    assert len(response.json()["rows"]) == 4
