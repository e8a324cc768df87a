"""Claim and submit with 32 annotators on a 1M-item queue, through gunicorn, against a bare
FOR UPDATE SKIP LOCKED loop in PostgreSQL, same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench_claims \\
      REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/claims.py

The queue (3 annotations per item, a choice and a rating question) is filled by SQL. Gleaner
runs in gunicorn (`--workers` gthread workers x `--threads`, DEBUG off, agreement
recomputation queued on Redis as in production and purged at the end). Each annotator is a
thread with its own user token and keep-alive connection: POST /api/v1/queues/<id>/next
(the claim), a while reading, POST .../items/<item>/annotations (the submit), again. The
reading time is drawn evenly from `--think` seconds +/- `--spread` of it (0.5 s +/- 50%), and
each annotator starts at a time drawn from the first `--think` seconds, as people do: with
`--spread 0` all 32 start together and read for exactly as long, so they claim and submit in
lockstep, 64 requests at once every half second (this bench's load before `--spread`; its p95s
measured that burst draining on two cores, about 100 ms, with a p50 of 10 ms). `--think 0`
is a closed loop (every annotator hammering without reading): there the latency measures
the machine's throughput, not a request's cost.

The reference is the same number of threads on their own connections, each looping over
a table shaped like review_item (1M rows, the same partial index): BEGIN; SELECT ... ORDER
BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED; UPDATE its count and status; COMMIT;
with reading times drawn the same way. Project and reference alternate three times
(gunicorn is stopped while the reference runs, so it holds no connections) and the ratio is
the median of the three pairs' p95s. Then a round with two tabs per annotator (64 threads,
two per token). Every round checks: zero 5xx, zero items with more annotations than wanted, item
counters equal to the annotations stored, queue counters equal to the items' statuses.

The work page's query count (the htmx submit + next item, which bench/work_page.py times
with the test client) is measured at the end with the test client.

`--quick`: 20,000 items, 8 annotators, 5 s rounds (under a minute plus the fill).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

ROUNDS = 3
PER_ITEM = 3
GOAL_P95_MS = 50.0
GOAL_QUERIES = 12
REFERENCE = "bench_claims_reference"


@dataclass(frozen=True)
class Pace:
    """How long annotators read: `think` seconds on average, each reading drawn evenly from
    +/- `spread` of it, and each annotator's first claim at a time drawn from the first
    `think` seconds. `spread` 0: everyone starts at once and reads exactly `think`."""

    think: float
    spread: float

    def start(self, rng: random.Random) -> float:
        return rng.uniform(0, self.think) if self.spread else 0.0

    def reading(self, rng: random.Random) -> float:
        return rng.uniform(self.think * (1 - self.spread), self.think * (1 + self.spread))

    def __str__(self) -> str:
        if not self.spread:
            return f"think {self.think} s, in lockstep"
        return f"think {self.think} s +/- {self.spread:.0%}, staggered starts"


@dataclass
class Tally:
    claim: list[float] = field(default_factory=list)
    submit: list[float] = field(default_factory=list)
    answers: int = 0
    conflicts: int = 0  # 409: the other tab answered the item first
    status_5xx: int = 0
    other: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0  # gunicorn workers' CPU seconds in the round
    pg_cpu: float | None = None  # PostgreSQL's CPU seconds in the round (on this machine)
    server_claim: list[float] = field(default_factory=list)  # as gunicorn timed them
    server_submit: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.claim += other.claim
        self.submit += other.submit
        self.answers += other.answers
        self.conflicts += other.conflicts
        self.status_5xx += other.status_5xx
        self.other += other.other
        self.server_claim += other.server_claim
        self.server_submit += other.server_submit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k items, 8 annotators, 5 s")
    parser.add_argument("--items", type=int, help="items in the queue (default 1,000,000)")
    parser.add_argument("--annotators", type=int, help="annotator threads (default 32)")
    parser.add_argument("--seconds", type=float, help="seconds per round (default 20)")
    parser.add_argument(
        "--think", type=float, default=0.5, help="seconds an annotator reads an item (0.5)"
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=0.5,
        help="reading times vary by +/- this share of --think, and starts are staggered "
        "(0.5; 0: all in lockstep)",
    )
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (3)")
    parser.add_argument("--threads", type=int, default=11, help="threads per worker (11)")
    args = parser.parse_args()
    if not 0 <= args.spread <= 1:
        sys.exit("--spread must be between 0 and 1.")
    pace = Pace(args.think, args.spread)
    n_items = args.items or (20_000 if args.quick else 1_000_000)
    annotators = args.annotators or (8 if args.quick else 32)
    seconds = args.seconds or (5.0 if args.quick else 20.0)

    common.setup()
    from django.conf import settings
    from django.db import connection

    database = settings.DATABASES["default"]
    if connection.vendor != "postgresql" or not database["NAME"].startswith("gleaner_bench"):
        sys.exit("bench/claims.py needs DATABASE_URL=postgres://.../gleaner_bench_<name>.")
    if settings.CELERY_TASK_ALWAYS_EAGER:
        sys.exit("bench/claims.py needs REDIS_URL (agreement recomputation queued, as deployed).")

    started = time.perf_counter()
    queue, tokens = _project_queue(n_items, annotators)
    _reference_table(n_items)
    common.analyze()
    print(
        f"filled {n_items:,} items (and the reference's) in {time.perf_counter() - started:.0f} s;"
        f" {annotators} annotators, {pace}, {seconds:.0f} s rounds; gunicorn "
        f"{args.workers} workers x {args.threads} threads; load before: {_load()}",
        flush=True,
    )
    server = _Gunicorn(workers=args.workers, threads=args.threads)
    pairs = []
    try:
        for round_ in range(ROUNDS):
            server.start()
            try:
                _annotate(server.port, queue, tokens, tabs=1, seconds=2, pace=pace)  # warm-up
                cpu, pg_cpu = server.cpu_seconds(), common.postgres_cpu_seconds()
                warm = server.server_ms()
                project = _annotate(server.port, queue, tokens, tabs=1, seconds=seconds, pace=pace)
                project.cpu = server.cpu_seconds() - cpu
                if pg_cpu is not None and (pg_after := common.postgres_cpu_seconds()) is not None:
                    project.pg_cpu = pg_after - pg_cpu
                inside = server.server_ms()
                project.server_claim = inside["claim"][len(warm["claim"]) :]
                project.server_submit = inside["submit"][len(warm["submit"]) :]
            finally:
                server.stop()
            _check(queue, project, f"round {round_ + 1}")
            reference = _reference(database, annotators, seconds=seconds, pace=pace)
            pairs.append((project, reference))
            print(
                f"round {round_ + 1}: claim p95 {_ms(project.claim, 95)}, submit p95 "
                f"{_ms(project.submit, 95)}, {project.answers / project.seconds:.1f} answers/s;"
                f" reference p95 {_ms(reference.claim, 95)}, "
                f"{reference.answers / reference.seconds:.1f} claims/s; gunicorn CPU "
                f"{project.cpu * 1000 / max(project.answers, 1):.1f} ms per claim + submit"
                + _pg_per_answer(project),
                flush=True,
            )
        server.start()
        try:
            _annotate(server.port, queue, tokens, tabs=1, seconds=2, pace=pace)  # warm-up
            tabs = _annotate(server.port, queue, tokens, tabs=2, seconds=seconds, pace=pace)
        finally:
            server.stop()
        _check(queue, tabs, "two tabs")
        queries = _submit_next_queries(queue)
    finally:
        _purge_queued_tasks()
        _drop(queue)

    project, reference = Tally(), Tally()
    for p, r in pairs:
        project.add(p)
        reference.add(r)
        project.seconds += p.seconds
        project.cpu += p.cpu
        if p.pg_cpu is not None:
            project.pg_cpu = (project.pg_cpu or 0.0) + p.pg_cpu
        reference.seconds += r.seconds
    ratio = statistics.median(_pct(p.claim, 95) / _pct(r.claim, 95) for p, r in pairs)
    print(f"\nload after: {_load()}")
    for name, tally in (("one tab each", project), ("two tabs each", tabs)):
        print(
            f"{name}: claim p50/p95/p99 {_ms(tally.claim, 50)} / {_ms(tally.claim, 95)} / "
            f"{_ms(tally.claim, 99)}; submit p50/p95/p99 {_ms(tally.submit, 50)} / "
            f"{_ms(tally.submit, 95)} / {_ms(tally.submit, 99)}; "
            f"{tally.answers / max(tally.seconds, 1e-9):.1f} answers/s; 409s {tally.conflicts};"
            f" 5xx {tally.status_5xx}; overfilled items 0"
        )
    print(
        f"inside gunicorn (its access log, one tab each): claim p50/p95 "
        f"{_ms(project.server_claim, 50)} / {_ms(project.server_claim, 95)}; submit p50/p95 "
        f"{_ms(project.server_submit, 50)} / {_ms(project.server_submit, 95)}"
    )
    worst = max(_pct(project.claim, 95), _pct(project.submit, 95))
    print(
        f"claims ({n_items:,} items, {annotators} annotators, {pace}): claim p95 "
        f"{_ms(project.claim, 95)}, submit p95 {_ms(project.submit, 95)}; reference bare SKIP "
        f"LOCKED loop p95 {_ms(reference.claim, 95)} "
        f"({reference.answers / reference.seconds:.0f} claims/s); ratio {ratio:.2f} "
        f"(goal p95 <= {GOAL_P95_MS:.0f} ms: {'met' if worst <= GOAL_P95_MS else 'NOT met'}); "
        f"gunicorn CPU {project.cpu * 1000 / max(project.answers, 1):.1f} ms per claim + submit"
        + _pg_per_answer(project)
    )
    print(
        f"submit + next item (htmx POST): {queries} queries "
        f"(goal <= {GOAL_QUERIES}: {'met' if queries <= GOAL_QUERIES else 'NOT met'})"
    )


def _pg_per_answer(tally: Tally) -> str:
    """PostgreSQL's CPU per claim + submit, where it runs on this machine."""
    if tally.pg_cpu is None:
        return ""
    return f", PostgreSQL CPU {tally.pg_cpu * 1000 / max(tally.answers, 1):.1f} ms"


# Set-up ------------------------------------------------------------------------------------


def _project_queue(n_items: int, annotators: int):  # noqa: ANN202 - (Queue, tokens)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from tenancy.models import Membership
    from tenancy.services import membership_set

    project = common.new_project("claims")
    queue = common.review_queue(project)
    users = []
    for n in range(annotators):
        user = get_user_model().objects.create_user(username=f"{project.slug}-a{n}")
        membership_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
        users.append(user)
    queue.members.add(*users)
    tokens = [Token.objects.create(user=user).key for user in users]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO review_item (queue_id, content, reason, reason_detail, priority, status,
                annotation_count, agreement_state, decision, decision_reason, held_out,
                created_at)
            SELECT %s, jsonb_build_object('prompt', 'Question ' || n || '?', 'responses',
                    jsonb_build_array(repeat('A ' || n || ' ', 40), repeat('B ' || n || ' ', 40))),
                'api', '{}', (n %% 7 = 0)::int, 'open', 0, 'pending', '', '', false, now()
            FROM generate_series(1, %s) AS n
            """,
            [queue.pk, n_items],
        )
        cursor.execute("UPDATE review_queue SET items_open = %s WHERE id = %s", [n_items, queue.pk])
    queue.refresh_from_db()
    return queue, tokens


def _reference_table(n_items: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {REFERENCE}")
        cursor.execute(
            f"""
            CREATE TABLE {REFERENCE} (
                id bigserial PRIMARY KEY, priority integer NOT NULL,
                status varchar(10) NOT NULL, annotation_count smallint NOT NULL)
            """
        )
        cursor.execute(
            f"INSERT INTO {REFERENCE} (priority, status, annotation_count) "  # noqa: S608
            "SELECT (n %% 7 = 0)::int, 'open', 0 FROM generate_series(1, %s) AS n",
            [n_items],
        )
        cursor.execute(f"CREATE INDEX ON {REFERENCE} (priority DESC, id) WHERE status = 'open'")


def _drop(queue) -> None:  # noqa: ANN001
    """Remove the bench's rows (the 1M items) so the database does not grow run by run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {REFERENCE}")
        for table in ("review_annotation", "review_assignment"):
            cursor.execute(
                f"DELETE FROM {table} WHERE item_id IN "  # noqa: S608 - our own table names
                "(SELECT id FROM review_item WHERE queue_id = %s)",
                [queue.pk],
            )
        cursor.execute("DELETE FROM review_item WHERE queue_id = %s", [queue.pk])
    queue.project.delete()


# The project: annotators over HTTP ---------------------------------------------------------


def _annotate(
    port: int, queue, tokens: list[str], *, tabs: int, seconds: float, pace: Pace
) -> Tally:  # noqa: ANN001
    stop = threading.Event()
    tallies: list[Tally] = []
    barrier = threading.Barrier(len(tokens) * tabs + 1)

    def annotator(token: str, tab: int) -> None:
        tally = Tally()
        tallies.append(tally)
        client = _Client(port, token)
        rng = random.Random(f"{token}:{tab}")
        barrier.wait(timeout=60)
        stop.wait(pace.start(rng))
        while not stop.is_set():
            status, body, spent = client.post(f"/api/v1/queues/{queue.pk}/next")
            if status >= 500:
                tally.status_5xx += 1
                tally.other.append(f"{status} next: {body[:200]!r}")
                continue
            tally.claim.append(spent)
            if status == 204:
                tally.other.append("204: queue empty")
                return
            if status != 200:
                tally.other.append(f"{status} next: {body[:200]!r}")
                return
            item = json.loads(body)["item"]["id"]
            stop.wait(pace.reading(rng))
            status, body, spent = client.post(
                f"/api/v1/queues/{queue.pk}/items/{item}/annotations",
                {"answers": {"better": "left" if item % 3 else "right", "quality": 4}},
            )
            tally.submit.append(spent)
            if status == 201:
                tally.answers += 1
            elif status == 409:
                tally.conflicts += 1
            elif status >= 500:
                tally.status_5xx += 1
                tally.other.append(f"{status} submit: {body[:200]!r}")
            else:
                tally.other.append(f"{status} submit: {body[:200]!r}")

    threads = [
        threading.Thread(target=annotator, args=(token, tab))
        for token in tokens
        for tab in range(tabs)
    ]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    total = Tally(seconds=time.perf_counter() - started)
    for tally in tallies:
        total.add(tally)
    return total


class _Client:
    """One annotator's keep-alive connection, reopened if the server closed it."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path: str, body: object = None) -> tuple[int, bytes, float]:
        payload = json.dumps(body).encode() if body is not None else b""
        for attempt in range(2):
            started = time.perf_counter()
            try:
                self.connection.request("POST", path, body=payload, headers=self.headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()  # an idle keep-alive the server closed: reconnect
                if attempt:
                    raise
                continue
            return response.status, data, time.perf_counter() - started
        raise AssertionError("unreachable")


class _Gunicorn(common.Gunicorn):
    """gthread workers, each worker's connection pool as large as its threads, with an access
    log of each request's time."""

    def __init__(self, *, workers: int, threads: int) -> None:
        self.access = Path(tempfile.gettempdir()) / "gleaner-claims-access.log"
        super().__init__(
            name="claims",
            options=[
                *("--workers", str(workers), "--threads", str(threads), "--keep-alive", "30"),
                *(
                    "--access-logfile",
                    str(self.access),
                    "--access-logformat",
                    "%(m)s %(U)s %(s)s %(M)s",
                ),
            ],
            env={"DB_POOL_MAX": str(threads)},
        )

    def server_ms(self) -> dict[str, list[float]]:
        """Milliseconds gunicorn spent on each claim and submit (its access log), seconds."""
        times: dict[str, list[float]] = {"claim": [], "submit": []}
        for line in self.access.read_text().splitlines():
            method, path, _, ms = line.split()
            if method == "POST" and path.endswith("/next"):
                times["claim"].append(int(ms) / 1000)
            elif method == "POST" and path.endswith("/annotations"):
                times["submit"].append(int(ms) / 1000)
        return times

    def start(self) -> None:
        self.access.unlink(missing_ok=True)
        super().start()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the workers used so far, from /proc (Linux)."""
        assert self.process is not None
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total


# The reference: a bare SKIP LOCKED loop ----------------------------------------------------


def _reference(database: Mapping[str, Any], threads: int, *, seconds: float, pace: Pace) -> Tally:
    import psycopg

    stop = threading.Event()
    tallies: list[Tally] = []
    barrier = threading.Barrier(threads + 1)
    dsn = (
        f"host={database['HOST']} port={database['PORT'] or 5432} dbname={database['NAME']} "
        f"user={database['USER']}"
        + (f" password={database['PASSWORD']}" if database["PASSWORD"] else "")
    )

    def loop(number: int) -> None:
        tally = Tally()
        tallies.append(tally)
        rng = random.Random(number)
        with psycopg.connect(dsn) as conn:
            barrier.wait(timeout=60)
            stop.wait(pace.start(rng))
            while not stop.is_set():
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.execute(
                        f"SELECT id, annotation_count FROM {REFERENCE} WHERE status = 'open' "  # noqa: S608
                        "ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                    )
                    row = cursor.fetchone()
                    if row is None:
                        return
                    cursor.execute(
                        f"UPDATE {REFERENCE} SET annotation_count = annotation_count + 1, "  # noqa: S608
                        "status = CASE WHEN annotation_count + 1 >= %s THEN 'complete' "
                        "ELSE 'open' END WHERE id = %s",
                        [PER_ITEM, row[0]],
                    )
                tally.claim.append(time.perf_counter() - started)
                tally.answers += 1
                stop.wait(pace.reading(rng))

    workers = [threading.Thread(target=loop, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join(timeout=120)
    total = Tally(seconds=time.perf_counter() - started)
    for tally in tallies:
        total.add(tally)
    return total


# Checks and figures ------------------------------------------------------------------------


def _check(queue, tally: Tally, name: str) -> None:  # noqa: ANN001
    """No 5xx, no overfilled item, counters that agree with the rows; exits otherwise."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE n > %s), count(*) FILTER (WHERE n <> i.annotation_count)
            FROM review_item i JOIN LATERAL (
                SELECT count(*) AS n FROM review_annotation a WHERE a.item_id = i.id) a ON true
            WHERE i.queue_id = %s AND (i.annotation_count > 0 OR i.status <> 'open')
            """,
            [PER_ITEM, queue.pk],
        )
        overfilled, miscounted = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'open'), "
            "count(*) FILTER (WHERE status = 'complete') FROM review_item WHERE queue_id = %s",
            [queue.pk],
        )
        statuses = cursor.fetchone()
    counters = _queue_counts(queue)
    problems = []
    if tally.status_5xx:
        problems.append(f"{tally.status_5xx} answers 5xx: {tally.other[:3]}")
    if [o for o in tally.other if not o.startswith("204")]:
        problems.append(f"unexpected answers: {tally.other[:3]}")
    if overfilled:
        problems.append(f"{overfilled} items overfilled")
    if miscounted:
        problems.append(f"{miscounted} items' annotation_count differs from their annotations")
    if tuple(statuses) != counters:
        problems.append(f"queue counters {counters}, items {tuple(statuses)}")
    if problems:
        sys.exit(f"{name}: " + "; ".join(problems))


def _queue_counts(queue) -> tuple[int, int]:  # noqa: ANN001
    from review.selectors import queue_progress

    queue.refresh_from_db()
    progress = queue_progress(queue)
    return progress["open"], progress["complete"]


def _submit_next_queries(queue) -> int:  # noqa: ANN001
    """Queries of one htmx submit that renders the next item (the work page), test client."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from review.models import Assignment

    user = get_user_model().objects.filter(username__startswith=queue.project.slug).first()
    assert user is not None  # noqa: S101 - made by _project_queue
    client = Client()
    client.force_login(user)
    url = f"/review/q/{queue.pk}/"
    client.get(url)
    counts = []
    for _ in range(3):
        item_id = Assignment.objects.get(queue=queue, user=user, status="claimed").item_id
        with CaptureQueriesContext(connection) as queries:
            answer = client.post(
                f"{url}items/{item_id}/submit",
                {"answer-better": "left", "answer-quality": "4", "seconds_spent": "5"},
                HTTP_HX_REQUEST="true",
            )
        assert answer.status_code == 200, answer.content[:300]
        counts.append(len(queries))
    return max(counts)


def _purge_queued_tasks() -> None:
    from config.celery import app

    app.control.purge()


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] * 1000


def _ms(values: list[float], pct: int) -> str:
    return f"{_pct(values, pct):.1f} ms"


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


if __name__ == "__main__":
    main()
