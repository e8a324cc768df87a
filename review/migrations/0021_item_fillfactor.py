"""Leave half of each review_item page free (fillfactor 50, from migration 0014's 80), on
PostgreSQL.

A recompute may rewrite the outcome of every item of a queue at once (a new threshold, a
queue's first recompute). Outcome columns are not indexed, so each new version can stay
on its page with no index entry (a heap-only tuple) if the page has room for it. At 80 a
page has room for the new versions of about a fifth of its rows; the rest moved to other
pages and were added to every index. Measured on 333k items of one queue
(bench/agreement.py's database, the table freshly written at each setting), one UPDATE of
every item's outcome: 2.8-2.9 s at 80 (28% heap-only), 1.1 s at 50 (100%). After four
such rewrites the table at 50 was smaller than at 100 (81 MB against 200 MB): the old
versions' space is reused on the page. Pages already written keep their packing until
the table is rewritten (VACUUM FULL, pg_repack).
"""

from django.db import migrations


def half_free(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE review_item SET (fillfactor = 50)")


def fifth_free(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE review_item SET (fillfactor = 80)")


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0020_row_changes_unmoved"),
    ]

    operations = [migrations.RunPython(half_free, fifth_free)]
