"""The recompute's PostgreSQL reads (review/gate.py: each column aggregated into one binary
string, answers' places and the user packed into 64-bit words, item facts packed too)
against the row-by-row reads SQLite uses, on the same rows: every value identical."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from feedback.models import Generation, Label, Session
from review import gate
from review.agreement import gated
from review.models import Annotation, Item, Question, Queue

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

START = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
VERDICTS = ["yes", "no", "unsure", "maybe", None]
RATINGS: list[Any] = [1, 2, 3, 4, 5, 9, "3", "+4", " 2 ", "05", "seven", None]


def build(project, *, choices: int, ratings: int, seed: int) -> Queue:
    """A queue with `choices` choice and `ratings` rating questions, answered at random
    (some answers missing, some not among the values, some ratings written as texts)."""
    rng = random.Random(seed)
    queue = Queue.objects.create(project=project, name=f"arrays {seed}", annotations_per_item=2)
    keys: list[tuple[str, list[Any]]] = []
    for n in range(choices):
        Question.objects.create(
            queue=queue,
            key=f"c{n}",
            type="choice",
            prompt="?",
            choices=["yes", "no", "unsure"],
            position=len(keys),
        )
        keys.append((f"c{n}", VERDICTS))
    for n in range(ratings):
        Question.objects.create(
            queue=queue,
            key=f"r{n}",
            type="rating",
            prompt="?",
            min_value=1,
            max_value=5,
            level="ordinal",
            position=len(keys),
        )
        keys.append((f"r{n}", RATINGS))
    users = [get_user_model().objects.create(username=f"arr{seed}-{n}") for n in range(4)]
    for n in range(40):
        item = Item.objects.create(
            queue=queue,
            reason="api",
            status=rng.choice(["open", "complete", "complete", "discarded"]),
        )
        Annotation.objects.bulk_create(
            Annotation(
                item=item,
                queue=queue,
                user=user,
                answers={},
                values={
                    key: value
                    for key, values in keys
                    if (value := rng.choice(values)) is not None or rng.random() < 0.5
                },
                created_at=START + timedelta(seconds=rng.randint(0, 10**7), microseconds=n),
            )
            for user in rng.sample(users, rng.randint(0, 4))
        )
    return queue


def in_order(arrays: tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]) -> list:
    """The read's rows as tuples, sorted (the two reads need not give them in one order)."""
    items, users, times, codes = arrays
    columns = [items.tolist(), users.tolist(), times.tolist(), *(c.tolist() for c in codes)]
    return sorted(zip(*columns, strict=True))


@pytest.mark.parametrize(
    ("choices", "ratings", "packed_places"),
    [
        (1, 1, gate.PACKED_PLACES),  # the user and two places in one word
        (3, 3, gate.PACKED_PLACES),  # and two more words
        (0, 1, gate.PACKED_PLACES),
        (2, 2, 7),  # choices (3 values) packed, ratings (5 and their texts) a column each
    ],
)
def test_the_answers_read_in_one_query_are_the_rows_read_one_by_one(
    project, monkeypatch, choices, ratings, packed_places
):
    monkeypatch.setattr(gate, "PACKED_PLACES", packed_places)
    queue = build(project, choices=choices, ratings=ratings, seed=choices * 10 + ratings)
    questions = gated(list(queue.questions.all()))
    indexes = [gate._value_index(q) for q in questions]

    _, (items, users, times, *codes) = gate._answer_arrays_postgresql(queue, questions, indexes)
    fast = gate.without_discarded((items, users, times, codes), gate._item_table(queue))
    plain = gate._answer_arrays_python(queue, questions, indexes)

    assert len(fast[0]) > 40
    assert in_order(fast) == in_order(plain)
    # Every place was seen: answers counted, missing and not among the values.
    for codes in fast[3]:
        assert (codes == -1).any()
        assert (codes >= 0).any()


def test_the_item_facts_read_in_one_query_are_the_rows_read_one_by_one(project):
    queue = build(project, choices=1, ratings=0, seed=99)
    rng = random.Random(5)
    session = Session.objects.create(
        project=queue.project, external_id="s", first_event_at=START, last_event_at=START
    )
    generation = Generation.objects.create(
        project=queue.project, session=session, external_id="g", output="o", created_at=START
    )
    for n, item in enumerate(Item.objects.filter(queue=queue)):
        item.annotation_count = rng.choice([0, 3, 300, 32767])
        item.preferred_response = rng.choice([None, 0, 1, 32767])
        item.agreement = rng.choice([None, 0.0, 0.6667, 1.0])
        item.agreement_state = rng.choice(["pending", "agreed", "disputed"])
        item.decision = rng.choice(["", "accepted", "excluded"])
        item.decision_reason = rng.choice(["", "reviewers agreed: yes", "é \x1f"])
        if rng.random() < 0.3:
            item.label = Label.objects.create(
                project=queue.project,
                session=session,
                generation=generation,
                key=f"k{n}",
                kind=Label.Kind.COMPLETION,
                source=Label.Source.COPY,
                rule="r",
                confidence=1.0,
                rule_confidence=1.0,
                weight=1.0,
                occurred_at=START,
            )
        item.save()

    _, (fast,) = gate._item_table_postgresql(queue)
    plain = gate._item_table_python(queue)

    fast.sort(order="id")
    plain.sort(order="id")
    assert len(fast) == 40
    for name in gate.ITEM_TABLE.names or ():
        assert np.array_equal(fast[name], plain[name], equal_nan=name == "agreement"), name
    assert (fast["label"] >= 0).any() and (fast["label"] == -1).any()
    assert set(fast["status"].tolist()) == {1, 2, 3}


class _RolledBack(Exception):
    pass


OUTCOME = ("id", "agreement", "agreement_state", "decision", "decision_reason")


@pytest.mark.django_db(transaction=True)
def test_the_item_table_read_on_a_connection_of_its_own_decides_as_one_read(monkeypatch):
    """Outside a transaction the recompute reads the items' table on a second connection
    while it reads the answers, recounts the queue's counters on one while it computes,
    and writes every other chunk of outcomes on one; inside one, all in line. Same
    figures, same outcomes."""
    from django.db import transaction

    from tenancy.models import Project

    queue = build(Project.objects.create(slug="apart", name="Apart"), choices=1, ratings=1, seed=7)
    Item.objects.filter(queue=queue, annotation_count=0).update(annotation_count=2)
    threads: list[str] = []
    item_table = gate._item_table

    def spied(queue: Queue) -> np.ndarray:  # the real read, noting where it ran
        threads.append(threading.current_thread().name)
        return item_table(queue)

    monkeypatch.setattr(gate, "_item_table", spied)
    writers: list[str] = []
    update = gate._update_outcomes_postgresql

    def noted(ids: list[int], kinds: list[int], new: list[tuple]) -> None:
        writers.append(threading.current_thread().name)
        update(ids, kinds, new)

    monkeypatch.setattr(gate, "_update_outcomes_postgresql", noted)
    monkeypatch.setattr(gate, "WRITE_CHUNK", 7)  # 40 items: 6 chunks

    def outcomes() -> list[tuple]:
        return list(Item.objects.filter(queue=queue).order_by("id").values_list(*OUTCOME))

    expected: dict[str, Any] = {}
    with pytest.raises(_RolledBack), transaction.atomic():
        snapshot = gate.queue_agreement_recompute(queue=queue)
        expected.update(results=snapshot.results, outcomes=outcomes())
        raise _RolledBack
    assert threads == [threading.current_thread().name]
    assert set(writers) == {threading.current_thread().name}
    before = outcomes()
    writers.clear()
    Queue.objects.filter(pk=queue.pk).update(items_open=999, items_complete=0)  # astray

    snapshot = gate.queue_agreement_recompute(queue=queue)

    assert threads[1] != threads[0]  # the second read ran on a thread of its own
    assert len(writers) >= 2 and len(set(writers)) == 2  # chunks written on two connections
    assert snapshot.results == expected["results"]
    assert outcomes() == expected["outcomes"] != before
    # The counters, recounted on a connection of their own meanwhile, are right again.
    queue.refresh_from_db()
    counts = Counter(Item.objects.filter(queue=queue).values_list("status", flat=True))
    assert (queue.items_open, queue.items_complete, queue.items_discarded) == (
        counts["open"],
        counts["complete"],
        counts["discarded"],
    )
    assert counts["open"] and counts["complete"] and counts["discarded"]
    # Every kind of outcome is among them (the random answers block the queue: low alpha).
    assert {"pending", "agreed", "disputed", "decision_excluded"} <= set(snapshot.results["items"])


def test_the_recompute_reads_a_queues_answers_and_gold_items_by_their_indexes(project):
    """With scans made to cost what they would at scale: the answers by
    annotation_by_queue (no join to the items), the gold items by item_gold_by_queue."""
    from django.db import connection

    queue = build(project, choices=1, ratings=0, seed=3)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        tail, params = gate._annotation_sql(queue)
        cursor.execute(f"EXPLAIN SELECT count(*) {tail}", params)
        answers = "\n".join(line for (line,) in cursor.fetchall())
    gold = Item.objects.filter(queue=queue, gold_answers__isnull=False).values_list("id").explain()
    assert "annotation_by_queue" in answers and "review_item" not in answers, answers
    assert "item_gold_by_queue" in gold, gold
