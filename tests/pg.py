"""PostgreSQL helpers for lock tests: a second connection to the test database, and how
many backends of it wait on a lock (to poll for "blocked" instead of sleeping)."""

from __future__ import annotations

import psycopg
from django.db import connection


def other_connection() -> psycopg.Connection:
    """A new connection to the test database, outside Django (its own transactions)."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=False
    )


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]
