"""Exports against PostgreSQL's own COPY, same run: a DPO export of N labels (default
1,000,000) as JSONL and as Parquet, the fixed cost of a 10k-row export, and peak memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gleaner_bench_export \\
      .venv/bin/python bench/export.py            # 1M rows; --quick: 100k rows

Throughput: the export (`export_build`, each run in a fresh process so its peak RSS is its
own) alternates three times with the reference, `COPY (SELECT <the columns the export
reads> FROM feedback_label WHERE <the same project, kind, active> ORDER BY id) TO STDOUT`
written to a file, for JSONL then Parquet; the ratio is the median of the three pairs
(reference seconds / export seconds; goal >= 0.5). Fixed cost: the same for a project of
10,000 labels (goal: the export in <= 0.5 s). Memory: the export's peak RSS at 100k and at
N rows (goal: flat).

`--quick` takes about a minute on an idle machine (3-4 under the load of other benches);
the full run 2 to 4 minutes at a load of 2, plus 3 to 7 to create the 1M labels the first time.

The labels (realistic prompt and answer lengths, spread over 60 days) are created once per
N and reused by later runs; so is another project holding 200,000 reviewed free pairs (the
review items an export must not scan), and each exported project has a review queue.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ROUNDS = 3
GOAL_RATIO = 0.5
GOAL_FIXED_SECONDS = 0.5
FIXED_ROWS = 10_000
OTHER_REVIEW_ITEMS = 200_000
COLUMNS = "id, kind, source, prompt, chosen, rejected, completion, label, weight, occurred_at"


def setup() -> None:
    import django

    django.setup()


def build_data(rows: int) -> str:
    from django.core.management import call_command
    from django.utils import timezone

    from feedback import services
    from feedback.models import Generation, Label, Session
    from review.models import Queue

    call_command("migrate", verbosity=0)
    other_review_items()
    slug = f"bench-export-{rows}"
    project, created = services.project_create(slug=slug)
    if not Queue.objects.filter(project=project).exists():
        Queue.objects.create(project=project, name="bench")
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
    _analyze()
    return slug


def other_review_items() -> None:
    """Another project's reviewed free pairs: what the review-pair queries used to scan."""
    from feedback import services
    from review.models import Item, Queue

    project, _ = services.project_create(slug="bench-export-other-reviews")
    queue = Queue.objects.filter(project=project).first() or Queue.objects.create(
        project=project, name="bench"
    )
    have = Item.objects.filter(queue=queue).count()
    content = {"prompt": "Which is better?", "responses": ["one answer", "another answer"]}
    for start in range(have, OTHER_REVIEW_ITEMS, 10_000):
        Item.objects.bulk_create(
            Item(
                queue=queue,
                content=content,
                reason="free",
                status="done",
                decision="accepted",
                preferred_response=n % 2,
            )
            for n in range(start, min(OTHER_REVIEW_ITEMS, start + 10_000))
        )
    if have < OTHER_REVIEW_ITEMS:
        _analyze()


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    across exec, so a child would report the peak of the parent it was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_export(slug: str, file_format: str) -> dict:
    from django.conf import settings

    from exports import services
    from exports.models import ExportJob
    from tenancy.models import Project

    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="bench-export-")
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
    return {
        "rows": job.rows,
        "seconds": elapsed,
        "bytes": sum(f["bytes"] for f in job.manifest["files"]),
        "media": settings.MEDIA_ROOT,
    }


def run_reference(slug: str) -> dict:
    """COPY of the columns the export reads, for the rows it exports, to a file."""
    from django.db import connection

    from tenancy.models import Project

    project = Project.objects.get(slug=slug)
    sql = (
        f"COPY (SELECT {COLUMNS} FROM feedback_label WHERE project_id = {project.pk}"  # noqa: S608
        " AND active AND kind = 'preference_pair' ORDER BY id) TO STDOUT"
    )
    size = rows = 0
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        started = time.perf_counter()
        connection.ensure_connection()
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(sql) as copy,
            (Path(folder) / "copy.tsv").open("wb") as out,
        ):
            for data in copy:
                out.write(data)
                size += len(data)
                rows += bytes(data).count(b"\n")
        elapsed = time.perf_counter() - started
    return {"rows": rows, "seconds": elapsed, "bytes": size}


def one(kind: str, slug: str, file_format: str) -> None:
    """In a fresh process: one export or one reference, as a JSON line on stdout."""
    setup()
    if kind == "export":
        cpu = time.process_time()
        result = run_export(slug, file_format)
        # This process's CPU (all its threads; PostgreSQL's backends not counted): steadier
        # than wall time on a busy machine.
        result["cpu_seconds"] = time.process_time() - cpu
        shutil.rmtree(result.pop("media"))
    else:
        result = run_reference(slug)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def child(kind: str, slug: str, file_format: str) -> dict:
    out = subprocess.run(  # noqa: S603 - this script, this interpreter
        [sys.executable, __file__, "--one", kind, slug, file_format],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def interleaved(slug: str, file_format: str) -> list[tuple[dict, dict]]:
    return [(child("export", slug, file_format), child("copy", slug, "-")) for _ in range(ROUNDS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k rows instead of --rows")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "SLUG", "FORMAT"), help="internal")
    args = parser.parse_args()
    if args.one:
        one(*args.one)
        return
    rows = 100_000 if args.quick else args.rows
    setup()
    from django.db import connection

    sizes = sorted({FIXED_ROWS, 100_000, rows})
    slugs = {size: build_data(size) for size in sizes}
    print(f"database: {connection.vendor}; DPO exports; load: {os.getloadavg()[0]:.1f}")

    for file_format in ("jsonl", "parquet"):
        pairs = interleaved(slugs[rows], file_format)
        ratio = statistics.median(r["seconds"] / e["seconds"] for e, r in pairs)
        export = statistics.median(e["rows"] / e["seconds"] for e, _ in pairs)
        reference = statistics.median(r["rows"] / r["seconds"] for _, r in pairs)
        peak = max(e["peak_rss_mb"] for e, _ in pairs)
        cpu = sorted(e["cpu_seconds"] / e["rows"] * 1e6 for e, _ in pairs)
        print(
            f"{file_format:8} {rows:,} rows: {export:,.0f} rows/s; reference COPY "
            f"{reference:,.0f} rows/s; ratio {ratio:.2f} (goal >= {GOAL_RATIO}); "
            f"peak RSS {peak:.0f} MB; {pairs[0][0]['bytes'] / 1e6:,.1f} MB written; "
            f"export process CPU {cpu[0]:.1f}-{cpu[-1]:.1f} us a row",
            flush=True,
        )
        if rows != 100_000:
            small = child("export", slugs[100_000], file_format)
            print(
                f"{'':8} memory: peak RSS {small['peak_rss_mb']:.0f} MB at 100,000 rows, "
                f"{peak:.0f} MB at {rows:,} (goal: flat)",
                flush=True,
            )

    pairs = interleaved(slugs[FIXED_ROWS], "jsonl")
    export = statistics.median(e["seconds"] for e, _ in pairs)
    reference = statistics.median(r["seconds"] for _, r in pairs)
    ratio = statistics.median(r["seconds"] / e["seconds"] for e, r in pairs)
    print(
        f"fixed cost: {FIXED_ROWS:,}-row JSONL export in {export:.2f} s "
        f"(goal <= {GOAL_FIXED_SECONDS} s); reference COPY {reference:.2f} s; ratio {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
