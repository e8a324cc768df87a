"""How PostgreSQL stores review items (review migration 0021)."""

from __future__ import annotations

import pytest
from django.db import connection

from review.models import Item

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_items_are_stored_with_room_for_their_rewrites():
    """Half of each page free (a fifth before review 0021): an agreement recompute may
    rewrite every item of a queue, and each new version then finds room on its own page
    (no index entries)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [Item._meta.db_table]
        )
        (options,) = cursor.fetchone()
    assert "fillfactor=50" in (options or [])
