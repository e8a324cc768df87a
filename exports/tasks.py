"""Thin export tasks; a job is claimed with a conditional UPDATE, so a re-delivered task
finds it taken (or done) and does nothing."""

from __future__ import annotations

import logging

from celery import shared_task

from exports import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def build_export(job_id: int) -> str:
    job = services.export_claim(job_id=job_id)
    if job is None:
        return "not claimable"
    try:
        services.export_build(job=job)
    except Exception as error:
        # Recorded on the job for the people waiting on it, and logged with its traceback;
        # not re-raised: a rebuild of the same data would fail the same way, and in
        # in-process mode the request that queued the job must still answer 202.
        logger.exception("Export %s failed", job_id)
        services.export_fail(job_id=job_id, error=f"{error.__class__.__name__}: {error}")
        return "failed"
    return "done"


@shared_task
def resume_stale_exports() -> int:
    return len(services.exports_resume_stale())
