"""Derivation throughput: sessions/s that one worker process turns into signals and labels.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench \\
      REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/derive.py --sessions 3000

Ingests simulated sessions (derivation tasks are queued on the broker and purged), then
runs the task's own work function, `sessions_derive_pending`, chunk after chunk in this one
process, exactly what a worker with `--pool solo` does for each task.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from demo.traffic import simulate_traffic
    from feedback import labelling, services
    from feedback.models import Event, Label

    if settings.CELERY_TASK_ALWAYS_EAGER:
        sys.exit("Set REDIS_URL: in-process mode would derive during ingestion.")
    from config.celery import app

    call_command("migrate", verbosity=0)
    run = time.strftime("%Y%m%d%H%M%S")
    project, _ = services.project_create(slug=f"bench-derive-{run}")
    traffic = simulate_traffic(sessions=args.sessions, seed=int(run) % 2**31, batch_size=1000)
    for batch in traffic.batches:
        services.events_ingest(project=project, events=batch)
    app.control.purge()
    labelling.sessions_mark_abandoned()  # the simulator's sessions are hours old
    if connection.vendor == "postgresql":  # what autovacuum would do after a bulk load
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    events = Event.objects.filter(project=project).count()

    started = time.perf_counter()
    derived = 0
    while done := labelling.sessions_derive_pending(project=project):
        derived += done
    elapsed = time.perf_counter() - started
    labels = Label.objects.filter(project=project).count()
    print(f"database: {connection.vendor}; {derived} sessions, {events} events, {labels} labels")
    print(f"derivation: {derived / elapsed:,.0f} sessions/s ({labels / elapsed:,.0f} labels/s)")


if __name__ == "__main__":
    main()
