"""manage.py members list|add|remove|set-role: the team from a shell, with errors that name
the argument at fault."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenancy.models import Membership
from tests.tenancy.conftest import roles_of

Role = Membership.Role


def members(*args: str) -> str:
    out = StringIO()
    call_command("members", *args, stdout=out)
    return out.getvalue()


def test_list_prints_each_member_and_role_by_username(project, ada, carol, alice):
    assert members("list", "acme") == "ada\tadmin\nalice\tannotator\ncarol\tlead\n"


def test_list_of_a_project_without_members_says_so(project):
    assert members("list", "acme") == "acme has no members.\n"


def test_add_set_role_and_remove(project, ada, dave):
    assert members("add", "acme", "dave@example.com", "--role", "ml") == (
        "Added dave to acme as ml.\n"
    )
    assert members("set-role", "acme", "dave", "--role", "admin") == "dave is admin in acme now.\n"
    assert members("remove", "acme", "ada") == "Removed ada from acme.\n"
    assert roles_of(project) == {"dave": Role.ADMIN}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "nope"), "project: no project with the slug 'nope'."),
        (("add", "acme"), "username: add needs the member's username."),
        (("add", "acme", "dave"), "--role: add needs a role (admin, lead, annotator, ml)."),
        (("set-role", "acme", "alice"), "--role: set-role needs a role"),
        (("remove", "acme", "alice", "--role", "lead"), "--role: remove takes no role."),
        (("list", "acme", "alice"), "list takes only the project's slug."),
        (("remove", "acme", "nobody"), "username: no user 'nobody'."),
        (("add", "acme", "nobody", "--role", "ml"), "username: No account with the username"),
        (("add", "acme", "alice", "--role", "ml"), "username: alice is a member already"),
        (("remove", "acme", "dave"), "username: dave is not a member of acme."),
        (("remove", "acme", "ada"), "username: ada is the last admin of acme"),
        (("set-role", "acme", "ada", "--role", "lead"), "cannot be demoted"),
        (("add", "acme", "dave", "--role", "boss"), "argument --role: invalid choice: 'boss'"),
        (("promote", "acme", "dave"), "argument action: invalid choice: 'promote'"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(project, ada, alice, dave, args, message):
    before = roles_of(project)
    with pytest.raises(CommandError) as excinfo:
        members(*args)
    assert message in str(excinfo.value)
    assert roles_of(project) == before
