"""Reads of the playground: what the ended page links to."""

from __future__ import annotations

from feedback.models import Label
from tenancy.models import Project


def session_label_ids(*, project: Project, session_id: str) -> list[int]:
    """Ids of the active labels derived from the session so far (none before derivation)."""
    return list(
        Label.objects.filter(
            project=project, session__external_id=session_id, active=True
        ).values_list("id", flat=True)
    )
