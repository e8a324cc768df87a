from __future__ import annotations

import pytest

from review.models import Item, Question, Queue


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
    return Item.objects.bulk_create(
        Item(
            queue=queue,
            content={"prompt": f"Question {i}?", "responses": [f"A{i}", f"B{i}"]},
            reason="api",
            priority=priority,
        )
        for i in range(n)
    )


GOOD = {"better": "left", "quality": 4}
