"""Export throughput and peak memory: a DPO export of N labels (default 1,000,000), as
JSONL and as Parquet, each built in a fresh process so its peak RSS is its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench \\
      .venv/bin/python bench/export.py --rows 1000000

The labels (realistic prompt and answer lengths, spread over 60 days) are created once
per N and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def setup() -> None:
    import django

    django.setup()


def build_data(rows: int) -> str:
    from django.core.management import call_command
    from django.utils import timezone

    from feedback import services
    from feedback.models import Generation, Label, Session

    call_command("migrate", verbosity=0)
    slug = f"bench-export-{rows}"
    project, created = services.project_create(slug=slug)
    if Label.objects.filter(project=project).count() >= rows:
        return slug
    now = timezone.now()
    session = Session.objects.create(
        project=project, external_id="bench", first_event_at=now, last_event_at=now
    )
    generation = Generation.objects.create(
        project=project, session=session, external_id="bench", output="x", created_at=now
    )
    prompt = [{"role": "user", "content": "Summarise the attached quarterly report. " * 6}]
    answer = "The report says revenue grew four percent, driven by the new tier. " * 8
    started = time.perf_counter()
    for start in range(0, rows, 10_000):
        Label.objects.bulk_create(
            Label(
                project=project,
                session=session,
                generation=generation,
                key=f"bench:{n}",
                kind="preference_pair",
                source="edit" if n % 3 else "regenerate",
                rule="edit_correction",
                prompt=prompt,
                chosen=f"{answer} (edited {n})",
                rejected=answer,
                confidence=0.9,
                weight=1.0,
                occurred_at=now - timedelta(minutes=n % 86_400),
            )
            for n in range(start, min(rows, start + 10_000))
        )
    print(f"created {rows:,} labels in {time.perf_counter() - started:.0f} s", flush=True)
    return slug


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    across exec, so a child would report the peak of the parent it was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(slug: str, file_format: str) -> None:
    from exports import services
    from exports.models import ExportJob
    from tenancy.models import Project

    job = ExportJob.objects.create(
        project=Project.objects.get(slug=slug),
        format="dpo",
        file_format=file_format,
        # Its labels are synthetic and nobody verified them (0% human-verified): the gate
        # would fail the export, and this bench measures building it, not its quality.
        allow_below_policy=True,
        status="running",
        attempts=1,
    )
    started = time.perf_counter()
    job = services.export_build(job=job)
    elapsed = time.perf_counter() - started
    size = sum(f["bytes"] for f in job.manifest["files"])
    peak_mb = peak_rss_mb()
    print(
        json.dumps(
            {
                "file_format": file_format,
                "rows": job.rows,
                "seconds": round(elapsed, 1),
                "rows_per_second": round(job.rows / elapsed),
                "peak_rss_mb": round(peak_mb),
                "bytes": size,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--one", nargs=2, metavar=("SLUG", "FILE_FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup()
    if args.one:
        run_one(*args.one)
        return
    from django.db import connection

    slug = build_data(args.rows)
    print(f"database: {connection.vendor}; DPO export of project {slug}")
    for file_format in ("jsonl", "parquet"):
        out = subprocess.run(  # noqa: S603 - this script, this interpreter
            [sys.executable, __file__, "--one", slug, file_format],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(
            f"{file_format:8} {result['rows']:,} rows in {result['seconds']} s: "
            f"{result['rows_per_second']:,} rows/s, peak RSS {result['peak_rss_mb']} MB, "
            f"{result['bytes'] / 1e6:,.1f} MB written"
        )


if __name__ == "__main__":
    main()
