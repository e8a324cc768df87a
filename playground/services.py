"""Writes of the playground: its publishable key, and the canned model's generations.

The page's own server side plays the client's backend: it produces the answer and sends the
`generation` event in-process (the secret side of the split). The browser only refers to a
generation by its id, with the publishable key.
"""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback import services as feedback_services
from playground import canned
from playground.models import PlaygroundKey
from tenancy.keys import api_key_create
from tenancy.models import ApiKey, Project, hash_api_key


class IngestRefused(Exception):
    """events_ingest refused the generation: a bug here, not the visitor's input."""


def playground_key_for(*, project: Project, origin: str) -> str:
    """The raw publishable key for pages of `origin`, created on first use (or again when
    the stored one was revoked in admin)."""
    stored = PlaygroundKey.objects.filter(project=project, origin=origin).first()
    if (
        stored is not None
        and ApiKey.objects.filter(
            hashed_key=hash_api_key(stored.raw_key), revoked_at__isnull=True
        ).exists()
    ):
        return stored.raw_key
    try:
        with transaction.atomic():
            _, raw = api_key_create(
                project=project,
                name=f"playground {origin}"[:100],
                publishable=True,
                origins=[origin],
            )
            PlaygroundKey.objects.update_or_create(
                project=project, origin=origin, defaults={"raw_key": raw}
            )
    except IntegrityError:
        # Another first visit won the race: use its key (ours was rolled back).
        return PlaygroundKey.objects.get(project=project, origin=origin).raw_key
    return raw


def generation_id_new() -> str:
    return f"gen_{timezone.now():%Y%m%d%H%M%S}_{secrets.token_hex(6)}"


def generation_create(
    *,
    project: Project,
    session_id: str,
    user_id: str,
    prompt: str,
    variant: int,
    replaces: str | None = None,
) -> tuple[str, canned.Answer]:
    """Answer `prompt` with the canned model and ingest the `generation` event; returns the
    new generation's id and the answer."""
    answer = canned.answer(prompt, variant)
    generation_id = generation_id_new()
    event = {
        "id": f"evt_{generation_id}",
        "type": "generation",
        "timestamp": timezone.now().isoformat().replace("+00:00", "Z"),
        "session_id": session_id,
        "user_id": user_id,
        "generation_id": generation_id,
        "input": [{"role": "user", "content": prompt}],
        "output": answer.text,
        "model": canned.MODEL,
        "metadata": {"source": "playground", "topic": answer.topic, "variant": variant},
    }
    if replaces:
        event["replaces"] = replaces
    result = feedback_services.events_ingest(project=project, events=[event])
    if result.rejected:
        raise IngestRefused(result.errors)
    return generation_id, answer
