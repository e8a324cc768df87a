from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from review.claims import item_claim_next
from review.models import Assignment, Queue
from tests.review.conftest import make_items

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 6


def claim_all_at_once(queue: Queue, annotators: list) -> list[BaseException]:
    barrier = threading.Barrier(len(annotators))
    errors: list[BaseException] = []

    def work(user) -> None:
        try:
            barrier.wait(timeout=30)
            # SKIP LOCKED may pass over an item another thread holds for a moment: retry
            # a bounded number of times, as a client would on 204.
            for _ in range(20):
                if item_claim_next(queue=queue, user=user) is not None:
                    break
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_many_annotators_claiming_at_once_never_overfill_an_item(project, django_user_model):
    annotators = [
        django_user_model.objects.create_user(username=f"annotator{i}") for i in range(12)
    ]
    # Several rounds: the race (a claim committed between another claimer's snapshot and
    # its row lock) needs the timing to line up, so give it many chances.
    for round_ in range(ROUNDS):
        queue = Queue.objects.create(
            project=project, name=f"Round {round_}", annotations_per_item=2
        )
        queue.members.add(*annotators)
        items = make_items(queue, 5)  # 10 slots for 12 annotators

        assert claim_all_at_once(queue, annotators) == []

        claims = list(Assignment.objects.filter(queue=queue).values_list("item_id", "user_id"))
        per_item = Counter(item for item, _ in claims)
        per_user = Counter(user for _, user in claims)
        assert max(per_item.values()) <= queue.annotations_per_item, per_item
        assert max(per_user.values()) == 1  # one live claim each
        assert len(set(claims)) == len(claims)
        assert sum(per_item.values()) == len(items) * queue.annotations_per_item
