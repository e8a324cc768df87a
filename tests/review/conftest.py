from __future__ import annotations

import pytest

from review.models import Item, Question, Queue
from review.services import items_add


@pytest.fixture
def queue(project, alice, bob, carol):
    queue = Queue.objects.create(
        project=project, name="Edits to check", annotations_per_item=2, guidelines="Be *fair*."
    )
    Question.objects.create(
        queue=queue,
        key="better",
        type="choice",
        prompt="Which answer is better?",
        choices=["left", "right", "tie", "both bad"],
        position=0,
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
    Question.objects.create(
        queue=queue, key="note", type="text", prompt="Why?", required=False, position=2
    )
    queue.members.add(alice, bob)
    return queue


def make_items(queue, n: int, priority: int = 0) -> list[Item]:
    """n free-content pair items, added through the service (which keeps queue counts)."""
    ids = items_add(
        queue=queue,
        items=[
            {
                "content": {"prompt": f"Question {i}?", "responses": [f"A{i}", f"B{i}"]},
                "priority": priority,
            }
            for i in range(n)
        ],
    )
    return list(Item.objects.filter(pk__in=ids).order_by("id"))


GOOD = {"better": "left", "quality": 4}
