"""The agreement page's view of a queue's annotator exclusions (review/exclusions.py),
read once per page by the template (the page's view is shared with other lead pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template

from review.exclusions import queue_exclusions
from review.models import AnnotatorExclusion, Queue

register = template.Library()


@dataclass(frozen=True)
class ExclusionsView:
    rows: list[tuple[Any, AnnotatorExclusion | None]]  # (annotator figures, active exclusion)
    history: list[AnnotatorExclusion]  # every exclusion, active ones first
    active: int


@register.simple_tag
def annotator_exclusions(queue: Queue, annotators: list[Any]) -> ExclusionsView:
    """Each annotator's figures beside their active exclusion, if any, and the record."""
    history = queue_exclusions(queue)
    active = {e.user.username: e for e in history if e.revoked_at is None}
    return ExclusionsView(
        rows=[(a, active.get(a.username)) for a in annotators],
        history=history,
        active=len(active),
    )
