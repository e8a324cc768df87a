"""What every benchmark does first: Django set up on the configured database, migrated,
and a fresh project per run (so runs never collide and data is reused only on purpose)."""

from __future__ import annotations

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def setup() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def new_project(kind: str):  # noqa: ANN201 - a feedback.models.Project (Django not set up yet)
    from feedback import services

    project, _ = services.project_create(slug=f"bench-{kind}-{time.strftime('%Y%m%d%H%M%S')}")
    return project


def analyze() -> None:
    """Refresh PostgreSQL's planner statistics after a bulk load, as autovacuum would."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def review_queue(  # noqa: ANN201 - a review.models.Queue
    project,  # noqa: ANN001
    *,
    key: str = "better",
    choices: tuple[str, ...] = ("left", "right", "tie", "both bad"),
):
    """A three-annotation queue with a choice question (`key`) and a 1..5 rating."""
    from review.models import Question, Queue

    queue = Queue.objects.create(project=project, name="bench", annotations_per_item=3)
    Question.objects.create(
        queue=queue, key=key, type="choice", prompt="Which is better?", choices=list(choices)
    )
    Question.objects.create(
        queue=queue,
        key="quality",
        type="rating",
        prompt="Quality",
        min_value=1,
        max_value=5,
        level="ordinal",
        position=1,
    )
    return queue
