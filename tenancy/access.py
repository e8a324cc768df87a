"""Who may see what: the projects a user belongs to, and the checks every page and API
endpoint runs before reading a project's data.

A check that fails raises Http404, never 403: a project one is not a member of and a project
that does not exist answer alike, so slugs cannot be probed.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from core.storable import text_problem
from tenancy.models import Membership, Project

# The roles that may read a project's data (sessions, labels, quality, exports).
READ_ROLES = (Membership.Role.ADMIN, Membership.Role.LEAD, Membership.Role.ML)


def projects_for_user(
    user: User | AnonymousUser, roles: tuple[str, ...] | None = None
) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return Project.objects.filter(pk__in=memberships.values("project_id"))


def access_project(
    user: User | AnonymousUser, slug: str, roles: tuple[str, ...] | None = None
) -> Project:
    """The project if `user` holds one of `roles` in it (any role when None), else Http404.

    Not-a-member and no-such-project answer alike, so slugs cannot be probed.
    """
    if not storable(slug):
        raise Http404("No such project.")
    project = projects_for_user(user, roles).filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    return project


def storable(text: str) -> bool:
    """False for text no row can hold (PostgreSQL refuses NUL in a query): matches nothing."""
    return text_problem(text) is None
