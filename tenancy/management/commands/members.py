"""manage.py members list|add|remove|set-role <project-slug> [<username>] [--role ROLE]

The team page's changes from a shell, for an operator: the operator may do what a project
admin may (grant and remove the admin role), and the same rules hold (the last admin of a
project stays). Every change is logged (tenancy/services.py). `add` also takes an email.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenancy import services
from tenancy.models import Membership, Project

ACTIONS = ("list", "add", "remove", "set-role")
# The service's field names, as this command's arguments are named.
ARGUMENT_OF = {"user": "username", "role": "--role"}


class Command(BaseCommand):
    help = "List a project's members, add or remove one, or set a member's role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("project", help="The project's slug.")
        parser.add_argument(
            "username", nargs="?", help="The member (add: a username or an email address)."
        )
        parser.add_argument(
            "--role", choices=Membership.Role.values, help="add, set-role: the role."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action, username, role = options["action"], options["username"], options["role"]
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"project: no project with the slug {options['project']!r}.")
        if action == "list":
            if username is not None or role is not None:
                raise CommandError("list takes only the project's slug.")
            self._list(project)
            return
        if username is None:
            raise CommandError(f"username: {action} needs the member's username.")
        if action in ("add", "set-role") and role is None:
            roles = ", ".join(Membership.Role.values)
            raise CommandError(f"--role: {action} needs a role ({roles}).")
        if action == "remove" and role is not None:
            raise CommandError("--role: remove takes no role.")
        try:
            if action == "add":
                membership = services.membership_add(
                    project=project, user_ref=username, role=role, by=None
                )
                done = f"Added {membership.user.get_username()} to {project.slug} as {role}."
            elif action == "set-role":
                services.membership_set_role(
                    project=project, user=_user(username), role=role, by=None
                )
                done = f"{username} is {role} in {project.slug} now."
            else:
                services.membership_remove(project=project, user=_user(username), by=None)
                done = f"Removed {username} from {project.slug}."
        except ValidationError as error:
            raise CommandError(_worded(error)) from None
        self.stdout.write(done)

    def _list(self, project: Project) -> None:
        memberships = Membership.objects.filter(project=project).select_related("user")
        rows = sorted((m.user.get_username(), m.role) for m in memberships)
        if not rows:
            self.stdout.write(f"{project.slug} has no members.")
        for name, role in rows:
            self.stdout.write(f"{name}\t{role}")


def _user(username: str) -> User:
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(f"username: no user {username!r}.")
    return user


def _worded(error: ValidationError) -> str:
    return " ".join(
        f"{ARGUMENT_OF.get(name, name)}: {problem}"
        for name, problems in error.message_dict.items()
        for problem in problems
    )
