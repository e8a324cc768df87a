"""Thin, idempotent review tasks."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from review import claims, gate, kept, selectors
from review.models import Queue

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def recompute_queue_agreement(queue_id: int) -> int:
    queue = Queue.objects.filter(pk=queue_id).first()
    if queue is None:  # deleted since: nothing to do
        return 0
    return gate.queue_agreement_recompute(queue=queue).pk


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def reap_expired_claims() -> int:
    return claims.claims_reap()


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def recompute_stale_agreements() -> int:
    """Beat sweep: schedule a recomputation for every queue answered since its latest
    snapshot, so no answer depends on the schedule call made after it (which logs and
    gives up while Redis is down). Answers younger than two debounce windows are left to
    that call. Also prunes the log of changed rows (hourly: its own clock).
    Returns how many queues were stale."""
    window = timedelta(seconds=2 * settings.GLEANER_AGREEMENT_DEBOUNCE_SECONDS)
    stale = selectors.queues_with_stale_agreement(answered_before=timezone.now() - window)
    for queue_id in stale:
        claims.agreement_schedule(queue_id)
    if stale:
        logger.info("Agreement of %d queue(s) was stale: recomputation scheduled", len(stale))
    kept.row_changes_prune()  # after the schedules: a failure here retries, re-scheduling
    return len(stale)
