"""What libpq sends and receives on the current connection (PostgreSQL), read from its own
trace (PQtrace), and what the connection holds prepared: for tests of how many round trips
a path takes and which of its statements are prepared."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

BIND = re.compile(r'Bind\s+"[^"]*" "([^"]+)"')


@contextmanager
def libpq_trace() -> Iterator[list[tuple[str, str]]]:
    """Messages on Django's connection inside the block, as (direction, text) pairs:
    direction "F" from us to the server, "B" from the server; text the message's name and
    contents (a Parse with its statement; a Bind of a prepared statement, which the
    connection may have parsed before the block, followed by that statement's text)."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    messages: list[tuple[str, str]] = []
    with tempfile.TemporaryFile() as log:
        pgconn.trace(log.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield messages
        finally:
            pgconn.untrace()
            log.seek(0)
            for line in log.read().decode(errors="replace").splitlines():
                direction, _, rest = line.partition("\t")
                if direction in ("F", "B") and rest:
                    messages.append((direction, rest.partition("\t")[2]))
                elif messages:  # a statement's text goes on over several lines
                    messages[-1] = (messages[-1][0], f"{messages[-1][1]}\n{line}")
            prepared = prepared_statements()
            for index, (direction, text) in enumerate(messages):
                bind = BIND.match(text)
                if bind and bind[1] in prepared:
                    messages[index] = (direction, f"{text} {prepared[bind[1]]}")


def prepared_statements() -> dict[str, str]:
    """The statements the current connection holds prepared, by name."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def round_trips(messages: list[tuple[str, str]]) -> list[list[str]]:
    """The messages sent in each round trip: a run of messages to the server ends where
    the server's first answer to it comes back."""
    trips: list[list[str]] = []
    answered = True
    for direction, text in messages:
        if direction == "F":
            if answered:
                trips.append([])
                answered = False
            trips[-1].append(text)
        else:
            answered = True
    return trips
