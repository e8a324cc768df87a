"""Export jobs: create, build (on a worker), recover from dead workers."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from itertools import chain
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.forms.models import model_to_dict
from django.utils import timezone

from exports import selectors
from exports.formats import BARE_FORMATS, arrow_schema, rows_for
from exports.models import ExportJob
from exports.writers import JsonlWriter, ParquetWriter
from feedback.models import Project, RoutingPolicy

logger = logging.getLogger(__name__)
STALE_AFTER = timedelta(minutes=5)
MAX_ATTEMPTS = 3
PROGRESS_EVERY = 5000


def export_job_create(
    *,
    project: Project,
    created_by: AbstractBaseUser | None,
    fmt: str,
    file_format: str,
    style: str = ExportJob.Style.STANDARD,
    filters: selectors.ExportFilters,
) -> ExportJob:
    """Queue an export; the build starts on a worker once this commits."""
    job = ExportJob.objects.create(
        project=project,
        created_by=created_by,
        format=fmt,
        file_format=file_format,
        style=style,
        filters=filters.as_json(),
    )
    transaction.on_commit(partial(_enqueue, job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from exports.tasks import build_export

    build_export.delay(job_id)


def export_claim(*, job_id: int, now: datetime | None = None) -> ExportJob | None:
    """Take the job for building: queued, or running with a stale heartbeat (its worker
    died). A conditional UPDATE that only one worker can win; None if already taken."""
    now = now or timezone.now()
    won = ExportJob.objects.filter(
        Q(status=ExportJob.Status.QUEUED)
        | Q(status=ExportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER),
        pk=job_id,
        attempts__lt=MAX_ATTEMPTS,
    ).update(
        status=ExportJob.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        progress=0,
        attempts=F("attempts") + 1,
    )
    if not won:
        return None
    return ExportJob.objects.select_related("project").get(pk=job_id)


def export_build(
    *, job: ExportJob, on_progress: Callable[[float, int], None] | None = None
) -> ExportJob:
    """Write the job's files (train split, eval split, sidecars, manifest, dataset card)
    under MEDIA_ROOT, streaming rows from a server-side cursor. Same data and filters give
    byte-identical data files."""
    project = job.project
    policy, _ = RoutingPolicy.objects.get_or_create(project=project)
    filters = selectors.parse_filters(job.filters, project=project)
    querysets = selectors.split_querysets(project, job.format, filters, policy)
    review_pairs = selectors.review_pair_querysets(project, job.format, filters)
    as_of = selectors.as_of_for(querysets, filters, review_pairs)
    totals = {split: qs.count() + review_pairs[split].count() for split, qs in querysets.items()}
    expected = max(1, sum(totals.values()))
    directory = Path(settings.MEDIA_ROOT) / job.directory
    directory.mkdir(parents=True, exist_ok=True)

    done = 0
    files, by_source, rows_per_split = [], {}, {}
    for split, queryset in querysets.items():
        name = f"{split}.{job.file_format}"
        writer = _writer(job, directory / name, split)
        sources: Counter[str] = Counter()
        rows = chain(
            selectors.label_rows(queryset),
            selectors.review_pair_rows(review_pairs[split], weight=policy.weight_review),
        )
        for label in rows:
            weight = _weight(label, as_of, policy)
            for row in rows_for(job.format, job.style, label, weight):
                writer.write(row)
                sources[label.source] += 1
            done += 1
            if done % PROGRESS_EVERY == 0:
                _progress(job, done / expected, writer.rows, on_progress)
        digests = writer.close()
        rows_per_split[split] = writer.rows
        by_source[split] = dict(sorted(sources.items()))
        for filename, digest in digests.items():
            path = directory / filename
            files.append(
                {
                    "name": filename,
                    "split": split,
                    "role": "meta" if filename.endswith(".meta.jsonl") else "data",
                    "rows": writer.rows,
                    "bytes": path.stat().st_size,
                    "sha256": digest,
                }
            )

    manifest = {
        "export_id": job.pk,
        "project": project.slug,
        "format": job.format,
        "file_format": job.file_format,
        "style": job.style,
        "filters": filters.as_json(),
        "as_of": as_of.isoformat() if as_of else None,
        "policy": {k: v for k, v in model_to_dict(policy).items() if k not in ("id", "project")},
        "rows": rows_per_split,
        "labels": totals,
        "counts_by_source": by_source,
        "excluded": selectors.exclusion_counts(project, job.format, filters, policy),
        "files": files,
        "weight": "0.5 ** (age_days / half_life_days) * source weight, age from as_of",
        "built_at": timezone.now().isoformat(),
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    (directory / "README.md").write_text(dataset_card(manifest))
    job.manifest = manifest
    job.rows = rows_per_split["train"]
    job.status = ExportJob.Status.DONE
    job.progress = 1.0
    job.finished_at = timezone.now()
    job.error = ""
    job.save(update_fields=["manifest", "rows", "status", "progress", "finished_at", "error"])
    return job


def _writer(job: ExportJob, path: Path, split: str) -> JsonlWriter | ParquetWriter:
    if job.file_format == ExportJob.FileFormat.PARQUET:
        return ParquetWriter(path, arrow_schema(job.format, job.style))
    sidecar = path.with_suffix(".meta.jsonl") if job.format in BARE_FORMATS else None
    return JsonlWriter(path, sidecar=sidecar)


def _weight(label, as_of: datetime | None, policy: RoutingPolicy) -> float:  # noqa: ANN001
    age_days = max(0.0, (as_of - label.occurred_at).total_seconds() / 86400) if as_of else 0.0
    return round(label.weight * 0.5 ** (age_days / policy.half_life_days), 6)


def _progress(
    job: ExportJob, fraction: float, rows: int, on_progress: Callable[[float, int], None] | None
) -> None:
    now = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        progress=round(min(fraction, 0.99), 4), heartbeat_at=now, rows=rows
    )
    if on_progress is not None:
        on_progress(fraction, rows)


def export_fail(*, job_id: int, error: str) -> None:
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportJob.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def exports_resume_stale(*, now: datetime | None = None) -> list[int]:
    """Jobs left 'running' by a dead worker: requeue them (or fail them after
    MAX_ATTEMPTS). Returns the ids requeued."""
    now = now or timezone.now()
    stale = ExportJob.objects.filter(
        status=ExportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=ExportJob.Status.FAILED,
        error=f"The worker stopped {MAX_ATTEMPTS} times while building this export.",
        finished_at=now,
    )
    ids = list(stale.filter(attempts__lt=MAX_ATTEMPTS).values_list("pk", flat=True))
    for job_id in ids:
        _enqueue(job_id)
    return ids


def dataset_card(manifest: dict) -> str:
    """A Hugging Face dataset card (README.md with YAML front matter)."""
    data_files = [f for f in manifest["files"] if f["role"] == "data"]
    configs = "\n".join(
        f"      - split: {'test' if f['split'] == 'eval' else 'train'}\n        path: {f['name']}"
        for f in data_files
    )
    excluded = "\n".join(f"| {k} | {v} |" for k, v in sorted(manifest["excluded"].items()))
    sources = "\n".join(
        f"| {split} | {source} | {n} |"
        for split, counts in manifest["counts_by_source"].items()
        for source, n in counts.items()
    )
    checksums = "\n".join(
        f"| {f['name']} | {f['rows']} | `{f['sha256']}` |" for f in manifest["files"]
    )
    return f"""---
configs:
  - config_name: default
    data_files:
{configs}
tags:
  - gleaner
  - {manifest["format"]}
  - implicit-feedback
---

# {manifest["project"]}: {manifest["format"]} export {manifest["export_id"]}

Training data derived by Gleaner from what users did with the product (edits,
regenerations, copies, shares, session outcomes), filtered by confidence and by human
review with inter-rater agreement. Format `{manifest["format"]}` ({manifest["style"]}), files
in `{manifest["file_format"]}`. The `test` split is the held-out, human-labelled evaluation
set: never train on it.

Each row has `id`, `source`, `weight` and `created_at`{
        " (in the `.meta.jsonl` sidecar, line for line)"
        if manifest["format"] in BARE_FORMATS
        else ""
    }. `weight` is {manifest["weight"]}; as of {manifest["as_of"]}.

## Rows by source

| split | source | rows |
|---|---|---|
{sources}

## Excluded labels

| reason | labels |
|---|---|
{excluded}

## Filters

```json
{json.dumps(manifest["filters"], indent=2, sort_keys=True)}
```

## Files

| file | rows | sha256 |
|---|---|---|
{checksums}
"""
