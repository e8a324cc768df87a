"""Team fixtures on top of the named users of tests/conftest.py: ada, admin of acme (the
project of alice, bob, carol and mel); a Chromium login helper."""

from __future__ import annotations

import pytest

from tenancy.models import Membership
from tenancy.services import membership_set


@pytest.fixture
def ada(django_user_model, project):
    user = django_user_model.objects.create_user(
        username="ada", password="pw-ada", email="ada@example.com"
    )
    membership_set(project=project, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def dave(django_user_model):
    """An account with no project yet (someone to add)."""
    return django_user_model.objects.create_user(
        username="dave", password="pw-dave", email="Dave@Example.com"
    )


def roles_of(project) -> dict[str, str]:
    return {
        m.user.username: m.role
        for m in Membership.objects.filter(project=project).select_related("user")
    }
