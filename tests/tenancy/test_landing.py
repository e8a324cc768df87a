"""`/` sends each role where its work is (config/landing.py), and the lead's list of
projects (review:lead) links each project's queues and team."""

from __future__ import annotations

import pytest

from config.landing import landing_page
from review.models import Queue
from tenancy.models import Membership
from tenancy.services import membership_set

Role = Membership.Role


def test_anonymous_is_asked_to_log_in_and_comes_back_here(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url == "/accounts/login/?next=/"


@pytest.mark.parametrize(
    ("who", "page"),
    [
        ("alice", "/review/"),
        ("carol", "/review/lead/"),
        ("ada", "/review/lead/"),
        ("mel", "/exports/"),
        ("dave", "/review/"),  # no project yet: their (empty) queues say what to do
    ],
)
def test_each_role_lands_where_its_work_is(
    client, request, who, page, alice, carol, ada, mel, dave
):
    client.force_login(request.getfixturevalue(who))
    response = client.get("/")
    assert response.status_code == 302 and response.url == page
    assert response.headers["Cache-Control"].startswith("max-age=0")


def test_a_superuser_lands_on_the_lead_view(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root"))
    assert client.get("/").url == "/review/lead/"


def test_several_roles_land_on_the_most_capable(client, project, other_project, alice, mel):
    membership_set(project=other_project, user=alice, role=Role.ML)
    client.force_login(alice)
    assert client.get("/").url == "/exports/"
    membership_set(project=other_project, user=mel, role=Role.LEAD)
    client.force_login(mel)
    assert client.get("/").url == "/review/lead/"


@pytest.mark.parametrize(
    ("roles", "superuser", "page"),
    [
        (set(), False, "review:queues"),
        ({Role.ANNOTATOR}, False, "review:queues"),
        ({Role.ANNOTATOR, Role.ML}, False, "exports:list"),
        ({Role.ML, Role.LEAD}, False, "review:lead"),
        ({Role.ADMIN}, False, "review:lead"),
        (set(), True, "review:lead"),
    ],
)
def test_landing_page_by_roles(roles, superuser, page):
    assert landing_page(roles=roles, is_superuser=superuser) == page


def test_logging_in_without_a_next_page_lands_by_role(client, mel):
    response = client.post("/accounts/login/", {"username": "mel", "password": "pw-mel"})
    assert response.status_code == 302 and response.url == "/"
    assert client.get(response.url).url == "/exports/"


def test_the_lead_view_lists_led_projects_with_their_queues_and_team(
    client, project, other_project, carol, owen
):
    queue = Queue.objects.create(project=project, name="Edits to check")
    Queue.objects.create(project=other_project, name="Globex queue")
    client.force_login(carol)
    page = client.get("/review/lead/").content.decode()
    assert f'href="/review/q/{queue.pk}/overview"' in page
    assert 'href="/projects/acme/team"' in page
    assert "Globex" not in page


def test_the_lead_view_of_someone_who_leads_nothing_says_so(client, alice):
    client.force_login(alice)
    page = client.get("/review/lead/").content.decode()
    assert "You do not lead any project." in page


def test_my_queues_links_a_lead_to_the_lead_view(client, project, carol, alice):
    client.force_login(carol)
    assert 'href="/review/lead/"' in client.get("/review/").content.decode()
    client.force_login(alice)
    assert 'href="/review/lead/"' not in client.get("/review/").content.decode()


def test_the_lead_navigation_links_the_team_page(client, project, carol):
    queue = Queue.objects.create(project=project, name="Edits to check")
    client.force_login(carol)
    page = client.get(f"/review/q/{queue.pk}/overview").content.decode()
    assert 'href="/projects/acme/team"' in page
