"""Agreement recompute time for a queue holding N annotations, against bare krippendorff.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench \\
      REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/agreement.py

(`--quick`: 100,000 annotations; `--queue ID` reuses a queue an earlier run built, whose
id it printed.) Builds a queue with a choice and a rating question, N/3 items and three
annotations per item from 30 simulated annotators (one of them careless), then, three
times over, interleaved:

- `queue_agreement_recompute` with every item's outcome to write (the outcomes are
  cleared first, untimed): loading, alpha per question (with its series over time and
  the leave-one-annotator-out alphas), item agreement, the gate, and the write-back;
- the same again right after, which reads none of those items again (the recompute's kept
  items take the outcomes it wrote: review/kept.py);
- the same again, with nothing changed (what the beat sweep's re-runs cost);
- the same after 30 new items got 90 answers (what a recompute scheduled by answers costs;
  the items are deleted again afterwards, untimed);
- the same with nothing kept, in this process or in the cache (review/kept.py), so the
  queue's annotations and items are read whole (and left in the cache): the first
  recompute of a queue anywhere;
- the same with nothing kept in this process but that copy in the cache: a worker's first
  recompute of a queue another worker read (needs REDIS_URL: the copy is left only in a
  cache other processes see, and without one this case reads whole too);
- the reference: krippendorff.alpha once per gated question on the count matrices of the
  same annotations (the bare computation the recompute is built around), at the start of
  each round, the fastest of three calls: right after a recompute that wrote every
  outcome, PostgreSQL's background work (WAL, autovacuum) shares the two cores and the
  same call took 0.38-0.50 s instead of 0.15-0.18, which flattered the ratio;
- the SELECT of the columns the recompute reads (item, user, time, answers), row by row
  through Django, as the recompute used to read them.

The process keeps the memory it frees, as Celery's workers do (core.malloc). Prints the
medians, the ratios (median of the three pairs) and the goal: recompute
<= 2x the bare krippendorff.alpha time (issue 12).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import analyze, new_project, review_queue, setup  # noqa: E402

GOAL = 2.0


def build(annotations: int):  # noqa: ANN201 - a review.models.Queue
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from review.models import Annotation, Item

    project = new_project("agreement")
    queue = review_queue(project, key="verdict", choices=("yes", "no", "unsure"))
    run = project.slug
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"b{run}-{i}") for i in range(30))
    rng = random.Random(7)
    n_items = annotations // 3
    started = time.perf_counter()
    now = timezone.now()
    for start in range(0, n_items, 5000):
        items = Item.objects.bulk_create(
            Item(queue=queue, reason="api", status="complete", annotation_count=3)
            for _ in range(start, min(n_items, start + 5000))
        )
        rows = []
        for item in items:
            truth = rng.random() < 0.7
            for user in rng.sample(users, 3):
                careless = user == users[0]
                says = truth if not careless and rng.random() < 0.9 else rng.random() < 0.5
                rows.append(
                    Annotation(
                        item=item,
                        queue=queue,
                        user=user,
                        answers={},
                        values={
                            "verdict": "yes" if says else "no",
                            "quality": rng.randint(4, 5) if says else rng.randint(1, 2),
                        },
                        created_at=now - timedelta(seconds=rng.randint(0, 30 * 86400)),
                    )
                )
        Annotation.objects.bulk_create(rows, batch_size=5000)
    analyze()
    print(f"built {n_items * 3:,} annotations in {time.perf_counter() - started:.0f} s")
    return queue


def answer_more(queue, items: int = 30):  # noqa: ANN001, ANN201 - a Queue; a QuerySet
    """`items` new items of the queue with three answers each, as annotators' submits
    leave them (their item's count and status too); returns the new items."""
    from django.utils import timezone

    from review.models import Annotation, Item

    rng = random.Random(items)
    users = list(
        Annotation.objects.filter(queue=queue).values_list("user_id", flat=True).distinct()
    )
    new = Item.objects.bulk_create(
        Item(queue=queue, reason="api", status="complete", annotation_count=3) for _ in range(items)
    )
    Annotation.objects.bulk_create(
        Annotation(
            item=item,
            queue=queue,
            user_id=user,
            answers={},
            values={"verdict": rng.choice(["yes", "no"]), "quality": rng.randint(1, 5)},
            created_at=timezone.now(),
        )
        for item in new
        for user in rng.sample(users, 3)
    )
    return Item.objects.filter(pk__in=[item.pk for item in new])


def vacuum() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM review_item")


def select_columns(queue) -> tuple[float, list[tuple]]:  # noqa: ANN001
    """The reference read: the recompute's columns, row by row through Django."""
    from django.db.models.fields.json import KT

    from review.models import Annotation, Item

    started = time.perf_counter()
    rows = list(
        Annotation.objects.filter(item__queue=queue)
        .exclude(item__status=Item.Status.DISCARDED)
        .values_list(
            "item_id", "user_id", "created_at", KT("values__verdict"), KT("values__quality")
        )
        .iterator(chunk_size=50_000)
    )
    return time.perf_counter() - started, rows


def count_matrices(queue, rows: list[tuple]) -> list[tuple]:  # noqa: ANN001
    """(question, items x values counts) per gated question, from the selected rows."""
    import numpy as np

    from review.agreement import domain_of, gated
    from review.answers import rating_value

    matrices = []
    for column, question in enumerate(gated(queue.questions.all()), start=3):
        index = {value: i for i, value in enumerate(domain_of(question))}
        items, codes = [], []
        for row in rows:
            text = row[column]
            value = rating_value(text) if question.type == "rating" else text
            if (code := index.get(value)) is not None:
                items.append(row[0])
                codes.append(code)
        units, inverse = np.unique(np.asarray(items), return_inverse=True)
        width = len(index)
        counts = np.bincount(inverse * width + np.asarray(codes), minlength=len(units) * width)
        matrices.append((question, counts.reshape(len(units), width)))
    return matrices


def bare_alpha(matrices: list[tuple]) -> tuple[float, list[float]]:
    """The reference computation: krippendorff.alpha once per gated question."""
    import krippendorff

    from review.agreement import domain_of

    started = time.perf_counter()
    alphas = []
    for question, counts in matrices:
        numeric = question.type == "rating"
        alphas.append(
            float(
                krippendorff.alpha(
                    value_counts=counts[counts.sum(axis=1) >= 2],
                    value_domain=domain_of(question) if numeric else range(counts.shape[1]),
                    level_of_measurement=question.level,
                )
            )
        )
    return time.perf_counter() - started, alphas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 annotations")
    parser.add_argument("--queue", type=int, help="reuse this queue (built by an earlier run)")
    args = parser.parse_args()

    setup()
    from django.core.cache import caches
    from django.db import connection

    from core.malloc import keep_freed_memory
    from review import kept as kept_reads
    from review.gate import queue_agreement_recompute
    from review.models import Item, Queue

    if args.queue:
        queue = Queue.objects.get(pk=args.queue)
    else:
        queue = build(100_000 if args.quick else args.annotations)
    # As in a Celery worker, where recomputes run (config/celery.py).
    kept = keep_freed_memory()
    print(
        f"database: {connection.vendor}; queue {queue.pk}; freed memory kept: {kept};"
        f" cache: {type(caches['default']).__name__}"
    )

    _, rows = select_columns(queue)
    matrices = count_matrices(queue, rows)
    del rows
    first, after_writing, again, answered, cold, shared, bare, select = ([] for _ in range(8))

    def timed(figures: list[float]):  # noqa: ANN202 - an AgreementSnapshot
        """One recompute of the queue, its seconds added to `figures`."""
        started = time.perf_counter()
        snapshot = queue_agreement_recompute(queue=queue)
        figures.append(time.perf_counter() - started)
        return snapshot

    for _ in range(3):
        seconds, alphas = min(bare_alpha(matrices) for _ in range(3))
        bare.append(seconds)
        Item.objects.filter(queue=queue).update(
            agreement=None, agreement_state="pending", decision="", decision_reason=""
        )
        vacuum()  # the cleared rows' old versions: as autovacuum would, between runs
        snapshot = timed(first)
        timed(after_writing)
        timed(again)
        new = answer_more(queue)
        timed(answered)
        new.delete()
        queue_agreement_recompute(queue=queue)  # untimed: the queue as it was
        kept_reads.forget()
        kept_reads.unshare(queue.pk)
        timed(cold)  # nothing kept anywhere: read whole, and left in the cache
        kept_reads.forget()
        timed(shared)  # a worker's first: nothing kept of its own, the copy in the cache
        seconds, _ = select_columns(queue)
        select.append(seconds)

    questions = snapshot.results["questions"]
    figures = [questions[q.key]["alpha"] for q, _ in matrices]
    assert figures == [round(a, 4) for a in alphas], (figures, alphas)  # noqa: S101
    flagged = [name for name, a in snapshot.results["annotators"].items() if a["flagged"]]
    print(f"alpha: {dict(zip([q.key for q, _ in matrices], figures, strict=True))}")
    print(f"gate: {snapshot.results['items']}; flagged annotators: {len(flagged)}")

    def ratio(project: list[float], reference: list[float]) -> float:
        return statistics.median(p / r for p, r in zip(project, reference, strict=True))

    median = statistics.median
    print(
        f"agreement recompute, {snapshot.annotations:,} annotations; reference"
        f" krippendorff.alpha on the same counts {median(bare):.2f} s; goal <= {GOAL:g}x:"
    )
    for name, figures in (
        ("after 90 new answers", answered),
        ("nothing changed", again),
        ("every outcome written", first),
        ("the run after that", after_writing),
        ("a worker's first (copy)", shared),
        ("nothing kept (read whole)", cold),
    ):
        print(
            f"  {name:<26} {median(figures):.2f} s  ratio {ratio(figures, bare):.2f}"
            f"  / SELECT {ratio(figures, select):.2f}"
        )
    print(f"SELECT of the columns through Django: {median(select):.2f} s")


if __name__ == "__main__":
    main()
