"""core.statements.transaction_at_once: statements and their transaction sent to
PostgreSQL at once, rolled back whole on an error, run in the caller's transaction inside
one."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DataError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.statements import transaction_at_once
from tests.pgtrace import libpq_trace, prepared_statements, round_trips

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TABLE = "test_at_once"


@pytest.fixture
def table():
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, n int NOT NULL)")
        cursor.execute(f"INSERT INTO {TABLE} VALUES (1, 0)")  # noqa: S608 - a fixed name
    yield TABLE
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {TABLE}")


LOCK = f"SELECT 1 FROM {TABLE} WHERE id = %s FOR UPDATE"  # noqa: S608 - a fixed name
ADD = f"UPDATE {TABLE} SET n = n + 10 / %s WHERE id = %s RETURNING n"  # noqa: S608


def _n() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT n FROM {TABLE} WHERE id = 1")  # noqa: S608
        return cursor.fetchone()[0]


def test_begin_the_statements_and_commit_go_in_one_round_trip(table):
    with libpq_trace() as messages:
        row = transaction_at_once([(LOCK, [1]), (ADD, [1, 1])])
    assert row == (10,)
    trips = round_trips(messages)
    assert len(trips) == 1, trips
    parsed = " | ".join(trips[0])
    assert parsed.index('"BEGIN"') < parsed.index("FOR UPDATE") < parsed.index("SET n = n")
    assert parsed.index("SET n = n") < parsed.index('"COMMIT"')
    assert _n() == 10
    assert connection.get_autocommit()


def test_the_statements_are_prepared_and_counted_as_queries(table):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(6):  # past psycopg's threshold, where prepared statements are on
            transaction_at_once([(LOCK, [1]), (ADD, [1, 1])])
    logged = [q["sql"] for q in queries.captured_queries]
    assert LOCK in logged[0]
    assert ADD in logged[1]
    assert len(queries) == 12  # two a transaction: BEGIN and COMMIT are not queries
    prepared = " ".join(prepared_statements().values())
    assert "FOR UPDATE" in prepared
    assert "SET n = n + 10" in prepared
    assert _n() == 60


def test_an_error_rolls_back_every_statement_and_the_connection_goes_on(table):
    transaction_at_once([(ADD, [1, 1])])
    with pytest.raises(DataError, match="division by zero"):
        transaction_at_once([(ADD, [1, 1]), (ADD, [0, 1])])  # the first one's write undone
    assert _n() == 10
    assert connection.get_autocommit()
    assert transaction_at_once([(LOCK, [1]), (ADD, [1, 1])]) == (20,)


def test_a_value_that_cannot_be_sent_releases_the_lock_taken_before_it(table):
    """The lock statement ran in the server before the bad value failed in Python: the
    transaction is rolled back (its lock released), not left open on the connection."""
    with pytest.raises(ProgrammingError, match="cannot adapt"):
        transaction_at_once([(LOCK, [1]), (ADD, [object(), 1])])
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert transaction_at_once([(ADD, [1, 1])]) == (10,)


def test_a_missing_row_returns_none(table):
    assert transaction_at_once([(LOCK, [2]), (ADD, [1, 2])]) is None


def test_inside_an_atomic_block_they_run_in_the_callers_transaction(table):
    with pytest.raises(RuntimeError), transaction.atomic():
        assert transaction_at_once([(LOCK, [1]), (ADD, [1, 1])]) == (10,)
        assert _n() == 10
        raise RuntimeError  # the caller rolls back: the statements' writes with it
    assert _n() == 0
