"""Team changes (tenancy/services.py): who may grant and remove which role, the last admin,
and the record every change leaves."""

from __future__ import annotations

import logging

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.exceptions import ValidationError

from tenancy.access import projects_for_user
from tenancy.models import Membership
from tenancy.services import (
    manageable_roles,
    membership_add,
    membership_remove,
    membership_set_role,
)
from tests.tenancy.conftest import roles_of

Role = Membership.Role


def refusal(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def test_admin_adds_a_user_by_username_and_the_change_is_recorded(project, ada, dave, caplog):
    with caplog.at_level(logging.INFO, logger="tenancy.members"):
        membership = membership_add(project=project, user_ref="dave", role=Role.LEAD, by=ada)
    assert (membership.user, membership.role) == (dave, Role.LEAD)
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (ada, ADDITION, str(project.pk))
    assert entry.change_message == "Added dave as Review lead."
    assert "project acme: Added dave as Review lead. By ada." in caplog.messages


def test_a_user_is_found_by_email_whatever_its_case(project, ada, dave):
    membership_add(project=project, user_ref=" dave@EXAMPLE.com ", role=Role.ML, by=ada)
    assert roles_of(project)["dave"] == Role.ML


def test_unknown_or_inactive_user_is_refused_on_user(project, ada, dave):
    dave.is_active = False
    dave.save(update_fields=["is_active"])
    for ref in ("nobody", "nobody@example.com", "dave", ""):
        with pytest.raises(ValidationError) as excinfo:
            membership_add(project=project, user_ref=ref, role=Role.ANNOTATOR, by=ada)
        assert list(refusal(excinfo)) == ["user"], ref
    assert "dave" not in roles_of(project)


def test_an_email_shared_by_two_accounts_asks_for_the_username(
    project, ada, dave, django_user_model
):
    django_user_model.objects.create_user(username="dave2", email="dave@example.com")
    with pytest.raises(ValidationError) as excinfo:
        membership_add(project=project, user_ref="dave@example.com", role=Role.ML, by=ada)
    assert "give the username instead" in refusal(excinfo)["user"][0]


def test_adding_a_member_twice_is_refused_naming_their_role(project, ada, alice):
    with pytest.raises(ValidationError) as excinfo:
        membership_add(project=project, user_ref="alice", role=Role.LEAD, by=ada)
    assert refusal(excinfo) == {
        "user": ["alice is a member already (Annotator): change their role in the list."]
    }
    assert roles_of(project)["alice"] == Role.ANNOTATOR


def test_an_unknown_role_is_refused_on_role(project, ada, dave):
    with pytest.raises(ValidationError) as excinfo:
        membership_add(project=project, user_ref="dave", role="owner", by=ada)
    assert list(refusal(excinfo)) == ["role"]
    with pytest.raises(ValidationError) as excinfo:
        membership_set_role(project=project, user=ada, role="owner", by=ada)
    assert list(refusal(excinfo)) == ["role"]


def test_a_lead_manages_leads_annotators_and_ml_engineers(project, carol, alice, mel, dave):
    membership_add(project=project, user_ref="dave", role=Role.LEAD, by=carol)
    membership_set_role(project=project, user=alice, role=Role.ML, by=carol)
    membership_remove(project=project, user=mel, by=carol)
    assert roles_of(project) == {"alice": Role.ML, "carol": Role.LEAD, "dave": Role.LEAD}
    assert [e.action_flag for e in LogEntry.objects.order_by("pk")] == [ADDITION, CHANGE, DELETION]


def test_a_lead_neither_grants_nor_touches_the_admin_role(project, ada, carol, alice, dave):
    with pytest.raises(ValidationError) as excinfo:
        membership_add(project=project, user_ref="dave", role=Role.ADMIN, by=carol)
    assert refusal(excinfo) == {"role": ["Only a project admin grants the admin role."]}
    with pytest.raises(ValidationError) as excinfo:
        membership_set_role(project=project, user=alice, role=Role.ADMIN, by=carol)
    assert list(refusal(excinfo)) == ["role"]
    for change in (
        lambda: membership_set_role(project=project, user=ada, role=Role.LEAD, by=carol),
        lambda: membership_remove(project=project, user=ada, by=carol),
    ):
        with pytest.raises(ValidationError) as excinfo:
            change()
        assert refusal(excinfo) == {"user": ["Only a project admin changes or removes an admin."]}
    assert roles_of(project) == {"ada": Role.ADMIN, "alice": Role.ANNOTATOR, "carol": Role.LEAD}
    assert not LogEntry.objects.exists()


def test_annotators_ml_engineers_and_outsiders_change_nothing(project, alice, mel, owen, dave):
    for who in (alice, mel, owen):
        with pytest.raises(ValidationError) as excinfo:
            membership_add(project=project, user_ref="dave", role=Role.ANNOTATOR, by=who)
        assert refusal(excinfo) == {
            "user": ["Only the project's admins and leads change its team."]
        }
    with pytest.raises(ValidationError):
        membership_remove(project=project, user=mel, by=alice)
    assert "dave" not in roles_of(project) and roles_of(project)["mel"] == Role.ML


def test_an_admin_grants_and_takes_the_admin_role(project, ada, carol):
    membership_set_role(project=project, user=carol, role=Role.ADMIN, by=ada)
    membership_set_role(project=project, user=ada, role=Role.ANNOTATOR, by=carol)
    assert roles_of(project) == {"ada": Role.ANNOTATOR, "carol": Role.ADMIN}


def test_the_last_admin_is_neither_removed_nor_demoted_even_by_a_superuser(
    project, ada, django_user_model
):
    root = django_user_model.objects.create_superuser(username="root", password="pw-root")
    for by in (ada, root, None):
        with pytest.raises(ValidationError) as excinfo:
            membership_set_role(project=project, user=ada, role=Role.LEAD, by=by)
        assert refusal(excinfo) == {
            "user": [
                "ada is the last admin of acme and cannot be demoted: make someone else "
                "admin first."
            ]
        }
        with pytest.raises(ValidationError) as excinfo:
            membership_remove(project=project, user=ada, by=by)
        assert "cannot be removed" in refusal(excinfo)["user"][0]
    assert roles_of(project) == {"ada": Role.ADMIN}


def test_a_superuser_outside_the_project_manages_every_role(project, ada, dave, django_user_model):
    root = django_user_model.objects.create_superuser(username="root", password="pw-root")
    membership_add(project=project, user_ref="dave", role=Role.ADMIN, by=root)
    membership_remove(project=project, user=ada, by=root)  # dave is admin now: ada may go
    assert roles_of(project) == {"dave": Role.ADMIN}
    assert LogEntry.objects.filter(user=root).count() == 2


def test_setting_the_role_a_member_holds_changes_and_records_nothing(project, ada, alice):
    membership_set_role(project=project, user=alice, role=Role.ANNOTATOR, by=ada)
    assert not LogEntry.objects.exists()


def test_removing_a_member_ends_their_access_to_the_project(project, ada, mel):
    assert project in projects_for_user(mel)
    membership_remove(project=project, user=mel, by=ada)
    assert project not in projects_for_user(mel)


def test_changing_someone_outside_the_project_is_refused_on_user(project, other_project, ada, owen):
    with pytest.raises(ValidationError) as excinfo:
        membership_set_role(project=project, user=owen, role=Role.LEAD, by=ada)
    assert refusal(excinfo) == {"user": ["owen is not a member of acme."]}
    with pytest.raises(ValidationError):
        membership_remove(project=project, user=owen, by=ada)
    assert roles_of(other_project) == {"owen": Role.ADMIN}


def test_an_operator_without_a_person_is_logged_but_not_in_the_admin_log(project, dave, caplog):
    with caplog.at_level(logging.INFO, logger="tenancy.members"):
        membership_add(project=project, user_ref="dave", role=Role.ADMIN, by=None)
    assert roles_of(project) == {"dave": Role.ADMIN}
    assert any("By an operator" in m for m in caplog.messages)
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize(
    ("role", "superuser", "expected"),
    [
        (Role.ADMIN, False, tuple(Role.values)),
        (None, True, tuple(Role.values)),
        (Role.LEAD, False, (Role.LEAD, Role.ANNOTATOR, Role.ML)),
        (Role.ANNOTATOR, False, ()),
        (Role.ML, False, ()),
        (None, False, ()),
    ],
)
def test_manageable_roles_by_role(role, superuser, expected):
    assert manageable_roles(role, is_superuser=superuser) == expected
