"""Thin, idempotent tasks: each finds its work in the database, so a re-delivered task
finds it done and does nothing."""

from __future__ import annotations

import logging

from celery import shared_task

from feedback import labelling

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def derive_pending_sessions() -> int:
    derived, more = labelling.sessions_derive_backlog()
    if more:
        # More is pending: continue in a fresh task. The chunks are committed, so a broker
        # that is down must not fail this task; the beat sweep continues instead.
        try:
            derive_pending_sessions.delay()
        except Exception:  # the broker is unavailable
            logger.warning("Derivation continues at the next sweep", exc_info=True)
    return derived


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def mark_inactive_sessions_abandoned() -> int:
    marked = labelling.sessions_mark_abandoned()
    if marked:
        labelling.derivation_schedule()
    return marked
