"""Signal rollups: what keeping them costs derivation, and how fast the Signals page reads
them when they stand for 10 million generations.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench \\
      REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/signals.py

1. Derivation: per round, two projects of the same simulated traffic are derived, one
   with the rollups kept (as in production) and one with their reads and writes switched
   off (the reference), a chunk of each in turn (alternating which goes first, so both
   see the same machine load), three rounds. Prints both times, the added
   share (median of the rounds) and the goal (<= 10% added); also the CPU time of the
   worker and its PostgreSQL backend (from /proc, database on this machine), which a busy
   machine disturbs much less than wall time.
2. Page: rollups standing for 10M generations (a year of days x 20 models, 50 features and
   200 prompt patterns, inserted directly) in a fresh project; each page's queries
   (`signal_groups`, then `signal_rows` over the whole year for the busiest 6 groups, as
   the page draws them; per dimension and bucket) are timed (best of three) against a
   reference: the same rows read in bare SQL, one column (generations) only. Prints the
   slowest page, its reference, the ratio and the goal (<= 200 ms); and, for information, the
   time of `signal_rows` over every group (the API's widest answer).

`--quick` derives 400 sessions a round (the default is 3,000) and builds the same rollups.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

DERIVE_GOAL = 0.10  # added share of derivation time
PAGE_GOAL_MS = 200.0
ROUNDS = 3
GENERATIONS = 10_000_000
DAYS = 365
GROUPS = {"model": 20, "feature": 50, "pattern": 200}
PAGE_GROUPS = 6  # groups the page draws (signals/forms.py MAX_GROUPS)
FIRST_DAY = date(2025, 12, 1)  # the year of standing rollups starts here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3000, help="sessions per round")
    parser.add_argument("--quick", action="store_true", help="400 sessions per round")
    parser.add_argument("--only", choices=("derivation", "page"), help="run one part")
    args = parser.parse_args()
    sessions = 400 if args.quick else args.sessions

    from bench.common import analyze, setup

    setup()
    from django.conf import settings
    from django.db import connection

    if settings.CELERY_TASK_ALWAYS_EAGER:
        sys.exit("Set REDIS_URL: in-process mode would derive during ingestion.")
    print(f"database: {connection.vendor}; {sessions} sessions a round, {ROUNDS} rounds")
    if args.only != "page":
        _derivation(sessions, analyze)
    if args.only != "derivation":
        _page()


def _derivation(sessions: int, analyze) -> None:  # noqa: ANN001 - bench.common.analyze
    from feedback import derive_io, labelling

    base = int(time.time()) % 2**30
    pairs = [
        (_ingest(sessions, base + seed, "with"), _ingest(sessions, base + seed, "without"))
        for seed in range(ROUNDS)
    ]
    labelling.sessions_mark_abandoned()  # the simulator's sessions are hours old
    analyze()
    kept_read, kept_apply = derive_io.signal_contributions_of, labelling.rollups_apply

    def chunk(project, *, rollups: bool) -> tuple[int, float, float]:  # noqa: ANN001 - a Project
        """Derive one chunk: sessions taken, wall seconds, CPU seconds (this process and
        its database backend: much less sensitive to a busy machine than wall time)."""
        if not rollups:
            derive_io.signal_contributions_of = lambda ids: {}
            labelling.rollups_apply = lambda old, new: 0
        try:
            started, cpu = time.perf_counter(), time.process_time() + _backend_cpu()
            done = labelling.sessions_derive_pending(project=project)
            cpu = time.process_time() + _backend_cpu() - cpu
            return done, time.perf_counter() - started, cpu
        finally:
            derive_io.signal_contributions_of = kept_read
            labelling.rollups_apply = kept_apply

    added: list[float] = []
    added_cpu: list[float] = []
    for with_rollups, without in pairs:
        # Chunk by chunk, alternating which goes first: both see the same machine load.
        spent = {True: 0.0, False: 0.0}
        spent_cpu = {True: 0.0, False: 0.0}
        pending = {True: with_rollups, False: without}
        turn = 0
        while pending:
            order = [True, False] if turn % 2 == 0 else [False, True]
            for rollups in order:
                if rollups in pending:
                    done, seconds, cpu = chunk(pending[rollups], rollups=rollups)
                    spent[rollups] += seconds
                    spent_cpu[rollups] += cpu
                    if not done:
                        del pending[rollups]
            turn += 1
        added.append(spent[True] / spent[False] - 1)
        added_cpu.append(spent_cpu[True] / spent_cpu[False] - 1)
        print(
            f"  round: derivation with rollups {spent[True]:.2f} s, without "
            f"{spent[False]:.2f} s ({sessions / spent[True]:,.0f} vs "
            f"{sessions / spent[False]:,.0f} sessions/s): {added[-1]:+.1%}; CPU (worker and "
            f"database) {spent_cpu[True]:.2f} s vs {spent_cpu[False]:.2f} s: {added_cpu[-1]:+.1%}"
        )
    cpu_share = statistics.median(added_cpu)
    share = statistics.median(added)
    verdicts = ["met" if x <= DERIVE_GOAL else "not met" for x in (share, cpu_share)]
    print(
        f"derivation: keeping the rollups adds {share:+.1%} to derivation time, "
        f"{cpu_share:+.1%} to its CPU time (worker and database backend) (reference: the "
        f"same derivation without them; goal <= {DERIVE_GOAL:.0%}: wall {verdicts[0]}, "
        f"CPU {verdicts[1]})"
    )


def _backend_cpu() -> float:
    """CPU seconds of this connection's database backend (PostgreSQL on this machine,
    read from /proc); 0 elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ingest(sessions: int, seed: int, kind: str):  # noqa: ANN202 - a tenancy Project
    from bench.common import new_project
    from config.celery import app
    from demo.traffic import simulate_traffic
    from feedback import services

    project = new_project(f"signals-{kind}{seed}")
    traffic = simulate_traffic(sessions=sessions, seed=seed, batch_size=1000)
    for batch in traffic.batches:
        services.events_ingest(project=project, events=batch)
    app.control.purge()
    return project


def _page() -> None:
    from django.db import connection

    from bench.common import new_project
    from feedback.models import SignalRollup
    from feedback.signals import signal_groups, signal_rows

    project = new_project("signals-page")
    started = time.perf_counter()
    rows = _standing_rollups(project)
    if connection.vendor == "postgresql":  # as autovacuum would: statistics, visibility map
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {SignalRollup._meta.db_table}")
    print(
        f"  {rows:,} rollup rows standing for {GENERATIONS:,} generations "
        f"(built in {time.perf_counter() - started:.0f} s)"
    )
    first = FIRST_DAY
    results = []
    for by in (None, *GROUPS):
        for bucket in ("day", "week", "all"):

            def page(by: str | None = by, bucket: str = bucket) -> int:
                # As the Signals page asks: the groups for its picker, then the year of
                # the busiest PAGE_GROUPS groups.
                groups = signal_groups(project, by) if by else []
                picked = [group for group, _, _ in groups[:PAGE_GROUPS]] if by else None
                rows = signal_rows(project, bucket=bucket, by=by, date_from=first, groups=picked)
                return len(groups) + len(rows)

            def every_group(by: str | None = by, bucket: str = bucket) -> int:
                return len(signal_rows(project, bucket=bucket, by=by, date_from=first))

            ours = _best_ms(page)
            everything = _best_ms(every_group)
            picked = [g for g, _, _ in signal_groups(project, by)[:PAGE_GROUPS]] if by else None
            reference = _best_ms(
                lambda by=by, picked=picked: _bare(project.pk, by or "model", first, picked)
            )
            results.append((ours, reference, by or "-", bucket))
            print(
                f"  by {by or '-':8} bucket {bucket:5}: page {ours:7.1f} ms; every group "
                f"{everything:7.1f} ms; reference {reference:6.1f} ms"
            )
    ours, reference, by, bucket = max(results)
    print(
        f"page: slowest page query (by {by}, bucket {bucket}, a year, the busiest "
        f"{PAGE_GROUPS} groups) {ours:.1f} ms over rollups for {GENERATIONS:,} generations; "
        f"reference the same rows' generations alone in bare SQL {reference:.1f} ms; "
        f"ratio {ours / reference:.1f} (goal <= {PAGE_GOAL_MS:.0f} ms: "
        f"{'met' if ours <= PAGE_GOAL_MS else 'not met'})"
    )


def _best_ms(run) -> float:  # noqa: ANN001 - a callable
    times = []
    for _ in range(3):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def _bare(project_id: int, dimension: str, first: date, picked: list[str] | None) -> None:
    """The least the page's reads cost: the same rows, one column (generations), bare SQL,
    no rates or histograms: the groups' totals, then the picked groups' buckets."""
    from django.db import connection

    from feedback.models import SignalRollup

    table = SignalRollup._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT group_key, SUM(generations) FROM {table} "  # noqa: S608 - names from the model
            "WHERE project_id = %s AND dimension = %s GROUP BY group_key",
            [project_id, dimension],
        )
        cursor.fetchall()
        groups = "AND group_key = ANY(%s)" if picked is not None else ""
        cursor.execute(
            f"SELECT day, group_key, SUM(generations) FROM {table} "  # noqa: S608 - names from the model
            f"WHERE project_id = %s AND dimension = %s AND day >= %s {groups} "
            "GROUP BY day, group_key ORDER BY day, group_key",
            [project_id, dimension, first, *([picked] if picked is not None else [])],
        )
        cursor.fetchall()


def _standing_rollups(project) -> int:  # noqa: ANN001 - a tenancy Project
    """Insert a year of daily rollups for GENERATIONS generations, spread over the groups of
    each dimension (a few groups take most of the traffic, as in real products)."""
    from feedback import derive_io
    from feedback.models import DWELL_BINS, SIGNAL_RULES

    rng = random.Random(7)  # noqa: S311 - bench data
    per_day = GENERATIONS // DAYS
    first = FIRST_DAY
    total = 0
    for dimension, count in GROUPS.items():
        weights = [1 / (k + 1) for k in range(count)]
        scale = sum(weights)
        batch = []
        for d in range(DAYS):
            day = first + timedelta(days=d)
            for k in range(count):
                n = max(1, round(per_day * weights[k] / scale))
                sessions = n // 3

                def part(p: float, n: int = n) -> int:
                    return int(n * p * rng.uniform(0.8, 1.2))

                counts = [
                    n,
                    sessions,
                    part(0.2),
                    part(0.08),
                    part(0.1),
                    part(0.02),
                    part(0.15),
                    part(0.01),
                    part(0.25),
                    part(0.05),
                    int(sessions * 0.6),
                    int(sessions * 0.1),
                    part(0.1),
                    part(0.07),
                ]
                dwell = [0] * DWELL_BINS
                for b in range(4, 12):
                    dwell[b] = part(0.1)
                labels = [part(0.05) for _ in SIGNAL_RULES]
                batch.append(
                    (project.pk, dimension, day, f"{dimension}-{k:03d}", *counts, *dwell, *labels)
                )
            if len(batch) >= 20_000 or d == DAYS - 1:
                derive_io.signal_rollups_add(sorted(batch))
                total += len(batch)
                batch = []
    return total


if __name__ == "__main__":
    main()
