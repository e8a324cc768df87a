"""Writes of the lead's pages beyond `services`: resolving flags and releasing held-out
items. Each is one conditional UPDATE, so two leads acting at once cannot both win."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.utils import timezone

from core.storable import text_problem
from review.models import Item, ItemFlag

MAX_RESOLUTION = 5000


def flag_resolve(*, flag: ItemFlag, by: User, note: str = "", now: datetime | None = None) -> bool:
    """Resolve an open flag, with an optional note saying what was done. Returns False if
    it was resolved already (by someone else, or by a repeated post): nothing changes then.
    Raises ValueError ("note: ...") for a note that cannot be stored."""
    if len(note) > MAX_RESOLUTION:
        raise ValueError(f"note: must be at most {MAX_RESOLUTION} characters.")
    if problem := text_problem(note):
        raise ValueError(f"note: {problem[0].lower()}{problem[1:]}")
    resolved = ItemFlag.objects.filter(pk=flag.pk, resolved_at__isnull=True).update(
        resolved_at=now or timezone.now(), resolved_by=by, resolution=note.strip()
    )
    return resolved == 1


def item_release_hold_out(*, item: Item) -> bool:
    """Put a held-out item back among the training items (the reverse of
    `services.items_hold_out`). Returns False if it was not held out."""
    return Item.objects.filter(pk=item.pk, held_out=True).update(held_out=False) == 1
