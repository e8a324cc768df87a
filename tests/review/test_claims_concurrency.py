from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from review.claims import item_claim_next
from review.models import Assignment
from tests.review.conftest import make_items

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_many_annotators_claiming_at_once_never_overfill_an_item(queue, django_user_model):
    annotators = [
        django_user_model.objects.create_user(username=f"annotator{i}") for i in range(12)
    ]
    queue.members.add(*annotators)
    items = make_items(queue, 5)  # 5 items x 2 annotations = 10 slots for 12 annotators
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
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    claims = list(Assignment.objects.values_list("item_id", "user_id"))
    per_item = Counter(item for item, _ in claims)
    per_user = Counter(user for _, user in claims)
    assert max(per_item.values()) <= queue.annotations_per_item
    assert max(per_user.values()) == 1  # one live claim each
    assert len(set(claims)) == len(claims)
    # Every slot was taken: 10 slots, 12 annotators, each retrying.
    assert sum(per_item.values()) == len(items) * queue.annotations_per_item
