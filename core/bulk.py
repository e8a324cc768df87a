"""INSERT ... ON CONFLICT DO NOTHING RETURNING, which Django's bulk_create does not offer.

`bulk_create(ignore_conflicts=True)` cannot say which rows it inserted, and ingestion must
count duplicates exactly even when two identical batches race. PostgreSQL and SQLite
(3.35+) both return only the rows actually inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.db.models.constants import OnConflict
from django.db.models.options import Options


def insert_ignoring_conflicts(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    unique_fields: Sequence[str],
    returning: Sequence[str],
) -> list[tuple]:
    """Insert `objs`, skip those that collide on `unique_fields`; rows of the inserted ones.

    Callers sort `objs` by their unique key so that concurrent identical batches take
    index locks in the same order and cannot deadlock.
    """
    if not objs:
        return []
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    returning_fields = [opts.get_field(name) for name in returning]
    unique = [opts.get_field(name) for name in unique_fields]
    batch = max(1, connection.ops.bulk_batch_size(fields, objs))
    rows: list[tuple] = []
    for start in range(0, len(objs), batch):
        rows.extend(
            model._default_manager._insert(  # type: ignore[attr-defined]  # noqa: SLF001 - see module docstring
                objs[start : start + batch],
                fields=fields,
                returning_fields=returning_fields,
                on_conflict=OnConflict.IGNORE,
                unique_fields=unique,
            )
        )
    return rows


def update_rows(
    model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]
) -> int:
    """Write `fields` of `objs` back by primary key: one `UPDATE ... FROM (VALUES ...)` per
    batch. Django's bulk_update builds a CASE WHEN per row and field, which costs more in
    Python than the database spends on the update.
    """
    if not objs:
        return 0
    opts = model._meta
    columns: list[models.Field[Any, Any]] = [opts.pk, *(_concrete(opts, name) for name in fields)]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":  # VALUES rows need types there; SQLite infers
        cells = [f"CAST(%s AS {field.db_type(connection)})" for field in columns]
    else:
        cells = ["%s"] * len(columns)
    row_sql = f"({', '.join(cells)})"
    assignments = ", ".join(
        f"{quote(_column(field))} = v.column{position}"
        for position, field in enumerate(columns[1:], start=2)
    )
    table = quote(opts.db_table)
    pk_column = quote(_column(opts.pk))
    batch = max(1, connection.ops.bulk_batch_size(columns, objs))
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch):
            chunk = objs[start : start + batch]
            params = [
                field.get_db_prep_save(getattr(obj, field.attname), connection)
                for obj in chunk
                for field in columns
            ]
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608 - names from the model
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v "
                f"WHERE {table}.{pk_column} = v.column1",
                params,
            )
            updated += cursor.rowcount
    return updated


def _concrete(opts: Options[Any], name: str) -> models.Field[Any, Any]:
    """The concrete field `name` (a column of this table), never a reverse relation."""
    field = opts.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise ValueError(f"{name!r} is not a column of {opts.db_table}.")
    return field


def _column(field: models.Field[Any, Any]) -> str:
    if field.column is None:  # only fields without a column (checked by _concrete)
        raise ValueError(f"{field.name!r} has no column.")
    return field.column
