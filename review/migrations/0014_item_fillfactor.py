"""Leave a fifth of each review_item page free (fillfactor 80) on PostgreSQL.

The gate rewrites items' outcomes (agreement, state, decision, reason, preferred
response) and annotating rewrites their counts; none of those columns is indexed, so
PostgreSQL can update the row in place on its page (a HOT update, no entry in any of the
table's eight indexes) if the page has room for the new version. At the default
fillfactor (100) pages are filled to the brim and nearly every update moved the row to
another page and added it to every index: rewriting 333,000 outcomes cost 12 s of
database CPU, with fillfactor 80 about half. Pages written from now on keep the room;
existing ones gain it as their rows move (or at once with VACUUM FULL).
"""

from django.db import migrations


def set_fillfactor(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE review_item SET (fillfactor = 80)")


def reset_fillfactor(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE review_item RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0013_drop_covered_fk_indexes"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
