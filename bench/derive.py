"""Derivation throughput: sessions/s that one worker process turns into signals and labels,
against a reference measured in the same run: a bare SELECT of the same sessions' events and
generations (what any derivation must at least read), chunk by chunk.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench_derive \\
      REDIS_URL=redis://127.0.0.1:6379/10 .venv/bin/python bench/derive.py

`--quick` (400 sessions a round) for a run during development; the default is 3,000 a round.
Ingests three projects of simulated sessions (derivation tasks are queued on the broker and
purged), then three rounds, each: derive one project with the task's own work function,
`sessions_derive_backlog`, in this one process, DEBUG off as in a worker (what a worker with
`--pool solo` does: chunk after chunk, on a second connection alongside once there is a
backlog), then the reference on that project's sessions. Prints
both figures, the ratio (median of the three rounds) and the goal (>= 2,000 sessions/s),
the time the label consumers (review's routing, GLEANER_LABEL_CONSUMERS) took a
session, the worker's CPU time a session (which other load on the machine disturbs less
than wall time) and, where PostgreSQL runs on this machine, its processes' CPU time a
session: at about 0.6 ms each, both sides have to shrink for the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

GOAL = 2000  # sessions/s per worker process (issue 12)
ROUNDS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3000, help="sessions per round")
    parser.add_argument("--quick", action="store_true", help="400 sessions per round")
    args = parser.parse_args()
    sessions = 400 if args.quick else args.sessions

    from bench import common
    from bench.common import analyze, setup

    os.environ.update(DEBUG="0", SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-not-a-secret"))
    setup()
    from django.conf import settings
    from django.db import connection

    if settings.CELERY_TASK_ALWAYS_EAGER:
        sys.exit("Set REDIS_URL: in-process mode would derive during ingestion.")
    from feedback import labelling
    from feedback.models import Event, Label, Session

    projects = [_ingest(sessions, seed) for seed in range(ROUNDS)]
    labelling.sessions_mark_abandoned()  # the simulator's sessions are hours old
    analyze()

    consumers = _time_consumers(labelling)
    pairs = []
    worker_cpu: list[float] = []  # the process's own CPU time over wall time
    cpu_per_session: list[float] = []  # ms: steadier than wall time on a busy machine
    server_per_session: list[float] = []  # ms of PostgreSQL's CPU, where it runs here
    for project in projects:
        consumers[0] = 0.0
        started, cpu, server = (
            time.perf_counter(),
            time.process_time(),
            common.postgres_cpu_seconds(),
        )
        derived, more = labelling.sessions_derive_backlog(project=project, seconds=3600)
        assert not more  # noqa: S101 - the whole project derived
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        ms_each = 1000 / max(1, derived)  # seconds in all -> ms a session
        if server is not None and (after := common.postgres_cpu_seconds()) is not None:
            server_per_session.append((after - server) * ms_each)
        ids = list(
            Session.objects.filter(project=project).order_by("id").values_list("id", flat=True)
        )
        reference = _reference(ids, labelling.DERIVE_CHUNK)
        pairs.append((derived / elapsed, len(ids) / reference, consumers[0] * ms_each))
        worker_cpu.append(cpu / elapsed)
        cpu_per_session.append(cpu * ms_each)
        events = Event.objects.filter(project=project).count()
        labels = Label.objects.filter(project=project).count()
        print(
            f"  round: {derived} sessions ({events} events, {labels} labels): "
            f"{pairs[-1][0]:,.0f} sessions/s; reference {pairs[-1][1]:,.0f} sessions/s"
        )
    ratio = statistics.median(project / reference for project, reference, _ in pairs)
    figure = statistics.median(project for project, _, _ in pairs)
    reference = statistics.median(reference for _, reference, _ in pairs)
    consumer_ms = statistics.median(ms for _, _, ms in pairs)
    print(f"database: {connection.vendor}; {sessions} sessions a round, {ROUNDS} rounds")
    print(
        f"derivation: {figure:,.0f} sessions/s; reference bare SELECT of the same sessions' "
        f"events and generations {reference:,.0f} sessions/s; ratio {ratio:.2f} "
        f"(goal >= {GOAL:,} sessions/s: {'met' if figure >= GOAL else 'not met'}); "
        f"label consumers (review routing) {consumer_ms:.2f} ms a session; the worker "
        f"process used CPU {statistics.median(worker_cpu):.0%} of the time (of one core; the "
        "rest its connections waited on the database), "
        f"{statistics.median(cpu_per_session):.2f} ms of CPU a session"
        + (
            f"; PostgreSQL's processes on this machine {statistics.median(server_per_session):.2f}"
            " ms of CPU a session"
            if server_per_session
            else ""
        )
    )


def _ingest(sessions: int, seed: int):  # noqa: ANN202 - a tenancy Project (Django set up late)
    from bench.common import new_project
    from config.celery import app
    from demo.traffic import simulate_traffic
    from feedback import services

    project = new_project(f"derive{seed}")
    traffic = simulate_traffic(
        sessions=sessions, seed=int(time.time()) % 2**31 + seed, batch_size=1000
    )
    for batch in traffic.batches:
        services.events_ingest(project=project, events=batch)
    app.control.purge()
    return project


def _reference(session_ids: list[int], chunk: int) -> float:
    """Seconds to SELECT the events and generations of these sessions, a chunk of ids at a
    time, rows as tuples with their JSON decoded: the least a derivation has to do."""
    from django.db import connection

    from feedback.models import Event, Generation

    events = (
        "SELECT session_id, client_id, type, timestamp, generation_ref, payload "  # noqa: S608 - names from the model
        f"FROM {Event._meta.db_table} WHERE session_id IN "
    )
    generations = (
        "SELECT id, session_id, external_id, input, output, model, replaces_ref, created_at "  # noqa: S608 - names from the model
        f"FROM {Generation._meta.db_table} WHERE session_id IN "
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for start in range(0, len(session_ids), chunk):
            ids = session_ids[start : start + chunk]
            placeholders = f"({', '.join(['%s'] * len(ids))})"
            for sql, json_column in ((events, 5), (generations, 3)):
                cursor.execute(sql + placeholders, ids)
                rows = cursor.fetchall()
                for row in rows:
                    if isinstance(row[json_column], str):
                        json.loads(row[json_column])
    return time.perf_counter() - started


def _time_consumers(labelling) -> list[float]:  # noqa: ANN001 - the feedback.labelling module
    """Wrap the hand-off to the label consumers to add up the seconds it takes."""
    spent = [0.0]
    notify = labelling._notify_consumers  # noqa: SLF001 - measuring, not changing it

    def timed(label_ids: list[int]) -> None:
        started = time.perf_counter()
        notify(label_ids)
        spent[0] += time.perf_counter() - started

    labelling._notify_consumers = timed  # noqa: SLF001
    return spent


if __name__ == "__main__":
    main()
