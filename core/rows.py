"""Model instances from rows of written-out SQL, converted as the ORM converts them.

Hot paths (an annotator's claim, queue access, token login) read their rows with one
hand-written statement where compiling the ORM's queries would cost more CPU than the
rest of the request; these build the same instances the ORM would have built.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, models


def sql_columns(model: type[models.Model], alias: str) -> str:
    """The model's concrete columns, qualified by `alias`, in field order."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def instance_from_row(model: type[models.Model], values: list | tuple) -> Any:
    """An instance of `model` from its concrete fields' raw column values (as
    `sql_columns` lists them), or None where the first (the primary key) is None: a LEFT
    JOIN that found nothing. Values go through the backend's converters, then the
    field's (JSON parsed, SQLite's booleans and dates), as the ORM's do."""
    if values[0] is None:
        return None
    converted = []
    for (column, converters), value in zip(_converters(model), values, strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(
        connection.alias, [field.attname for field in model._meta.concrete_fields], converted
    )


@functools.cache
def _converters(model: type[models.Model]) -> list[tuple[Any, list]]:
    columns = [field.get_col(model._meta.db_table) for field in model._meta.concrete_fields]
    return [
        (column, connection.ops.get_db_converters(column) + column.get_db_converters(connection))
        for column in columns
    ]
