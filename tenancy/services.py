"""Team changes: adding a project's members, removing them and setting their roles.

The rules, enforced here for the team page and the `members` command alike:

- Project admins (and superusers) manage every role. A lead manages leads, annotators and
  ML engineers: a lead neither grants the admin role nor changes or removes an admin.
- The last admin of a project can be neither removed nor demoted (by anyone), so every
  project keeps someone who can manage it without a superuser.
- Every change is recorded: a line on the `tenancy.members` logger, and, when a person made
  it (`by` given), an entry in the admin log (`LogEntry`) of the project, shown on the
  project's History page in the admin.

Each change runs in one transaction holding the project's row lock, so two changes to one
project's team (two admins demoting each other, say) run one after the other and the
last-admin rule holds.

Refusals are `ValidationError`s keyed by the field at fault: `user` (the username or email,
or the member), `role`.
"""

from __future__ import annotations

import logging

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from tenancy.models import Membership, Project

logger = logging.getLogger("tenancy.members")

Role = Membership.Role
# Who may change a team at all (the team page's audience).
TEAM_MANAGER_ROLES = (Role.ADMIN, Role.LEAD)
# The roles a lead may grant, change and take away.
LEAD_MANAGED_ROLES = (Role.LEAD, Role.ANNOTATOR, Role.ML)


def manageable_roles(manager_role: str | None, *, is_superuser: bool = False) -> tuple[str, ...]:
    """The roles someone holding `manager_role` in a project may grant and take away there
    (all for an admin or a superuser; leads, annotators and ML engineers for a lead)."""
    if is_superuser or manager_role == Role.ADMIN:
        return tuple(Role.values)
    if manager_role == Role.LEAD:
        return LEAD_MANAGED_ROLES
    return ()


def user_find(user_ref: str) -> User:
    """The active user with this username, or (when it holds an "@") this email, compared
    without case. Raises ValidationError on `user` if there is none, or several."""
    text = user_ref.strip()
    if not text:
        raise ValidationError({"user": "Give a username or an email address."})
    users = User.objects.filter(is_active=True)
    found = list(users.filter(**{User.USERNAME_FIELD: text})[:1])
    if not found and "@" in text:
        found = list(users.filter(email__iexact=text)[:2])
        if len(found) > 1:
            raise ValidationError(
                {"user": f"Several accounts use the email {text}: give the username instead."}
            )
    if not found:
        raise ValidationError(
            {"user": f"No account with the username or email {text}. They need one first."}
        )
    return found[0]


def membership_add(*, project: Project, user_ref: str, role: str, by: User | None) -> Membership:
    """Make the user named by `user_ref` (username or email) a member of `project` with
    `role`. `by` is the person making the change; None for an operator (the command), who
    may do what an admin may."""
    _check_role(role)
    user = user_find(user_ref)
    with transaction.atomic():
        _lock(project)
        _check_grant(project, by, role)
        existing = Membership.objects.filter(project=project, user=user).first()
        if existing is not None:
            raise ValidationError(
                {
                    "user": f"{user.get_username()} is a member already "
                    f"({existing.get_role_display()}): change their role in the list."
                }
            )
        membership = Membership.objects.create(project=project, user=user, role=role)
        _record(project, by, ADDITION, f"Added {user.get_username()} as {_role_name(role)}.")
    return membership


def membership_set_role(*, project: Project, user: User, role: str, by: User | None) -> Membership:
    """Give the member `user` of `project` the role `role` (a no-op if they hold it)."""
    _check_role(role)
    with transaction.atomic():
        _lock(project)
        membership = _membership_of(project, user)
        if membership.role == role:
            return membership
        _check_grant(project, by, membership.role, taking=True)
        _check_grant(project, by, role)
        if membership.role == Role.ADMIN:
            _check_not_last_admin(project, membership, "demoted")
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        _record(
            project,
            by,
            CHANGE,
            f"Changed the role of {user.get_username()} from {_role_name(old)} "
            f"to {_role_name(role)}.",
        )
    return membership


def membership_remove(*, project: Project, user: User, by: User | None) -> None:
    """Take `user` out of `project`. Their queue places stay, but project membership is what
    grants access (review.selectors.queues_for_user), so their access ends at once."""
    with transaction.atomic():
        _lock(project)
        membership = _membership_of(project, user)
        _check_grant(project, by, membership.role, taking=True)
        if membership.role == Role.ADMIN:
            _check_not_last_admin(project, membership, "removed")
        membership.delete()
        _record(
            project,
            by,
            DELETION,
            f"Removed {user.get_username()} (was {_role_name(membership.role)}).",
        )


# Checks -----------------------------------------------------------------------------------


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Must be one of {', '.join(Role.values)}."})


def _lock(project: Project) -> None:
    # Serialises the changes to one project's team (see the module docstring).
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _membership_of(project: Project, user: User) -> Membership:
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None:
        raise ValidationError({"user": f"{user.get_username()} is not a member of {project}."})
    return membership


def _check_grant(project: Project, by: User | None, role: str, *, taking: bool = False) -> None:
    """May `by` grant `role` in `project` (or, with `taking`, take it from someone)?"""
    if by is None:
        return
    held = Membership.objects.filter(project=project, user=by).values_list("role", flat=True)
    allowed = manageable_roles(next(iter(held), None), is_superuser=by.is_superuser)
    if role in allowed:
        return
    if not allowed:
        raise ValidationError({"user": "Only the project's admins and leads change its team."})
    if taking:
        raise ValidationError({"user": "Only a project admin changes or removes an admin."})
    raise ValidationError({"role": "Only a project admin grants the admin role."})


def _check_not_last_admin(project: Project, membership: Membership, verb: str) -> None:
    others = Membership.objects.filter(project=project, role=Role.ADMIN).exclude(pk=membership.pk)
    if not others.exists():
        raise ValidationError(
            {
                "user": f"{membership.user.get_username()} is the last admin of {project} and "
                f"cannot be {verb}: make someone else admin first."
            }
        )


# Records ----------------------------------------------------------------------------------


def _role_name(role: str) -> str:
    return str(Role(role).label)


def _record(project: Project, by: User | None, action: int, message: str) -> None:
    who = by.get_username() if by is not None else "an operator (manage.py members)"
    logger.info("project %s: %s By %s.", project.slug, message, who)
    if by is not None:
        LogEntry.objects.log_actions(
            user_id=by.pk,
            queryset=[project],
            action_flag=action,
            change_message=message,
            single_object=True,
        )


def membership_set(*, project: Project, user: User, role: str) -> Membership:
    """Give `user` `role` in `project`, without the rules above and without a record: for
    setting up data (the demo, benches, tests, `create_project`). A person's change goes
    through `membership_add`, `membership_set_role` or `membership_remove`."""
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
