"""Memberships: who holds which role in a project."""

from __future__ import annotations

from django.contrib.auth.models import User

from tenancy.models import Membership, Project


def membership_set(*, project: Project, user: User, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
