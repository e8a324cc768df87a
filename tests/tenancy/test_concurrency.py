"""Team changes at once on PostgreSQL: the project's row lock keeps its last admin."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from tenancy.models import Membership, Project
from tenancy.services import membership_remove, membership_set, membership_set_role

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 8


def all_at_once(*changes) -> list[BaseException]:
    barrier = threading.Barrier(len(changes))
    errors: list[BaseException] = []

    def run(change) -> None:
        try:
            barrier.wait(timeout=30)
            change()
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(change,)) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_two_admins_demoting_each_other_at_once_leave_one_admin(django_user_model):
    for round_ in range(ROUNDS):
        project = Project.objects.create(slug=f"race-{round_}", name="Race")
        ann = django_user_model.objects.create_user(username=f"ann{round_}")
        ben = django_user_model.objects.create_user(username=f"ben{round_}")
        for admin in (ann, ben):
            membership_set(project=project, user=admin, role=Membership.Role.ADMIN)

        errors = all_at_once(
            lambda p=project, a=ann, b=ben: membership_set_role(
                project=p, user=b, role=Membership.Role.LEAD, by=a
            ),
            lambda p=project, a=ann, b=ben: membership_remove(project=p, user=a, by=b),
        )

        admins = Membership.objects.filter(project=project, role=Membership.Role.ADMIN)
        assert admins.count() == 1, round_
        assert len(errors) == 1 and isinstance(errors[0], ValidationError), errors
