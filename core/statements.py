"""Cursors for written-out statements on PostgreSQL: parameters sent apart from the
statement (server-side binding), and the hot paths' statements prepared once per
connection.

Django's own cursors bind on the client: each statement's text is rebuilt with every value
quoted into it, in Python, and PostgreSQL parses and plans it anew. For an annotator's
claim, answer and login, planning alone cost PostgreSQL 3.2 ms of CPU a claim + submit
(pg_stat_statements, 32 annotators, 1M items), more than running them. `statement_cursor`
prepares them instead: the connection parses and plans each statement once (PostgreSQL
keeps a generic plan once it proves no worse than the custom ones), then sends only the
values.

Prepared statements live in a connection. Django leaves them off
(`prepare_threshold=None`) so that a transaction-pooling PgBouncer keeps working;
config.settings turns them on unless DB_PREPARED_STATEMENTS=0, which such a pooler needs
(docs/configuration.md). With them off, `statement_cursor` still binds on the server,
unprepared. Django's cursors never prepare either way: psycopg's client-side cursors do
not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from core import pgarrays


class _UnpreparedCursor(psycopg.Cursor):
    """Binds on the server, never prepares: statements run a few times a chunk, whose
    plans may depend on the arrays they are given (derivation, routing)."""

    prepare: bool | None = False

    def execute(
        self,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Any:
        return super().execute(
            query, params, prepare=self.prepare if prepare is None else prepare, binary=binary
        )


class _PreparingCursor(_UnpreparedCursor):
    """Prepares each statement at its first run on a connection (where prepared statements
    are on), and runs the prepared one from then on."""

    prepare = True


def binding_cursor() -> Any:
    """A cursor of the current connection (and transaction) that sends parameters apart
    from the statement (PostgreSQL only). Arrays go as `%b`, in binary: no quoting or
    escaping per element, where Django's default client-side binding escapes every string
    of an array with a regular expression, in Python; lists are packed in C or by numpy
    (core.pgarrays). Timestamps are read by psycopg's own loader where the connection's
    time zone is UTC, as Django's is: the same aware datetimes, without Django's wrapper
    in Python around each one. Never prepared: its statements run a few times a chunk
    (`statement_cursor` prepares). Wrapped like Django's own cursors, so its queries are
    logged and counted all the same."""
    connection.ensure_connection()
    cursor = _UnpreparedCursor(connection.connection)
    pgarrays.register(cursor)
    timestamptz = psycopg.adapters.types["timestamptz"].oid
    loader = psycopg.adapters.get_loader(timestamptz, psycopg.pq.Format.TEXT)
    utc = cursor.connection.info.parameter_status("TimeZone") == "UTC"
    if loader is not None and utc and connection.timezone is UTC:
        # psycopg's own loader gives values with `datetime.UTC` on such a connection, as
        # Django's does by wrapping that same loader in Python to set the time zone.
        cursor.adapters.register_loader(timestamptz, loader)
    return _wrapped(cursor)


def _wrapped(cursor: psycopg.Cursor) -> Any:
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    return wrapper(cursor, connection)


def statement_cursor() -> Any:
    """For a hot path's written-out statement: on PostgreSQL a cursor that binds on the
    server and prepares it, elsewhere Django's cursor. Values are read with the
    connection's own loaders, as Django's cursor reads them; no adapter is set up per
    cursor (`binding_cursor`'s set-up costs 15-27 µs more, five times a claim + submit).
    Placeholders are `%s` or `%(name)s` either way; a value whose type PostgreSQL cannot
    infer from the statement (a NULL in a select list) needs a cast there."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        return _wrapped(_PreparingCursor(connection.connection))
    return connection.cursor()


Statement = tuple[str, Sequence[Any] | Mapping[str, Any]]


def transaction_at_once(statements: Sequence[Statement]) -> tuple[Any, ...] | None:
    """Run `statements` (prepared, as `statement_cursor` runs them) in one transaction and
    return the first row of the last one.

    On PostgreSQL outside a transaction, BEGIN, the statements and COMMIT are sent at once
    (psycopg's pipeline mode) and read back together: one round trip, and the server runs
    them back to back, so a row lock the first statement takes is held only while the
    server works. Run one by one, a lock is also held while this process waits for each
    answer and then for its turn to run Python again, which in a busy threaded web worker
    is tens of milliseconds: answers to one item queued behind each other for up to 170 ms
    in the claims bench (bench/claims.py). Each statement still reads a snapshot taken
    when it starts, after the locks of those before it are granted. An error rolls the
    whole transaction back and is raised as Django raises database errors.

    Inside the caller's transaction (an atomic block: tests, bulk imports), and elsewhere
    than on PostgreSQL, they run one by one in an atomic block (a savepoint of it).
    """
    if connection.vendor != "postgresql" or not connection.get_autocommit():
        with transaction.atomic(), statement_cursor() as cursor:
            for query, params in statements:
                cursor.execute(query, params)
            return cursor.fetchone()
    conn = connection.connection
    cursors = [_wrapped(_PreparingCursor(conn)) for _ in statements]
    control = conn.cursor()  # BEGIN and COMMIT, not counted as queries (as in Django's atomic)
    with connection.wrap_database_errors:
        try:
            # BEGIN and COMMIT as statements: psycopg's own transaction block would sync the
            # pipeline at both ends, a round trip each.
            with conn.pipeline():
                control.execute("BEGIN")
                for cursor, (query, params) in zip(cursors, statements, strict=True):
                    cursor.execute(query, params)
                control.execute("COMMIT")  # skipped by the server after an error
        except BaseException:
            # Failed in the server (its transaction aborted), or in Python before COMMIT was
            # queued (a value that cannot be sent: the statements before it ran, their
            # locks still held): either way, nothing of it stays.
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            raise
    try:
        return cursors[-1].fetchone()
    finally:
        for cursor in [*cursors, control]:
            cursor.close()
