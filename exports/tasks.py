"""Thin export tasks; a job is claimed with a conditional UPDATE, so a re-delivered task
finds it taken (or done) and does nothing."""

from __future__ import annotations

from celery import shared_task

from exports import services


@shared_task(acks_late=True)
def build_export(job_id: int) -> str:
    job = services.export_claim(job_id=job_id)
    if job is None:
        return "not claimable"
    try:
        services.export_build(job=job)
    except Exception as error:
        services.export_fail(job_id=job_id, error=f"{error.__class__.__name__}: {error}")
        raise
    return "done"


@shared_task
def resume_stale_exports() -> int:
    return len(services.exports_resume_stale())
