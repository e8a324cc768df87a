"""Kept reads (review/kept.py): a queue's annotations and items kept between agreement
recomputes, with only the rows written since read again, give exactly what a whole read
gives, whatever wrote the rows, however late its transaction commits."""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import Future
from datetime import timedelta

import numpy as np
import psycopg
import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import override_settings

from review import gate, kept
from review.agreement import gated
from review.models import Annotation, Item, Question, Queue
from tests.review.test_gate_arrays import START, build

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def nothing_kept():
    kept.forget()
    yield
    kept.forget()


@pytest.fixture
def reads(monkeypatch):
    """The ids each whole or partial read was asked for (None: the whole queue), by kind."""
    asked: dict[str, list[list[int] | None]] = {"answers": [], "items": []}
    answers, items = gate._answer_arrays_postgresql, gate._item_table_postgresql

    def answers_read(queue, questions, indexes, ids=None):
        asked["answers"].append(ids)
        return answers(queue, questions, indexes, ids)

    def items_read(queue, ids=None):
        asked["items"].append(ids)
        return items(queue, ids)

    monkeypatch.setattr(gate, "_answer_arrays_postgresql", answers_read)
    monkeypatch.setattr(gate, "_item_table_postgresql", items_read)
    return asked


def state(queue: Queue) -> tuple[list, list]:
    """The queue's answers (per question, sorted) and item table (by id) as the recompute
    reads them."""
    questions = gated(list(queue.questions.all()))
    table = gate._item_table(queue)
    done: Future[np.ndarray] = Future()
    done.set_result(table)
    answers = []
    for key, qa in gate._load_answers(queue, questions, done).items():
        answers.append(
            (
                key,
                sorted(
                    zip(
                        qa.units[qa.rows].tolist(),
                        qa.users.tolist(),
                        qa.times.tolist(),
                        qa.codes.tolist(),
                        strict=True,
                    )
                ),
            )
        )
    rows = np.sort(table, order="id")
    return answers, [tuple(row) for row in rows.tolist()]


def whole(queue: Queue) -> tuple[list, list]:
    """`state` read whole, nothing kept."""
    with override_settings(GLEANER_AGREEMENT_KEPT_ROWS=0):
        return state(queue)


def read_partly(queue: Queue, reads: dict[str, list[list[int] | None]]) -> tuple[list, list]:
    """`state`, having read again only the rows changed since (a few), answers and items."""
    reads["answers"].clear()
    reads["items"].clear()
    now = state(queue)
    assert len(reads["answers"]) == 1 and reads["answers"][0] is not None
    assert len(reads["items"]) == 1 and reads["items"][0] is not None
    assert 0 < len(reads["answers"][0]) < 40
    return now


def same(a: tuple[list, list], b: tuple[list, list]) -> bool:
    """Equal, NaN agreements (no outcome yet) counting as equal."""
    return repr(a) == repr(b)


def change_at_random(queue: Queue, rng: random.Random, round_: int) -> None:
    """Inserts, updates and deletes of annotations and items, as the services, cascades
    and hand-written SQL make them."""
    annotations = list(Annotation.objects.filter(queue=queue).order_by("pk"))
    items = list(Item.objects.filter(queue=queue).order_by("pk"))
    users = sorted({a.user_id for a in annotations})
    # New items with answers.
    for n in range(rng.randint(0, 3)):
        item = Item.objects.create(queue=queue, reason="api", status="complete")
        Annotation.objects.bulk_create(
            Annotation(
                item=item,
                queue=queue,
                user_id=user,
                answers={},
                values={"c0": rng.choice(["yes", "no"]), "r0": rng.choice([1, 3, 5, "+4"])},
                created_at=START + timedelta(days=round_, seconds=n),
            )
            for user in rng.sample(users, 2)
        )
    # Changed answers, one by one and in bulk.
    for annotation in rng.sample(annotations, 3):
        annotation.values = {"c0": rng.choice(["yes", "no", "unsure"]), "r0": rng.randint(1, 5)}
        annotation.save(update_fields=["values"])
    Annotation.objects.filter(pk__in=[a.pk for a in rng.sample(annotations, 2)]).update(
        values={"c0": "no"}
    )
    # Annotations gone, by themselves and with their item (a cascade).
    Annotation.objects.filter(pk=rng.choice(annotations).pk).delete()
    Item.objects.filter(pk=rng.choice(items).pk).delete()
    # Items discarded, counts and outcomes changed by SQL.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE review_item SET status = 'discarded', annotation_count = %s WHERE id = %s",
            [round_, rng.choice(items).pk],
        )
        cursor.execute(
            "UPDATE review_item SET agreement = 0.5, decision = 'accepted' WHERE id = %s",
            [rng.choice(items).pk],
        )


def test_kept_reads_match_whole_reads_through_random_changes(project, reads):
    queue = build(project, choices=1, ratings=1, seed=3)
    assert same(state(queue), whole(queue))
    assert reads["answers"][0] is None and reads["items"][0] is None  # the first: whole
    rng = random.Random(11)
    for round_ in range(6):
        change_at_random(queue, rng, round_)
        kept_state = read_partly(queue, reads)  # the kept reads were used
        assert same(kept_state, whole(queue)), round_
    # Nothing changed: nothing read but the log.
    reads["answers"].clear()
    reads["items"].clear()
    state(queue)
    assert reads == {"answers": [], "items": []}


def test_a_transaction_committing_after_a_read_is_seen_by_the_next(project):
    """A write whose transaction was open during a read (so its log row was invisible) is
    read the next time: the watermark is the read's oldest open transaction."""
    queue = build(project, choices=1, ratings=1, seed=4)
    item = Item.objects.filter(queue=queue).first()
    newcomer = (
        Annotation.objects.filter(queue=queue)
        .exclude(user_id__in=Annotation.objects.filter(item=item).values("user_id"))
        .values_list("user_id", flat=True)
        .first()
    )
    assert newcomer is not None
    state(queue)
    late = psycopg.connect(**connection.get_connection_params())
    try:
        late.execute(
            'INSERT INTO review_annotation (item_id, queue_id, user_id, answers, "values",'
            " presentation, created_at) VALUES (%s, %s, %s, '{}', '{\"c0\": \"yes\"}', '{}', %s)",
            [item.pk, queue.pk, newcomer, START],
        )
        late.execute("UPDATE review_item SET annotation_count = 99 WHERE id = %s", [item.pk])
        during = state(queue)  # the open transaction's rows are not seen
        assert same(during, whole(queue))
        late.commit()
    finally:
        late.close()
    after = state(queue)
    assert same(after, whole(queue))
    assert after != during
    assert any(row[0] == item.pk and row[3] == 99 for row in after[1])


def test_pruning_and_truncate_make_older_kept_reads_whole_again(project, reads):
    queue = build(project, choices=1, ratings=1, seed=5)
    state(queue)

    def prune_now() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE review_row_change_horizon SET pruned_at = now() - interval '2 hours'"
            )
        return kept.row_changes_prune()

    # The first pruning drops what came before the previous one (here: the migration).
    prune_now()
    assert kept.row_changes_prune() == 0  # not again within the hour
    Annotation.objects.filter(pk=Annotation.objects.filter(queue=queue).first().pk).delete()
    reads["answers"].clear()
    assert same(state(queue), whole(queue))
    assert reads["answers"][0] is not None  # the kept read was still good
    # Two more prunings: the log now starts after this read's snapshot, so the queue is
    # read whole again, and the same.
    prune_now()
    assert prune_now() > 0
    Annotation.objects.filter(pk=Annotation.objects.filter(queue=queue).first().pk).delete()
    reads["answers"].clear()
    assert same(state(queue), whole(queue))
    assert reads["answers"] == [None, None]  # whole, then whole again for the comparison
    # TRUNCATE, as the tests' flush makes it, leaves nothing to trust either.
    state(queue)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE review_annotation")
    reads["answers"].clear()
    assert same(state(queue), whole(queue))
    assert reads["answers"] == [None, None]
    assert state(queue)[0] == [("c0", []), ("r0", [])]


def test_nothing_is_kept_from_a_read_inside_a_transaction(project):
    queue = build(project, choices=1, ratings=0, seed=6)
    with transaction.atomic():
        Annotation.objects.filter(queue=queue).update(values={"c0": "no"})
        state(queue)
        assert kept.kept_queues(kept.ANNOTATIONS) == []
        transaction.set_rollback(True)
    state(queue)
    assert kept.kept_queues(kept.ANNOTATIONS) == [queue.pk]
    assert kept.kept_queues(kept.ITEMS) == [queue.pk]


def test_answers_kept_for_other_values_are_read_whole(project, reads):
    queue = build(project, choices=1, ratings=0, seed=7)
    state(queue)
    Question.objects.filter(queue=queue, key="c0").update(choices=["yes", "no"])
    reads["answers"].clear()
    assert same(state(queue), whole(queue))
    assert reads["answers"] == [None, None]  # whole, then whole again for the comparison


@override_settings(GLEANER_AGREEMENT_KEPT_ROWS=100)
def test_the_reads_used_longest_ago_are_forgotten_beyond_the_allowance(project):
    first = build(project, choices=1, ratings=0, seed=8)
    second = build(project, choices=1, ratings=0, seed=9)
    state(first)
    state(second)
    assert kept.kept_queues(kept.ANNOTATIONS) == [second.pk]
    assert Annotation.objects.filter(queue=second).count() <= 100


def test_a_recompute_from_kept_reads_decides_as_one_from_whole_reads(project):
    queue = build(project, choices=1, ratings=1, seed=10)
    gate.queue_agreement_recompute(queue=queue)
    change_at_random(queue, random.Random(12), 0)
    from_kept = gate.queue_agreement_recompute(queue=queue).results
    outcomes = list(Item.objects.filter(queue=queue).order_by("pk").values())
    kept.forget()
    Item.objects.filter(queue=queue).update(agreement=None, decision="", decision_reason="")
    from_whole = gate.queue_agreement_recompute(queue=queue).results
    assert from_kept == from_whole
    assert outcomes == list(Item.objects.filter(queue=queue).order_by("pk").values())


def test_a_row_moved_to_another_queue_leaves_the_one_and_joins_the_other(project):
    """Items never change queue through the app; SQL by hand may move a row all the same:
    the update is logged under both queues."""
    first = build(project, choices=1, ratings=0, seed=13)
    second = build(project, choices=1, ratings=0, seed=14)
    state(first)
    state(second)
    moved = Annotation.objects.filter(queue=first, values__c0="yes").first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE review_annotation SET queue_id = %s WHERE id = %s", [second.pk, moved.pk]
        )
        cursor.execute(
            "UPDATE review_item SET queue_id = %s WHERE id = %s", [second.pk, moved.item_id]
        )
    for queue in (first, second):
        assert same(state(queue), whole(queue))
    assert kept.kept_queues(kept.ANNOTATIONS) == [first.pk, second.pk]
    assert moved.item_id in [row[0] for row in state(second)[1]]


def test_the_beat_sweep_prunes_the_log_once_an_hour(project):
    from review.tasks import recompute_stale_agreements

    build(project, choices=1, ratings=0, seed=15)

    def horizon() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pruned_below::text, next::text FROM review_row_change_horizon")
            return cursor.fetchone()

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE review_row_change_horizon SET pruned_at = now() - interval '61 minutes'"
        )
    before = horizon()
    recompute_stale_agreements()
    after = horizon()
    # Pruned below the snapshot of the pruning before (or a TRUNCATE's horizon, if later).
    assert int(after[0]) == max(int(before[0]), int(before[1]))
    assert int(after[1]) > int(before[1])
    recompute_stale_agreements()
    assert horizon() == after  # not again within the hour


def test_a_recompute_reads_none_of_its_own_outcomes_again_and_sees_everyone_elses(
    project, reads, monkeypatch
):
    """The outcomes a recompute writes go into its kept items as they are written; what
    others write meanwhile, before and after its own writes, is read again."""
    queue = build(project, choices=1, ratings=1, seed=16)
    gate.queue_agreement_recompute(queue=queue)
    Item.objects.filter(queue=queue).update(agreement=None, decision="", decision_reason="")
    items = list(Item.objects.filter(queue=queue).order_by("pk").values_list("pk", flat=True))
    before, after = items[0], items[-1]
    write = gate._write_outcomes

    def others_write_meanwhile(*args, **kwargs):  # noqa: ANN202 - wraps _write_outcomes
        with connection.cursor() as cursor:
            cursor.execute("UPDATE review_item SET annotation_count = 9 WHERE id = %s", [before])
        xids = write(*args, **kwargs)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE review_item SET agreement = 0.25, decision_reason = 'by hand'"
                " WHERE id = %s",
                [after],
            )
        return xids

    state(queue)  # keeps the items with their outcomes cleared
    monkeypatch.setattr(gate, "_write_outcomes", others_write_meanwhile)
    gate.queue_agreement_recompute(queue=queue)
    assert Item.objects.filter(queue=queue).exclude(decision_reason="").count() > len(items) / 2
    reads["items"].clear()
    assert same(state(queue), whole(queue))
    # Of the items, only the two others wrote were read again (the whole read is `whole`'s).
    assert sorted(reads["items"][0]) == [before, after]
    monkeypatch.setattr(gate, "_write_outcomes", write)
    reads["items"].clear()
    gate.queue_agreement_recompute(queue=queue)  # mends the two items, reads none again
    assert same(state(queue), whole(queue))
    assert reads["items"] == [None]  # `whole`'s


def test_writes_go_into_the_kept_rows_only_if_no_read_came_between(project):
    """Two recomputes of one queue in one process (threads): the first's writes must not
    be patched into rows the second read since (its patch could undo the second's), so
    they are left to the log."""
    queue = build(project, choices=1, ratings=0, seed=18)
    first = gate._item_table(queue)
    second = gate._item_table(queue)  # nothing changed in between

    def must_not_patch(rows: kept.Rows) -> kept.Rows:
        raise AssertionError("patched rows read since")

    kept.wrote(kept.ITEMS, queue.pk, first, [1], must_not_patch)
    patched: list[kept.Rows] = []

    def patch(rows: kept.Rows) -> kept.Rows:
        patched.append(rows)
        return rows

    kept.wrote(kept.ITEMS, queue.pk, second, [1], patch)
    assert len(patched) == 1
    assert patched[0][1][0] is second


@override_settings(GLEANER_AGREEMENT_SHARED_ROWS=1)
def test_a_process_keeping_nothing_starts_from_the_copy_another_left(project, reads):
    """A whole read is left in the cache; another process (here: this one, having
    forgotten its own) reads only the rows written since, and gets what a whole read
    gets."""
    assert kept._cache_shared(), "the cache must be Redis (REDIS_URL), as the workers'"
    queue = build(project, choices=1, ratings=1, seed=21)
    first = state(queue)
    assert reads == {"answers": [None], "items": [None]}  # whole, and left in the cache
    change_at_random(queue, random.Random(5), 0)
    kept.forget()
    now = read_partly(queue, reads)
    assert same(now, whole(queue)) and not same(now, first)
    # Below GLEANER_AGREEMENT_SHARED_ROWS nothing is left: the next process reads whole.
    kept.unshare(queue.pk)
    with override_settings(GLEANER_AGREEMENT_SHARED_ROWS=10**9):
        kept.forget()
        state(queue)
        kept.forget()
        reads["answers"].clear()
        state(queue)
    assert reads["answers"] == [None]


@override_settings(GLEANER_AGREEMENT_SHARED_ROWS=1)
def test_sharing_turned_off_leaves_a_copy_in_the_cache_unread(project, reads):
    """GLEANER_AGREEMENT_SHARED_ROWS=0 turns sharing off both ways: a copy left before is
    not read (nor is the cache asked), so a process keeping nothing reads whole."""
    assert kept._cache_shared(), "the cache must be Redis (REDIS_URL), as the workers'"
    queue = build(project, choices=1, ratings=0, seed=24)
    state(queue)  # whole, and left in the cache
    kept.forget()
    with override_settings(GLEANER_AGREEMENT_SHARED_ROWS=0):
        assert not kept._cache_shared()
        state(queue)
    assert reads["answers"] == [None, None]
    assert cache.get(kept._shared_key(kept._key(kept.ANNOTATIONS, queue.pk))) is not None


@override_settings(GLEANER_AGREEMENT_SHARED_ROWS=1)
def test_a_copy_read_another_way_or_in_another_history_is_read_whole(project, monkeypatch):
    assert kept._cache_shared(), "the cache must be Redis (REDIS_URL), as the workers'"
    queue = build(project, choices=1, ratings=0, seed=22)
    asked: list[list[int] | None] = []

    def read(ids: list[int] | None) -> kept.Rows:
        asked.append(ids)
        return gate._item_table_postgresql(queue, ids)

    kept.kept_rows(kept.ITEMS, queue.pk, "one way", read)
    kept.forget()
    kept.kept_rows(kept.ITEMS, queue.pk, "another way", read)
    assert asked == [None, None]  # the copy was read the one way: read whole
    kept.forget()
    kept.kept_rows(kept.ITEMS, queue.pk, "another way", read)
    assert asked == [None, None]  # from the copy: nothing written since, nothing read
    # A copy whose watermark is above the database's snapshot (a restored database, say).
    key = kept._shared_key(kept._key(kept.ITEMS, queue.pk))
    copy = cache.get(key)
    cache.set(key, dataclasses.replace(copy, watermark=copy.watermark + 10**6))
    kept.forget()
    kept.kept_rows(kept.ITEMS, queue.pk, "another way", read)
    assert asked == [None, None, None]
    # A copy left by other code (before a deploy) is not looked at.
    kept.forget()
    kept.kept_rows(kept.ITEMS, queue.pk, "another way", read)
    assert asked == [None, None, None]  # from the copy the last whole read left
    monkeypatch.setattr(kept, "_CODE", "another-version")
    kept.forget()
    kept.kept_rows(kept.ITEMS, queue.pk, "another way", read)
    assert asked == [None, None, None, None]


def test_without_the_cache_a_process_reads_whole_and_right(project, reads, caplog):
    """A cache that does not answer costs the copy, nothing else."""
    queue = build(project, choices=1, ratings=1, seed=23)
    nowhere = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with override_settings(CACHES=nowhere, GLEANER_AGREEMENT_SHARED_ROWS=1):
        first = state(queue)
        kept.forget()
        again = state(queue)
    assert reads == {"answers": [None, None], "items": [None, None]}
    assert same(first, again) and same(again, whole(queue))
    assert "not left in the cache" in caplog.text and "not read from the cache" in caplog.text
