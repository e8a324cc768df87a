"""Export jobs: create, build (on a worker), recover from dead workers."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.forms.models import model_to_dict
from django.utils import timezone

from core.background import in_background
from exports import selectors
from exports.chunks import RowWeight, column_chunk, jsonl_chunk
from exports.filters import ExportFilters, parse_filters
from exports.formats import BARE_FORMATS, arrow_schema, rows_for
from exports.models import ExportJob
from exports.policy import below_policy_message, below_policy_reasons
from exports.writers import JsonlWriter, ParquetWriter
from feedback.models import RoutingPolicy
from feedback.quality import export_quality
from tenancy.models import Project

logger = logging.getLogger(__name__)
# A building worker bumps heartbeat_at every GLEANER_EXPORT_HEARTBEAT_SECONDS (default 10)
# from a thread of its own, whatever query the build is waiting on; a job whose heartbeat
# is STALE_BEATS beats old has lost its worker (killed: the thread died with it) and may be
# taken over, so a killed worker's job runs again within a minute.
STALE_BEATS = 4
# A queued job nobody claimed this long after it was handed to the broker (the broker was
# down, or the message was lost) is handed over again by the sweep.
UNCLAIMED_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 3
PROGRESS_EVERY = 5000
FINISHED = (ExportJob.Status.DONE, ExportJob.Status.FAILED)


class ExportTakenOver(Exception):
    """Another worker claimed this job (its heartbeat looked stale): stop building it."""


def heartbeat_every() -> timedelta:
    return timedelta(seconds=settings.GLEANER_EXPORT_HEARTBEAT_SECONDS)


def stale_after() -> timedelta:
    return STALE_BEATS * heartbeat_every()


def export_job_create(
    *,
    project: Project,
    created_by: User | None,
    fmt: str,
    file_format: str,
    style: str = ExportJob.Style.STANDARD,
    filters: ExportFilters,
    allow_below_policy: bool = False,
    in_process: bool = False,
) -> ExportJob:
    """Queue an export; the build starts on a worker once this commits. With
    `allow_below_policy` it is built even below the project's policy (see `_build`).

    The job is committed whatever the broker does: if it cannot take the task (Redis is
    down), that is logged and `exports_resume_stale` hands the job over again once it has
    waited UNCLAIMED_AFTER. So the job exists and will run: the caller answers as usual.

    With `in_process` the job is not handed to the broker but created already claimed by
    the caller (running, attempt 1), which builds it at once with `export_build` (the
    export command). Should the caller die, its heartbeat goes stale and the sweep hands
    the job to a worker, as for any dead worker's job."""
    now = timezone.now()
    claim = (
        {"status": ExportJob.Status.RUNNING, "attempts": 1, "started_at": now, "heartbeat_at": now}
        if in_process
        else {}
    )
    job = ExportJob.objects.create(
        project=project,
        created_by=created_by,
        format=fmt,
        file_format=file_format,
        style=style,
        filters=filters.as_json(),
        allow_below_policy=allow_below_policy,
        created_at=now,
        enqueued_at=now,
        **claim,
    )
    if not in_process:
        transaction.on_commit(partial(_enqueue, job.pk))
    return job


def _enqueue(job_id: int) -> bool:
    """Hand the job to the broker. Never raises: runs after the commit, where an error
    would turn a stored job into a failed request; the sweep retries it instead."""
    from exports.tasks import build_export

    try:
        build_export.delay(job_id)
    except Exception:
        logger.exception("Export %s not queued (broker unavailable); the sweep retries", job_id)
        return False
    return True


def export_claim(*, job_id: int, now: datetime | None = None) -> ExportJob | None:
    """Take the job for building: queued, or running with a stale heartbeat (its worker
    died: take it over). A conditional UPDATE that only one worker can win (on
    PostgreSQL a second claimer waits for the first's row lock, then finds the heartbeat
    fresh); None if the job is taken, finished or out of attempts. The new `attempts` is
    the claim's token: the builder that holds it is the only one whose heartbeats and
    finish count (see `_Lease`)."""
    now = now or timezone.now()
    won = ExportJob.objects.filter(
        Q(status=ExportJob.Status.QUEUED)
        | Q(status=ExportJob.Status.RUNNING, heartbeat_at__lt=now - stale_after()),
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


def export_takeover_at(
    *, job_id: int, seen_heartbeat: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """For a running job another worker holds: when to try to take it over (just after
    its heartbeat goes stale) and the heartbeat seen now. None when there is nothing to
    wait for: the job is not running, is out of attempts, or its heartbeat has moved
    since `seen_heartbeat` (its worker is alive)."""
    heartbeat = (
        ExportJob.objects.filter(
            pk=job_id, status=ExportJob.Status.RUNNING, attempts__lt=MAX_ATTEMPTS
        )
        .values_list("heartbeat_at", flat=True)
        .first()
    )
    if heartbeat is None or (seen_heartbeat is not None and heartbeat != seen_heartbeat):
        return None
    return heartbeat + stale_after() + timedelta(seconds=1), heartbeat


class _Lease:
    """A builder's hold on its job, identified by the claim's `attempts`; hold it with
    `with`, around the whole build.

    While held, a thread of its own (on its own connection) bumps the heartbeat whenever
    nothing has for HEARTBEAT_EVERY, so a builder waiting on one long query or lock still
    beats; the thread dies with its process, so a killed builder's job still goes stale.
    The build loop's `beat()` bumps it too (at most every HEARTBEAT_EVERY unless forced or
    given progress fields to write). Every bump is the conditional UPDATE of `_mine()`:
    once the job is another claim's, `beat()` raises ExportTakenOver (and `due()` says so)
    at the loop's next check."""

    def __init__(self, job: ExportJob) -> None:
        self.job_id, self.attempt = job.pk, job.attempts
        self.every = heartbeat_every().total_seconds()
        # The last bump by anyone (the thread waits for that to be old) and by the loop
        # (which keeps writing progress every beat, as before the thread).
        self._last = self._loop_last = time.monotonic()
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep_beating, name=f"export-{job.pk}-heartbeat", daemon=True
        )

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # At once unless the thread is inside an UPDATE, which may wait on a row lock held
        # by a transaction around the build; then it finishes on its own, later.
        self._thread.join(timeout=10)

    def _mine(self) -> QuerySet[ExportJob]:
        return ExportJob.objects.filter(pk=self.job_id, attempts=self.attempt).exclude(
            status__in=FINISHED
        )

    def due(self) -> bool:
        return self._lost.is_set() or time.monotonic() - self._loop_last >= self.every

    def beat(self, *, force: bool = False, **fields: object) -> None:
        if self._lost.is_set():
            raise ExportTakenOver(self.job_id)
        if not (force or fields or self.due()):
            return
        if not self._mine().update(heartbeat_at=timezone.now(), **fields):
            raise ExportTakenOver(self.job_id)
        self._last = self._loop_last = time.monotonic()

    def finish(self, **fields: object) -> None:
        if not self._mine().update(**fields):
            raise ExportTakenOver(self.job_id)

    def _keep_beating(self) -> None:
        tried = 0.0  # the thread's last try, so a failed one is not retried at once
        try:
            while True:
                quiet_since = max(self._last, tried)
                if self._stop.wait(max(0.0, quiet_since + self.every - time.monotonic())):
                    return
                if time.monotonic() - max(self._last, tried) < self.every:
                    continue  # the loop beat meanwhile
                tried = time.monotonic()
                if not self._bump():
                    self._lost.set()
                    return
        finally:
            connection.close()  # this thread's own connection

    def _bump(self) -> bool:
        """One beat from the thread; False once the job is visibly another claim's."""
        try:
            if self._mine().update(heartbeat_at=timezone.now()):
                self._last = time.monotonic()
                return True
            # No row matched: lost only if this connection sees the job and it is not this
            # claim's. A job it cannot see was created in a transaction not yet committed
            # (a test under pytest-django's `db`, a build called inside `atomic()`): that is
            # no takeover, and the loop's beats, on the connection that sees the job, still
            # notice one (or a deleted job).
            return not ExportJob.objects.filter(pk=self.job_id).exists()
        except DatabaseError:
            # The database is unreachable or the table locked (SQLite): try again next
            # beat. If it stays away, the job goes stale as for a dead worker.
            logger.warning("Export %s: heartbeat failed, retrying", self.job_id, exc_info=True)
            return True


def export_build(
    *, job: ExportJob, on_progress: Callable[[float, int], None] | None = None
) -> ExportJob:
    """Write the job's files (train split, eval split, sidecars, manifest, dataset card)
    under MEDIA_ROOT, streaming rows from a server-side cursor. Same data and filters give
    byte-identical data files.

    Heartbeats all along, also while one query takes long (see `_Lease`); raises
    ExportTakenOver (leaving the job to the worker that took it) once the job is no longer
    this claim's. Files are written to a folder of this attempt and moved into place only
    at the end, so a builder that was taken over never writes into the files of the one
    that took over.

    The policy gate: a train split below the project's policy (human-verified share under
    `min_human_share`, or estimated precision under `target_precision`) fails the job with
    both figures and their thresholds, before any file is written, unless the job has
    `allow_below_policy`. The returned job is then FAILED with the reason in `error`."""
    with _Lease(job) as lease:
        return _build(job, lease, on_progress)


def _build(
    job: ExportJob, lease: _Lease, on_progress: Callable[[float, int], None] | None
) -> ExportJob:
    project = job.project
    policy, _ = RoutingPolicy.objects.get_or_create(project=project)
    filters = parse_filters(job.filters, project=project)
    querysets = selectors.split_querysets(project, job.format, filters, policy)
    review_pairs = selectors.review_pair_querysets(project, job.format, filters)
    sizes = selectors.split_sizes(querysets, review_pairs)
    # The filter's moment, else the newest selected row (as `selectors.as_of_for`).
    as_of = filters.as_of or sizes.newest
    totals = {split: sizes.labels[split] + sizes.pairs[split] for split in querysets}
    lease.beat()
    # The policy gate's quality aggregates and the manifest's exclusions each scan the
    # project's labels again: on PostgreSQL on connections of their own, meanwhile. The
    # rows are written to this attempt's staging folder in the meantime; should the gate
    # fail, they are removed, as if never written (elsewhere the gate decides first).
    excluded = in_background(
        lambda: selectors.exclusion_counts(project, job.format, filters, policy)
    )
    # Aggregates over the train split only (the eval split is held out, never trained on);
    # unordered, or the ordering's id would join the GROUP BY (a group a label).
    quality_of = in_background(
        lambda: export_quality(
            project, querysets["train"].order_by(), policy, extra_human_rows=sizes.pairs["train"]
        )
    )
    quality: dict = {}

    def below_policy() -> str:
        """Once the quality is known: why the gate fails the job ("" if it does not)."""
        if not quality:
            quality.update(quality_of.result())
            reasons = below_policy_reasons(quality)
            quality.update(allowed_below_policy=job.allow_below_policy, below_policy=reasons)
            lease.beat()
        if quality["below_policy"] and not job.allow_below_policy:
            return below_policy_message(quality["below_policy"])
        return ""

    if quality_of.done() and (reason := below_policy()):
        return _fail_below_policy(job, lease, reason)
    expected = max(1, sum(totals.values()))
    directory = Path(settings.MEDIA_ROOT) / job.directory
    staging = directory / f".attempt-{job.attempts}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    policy_used = {k: v for k, v in model_to_dict(policy).items() if k not in ("id", "project")}

    weight_of = RowWeight(as_of, policy.half_life_days)

    def advance(done: int, labels: int, rows: int) -> int:
        """Count `labels` more labels written; progress every PROGRESS_EVERY labels, and a
        heartbeat when one is due. Returns the new count."""
        now_done = done + labels
        crossed = now_done // PROGRESS_EVERY > done // PROGRESS_EVERY
        if crossed or lease.due():
            fraction = now_done / expected
            lease.beat(progress=round(min(fraction, 0.99), 4), rows=rows)
            if on_progress is not None and crossed:
                on_progress(fraction, rows)
        return now_done

    try:
        done = 0
        files, by_source, rows_per_split = [], {}, {}
        for split, queryset in querysets.items():
            name = f"{split}.{job.file_format}"
            writer = _writer(job, staging / name, split)
            sources: Counter[str] = Counter()
            # Labels a chunk at a time (exports/chunks.py), review pairs (few) row by row.
            for batch in selectors.label_chunks(
                queryset,
                chunk_size=PROGRESS_EVERY,
                fmt=job.format,
                style=job.style,
            ):
                if isinstance(writer, ParquetWriter):
                    chunk = column_chunk(job.format, job.style, batch, weight_of)
                    writer.write_columns(chunk.columns, chunk.rows)
                else:
                    chunk = jsonl_chunk(
                        job.format,
                        job.style,
                        batch,
                        weight_of,
                        bare=job.format in BARE_FORMATS,
                    )
                    writer.write_lines(chunk.data, chunk.rows, chunk.meta)
                sources.update(chunk.sources)
                done = advance(done, len(batch), writer.rows)
                if quality_of.done() and below_policy():
                    raise _BelowPolicy
            pairs = selectors.review_pair_rows(review_pairs[split], weight=policy.weight_review)
            for label in pairs:
                weight = _weight(label, as_of, policy)
                for row in rows_for(job.format, job.style, label, weight):
                    writer.write(row)
                    sources[label.source] += 1
                done = advance(done, 1, writer.rows)
            digests = writer.close()
            rows_per_split[split] = writer.rows
            by_source[split] = dict(sorted(sources.items()))
            for filename, digest in digests.items():
                path = staging / filename
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
            lease.beat()

        if below_policy():
            raise _BelowPolicy
        manifest = {
            "export_id": job.pk,
            "project": project.slug,
            "format": job.format,
            "file_format": job.file_format,
            "style": job.style,
            "filters": filters.as_json(),
            "as_of": as_of.isoformat() if as_of else None,
            "policy": policy_used,
            "rows": rows_per_split,
            "labels": totals,
            "counts_by_source": by_source,
            "excluded": excluded.result(),
            "quality": quality,
            "files": files,
            "weight": "0.5 ** (age_days / half_life_days) * source weight, age from as_of",
            "built_at": timezone.now().isoformat(),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        (staging / "README.md").write_text(dataset_card(manifest))
        lease.beat(force=True)  # still ours: only now replace what is in place
    except ExportTakenOver:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except _BelowPolicy:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # another attempt's files stay
            directory.rmdir()
        return _fail_below_policy(job, lease, below_policy())
    for path in staging.iterdir():
        path.replace(directory / path.name)
    staging.rmdir()
    job.manifest = manifest
    job.rows = rows_per_split["train"]
    job.status = ExportJob.Status.DONE
    job.progress = 1.0
    job.finished_at = timezone.now()
    job.error = ""
    lease.finish(
        manifest=job.manifest,
        rows=job.rows,
        status=job.status,
        progress=job.progress,
        finished_at=job.finished_at,
        error=job.error,
    )
    return job


class _BelowPolicy(Exception):
    """The gate's verdict came while the rows were being written: below the policy."""


def _fail_below_policy(job: ExportJob, lease: _Lease, error: str) -> ExportJob:
    """The gate's answer: the job fails with `error`, and nothing was written. A result,
    not an exception: the data is what it is, so no retry and no traceback in the log."""
    job.status = ExportJob.Status.FAILED
    job.error = error
    job.finished_at = timezone.now()
    lease.finish(status=job.status, error=job.error, finished_at=job.finished_at)
    return job


def _writer(job: ExportJob, path: Path, split: str) -> JsonlWriter | ParquetWriter:
    if job.file_format == ExportJob.FileFormat.PARQUET:
        return ParquetWriter(path, arrow_schema(job.format, job.style))
    sidecar = path.with_suffix(".meta.jsonl") if job.format in BARE_FORMATS else None
    return JsonlWriter(path, sidecar=sidecar)


def _weight(label, as_of: datetime | None, policy: RoutingPolicy) -> float:  # noqa: ANN001
    age_days = max(0.0, (as_of - label.occurred_at).total_seconds() / 86400) if as_of else 0.0
    return round(label.weight * 0.5 ** (age_days / policy.half_life_days), 6)


def export_fail(*, job_id: int, error: str, attempt: int | None = None) -> None:
    """Mark the job failed; with `attempt`, only if that claim still holds it (a builder
    that was taken over must not fail the job another worker is building)."""
    jobs = ExportJob.objects.filter(pk=job_id).exclude(status__in=FINISHED)
    if attempt is not None:
        jobs = jobs.filter(attempts=attempt)
    jobs.update(status=ExportJob.Status.FAILED, error=error[:5000], finished_at=timezone.now())


def exports_resume_stale(*, now: datetime | None = None) -> list[int]:
    """The sweep (every few seconds, on beat). Hands the broker again the jobs nobody is
    building: running ones whose heartbeat is stale (their worker died), and queued ones
    not claimed UNCLAIMED_AFTER after they were last handed over (the broker was down or
    lost the message). A running job out of attempts is failed instead. Each job is taken
    by a conditional UPDATE of `enqueued_at`, so concurrent sweeps hand it over once.
    Returns the ids handed over."""
    now = now or timezone.now()
    stale = Q(status=ExportJob.Status.RUNNING, heartbeat_at__lt=now - stale_after())
    ExportJob.objects.filter(stale, attempts__gte=MAX_ATTEMPTS).update(
        status=ExportJob.Status.FAILED,
        error=f"The worker stopped {MAX_ATTEMPTS} times while building this export.",
        finished_at=now,
    )
    unclaimed = Q(status=ExportJob.Status.QUEUED, enqueued_at__lt=now - UNCLAIMED_AFTER)
    # A stale job is handed over at most once per STALE_AFTER, however often this runs.
    stale &= Q(enqueued_at__lt=now - stale_after())
    candidates = ExportJob.objects.filter(stale | unclaimed).order_by("pk")
    handed_over = []
    for job_id, enqueued_at in candidates.values_list("pk", "enqueued_at")[:500]:
        won = ExportJob.objects.filter(pk=job_id, enqueued_at=enqueued_at).update(enqueued_at=now)
        if won and _enqueue(job_id):
            handed_over.append(job_id)
    return handed_over


def _quality_section(quality: dict) -> str:
    """The card's Quality section: what `feedback.quality.export_quality` measured on the
    train split, against the project's policy (docs/quality.md explains the estimate)."""
    if not quality["rows"]:
        return "## Quality\n\nNo training rows: nothing to measure.\n"
    precision = quality["precision"]
    if precision["estimate"] is None:
        estimated = "unknown"
    else:
        estimated = (
            f"{precision['estimate']:.2f} (95% interval {precision['low']:.2f} to "
            f"{precision['high']:.2f})"
        )
    lines = [
        "## Quality",
        "",
        f"- Human-verified: {quality['human_rows']} of {quality['rows']} training rows "
        f"({quality['human_share']:.1%}); the policy asks for at least "
        f"{quality['min_human_share']:.0%}.",
        f"- Estimated precision: {estimated}; target {quality['target']:.2f}.",
    ]
    if quality["below_policy"]:
        lines.append(
            "- **Built below the project's policy on request**: "
            + "; ".join(quality["below_policy"])
            + "."
        )
    if quality["warnings"]:
        lines += ["", "Warnings:", ""]
        lines += [f"- {warning['message']}" for warning in quality["warnings"]]
    return "\n".join(lines) + "\n"


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

{_quality_section(manifest["quality"])}
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
