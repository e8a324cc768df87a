"""The annotator's work page with N items queued (default 100,000): server time and queries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench \\
      .venv/bin/python bench/work_page.py --items 100000

Each round claims the next item (GET /review/q/<id>/) and answers it (POST submit, which
renders the next one), through the whole Django stack with the test client.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import analyze, new_project, review_queue, setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from review.models import Assignment, Item
    from tenancy.models import Membership
    from tenancy.services import membership_set

    project = new_project("work")
    queue = review_queue(project)
    for start in range(0, args.items, 10_000):
        Item.objects.bulk_create(
            Item(
                queue=queue,
                reason="api",
                content={"prompt": f"Question {n}?", "responses": [f"A {n} " * 40, f"B {n} " * 40]},
            )
            for n in range(start, min(args.items, start + 10_000))
        )
    analyze()
    user = get_user_model().objects.create_user(username=f"bench-{project.slug}")
    membership_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
    queue.members.add(user)
    client = Client()
    client.force_login(user)
    url = f"/review/q/{queue.pk}/"

    client.get(url)  # warm-up
    get_times, post_times, get_queries, post_queries = [], [], [], []
    for _ in range(args.rounds):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            page = client.get(url)
            get_times.append(time.perf_counter() - started)
        assert page.status_code == 200
        get_queries.append(len(queries))
        item_id = Assignment.objects.get(user=user, status="claimed").item_id
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            answer = client.post(
                f"{url}items/{item_id}/submit",
                {"answer-better": "left", "answer-quality": "4", "seconds_spent": "5"},
                HTTP_HX_REQUEST="true",
            )
            post_times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.content[:300]
        post_queries.append(len(queries))
    ms = lambda values: f"median {statistics.median(values) * 1000:.1f} ms"  # noqa: E731
    print(f"database: {connection.vendor}; {args.items:,} items queued; {args.rounds} rounds")
    print(f"work page (GET, resumes the claim): {ms(get_times)}, {max(get_queries)} queries")
    print(f"submit + next item (htmx POST): {ms(post_times)}, {max(post_queries)} queries")


if __name__ == "__main__":
    main()
