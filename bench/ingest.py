"""Ingestion rate for 1,000-event batches through the whole HTTP stack (in-process client).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench \
      REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/ingest.py

Creates the database tables if needed, a fresh project per run, and realistic simulated
traffic; prints events/s and per-batch latency. `--batches N` sets the run length. With
REDIS_URL set, derivation is queued on the broker as in production (and purged at the end);
without it, each request also derives in-process, which is the demo setup, not production.
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
os.environ.setdefault("GLEANER_INGEST_RATE_PER_MINUTE", "1000000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from demo.traffic import simulate_traffic
    from feedback import services
    from tenancy.keys import api_key_create

    call_command("migrate", verbosity=0)
    run = time.strftime("%Y%m%d%H%M%S")
    project, _ = services.project_create(slug=f"bench-{run}")
    _, key = api_key_create(project=project)
    traffic = simulate_traffic(
        sessions=args.batches * 130, seed=int(run) % 2**31, batch_size=1000, id_prefix=run
    )
    batches = [json.dumps({"events": b}) for b in traffic.batches if len(b) == 1000]
    batches = batches[: args.batches]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    # Warm-up: one batch, not timed.
    client.post("/api/v1/events", batches[0], content_type="application/json")
    latencies, events = [], 0
    for body in batches[1:]:
        started = time.perf_counter()
        response = client.post("/api/v1/events", body, content_type="application/json")
        latencies.append(time.perf_counter() - started)
        assert response.status_code in (200, 207), response.content[:300]
        events += json.loads(body)["events"].__len__()
    total = sum(latencies)
    mb = sum(len(b) for b in batches[1:]) / 1e6
    mode = "in-process" if settings.CELERY_TASK_ALWAYS_EAGER else "queued on the broker"
    print(f"derivation: {mode}")
    print(f"database: {connection.vendor}, batches: {len(latencies)} x 1000 events, {mb:.1f} MB")
    print(f"ingestion rate: {events / total:,.0f} events/s")
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from config.celery import app

        app.control.purge()
    print(
        f"batch latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
