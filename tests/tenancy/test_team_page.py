"""The team page (/projects/<slug>/team): who sees it, what each manager is offered, the
changes it makes, and a fixed number of queries however large the team."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenancy.models import Membership
from tenancy.services import membership_set
from tests.tenancy.conftest import roles_of

Role = Membership.Role
CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
TEAM = "/projects/acme/team"


def without_csrf(content: bytes) -> bytes:
    return CSRF_TOKEN.sub(b"", content)


def test_anonymous_is_sent_to_log_in(client, project):
    response = client.get(TEAM)
    assert response.status_code == 302 and response.url == f"/accounts/login/?next={TEAM}"


def test_a_lead_sees_the_team_and_may_grant_every_role_but_admin(client, ada, carol, alice, mel):
    client.force_login(carol)
    response = client.get(TEAM)
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("ada", "alice", "carol", "mel"):
        assert f'<th scope="row">{name}' in page
    rows = {row.membership.user.username: row.can_manage for row in response.context["rows"]}
    assert rows == {"ada": False, "carol": True, "alice": True, "mel": True}
    assert [value for value, _ in response.context["roles"]] == ["lead", "annotator", "ml"]
    assert '<option value="admin"' not in page
    assert "Only a project admin grants, changes or removes the admin role." in page


def test_an_admin_is_offered_the_admin_role(client, ada, carol):
    client.force_login(ada)
    page = client.get(TEAM).content.decode()
    assert '<option value="admin"' in page
    assert "Only a project admin grants" not in page
    assert "1 project admin. A project keeps at least one admin" in page


def test_annotators_and_ml_engineers_get_403_saying_why(client, alice, mel):
    for who in (alice, mel):
        client.force_login(who)
        response = client.get(TEAM)
        assert response.status_code == 403
        assert (
            "Only the admins and leads of Acme Chat manage its team." in response.content.decode()
        )
        assert client.post(f"{TEAM}/add", {"user": "bob", "role": "lead"}).status_code == 403
    assert roles_of(alice.gleaner_memberships.get().project)["alice"] == Role.ANNOTATOR


def test_another_projects_team_reads_as_not_found(client, project, owen):
    client.force_login(owen)
    theirs = client.get(TEAM)
    missing = client.get("/projects/no-such-project/team")
    assert theirs.status_code == missing.status_code == 404
    assert without_csrf(theirs.content) == without_csrf(missing.content)
    assert b"Acme" not in theirs.content and b"acme" not in theirs.content
    assert client.post(f"{TEAM}/add", {"user": "owen", "role": "admin"}).status_code == 404
    assert "owen" not in roles_of(project)


def test_a_lead_adds_a_member(client, project, carol, dave):
    client.force_login(carol)
    response = client.post(f"{TEAM}/add", {"user": "Dave@example.com", "role": "annotator"})
    assert response.status_code == 302 and response.url == TEAM
    assert roles_of(project)["dave"] == Role.ANNOTATOR
    assert "Added dave as Annotator." in client.get(TEAM).content.decode()
    assert LogEntry.objects.get().user == carol


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"user": "", "role": "lead"}, "user", "This field is required."),
        ({"user": "dave", "role": "owner"}, "role", "Select a valid choice."),
        ({"user": "nobody", "role": "lead"}, "user", "No account with the username or email"),
        ({"user": "alice", "role": "lead"}, "user", "alice is a member already (Annotator)"),
        ({"user": "dave", "role": "admin"}, "role", "Only a project admin grants the admin role."),
    ],
)
def test_a_refused_addition_is_400_naming_the_field(
    client, project, carol, alice, dave, data, field, message
):
    client.force_login(carol)
    response = client.post(f"{TEAM}/add", data)
    assert response.status_code == 400
    form = response.context["add_form"]
    assert any(message in error for error in form.errors[field])
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert "dave" not in roles_of(project)


def test_a_lead_sets_a_role_and_removes_a_member(client, project, carol, alice, mel):
    client.force_login(carol)
    response = client.post(f"{TEAM}/{alice.pk}/role", {"role": "ml"})
    assert response.status_code == 302
    assert "alice is ML engineer (exports) now." in client.get(TEAM).content.decode()
    assert client.post(f"{TEAM}/{mel.pk}/remove").status_code == 302
    assert roles_of(project) == {"alice": Role.ML, "carol": Role.LEAD}


def test_a_lead_cannot_demote_or_remove_an_admin(client, project, ada, carol):
    client.force_login(carol)
    for path, data in (
        (f"{TEAM}/{ada.pk}/role", {"role": "lead"}),
        (f"{TEAM}/{ada.pk}/remove", {}),
    ):
        response = client.post(path, data)
        assert response.status_code == 400
        assert "Only a project admin changes or removes an admin." in response.content.decode()
    assert roles_of(project)["ada"] == Role.ADMIN


def test_the_last_admin_stays_and_the_page_says_why(client, project, ada):
    client.force_login(ada)
    response = client.post(f"{TEAM}/{ada.pk}/remove")
    assert response.status_code == 400
    assert "ada is the last admin of acme and cannot be removed" in response.content.decode()
    response = client.post(f"{TEAM}/{ada.pk}/role", {"role": "annotator"})
    assert "cannot be demoted" in response.content.decode()
    assert roles_of(project) == {"ada": Role.ADMIN}


def test_a_role_form_with_a_bad_role_is_400_on_its_row(client, carol, alice):
    client.force_login(carol)
    response = client.post(f"{TEAM}/{alice.pk}/role", {"role": "emperor"})
    assert response.status_code == 400
    row = next(r for r in response.context["rows"] if r.membership.user == alice)
    assert row.errors and "Select a valid choice" in row.errors[0]


def test_changing_someone_outside_the_team_is_404(client, carol, owen):
    client.force_login(carol)
    assert client.post(f"{TEAM}/{owen.pk}/role", {"role": "lead"}).status_code == 404
    assert client.post(f"{TEAM}/{owen.pk}/remove").status_code == 404
    assert client.post(f"{TEAM}/999999/remove").status_code == 404


def test_pages_take_only_their_method(client, carol, alice):
    client.force_login(carol)
    assert client.post(TEAM).status_code == 405
    assert client.get(f"{TEAM}/add").status_code == 405
    assert client.get(f"{TEAM}/{alice.pk}/remove").status_code == 405


def test_user_text_is_escaped(client, project, carol, django_user_model):
    evil = django_user_model.objects.create_user(
        username="x<script>", first_name="<b>Eve</b>", password="pw"
    )
    membership_set(project=project, user=evil, role=Role.ANNOTATOR)
    client.force_login(carol)
    page = client.get(TEAM).content.decode()
    assert "x&lt;script&gt;" in page and "&lt;b&gt;Eve&lt;/b&gt;" in page
    assert "<script>" not in page and "<b>Eve" not in page


def _team_page_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(TEAM).status_code == 200
    return len(queries)


def test_the_team_page_costs_a_fixed_number_of_queries(
    client, project, carol, django_user_model, django_assert_max_num_queries
):
    client.force_login(carol)
    few = _team_page_queries(client)
    for n in range(40):
        user = django_user_model.objects.create_user(username=f"member{n}", password="pw")
        membership_set(project=project, user=user, role=[Role.ANNOTATOR, Role.ML, Role.LEAD][n % 3])
    with django_assert_max_num_queries(8):
        assert client.get(TEAM).status_code == 200
    assert _team_page_queries(client) == few


def test_a_lead_who_steps_down_or_leaves_goes_to_their_start_page(client, project, ada, carol):
    client.force_login(carol)
    response = client.post(f"{TEAM}/{carol.pk}/role", {"role": "annotator"})
    assert response.status_code == 302 and response.url == "/"
    assert roles_of(project)["carol"] == Role.ANNOTATOR
    client.force_login(ada)
    client.post(f"{TEAM}/{carol.pk}/role", {"role": "lead"})
    client.force_login(carol)
    response = client.post(f"{TEAM}/{carol.pk}/remove")
    assert response.status_code == 302 and response.url == "/"
    assert "carol" not in roles_of(project)


def test_an_admin_who_steps_down_to_lead_stays_on_the_team_page(client, project, ada, carol):
    client.force_login(ada)
    client.post(f"{TEAM}/{carol.pk}/role", {"role": "admin"})
    response = client.post(f"{TEAM}/{ada.pk}/role", {"role": "lead"})
    assert response.status_code == 302 and response.url == TEAM
    assert roles_of(project) == {"ada": Role.LEAD, "carol": Role.ADMIN}


@pytest.mark.parametrize("user_id", [2**63, 2**70, 10**30])
def test_a_member_id_beyond_the_database_range_is_404(client, project, carol, user_id):
    client.force_login(carol)
    before = roles_of(project)
    assert client.post(f"{TEAM}/{user_id}/role", {"role": "lead"}).status_code == 404
    assert client.post(f"{TEAM}/{user_id}/remove").status_code == 404
    assert roles_of(project) == before


@pytest.mark.parametrize("user", ["a\x00b", "x" * 255, "   "])
def test_a_name_no_account_can_have_is_400_naming_the_field(client, project, carol, user):
    client.force_login(carol)
    before = roles_of(project)
    response = client.post(f"{TEAM}/add", {"user": user, "role": "ml"})
    assert response.status_code == 400
    assert "user" in response.context["add_form"].errors
    assert roles_of(project) == before
