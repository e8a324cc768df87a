"""Label quality: the API (GET /api/v1/projects/<slug>/quality), the page
(/review/projects/<slug>/quality), its links, and the RoutingPolicy admin's summary."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import schemathesis
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from playwright.sync_api import expect
from rest_framework.test import APIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from feedback.models import Generation, Label, RoutingPolicy, Session
from tenancy.models import Membership, Project
from tests.browser import ARTIFACTS, logged_in_page
from tests.conftest import make_user, token_client
from tests.review.test_views import logged_in

SCRIPT = "<script>alert(1)</script>"
# A Wednesday, long before any test's "now": every label falls in the week of 2026-11-16,
# and the drift guard (which looks at the last five weeks) has nothing to compare.
WHEN = datetime(2026, 11, 18, 12, tzinfo=UTC)
_keys = count()


def url(project: Project) -> str:
    return f"/review/projects/{project.slug}/quality"


def api_url(project: Project) -> str:
    return f"/api/v1/projects/{project.slug}/quality"


def verdicts(
    project: Project,
    *,
    rule: str,
    accepted: int,
    rejected: int,
    reason: str = Label.ReviewReason.QA_SAMPLE,
    model: str = "m1",
    feature: str = "chat",
    rule_confidence: float = 0.85,
    when: datetime = WHEN,
) -> None:
    """`accepted` + `rejected` completion labels of `rule` with those verdicts."""
    n = next(_keys)
    session = Session.objects.create(
        project=project, external_id=f"s{n}", first_event_at=when, last_event_at=when
    )
    generation = Generation.objects.create(
        project=project,
        session=session,
        external_id=f"g{n}",
        output="An answer.",
        model=model,
        metadata={"feature": feature},
        created_at=when,
    )
    Label.objects.bulk_create(
        Label(
            project=project,
            session=session,
            generation=generation,
            key=f"k{i}",
            kind=Label.Kind.COMPLETION,
            source=Label.Source.COPY,
            rule=rule,
            completion="An answer.",
            label=True,
            confidence=rule_confidence,
            rule_confidence=rule_confidence,
            weight=1.0,
            needs_review=reason != Label.ReviewReason.QA_SAMPLE,
            review_reason=reason,
            review_outcome=outcome,
            model=model,
            occurred_at=when,
        )
        for i, outcome in enumerate(
            [Label.Outcome.ACCEPTED] * accepted + [Label.Outcome.REJECTED] * rejected
        )
    )


@pytest.fixture
def measured(project):
    """copy_accept: 4 of 5 QA-sampled labels confirmed, 1 of 3 routed ones; edit_correction:
    2 of 2 QA-sampled, from a model with a hostile name."""
    verdicts(project, rule="copy_accept", accepted=4, rejected=1)
    verdicts(
        project,
        rule="copy_accept",
        accepted=1,
        rejected=2,
        reason=Label.ReviewReason.LOW_CONFIDENCE,
        rule_confidence=0.55,
    )
    verdicts(project, rule="edit_correction", accepted=2, rejected=0, model=SCRIPT)
    return project


@pytest.fixture
def dana(django_user_model, project):
    """An admin of `project`."""
    return make_user(django_user_model, "dana", project, Membership.Role.ADMIN)


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="pw-root")


def cell(body: dict, rule: str, segment: dict, source: str) -> dict:
    (found,) = [
        c
        for c in body["cells"]
        if c["rule"] == rule and c["segment"] == segment and c["source"] == source
    ]
    return found


# The API ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["carol", "mel", "dana", "root"])
def test_leads_ml_engineers_admins_and_superusers_read_the_api(who, request, measured):
    user = request.getfixturevalue(who)
    response = token_client(user).get(api_url(measured))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["alice", "owen"])
def test_annotators_and_other_projects_members_get_404_from_the_api(who, request, measured):
    user = request.getfixturevalue(who)
    response = token_client(user).get(api_url(measured))
    assert response.status_code == 404
    assert "precision" not in response.content.decode()


@pytest.mark.django_db
def test_anonymous_callers_are_refused_by_the_api(measured):
    response = APIClient().get(api_url(measured))
    assert response.status_code == 401
    assert "cells" not in response.content.decode()


@pytest.mark.django_db
def test_an_unknown_slug_is_404_like_a_forbidden_one(carol, root):
    assert token_client(carol).get("/api/v1/projects/no-such/quality").status_code == 404
    assert token_client(root).get("/api/v1/projects/no-such/quality").status_code == 404


@pytest.mark.django_db
def test_the_api_answers_the_report_with_qa_sample_and_routed_apart(carol, measured):
    body = token_client(carol).get(api_url(measured)).json()

    assert set(body) == {"target", "min_verdicts", "feature_key", "cells", "weekly", "warnings"}
    policy = RoutingPolicy.objects.get(project=measured)
    assert body["target"] == policy.target_precision
    assert body["min_verdicts"] == policy.min_verdicts
    assert body["feature_key"] == "feature"
    assert body["warnings"] == []

    qa = cell(body, "copy_accept", {}, "qa_sample")
    assert (qa["verdicts"], qa["right"], qa["precision"]) == (5, 4, 0.8)
    assert qa["low"] == pytest.approx(0.3755, abs=1e-4)
    assert qa["high"] == pytest.approx(0.9638, abs=1e-4)
    routed = cell(body, "copy_accept", {}, "routed")
    assert (routed["verdicts"], routed["right"], routed["precision"]) == (3, 1, 0.3333)
    assert routed["low"] < routed["precision"] < routed["high"]

    assert cell(body, "copy_accept", {"model": "m1"}, "qa_sample")["verdicts"] == 5
    assert cell(body, "copy_accept", {"feature": "chat"}, "routed")["verdicts"] == 3
    assert cell(body, "copy_accept", {"band": "0.8-0.9"}, "qa_sample")["right"] == 4
    assert cell(body, "copy_accept", {"band": "0.5-0.6"}, "routed")["right"] == 1
    hostile = cell(body, "edit_correction", {"model": SCRIPT}, "qa_sample")
    assert (hostile["verdicts"], hostile["precision"]) == (2, 1.0)

    weeks = {w["rule"]: w for w in body["weekly"]}
    assert weeks["copy_accept"]["week"] == "2026-11-16"
    assert (weeks["copy_accept"]["verdicts"], weeks["copy_accept"]["right"]) == (8, 5)
    assert weeks["copy_accept"]["precision"] == 0.625


@pytest.mark.django_db
def test_an_empty_project_answers_no_cells(carol, project):
    body = token_client(carol).get(api_url(project)).json()
    assert body["cells"] == [] and body["weekly"] == [] and body["warnings"] == []


@pytest.mark.django_db
def test_the_schema_types_the_quality_answer():
    body = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/projects/{slug}/quality" in body
    for component in ("QualityReport", "QualityCell", "QualityWeek", "QualityWarning"):
        assert f"{component}:" in body or f'"{component}"' in body


@pytest.mark.django_db
def test_a_real_answer_keeps_to_the_openapi_schema(carol, measured, wsgi_app):
    """The schema fuzzing test never finds a real slug for this path: check a real answer,
    with cells of every segment and a hostile model name, against the schema."""
    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)))
    operation = schema["/api/v1/projects/{slug}/quality"]["GET"]
    case = operation.Case(path_parameters={"slug": measured.slug})
    token = token_client(carol)._credentials["HTTP_AUTHORIZATION"]
    response = case.call(headers={"Authorization": token}, app=wsgi_app)
    assert response.status_code == 200
    assert len(response.json()["cells"]) == 12  # 8 of copy_accept, 4 of edit_correction
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )


# The page ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["carol", "mel", "dana", "root"])
def test_leads_ml_engineers_admins_and_superusers_see_the_page(who, request, measured):
    response = logged_in(request.getfixturevalue(who)).get(url(measured))
    assert response.status_code == 200
    assert "Acme Chat: label quality" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["alice", "owen"])
def test_annotators_and_other_projects_members_get_404_from_the_page(who, request, measured):
    assert logged_in(request.getfixturevalue(who)).get(url(measured)).status_code == 404


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(measured):
    response = Client().get(url(measured))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_page_shows_each_rules_cells_with_sources_apart(carol, measured):
    page = logged_in(carol).get(url(measured)).content.decode()
    text = re.sub(r"\s+", " ", page)

    assert "Target precision: <strong>0.95</strong>" in text
    assert text.index("<code>copy_accept</code>") < text.index("<code>edit_correction</code>")
    assert "QA sample (unbiased)" in text and "Routed to review (doubtful)" in text
    assert "looked doubtful" in text  # the one-line explanation of why they differ
    # Overall row of copy_accept: QA sample 5 verdicts, 0.800 (0.376 – 0.964); routed 3, 0.333.
    overall = re.search(r'<th scope="row">Overall</th>(.*?)</tr>', text).group(1)
    cells = re.findall(r'<td class="num">(.*?)</td>', overall)
    assert cells[:3] == ["5", "0.800", "0.376 – 0.964"]
    assert cells[3:5] == ["3", "0.333"]
    assert "Band: <code>0.8-0.9</code>" in text
    assert "Feature: <code>chat</code>" in text
    # The weekly chart and its table.
    assert text.count('<figure class="chart"') == 2
    assert '<time datetime="2026-11-16">2026-11-16</time>' in text
    assert "precision 0.62 (95% interval" in text


@pytest.mark.django_db
def test_a_hostile_model_name_is_shown_as_text(carol, measured):
    page = logged_in(carol).get(url(measured)).content.decode()
    assert SCRIPT not in page
    assert "Model: <code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in page


@pytest.mark.django_db
def test_warnings_come_first_and_are_escaped(carol, project):
    # What reaches training in the last 7 days is all of a rule that was none of it in the
    # weeks before (enough labels in both windows to read drift): the guard warns about both
    # rules' shares.
    rule = f"share_accept{SCRIPT}"
    now = datetime.now(UTC)
    verdicts(project, rule="copy_accept", accepted=60, rejected=0, when=now - timedelta(weeks=2))
    verdicts(project, rule=rule, accepted=60, rejected=0, when=now - timedelta(hours=1))
    page = logged_in(carol).get(url(project)).content.decode()
    assert SCRIPT not in page
    assert page.index('id="warnings-heading"') < page.index("<code>copy_accept</code>")
    assert "<strong>share_accept&lt;script&gt;alert(1)&lt;/script&gt;</strong>" in page
    assert page.count("<code>rule_share</code>") == 2


@pytest.mark.django_db
def test_the_page_costs_the_same_few_queries_however_many_rules_and_models(carol, measured):
    client = logged_in(carol)
    client.get(url(measured))  # the session's first read is not the page's cost
    with CaptureQueriesContext(connection) as small:
        assert client.get(url(measured)).status_code == 200
    for n in range(6):
        verdicts(measured, rule=f"rule_{n}", accepted=3, rejected=1, model=f"model-{n}")
        verdicts(measured, rule="copy_accept", accepted=1, rejected=1, model=f"other-{n}")
    with CaptureQueriesContext(connection) as large:
        assert client.get(url(measured)).status_code == 200
    assert len(large) == len(small)


@pytest.mark.django_db
def test_the_page_is_a_small_constant_number_of_queries(
    carol, measured, django_assert_max_num_queries
):
    # Recent and earlier labels, so the drift guard compares them (all of its queries run).
    now = datetime.now(UTC)
    verdicts(measured, rule="copy_accept", accepted=60, rejected=0, when=now - timedelta(weeks=2))
    verdicts(measured, rule="share_accept", accepted=60, rejected=0, when=now - timedelta(hours=1))
    client = logged_in(carol)
    # Session, user, project, policy, 4 cell aggregates, weekly, and the guard's 6.
    with django_assert_max_num_queries(16):
        response = client.get(url(measured))
    assert 'id="warnings-heading"' in response.content.decode()


@pytest.mark.django_db
def test_a_project_without_verdicts_says_so(carol, project):
    page = logged_in(carol).get(url(project)).content.decode()
    assert "No verdicts yet" in page
    assert 'id="warnings-heading"' not in page


# Links ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_lead_navigation_links_to_the_quality_page(carol, queue):
    page = logged_in(carol).get(f"/review/q/{queue.pk}/overview").content.decode()
    assert f'href="/review/projects/{queue.project.slug}/quality"' in page


@pytest.mark.django_db
def test_the_exports_page_links_to_quality_for_ml_engineers_only(mel, alice, project):
    link = f'href="/review/projects/{project.slug}/quality"'
    assert link in logged_in(mel).get("/exports/").content.decode()
    assert link not in logged_in(alice).get("/exports/").content.decode()


# Admin ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_routing_policy_admin_shows_each_rules_precision_escaped(root, measured):
    policy = RoutingPolicy.objects.get(project=measured)
    page = logged_in(root).get(f"/admin/feedback/routingpolicy/{policy.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Measured precision" in text
    assert "<th scope='row'>copy_accept</th><td>QA sample</td><td>5</td><td>0.800</td>" in text
    assert "<td>0.376 – 0.964</td>" in text
    assert "<th scope='row'>copy_accept</th><td>routed</td><td>3</td><td>0.333</td>" in text
    assert SCRIPT not in text


# In a browser -----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_lead_opens_the_quality_page_in_a_browser(live_server, browser, carol, measured):
    page = logged_in_page(browser, live_server.url, "carol", url(measured))

    expect(page.get_by_role("heading", name="Acme Chat: label quality")).to_be_visible()
    table = page.get_by_role("table", name="Precision of copy_accept by segment")
    expect(table).to_be_visible()
    expect(table.get_by_role("row", name=re.compile(r"^Overall"))).to_contain_text("0.800")
    chart = page.get_by_role("img", name=re.compile(r"precision of copy_accept per week"))
    expect(chart).to_be_visible()
    expect(page.locator("svg.chart-svg path title").first).to_contain_text("Week of 2026-11-16")
    weekly = page.get_by_role("table", name="Precision of copy_accept per week")
    expect(weekly).to_contain_text("2026-11-16")
    # Keyboard: the chart figure takes focus, so its description is reachable without a mouse.
    page.locator("figure.chart").first.focus()
    expect(page.locator("figure.chart").first).to_be_focused()
    expect(page.get_by_text(SCRIPT)).to_be_visible()  # the hostile model name, as text
    page.screenshot(path=ARTIFACTS / "quality.png", full_page=True)
    page.context.close()
