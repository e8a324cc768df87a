"""Operations for migrations that drop the index Django gave a foreign key when a composite
index or constraint already leads with its column.

Only the index goes: the migration's AlterFields (db_index=False) change the state, while
the database drops the index by name, so the foreign key constraint stays as it is (Django's
own AlterField would drop and re-add the constraint, which re-checks every row of the table).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import migrations


def _index_name(schema_editor, table: str, column: str) -> str:  # noqa: ANN001 - a schema editor
    # The name Django gave the index when it created the foreign key.
    return schema_editor._create_index_name(table, [column], suffix="")


def drop_fk_indexes(covered: Sequence[tuple[str, str]]) -> migrations.RunPython:
    """A reversible operation dropping the own index of each (table, column) foreign key."""

    def drop(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
        quote = schema_editor.quote_name
        for table, column in covered:
            name = quote(_index_name(schema_editor, table, column))
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")

    def create(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
        quote = schema_editor.quote_name
        for table, column in covered:
            name = quote(_index_name(schema_editor, table, column))
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {quote(table)} ({quote(column)})"
            )

    return migrations.RunPython(drop, create)
