"""Agreement recompute time for a queue holding N annotations (default 1,000,000).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench \\
      .venv/bin/python bench/agreement.py

Builds a queue with a choice and a rating question, N/3 items and three annotations per
item from 30 simulated annotators (one of them careless), then times
`queue_agreement_recompute`: loading, alpha per question (with its series over time and
the leave-one-annotator-out alphas), item agreement, the gate, and the write-back.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import new_project, review_queue, setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=1_000_000)
    args = parser.parse_args()

    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from review.gate import queue_agreement_recompute
    from review.models import Annotation, Item

    project = new_project("agreement")
    queue = review_queue(project, key="verdict", choices=("yes", "no", "unsure"))
    run = project.slug
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"b{run}-{i}") for i in range(30))
    rng = random.Random(7)
    n_items = args.annotations // 3
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
    print(f"built {n_items * 3:,} annotations in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    snapshot = queue_agreement_recompute(queue=queue)
    elapsed = time.perf_counter() - started
    questions = snapshot.results["questions"]
    flagged = [name for name, a in snapshot.results["annotators"].items() if a["flagged"]]
    print(f"database: {connection.vendor}")
    print(f"recompute: {elapsed:.1f} s for {snapshot.annotations:,} annotations")
    print(
        f"alpha: verdict {questions['verdict']['alpha']}, quality {questions['quality']['alpha']}"
    )
    print(f"gate: {snapshot.results['items']}; flagged annotators: {len(flagged)}")


if __name__ == "__main__":
    main()
