"""Thin export tasks; a job is claimed with a conditional UPDATE, so a re-delivered task
finds it taken (or done) and does nothing, unless the worker holding it has died: then
the task takes it over as soon as its heartbeat is stale."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import Task, shared_task

from exports import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=None)
def build_export(self: Task, job_id: int, seen_heartbeat: str | None = None) -> str:
    job = services.export_claim(job_id=job_id)
    if job is None:
        # Held by a worker whose heartbeat is fresh. After kill -9 of a pool child this
        # task is redelivered at once, while the dead child's heartbeat still looks
        # fresh: look again just after it would go stale, and take the job over then
        # unless the heartbeat has moved (its worker is alive; the sweep still watches).
        seen = datetime.fromisoformat(seen_heartbeat) if seen_heartbeat else None
        takeover = services.export_takeover_at(job_id=job_id, seen_heartbeat=seen)
        if takeover is None or self.request.is_eager or self.request.called_directly:
            return "not claimable"
        retry_at, heartbeat = takeover
        raise self.retry(
            eta=retry_at, kwargs={"job_id": job_id, "seen_heartbeat": heartbeat.isoformat()}
        )
    try:
        job = services.export_build(job=job)
    except services.ExportTakenOver:
        logger.warning("Export %s was taken over by another worker; stopped", job_id)
        return "taken over"
    except Exception as error:
        # Recorded on the job for the people waiting on it, and logged with its traceback;
        # not re-raised: a rebuild of the same data would fail the same way, and in
        # in-process mode the request that queued the job must still answer 202.
        logger.exception("Export %s failed", job_id)
        services.export_fail(
            job_id=job_id, error=f"{error.__class__.__name__}: {error}", attempt=job.attempts
        )
        return "failed"
    return job.status  # "done", or "failed" below the project's policy (job.error says why)


@shared_task
def resume_stale_exports() -> int:
    return len(services.exports_resume_stale())
