"""Every project has its routing policy, however it is made (project_policy_ensure)."""

from __future__ import annotations

import pytest

from feedback.models import RoutingPolicy
from tenancy.models import Project

pytestmark = pytest.mark.django_db


def test_a_project_created_anywhere_gets_its_policy_once():
    project = Project.objects.create(slug="made-by-orm", name="Made by the ORM")
    assert RoutingPolicy.objects.filter(project=project).count() == 1
    project.name = "Renamed"
    project.save()  # a later save makes no second policy
    assert RoutingPolicy.objects.filter(project=project).count() == 1
    assert project.policy.confidence_threshold == RoutingPolicy().confidence_threshold
