"""Thin, idempotent review tasks."""

from __future__ import annotations

from celery import shared_task

from review import claims, gate
from review.models import Queue


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def recompute_queue_agreement(queue_id: int) -> int:
    queue = Queue.objects.filter(pk=queue_id).first()
    if queue is None:  # deleted since: nothing to do
        return 0
    return gate.queue_agreement_recompute(queue=queue).pk


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def reap_expired_claims() -> int:
    return claims.claims_reap()
