"""Ingestion through the whole HTTP stack against PostgreSQL's own bulk load, same run.

    psql -h 127.0.0.1 -U postgres -c "create database gleaner_bench_ingest"  # once
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench_ingest \
      REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/ingest.py [--quick]

Gleaner runs in gunicorn (`--workers`, 4 sync workers by default, DEBUG off, derivation
queued on Redis as in production and purged at the end); 4 client threads post
1,000-event batches of simulated traffic over HTTP (fresh events but the simulator's 3%
replays, which both sides skip as duplicates).
The reference loads the very same batches from 4 threads, each batch as COPY into a
staging table + INSERT ... SELECT ... ON CONFLICT (project_id, client_id) DO NOTHING into a
table with the same unique key (so duplicates are skipped as Gleaner skips them), with the
rows and their JSON already encoded: what PostgreSQL itself can do. The two alternate
three times (project, reference, ...) and the ratio is the median of the three pairs.

This runs at each size of `--stored` (events already in the table, filled by SQL, not the
API; the reference table is filled to the same count), so the cost per event at 10k and
at 1M stored events is measured with the same reference. The bench database's feedback
tables are emptied first: it must be a database of its own (name starting gleaner_bench).

Wall time is what the goal is stated in, but other processes on the machine disturb it; each
round also prints the CPU time spent per 1,000 events (Gleaner: its gunicorn workers and
their database backends; the reference: its database backends, not the client encoding its
rows), which they disturb much less.

`--quick` (6 batches a round, 10k and 50k stored) takes about a minute; the full run
(40 batches a round, 10k and 1M stored) about ten, most of it filling 1M events.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

CLIENTS = 4
ROUNDS = 3
GOAL_RATIO = 0.5
GOAL_RATE = 10_000
REFERENCE = "bench_ingest_reference"
COLUMNS = (
    "project_id, client_id, type, timestamp, received_at, session_ref, generation_ref, "
    "user_ref, payload"
)
COMMON_FIELDS = {"id", "type", "timestamp", "session_id", "user_id", "generation_id"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 batches a round, 10k/50k")
    parser.add_argument("--batches", type=int, help="1,000-event batches per round")
    parser.add_argument(
        "--stored", help="comma-separated events already stored (default 10000,1000000)"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    args = parser.parse_args()
    batches_per_round = args.batches or (6 if args.quick else 40)
    sizes = [
        int(size)
        for size in (args.stored or ("10000,50000" if args.quick else "10000,1000000")).split(",")
    ]

    common.setup()
    from django.conf import settings
    from django.db import connection

    from demo.traffic import simulate_traffic
    from tenancy.keys import api_key_create

    database = settings.DATABASES["default"]
    if connection.vendor != "postgresql" or not database["NAME"].startswith("gleaner_bench"):
        sys.exit("bench/ingest.py needs DATABASE_URL=postgres://.../gleaner_bench_<name>.")
    _empty_feedback_tables()
    project = common.new_project("ingest")
    _, key = api_key_create(project=project, rate_limit_per_minute=10**9)

    warm_up = 2 * args.workers  # so that every worker has most likely served one
    needed = batches_per_round * ROUNDS * len(sizes) + warm_up
    print(f"simulating {needed} batches of 1,000 events ...", flush=True)
    run = time.strftime("%H%M%S")
    traffic = simulate_traffic(
        sessions=needed * 125, seed=int(run), batch_size=1000, id_prefix=f"b{run}"
    )
    batches = [b for b in traffic.batches if len(b) == 1000]
    if len(batches) < needed:
        sys.exit(f"the simulator made {len(batches)} full batches, {needed} needed")
    bodies = [json.dumps({"events": b}).encode() for b in batches[:needed]]
    reference_rows = [_reference_rows(project.pk, b) for b in batches[:needed]]
    megabytes = statistics.mean(len(b) for b in bodies) / 1e6

    server = _Gunicorn(workers=args.workers, database=database)
    server.start()
    try:
        # Warm-up: each worker's imports, connection and caches.
        _post_all(server.port, key, bodies[:warm_up])
        _run_reference(database, reference_rows[:warm_up])
        print(
            f"gunicorn {args.workers} workers, {CLIENTS} client threads, batches of 1,000 "
            f"events ({megabytes:.2f} MB each), {batches_per_round} batches a round; "
            f"load before: {_load()}",
            flush=True,
        )
        results = []
        cursor = warm_up
        for size in sizes:
            stored = _fill(project.pk, size)
            common.analyze()
            pairs = []
            cpu_ratios = []
            for _ in range(ROUNDS):
                chunk = slice(cursor, cursor + batches_per_round)
                cursor += batches_per_round
                processes = _gleaner_processes(server)
                spent = _cpu_seconds(processes)
                ours = _post_all(server.port, key, bodies[chunk])
                ours_cpu = _cpu_seconds(processes | _gleaner_processes(server), since=spent)
                theirs, theirs_cpu = _run_reference(database, reference_rows[chunk])
                events = batches_per_round * 1000
                pairs.append((events / ours, events / theirs))
                cpu_ratios.append(theirs_cpu / ours_cpu)
                print(
                    f"  {stored:>9,} stored: gleaner {events / ours:>7,.0f} events/s "
                    f"(CPU {ours_cpu / events * 1e6:,.0f} ms per 1,000), reference "
                    f"{events / theirs:>7,.0f}/s (CPU {theirs_cpu / events * 1e6:,.0f} ms)",
                    flush=True,
                )
            ratio = statistics.median(ours / theirs for ours, theirs in pairs)
            rate = statistics.median(ours for ours, _ in pairs)
            reference = statistics.median(theirs for _, theirs in pairs)
            results.append((stored, rate, reference, ratio))
            print(
                f"ingestion at {stored:,} stored: {rate:,.0f} events/s "
                f"({1e6 / rate:,.0f} us/event); reference COPY+ON CONFLICT "
                f"{reference:,.0f}/s; ratio {ratio:.2f} (goal >= {GOAL_RATIO}, "
                f">= {GOAL_RATE:,} events/s); CPU ratio {statistics.median(cpu_ratios):.2f}",
                flush=True,
            )
    finally:
        server.stop()
        _purge_queued_derivations()

    first, last = results[0], results[-1]
    print(f"load after: {_load()}")
    print(
        f"cost per event from {first[0]:,} to {last[0]:,} stored: "
        f"{1e6 / first[1]:,.0f} -> {1e6 / last[1]:,.0f} us/event "
        f"(x{first[1] / last[1]:.2f}); ratio to the reference {first[3]:.2f} -> {last[3]:.2f}"
    )


def _reference_rows(project_id: int, events: list[dict]) -> list[tuple]:
    """The batch as the reference stores it: encoded before the clock starts."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return [
        (
            project_id,
            event["id"],
            event["type"],
            event["timestamp"],
            now,
            event["session_id"],
            event.get("generation_id") or "",
            event.get("user_id") or "",
            json.dumps({k: v for k, v in event.items() if k not in COMMON_FIELDS}),
        )
        for event in events
    ]


def _run_reference(database: dict, batches: list[list[tuple]]) -> tuple[float, float]:
    """Seconds for CLIENTS threads, one connection each, to load `batches`, and the CPU
    seconds their database backends spent on it."""
    import psycopg

    dsn = (
        f"host={database['HOST']} port={database['PORT'] or 5432} "
        f"dbname={database['NAME']} user={database['USER']}"
    )
    if database.get("PASSWORD"):
        dsn += f" password={database['PASSWORD']}"

    def load(connection: psycopg.Connection, rows: list[tuple]) -> None:
        with connection.transaction(), connection.cursor() as cursor:
            with cursor.copy(f"COPY ref_staging ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {REFERENCE} ({COLUMNS}) SELECT {COLUMNS} FROM ref_staging "  # noqa: S608
                "ORDER BY client_id ON CONFLICT (project_id, client_id) DO NOTHING"
            )

    connections = [psycopg.connect(dsn, autocommit=True) for _ in range(CLIENTS)]
    try:
        for conn in connections:
            conn.execute(
                f"CREATE TEMP TABLE ref_staging ON COMMIT DELETE ROWS AS "  # noqa: S608
                f"SELECT {COLUMNS} FROM {REFERENCE} WITH NO DATA"
            )
        backends = {conn.info.backend_pid for conn in connections}
        spent = _cpu_seconds(backends)
        seconds = _in_threads(
            batches, [lambda rows, conn=conn: load(conn, rows) for conn in connections]
        )
        return seconds, _cpu_seconds(backends, since=spent)
    finally:
        for conn in connections:
            conn.close()


def _gleaner_processes(server: common.Gunicorn) -> set[int]:
    """The gunicorn workers' process ids and those of the database backends they hold
    (those of this database but this process's own)."""
    from django.db import connection

    assert server.process is not None  # noqa: S101 - started
    master = str(server.process.pid)
    workers = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == master:
                workers.add(int(stat.parent.name))
        except (OSError, IndexError):
            continue  # gone meanwhile
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return workers | {pid for (pid,) in cursor.fetchall()}


def _cpu_seconds(pids: set[int], since: dict[int, float] | None = None) -> Any:
    """CPU seconds (user and system) of each process, or, given an earlier reading, the
    total spent since then (a process new since then counts whole). Processes on this
    machine only: PostgreSQL must run here too."""
    spent = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited
        spent[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if since is None:
        return spent
    return sum(seconds - since.get(pid, 0.0) for pid, seconds in spent.items())


def _post_all(port: int, key: str, bodies: list[bytes]) -> float:
    """Seconds for CLIENTS threads to post `bodies` to Gleaner, each answered 200."""

    def client() -> Callable[[bytes], None]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

        def post(body: bytes) -> None:
            connection.request("POST", "/api/v1/events", body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {answer[:500]!r}")

        return post

    return _in_threads(bodies, [client() for _ in range(CLIENTS)])


def _in_threads(work: list, workers: list[Callable]) -> float:
    """Seconds for `workers`, one thread each, to take every item of `work` from a queue."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in work:
        todo.put(item)
    errors: list[BaseException] = []

    def drain(worker: Callable) -> None:
        try:
            while True:
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    return
                worker(item)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=drain, args=(worker,)) for worker in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def _empty_feedback_tables() -> None:
    """A known number of stored events: this bench's database holds only this run's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE feedback_event, feedback_generation, feedback_session RESTART "
            "IDENTITY CASCADE"
        )
        cursor.execute(f"DROP TABLE IF EXISTS {REFERENCE}")
        cursor.execute(
            f"CREATE TABLE {REFERENCE} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY "
            "KEY, project_id bigint NOT NULL, client_id varchar(255) NOT NULL, type "
            "varchar(20) NOT NULL, timestamp timestamptz NOT NULL, received_at timestamptz "
            "NOT NULL, session_ref varchar(255) NOT NULL, generation_ref varchar(255) NOT "
            "NULL, user_ref varchar(255) NOT NULL, payload jsonb NOT NULL, "
            "UNIQUE (project_id, client_id))"
        )


def _fill(project_id: int, target: int) -> int:
    """Store events by SQL until the event table holds `target` (20 a session, a
    generation and three actions on it, linked, derived); the same rows go to the
    reference table. Returns the count now stored."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM feedback_event")
        stored = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM feedback_event WHERE client_id LIKE 'fill-%%'")
        start = cursor.fetchone()[0]
        count = (target - stored) // 20 * 20
        if count <= 0:
            return stored
        print(f"filling {count:,} events by SQL ...", flush=True)
        first_session, sessions = start // 20, count // 20
        cursor.execute(
            "INSERT INTO feedback_session (project_id, external_id, user_ref, outcome, "
            "outcome_signal, retries, first_event_at, last_event_at, created_at, changes, "
            "derived_changes, derived_at, derive_failures, derive_error) "
            "SELECT %s, 'fill-s' || s, 'fill-u' || (s %% 5000), 'completed', '', 0, "
            "now() - interval '30 days', now() - interval '30 days', now(), 1, 1, now(), 0, "
            "'' FROM generate_series(%s, %s) s",
            [project_id, first_session, first_session + sessions - 1],
        )
        cursor.execute(
            "INSERT INTO feedback_generation (project_id, session_id, external_id, input, "
            "output, model, replaces_ref, metadata, signals, created_at, received_at) "
            'SELECT %s, s.id, \'fill-g\' || g, \'[{"role": "user", "content": "A '
            "question of a few words, as users ask them\"}]', 'An answer of a sentence or "
            "two, as a model gives it, long enough to look like one.', 'fill-model', '', "
            "'{\"feature\": \"chat\"}', '{}', now() - interval '30 days', now() "
            "FROM generate_series(%s, %s) g JOIN feedback_session s "
            "ON s.project_id = %s AND s.external_id = 'fill-s' || (g / 5)",
            [project_id, first_session * 5, (first_session + sessions) * 5 - 1, project_id],
        )
        cursor.execute(
            "INSERT INTO feedback_event (project_id, client_id, type, timestamp, received_at, "
            "session_id, generation_id, generation_ref, user_ref, payload) "
            "SELECT %s, 'fill-' || e, CASE WHEN e %% 4 = 0 THEN 'generation' ELSE 'view' END, "
            "now() - interval '30 days' + e * interval '1 millisecond', now(), g.session_id, "
            "g.id, g.external_id, 'fill-u' || (e / 20 %% 5000), CASE WHEN e %% 4 = 0 THEN "
            "jsonb_build_object('input', g.input, 'output', g.output, 'model', g.model, "
            "'replaces', null, 'metadata', g.metadata) ELSE '{\"dwell_ms\": 1200}' END "
            "FROM generate_series(%s, %s) e JOIN feedback_generation g "
            "ON g.project_id = %s AND g.external_id = 'fill-g' || (e / 4)",
            [project_id, start, start + count - 1, project_id],
        )
        cursor.execute(
            f"INSERT INTO {REFERENCE} ({COLUMNS}) SELECT e.project_id, e.client_id, e.type, "  # noqa: S608
            "e.timestamp, e.received_at, s.external_id, e.generation_ref, e.user_ref, "
            "e.payload FROM feedback_event e JOIN feedback_session s ON s.id = e.session_id "
            "WHERE e.project_id = %s AND e.client_id >= %s AND e.client_id LIKE 'fill-%%' "
            "ON CONFLICT DO NOTHING",
            [project_id, "fill-"],
        )
        cursor.execute("SELECT count(*) FROM feedback_event")
        return cursor.fetchone()[0]


class _Gunicorn(common.Gunicorn):
    def __init__(self, *, workers: int, database: dict) -> None:
        super().__init__(name="bench-ingest", options=["--workers", str(workers)])
        self.database = database


def _purge_queued_derivations() -> None:
    from django.conf import settings

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from config.celery import app

        app.control.purge()


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


if __name__ == "__main__":
    main()
